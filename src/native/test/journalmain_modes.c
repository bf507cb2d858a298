/* journalmain_modes.c: the harness's sync, track and bench subcommands
 * (see journalmain.c). Each checks itself (CHECK) and prints what the JS
 * test reads back. Threads: main() plus short-lived waiter threads standing
 * in for FUSE workers in capture_durable. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "../capture.h"
#include "../journal.h"
#include "journalmain.h"

static void sleep_ms(int ms) {
  struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
  nanosleep(&t, NULL);
}

/* Whether the main thread's last op() was appended as a sync-mode batch. */
static int op_sync;

/* One op as ops.c does it: lock, mark, append, unlock. Returns its last seq. */
static uint64_t op(struct capture *c, const struct rec *r, int nrec, const struct hot *m, int nm) {
  uint64_t seq = 0;
  capture_lock(c);
  int rc = capture_mark(c, m, nm);
  if (rc == 0) rc = capture_append(c, r, nrec, m, nm, &seq, &op_sync);
  else capture_release(c, m, 0);
  capture_unlock(c);
  if (rc) { fprintf(stderr, "op failed: %s\n", strerror(-rc)); exit(2); }
  return seq;
}

static uint64_t chmod_op(struct capture *c, const char *path) {
  struct rec r = R(REC_CHMOD, .vol = 0, .path = path, .path_len = strlen(path), .mode = 0600);
  return op(c, &r, 1, NULL, 0);
}

/* ---- sync ------------------------------------------------------------------- */

struct waiter { struct capture *c; uint64_t seq; int flushed; double waited, end; pthread_t th; };

static void *wait_main(void *arg) {
  struct waiter *w = arg;
  double t0 = now_s();
  capture_durable(w->c, w->seq, w->flushed);
  w->end = now_s();
  w->waited = w->end - t0;
  return NULL;
}

/* A writer's wait (flushed 0) or an fsync's (1). */
static void start_wait(struct waiter *w, struct capture *c, uint64_t seq, int flushed) {
  w->c = c;
  w->seq = seq;
  w->flushed = flushed;
  pthread_create(&w->th, NULL, wait_main, w);
}

static struct capture_status poll_of(struct capture *c) {
  struct capture_status st;
  capture_poll(c, &st);
  return st;
}

struct gated { struct capture *c; atomic_int got; };

static void *gated_lock(void *arg) {   /* a FUSE worker meeting the gate */
  struct gated *g = arg;
  capture_lock(g->c);
  atomic_store(&g->got, 1);
  capture_unlock(g->c);
  return NULL;
}

