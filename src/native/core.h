/* core.h: what the N-API surface (addon.c) and a standalone harness hand the
 * FUSE session (session.c, inodes.c, ops*.c). Runs on the thread that starts
 * or stops the session; the session's own threads never call back into JS. */
#ifndef REPLFS_CORE_H
#define REPLFS_CORE_H

#include <stdint.h>
#include "capture.h"

enum vol_kind { VOL_DIR = 0, VOL_IMAGE = 1 };

struct core_volume {
  uint32_t num;                /* the volume's number in its group (records carry it) */
  const char *name;            /* top-level entry of a group mount */
  enum vol_kind kind;
  const char *path;            /* backing directory or image file (absolute) */
  uint64_t size;               /* image: fixed size in bytes */
};

struct core_config {
  const char *mountpoint;      /* absolute */
  const char *fsname;          /* shown in /proc/mounts */
  int read_only;               /* every change refused with EROFS (a secondary's view) */
  int single;                  /* 1: volume 0 is the mount root; 0: the root lists the volumes */
  const struct core_volume *volumes;
  int nvolumes;
  int threads;                 /* FUSE reader threads (0: default) */
  uint32_t max_write;          /* bytes; 0: default (256 KiB) */
  double attr_timeout, entry_timeout; /* seconds */
  struct capture *capture;     /* NULL with read_only=0: plain passthrough, nothing journalled (benchmarks, harness) */
  int debug;                   /* one line per request on stderr */
  int io_uring;                /* serve requests over FUSE-over-io_uring (uring.c); /dev/fuse otherwise */
  unsigned poll_us;            /* busy-poll /dev/fuse this long after a reply while a CPU idles (reader_wait.c); 0: off */
};

struct session;

/* Mounts and starts the reader threads; returns once the kernel's INIT is
 * answered (the mount is usable) or with -errno and a message in err. */
int  session_start(const struct core_config *cfg, struct session **out, char *err, size_t errlen);
/* Unmounts (lazily if busy), joins the threads, frees everything. */
void session_stop(struct session *s);
/* Counters for status/bench (requests served, by opcode class). */
struct session_stats { uint64_t requests, writes, write_bytes, reads, read_bytes, errors; };
void session_stats(struct session *s, struct session_stats *out);

#endif
