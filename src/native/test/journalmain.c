/* journalmain.c: a harness for the journal core (capture.c, journal*.c,
 * activity.c) without FUSE or Node. test/native/journal-golden.test.mjs
 * drives it; it is built by src/native/journal.mk.
 *
 *   journalmain write  STATEDIR GROUP [SEGBYTES [NEXTSEQ HASHHEX]]
 *                                                  every record kind from 2 threads; prints
 *                                                  "batch FIRST COUNT HASHHEX" per batch (NEXTSEQ
 *                                                  HASHHEX: continue a journal TS wrote)
 *   journalmain verify STATEDIR NEXTSEQ HASHHEX [GROUP]   capture_open's scan: exit 0, or 1 and its message
 *   journalmain sync   STATEDIR GROUP              sync waits, ack, timeout fallback, coalesced wake
 *   journalmain track  STATEDIR GROUP              track queue, marks kept hot until released
 *   journalmain full   STATEDIR GROUP              a write past RLIMIT_FSIZE: EFBIG, no half frame, goes on
 *   journalmain rebase STATEDIR GROUP              rebase drops every segment, history continues after it
 *   journalmain stress STATEDIR GROUP              6 writers with syncs and rotations; JS's lock (taken on one
 *                                                  thread, let go on another), the gate, encoded appends
 *   journalmain selftest                           CRC-32C check values, UTF-8 and record bounds
 *   journalmain bench  [DIR]                       ns/MiB of CRC32C, the chain hash (XXH3-128), 4 KiB and 256 KiB appends
 *
 * Threads: main() and, in write/sync, worker threads standing in for FUSE
 * workers (they take the group lock as ops.c does). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include "../capture.h"
#include "../journal.h"
#include "journalmain.h"

int failures;

double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void hexs(const uint8_t *h, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", h[i]);
}

atomic_int wakes;
static void on_wake(void *ctx) { (void)ctx; atomic_fetch_add(&wakes, 1); }

/* Where `write` continues (NEXTSEQ HASHHEX given: after a journal TS wrote). */
static uint64_t start_seq = 1;
static uint8_t start_hash[16];

static int parse_hash(const char *hex, uint8_t out[16]) {
  if (strlen(hex) != 32) return -1;
  for (int i = 0; i < 16; i++)
    if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1) return -1;
  return 0;
}

struct capture *open_or_die(const char *dir, const char *group, uint64_t segbytes, int sync_mode, uint32_t timeout_ms) {
  struct capture_config cfg = { .state_dir = dir, .group = group, .next_seq = start_seq, .segment_bytes = segbytes,
                                .sync_mode = sync_mode, .sync_timeout_ms = timeout_ms, .wake = on_wake };
  memcpy(cfg.last_hash, start_hash, 16);
  struct capture *c;
  char err[512] = "";
  mkdir(dir, 0700);
  int rc = capture_open(&cfg, &c, err, sizeof err);
  if (rc < 0) { fprintf(stderr, "capture_open: %s (%s)\n", err, strerror(-rc)); exit(2); }
  return c;
}


/* ---- write --------------------------------------------------------------------- */

struct op { struct rec recs[2]; int nrec; struct hot marks[2]; int nmarks; };

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static struct capture *wc;

static void run_op(const struct op *o) {
  uint64_t seq = 0;
  if (capture_lock(wc) != 0) { fprintf(stderr, "lock failed\n"); exit(2); }
  int rc = capture_mark(wc, o->marks, o->nmarks);
  if (rc == 0) rc = capture_append(wc, o->recs, o->nrec, o->marks, o->nmarks, &seq, NULL);
  if (rc == 0) {
    struct capture_status st;
    capture_poll(wc, &st);
    char h[33];
    hexs(st.last_hash, 16, h);
    pthread_mutex_lock(&out_mu);
    printf("batch %" PRIu64 " %d %s\n", seq - (uint64_t)o->nrec + 1, o->nrec, h);
    pthread_mutex_unlock(&out_mu);
  }
  capture_unlock(wc);
  if (rc) { fprintf(stderr, "append failed: %s\n", strerror(-rc)); exit(2); }
  if (capture_durable(wc, seq, 0) != 0) exit(2);
}

/* The fixed record set; thread t writes under "a/" or "b/" and its data
 * differs by t. test/native/journal-golden.test.mjs mirrors this list. */
