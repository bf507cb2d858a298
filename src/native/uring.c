/* uring.c: the --io-uring transport: FUSE over io_uring (Linux 6.14+, FUSE
 * 7.42, module parameter fuse.enable_uring).
 *
 * Owns: one queue per possible CPU (the kernel puts a request on the queue of
 * the CPU its caller runs on, qid = cpu), served by cfg.threads threads (1 by
 * default), each pinned to the queue's CPU with its own io_uring (SQE128: the
 * command sits in the SQE's 80-byte area) and one entry: the kernel hands a
 * request to any free entry of the queue, so an entry is free only while its
 * thread is idle, and a handler that blocks (a sync-mode write waiting for
 * the secondary) holds up no other request. An entry is a
 * header buffer (struct fuse_uring_req_header: in/out header, the op's first
 * argument, commit id and payload size) and a payload buffer (the rest of the
 * request, then the reply's payload). A CQE hands us a request in an entry;
 * the reply is written into the same buffers and sent with COMMIT_AND_FETCH,
 * which also re-arms the entry for the next request: one system call per
 * request instead of a read and a writev.
 *
 * The request is rebuilt as /dev/fuse would deliver it: the op's header is
 * copied just before the payload (the buffer keeps room for it), so the ops
 * see one contiguous body and the payload (write data) is not copied.
 *
 * Not on the ring (the kernel keeps them on /dev/fuse, read by session.c's
 * one remaining reader): INIT, FORGET/BATCH_FORGET, INTERRUPT, notifications
 * (notify_inval_attr writes them to /dev/fuse), and any request sent before
 * every queue has an entry.
 *
 * Threads: uring_enable_param, uring_start, uring_join, uring_free run on the
 * starting thread; ring_thread and everything it calls (the ops, capture,
 * journal append, uring_put_reply) on a queue's thread. */
#define _GNU_SOURCE
#include "uring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"
#include "fuse_uring_abi.h"
#include "session.h"

#define ENABLE_PARAM "/sys/module/fuse/parameters/enable_uring"
#define CPU_POSSIBLE "/sys/devices/system/cpu/possible"
#define RING_DEPTH 1          /* entries per thread: COMMIT_AND_FETCH already takes the next request */
#define QUEUES_MAX 1024
#define START_WAIT_S 10
#define STOP_POLL_MS 1000     /* a thread waiting for a CQE looks at u->stopping this often */

struct uring_q;

struct uring_ent {
  struct uring_q *q;
  struct fuse_uring_req_header hdr;   /* iov[0]: the kernel writes it with each request */
  char *buf;                          /* op-header room, then the payload (iov[1]) */
  char *payload;
  struct iovec iov[2];
  struct fuse_in_header ih;           /* the request's header, kept: the reply overwrites hdr */
  uint64_t commit_id;
  int has_reply, dead;
};

struct uring_q {                      /* one thread: its ring and entries, on queue qid */
  struct uring *u;
  int qid, started, live;
  pthread_t tid;
  struct io_uring ring;
  struct uring_ent ents[RING_DEPTH];
  char *out;                          /* the ops' reply buffer (req.out) */
};

struct uring {
  struct session *s;
  int nq, per;                        /* queues (CPUs), threads per queue */
  size_t paysz;
  struct uring_q *qs;
  pthread_mutex_t mu;                 /* guards the start report below */
  pthread_cond_t cv;
  int nready, nfailed;
  char err[256];
  int stopping;                       /* atomic: the connection is gone, end even with live entries */
};

/* ---------- the module parameter (starting thread) ---------- */

static int read_param(char *c) {
  int fd = open(ENABLE_PARAM, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, c, 1);
  close(fd);
  return n == 1 ? 0 : -EIO;
}

int uring_enable_param(char *err, size_t errlen) {
  char c = 0;
  int rc = read_param(&c);
  if (rc == -ENOENT)
    return fail(err, errlen, -EOPNOTSUPP, "--io-uring: this kernel has no FUSE over io_uring (no %s; it needs Linux 6.14+)",
               ENABLE_PARAM);
  if (rc) return fail(err, errlen, rc, "--io-uring: read %s: %s", ENABLE_PARAM, strerror(-rc));
  if (c == 'Y' || c == '1') return 0;
  int fd = open(ENABLE_PARAM, O_WRONLY | O_CLOEXEC);
  int e = fd < 0 ? errno : 0;
  if (fd >= 0) {
    if (write(fd, "Y", 1) != 1) e = errno;
    close(fd);
  }
  if (!e && read_param(&c) == 0 && (c == 'Y' || c == '1')) return 0;
  return fail(err, errlen, -EPERM, "--io-uring: FUSE over io_uring is off and could not be turned on (%s); as root: "
             "echo Y > %s", strerror(e ? e : EPERM), ENABLE_PARAM);
}

