/* How a /dev/fuse reader thread waits for its next request (reader_wait.c):
 * a short busy-poll after each reply while a CPU would otherwise be idle,
 * then a blocking wait. */
#ifndef REPLFS_READER_WAIT_H
#define REPLFS_READER_WAIT_H

#include <sys/types.h>

struct reader_wait {
  int fd;                  /* the reader's /dev/fuse fd (O_NONBLOCK while polling is on) */
  long window_ns;          /* 0: never poll, a plain blocking read */
  long gap_avg_ns;         /* moving average of reply-to-next-request gaps (capped) */
  int load_fd;             /* /proc/loadavg, sampled at most once per LOAD_SAMPLE_NS */
  long load_at_ns;
  int cpu_idle;            /* at the last sample: fewer runnable threads than CPUs, counting this one */
  int ncpu;
};

/* window_us 0 turns polling off. Returns 0, or -errno (fcntl). */
int reader_wait_init(struct reader_wait *rw, int fd, unsigned window_us);
void reader_wait_close(struct reader_wait *rw);
/* read(2) of the next request into buf: the same results, EAGAIN never. */
ssize_t reader_wait_read(struct reader_wait *rw, void *buf, size_t cap);

#endif