static void *writer(void *arg) {
  int t = (int)(intptr_t)arg;
  const char *P = t ? "b" : "a";
  char p[16][128];
  int pl[16];
#define PATH(i, fmt) (pl[i] = snprintf(p[i], sizeof p[i], fmt, P))
  PATH(0, "%s");
  PATH(1, "%s/f");
  PATH(2, "%s/big");
  PATH(3, "%s/fifo");
  PATH(4, "%s/dev");
  PATH(5, "%s/ln");
  PATH(6, "%s/f2");
  PATH(7, "%s/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt");                 /* 日本語.txt */
  PATH(8, "%s/d");
  PATH(9, "%s/\xc3\xbcn\xc3\xaf\x63\xc3\xb8\x64\xc3\xa9");                 /* ünïcødé */
  PATH(10, "%s/mid");
  static const char target[] = "../\xc3\xbcn\xc3\xaf/target";
  uint8_t *big = malloc(1 << 20), mid[4096], small[100];
  for (int i = 0; i < (1 << 20); i++) big[i] = (uint8_t)(i * 7 + 3 + t);
  for (int i = 0; i < 4096; i++) mid[i] = (uint8_t)(i ^ (t * 0x55));
  for (int i = 0; i < 100; i++) small[i] = (uint8_t)(255 - i - t);
  static const uint8_t xval[] = { 0, 1, 2, 255, 0, 128 };
  uint32_t v = (uint32_t)t;
#define PTH(i) .path = p[i], .path_len = (size_t)pl[i]
#define MARK(k, i, reg) ((struct hot){ .vol = v, .kind = (k), .region = (reg), .path = p[i], .path_len = (size_t)pl[i] })
  struct op ops[] = {
    { { R(REC_MKDIR, .vol = v, PTH(0), .mode = 0755) }, 1, { MARK(HOT_PATH, 0, -1) }, 1 },
    { { R(REC_CREATE, .vol = v, PTH(1), .mode = 0644),
        R(REC_WRITE, .vol = v, PTH(1), .off = 0, .data = "hello", .data_len = 5) }, 2,
      { MARK(HOT_PATH, 1, -1), MARK(HOT_REGION, 1, 0) }, 2 },
    { { R(REC_WRITE, .vol = v, PTH(2), .off = 4096, .data = big, .data_len = 1 << 20) }, 1,
      { MARK(HOT_REGION, 2, 0), MARK(HOT_REGION, 2, 1) }, 2 },
    { { R(REC_WRITE, .vol = v, PTH(1), .off = 5, .data = NULL, .data_len = 0) }, 1, { MARK(HOT_REGION, 1, 0) }, 1 },
    { { R(REC_WRITE, .vol = v, PTH(10), .off = 1ull << 40, .data = mid, .data_len = sizeof mid),
        R(REC_WRITE, .vol = v, PTH(10), .off = 7, .data = small, .data_len = sizeof small) }, 2,
      { MARK(HOT_REGION, 10, 1 << 20), MARK(HOT_REGION, 10, 0) }, 2 },
    { { R(REC_TRUNCATE, .vol = v, PTH(1), .size = 3) }, 1, { MARK(HOT_META, 1, -1) }, 1 },
    { { R(REC_MKNOD, .vol = v, PTH(3), .mode = S_IFIFO | 0644, .rdev = 0) }, 1, { MARK(HOT_PATH, 3, -1) }, 1 },
    { { R(REC_MKNOD, .vol = v, PTH(4), .mode = S_IFCHR | 0600, .rdev = (uint32_t)makedev(1, 3)) }, 1, { MARK(HOT_PATH, 4, -1) }, 1 },
    { { R(REC_SYMLINK, .vol = v, PTH(5), .to = target, .to_len = sizeof target - 1) }, 1, { MARK(HOT_PATH, 5, -1) }, 1 },
    { { R(REC_LINK, .vol = v, PTH(1), .to = p[6], .to_len = (size_t)pl[6]) }, 1, { MARK(HOT_PATH, 6, -1) }, 1 },
    { { R(REC_RENAME, .vol = v, PTH(6), .to = p[7], .to_len = (size_t)pl[7]) }, 1,
      { MARK(HOT_PATH, 6, -1), MARK(HOT_PATH, 7, -1) }, 2 },
    { { R(REC_CHMOD, .vol = v, PTH(1), .mode = 04755) }, 1, { MARK(HOT_META, 1, -1) }, 1 },
    { { R(REC_CHOWN, .vol = v, PTH(1), .uid = 1000, .gid = 4294967294u) }, 1, { MARK(HOT_META, 1, -1) }, 1 },
    { { R(REC_UTIMENS, .vol = v, PTH(1), .atime = { 1700000000, 123456789 }, .mtime = { 1700000000, 0 }) }, 1,
      { MARK(HOT_META, 1, -1) }, 1 },
    { { R(REC_UTIMENS, .vol = v, PTH(1), .atime = { -1, 500000000 }, .mtime = { -2, 1 }) }, 1, { MARK(HOT_META, 1, -1) }, 1 },
    { { R(REC_SETXATTR, .vol = v, PTH(1), .name = S("user.bin"), .data = xval, .data_len = sizeof xval, .flags = 1) }, 1,
      { MARK(HOT_META, 1, -1) }, 1 },
    { { R(REC_REMOVEXATTR, .vol = v, PTH(1), .name = S("user.bin")) }, 1, { MARK(HOT_META, 1, -1) }, 1 },
    { { R(REC_UNLINK, .vol = v, PTH(7)) }, 1, { MARK(HOT_PATH, 7, -1) }, 1 },
    { { R(REC_MKDIR, .vol = v, PTH(8), .mode = 0700), R(REC_RMDIR, .vol = v, PTH(8)) }, 2, { MARK(HOT_PATH, 8, -1) }, 1 },
    { { R(REC_CREATE, .vol = v, PTH(9), .mode = 0600) }, 1, { MARK(HOT_PATH, 9, -1) }, 1 },
    { { R(REC_FSYNC, .vol = v, PTH(1)) }, 1, { { 0 } }, 0 },
  };
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    run_op(&ops[i]);
    if (ops[i].recs[0].kind == REC_FSYNC) {
      struct capture_status st;
      capture_poll(wc, &st);
      if (capture_sync(wc, st.next_seq - 1) != 0) exit(2);
    }
    usleep(200);   /* let the two threads interleave */
  }
  free(big);
  return NULL;
}

