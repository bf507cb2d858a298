/* ops.h: helpers shared by the op files (ops.c, ops_dir.c, ops_file.c,
 * ops_attr.c). Everything runs on the FUSE reader thread that read the
 * request. */
#ifndef REPLFS_OPS_H
#define REPLFS_OPS_H

#include <limits.h>
#include "capture.h"
#include "inodes.h"
#include "session.h"

#define PROC_FD_LEN 40

/* The request's inode with a ref held (inode_put it), or NULL (replied ESTALE). */
struct inode *req_inode(struct req *r);
struct inode *req_node(struct req *r, uint64_t nodeid);
/* A NUL-terminated file name at *off in the body, advanced past it; NULL and
 * *err set (EINVAL, ENAMETOOLONG) when bad. */
const char *in_name(struct req *r, size_t *off, int *err);
/* Like in_name for a longer string (symlink target), up to PATH_MAX-1 bytes. */
const char *in_str(struct req *r, size_t *off, size_t max, int *err);
void proc_fd(int fd, char buf[PROC_FD_LEN]);
/* Stat of an inode (synthetic root included). */
int inode_stat(struct session *s, struct inode *i, struct stat *st);
/* Find-or-add the child name of parent and count a lookup; fills st. */
int do_lookup(struct session *s, struct inode *parent, const char *name, uint64_t *nodeid, struct stat *st);
const struct core_volume *vol_of(struct session *s, struct inode *i);

/* A mutation: the group lock from before the path is computed until after
 * the journal append (capture.h), then the durable wait, then the reply. */
struct mut {
  struct capture *c;           /* NULL: passthrough, nothing journalled */
  int locked, marked, nmarks;
  struct hot marks[4];
  uint64_t seq;
  int have_seq, sync_batch;   /* appended through seq; in a sync-mode batch (waited for) */
};
/* EROFS on a read-only mount; else takes the capture lock (if any), and
 * refuses with its errno while a restate is owed (capture_owed). */
int mut_begin(struct req *r, struct mut *m);
/* The same for an fsync, which changes nothing: not refused while a restate is owed. */
int mut_begin_barrier(struct req *r, struct mut *m);
void mut_mark(struct mut *m, uint32_t vol, enum hot_kind kind, int64_t region, const char *path, int path_len);
/* Before the backing op: 0 if the path or link target can be journalled
 * (capture_name_ok: any bytes but NUL), else -EINVAL. No-op without
 * capture or without a path (len < 0). */
int mut_text(struct mut *m, const char *s, int len);
/* An xattr name: valid UTF-8 (it is text in the journal), else -EILSEQ. */
int mut_xattr_name(struct mut *m, const char *s);
/* mut_begin for a new or removed entry `name` of `parent`: refused in the
 * synthetic root (the volumes stay) and in a non-directory; *pl is the
 * entry's path length in p (or -ENOENT when it has none: not journalled). */
int mut_begin_child(struct req *r, struct mut *m, struct inode *parent, const char *name, char *p, int *pl);
/* After mut_begin, for a change to node `i` itself: its path in p, *pl its
 * length (-ENOENT when it has none: not journalled); -ENAMETOOLONG past
 * PATH_MAX, or mut_text's answer. */
int mut_node_path(struct req *r, struct mut *m, struct inode *i, char *p, int *pl);
/* Before the backing op: publish the marks. */
int mut_hot(struct mut *m);
/* After the backing op: append recs (ok) or release the marks (failed). Returns 0 or -errno. */
int mut_commit(struct mut *m, int ok, const struct rec *recs, int nrec);
/* Unlocks; then waits as the mode promises for the appended batch. */
int mut_end(struct mut *m);
/* fsync's end: unlocks, then capture_sync (the journal on disk) and the durable wait for every record before its own. */
int mut_end_sync(struct mut *m);

/* Path buffers: one per role, on the stack of the op. */
typedef char pathbuf[PATH_MAX];

/* op handlers */
void op_lookup(struct req *r);
void op_forget(struct req *r);
void op_batch_forget(struct req *r);
void op_getattr(struct req *r);
void op_setattr(struct req *r);
void op_readlink(struct req *r);
void op_symlink(struct req *r);
void op_mknod(struct req *r);
void op_mkdir(struct req *r);
void op_unlink(struct req *r);
void op_rmdir(struct req *r);
void op_rename(struct req *r);
void op_rename2(struct req *r);
void op_link(struct req *r);
void op_open(struct req *r);
void op_create(struct req *r);
void op_read(struct req *r);
void op_write(struct req *r);
void op_flush(struct req *r);
void op_release(struct req *r);
void op_fsync(struct req *r);
void op_opendir(struct req *r);
void op_readdir(struct req *r);
void op_readdirplus(struct req *r);
void op_releasedir(struct req *r);
void op_fsyncdir(struct req *r);
void op_statfs(struct req *r);
void op_access(struct req *r);
void op_setxattr(struct req *r);
void op_getxattr(struct req *r);
void op_listxattr(struct req *r);
void op_removexattr(struct req *r);
void op_fallocate(struct req *r);
void op_lseek(struct req *r);

/* ops_dir.c: shared by create (ops_file.c) and mknod(S_IFREG) */
int new_node_owner(struct req *r, struct inode *parent, uid_t *uid, gid_t *gid);
void create_file(struct req *r, struct inode *parent, const char *name, uint32_t flags,
                 uint32_t mode, uint32_t open_flags, int want_open);
uint32_t open_reply_flags(struct session *s);
/* fsync, fsyncdir: REC_FSYNC, then (unlocked) capture_sync and the backing fsync; replies. */
void do_fsync(struct req *r, struct inode *i, int fd, int datasync);

#endif
