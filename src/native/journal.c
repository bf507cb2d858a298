/* journal.c: the segment writer. Owns the segment files of one state
 * directory while the native core runs: appending frames (writev of header
 * and CBOR pieces, the write data by reference), rotation, the group commit
 * of fdatasync, and rebase. Encoding is journal_codec.c, the open-time scan
 * journal_scan.c.
 *
 * Threads (see journal.h): the append side (fd, cur segment, next_seq,
 * last_hash, the encoder) belongs to whoever holds the capture's group lock,
 * so it needs no lock of its own; `mu` guards what other threads see or
 * share: the published position and counters, the fds a sync covers, and
 * the sync state. `mu` is never held across I/O except close(2) of fds in
 * rebase/close, when no sync is running. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "end_mark.h"
#include "errmsg.h"
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RETIRING_MAX 64

/* Zeros written ahead of the current segment's end once an fsync record is
 * appended (prealloc). An fdatasync after an append that grows the file must
 * commit the new size (on ext4, a journal commit each time: ~0.5 ms here, twice
 * a plain data write's); appends into blocks already written and durable
 * change no metadata, so the fdatasyncs of the next ~50 small transactions cost
 * a data write each, and the first one after the zeros carries the commit.
 * Only fsyncs trigger it: a stream of appends never waited on writes no zeros. */
#define PREALLOC_BYTES (256 * 1024)
#define PREALLOC_LOW (64 * 1024)

struct journal {
  char *dir, *group;
  size_t group_len;
  uint64_t segment_bytes_max;
  void (*on_error)(void *ctx, int err, const char *msg);
  void *ctx;

  /* group-lock holder only */
  uint64_t next_seq;
  uint8_t last_hash[J_HASH_BYTES];
  int fd;                        /* current segment, -1: none open (also read by a sync, under mu) */
  uint64_t seg_first, seg_bytes; /* current (or, before the first append, the newest on disk) segment */
  uint64_t seg_zeroed;           /* the current segment's file size: seg_bytes, or past it the zeros of prealloc */
  int seg_known;                 /* seg_first/seg_bytes name an existing file */
  struct jenc enc;
  struct end_mark *mark;         /* NULL: none this run (see end_mark.h) */
  int drop_finished;             /* set at open (journal.h) */

  /* under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;             /* a sync finished */
  /* The retire thread has work (or must stop). Its own condition: woken by
   * every sync round's broadcast it cost each fsync a futex wake and a
   * wake-up of an idle vCPU for nothing (native-notes/performance.md 6). */
  pthread_cond_t retire_cv;
  struct journal_status pub;
  uint64_t appended;             /* last seq written */
  int retiring[RETIRING_MAX];
  int nretiring;
  int syncing;
  int sync_err;                  /* sticky: after a failed fdatasync nothing is promised any more */
  int stop;
  pthread_t retire_tid;
  int retire_started;
};

static void segment_path(const struct journal *j, uint64_t first, char *out, size_t n) {
  snprintf(out, n, "%s/%020" PRIu64 ".seg", j->dir, first);
}

static int sync_dir(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  int rc = fsync(dfd) < 0 ? -errno : 0;
  close(dfd);
  return rc;
}

/* ---- group commit of fdatasync ------------------------------------------- */

/* One round (mu held, no round running): fdatasyncs the retired segments
 * (then closes them) and the current one, for everything appended so far.
 * The fds stay open meanwhile: rotation only moves the current fd to the
 * retired list, and close/rebase wait for the round. */