int cmd_sync(const char *dir, const char *group) {
  struct capture *c = open_or_die(dir, group, 0, 1, 1000);   /* long enough that a busy box does not time out phases 1, 4, 5 */

  /* The wake is coalesced: one per poll, not one per op. */
  poll_of(c);
  int w0 = atomic_load(&wakes);
  uint64_t last = 0;
  for (int i = 0; i < 100; i++) last = chmod_op(c, "w");
  CHECK(atomic_load(&wakes) - w0 == 1, "100 appends woke %d times", atomic_load(&wakes) - w0);
  poll_of(c);
  last = chmod_op(c, "w");
  CHECK(atomic_load(&wakes) - w0 == 2, "an append after a poll woke %d times in all", atomic_load(&wakes) - w0);
  capture_ack(c, last, last);
  CHECK(poll_of(c).sync_active == 1, "sync mode is active");

  /* 1: a writer waits for the ack of its batch. */
  struct waiter w1;
  uint64_t s1 = chmod_op(c, "s1");
  start_wait(&w1, c, s1, 0);
  sleep_ms(100);
  CHECK(poll_of(c).sync_waiting == 1, "one waiter");
  double t_ack = now_s();
  capture_ack(c, s1, s1);
  pthread_join(w1.th, NULL);
  CHECK(w1.end >= t_ack && w1.waited < 0.9, "released by the ack (%.3f s after it), after %.3f s", w1.end - t_ack, w1.waited);
  CHECK(poll_of(c).sync_fallbacks == 0, "no fallback yet");

  /* 1b: an fsync waits for the secondary's disk, a write for its journal
   * file: the ack that the file holds both releases the write only. */
  struct waiter wf, ww;
  uint64_t sf = chmod_op(c, "sf");
  start_wait(&wf, c, sf, 1);
  uint64_t sw = chmod_op(c, "sw");
  start_wait(&ww, c, sw, 0);
  sleep_ms(100);
  CHECK(poll_of(c).sync_waiting == 2, "two waiters");
  capture_ack(c, sw, sf - 1);
  pthread_join(ww.th, NULL);
  sleep_ms(100);
  CHECK(poll_of(c).sync_waiting == 1, "the write went, the fsync waits for the disk");
  t_ack = now_s();
  capture_ack(c, sw, sf);
  pthread_join(wf.th, NULL);
  CHECK(wf.end >= t_ack && wf.waited < 0.9, "the fsync released by the flushed ack (%.3f s after it)", wf.end - t_ack);
  CHECK(poll_of(c).sync_fallbacks == 0, "no fallback yet");

  /* 2: no ack: the oldest waiter's timeout releases all three, once. */
  struct waiter w2[3];
  uint64_t s2[3];
  int wb = atomic_load(&wakes);
  poll_of(c);
  for (int i = 0; i < 3; i++) {
    s2[i] = chmod_op(c, "s2");
    start_wait(&w2[i], c, s2[i], 0);
    sleep_ms(200);
  }
  for (int i = 0; i < 3; i++) pthread_join(w2[i].th, NULL);
  CHECK(w2[0].waited >= 0.99 && w2[0].waited < 3, "first waiter released after %.3f s", w2[0].waited);
  /* The last came ~0.4 s later: released with the first, well before its own 1 s. */
  CHECK(w2[2].waited < 0.95, "the last waiter went with the first (after %.3f s)", w2[2].waited);
  struct capture_status st = poll_of(c);
  CHECK(st.sync_fallbacks == 1, "one fallback, not %" PRIu64, st.sync_fallbacks);
  CHECK(st.sync_active == 0 && st.sync_waiting == 0, "fallen back, nobody waiting");
  CHECK(atomic_load(&wakes) > wb, "the fallback woke JS");

  /* 3: while fallen back nobody waits, and batches are not sync. */
  struct waiter w3;
  uint64_t s3 = chmod_op(c, "s3");
  CHECK(!op_sync, "appended while fallen back: not a sync batch (its caller does not wait)");
  start_wait(&w3, c, s3, 0);
  pthread_join(w3.th, NULL);
  CHECK(w3.waited < 0.9, "no wait after the fallback (%.3f s)", w3.waited);

  /* 4: JS turns sync on again: waits resume. */
  capture_ack(c, s3, s3);
  capture_set_sync(c, 1);
  struct waiter w4;
  uint64_t s4 = chmod_op(c, "s4");
  CHECK(op_sync, "appended after sync came back: a sync batch");
  start_wait(&w4, c, s4, 0);
  sleep_ms(50);
  t_ack = now_s();
  capture_ack(c, s4, s4);
  pthread_join(w4.th, NULL);
  CHECK(w4.end >= t_ack && w4.waited < 0.9, "waited for the ack after resuming (%.3f s)", w4.waited);

  /* 5: an older ack does not release; sync off does. */
  struct waiter w5;
  uint64_t s5 = chmod_op(c, "s5");
  start_wait(&w5, c, s5, 0);
  capture_ack(c, s4, s4);
  sleep_ms(100);
  CHECK(poll_of(c).sync_waiting == 1, "still waiting after an older ack");
  double t_off = now_s();
  capture_set_sync(c, 0);
  pthread_join(w5.th, NULL);
  CHECK(w5.end >= t_off && w5.waited < 0.9, "released by sync off (after %.3f s)", w5.waited);
  CHECK(poll_of(c).sync_fallbacks == 1, "sync off is not a fallback");

  /* 6: the overflow gate holds FUSE's capture_lock back, not JS's. */
  capture_set_gate(c, 1);
  struct gated g = { .c = c };
  pthread_t gt;
  pthread_create(&gt, NULL, gated_lock, &g);
  sleep_ms(50);
  CHECK(atomic_load(&g.got) == 0, "a FUSE thread waits while the gate is shut");
  capture_lock_ungated(c);
  capture_unlock(c);
  sleep_ms(20);
  CHECK(atomic_load(&g.got) == 0, "still waiting after JS's lock came and went");
  capture_set_gate(c, 0);
  pthread_join(gt, NULL);
  CHECK(atomic_load(&g.got) == 1, "the gate opened: it got the lock");

  printf("seqs %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
         s1, s2[0], s2[1], s2[2], s3, s4, s5);
  capture_close(c);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

/* ---- track ------------------------------------------------------------------ */

static int copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  char buf[65536];
  ssize_t n;
  while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) break;
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  return in >= 0 && out >= 0 ? 0 : -1;
}

