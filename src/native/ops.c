/* ops.c: the op table (opcode -> handler, least body size), as libfuse's
 * passthrough_hp assign_operations() lists every op, and the helpers the op
 * files share: request decoding, inode resolution, lookup, and the mutation
 * sequence of capture.h (lock, path, mark, backing op, append, unlock,
 * durable). Everything runs on a FUSE reader thread. */
#define _GNU_SOURCE
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The harness and benchmarks link the core without capture.c (capture ==
 * NULL, never called): weak references keep that link possible. */
#pragma weak capture_lock
#pragma weak capture_unlock
#pragma weak capture_mark
#pragma weak capture_release
#pragma weak capture_append
#pragma weak capture_durable
#pragma weak capture_sync
#pragma weak capture_text_ok
#pragma weak capture_name_ok
#pragma weak capture_owed

static void op_destroy(struct req *r) { reply_err(r, 0); }

#define OP(code, fn, min) [code] = { fn, min, #code }
const struct op_desc op_table[] = {
  OP(FUSE_LOOKUP, op_lookup, 1),
  OP(FUSE_FORGET, op_forget, sizeof(struct fuse_forget_in)),
  OP(FUSE_GETATTR, op_getattr, sizeof(struct fuse_getattr_in)),
  OP(FUSE_SETATTR, op_setattr, sizeof(struct fuse_setattr_in)),
  OP(FUSE_READLINK, op_readlink, 0),
  OP(FUSE_SYMLINK, op_symlink, 2),
  OP(FUSE_MKNOD, op_mknod, sizeof(struct fuse_mknod_in)),
  OP(FUSE_MKDIR, op_mkdir, sizeof(struct fuse_mkdir_in)),
  OP(FUSE_UNLINK, op_unlink, 1),
  OP(FUSE_RMDIR, op_rmdir, 1),
  OP(FUSE_RENAME, op_rename, sizeof(struct fuse_rename_in)),
  OP(FUSE_LINK, op_link, sizeof(struct fuse_link_in)),
  OP(FUSE_OPEN, op_open, sizeof(struct fuse_open_in)),
  OP(FUSE_READ, op_read, sizeof(struct fuse_read_in)),
  OP(FUSE_WRITE, op_write, sizeof(struct fuse_write_in)),
  OP(FUSE_STATFS, op_statfs, 0),
  OP(FUSE_RELEASE, op_release, sizeof(struct fuse_release_in)),
  OP(FUSE_FSYNC, op_fsync, sizeof(struct fuse_fsync_in)),
  /* without FUSE_SETXATTR_EXT the kernel sends the 8-byte compat header */
  OP(FUSE_SETXATTR, op_setxattr, FUSE_COMPAT_SETXATTR_IN_SIZE),
  OP(FUSE_GETXATTR, op_getxattr, sizeof(struct fuse_getxattr_in)),
  OP(FUSE_LISTXATTR, op_listxattr, sizeof(struct fuse_getxattr_in)),
  OP(FUSE_REMOVEXATTR, op_removexattr, 1),
  OP(FUSE_FLUSH, op_flush, sizeof(struct fuse_flush_in)),
  OP(FUSE_OPENDIR, op_opendir, sizeof(struct fuse_open_in)),
  OP(FUSE_READDIR, op_readdir, sizeof(struct fuse_read_in)),
  OP(FUSE_READDIRPLUS, op_readdirplus, sizeof(struct fuse_read_in)),
  OP(FUSE_RELEASEDIR, op_releasedir, sizeof(struct fuse_release_in)),
  OP(FUSE_FSYNCDIR, op_fsyncdir, sizeof(struct fuse_fsync_in)),
  OP(FUSE_ACCESS, op_access, sizeof(struct fuse_access_in)),
  OP(FUSE_CREATE, op_create, sizeof(struct fuse_create_in)),
  OP(FUSE_DESTROY, op_destroy, 0),
  OP(FUSE_BATCH_FORGET, op_batch_forget, sizeof(struct fuse_batch_forget_in)),
  OP(FUSE_FALLOCATE, op_fallocate, sizeof(struct fuse_fallocate_in)),
  OP(FUSE_RENAME2, op_rename2, sizeof(struct fuse_rename2_in)),
  OP(FUSE_LSEEK, op_lseek, sizeof(struct fuse_lseek_in)),
  /* anything else (GETLK/SETLK: locks stay local; IOCTL, POLL, BMAP,
   * COPY_FILE_RANGE, TMPFILE, SYNCFS...) gets ENOSYS from dispatch() */
  [FUSE_TMPFILE] = { NULL, 0, "FUSE_TMPFILE" },
};
const int op_table_len = (int)(sizeof op_table / sizeof op_table[0]);