static int sync_round_locked(struct journal *j) {
  j->syncing = 1;
  uint64_t upto = j->appended;
  int fds[RETIRING_MAX], nfds = j->nretiring;
  memcpy(fds, j->retiring, sizeof(int) * (size_t)nfds);
  j->nretiring = 0;
  int cur = j->fd;
  pthread_mutex_unlock(&j->mu);
  int e = 0;
  for (int i = 0; i < nfds; i++) {
    int synced = fdatasync(fds[i]) == 0;
    if (!synced && !e) e = -errno;
    /* A finished segment nobody reads back (no peer) would keep its pages
     * in the cache while new writes take fresh ones, which this VM's host
     * has taken back and charges ten times more to touch
     * (native-notes/performance.md 13, 16). Clean once synced: dropped. */
    if (synced && j->drop_finished) posix_fadvise(fds[i], 0, 0, POSIX_FADV_DONTNEED);
    close(fds[i]);
  }
  if (cur >= 0 && fdatasync(cur) < 0 && !e) e = -errno;
  pthread_mutex_lock(&j->mu);
  j->syncing = 0;
  if (e && !j->sync_err) j->sync_err = e;
  else if (!e && !j->sync_err && upto > j->pub.durable_seq) j->pub.durable_seq = upto;
  pthread_cond_broadcast(&j->cv);
  if (j->nretiring > 0) pthread_cond_signal(&j->retire_cv);   /* it waited for this round */
  return e;
}

/* Any thread. A caller that comes while a round runs waits for it, then
 * starts another if its seq is newer than what that round covered. */
int journal_sync(struct journal *j, uint64_t seq, char *err, size_t errlen) {
  int rc = 0;
  pthread_mutex_lock(&j->mu);
  if (seq > j->appended) seq = j->appended;
  while (j->pub.durable_seq < seq) {
    if (j->sync_err) { rc = j->sync_err; break; }
    if (j->syncing) { pthread_cond_wait(&j->cv, &j->mu); continue; }
    sync_round_locked(j);
  }
  pthread_mutex_unlock(&j->mu);
  if (rc < 0) fail(err, errlen, rc, "journal fdatasync in %s failed: %s", j->dir, strerror(-rc));
  return rc;
}

/* The retire thread: finished segments reach the disk in the background,
 * each rotation's fd synced and closed by the next round. */
static void *retire_main(void *arg) {
  struct journal *j = arg;
  pthread_mutex_lock(&j->mu);
  for (;;) {
    while (!j->stop && (j->nretiring == 0 || j->syncing)) pthread_cond_wait(&j->retire_cv, &j->mu);
    if (j->stop) break;
    int had = j->sync_err;
    int e = sync_round_locked(j);
    if (e && !had && j->on_error) {
      char msg[256];
      snprintf(msg, sizeof msg, "journal fdatasync in %s failed: %s", j->dir, strerror(-e));
      pthread_mutex_unlock(&j->mu);
      j->on_error(j->ctx, e, msg);
      pthread_mutex_lock(&j->mu);
    }
  }
  pthread_mutex_unlock(&j->mu);
  return NULL;
}

/* ---- open / close -------------------------------------------------------- */

int journal_scan_newest(const char *dir, uint64_t *first, uint64_t *bytes);   /* journal_scan.c */