static int cmd_write(const char *dir, const char *group, uint64_t segbytes) {
  wc = open_or_die(dir, group, segbytes, 0, 0);
  pthread_t th[2];
  for (int t = 0; t < 2; t++) pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t);
  for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
  struct capture_status st;
  capture_poll(wc, &st);
  char h[33];
  hexs(st.last_hash, 16, h);
  printf("end %" PRIu64 " %s durable %" PRIu64 " batches %" PRIu64 " records %" PRIu64 "\n",
         st.next_seq, h, st.durable_seq, st.batches, st.records);
  capture_close(wc);
  return 0;
}

/* ---- verify -------------------------------------------------------------------- */

static int cmd_verify(const char *dir, const char *next, const char *hashhex, const char *group) {
  uint8_t h[16];
  if (parse_hash(hashhex, h) < 0) { fprintf(stderr, "HASHHEX is 32 hex digits\n"); return 2; }
  char err[512] = "";
  int rc = journal_verify(dir, group, strtoull(next, NULL, 10), h, err, sizeof err);
  if (rc < 0) { fprintf(stderr, "%s\n", err); return 1; }
  printf("ok\n");
  return 0;
}


int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 4 && !strcmp(argv[1], "write")) {
    if (argc >= 7) {
      start_seq = strtoull(argv[5], NULL, 10);
      if (parse_hash(argv[6], start_hash) < 0) { fprintf(stderr, "HASHHEX is 32 hex digits\n"); return 2; }
    }
    return cmd_write(argv[2], argv[3], argc > 4 ? strtoull(argv[4], NULL, 10) : 256 * 1024);
  }
  if (argc >= 5 && !strcmp(argv[1], "verify")) return cmd_verify(argv[2], argv[3], argv[4], argc > 5 ? argv[5] : NULL);
  if (argc >= 4 && !strcmp(argv[1], "sync")) return cmd_sync(argv[2], argv[3]);
  if (argc >= 4 && !strcmp(argv[1], "track")) return cmd_track(argv[2], argv[3]);
  if (argc >= 4 && !strcmp(argv[1], "full")) return cmd_full(argv[2], argv[3]);
  if (argc >= 4 && !strcmp(argv[1], "rebase")) return cmd_rebase(argv[2], argv[3]);
  if (argc >= 4 && !strcmp(argv[1], "stress")) return cmd_stress(argv[2], argv[3]);
  if (argc >= 2 && !strcmp(argv[1], "selftest")) return cmd_selftest();
  if (argc >= 2 && !strcmp(argv[1], "bench")) return cmd_bench(argc > 2 ? argv[2] : "/tmp/nat-j/bench");
  fprintf(stderr, "usage: journalmain write STATEDIR GROUP [SEGBYTES [NEXTSEQ HASHHEX]] | verify STATEDIR NEXTSEQ HASHHEX [GROUP] |\n"
                  "       sync|track|full|rebase|stress STATEDIR GROUP | selftest | bench [DIR]\n");
  return 2;
}
