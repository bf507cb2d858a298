/* capture.c: the capture contract (capture.h) over the journal (journal.c)
 * and the activity log (activity.c): the group lock, sync and track modes,
 * the overflow gate, the coalesced wake of the JS side.
 *
 * Locks, in the order they may nest:
 *   the group lock  a flag (held) under lk_mu/lk_cv, not a mutex held
 *                   across I/O: it is taken on one thread and may be let go
 *                   on another (JS takes it on a pool thread, releases it
 *                   on the JS thread). Its holder owns the journal's append
 *                   side and the activity log.
 *   tq_mu           the track queue (memory only)
 *   mu              modes, sync waits, acks, errors, pending releases
 *                   (memory only); the sync waiters' conditions are on it
 *                   (CLOCK_MONOTONIC).
 * Every entry point names its thread. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "capture.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "activity.h"
#include "journal.h"

struct taken {                       /* tracked records handed to JS, marks still hot */
  struct taken *next;
  uint64_t token;
  struct hot_entry **held;
  size_t n;
};

struct held_list { struct hot_entry **v; size_t n, cap; };

/* A FUSE thread waiting for the secondary to acknowledge `seq`: a write
 * until the secondary's journal file holds it, an fsync until its disk does
 * (`flushed`). Each has a semaphore of its own, so that an ack wakes only the
 * writers it covers: a broadcast woke every waiter on every ack, and on this
 * VM each wake-up of a thread that goes back to sleep costs tens of
 * microseconds. The waker takes a waiter off the list under `mu` and posts
 * its semaphore after letting `mu` go: signalled under `mu` (a condition
 * variable), the woken thread went straight back to sleep on `mu`, held by
 * the waker, and needed a second wake-up (native-notes/performance.md 27).
 * A waiter taken off the list does not return before its post has come. */
struct sync_waiter {
  uint64_t seq;
  int flushed;
  int taken;                  /* under mu: off the list, its post on the way */
  sem_t posted;
  struct sync_waiter *next;   /* the list; once taken, the waker's list of posts to make */
};

struct capture {
  struct journal *j;
  struct activity *a;
  void (*wake)(void *ctx);
  void *wake_ctx;
  atomic_int wake_armed;

  pthread_mutex_t lk_mu;
  pthread_cond_t lk_cv;
  int held, gate, lk_waiters;
  uint64_t credit;                   /* block policy: gated locks wait once the journal has written this much (0: no bound) */

  pthread_mutex_t tq_mu;
  struct jenc tq;                    /* queued record maps, copied (JS has not taken them) */
  uint32_t tq_count;
  struct held_list tq_held;          /* their marks */
  struct taken *taken;
  uint64_t next_token;

  pthread_mutex_t mu;
  struct sync_waiter *sync_waiters;
  int sync_on, fell_back, track, closing;
  int fsync_backing;                  /* fsyncs go to the backing files too (capture_set_fsync_backing) */
  uint32_t sync_timeout_ms, sync_waiting;
  uint64_t acked, flushed;            /* the secondary's journal file holds through acked, its disk through flushed */
  uint64_t sync_fallbacks;
  uint64_t window;                   /* a sync writer may be this many records ahead of acked (resuming after a fallback) */
  struct held_list release_pending;  /* released by JS, applied by the next lock holder */
  int error;
  char error_msg[256];
  int owed;                          /* errno of an append that failed after its backing op; 0 once JS restated (atomic) */
};

/* ---- wake and errors (any thread) ------------------------------------------ */

/* Under mu: the secondary's acks cover a waiter of `seq` (of an fsync when
 * `flushed`). */
static int covered(const struct capture *c, uint64_t seq, int flushed) {
  return seq <= (flushed ? c->flushed : c->acked) + c->window;
}

/* Holding mu: takes off the list the waiters the acks cover, or all of them
 * (they look at the modes again: fallback, sync off, closing); post_waiters
 * wakes them once mu is let go. */
static struct sync_waiter *take_waiters(struct capture *c, int all) {
  struct sync_waiter *taken = NULL, **p = &c->sync_waiters;
  while (*p) {
    struct sync_waiter *w = *p;
    if (!all && !covered(c, w->seq, w->flushed)) { p = &w->next; continue; }
    *p = w->next;
    w->taken = 1;
    w->next = taken;
    taken = w;
  }
  return taken;
}