int journal_open(const struct journal_config *cfg, struct journal **out, char *err, size_t errlen) {
  int rc = cfg->verify_at
    ? journal_verify_at(cfg->dir, cfg->group, cfg->verify_first, cfg->verify_offset, cfg->next_seq, cfg->last_hash, err, errlen)
    : journal_verify(cfg->dir, cfg->group, cfg->next_seq, cfg->last_hash, err, errlen);
  if (rc < 0) return rc;
  struct journal *j = calloc(1, sizeof *j);
  if (!j) return fail(err, errlen, -ENOMEM, "out of memory");
  j->fd = -1;
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  pthread_cond_init(&j->retire_cv, NULL);
  jenc_init(&j->enc, 1);
  j->dir = strdup(cfg->dir);
  j->group = strdup(cfg->group);
  if (!j->dir || !j->group) { journal_close(j); return fail(err, errlen, -ENOMEM, "out of memory"); }
  j->group_len = strlen(cfg->group);
  j->segment_bytes_max = cfg->segment_bytes ? cfg->segment_bytes : 64u << 20;
  j->on_error = cfg->on_error;
  j->drop_finished = cfg->drop_finished;
  j->ctx = cfg->ctx;
  j->next_seq = cfg->next_seq;
  memcpy(j->last_hash, cfg->last_hash, J_HASH_BYTES);
  /* The first append continues the newest segment if it has room (as the
   * TS Journal does); make what is in it durable now, so durable_seq starts
   * true. An empty newest segment named for another sequence holds nothing:
   * it goes, so the names keep telling where each segment starts. */
  uint64_t first = 0, bytes = 0;
  rc = journal_scan_newest(j->dir, &first, &bytes);
  if (rc > 0) {
    char path[PATH_MAX];
    segment_path(j, first, path, sizeof path);
    if (bytes == 0 && first != j->next_seq) {
      unlink(path);
    } else {
      j->seg_known = 1;
      j->seg_first = first;
      j->seg_bytes = bytes;
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || fdatasync(fd) < 0) {
        rc = -errno;
        if (fd >= 0) close(fd);
        journal_close(j);
        return fail(err, errlen, rc, "cannot sync %s: %s", path, strerror(-rc));
      }
      close(fd);
    }
  } else if (rc < 0) {
    journal_close(j);
    return fail(err, errlen, rc, "cannot list %s: %s", cfg->dir, strerror(-rc));
  }
  if (cfg->boot_id) {
    rc = end_mark_open(j->dir, cfg->boot_id, j->seg_known ? j->seg_first : 0, j->next_seq - 1, &j->mark, err, errlen);
    /* A state directory too full for the mark's one block goes without it
     * (its next start cannot tell a truncated tail from a torn one). */
    if (rc < 0 && rc != -ENOSPC && rc != -EDQUOT) { journal_close(j); return rc; }
  }
  j->appended = j->next_seq - 1;
  j->pub.next_seq = j->next_seq;
  j->pub.durable_seq = j->next_seq - 1;
  memcpy(j->pub.last_hash, j->last_hash, J_HASH_BYTES);
  j->pub.segment_first = j->seg_known ? j->seg_first : 0;
  j->pub.segment_bytes = j->seg_known ? j->seg_bytes : 0;
  if (pthread_create(&j->retire_tid, NULL, retire_main, j) != 0) {
    journal_close(j);
    return fail(err, errlen, -EAGAIN, "cannot start the journal's retire thread");
  }
  j->retire_started = 1;
  *out = j;
  return 0;
}

/* Waits out a running sync and closes every fd (mu held). */
static void close_fds_locked(struct journal *j) {
  while (j->syncing) pthread_cond_wait(&j->cv, &j->mu);
  for (int i = 0; i < j->nretiring; i++) close(j->retiring[i]);
  j->nretiring = 0;
  if (j->fd >= 0) close(j->fd);
  j->fd = -1;
}

void journal_close(struct journal *j) {
  if (!j) return;
  if (j->fd >= 0 && j->seg_zeroed > j->seg_bytes && ftruncate(j->fd, (off_t)j->seg_bytes) == 0)
    j->seg_zeroed = j->seg_bytes;   /* a clean stop leaves no zeros (a failed cut: readers stop at them) */
  if (j->retire_started) {
    char msg[256];
    journal_sync(j, UINT64_MAX, msg, sizeof msg);   /* errors were reported as they came */
    pthread_mutex_lock(&j->mu);
    j->stop = 1;
    pthread_cond_signal(&j->retire_cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->retire_tid, NULL);
  }
  pthread_mutex_lock(&j->mu);
  close_fds_locked(j);
  pthread_mutex_unlock(&j->mu);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  pthread_cond_destroy(&j->retire_cv);
  jenc_free(&j->enc);
  end_mark_close(j->mark);
  free(j->dir);
  free(j->group);
  free(j);
}

/* ---- append (group-lock holder) ------------------------------------------ */

/* Opens the segment the batch starting at `seq` goes to: the newest one if
 * it has room, else a new one named by seq. The finished one's fd goes to
 * the retire thread. */