/* ---------- decoding ---------- */

struct inode *req_node(struct req *r, uint64_t nodeid) {
  struct inode *i = inode_get(r->s->it, nodeid);
  if (!i) reply_err(r, ESTALE);
  return i;
}

struct inode *req_inode(struct req *r) { return req_node(r, r->h->nodeid); }

const char *in_str(struct req *r, size_t *off, size_t max, int *err) {
  if (*off >= r->inlen) { *err = EINVAL; return NULL; }
  const char *p = r->in + *off;
  const char *z = memchr(p, 0, r->inlen - *off);
  if (!z) { *err = EINVAL; return NULL; }
  size_t n = (size_t)(z - p);
  if (n > max) { *err = ENAMETOOLONG; return NULL; }
  *off += n + 1;
  return p;
}

const char *in_name(struct req *r, size_t *off, int *err) {
  const char *n = in_str(r, off, NAME_MAX, err);
  if (n && (!*n || strchr(n, '/'))) { *err = EINVAL; return NULL; }
  return n;
}

void proc_fd(int fd, char buf[PROC_FD_LEN]) { snprintf(buf, PROC_FD_LEN, "/proc/self/fd/%d", fd); }

const struct core_volume *vol_of(struct session *s, struct inode *i) {
  for (int k = 0; k < s->cfg.nvolumes; k++)
    if (s->vols[k].num == i->vol) return &s->vols[k];
  return &s->vols[0];
}

