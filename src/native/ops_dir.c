/* ops_dir.c: the namespace ops (lookup, forget, mkdir, mknod, symlink,
 * unlink, rmdir, rename, link) and directory handles (opendir, readdir,
 * releasedir, fsyncdir), plus statfs. Each does one backing *at() call on
 * the parent's O_PATH fd and replies an errno; mutations follow capture.h's
 * sequence through struct mut. Runs on a FUSE reader thread. */
#define _GNU_SOURCE
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* ---------- lookup / forget ---------- */

void op_lookup(struct req *r) {
  size_t off = 0;
  int err = 0;
  const char *name = in_name(r, &off, &err);
  if (!name) { reply_err(r, err); return; }
  struct inode *p = req_inode(r);
  if (!p) return;
  uint64_t id;
  struct stat st;
  int rc = do_lookup(r->s, p, name, &id, &st);
  inode_put(r->s->it, p);
  if (rc) reply_err(r, -rc); else reply_entry(r, id, &st);
}

void op_forget(struct req *r) {
  const struct fuse_forget_in *in = (const void *)r->in;
  inode_forget(r->s->it, r->h->nodeid, in->nlookup);
  reply_none(r);
}

void op_batch_forget(struct req *r) {
  const struct fuse_batch_forget_in *in = (const void *)r->in;
  const struct fuse_forget_one *one = (const void *)(r->in + sizeof *in);
  size_t max = (r->inlen - sizeof *in) / sizeof *one;
  for (size_t k = 0; k < in->count && k < max; k++) inode_forget(r->s->it, one[k].nodeid, one[k].nlookup);
  reply_none(r);
}

/* ---------- new nodes ---------- */

/* Who owns a new node: the caller, but a setgid parent's group is inherited.
 * Returns 1 when the gid is inherited (pass -1 to chown). */
int new_node_owner(struct req *r, struct inode *parent, uid_t *uid, gid_t *gid) {
  struct stat pst;
  *uid = r->h->uid;
  *gid = r->h->gid;
  if (fstatat(parent->fd, "", &pst, AT_EMPTY_PATH) == 0 && (pst.st_mode & S_ISGID)) { *gid = (gid_t)-1; return 1; }
  return 0;
}

/* Records for a new node: the create kind, then chown when not root's, then
 * chmod again when special bits are set (a chown on the secondary clears them). */
static int new_node_recs(struct rec *recs, enum rec_kind kind, uint32_t vol, const char *path, int pl,
                         const struct stat *st, const char *target) {
  int n = 0;
  recs[n++] = (struct rec){ .kind = kind, .vol = vol, .path = path, .path_len = (size_t)pl,
                            .mode = kind == REC_MKNOD ? st->st_mode : (st->st_mode & 07777),
                            .rdev = (uint32_t)st->st_rdev,
                            .to = target, .to_len = target ? strlen(target) : 0 };
  if (st->st_uid || st->st_gid)
    recs[n++] = (struct rec){ .kind = REC_CHOWN, .vol = vol, .path = path, .path_len = (size_t)pl,
                              .uid = st->st_uid, .gid = st->st_gid };
  if ((st->st_mode & 07000) && !S_ISLNK(st->st_mode))
    recs[n++] = (struct rec){ .kind = REC_CHMOD, .vol = vol, .path = path, .path_len = (size_t)pl,
                              .mode = st->st_mode & 07777 };
  return n;
}

/* mkdir, mknod (not regular), symlink: create as root, give to the caller,
 * restore special bits the chown cleared, look up, journal, reply. */