static int rotate(struct journal *j, uint64_t seq, char *err, size_t errlen) {
  int old = j->fd;
  /* The finished segment ends at its last frame. The cut is in the
   * filesystem's metadata before the next segment's name (sync_dir below
   * commits both on ext4), so a crash never leaves zeros inside the journal;
   * its retire round makes it durable in any case. */
  if (old >= 0 && j->seg_zeroed > j->seg_bytes) {
    if (ftruncate(old, (off_t)j->seg_bytes) < 0)
      return fail(err, errlen, -errno, "cannot cut segment %020" PRIu64 ".seg at its end: %s", j->seg_first, strerror(errno));
    j->seg_zeroed = j->seg_bytes;
  }
  if (old >= 0) {
    pthread_mutex_lock(&j->mu);
    while (j->nretiring == RETIRING_MAX) {   /* the disk is far behind the retire thread: help */
      if (j->syncing) pthread_cond_wait(&j->cv, &j->mu);
      else sync_round_locked(j);
    }
    j->retiring[j->nretiring++] = old;
    j->fd = -1;
    pthread_cond_signal(&j->retire_cv);
    pthread_mutex_unlock(&j->mu);
  }
  int reuse = old < 0 && j->seg_known && j->seg_bytes < j->segment_bytes_max;
  uint64_t first = reuse ? j->seg_first : seq;
  char path[PATH_MAX];
  segment_path(j, first, path, sizeof path);
  int created = 1;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    created = 0;
    fd = open(path, O_WRONLY | O_CLOEXEC);
  }
  if (fd < 0) return fail(err, errlen, -errno, "cannot open segment %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int rc = -errno;
    close(fd);
    return fail(err, errlen, rc, "cannot stat segment %s: %s", path, strerror(-rc));
  }
  if (created) {
    int rc = sync_dir(j->dir);   /* the new name must survive a crash too */
    if (rc < 0) {
      close(fd);
      unlink(path);
      return fail(err, errlen, rc, "cannot sync directory %s: %s", j->dir, strerror(-rc));
    }
  }
  j->seg_known = 1;
  j->seg_first = first;
  j->seg_bytes = j->seg_zeroed = (uint64_t)st.st_size;
  end_mark_segment(j->mark, first);
  pthread_mutex_lock(&j->mu);
  j->fd = fd;
  j->pub.segment_first = first;
  j->pub.segment_bytes = j->seg_bytes;
  pthread_mutex_unlock(&j->mu);
  return 0;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Frames and writes what j->enc holds (a whole batch payload). */