/* Not holding mu. A waiter may be gone as soon as its post is made. */
static void post_waiters(struct sync_waiter *taken) {
  while (taken) {
    struct sync_waiter *next = taken->next;
    sem_post(&taken->posted);
    taken = next;
  }
}

static void wake(struct capture *c) {
  if (c->wake && atomic_exchange(&c->wake_armed, 0)) c->wake(c->wake_ctx);
}

static void set_error(struct capture *c, int err, const char *msg) {
  pthread_mutex_lock(&c->mu);
  c->error = err < 0 ? -err : err;
  snprintf(c->error_msg, sizeof c->error_msg, "%s", msg && *msg ? msg : strerror(c->error));
  pthread_mutex_unlock(&c->mu);
  wake(c);
}

/* An op changed the backing store and its records did not make the journal:
 * until JS has restated the parts it left hot, a later change could build on
 * it and reach the secondary first (an O_TRUNC open of the file whose create
 * was lost: a truncate of a file the secondary never got). So changes are
 * refused with the error meanwhile (mut_begin), before they touch the
 * backing store. */
static void owe_restate(struct capture *c, int err) {
  __atomic_store_n(&c->owed, err < 0 ? -err : err, __ATOMIC_RELEASE);
}

/* Any thread: the errno changes are refused with (0: none). Read by every
 * change: an atomic, not mu, which sync waiters and acks contend for. */
int capture_owed(struct capture *c) {
  return __atomic_load_n(&c->owed, __ATOMIC_ACQUIRE);
}

/* JS: a restate went through (0), or recovery owes one (an errno). */
void capture_set_owed(struct capture *c, int err) { owe_restate(c, err); }

static void journal_error(void *ctx, int err, const char *msg) {   /* the journal's retire thread */
  set_error(ctx, err, msg);
}

