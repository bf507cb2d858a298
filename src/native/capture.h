/* capture.h: the contract between the FUSE ops (ops*.c, on FUSE worker
 * threads) and the journal side (journal.c, activity.c, capture.c).
 *
 * A mutation, on the worker thread that read the request:
 *
 *   capture_lock(c)                    group lock; waits while the overflow gate is shut
 *   path = inode path (under the lock, so it is the path at this point of history)
 *   capture_mark(c, marks, n)          activity log: the parts about to change are "hot"
 *   backing op (*at() call)
 *   ok:   capture_append(c, recs, nrec, marks, n, &seq)   one batch; releases the marks
 *   fail: capture_release(c, marks, n)
 *   capture_unlock(c)
 *   ok:   capture_durable(c, seq)      sync mode: waits for the secondary's ack (outside the lock)
 *   reply
 *
 * Holding the one group lock from before the backing op to after the append
 * is what makes the journal order the backing store's order (DESIGN.md).
 * A record's strings are not NUL-terminated: lengths are given. Paths are
 * volume-relative, no leading slash, "" for the volume root. */
#ifndef REPLFS_CAPTURE_H
#define REPLFS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct capture;

/* Same kinds and fields as src/core/records.ts (the TS side decodes them). */
enum rec_kind {
  REC_WRITE, REC_TRUNCATE, REC_CREATE, REC_MKDIR, REC_MKNOD, REC_UNLINK, REC_RMDIR,
  REC_RENAME, REC_LINK, REC_SYMLINK, REC_CHMOD, REC_CHOWN, REC_UTIMENS,
  REC_SETXATTR, REC_REMOVEXATTR, REC_FSYNC
};

struct rec {
  enum rec_kind kind;
  uint32_t vol;
  const char *path; size_t path_len;
  const char *to; size_t to_len;       /* rename/link: the new name; symlink: the target */
  const char *name; size_t name_len;   /* xattr name */
  const void *data; size_t data_len;   /* write: the bytes written; setxattr: the value */
  uint64_t off;                        /* write */
  uint64_t size;                       /* truncate */
  uint32_t mode;                       /* create mkdir chmod: permission bits (07777); mknod: with the type bits */
  uint32_t rdev;                       /* mknod */
  uint32_t uid, gid;                   /* chown: the resulting owner */
  struct timespec atime, mtime;        /* utimens: the resulting times (ns kept) */
  uint32_t flags;                      /* setxattr: XATTR_CREATE / XATTR_REPLACE */
};

/* Activity-log marks (src/capture/activity-log.ts): a whole path (namespace
 * ops), its metadata, or one 1 MiB region of a file's content. */
enum hot_kind { HOT_PATH, HOT_META, HOT_REGION };
struct hot {
  uint32_t vol;
  enum hot_kind kind;
  int64_t region;                      /* HOT_REGION: offset / 1 MiB; else -1 */
  const char *path; size_t path_len;
};

/* All return 0 or -errno. */
int  capture_lock(struct capture *c);
void capture_unlock(struct capture *c);
int  capture_mark(struct capture *c, const struct hot *marks, int n);
void capture_release(struct capture *c, const struct hot *marks, int n);
/* Appends recs as one batch (sequences seq .. seq+nrec-1; *seq = the last).
 * In track mode nothing is journalled: the records go to the dirty set and
 * the marks stay hot until it is saved. On a journal error the marks stay
 * hot (a restart restates them) and the error is returned. */
int  capture_append(struct capture *c, const struct rec *recs, int nrec,
                    const struct hot *marks, int nmarks, uint64_t *seq);
/* After the reply-worthy part: waits as the mode promises (async: nothing;
 * sync: the secondary acknowledged seq, or the sync timeout fell back). */
int  capture_durable(struct capture *c, uint64_t seq);
/* An application's fsync: the journal is on disk through seq (group commit:
 * one fdatasync covers every thread waiting). */
int  capture_sync(struct capture *c, uint64_t seq);

#endif