static void fill(struct capture *c, int n, int base) {
  for (int k = 0; k < n; k++) {
    struct hot m = { .vol = 0, .kind = HOT_REGION, .region = base + k, .path = "fill", .path_len = 4 };
    struct rec r = R(REC_WRITE, .vol = 0, .path = "fill", .path_len = 4, .off = (uint64_t)(base + k) << 20, .data = "x", .data_len = 1);
    op(c, &r, 1, &m, 1);
  }
}

static void take_print(struct capture *c, const char *label, uint64_t *token) {
  uint8_t *buf = NULL;
  size_t len = 0;
  uint32_t count = 0;
  int rc = capture_take_tracked(c, &buf, &len, &count, token);
  CHECK(rc == 1, "%s: take gave %d", label, rc);
  if (rc != 1) return;
  char *h = malloc(2 * len + 1);
  hexs(buf, len, h);
  printf("%s %u %s\n", label, count, h);
  free(h);
  free(buf);
}

int cmd_track(const char *dir, const char *group) {
  char path[4096], copy[4096];
  struct capture *c = open_or_die(dir, group, 0, 0, 0);
  snprintf(path, sizeof path, "%s/activity.log", dir);
  capture_set_track(c, 1);
  poll_of(c);
  int w0 = atomic_load(&wakes);

  struct hot ma = { .vol = 0, .kind = HOT_REGION, .region = 0, .path = "t/a", .path_len = 3 };
  struct rec ra[2] = { R(REC_WRITE, .vol = 0, .path = "t/a", .path_len = 3, .off = 0, .data = "AAAA", .data_len = 4),
                       R(REC_TRUNCATE, .vol = 0, .path = "t/a", .path_len = 3, .size = 4) };
  CHECK(op(c, ra, 2, &ma, 1) == 0, "track mode gives no sequence");
  struct capture_status st = poll_of(c);
  CHECK(st.track == 1 && st.tracked_records == 2, "two records queued (%" PRIu64 ")", st.tracked_records);
  CHECK(st.next_seq == 1 && st.batches == 0 && st.segment_first == 0, "nothing journalled");
  CHECK(atomic_load(&wakes) - w0 == 1, "tracked records woke JS once");
  uint64_t t1 = 0, t2 = 0;
  take_print(c, "tracked1", &t1);
  uint8_t *b;
  size_t l;
  uint32_t n;
  uint64_t tk;
  CHECK(capture_take_tracked(c, &b, &l, &n, &tk) == 0, "nothing left to take");

  struct hot mb = { .vol = 0, .kind = HOT_META, .region = -1, .path = "t/b", .path_len = 3 };
  struct rec rb = R(REC_CHMOD, .vol = 0, .path = "t/b", .path_len = 3, .mode = 0640);
  op(c, &rb, 1, &mb, 1);
  capture_set_track(c, 0);

  /* 1025 idle marks: the log is compacted to what is hot: the tracked ones. */
  fill(c, 1025, 0);
  snprintf(copy, sizeof copy, "%s/activity.1", dir);
  copy_file(path, copy);

  capture_release_tracked(c, t1);
  take_print(c, "tracked2", &t2);
  capture_release_tracked(c, t2);
  fill(c, 1025, 5000);
  snprintf(copy, sizeof copy, "%s/activity.2", dir);
  copy_file(path, copy);

  st = poll_of(c);
  CHECK(st.batches == 2050 && st.next_seq == 2051, "the fill was journalled (%" PRIu64 " batches)", st.batches);
  capture_close(c);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && sb.st_size == 0, "a clean close empties the activity log");
  printf("closed_size %lld\n", (long long)sb.st_size);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