static int held_push(struct held_list *l, struct hot_entry *const *e, size_t n) {
  if (l->n + n > l->cap) {
    size_t cap = l->cap ? l->cap : 64;
    while (cap < l->n + n) cap *= 2;
    struct hot_entry **v = realloc(l->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  memcpy(l->v + l->n, e, n * sizeof *e);
  l->n += n;
  return 0;
}

/* Group-lock holder: applies the releases JS queued (capture_release_tracked). */
static void apply_pending_releases(struct capture *c) {
  pthread_mutex_lock(&c->mu);
  struct held_list l = c->release_pending;
  memset(&c->release_pending, 0, sizeof c->release_pending);
  pthread_mutex_unlock(&c->mu);
  if (!l.n) { free(l.v); return; }
  char msg[256] = "";
  int rc = activity_release_entries(c->a, l.v, l.n, msg, sizeof msg);
  free(l.v);
  if (rc < 0) set_error(c, rc, msg);
}

/* ---- open, close, poll (JS) ------------------------------------------------ */

int capture_open(const struct capture_config *cfg, struct capture **out, char *err, size_t errlen) {
  if (!cfg->state_dir || !cfg->group || cfg->next_seq == 0) {
    snprintf(err, errlen, "capture_open: state_dir, group and next_seq >= 1 are required");
    return -EINVAL;
  }
  struct capture *c = calloc(1, sizeof *c);
  if (!c) { snprintf(err, errlen, "out of memory"); return -ENOMEM; }
  /* Everything the journal's retire thread may touch (set_error) first. */
  c->wake = cfg->wake;
  c->wake_ctx = cfg->wake_ctx;
  atomic_init(&c->wake_armed, 1);
  pthread_mutex_init(&c->lk_mu, NULL);
  pthread_cond_init(&c->lk_cv, NULL);
  pthread_mutex_init(&c->tq_mu, NULL);
  jenc_init(&c->tq, 0);
  c->next_token = 1;
  pthread_mutex_init(&c->mu, NULL);
  c->sync_on = cfg->sync_mode != 0;
  c->sync_timeout_ms = cfg->sync_timeout_ms ? cfg->sync_timeout_ms : 10000;
  c->acked = c->flushed = cfg->next_seq - 1;   /* nothing before the handover waits */
  struct journal_config jc = {
    .dir = cfg->state_dir, .group = cfg->group, .next_seq = cfg->next_seq,
    .segment_bytes = cfg->segment_bytes, .on_error = journal_error, .ctx = c,
    .verify_at = cfg->verify_at, .verify_first = cfg->verify_first, .verify_offset = cfg->verify_offset,
    .boot_id = cfg->boot_id, .drop_finished = cfg->drop_finished,
  };
  memcpy(jc.last_hash, cfg->last_hash, sizeof jc.last_hash);
  int rc = journal_open(&jc, &c->j, err, errlen);
  if (rc == 0) rc = activity_open(cfg->state_dir, &c->a, err, errlen);
  if (rc < 0) {
    journal_close(c->j);
    pthread_mutex_destroy(&c->lk_mu);
    pthread_cond_destroy(&c->lk_cv);
    pthread_mutex_destroy(&c->tq_mu);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void capture_close(struct capture *c) {
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  c->closing = 1;
  c->sync_on = 0;
  struct sync_waiter *woken = take_waiters(c, 1);
  pthread_mutex_unlock(&c->mu);
  post_waiters(woken);
  pthread_mutex_lock(&c->mu);
  while (c->sync_waiting) {   /* a waiter still inside capture_durable: let it leave first */
    pthread_mutex_unlock(&c->mu);
    sched_yield();
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  journal_close(c->j);
  activity_close(c->a, 1);
  for (struct taken *t = c->taken, *next; t; t = next) {
    next = t->next;
    free(t->held);
    free(t);
  }
  jenc_free(&c->tq);
  free(c->tq_held.v);
  free(c->release_pending.v);
  pthread_mutex_destroy(&c->lk_mu);
  pthread_cond_destroy(&c->lk_cv);
  pthread_mutex_destroy(&c->tq_mu);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

void capture_poll(struct capture *c, struct capture_status *out) {
  atomic_store(&c->wake_armed, 1);
  struct journal_status js;
  journal_status(c->j, &js);
  memset(out, 0, sizeof *out);
  out->next_seq = js.next_seq;
  memcpy(out->last_hash, js.last_hash, sizeof out->last_hash);
  out->durable_seq = js.durable_seq;
  out->segment_first = js.segment_first;
  out->segment_bytes = js.segment_bytes;
  out->batches = js.batches;
  out->records = js.records;
  out->data_bytes = js.data_bytes;
  out->journal_bytes_written = js.bytes_written;
  pthread_mutex_lock(&c->tq_mu);
  out->tracked_records = c->tq_count;
  pthread_mutex_unlock(&c->tq_mu);
  pthread_mutex_lock(&c->mu);
  out->sync_fallbacks = c->sync_fallbacks;
  out->sync_waiting = c->sync_waiting;
  out->sync_active = c->sync_on && !c->fell_back;
  out->track = c->track;
  out->error = c->error;
  memcpy(out->error_msg, c->error_msg, sizeof out->error_msg);
  c->error = 0;
  c->error_msg[0] = 0;
  pthread_mutex_unlock(&c->mu);
}

/* ---- the group lock --------------------------------------------------------- */

/* lk_mu held. The credit bounds the journal without waiting for JS to see
 * it full: JS hands out credit as acknowledgements trim the journal. */
static int over_credit(struct capture *c) {
  if (!c->credit) return 0;
  struct journal_status js;
  journal_status(c->j, &js);
  return js.bytes_written >= c->credit;
}

static int lock_group(struct capture *c, int gated) {
  pthread_mutex_lock(&c->lk_mu);
  while (c->held || (gated && (c->gate || over_credit(c)))) {
    c->lk_waiters++;
    pthread_cond_wait(&c->lk_cv, &c->lk_mu);
    c->lk_waiters--;
  }
  c->held = 1;
  pthread_mutex_unlock(&c->lk_mu);
  return 0;
}

/* FUSE worker (or JS's pool thread): waits while another holds it or the
 * overflow gate is shut. */
int capture_lock(struct capture *c) { return lock_group(c, 1); }

/* JS's pool thread. */
int capture_lock_ungated(struct capture *c) { return lock_group(c, 0); }

/* Whichever thread holds it now (a FUSE worker; the JS thread for JS's). */
void capture_unlock(struct capture *c) {
  pthread_mutex_lock(&c->lk_mu);
  c->held = 0;
  /* Waiters differ (gated or not) only while the gate is shut: then wake
   * them all, so an ungated one is not passed over. */
  if (c->lk_waiters) {
    if (c->gate || c->credit) pthread_cond_broadcast(&c->lk_cv);
    else pthread_cond_signal(&c->lk_cv);
  }
  pthread_mutex_unlock(&c->lk_mu);
}

/* JS. */
void capture_set_gate(struct capture *c, int shut) {
  pthread_mutex_lock(&c->lk_mu);
  c->gate = shut != 0;
  if (!shut && c->lk_waiters) pthread_cond_broadcast(&c->lk_cv);
  pthread_mutex_unlock(&c->lk_mu);
}

/* JS: gated locks wait once the journal has written `bytes_written` bytes in
 * all (0: no bound); raised as the secondary's acknowledgements trim it. */
void capture_set_credit(struct capture *c, uint64_t bytes_written) {
  pthread_mutex_lock(&c->lk_mu);
  c->credit = bytes_written;
  if (c->lk_waiters) pthread_cond_broadcast(&c->lk_cv);
  pthread_mutex_unlock(&c->lk_mu);
}

/* ---- marks and appends (the group-lock holder: a FUSE worker) --------------- */

int capture_mark(struct capture *c, const struct hot *marks, int n) {
  apply_pending_releases(c);
  if (n <= 0) return 0;
  char msg[256] = "";
  int rc = activity_mark(c->a, marks, n, msg, sizeof msg);
  if (rc < 0) set_error(c, rc, msg);
  return rc;
}

void capture_release(struct capture *c, const struct hot *marks, int n) {
  apply_pending_releases(c);
  if (n <= 0) return;
  char msg[256] = "";
  int rc = activity_release(c->a, marks, n, msg, sizeof msg);
  if (rc < 0) set_error(c, rc, msg);
}

/* Track mode: the records into the queue, their marks kept hot. */
static int track_append(struct capture *c, const struct rec *recs, int nrec, const struct hot *marks, int nmarks) {
  struct hot_entry *held[64], **hp = held;
  if (nmarks > 64 && !(hp = malloc((size_t)nmarks * sizeof *hp))) return -ENOMEM;
  int nheld = nmarks > 0 ? activity_hold(c->a, marks, nmarks, hp) : 0;
  pthread_mutex_lock(&c->tq_mu);
  size_t mark_len = c->tq.len;
  for (int i = 0; i < nrec; i++) jenc_record(&c->tq, &recs[i]);
  int rc = c->tq.err;
  if (!rc) rc = held_push(&c->tq_held, hp, (size_t)nheld);
  if (rc) {   /* take back this op's part (the marks stay hot: a restart restates them) */
    c->tq.len = mark_len;   /* by_ref 0: the pieces are buf[0, len), one run */
    c->tq.npieces = mark_len ? 1 : 0;
    if (mark_len) c->tq.pieces[0] = (struct jpiece){ .off = 0, .len = mark_len, .ext = NULL };
    c->tq.err = 0;
  } else {
    c->tq_count += (uint32_t)nrec;
  }
  pthread_mutex_unlock(&c->tq_mu);
  if (hp != held) free(hp);
  return rc;
}

int capture_append(struct capture *c, const struct rec *recs, int nrec,
                   const struct hot *marks, int nmarks, uint64_t *seq, int *sync_batch) {
  apply_pending_releases(c);
  *seq = 0;
  if (sync_batch) *sync_batch = 0;
  if (nrec <= 0) return -EINVAL;
  pthread_mutex_lock(&c->mu);
  int track = c->track, sync = c->sync_on && !c->fell_back;
  pthread_mutex_unlock(&c->mu);
  char msg[256] = "";
  int rc;
  if (track) {
    for (int i = 0; i < nrec; i++)
      if ((rc = jrec_check(&recs[i])) < 0) { set_error(c, rc, "a tracked record is out of bounds"); return rc; }
    rc = track_append(c, recs, nrec, marks, nmarks);
    if (rc < 0) { set_error(c, rc, "cannot queue tracked records: out of memory"); owe_restate(c, rc); }
    else wake(c);
    return rc;   /* *seq 0: nothing to wait for */
  }
  uint64_t first = 0;
  rc = journal_append(c->j, recs, nrec, sync, &first, msg, sizeof msg);
  if (rc < 0) { set_error(c, rc, msg); owe_restate(c, rc); return rc; }   /* the marks stay hot */
  *seq = first + (uint64_t)nrec - 1;
  if (sync_batch) *sync_batch = sync;
  if (nmarks > 0 && (rc = activity_release(c->a, marks, nmarks, msg, sizeof msg)) < 0) set_error(c, rc, msg);
  wake(c);
  return 0;
}

/* JS, holding the group lock. */
int capture_append_encoded(struct capture *c, const uint8_t *arr, size_t len, uint32_t count,
                           uint64_t *first, uint64_t *last) {
  pthread_mutex_lock(&c->mu);
  int sync = c->sync_on && !c->fell_back;
  pthread_mutex_unlock(&c->mu);
  char msg[256] = "";
  uint64_t f = 0;
  int rc = journal_append_encoded(c->j, arr, len, count, sync, &f, msg, sizeof msg);
  if (rc < 0) { set_error(c, rc, msg); return rc; }
  *first = f;
  *last = f + count - 1;
  wake(c);
  return 0;
}

/* JS, holding the group lock. */
int capture_rebase(struct capture *c, uint64_t next_seq, const uint8_t prev[16]) {
  if (next_seq == 0) return -EINVAL;
  char msg[256] = "";
  int rc = journal_rebase(c->j, next_seq, prev, msg, sizeof msg);
  if (rc < 0) { set_error(c, rc, msg); return rc; }
  pthread_mutex_lock(&c->mu);
  if (c->acked < next_seq - 1) c->acked = next_seq - 1;   /* nothing before the base is waited for */
  if (c->flushed < next_seq - 1) c->flushed = next_seq - 1;
  struct sync_waiter *woken = take_waiters(c, 0);
  pthread_mutex_unlock(&c->mu);
  post_waiters(woken);
  wake(c);
  return 0;
}

/* ---- waits (FUSE worker, after the group lock is let go) -------------------- */

int capture_sync(struct capture *c, uint64_t seq) {
  if (seq == 0) return 0;
  char msg[256] = "";
  int rc = journal_sync(c->j, seq, msg, sizeof msg);
  if (rc < 0) set_error(c, rc, msg);
  return rc;
}

int capture_durable(struct capture *c, uint64_t seq, int flushed) {
  if (seq == 0) return 0;
  int fell = 0;
  struct sync_waiter *woken = NULL;
  pthread_mutex_lock(&c->mu);
  if (c->sync_on && !c->fell_back && !c->closing && !covered(c, seq, flushed)) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += c->sync_timeout_ms / 1000;
    deadline.tv_nsec += (long)(c->sync_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
    struct sync_waiter w = { .seq = seq, .flushed = flushed };
    sem_init(&w.posted, 0, 0);
    c->sync_waiting++;
    while (c->sync_on && !c->fell_back && !c->closing && !covered(c, seq, flushed)) {
      w.taken = 0;
      w.next = c->sync_waiters;
      c->sync_waiters = &w;
      pthread_mutex_unlock(&c->mu);
      int timed_out = 0;
      while (sem_clockwait(&w.posted, CLOCK_MONOTONIC, &deadline) < 0) {
        if (errno != EINTR) { timed_out = 1; break; }   /* ETIMEDOUT (nothing else is possible here) */
      }
      pthread_mutex_lock(&c->mu);
      if (w.taken && timed_out) {
        /* Taken as the deadline passed: its post is on the way, and w must
         * outlive it. */
        pthread_mutex_unlock(&c->mu);
        while (sem_wait(&w.posted) < 0) {}
        pthread_mutex_lock(&c->mu);
      } else if (!w.taken) {
        struct sync_waiter **p = &c->sync_waiters;
        while (*p != &w) p = &(*p)->next;
        *p = w.next;
        if (c->sync_on && !c->fell_back && !c->closing && !covered(c, seq, flushed)) {
          /* The oldest waiter's deadline is the first to pass: everyone goes,
           * and nobody waits until JS turns sync mode on again. */
          c->fell_back = 1;
          c->sync_fallbacks++;
          woken = take_waiters(c, 1);
          fell = 1;
        }
      }
    }
    c->sync_waiting--;
    sem_destroy(&w.posted);
  }
  pthread_mutex_unlock(&c->mu);
  post_waiters(woken);
  if (fell) wake(c);
  return 0;
}

/* ---- modes (JS) ------------------------------------------------------------- */

void capture_ack(struct capture *c, uint64_t written, uint64_t flushed) {
  if (written < flushed) written = flushed;   /* on its disk is in its file too */
  struct sync_waiter *woken = NULL;
  pthread_mutex_lock(&c->mu);
  if (written > c->acked || flushed > c->flushed) {
    if (written > c->acked) c->acked = written;
    if (flushed > c->flushed) c->flushed = flushed;
    woken = take_waiters(c, 0);
  }
  pthread_mutex_unlock(&c->mu);
  post_waiters(woken);
}

void capture_set_sync(struct capture *c, int active) {
  pthread_mutex_lock(&c->mu);
  c->sync_on = active != 0;
  c->fell_back = 0;
  struct sync_waiter *woken = take_waiters(c, 1);
  pthread_mutex_unlock(&c->mu);
  post_waiters(woken);
}

void capture_set_window(struct capture *c, uint64_t records) {
  pthread_mutex_lock(&c->mu);
  c->window = records;
  struct sync_waiter *woken = take_waiters(c, 0);
  pthread_mutex_unlock(&c->mu);
  post_waiters(woken);
}

void capture_set_track(struct capture *c, int track) {
  struct sync_waiter *woken = NULL;
  pthread_mutex_lock(&c->mu);
  c->track = track != 0;
  if (c->track) __atomic_store_n(&c->fsync_backing, 1, __ATOMIC_RELEASE);
  if (c->track && c->sync_on && !c->fell_back) {
    /* Nothing tracked reaches the secondary until a resync: writes return
     * without it, which is a fallback to async, counted and said as one. */
    c->fell_back = 1;
    c->sync_fallbacks++;
    woken = take_waiters(c, 1);
  }
  pthread_mutex_unlock(&c->mu);
  post_waiters(woken);
}

void capture_set_fsync_backing(struct capture *c, int on) {
  pthread_mutex_lock(&c->mu);
  if (on || !c->track) __atomic_store_n(&c->fsync_backing, on != 0, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&c->mu);
}

int capture_fsync_backing(struct capture *c) {
  return __atomic_load_n(&c->fsync_backing, __ATOMIC_ACQUIRE);
}

int capture_take_tracked(struct capture *c, uint8_t **buf, size_t *len, uint32_t *count, uint64_t *token) {
  struct taken *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  struct jenc q;
  pthread_mutex_lock(&c->tq_mu);
  if (c->tq_count == 0) {
    pthread_mutex_unlock(&c->tq_mu);
    free(t);
    return 0;
  }
  q = c->tq;                            /* swap out: the copy below runs without the lock */
  jenc_init(&c->tq, 0);
  uint32_t n = c->tq_count;
  c->tq_count = 0;
  t->held = c->tq_held.v;
  t->n = c->tq_held.n;
  memset(&c->tq_held, 0, sizeof c->tq_held);
  t->token = c->next_token++;
  pthread_mutex_unlock(&c->tq_mu);

  uint8_t head[9];
  struct jenc h;
  jenc_init(&h, 0);
  jenc_array_start(&h, n);
  size_t hl = h.len;
  memcpy(head, h.buf, hl);
  jenc_free(&h);
  uint8_t *out = malloc(hl + q.len);
  if (!out) {   /* the records are lost to JS; their marks stay hot (a restart restates them) */
    jenc_free(&q);
    free(t->held);
    free(t);
    set_error(c, -ENOMEM, "cannot hand tracked records over: out of memory");
    return -ENOMEM;
  }
  memcpy(out, head, hl);
  memcpy(out + hl, q.buf, q.len);   /* by_ref 0: the pieces are buf, in order */
  *buf = out;
  *len = hl + q.len;
  jenc_free(&q);
  *count = n;
  *token = t->token;
  pthread_mutex_lock(&c->mu);
  t->next = c->taken;
  c->taken = t;
  pthread_mutex_unlock(&c->mu);
  return 1;
}

void capture_release_tracked(struct capture *c, uint64_t token) {
  pthread_mutex_lock(&c->mu);
  for (struct taken **pp = &c->taken; *pp; pp = &(*pp)->next) {
    struct taken *t = *pp;
    if (t->token != token) continue;
    *pp = t->next;
    if (held_push(&c->release_pending, t->held, t->n) == 0) {
      free(t->held);
      free(t);
    } else {
      t->next = c->taken;   /* out of memory: keep it; a later release retries */
      c->taken = t;
    }
    break;
  }
  pthread_mutex_unlock(&c->mu);
}