/* Queues = the highest possible CPU + 1 (the kernel's num_possible_cpus(),
 * contiguous here). */
static int possible_cpus(void) {
  FILE *f = fopen(CPU_POSSIBLE, "re");
  if (!f) return (int)sysconf(_SC_NPROCESSORS_CONF);
  char line[256];
  int hi = -1;
  if (fgets(line, sizeof line, f)) {
    /* "0-1", "0-3,5": the largest number listed */
    for (char *p = line; *p;) {
      if (*p < '0' || *p > '9') { p++; continue; }
      char *end;
      long v = strtol(p, &end, 10);
      if (v > hi) hi = (int)v;
      p = end;
    }
  }
  fclose(f);
  return hi >= 0 ? hi + 1 : (int)sysconf(_SC_NPROCESSORS_CONF);
}

/* ---------- requests (queue thread) ---------- */

/* The size of the op's first argument, which the kernel puts in op_in (the
 * kernel's in_args[0]; 0 where it has none, e.g. LOOKUP: the name is all
 * payload). Ours are the op table's header sizes; SETXATTR is the 8-byte
 * compat header (no SETXATTR_EXT), as on /dev/fuse. */
static size_t op_in_size(uint32_t opcode) {
  switch (opcode) {
  case FUSE_SETXATTR: return FUSE_COMPAT_SETXATTR_IN_SIZE;
  case FUSE_LOOKUP: case FUSE_READLINK: case FUSE_SYMLINK: case FUSE_UNLINK: case FUSE_RMDIR:
  case FUSE_STATFS: case FUSE_REMOVEXATTR:
    return 0;
  case FUSE_GETLK: case FUSE_SETLK: case FUSE_SETLKW: return sizeof(struct fuse_lk_in);
  case FUSE_IOCTL: return sizeof(struct fuse_ioctl_in);
  case FUSE_POLL: return sizeof(struct fuse_poll_in);
  case FUSE_BMAP: return sizeof(struct fuse_bmap_in);
  case FUSE_COPY_FILE_RANGE: return sizeof(struct fuse_copy_file_range_in);
  case FUSE_SYNCFS: return sizeof(struct fuse_syncfs_in);
  case FUSE_TMPFILE: return sizeof(struct fuse_create_in);
  default:
    return opcode < (uint32_t)op_table_len ? op_table[opcode].min_in : 0;
  }
}

void uring_put_reply(struct req *r, int err, const struct iovec *payload, int n) {
  struct uring_ent *e = r->ent;
  size_t off = 0;
  for (int k = 0; !err && k < n; k++) {
    if (payload[k].iov_len > e->q->u->paysz - off) { err = EIO; break; }   /* cannot happen: sizes are bounded by the request */
    memmove(e->payload + off, payload[k].iov_base, payload[k].iov_len);
    off += payload[k].iov_len;
  }
  if (err) off = 0;
  struct fuse_out_header oh = { .len = (uint32_t)(sizeof oh + off), .error = -err, .unique = r->h->unique };
  memcpy(e->hdr.in_out, &oh, sizeof oh);
  e->hdr.ring_ent_in_out.payload_sz = (uint32_t)off;
  e->has_reply = 1;
}

static void prep_cmd(struct io_uring_sqe *sqe, int fd, uint32_t cmd_op, struct uring_ent *e) {
  memset(sqe, 0, 2 * sizeof *sqe);               /* SQE128: two slots' worth */
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = cmd_op;
  sqe->addr = (uint64_t)(uintptr_t)e->iov;
  sqe->len = 2;
  sqe->user_data = (uint64_t)(uintptr_t)e;
  struct fuse_uring_cmd_req *c = (void *)sqe->cmd;
  c->qid = (uint16_t)e->q->qid;
  c->commit_id = cmd_op == FUSE_IO_URING_CMD_COMMIT_AND_FETCH ? e->commit_id : 0;
}

