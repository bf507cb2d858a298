/* mountmain: a standalone harness for the native core (no JS).
 *   mountmain [--ro] [--group] [--threads N] [--poll-us US] [--max-write BYTES] [--timeout SECONDS] [--debug] [--io-uring]
 *             [--journal STATEDIR] MOUNTPOINT VOLNAME=DIR|VOLNAME=IMAGEFILE:SIZE ...
 * One directory volume without --group: it is the mount root; otherwise the
 * root lists the volumes. An image file that does not exist is created with
 * SIZE (bytes; K/M/G suffixes). Prints "ready" once mounted; SIGINT/SIGTERM
 * unmount cleanly. Runs the core with capture = NULL (plain passthrough), or
 * with --journal the core's capture journalling into STATEDIR (which holds no
 * journal yet) with nobody following it: what the core costs without the JS
 * side (native-notes/performance.md 15).
 * Threads: main() is the starting thread; it waits in sigwait(). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../capture.h"
#include "../core.h"

static int usage(void) {
  fprintf(stderr, "usage: mountmain [--ro] [--group] [--threads N] [--poll-us US] [--max-write BYTES] [--attr-timeout S] [--debug] [--io-uring]\n"
                  "                 [--journal STATEDIR]\n"
                  "                 MOUNTPOINT VOLNAME=DIR|VOLNAME=IMAGEFILE:SIZE ...\n");
  return 2;
}

static int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  if (*end == 'K' || *end == 'k') v <<= 10, end++;
  else if (*end == 'M' || *end == 'm') v <<= 20, end++;
  else if (*end == 'G' || *end == 'g') v <<= 30, end++;
  if (*end) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  struct core_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.attr_timeout = cfg.entry_timeout = 1.0;
  int group = 0, k = 1;
  const char *journal_dir = NULL;
  for (; k < argc && argv[k][0] == '-'; k++) {
    if (!strcmp(argv[k], "--ro")) cfg.read_only = 1;
    else if (!strcmp(argv[k], "--group")) group = 1;
    else if (!strcmp(argv[k], "--debug")) cfg.debug = 1;
    else if (!strcmp(argv[k], "--io-uring")) cfg.io_uring = 1;
    else if (!strcmp(argv[k], "--journal") && k + 1 < argc) journal_dir = argv[++k];
    else if (!strcmp(argv[k], "--threads") && k + 1 < argc) cfg.threads = atoi(argv[++k]);
    else if (!strcmp(argv[k], "--poll-us") && k + 1 < argc) cfg.poll_us = (unsigned)atoi(argv[++k]);
    else if (!strcmp(argv[k], "--max-write") && k + 1 < argc) cfg.max_write = (uint32_t)atoi(argv[++k]);
    else if (!strcmp(argv[k], "--attr-timeout") && k + 1 < argc) cfg.attr_timeout = cfg.entry_timeout = atof(argv[++k]);
    else return usage();
  }
  if (argc - k < 2) return usage();
  static char mp[PATH_MAX];
  if (!realpath(argv[k], mp)) { perror(argv[k]); return 1; }
  cfg.mountpoint = mp;
  cfg.fsname = "replfs-harness";
  k++;
  int n = argc - k;
  struct core_volume *vols = calloc((size_t)n, sizeof *vols);
  if (!vols) return 1;
  for (int v = 0; v < n; v++, k++) {
    char *spec = strdup(argv[k]);
    char *eq = strchr(spec, '=');
    if (!eq) return usage();
    *eq = 0;
    vols[v].num = (uint32_t)v;
    vols[v].name = spec;
    char *path = eq + 1, *colon = strrchr(path, ':');
    uint64_t size;
    if (colon && parse_size(colon + 1, &size) == 0) {
      *colon = 0;
      vols[v].kind = VOL_IMAGE;
      vols[v].size = size;
      int fd = open(path, O_RDWR | O_CREAT, 0644);
      struct stat st;
      if (fd < 0 || fstat(fd, &st) < 0) { perror(path); return 1; }
      if ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0) { perror(path); return 1; }
      close(fd);
    } else {
      vols[v].kind = VOL_DIR;
    }
    char *rp = realpath(path, NULL);
    if (!rp) { perror(path); return 1; }
    vols[v].path = rp;
    if (vols[v].kind == VOL_IMAGE) group = 1;
  }
  if (n > 1) group = 1;
  cfg.single = !group;
  cfg.volumes = vols;
  cfg.nvolumes = n;

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  struct session *s;
  char err[512] = "";
  struct capture *cap = NULL;
  if (journal_dir) {
    struct capture_config cc = { .state_dir = journal_dir, .group = "harness", .next_seq = 1, .drop_finished = 1 };
    int rc = capture_open(&cc, &cap, err, sizeof err);
    if (rc) { fprintf(stderr, "mountmain: %s (%s)\n", err, strerror(-rc)); return 1; }
    cfg.capture = cap;
  }
  int rc = session_start(&cfg, &s, err, sizeof err);
  if (rc) { fprintf(stderr, "mountmain: %s (%s)\n", err, strerror(-rc)); capture_close(cap); return 1; }
  printf("ready\n");
  fflush(stdout);
  int sig;
  sigwait(&set, &sig);
  struct session_stats st;
  session_stats(s, &st);
  session_stop(s);
  if (cap) capture_close(cap);
  fprintf(stderr, "mountmain: stopped on signal %d: %llu requests, %llu writes (%llu bytes), %llu reads (%llu bytes), %llu errors\n",
          sig, (unsigned long long)st.requests, (unsigned long long)st.writes, (unsigned long long)st.write_bytes,
          (unsigned long long)st.reads, (unsigned long long)st.read_bytes, (unsigned long long)st.errors);
  for (int v = 0; v < n; v++) { free((void *)vols[v].name); free((void *)vols[v].path); }
  free(vols);
  return 0;
}
