/* Busy-polling /dev/fuse for a short window after each reply (reader thread).
 *
 * Why: on this paravirtualised VM a thread that sleeps in read(/dev/fuse) and
 * is woken by the next request pays the hypervisor's wake-up path
 * (pvm_irq_enable: 39% of the FUSE thread's samples on 4 KiB QD1 writes). An
 * application issuing one request after another sends the next within tens
 * of microseconds; a reader still polling takes it without sleeping.
 * Measured (native-notes/performance.md 14): 4 KiB QD1 +10-25%, SQLite WAL
 * NORMAL +10-20%, tar +5-30%; SQLite WAL FULL within the noise; the daemon's
 * CPU higher by what it polls.
 *
 * When: only while that CPU would otherwise idle. Polling beside a busy
 * replicator (the sender, a secondary on the same host) took their CPU and
 * slowed everything, so each window starts only if /proc/loadavg's runnable
 * count (sampled at most once a millisecond) is at most the CPU count, this
 * thread included, and only while requests have been arriving within the
 * window on average (an fsync-paced or idle stream would just burn it).
 *
 * With several reader threads the kernel hands each request to one blocked
 * reader; pollers would all wake for it, so session.c turns this on only
 * with a single reader. */
#define _GNU_SOURCE
#include "reader_wait.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define LOAD_SAMPLE_NS 1000000L    /* /proc/loadavg at most once a millisecond */
#define GAP_CAP_WINDOWS 4          /* one long gap moves the average by at most this many windows */

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

int reader_wait_init(struct reader_wait *rw, int fd, unsigned window_us) {
  *rw = (struct reader_wait){ .fd = fd, .load_fd = -1 };
  if (!window_us) return 0;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  rw->window_ns = (long)window_us * 1000;
  rw->load_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);   /* -1: never poll */
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  rw->ncpu = n > 0 ? (int)n : 1;
  return 0;
}

void reader_wait_close(struct reader_wait *rw) {
  if (rw->window_ns && rw->load_fd >= 0) close(rw->load_fd);   /* a reader never set up is all zeros */
  rw->load_fd = -1;
}

/* "0.52 0.58 0.59 3/112 4201": the fourth field is runnable/total now */
static int cpu_idle_now(struct reader_wait *rw) {
  char b[128];
  ssize_t k = pread(rw->load_fd, b, sizeof b - 1, 0);
  if (k <= 0) return 0;
  b[k] = 0;
  int running;
  if (sscanf(b, "%*s %*s %*s %d/", &running) != 1) return 0;
  return running < rw->ncpu + 1;   /* this thread is one of them */
}

static int should_poll(struct reader_wait *rw, long now) {
  if (rw->gap_avg_ns >= rw->window_ns || rw->load_fd < 0) return 0;
  if (now - rw->load_at_ns >= LOAD_SAMPLE_NS) {
    rw->cpu_idle = cpu_idle_now(rw);
    rw->load_at_ns = now;
  }
  return rw->cpu_idle;
}

static void note_gap(struct reader_wait *rw, long gap) {
  long cap = GAP_CAP_WINDOWS * rw->window_ns;
  if (gap > cap) gap = cap;
  rw->gap_avg_ns += (gap - rw->gap_avg_ns) / 4;
}

ssize_t reader_wait_read(struct reader_wait *rw, void *buf, size_t cap) {
  if (!rw->window_ns) return read(rw->fd, buf, cap);
  long start = now_ns();
  long until = should_poll(rw, start) ? start + rw->window_ns : start;
  for (;;) {
    ssize_t n = read(rw->fd, buf, cap);
    if (n >= 0 || errno != EAGAIN) {
      if (n >= 0) note_gap(rw, now_ns() - start);
      return n;
    }
    if (now_ns() < until) { sched_yield(); continue; }   /* yield: whoever else is runnable goes first */
    struct pollfd p = { .fd = rw->fd, .events = POLLIN };
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
    /* woken (or another reader took it): no polling until the next request */
    until = 0;
  }
}