static int write_batch(struct journal *j, uint64_t seq, uint32_t count, uint64_t data_bytes, char *err, size_t errlen) {
  if (j->enc.err) return fail(err, errlen, j->enc.err, "cannot encode the batch: out of memory");
  size_t len = jenc_size(&j->enc);
  if (len > J_FRAME_BYTES_MAX)
    return fail(err, errlen, -E2BIG, "batch at sequence %" PRIu64 " is %zu bytes, over the frame limit of %u", seq, len, J_FRAME_BYTES_MAX);
  pthread_mutex_lock(&j->mu);
  int sticky = j->sync_err;
  pthread_mutex_unlock(&j->mu);
  if (sticky) return fail(err, errlen, sticky, "the journal's fdatasync failed earlier (%s): nothing more is appended", strerror(-sticky));

  uint8_t hash[J_HASH_BYTES];
  j_chain_hash(&j->enc, hash);
  uint32_t crc = jenc_crc32c(&j->enc);
  uint8_t hdr[J_FRAME_HEADER_BYTES] = {
    (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
    (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc,
  };
  struct iovec iov[JENC_PIECES_MAX + 2];
  iov[0].iov_base = hdr;
  iov[0].iov_len = sizeof hdr;
  int n = 1 + jenc_iov(&j->enc, iov + 1, JENC_PIECES_MAX + 1);

  if (j->fd < 0 || j->seg_bytes >= j->segment_bytes_max) {
    int rc = rotate(j, seq, err, errlen);
    if (rc < 0) return rc;
  }
  size_t total = sizeof hdr + len, done = 0;
  struct iovec *v = iov;
  while (done < total) {
    ssize_t w = pwritev(j->fd, v, n, (off_t)(j->seg_bytes + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int rc = w < 0 ? -errno : -ENOSPC;
      /* Leave no half frame behind: the next append goes where this one began. */
      if (done > 0 && ftruncate(j->fd, (off_t)j->seg_bytes) < 0) {
        return fail(err, errlen, rc, "journal write to segment %020" PRIu64 " failed (%s) and could not be cut back (%s)",
                    j->seg_first, strerror(-rc), strerror(errno));
      }
      if (done > 0) j->seg_zeroed = j->seg_bytes;
      return fail(err, errlen, rc, "journal write to segment %020" PRIu64 ".seg failed after %zu of %zu bytes: %s",
                  j->seg_first, done, total, strerror(-rc));
    }
    done += (size_t)w;
    while (n > 0 && (size_t)w >= v->iov_len) { w -= (ssize_t)v->iov_len; v++; n--; }
    if (n > 0) { v->iov_base = (uint8_t *)v->iov_base + w; v->iov_len -= (size_t)w; }
  }
  j->seg_bytes += total;
  if (j->seg_zeroed < j->seg_bytes) j->seg_zeroed = j->seg_bytes;
  j->next_seq = seq + count;
  end_mark_seq(j->mark, j->next_seq - 1);
  memcpy(j->last_hash, hash, J_HASH_BYTES);
  pthread_mutex_lock(&j->mu);
  j->appended = j->next_seq - 1;
  j->pub.next_seq = j->next_seq;
  memcpy(j->pub.last_hash, hash, J_HASH_BYTES);
  j->pub.segment_bytes = j->seg_bytes;
  j->pub.batches++;
  j->pub.records += count;
  j->pub.data_bytes += data_bytes;
  j->pub.bytes_written += total;
  pthread_mutex_unlock(&j->mu);
  return 0;
}

/* Zeros ahead of the segment's end (PREALLOC_BYTES), when fewer than
 * PREALLOC_LOW are left; never past the segment's size limit. Best effort: a
 * failed or short write leaves fewer zeros, which only costs speed (readers
 * stop at the published end, the open-time recovery cuts zeros silently). */
static void prealloc(struct journal *j) {
  static const uint8_t zeros[64 * 1024];
  if (j->fd < 0 || j->seg_zeroed >= j->seg_bytes + PREALLOC_LOW) return;
  uint64_t end = j->seg_bytes + PREALLOC_BYTES;
  if (end > j->segment_bytes_max) end = j->segment_bytes_max;
  while (j->seg_zeroed < end) {
    size_t n = end - j->seg_zeroed < sizeof zeros ? (size_t)(end - j->seg_zeroed) : sizeof zeros;
    ssize_t w = pwrite(j->fd, zeros, n, (off_t)j->seg_zeroed);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    j->seg_zeroed += (uint64_t)w;
  }
}

int journal_append(struct journal *j, const struct rec *recs, int nrec, int sync,
                   uint64_t *first, char *err, size_t errlen) {
  if (nrec <= 0 || nrec > J_BATCH_RECORDS_MAX) return fail(err, errlen, -EINVAL, "a batch holds 1..%d records, not %d", J_BATCH_RECORDS_MAX, nrec);
  uint64_t data = 0;
  for (int i = 0; i < nrec; i++) {
    int rc = jrec_check(&recs[i]);
    if (rc < 0) return fail(err, errlen, rc, "record %d of a batch is out of bounds (kind %d, path of %zu bytes)", i, (int)recs[i].kind, recs[i].path_len);
    if (recs[i].kind == REC_WRITE) data += recs[i].data_len;
  }
  jenc_reset(&j->enc);
  jenc_batch_head(&j->enc, j->group, j->group_len, j->next_seq, j->last_hash, now_ms(), sync);
  jenc_array_start(&j->enc, (size_t)nrec);
  for (int i = 0; i < nrec; i++) jenc_record(&j->enc, &recs[i]);
  uint64_t seq = j->next_seq;
  int rc = write_batch(j, seq, (uint32_t)nrec, data, err, errlen);
  if (rc == 0) *first = seq;
  if (rc == 0 && recs[nrec - 1].kind == REC_FSYNC) prealloc(j);   /* a sync follows, and more will */
  return rc;
}

/* The array header of an encoded records array: its item count, or -1. */
static int64_t array_count(const uint8_t *p, size_t len) {
  if (len < 1 || (p[0] >> 5) != 4) return -1;
  uint8_t ai = p[0] & 31;
  if (ai < 24) return ai;
  size_t n = ai == 24 ? 1 : ai == 25 ? 2 : ai == 26 ? 4 : ai == 27 ? 8 : 0;
  if (!n || len < 1 + n) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = v << 8 | p[1 + i];
  return v > INT64_MAX ? -1 : (int64_t)v;
}

int journal_append_encoded(struct journal *j, const uint8_t *arr, size_t len, uint32_t count, int sync,
                           uint64_t *first, char *err, size_t errlen) {
  if (count == 0 || count > J_BATCH_RECORDS_MAX) return fail(err, errlen, -EINVAL, "a batch holds 1..%d records, not %u", J_BATCH_RECORDS_MAX, count);
  if (array_count(arr, len) != (int64_t)count)
    return fail(err, errlen, -EINVAL, "encoded records are not a CBOR array of %u items", count);
  jenc_reset(&j->enc);
  jenc_batch_head(&j->enc, j->group, j->group_len, j->next_seq, j->last_hash, now_ms(), sync);
  jenc_verbatim(&j->enc, arr, len);
  uint64_t seq = j->next_seq;
  int rc = write_batch(j, seq, count, 0, err, errlen);
  if (rc == 0) *first = seq;
  return rc;
}

/* ---- rebase (group-lock holder) ----------------------------------------- */

int journal_rebase(struct journal *j, uint64_t next_seq, const uint8_t prev[J_HASH_BYTES], char *err, size_t errlen) {
  int rc = journal_sync(j, UINT64_MAX, err, errlen);
  if (rc < 0) return rc;
  pthread_mutex_lock(&j->mu);
  close_fds_locked(j);
  pthread_mutex_unlock(&j->mu);
  DIR *d = opendir(j->dir);
  if (!d) return fail(err, errlen, -errno, "cannot list %s: %s", j->dir, strerror(errno));
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n != 24 || strcmp(de->d_name + 20, ".seg") != 0 || strspn(de->d_name, "0123456789") != 20) continue;
    if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && !rc)
      rc = fail(err, errlen, -errno, "cannot remove %s/%s: %s", j->dir, de->d_name, strerror(errno));
  }
  closedir(d);
  if (rc < 0) return rc;
  rc = sync_dir(j->dir);
  if (rc < 0) return fail(err, errlen, rc, "cannot sync directory %s: %s", j->dir, strerror(-rc));
  j->seg_known = 0;
  j->seg_first = j->seg_bytes = j->seg_zeroed = 0;
  /* No claim until the next append: the TS side records the new base in
   * its checkpoint after this returns. */
  end_mark_segment(j->mark, 0);
  end_mark_seq(j->mark, 0);
  j->next_seq = next_seq;
  memcpy(j->last_hash, prev, J_HASH_BYTES);
  pthread_mutex_lock(&j->mu);
  j->appended = next_seq - 1;
  j->pub.next_seq = next_seq;
  j->pub.durable_seq = next_seq - 1;   /* nothing past the base is stored */
  memcpy(j->pub.last_hash, prev, J_HASH_BYTES);
  j->pub.segment_first = 0;
  j->pub.segment_bytes = 0;
  pthread_mutex_unlock(&j->mu);
  return 0;
}

void journal_status(struct journal *j, struct journal_status *out) {
  pthread_mutex_lock(&j->mu);
  *out = j->pub;
  pthread_mutex_unlock(&j->mu);
}
