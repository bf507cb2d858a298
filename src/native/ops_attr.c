/* ops_attr.c: attributes and xattrs: getattr, setattr, readlink, access,
 * setxattr/getxattr/listxattr/removexattr. O_PATH fds are used through
 * "/proc/self/fd/N" where a call cannot take them (chmod, truncate, utimens,
 * xattrs), symlinks through their parent's fd and name. Image volumes: only a
 * no-op setattr is allowed, xattrs are ENOTSUP. Runs on a FUSE reader thread. */
#define _GNU_SOURCE
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define XATTR_VALUE_MAX 65536

void op_getattr(struct req *r) {
  const struct fuse_getattr_in *in = (const void *)r->in;
  struct inode *i = req_inode(r);
  if (!i) return;
  struct stat st;
  int rc;
  struct handle *h = (in->getattr_flags & FUSE_GETATTR_FH) ? handle_get(r->s->it, in->fh) : NULL;
  if (h && h->fd >= 0 && !h->dir) rc = fstat(h->fd, &st) < 0 ? -errno : 0;
  else rc = inode_stat(r->s, i, &st);
  inode_put(r->s->it, i);
  if (rc) reply_err(r, -rc); else reply_attr(r, &st);
}

static int set_times(struct inode *i, struct itable *t, int fd, const struct fuse_setattr_in *in) {
  struct timespec tv[2];
  uint32_t v = in->valid;
  tv[0] = v & FATTR_ATIME_NOW ? (struct timespec){ 0, UTIME_NOW }
        : v & FATTR_ATIME ? (struct timespec){ (time_t)in->atime, in->atimensec }
        : (struct timespec){ 0, UTIME_OMIT };
  tv[1] = v & FATTR_MTIME_NOW ? (struct timespec){ 0, UTIME_NOW }
        : v & FATTR_MTIME ? (struct timespec){ (time_t)in->mtime, in->mtimensec }
        : (struct timespec){ 0, UTIME_OMIT };
  if (fd >= 0) return futimens(fd, tv) < 0 ? -errno : 0;
  if (i->type == S_IFLNK) {
    int pfd;
    char name[NAME_MAX + 1];
    int rc = inode_parent_name(t, i, &pfd, name, sizeof name);
    if (rc) return rc;
    rc = utimensat(pfd, name, tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    close(pfd);
    return rc;
  }
  char pp[PROC_FD_LEN];
  proc_fd(i->fd, pp);
  return utimensat(AT_FDCWD, pp, tv, 0) < 0 ? -errno : 0;
}

void op_setattr(struct req *r) {
  const struct fuse_setattr_in *in = (const void *)r->in;
  struct inode *i = req_inode(r);
  if (!i) return;
  uint32_t v = in->valid;
  const uint32_t times = FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW;
  const uint32_t change = FATTR_MODE | FATTR_UID | FATTR_GID | FATTR_SIZE | times | FATTR_KILL_SUIDGID;
  struct handle *h = (v & FATTR_FH) ? handle_get(r->s->it, in->fh) : NULL;
  int fd = h && h->fd >= 0 && !h->dir ? h->fd : -1;
  struct stat st;
  int rc = 0;
  if (!(v & change)) goto reply;                    /* nothing to do (ctime/lock owner only) */
  if (r->s->cfg.read_only) { rc = -EROFS; goto reply; }
  if (i->kind == INODE_SYNTH) { rc = -EPERM; goto reply; }
  if (i->image) {
    /* fixed size: only setting the size it already has is allowed (a no-op) */
    if ((v & (FATTR_MODE | FATTR_UID | FATTR_GID | times)) ||
        ((v & FATTR_SIZE) && in->size != vol_of(r->s, i)->size)) rc = -EPERM;
    goto reply;
  }
  struct mut m;
  pathbuf p;
  int pl = -ENOENT;
  rc = mut_begin(r, &m);
  if (!rc) rc = mut_node_path(r, &m, i, p, &pl);
  if (!rc) { mut_mark(&m, i->vol, HOT_META, -1, p, pl); rc = mut_hot(&m); }
  char pp[PROC_FD_LEN];
  proc_fd(i->fd, pp);
  int did_size = 0, did_mode = 0, did_own = 0, did_times = 0;
  mode_t mode = in->mode & 07777;
  if (!rc && (v & FATTR_SIZE)) {
    if (i->type == S_IFDIR) rc = -EISDIR;
    else if (i->type != S_IFREG) rc = -EINVAL;
    else rc = (fd >= 0 ? ftruncate(fd, (off_t)in->size) : truncate(pp, (off_t)in->size)) < 0 ? -errno : 0;
    did_size = !rc;
  }
  if (!rc && !(v & FATTR_MODE) && (v & FATTR_KILL_SUIDGID) && i->type == S_IFREG &&
      fstatat(i->fd, "", &st, AT_EMPTY_PATH) == 0) {
    /* HANDLE_KILLPRIV_V2: a truncate/chown by someone without CAP_FSETID */
    mode_t m2 = st.st_mode & 07777 & ~(mode_t)S_ISUID;
    if (st.st_mode & S_IXGRP) m2 &= ~(mode_t)S_ISGID;
    if (m2 != (st.st_mode & 07777)) { v |= FATTR_MODE; mode = m2; }
  }
  if (!rc && (v & FATTR_MODE)) {
    if (i->type == S_IFLNK) rc = -EOPNOTSUPP;
    else rc = (fd >= 0 ? fchmod(fd, mode) : chmod(pp, mode)) < 0 ? -errno : 0;
    did_mode = !rc;
  }
  if (!rc && (v & (FATTR_UID | FATTR_GID))) {
    uid_t uid = v & FATTR_UID ? in->uid : (uid_t)-1;
    gid_t gid = v & FATTR_GID ? in->gid : (gid_t)-1;
    rc = fchownat(i->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    did_own = !rc;
  }
  if (!rc && (v & times)) {
    rc = set_times(i, r->s->it, fd, in);
    did_times = !rc;
  }
  int src = fstatat(i->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
  struct rec recs[4];
  int n = 0;
  if (pl >= 0 && !src) {
    struct rec base = { .vol = i->vol, .path = p, .path_len = (size_t)pl };
    if (did_size) { recs[n] = base; recs[n].kind = REC_TRUNCATE; recs[n++].size = in->size; }
    if (did_mode) { recs[n] = base; recs[n].kind = REC_CHMOD; recs[n++].mode = mode; }
    if (did_own) { recs[n] = base; recs[n].kind = REC_CHOWN; recs[n].uid = st.st_uid; recs[n++].gid = st.st_gid; }
    if (did_times) { recs[n] = base; recs[n].kind = REC_UTIMENS; recs[n].atime = st.st_atim; recs[n++].mtime = st.st_mtim; }
  }
  int jrc = mut_commit(&m, n > 0, recs, n);
  int drc = mut_end(&m);
  if (!rc) rc = jrc ? jrc : drc ? drc : src;
  inode_put(r->s->it, i);
  if (rc) reply_err(r, -rc); else reply_attr(r, &st);
  return;
reply:
  if (!rc) rc = inode_stat(r->s, i, &st);
  inode_put(r->s->it, i);
  if (rc) reply_err(r, -rc); else reply_attr(r, &st);
}

void op_readlink(struct req *r) {
  struct inode *i = req_inode(r);
  if (!i) return;
  ssize_t n = i->type == S_IFLNK ? readlinkat(i->fd, "", r->out, PATH_MAX) : -1;
  int e = i->type == S_IFLNK ? errno : EINVAL;
  inode_put(r->s->it, i);
  if (n < 0) reply_err(r, e); else reply_buf(r, r->out, (size_t)n);
}

/* default_permissions: the kernel checks modes itself */
void op_access(struct req *r) { reply_err(r, 0); }

/* ---------- xattrs ---------- */

/* The path an xattr call can use for i: "/proc/self/fd/N" (followed), or for
 * a symlink "/proc/self/fd/PARENT/name" with the l* calls (*pfd to close). */
static int xattr_path(struct req *r, struct inode *i, char *buf, size_t cap, int *pfd, int *nofollow) {
  *pfd = -1;
  *nofollow = 0;
  if (i->kind == INODE_SYNTH || i->image) return -ENOTSUP;
  if (i->type != S_IFLNK) { proc_fd(i->fd, buf); return 0; }
  char name[NAME_MAX + 1];
  int rc = inode_parent_name(r->s->it, i, pfd, name, sizeof name);
  if (rc) return rc == -ENOENT ? -EPERM : rc;
  snprintf(buf, cap, "/proc/self/fd/%d/%s", *pfd, name);
  *nofollow = 1;
  return 0;
}

void op_getxattr(struct req *r) {
  const struct fuse_getxattr_in *in = (const void *)r->in;
  size_t off = sizeof *in;
  int err = 0;
  const char *name = in_str(r, &off, XATTR_NAME_MAX, &err);
  if (!name) { reply_err(r, err == ENAMETOOLONG ? ERANGE : err); return; }
  struct inode *i = req_inode(r);
  if (!i) return;
  char path[PROC_FD_LEN + NAME_MAX + 2];
  int pfd, nf;
  int rc = xattr_path(r, i, path, sizeof path, &pfd, &nf);
  ssize_t n = 0;
  size_t cap = in->size < XATTR_VALUE_MAX ? in->size : XATTR_VALUE_MAX;
  if (!rc) {
    n = nf ? lgetxattr(path, name, in->size ? r->out : NULL, cap) : getxattr(path, name, in->size ? r->out : NULL, cap);
    if (n < 0) rc = -errno;
  }
  if (pfd >= 0) close(pfd);
  inode_put(r->s->it, i);
  if (rc) reply_err(r, -rc);
  else if (!in->size) reply_xattr_size(r, (uint32_t)n);
  else reply_buf(r, r->out, (size_t)n);
}

void op_listxattr(struct req *r) {
  const struct fuse_getxattr_in *in = (const void *)r->in;
  struct inode *i = req_inode(r);
  if (!i) return;
  char path[PROC_FD_LEN + NAME_MAX + 2];
  int pfd, nf;
  int rc = xattr_path(r, i, path, sizeof path, &pfd, &nf);
  ssize_t n = 0;
  size_t cap = in->size < XATTR_VALUE_MAX ? in->size : XATTR_VALUE_MAX;
  if (rc == -ENOTSUP) rc = 0;                 /* nothing to list */
  else if (!rc) {
    n = nf ? llistxattr(path, in->size ? r->out : NULL, cap) : listxattr(path, in->size ? r->out : NULL, cap);
    if (n < 0) rc = -errno;
  }
  if (pfd >= 0) close(pfd);
  inode_put(r->s->it, i);
  if (rc) reply_err(r, -rc);
  else if (!in->size) reply_xattr_size(r, (uint32_t)n);
  else reply_buf(r, r->out, (size_t)n);
}

/* setxattr and removexattr: one backing call, journalled. */
static void change_xattr(struct req *r, const char *name, const char *value, size_t size, uint32_t flags, int remove) {
  struct inode *i = req_inode(r);
  if (!i) return;
  char path[PROC_FD_LEN + NAME_MAX + 2];
  int pfd = -1, nf = 0;
  struct mut m;
  pathbuf p;
  int pl = -ENOENT;
  int rc = mut_begin(r, &m);
  if (!rc) rc = xattr_path(r, i, path, sizeof path, &pfd, &nf);
  if (!rc) rc = mut_node_path(r, &m, i, p, &pl);
  if (!rc) rc = mut_xattr_name(&m, name);
  if (!rc) { mut_mark(&m, i->vol, HOT_META, -1, p, pl); rc = mut_hot(&m); }
  if (!rc) {
    int e = remove ? (nf ? lremovexattr(path, name) : removexattr(path, name))
                   : (nf ? lsetxattr(path, name, value, size, (int)flags) : setxattr(path, name, value, size, (int)flags));
    if (e < 0) rc = -errno;
  }
  if (pfd >= 0) close(pfd);
  struct rec rec = { .kind = remove ? REC_REMOVEXATTR : REC_SETXATTR, .vol = i->vol, .path = p,
                     .path_len = pl > 0 ? (size_t)pl : 0, .name = name, .name_len = strlen(name),
                     .data = value, .data_len = remove ? 0 : size, .flags = flags };
  int jrc = mut_commit(&m, !rc, &rec, pl >= 0 ? 1 : 0);
  int drc = mut_end(&m);
  if (!rc) rc = jrc ? jrc : drc;
  inode_put(r->s->it, i);
  reply_err(r, -rc);
}

void op_setxattr(struct req *r) {
  /* FUSE_SETXATTR_EXT is not negotiated: the 8-byte header (size, flags) */
  const struct fuse_setxattr_in *in = (const void *)r->in;
  uint32_t size = in->size, flags = in->flags;
  size_t off = FUSE_COMPAT_SETXATTR_IN_SIZE;
  int err = 0;
  const char *name = in_str(r, &off, XATTR_NAME_MAX, &err);
  if (!name) { reply_err(r, err == ENAMETOOLONG ? ERANGE : err); return; }
  if (!*name) { reply_err(r, EINVAL); return; }
  if (size > XATTR_VALUE_MAX) { reply_err(r, E2BIG); return; }
  if (size > r->inlen - off) { reply_err(r, EINVAL); return; }
  if (flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE)) { reply_err(r, EINVAL); return; }
  change_xattr(r, name, r->in + off, size, flags, 0);
}

void op_removexattr(struct req *r) {
  size_t off = 0;
  int err = 0;
  const char *name = in_str(r, &off, XATTR_NAME_MAX, &err);
  if (!name) { reply_err(r, err == ENAMETOOLONG ? ERANGE : err); return; }
  change_xattr(r, name, NULL, 0, 0, 1);
}
