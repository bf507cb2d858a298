/* session.h: what the op files (ops*.c) see of a FUSE session: the request
 * being served and one reply helper per reply kind. Everything here runs on
 * a FUSE thread: a reader of /dev/fuse, or with --io-uring a ring queue's
 * thread (uring.c); the ops cannot tell them apart. */
#ifndef REPLFS_SESSION_H
#define REPLFS_SESSION_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "core.h"

struct itable;
struct inode;

struct session {
  struct core_config cfg;      /* deep copy: strings and volumes owned here */
  struct core_volume *vols;
  int fd;                      /* the /dev/fuse fd that mount(2) was given */
  int nthreads;
  struct worker *workers;
  struct uring *ur;            /* cfg.io_uring: the ring queues (uring.c), else NULL */
  struct itable *it;
  struct inode **roots;         /* per volume (index as in cfg.volumes): its root inode */
  struct inode *synth;         /* group mount: the synthetic root (nodeid 1) */
  uint32_t proto_minor;        /* negotiated 7.x */
  uint32_t max_write, bufsize;
  unsigned conn_id;            /* /sys/fs/fuse/connections/<id> (0: unknown) */
  int mounted, alive;          /* alive: worker threads still running */
  struct timespec start_time;  /* the synthetic root's times */
  struct {                     /* updated with __atomic adds */
    uint64_t requests, writes, write_bytes, reads, read_bytes, errors;
  } st;
};

/* One request as read from the device; ops reply exactly once through it. */
struct req {
  struct session *s;
  int fd;                      /* reply on the fd it came from (clone fds) */
  const struct fuse_in_header *h;
  const char *in;              /* body after the header */
  size_t inlen;
  char *out;                   /* the thread's reply buffer (bufsize bytes) */
  int replied;
  struct uring_ent *ent;       /* came from a ring entry: the reply goes into it (uring.c) */
};

/* Runs one request through op_table (any FUSE thread). */
void session_dispatch(struct req *r);
/* What every FUSE thread does first: its own umask 0, its name. */
void session_thread_setup(const char *name);

/* Reply helpers: each writes one reply (header + payload). */
void reply_err(struct req *r, int err);          /* err: positive errno or 0 */
void reply_none(struct req *r);                  /* FORGET, BATCH_FORGET, INTERRUPT */
void reply_buf(struct req *r, const void *p, size_t n);
void reply_entry(struct req *r, uint64_t nodeid, const struct stat *st);
/* The entry part of a reply (also each READDIRPLUS entry). */
void fill_entry(struct req *r, struct fuse_entry_out *e, uint64_t nodeid, const struct stat *st);
void reply_attr(struct req *r, const struct stat *st);
void reply_open(struct req *r, uint64_t fh, uint32_t open_flags);
void reply_create(struct req *r, uint64_t nodeid, const struct stat *st, uint64_t fh, uint32_t open_flags);
void reply_write(struct req *r, uint32_t n);
void reply_statfs(struct req *r, const struct fuse_kstatfs *k);
void reply_xattr_size(struct req *r, uint32_t n);
void reply_lseek(struct req *r, uint64_t off);
/* Not a reply: tells the kernel its cached attributes of nodeid are stale
 * (FUSE_NOTIFY_INVAL_INODE with offset -1: no page-cache range, so it is safe
 * while the kernel waits on this very request). */
void notify_inval_attr(struct req *r, uint64_t nodeid);

/* The op table (ops.c): handler and the least body size it needs. */
typedef void (*op_fn)(struct req *r);
struct op_desc { op_fn fn; uint32_t min_in; const char *name; };
extern const struct op_desc op_table[];
extern const int op_table_len;

#endif