/* ---- bench ------------------------------------------------------------------ */

static void rm_segments(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (de->d_name[0] != '.') unlinkat(dirfd(d), de->d_name, 0);
  if (d) closedir(d);
}

static double cpu_s(void) {   /* this thread's CPU time, user and system: steadier than wall time on a busy box */
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double bench_append(const char *dir, size_t size, int n, double *cpu) {
  rm_segments(dir);
  struct capture *c = open_or_die(dir, "bench", 64u << 20, 0, 0);
  uint8_t *data = malloc(size);
  memset(data, 0x5a, size);
  double t0 = now_s(), c0 = cpu_s();
  for (int i = 0; i < n; i++) {
    struct hot m = { .vol = 0, .kind = HOT_REGION, .region = (int64_t)((uint64_t)i * size >> 20), .path = "bench/file", .path_len = 10 };
    struct rec r = R(REC_WRITE, .vol = 0, .path = "bench/file", .path_len = 10, .off = (uint64_t)i * size, .data = data, .data_len = size);
    op(c, &r, 1, &m, 1);
  }
  double dt = now_s() - t0;
  *cpu = cpu_s() - c0;
  capture_close(c);
  free(data);
  rm_segments(dir);
  return dt;
}

/* Baseline of the same run: the bare writev of a frame's worth of bytes to
 * an O_APPEND file, no encoding, hashing or locks. */
static double bench_raw(const char *dir, size_t size, int n, double *cpu) {
  char path[4096];
  snprintf(path, sizeof path, "%s/raw", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  uint8_t *data = malloc(size), hdr[8 + 64] = { 0 };
  memset(data, 0x5a, size);
  double t0 = now_s(), c0 = cpu_s();
  for (int i = 0; i < n; i++) {
    struct iovec iov[2] = { { hdr, sizeof hdr }, { data, size } };
    if (writev(fd, iov, 2) < 0) break;
  }
  double dt = now_s() - t0;
  *cpu = cpu_s() - c0;
  close(fd);
  unlink(path);
  free(data);
  return dt;
}

int cmd_bench(const char *dir) {
  mkdir("/tmp/nat-j", 0700);
  mkdir(dir, 0700);
  const size_t mib = 1 << 20, total = 64 * mib;
  uint8_t *buf = malloc(total);
  for (size_t i = 0; i < total; i++) buf[i] = (uint8_t)(i * 2654435761u >> 13);
  int reps = 8;
  volatile uint32_t crc = 0;
  double t0 = cpu_s();
  for (int r = 0; r < reps; r++) crc = j_crc32c(crc, buf, total);
  double crc_ns = (cpu_s() - t0) * 1e9 / (double)(reps * (total / mib));
  struct jenc e;
  struct jpiece p = { .off = 0, .len = total, .ext = buf };
  jenc_init(&e, 1);
  e.pieces = &p;
  e.npieces = 1;
  uint8_t h[16];
  t0 = cpu_s();
  for (int r = 0; r < reps; r++) j_chain_hash(&e, h);
  double hash_ns = (cpu_s() - t0) * 1e9 / (double)(reps * (total / mib));
  free(buf);
  printf("crc32c_ns_per_mib %.0f (%.2f GB/s)\n", crc_ns, 1048576.0 / crc_ns);
  printf("chain_hash_xxh3_128_ns_per_mib %.0f (%.2f GB/s)\n", hash_ns, 1048576.0 / hash_ns);
  int n4 = 40000, n256 = 1024;
  double r4c, r256c;
  double r4 = bench_raw(dir, 4096, n4, &r4c), r256 = bench_raw(dir, 256 * 1024, n256, &r256c);
  printf("raw_writev_4k_ns_per_op wall %.0f cpu %.0f\n", r4 * 1e9 / n4, r4c * 1e9 / n4);
  printf("raw_writev_256k_ns_per_op wall %.0f cpu %.0f\n", r256 * 1e9 / n256, r256c * 1e9 / n256);
  double c4, c256;
  double t4 = bench_append(dir, 4096, n4, &c4);
  double t256 = bench_append(dir, 256 * 1024, n256, &c256);
  printf("append_4k_ns_per_op wall %.0f cpu %.0f; ns_per_mib wall %.0f cpu %.0f\n", t4 * 1e9 / n4, c4 * 1e9 / n4,
         t4 * 1e9 / (n4 * 4096.0 / mib), c4 * 1e9 / (n4 * 4096.0 / mib));
  printf("append_256k_ns_per_op wall %.0f cpu %.0f; ns_per_mib wall %.0f cpu %.0f\n", t256 * 1e9 / n256, c256 * 1e9 / n256,
         t256 * 1e9 / (n256 * 256.0 * 1024 / mib), c256 * 1e9 / (n256 * 256.0 * 1024 / mib));
  return 0;
}

/* ---- full: a write that does not fit leaves no half frame ------------------- */

#include <signal.h>
#include <sys/resource.h>

static int try_op(struct capture *c, const struct rec *r, int nrec, const struct hot *m, int nm, uint64_t *seq) {
  capture_lock(c);
  int rc = capture_mark(c, m, nm);
  if (rc == 0) rc = capture_append(c, r, nrec, m, nm, seq, NULL);
  capture_unlock(c);
  return rc;
}

static uint64_t file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : UINT64_MAX;
}

int cmd_full(const char *dir, const char *group) {
  struct capture *c = open_or_die(dir, group, 0, 0, 0);
  static uint8_t data[65536];
  memset(data, 0xab, sizeof data);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 200000;   /* the segment fills at the 4th write, partway through its frame */
  setrlimit(RLIMIT_FSIZE, &lim);
  int rc = 0, i;
  uint64_t seq = 0;
  for (i = 0; i < 10 && rc == 0; i++) {
    struct hot m = { .vol = 0, .kind = HOT_REGION, .region = i, .path = "full", .path_len = 4 };
    struct rec r = R(REC_WRITE, .vol = 0, .path = "full", .path_len = 4, .off = (uint64_t)i << 20, .data = data, .data_len = sizeof data);
    rc = try_op(c, &r, 1, &m, 1, &seq);
  }
  setrlimit(RLIMIT_FSIZE, &old);
  CHECK(rc == -EFBIG, "the write over the limit failed with EFBIG, not %d", rc);
  CHECK(i == 4, "three writes fit, the fourth did not (%d)", i);
  struct capture_status st;
  capture_poll(c, &st);
  char seg[4096];
  snprintf(seg, sizeof seg, "%s/%020" PRIu64 ".seg", dir, st.segment_first);
  CHECK(file_size(seg) == st.segment_bytes, "no half frame: the file is %" PRIu64 " bytes, the good frames %" PRIu64,
        file_size(seg), st.segment_bytes);
  CHECK(st.error == EFBIG && strstr(st.error_msg, ".seg"), "the error is reported (%d: %s)", st.error, st.error_msg);
  CHECK(st.next_seq == 4, "three batches appended (%" PRIu64 ")", st.next_seq);
  char path[4096], copy[4096];
  snprintf(path, sizeof path, "%s/activity.log", dir);
  snprintf(copy, sizeof copy, "%s/activity.full", dir);
  copy_file(path, copy);   /* the failed op's mark stays hot */

  /* Room again: the journal goes on where the good frames end. */
  struct rec r = R(REC_FSYNC, .vol = 0, .path = "full", .path_len = 4);
  CHECK(try_op(c, &r, 1, NULL, 0, &seq) == 0 && seq == 4, "appends resume at sequence 4");
  capture_poll(c, &st);
  char h[33];
  hexs(st.last_hash, 16, h);
  printf("end %" PRIu64 " %s\n", st.next_seq, h);
  capture_close(c);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

/* ---- rebase ----------------------------------------------------------------- */

int cmd_rebase(const char *dir, const char *group) {
  struct capture *c = open_or_die(dir, group, 4096, 0, 0);
  for (int i = 0; i < 20; i++) chmod_op(c, "before");
  uint8_t prev[16];
  memset(prev, 7, sizeof prev);
  capture_lock(c);
  int rc = capture_rebase(c, 1000, prev);
  capture_unlock(c);
  CHECK(rc == 0, "rebase: %d", rc);
  struct capture_status st;
  capture_poll(c, &st);
  CHECK(st.next_seq == 1000 && st.durable_seq == 999 && st.segment_first == 0, "history continues at 1000");
  CHECK(!memcmp(st.last_hash, prev, 16), "after the given hash");
  DIR *d = opendir(dir);
  struct dirent *de;
  int segs = 0;
  while (d && (de = readdir(d))) segs += strstr(de->d_name, ".seg") != NULL;
  if (d) closedir(d);
  CHECK(segs == 0, "every segment is gone (%d left)", segs);
  uint64_t s = chmod_op(c, "after");
  chmod_op(c, "after");
  capture_poll(c, &st);
  CHECK(s == 1000 && st.segment_first == 1000, "the next append starts segment 1000");
  char h[33];
  hexs(st.last_hash, 16, h);
  printf("end %" PRIu64 " %s\n", st.next_seq, h);
  capture_close(c);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

/* ---- stress: many writers, syncs, rotations, JS's lock and gate ------------ */

struct stress { struct capture *c; int t; atomic_int *done; };
#define STRESS_OPS 400

static void *stress_writer(void *arg) {
  struct stress *s = arg;
  unsigned seed = (unsigned)s->t * 7919u + 1;
  uint8_t *data = malloc(70000);
  for (int i = 0; i < 70000; i++) data[i] = (uint8_t)(i * 13 + s->t);
  char path[32];
  int pl = snprintf(path, sizeof path, "s%d", s->t);
  for (int i = 0; i < STRESS_OPS; i++) {
    size_t len = (size_t)(rand_r(&seed) % 70000);
    uint64_t off = (uint64_t)(rand_r(&seed) % 3000) << 16;
    struct hot m[2] = { { .vol = 0, .kind = HOT_REGION, .region = (int64_t)(off >> 20), .path = path, .path_len = (size_t)pl },
                        { .vol = 0, .kind = HOT_META, .region = -1, .path = path, .path_len = (size_t)pl } };
    struct rec r[2] = { R(REC_WRITE, .vol = 0, .path = path, .path_len = (size_t)pl, .off = off, .data = data, .data_len = len),
                        R(REC_TRUNCATE, .vol = 0, .path = path, .path_len = (size_t)pl, .size = off + len) };
    int n = 1 + (rand_r(&seed) % 4 == 0);
    uint64_t seq = op(s->c, r, n, m, n);
    if (rand_r(&seed) % 20 == 0 && capture_sync(s->c, seq) != 0) { fprintf(stderr, "sync failed\n"); exit(2); }
    capture_durable(s->c, seq, rand_r(&seed) % 20 == 0);
  }
  free(data);
  atomic_fetch_add(s->done, 1);
  return NULL;
}

struct pool_lock { struct capture *c; pthread_mutex_t mu; pthread_cond_t cv; int got; };

static void *pool_take_lock(void *arg) {   /* JS's lock is taken on a pool thread */
  struct pool_lock *p = arg;
  capture_lock_ungated(p->c);
  pthread_mutex_lock(&p->mu);
  p->got = 1;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int cmd_stress(const char *dir, const char *group) {
  struct capture *c = open_or_die(dir, group, 128 * 1024, 0, 0);
  enum { W = 6 };
  pthread_t th[W];
  struct stress s[W];
  atomic_int done = 0;
  for (int t = 0; t < W; t++) {
    s[t] = (struct stress){ c, t, &done };
    pthread_create(&th[t], NULL, stress_writer, &s[t]);
  }
  /* The "JS thread": polls, acks, shuts and opens the gate, and journals a
   * restate under a lock taken on another thread. */
  static const uint8_t restate[] = {   /* [{kind: "fsync", vol: 0, path: "js"}] */
    0x81, 0xa3, 0x64, 'k', 'i', 'n', 'd', 0x65, 'f', 's', 'y', 'n', 'c', 0x63, 'v', 'o', 'l', 0x00,
    0x64, 'p', 'a', 't', 'h', 0x62, 'j', 's' };
  uint64_t encoded = 0;
  for (int round = 0; atomic_load(&done) < W; round++) {
    struct capture_status st;
    capture_poll(c, &st);
    CHECK(st.error == 0, "no error (%s)", st.error_msg);
    capture_ack(c, st.next_seq - 1, st.next_seq - 1);
    if (round % 7 == 3) {
      capture_set_gate(c, 1);
      sleep_ms(1);
      struct pool_lock p = { .c = c, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
      pthread_t pt;
      pthread_create(&pt, NULL, pool_take_lock, &p);
      pthread_mutex_lock(&p.mu);
      while (!p.got) pthread_cond_wait(&p.cv, &p.mu);
      pthread_mutex_unlock(&p.mu);
      pthread_join(pt, NULL);
      uint64_t first, last;
      int rc = capture_append_encoded(c, restate, sizeof restate, 1, &first, &last);
      CHECK(rc == 0 && first == last, "encoded append: %d", rc);
      encoded++;
      capture_unlock(c);   /* on this thread, not the one that took it */
      capture_set_gate(c, 0);
    }
    sleep_ms(1);
  }
  for (int t = 0; t < W; t++) pthread_join(th[t], NULL);
  struct capture_status st;
  capture_poll(c, &st);
  CHECK(st.batches == W * STRESS_OPS + encoded, "%" PRIu64 " batches", st.batches);
  CHECK(capture_sync(c, st.next_seq - 1) == 0, "final sync");
  capture_poll(c, &st);
  CHECK(st.durable_seq == st.next_seq - 1, "durable through the end");
  char h[33];
  hexs(st.last_hash, 16, h);
  printf("end %" PRIu64 " %s batches %" PRIu64 " encoded %" PRIu64 "\n", st.next_seq, h, st.batches, encoded);
  capture_close(c);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

/* ---- selftest: known answers of the pure parts ----------------------------- */

int cmd_selftest(void) {
  /* CRC-32C check value (RFC 3720 / the catalogue's "123456789"), and the
   * continuation convention of @node-rs/crc32's crc32c(buf, prev). */
  CHECK(j_crc32c(0, "123456789", 9) == 0xe3069283u, "crc32c check value %08x", j_crc32c(0, "123456789", 9));
  CHECK(j_crc32c(j_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u, "crc32c continues from a previous result");
  CHECK(j_crc32c(0, "", 0) == 0, "crc32c of nothing is 0");
  const char *good[] = { "", "abc", "\xc3\xbc", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf" };
  const char *bad[] = { "\xc3", "\xc0\x80", "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\x80", "a\xe6\x97", "\xff" };
  for (unsigned i = 0; i < sizeof good / sizeof *good; i++) CHECK(capture_text_ok(good[i], strlen(good[i])) == 0, "good text %u", i);
  for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(capture_text_ok(bad[i], strlen(bad[i])) == -EILSEQ, "bad text %u", i);
  CHECK(capture_text_ok("a\0b", 3) == -EINVAL, "NUL refused");
  struct rec r = R(REC_CREATE, .vol = 0, .path = "\xff", .path_len = 1, .mode = 0600);
  CHECK(jrec_check(&r) == 0, "a record with a non-UTF-8 path is journalled (as a byte string)");
  r = (struct rec)R(REC_CREATE, .vol = 0, .path = "a\0b", .path_len = 3, .mode = 0600);
  CHECK(jrec_check(&r) == -EINVAL, "a path with NUL is refused");
  r = (struct rec)R(REC_SETXATTR, .vol = 0, .path = "x", .path_len = 1, .name = "user.\xff", .name_len = 6);
  CHECK(jrec_check(&r) == -EILSEQ, "an xattr name that is not UTF-8 is refused");
  r = (struct rec)R(REC_UTIMENS, .vol = 0, .path = "x", .path_len = 1, .atime = { 0, UTIME_NOW });
  CHECK(jrec_check(&r) == -EINVAL, "UTIME_NOW is not a time");
  r = (struct rec)R(REC_WRITE, .vol = 0, .path = "x", .path_len = 1, .off = 1ull << 53, .data = "x", .data_len = 1);
  CHECK(jrec_check(&r) == -EFBIG, "offsets past 2^53 are refused");
  r = (struct rec)R(REC_CHMOD, .vol = 64, .path = "x", .path_len = 1);
  CHECK(jrec_check(&r) == -EINVAL, "volume 64 is refused");
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