/* One request from a CQE: rebuild, dispatch, queue its commit. */
static int serve_ent(struct uring_q *q, struct uring_ent *e) {
  struct session *s = q->u->s;
  memcpy(&e->ih, e->hdr.in_out, sizeof e->ih);
  e->commit_id = e->hdr.ring_ent_in_out.commit_id;
  uint32_t psz = e->hdr.ring_ent_in_out.payload_sz;
  size_t opsz = op_in_size(e->ih.opcode);
  struct req r = { .s = s, .fd = s->fd, .h = &e->ih, .out = q->out, .replied = 0, .ent = e };
  e->has_reply = 0;
  if (psz > q->u->paysz || opsz > FUSE_URING_OP_IN_OUT_SZ) {
    reply_err(&r, EIO);
  } else {
    memcpy(e->payload - opsz, e->hdr.op_in, opsz);
    /* as /dev/fuse gives it (the kernel leaves len unset on some ring requests) */
    e->ih.len = (uint32_t)(sizeof e->ih + opsz + psz);
    r.in = e->payload - opsz;
    r.inlen = opsz + psz;
    session_dispatch(&r);
  }
  if (!e->has_reply) { r.replied = 0; reply_err(&r, EIO); }   /* every ring request is answered */
  struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
  if (!sqe) return -EBUSY;                       /* cannot happen: the SQ holds 2x the entries */
  prep_cmd(sqe, s->fd, FUSE_IO_URING_CMD_COMMIT_AND_FETCH, e);
  return 0;
}

static void serve(struct uring_q *q) {
  struct session *s = q->u->s;
  while (q->live > 0 && !__atomic_load_n(&q->u->stopping, __ATOMIC_RELAXED)) {
    /* the unmount ends every entry with ENOTCONN; the timeout is for the
     * case it does not (uring_join after an abort) */
    struct __kernel_timespec ts = { .tv_sec = STOP_POLL_MS / 1000, .tv_nsec = (STOP_POLL_MS % 1000) * 1000000L };
    struct io_uring_cqe *first;
    int rc = io_uring_submit_and_wait_timeout(&q->ring, &first, 1, &ts, NULL);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME) {
      fprintf(stderr, "replfs: ring %d: io_uring_enter: %s\n", q->qid, strerror(-rc));
      break;
    }
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&q->ring, head, cqe) {
      seen++;
      struct uring_ent *e = io_uring_cqe_get_data(cqe);
      if (cqe->res < 0) {
        /* ENOTCONN/ECANCELED: unmounted or aborted; anything else is a bug here */
        if (cqe->res != -ENOTCONN && cqe->res != -ECANCELED && cqe->res != -ECONNABORTED)
          fprintf(stderr, "replfs: ring %d entry: %s\n", q->qid, strerror(-cqe->res));
        if (!e->dead) { e->dead = 1; q->live--; }
        continue;
      }
      if (serve_ent(q, e) < 0) {
        fprintf(stderr, "replfs: ring %d: submission queue full\n", q->qid);
        if (!e->dead) { e->dead = 1; q->live--; }
      }
    }
    io_uring_cq_advance(&q->ring, seen);
  }
  if (s->cfg.debug) fprintf(stderr, "replfs: ring %d ends\n", q->qid);
}

/* ---------- queue threads: setup and report (queue thread) ---------- */

static void report(struct uring *u, int ok, const char *msg) {
  pthread_mutex_lock(&u->mu);
  if (ok) u->nready++;
  else {
    if (!u->nfailed) snprintf(u->err, sizeof u->err, "%s", msg);
    u->nfailed++;
  }
  pthread_cond_broadcast(&u->cv);
  pthread_mutex_unlock(&u->mu);
}

/* The ring (only this thread submits: SINGLE_ISSUER, and task work runs when
 * it waits: DEFER_TASKRUN; older flags as a fallback) and the entries. */
static int ring_setup(struct uring_q *q, char *msg, size_t msglen) {
  struct session *s = q->u->s;
  unsigned flag_sets[] = { IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                           IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN, IORING_SETUP_SQE128 };
  int rc = -EINVAL;
  for (size_t k = 0; k < sizeof flag_sets / sizeof flag_sets[0]; k++) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = flag_sets[k];
    if ((rc = io_uring_queue_init_params(2 * RING_DEPTH, &q->ring, &p)) == 0) break;
  }
  if (rc) return fail(msg, msglen, rc, "io_uring_setup: %s", strerror(-rc));
  for (int k = 0; k < RING_DEPTH; k++) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
    if (!sqe) { io_uring_queue_exit(&q->ring); return fail(msg, msglen, -EBUSY, "submission queue full"); }
    prep_cmd(sqe, s->fd, FUSE_IO_URING_CMD_REGISTER, &q->ents[k]);
  }
  rc = io_uring_submit(&q->ring);
  if (rc < 0) { io_uring_queue_exit(&q->ring); return fail(msg, msglen, rc, "io_uring_enter: %s", strerror(-rc)); }
  /* REGISTER is answered only with a request; a refusal comes at once */
  struct io_uring_cqe *cqe;
  if (io_uring_peek_cqe(&q->ring, &cqe) == 0 && cqe->res < 0) {
    rc = cqe->res;
    io_uring_queue_exit(&q->ring);
    return fail(msg, msglen, rc, "FUSE_IO_URING_CMD_REGISTER on queue %d: %s", q->qid, strerror(-rc));
  }
  q->live = RING_DEPTH;
  return 0;
}