static void new_node(struct req *r, struct inode *parent, const char *name, enum rec_kind kind,
                     uint32_t mode, uint32_t rdev, const char *target) {
  struct mut m;
  pathbuf p;
  int pl;
  int rc = mut_begin_child(r, &m, parent, name, p, &pl);
  if (!rc && target) rc = mut_text(&m, target, (int)strlen(target));
  if (!rc) { mut_mark(&m, parent->vol, HOT_PATH, -1, p, pl); rc = mut_hot(&m); }
  if (!rc) {
    int e = kind == REC_MKDIR ? mkdirat(parent->fd, name, mode & 07777)
          : kind == REC_SYMLINK ? symlinkat(target, parent->fd, name)
          : mknodat(parent->fd, name, mode, rdev);
    if (e < 0) rc = -errno;
  }
  struct stat st;
  uint64_t id = 0;
  if (!rc) {
    uid_t uid;
    gid_t gid;
    new_node_owner(r, parent, &uid, &gid);
    if ((uid || (gid != (gid_t)-1 && gid)) && fchownat(parent->fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = -errno;
      unlinkat(parent->fd, name, kind == REC_MKDIR ? AT_REMOVEDIR : 0);
    }
  }
  if (!rc && kind == REC_MKNOD && (mode & 07000) &&
      fstatat(parent->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & 07777) != (mode & 07777))
    fchmodat(parent->fd, name, mode & 07777, 0);   /* the chown cleared suid/sgid */
  if (!rc) rc = do_lookup(r->s, parent, name, &id, &st);
  struct rec recs[3];
  int n = (!rc && pl >= 0) ? new_node_recs(recs, kind, parent->vol, p, pl, &st, target) : 0;
  int jrc = mut_commit(&m, !rc, recs, n);
  int drc = mut_end(&m);
  if (!rc && (jrc || drc)) {
    rc = jrc ? jrc : drc;
    inode_forget(r->s->it, id, 1);
  }
  if (rc) reply_err(r, -rc); else reply_entry(r, id, &st);
}

void op_mkdir(struct req *r) {
  const struct fuse_mkdir_in *in = (const void *)r->in;
  size_t off = sizeof *in;
  int err = 0;
  const char *name = in_name(r, &off, &err);
  if (!name) { reply_err(r, err); return; }
  struct inode *p = req_inode(r);
  if (!p) return;
  new_node(r, p, name, REC_MKDIR, in->mode, 0, NULL);
  inode_put(r->s->it, p);
}

void op_mknod(struct req *r) {
  const struct fuse_mknod_in *in = (const void *)r->in;
  size_t off = sizeof *in;
  int err = 0;
  const char *name = in_name(r, &off, &err);
  if (!name) { reply_err(r, err); return; }
  struct inode *p = req_inode(r);
  if (!p) return;
  if (S_ISREG(in->mode) || (in->mode & S_IFMT) == 0)
    create_file(r, p, name, O_CREAT | O_EXCL | O_WRONLY, in->mode & 07777, 0, 0);
  else if (S_ISFIFO(in->mode) || S_ISSOCK(in->mode) || S_ISCHR(in->mode) || S_ISBLK(in->mode))
    new_node(r, p, name, REC_MKNOD, in->mode, in->rdev, NULL);
  else
    reply_err(r, EINVAL);
  inode_put(r->s->it, p);
}

void op_symlink(struct req *r) {
  size_t off = 0;
  int err = 0;
  const char *name = in_name(r, &off, &err);
  const char *target = name ? in_str(r, &off, PATH_MAX - 1, &err) : NULL;
  if (!target) { reply_err(r, err); return; }
  struct inode *p = req_inode(r);
  if (!p) return;
  new_node(r, p, name, REC_SYMLINK, S_IFLNK | 0777, 0, target);
  inode_put(r->s->it, p);
}

/* ---------- unlink, rmdir ---------- */

static void remove_name(struct req *r, int is_dir) {
  size_t off = 0;
  int err = 0;
  const char *name = in_name(r, &off, &err);
  if (!name) { reply_err(r, err); return; }
  struct inode *parent = req_inode(r);
  if (!parent) return;
  struct mut m;
  pathbuf p;
  int pl;
  int rc = mut_begin_child(r, &m, parent, name, p, &pl);
  if (!rc) { mut_mark(&m, parent->vol, HOT_PATH, -1, p, pl); rc = mut_hot(&m); }
  struct stat st;
  int have = 0;
  if (!rc) {
    have = fstatat(parent->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (have) inode_keep_fd(r->s->it, parent->vol, st.st_dev, st.st_ino);   /* other links may stay */
    if (unlinkat(parent->fd, name, is_dir ? AT_REMOVEDIR : 0) < 0) rc = -errno;
  }
  if (!rc && have) inode_unlinked(r->s->it, parent->vol, st.st_dev, st.st_ino, parent, name);
  struct rec rec = { .kind = is_dir ? REC_RMDIR : REC_UNLINK, .vol = parent->vol, .path = p,
                     .path_len = pl > 0 ? (size_t)pl : 0 };
  int jrc = mut_commit(&m, !rc, &rec, pl >= 0 ? 1 : 0);
  int drc = mut_end(&m);
  if (!rc) rc = jrc ? jrc : drc;
  inode_put(r->s->it, parent);
  reply_err(r, -rc);
}

void op_unlink(struct req *r) { remove_name(r, 0); }
void op_rmdir(struct req *r) { remove_name(r, 1); }

/* ---------- rename, link ---------- */

static void do_rename(struct req *r, uint64_t newdir, uint32_t flags, size_t off) {
  int err = 0;
  const char *oldname = in_name(r, &off, &err);
  const char *newname = oldname ? in_name(r, &off, &err) : NULL;
  if (!newname) { reply_err(r, err); return; }
  /* RENAME_EXCHANGE and RENAME_WHITEOUT need two records / overlay support: not yet */
  if (flags & ~(uint32_t)RENAME_NOREPLACE) { reply_err(r, EINVAL); return; }
  struct inode *op = req_inode(r);
  if (!op) return;
  struct inode *np = req_node(r, newdir);
  if (!np) { inode_put(r->s->it, op); return; }
  struct mut m;
  int rc = mut_begin(r, &m);
  pathbuf p1, p2;
  int l1 = -ENOENT, l2 = -ENOENT;
  if (!rc && (op->kind == INODE_SYNTH || np->kind == INODE_SYNTH)) rc = -EPERM;
  if (!rc && op->vol != np->vol) rc = -EXDEV;
  if (!rc && (op->type != S_IFDIR || np->type != S_IFDIR)) rc = -ENOTDIR;
  if (!rc) {
    l1 = inode_child_path(r->s->it, op, oldname, p1, sizeof p1);
    l2 = inode_child_path(r->s->it, np, newname, p2, sizeof p2);
    if (l1 == -ENAMETOOLONG || l2 == -ENAMETOOLONG) rc = -ENAMETOOLONG;
  }
  if (!rc) rc = mut_text(&m, p1, l1);
  if (!rc) rc = mut_text(&m, p2, l2);
  if (!rc) {
    mut_mark(&m, op->vol, HOT_PATH, -1, p1, l1);
    mut_mark(&m, np->vol, HOT_PATH, -1, p2, l2);
    rc = mut_hot(&m);
  }
  struct stat sold, snew;
  int have_old = 0, have_new = 0;
  if (!rc) {
    have_old = fstatat(op->fd, oldname, &sold, AT_SYMLINK_NOFOLLOW) == 0;
    have_new = fstatat(np->fd, newname, &snew, AT_SYMLINK_NOFOLLOW) == 0;
    if (have_new) inode_keep_fd(r->s->it, np->vol, snew.st_dev, snew.st_ino);
    if (renameat2(op->fd, oldname, np->fd, newname, flags) < 0) rc = -errno;
  }
  if (!rc) {
    /* Two links of one file: rename(2) does nothing, and both names stay. */
    int same = have_new && have_old && sold.st_ino == snew.st_ino && sold.st_dev == snew.st_dev;
    if (have_new && !same) inode_unlinked(r->s->it, np->vol, snew.st_dev, snew.st_ino, np, newname);
    if (have_old && !same) inode_renamed(r->s->it, op->vol, sold.st_dev, sold.st_ino, op, oldname, np, newname);
  }
  struct rec rec = { .kind = REC_RENAME, .vol = op->vol, .path = p1, .path_len = l1 > 0 ? (size_t)l1 : 0,
                     .to = p2, .to_len = l2 > 0 ? (size_t)l2 : 0 };
  int jrc = mut_commit(&m, !rc, &rec, (l1 >= 0 && l2 >= 0) ? 1 : 0);
  int drc = mut_end(&m);
  if (!rc) rc = jrc ? jrc : drc;
  inode_put(r->s->it, op);
  inode_put(r->s->it, np);
  reply_err(r, -rc);
}

void op_rename(struct req *r) {
  const struct fuse_rename_in *in = (const void *)r->in;
  do_rename(r, in->newdir, 0, sizeof *in);
}

void op_rename2(struct req *r) {
  const struct fuse_rename2_in *in = (const void *)r->in;
  do_rename(r, in->newdir, in->flags, sizeof *in);
}

void op_link(struct req *r) {
  const struct fuse_link_in *in = (const void *)r->in;
  size_t off = sizeof *in;
  int err = 0;
  const char *name = in_name(r, &off, &err);
  if (!name) { reply_err(r, err); return; }
  struct inode *np = req_inode(r);
  if (!np) return;
  struct inode *old = req_node(r, in->oldnodeid);
  if (!old) { inode_put(r->s->it, np); return; }
  struct mut m;
  int rc = mut_begin(r, &m);
  pathbuf p1, p2;
  int l1 = -ENOENT, l2 = -ENOENT;
  if (!rc && (old->kind != INODE_NORMAL || np->kind == INODE_SYNTH)) rc = -EPERM;
  if (!rc && old->vol != np->vol) rc = -EXDEV;
  if (!rc && old->type == S_IFDIR) rc = -EPERM;
  if (!rc) {
    l1 = inode_path(r->s->it, old, p1, sizeof p1);
    l2 = inode_child_path(r->s->it, np, name, p2, sizeof p2);
    if (l1 == -ENAMETOOLONG || l2 == -ENAMETOOLONG) rc = -ENAMETOOLONG;
  }
  if (!rc) rc = mut_text(&m, p1, l1);
  if (!rc) rc = mut_text(&m, p2, l2);
  if (!rc) {
    mut_mark(&m, old->vol, HOT_PATH, -1, p1, l1);
    mut_mark(&m, np->vol, HOT_PATH, -1, p2, l2);
    rc = mut_hot(&m);
  }
  if (!rc && linkat(old->fd, "", np->fd, name, AT_EMPTY_PATH) < 0) {
    rc = -errno;
    if (rc == -ENOENT || rc == -EPERM) {         /* no CAP_DAC_READ_SEARCH: via /proc */
      char pp[PROC_FD_LEN];
      proc_fd(old->fd, pp);
      rc = linkat(AT_FDCWD, pp, np->fd, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
    }
  }
  uint64_t id = 0;
  struct stat st;
  if (!rc) rc = do_lookup(r->s, np, name, &id, &st);
  struct rec rec = { .kind = REC_LINK, .vol = np->vol, .path = p1, .path_len = l1 > 0 ? (size_t)l1 : 0,
                     .to = p2, .to_len = l2 > 0 ? (size_t)l2 : 0 };
  int jrc = mut_commit(&m, !rc, &rec, (l1 >= 0 && l2 >= 0) ? 1 : 0);
  int drc = mut_end(&m);
  if (!rc && (jrc || drc)) { rc = jrc ? jrc : drc; inode_forget(r->s->it, id, 1); }
  inode_put(r->s->it, np);
  inode_put(r->s->it, old);
  if (rc) reply_err(r, -rc); else reply_entry(r, id, &st);
}

/* ---------- directory handles ---------- */

void op_opendir(struct req *r) {
  struct inode *i = req_inode(r);
  if (!i) return;
  uint64_t fh = 0;
  int rc = 0;
  if (i->kind == INODE_SYNTH) {
    fh = handle_new(r->s->it, -1, NULL, i, 1);
  } else if (i->type != S_IFDIR) {
    rc = -ENOTDIR;
  } else {
    int fd = openat(i->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) { rc = -errno; if (fd >= 0) close(fd); }
    else if (!(fh = handle_new(r->s->it, fd, d, i, 0))) closedir(d);
  }
  if (!rc && !fh) rc = -EMFILE;
  inode_put(r->s->it, i);
  if (rc) reply_err(r, -rc); else reply_open(r, fh, 0);
}

/* Appends one fuse_dirent (plus: a fuse_direntplus, looking the name up so
 * it counts one lookup, except . and ..); 0 when it does not fit. */
static size_t put_dirent(struct req *r, struct inode *dir, int plus, size_t pos, size_t cap,
                         uint64_t ino, uint64_t off, uint32_t type, const char *name) {
  size_t nl = strlen(name);
  size_t sz = FUSE_DIRENT_ALIGN((plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET) + nl);
  if (pos + sz > cap) return 0;
  char *at = r->out + pos;
  struct fuse_dirent *d = (void *)at;
  if (plus) {
    struct fuse_direntplus *dp = (void *)at;
    memset(&dp->entry_out, 0, sizeof dp->entry_out);       /* nodeid 0: no entry, the kernel skips it */
    d = &dp->dirent;
    uint64_t id;
    struct stat st;
    int dots = !strcmp(name, ".") || !strcmp(name, "..");
    if (!dots && do_lookup(r->s, dir, name, &id, &st) == 0) {
      fill_entry(r, &dp->entry_out, id, &st);
      ino = st.st_ino;
      type = (st.st_mode & S_IFMT) >> 12;
    }
  }
  d->ino = ino;
  d->off = off;
  d->namelen = (uint32_t)nl;
  d->type = type;
  memcpy(d->name, name, nl);
  memset(d->name + nl, 0, (size_t)(at + sz - (d->name + nl)));
  return sz;
}

static void readdir_synth(struct req *r, struct inode *dir, int plus, uint64_t off, size_t cap) {
  struct session *s = r->s;
  size_t pos = 0;
  for (uint64_t k = off; k < (uint64_t)s->cfg.nvolumes + 2; k++) {
    const char *nm = k == 0 ? "." : k == 1 ? ".." : s->vols[k - 2].name;
    uint64_t ino = k < 2 ? 1 : (s->roots[k - 2] ? s->roots[k - 2]->ino : 0);
    uint32_t type = k < 2 || s->vols[k - 2].kind == VOL_DIR ? DT_DIR : DT_REG;
    size_t sz = put_dirent(r, dir, plus, pos, cap, ino, k + 1, type, nm);
    if (!sz) break;
    pos += sz;
  }
  reply_buf(r, r->out, pos);
}

static void do_readdir(struct req *r, int plus) {
  const struct fuse_read_in *in = (const void *)r->in;
  struct handle *h = handle_get(r->s->it, in->fh);
  if (!h) { reply_err(r, EBADF); return; }
  size_t cap = in->size < r->s->bufsize ? in->size : r->s->bufsize;
  if (h->synth) { readdir_synth(r, h->ino, plus, in->offset, cap); return; }
  if (!h->dir) { reply_err(r, EBADF); return; }
  if ((off_t)in->offset != h->dir_off) {
    seekdir(h->dir, (long)in->offset);
    h->dir_off = (off_t)in->offset;
  }
  size_t pos = 0;
  for (;;) {
    errno = 0;
    struct dirent *d = readdir(h->dir);
    if (!d) {
      if (errno && pos == 0) { reply_err(r, errno); return; }
      break;
    }
    size_t sz = put_dirent(r, h->ino, plus, pos, cap, d->d_ino, (uint64_t)d->d_off, d->d_type, d->d_name);
    if (!sz) { seekdir(h->dir, (long)h->dir_off); break; }   /* the next call resumes at it */
    pos += sz;
    h->dir_off = d->d_off;
  }
  reply_buf(r, r->out, pos);
}

void op_readdir(struct req *r) { do_readdir(r, 0); }
void op_readdirplus(struct req *r) { do_readdir(r, 1); }

void op_releasedir(struct req *r) {
  const struct fuse_release_in *in = (const void *)r->in;
  handle_free(r->s->it, in->fh);
  reply_err(r, 0);
}

void op_fsyncdir(struct req *r) {
  const struct fuse_fsync_in *in = (const void *)r->in;
  struct handle *h = handle_get(r->s->it, in->fh);
  if (!h) { reply_err(r, EBADF); return; }
  if (h->synth || !h->dir) { reply_err(r, 0); return; }
  do_fsync(r, h->ino, dirfd(h->dir), in->fsync_flags & FUSE_FSYNC_FDATASYNC);
}

void op_statfs(struct req *r) {
  struct inode *i = req_inode(r);
  if (!i) return;
  int fd = i->kind == INODE_SYNTH ? (r->s->roots[0] ? r->s->roots[0]->fd : -1) : i->fd;
  struct statfs sf;
  int rc = fstatfs(fd, &sf) < 0 ? -errno : 0;
  inode_put(r->s->it, i);
  if (rc) { reply_err(r, -rc); return; }
  struct fuse_kstatfs k;
  memset(&k, 0, sizeof k);
  k.blocks = sf.f_blocks;
  k.bfree = sf.f_bfree;
  k.bavail = sf.f_bavail;
  k.files = sf.f_files;
  k.ffree = sf.f_ffree;
  k.bsize = (uint32_t)sf.f_bsize;
  k.namelen = NAME_MAX;
  k.frsize = (uint32_t)(sf.f_frsize ? sf.f_frsize : sf.f_bsize);
  reply_statfs(r, &k);
}