int inode_stat(struct session *s, struct inode *i, struct stat *st) {
  if (i->kind == INODE_SYNTH) {
    memset(st, 0, sizeof *st);
    st->st_ino = 1;
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    st->st_blksize = 4096;
    st->st_atim = st->st_mtim = st->st_ctim = s->start_time;
    return 0;
  }
  if (fstatat(i->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return -errno;
  return 0;
}

int do_lookup(struct session *s, struct inode *parent, const char *name, uint64_t *nodeid, struct stat *st) {
  if (parent->kind == INODE_SYNTH) {
    for (int k = 0; k < s->cfg.nvolumes; k++) {
      if (strcmp(s->vols[k].name, name) != 0 || !s->roots[k]) continue;
      int rc = inode_stat(s, s->roots[k], st);
      if (rc) return rc;
      inode_lookup_again(s->it, s->roots[k]);
      *nodeid = s->roots[k]->nodeid;
      return 0;
    }
    return -ENOENT;
  }
  if (parent->type != S_IFDIR) return -ENOTDIR;
  if (!strcmp(name, ".") || !strcmp(name, "..")) return -ENOENT;   /* the kernel resolves those */
  int fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) { int e = errno; close(fd); return -e; }
  *nodeid = inode_link(s->it, parent, name, fd, st);
  return *nodeid ? 0 : -ENOMEM;
}

/* ---------- mutations ---------- */

int mut_begin_barrier(struct req *r, struct mut *m) {
  memset(m, 0, sizeof *m);
  if (r->s->cfg.read_only) return -EROFS;
  m->c = r->s->cfg.capture;
  if (!m->c) return 0;
  int rc = capture_lock(m->c);
  if (rc) return rc;
  m->locked = 1;
  return 0;
}

int mut_begin(struct req *r, struct mut *m) {
  int rc = mut_begin_barrier(r, m);
  if (rc || !m->c) return rc;
  return -capture_owed(m->c);   /* refused before the backing store (capture.c owe_restate); mut_end lets the lock go */
}

void mut_mark(struct mut *m, uint32_t vol, enum hot_kind kind, int64_t region, const char *path, int path_len) {
  if (!m->c || path_len < 0 || m->nmarks == (int)(sizeof m->marks / sizeof m->marks[0])) return;
  m->marks[m->nmarks++] = (struct hot){ .vol = vol, .kind = kind, .region = region,
                                        .path = path, .path_len = (size_t)path_len };
}

int mut_text(struct mut *m, const char *s, int len) {
  if (!m->c || len < 0) return 0;
  return capture_name_ok(s, (size_t)len);
}

int mut_xattr_name(struct mut *m, const char *s) {
  if (!m->c) return 0;
  return capture_text_ok(s, strlen(s));
}

int mut_begin_child(struct req *r, struct mut *m, struct inode *parent, const char *name, char *p, int *pl) {
  int rc = mut_begin(r, m);
  *pl = -ENOENT;
  if (!rc && parent->kind == INODE_SYNTH) rc = -EPERM;
  if (!rc && parent->type != S_IFDIR) rc = -ENOTDIR;
  if (!rc) {
    *pl = inode_child_path(r->s->it, parent, name, p, sizeof(pathbuf));
    if (*pl == -ENAMETOOLONG) rc = *pl;
  }
  if (!rc) rc = mut_text(m, p, *pl);
  return rc;
}

int mut_node_path(struct req *r, struct mut *m, struct inode *i, char *p, int *pl) {
  *pl = inode_path(r->s->it, i, p, sizeof(pathbuf));
  if (*pl == -ENAMETOOLONG) return *pl;
  return mut_text(m, p, *pl);
}

int mut_hot(struct mut *m) {
  if (!m->c || !m->nmarks) return 0;
  int rc = capture_mark(m->c, m->marks, m->nmarks);
  if (rc == 0) m->marked = 1;
  return rc;
}

int mut_commit(struct mut *m, int ok, const struct rec *recs, int nrec) {
  if (!m->c) return 0;
  if (!ok || nrec == 0) {
    if (m->marked) capture_release(m->c, m->marks, m->nmarks);
    m->marked = 0;
    return 0;
  }
  int rc = capture_append(m->c, recs, nrec, m->marked ? m->marks : NULL, m->marked ? m->nmarks : 0, &m->seq, &m->sync_batch);
  m->marked = 0;
  if (rc == 0) m->have_seq = 1;
  return rc;
}

int mut_end(struct mut *m) {
  if (m->marked) { capture_release(m->c, m->marks, m->nmarks); m->marked = 0; }
  if (m->locked) { capture_unlock(m->c); m->locked = 0; }
  if (m->have_seq && m->sync_batch) return capture_durable(m->c, m->seq, 0);
  return 0;
}

/* An fsync's end: the journal on disk through its record; in sync mode, the
 * secondary's too. A sync write returns once the secondary's journal file
 * holds it (its page cache, as a local write's); the fsync record is what
 * makes the secondary sync its journal (replicate/receiver.ts), and its ack
 * says the disk there holds everything through it. The local sync runs while
 * the record travels. */
int mut_end_sync(struct mut *m) {
  uint64_t seq = m->seq;
  int have = m->have_seq, sync_batch = m->sync_batch;
  m->have_seq = 0;
  mut_end(m);
  int rc = have ? capture_sync(m->c, seq) : 0;
  if (!rc && have && sync_batch) rc = capture_durable(m->c, seq, 1);
  return rc;
}