static void *ring_thread(void *arg) {
  struct uring_q *q = arg;
  char nm[16];
  snprintf(nm, sizeof nm, "replfs-ring%d.%d", q->qid, (int)(q - q->u->qs) / q->u->nq);
  session_thread_setup(nm);
  /* on its queue's CPU: the caller that queued the request just blocked there */
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(q->qid, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);   /* best effort */
  char msg[200];
  int rc = ring_setup(q, msg, sizeof msg);
  report(q->u, rc == 0, msg);
  if (rc) return NULL;
  serve(q);
  io_uring_queue_exit(&q->ring);
  return NULL;
}

/* ---------- start, join, free (starting thread) ---------- */

int uring_start(struct session *s, char *err, size_t errlen) {
  int nq = possible_cpus();
  if (nq < 1 || nq > QUEUES_MAX) return fail(err, errlen, -EINVAL, "--io-uring: %d possible CPUs", nq);
  struct uring *u = calloc(1, sizeof *u);
  if (!u) return fail(err, errlen, -ENOMEM, "out of memory");
  s->ur = u;
  u->s = s;
  u->nq = nq;
  u->per = s->cfg.threads > 0 ? s->cfg.threads : 1;
  if (u->per > 16) u->per = 16;
  int nt = nq * u->per;
  u->paysz = s->bufsize;              /* >= max_write: the kernel's least payload size */
  pthread_mutex_init(&u->mu, NULL);
  pthread_cond_init(&u->cv, NULL);
  if (!(u->qs = calloc((size_t)nt, sizeof *u->qs))) return fail(err, errlen, -ENOMEM, "out of memory");
  for (int k = 0; k < nt; k++) {
    struct uring_q *q = &u->qs[k];
    q->u = u;
    q->qid = k % nq;
    if (!(q->out = malloc(s->bufsize))) return fail(err, errlen, -ENOMEM, "out of memory");
    for (int j = 0; j < RING_DEPTH; j++) {
      struct uring_ent *e = &q->ents[j];
      e->q = q;
      if (!(e->buf = aligned_alloc(4096, 4096 + ((u->paysz + 4095) & ~(size_t)4095))))
        return fail(err, errlen, -ENOMEM, "out of memory");
      e->payload = e->buf + 4096;     /* page-aligned payload, op-header room before it */
      e->iov[0] = (struct iovec){ &e->hdr, sizeof e->hdr };
      e->iov[1] = (struct iovec){ e->payload, u->paysz };
    }
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);     /* queue threads take no signals */
  int rc = 0;
  for (int k = 0; k < nt; k++) {
    int e = pthread_create(&u->qs[k].tid, NULL, ring_thread, &u->qs[k]);
    if (e) { rc = fail(err, errlen, -e, "pthread_create: %s", strerror(e)); break; }
    u->qs[k].started = 1;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc) return rc;
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += START_WAIT_S;
  pthread_mutex_lock(&u->mu);
  while (u->nready + u->nfailed < nt && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&u->cv, &u->mu, &dl);
  int ready = u->nready, failed = u->nfailed;
  pthread_mutex_unlock(&u->mu);
  if (failed) return fail(err, errlen, -EIO, "--io-uring: %s", u->err);
  if (ready < nt) return fail(err, errlen, -ETIMEDOUT, "--io-uring: %d of %d ring threads ready after %d s", ready, nt, START_WAIT_S);
  if (s->cfg.debug) fprintf(stderr, "replfs: io_uring: %d queues x %d threads, payload %zu bytes\n", nq, u->per, u->paysz);
  return 0;
}

int uring_join(struct session *s, const struct timespec *deadline) {
  struct uring *u = s->ur;
  int left = 0;
  if (u && !deadline) __atomic_store_n(&u->stopping, 1, __ATOMIC_RELAXED);
  for (int k = 0; u && u->qs && k < u->nq * u->per; k++) {
    struct uring_q *q = &u->qs[k];
    if (!q->started) continue;
    if ((deadline ? pthread_timedjoin_np(q->tid, NULL, deadline) : pthread_join(q->tid, NULL)) == 0) q->started = 0;
    else left++;
  }
  return left;
}

void uring_free(struct session *s) {
  struct uring *u = s->ur;
  if (!u) return;
  for (int k = 0; u->qs && k < u->nq * u->per; k++) {
    free(u->qs[k].out);
    for (int j = 0; j < RING_DEPTH; j++) free(u->qs[k].ents[j].buf);
  }
  free(u->qs);
  pthread_mutex_destroy(&u->mu);
  pthread_cond_destroy(&u->cv);
  free(u);
  s->ur = NULL;
}
