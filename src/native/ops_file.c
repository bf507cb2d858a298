/* ops_file.c: regular files: open, create (and mknod S_IFREG), read, write,
 * flush, release, fsync, fallocate, lseek. The backing fd is opened without
 * O_APPEND/O_DIRECT: writes land with pwrite at the kernel's offset. Image
 * volumes are fixed-size: a write is cut at the end, one starting at or
 * past it is ENOSPC. Runs on a FUSE reader thread. */
#define _GNU_SOURCE
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REGION_SHIFT 20                     /* activity-log regions: 1 MiB */
/* Backing writes go in pieces of at most 16 KiB, each ending at a multiple
 * of it in the file: the kernel sizes a new page-cache folio by the write
 * that creates it, and ext4 walks every buffer head of the folio on each
 * later write into it. After 256 KiB writes, 4 KiB overwrites spent 18% of
 * the FUSE thread in that walk, 3% with pieces (native-notes/performance.md
 * 21; the secondary's copy does the same, volume/write-pieces.ts). */
#define BACKING_PIECE ((size_t)16 << 10)

uint32_t open_reply_flags(struct session *s) {
  /* we are the only writer of a primary's backing store, so its page cache
   * stays right across opens; a read-only view is written under us by apply */
  return s->cfg.read_only ? 0 : FOPEN_KEEP_CACHE;
}

/* What a write/truncate by someone without CAP_FSETID leaves of the mode
 * (HANDLE_KILLPRIV_V2: the kernel leaves this to us). Returns 1 if it changes. */
static int killed_mode(mode_t mode, mode_t *out) {
  mode_t m = mode & 07777;
  m &= ~(mode_t)S_ISUID;
  if (mode & S_IXGRP) m &= ~(mode_t)S_ISGID;
  *out = m;
  return m != (mode & 07777);
}

static void reply_opened(struct req *r, int fd, struct inode *i) {
  uint64_t fh = handle_new(r->s->it, fd, NULL, i, 0);
  if (!fh) { close(fd); reply_err(r, EMFILE); return; }
  reply_open(r, fh, open_reply_flags(r->s));
}

void op_open(struct req *r) {
  const struct fuse_open_in *in = (const void *)r->in;
  struct inode *i = req_inode(r);
  if (!i) return;
  int acc = (int)in->flags & O_ACCMODE;
  int trunc = (in->flags & O_TRUNC) && acc != O_RDONLY;
  int flags = ((int)in->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_APPEND | O_DIRECT | O_NOFOLLOW | O_TRUNC)) | O_CLOEXEC;
  char pp[PROC_FD_LEN];
  int rc = 0, fd = -1;
  if (i->kind == INODE_SYNTH || i->type == S_IFDIR) rc = -EISDIR;
  else if (i->type != S_IFREG) rc = -ENXIO;   /* the kernel opens special files itself (a FIFO would block us) */
  else if (acc != O_RDONLY && r->s->cfg.read_only) rc = -EROFS;
  else if (trunc && i->image) rc = -EPERM;              /* fixed size */
  proc_fd(i->fd, pp);
  if (!rc && !trunc) {
    fd = open(pp, flags);
    if (fd < 0) rc = -errno;
  } else if (!rc) {
    struct mut m;
    pathbuf p;
    int pl = -ENOENT;
    rc = mut_begin(r, &m);
    if (!rc) rc = mut_node_path(r, &m, i, p, &pl);
    if (!rc) { mut_mark(&m, i->vol, HOT_META, -1, p, pl); rc = mut_hot(&m); }
    if (!rc && (fd = open(pp, flags | O_TRUNC)) < 0) rc = -errno;
    struct rec recs[2];
    int n = 0;
    if (!rc && pl >= 0)
      recs[n++] = (struct rec){ .kind = REC_TRUNCATE, .vol = i->vol, .path = p, .path_len = (size_t)pl, .size = 0 };
    struct stat st;
    mode_t nm;
    if (!rc && (in->open_flags & FUSE_OPEN_KILL_SUIDGID) && fstat(fd, &st) == 0 &&
        killed_mode(st.st_mode, &nm) && fchmod(fd, nm) == 0 && pl >= 0)
      recs[n++] = (struct rec){ .kind = REC_CHMOD, .vol = i->vol, .path = p, .path_len = (size_t)pl, .mode = nm };
    int jrc = mut_commit(&m, !rc, recs, n);
    int drc = mut_end(&m);
    if (!rc && (jrc || drc)) { rc = jrc ? jrc : drc; close(fd); }
  }
  if (rc) reply_err(r, -rc); else reply_opened(r, fd, i);
  inode_put(r->s->it, i);
}

/* A CREATE that met an existing name (someone made it meanwhile): open it if
 * it is a regular file; never block on a FIFO. Returns fd, -1 (errno), or -errno. */
static int open_existing(int dirfd, const char *name, int flags) {
  int fd = openat(dirfd, name, flags | O_NONBLOCK);
  if (fd < 0) return -1;
  struct stat st = { 0 };
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return S_ISDIR(st.st_mode) ? -EISDIR : -EEXIST;
  }
  if (!(flags & O_NONBLOCK)) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

/* create, and mknod of a regular file (want_open 0): the new file belongs to
 * the caller (setgid parent: its group), special bits restored after the
 * chown, then CREATE [+CHOWN] [+CHMOD] journalled. An O_CREAT without O_EXCL
 * that meets an existing file is an open (O_TRUNC: a truncate). */
void create_file(struct req *r, struct inode *parent, const char *name, uint32_t flags,
                 uint32_t mode, uint32_t open_flags, int want_open) {
  (void)open_flags;
  struct mut m;
  pathbuf p;
  int pl;
  int rc = mut_begin_child(r, &m, parent, name, p, &pl);
  if (!rc) { mut_mark(&m, parent->vol, HOT_PATH, -1, p, pl); rc = mut_hot(&m); }
  int of = ((int)flags & ~(O_APPEND | O_DIRECT | O_NOCTTY)) | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
  int fd = -1, created = 0;
  if (!rc) {
    fd = openat(parent->fd, name, of | O_EXCL, mode & 07777);
    if (fd >= 0) created = 1;
    else if (errno == EEXIST && !(flags & O_EXCL)) fd = open_existing(parent->fd, name, of & ~O_CREAT);
    if (fd < 0) rc = fd == -1 ? -errno : fd;
  }
  struct stat st;
  if (!rc && created) {
    uid_t uid;
    gid_t gid;
    new_node_owner(r, parent, &uid, &gid);
    if ((uid || (gid != (gid_t)-1 && gid)) && fchown(fd, uid, gid) < 0) {
      rc = -errno;
      close(fd);
      fd = -1;
      unlinkat(parent->fd, name, 0);
    } else if ((mode & 07000) && fstat(fd, &st) == 0 && (st.st_mode & 07777) != (mode & 07777)) {
      fchmod(fd, mode & 07777);              /* the chown cleared suid/sgid */
    }
  }
  uint64_t id = 0;
  if (!rc && (rc = do_lookup(r->s, parent, name, &id, &st))) { close(fd); fd = -1; }
  struct rec recs[3];
  int n = 0;
  if (!rc && pl >= 0) {
    if (created) {
      recs[n++] = (struct rec){ .kind = REC_CREATE, .vol = parent->vol, .path = p, .path_len = (size_t)pl,
                                .mode = st.st_mode & 07777 };
      if (st.st_uid || st.st_gid)
        recs[n++] = (struct rec){ .kind = REC_CHOWN, .vol = parent->vol, .path = p, .path_len = (size_t)pl,
                                  .uid = st.st_uid, .gid = st.st_gid };
      if (st.st_mode & 07000)
        recs[n++] = (struct rec){ .kind = REC_CHMOD, .vol = parent->vol, .path = p, .path_len = (size_t)pl,
                                  .mode = st.st_mode & 07777 };
    } else if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
      recs[n++] = (struct rec){ .kind = REC_TRUNCATE, .vol = parent->vol, .path = p, .path_len = (size_t)pl, .size = 0 };
    }
  }
  int jrc = mut_commit(&m, !rc, recs, n);
  int drc = mut_end(&m);
  if (!rc && (jrc || drc)) {
    rc = jrc ? jrc : drc;
    inode_forget(r->s->it, id, 1);
    close(fd);
    fd = -1;
  }
  if (rc) { reply_err(r, -rc); return; }
  if (!want_open) { close(fd); reply_entry(r, id, &st); return; }
  struct inode *i = inode_get(r->s->it, id);
  uint64_t fh = i ? handle_new(r->s->it, fd, NULL, i, 0) : 0;
  if (i) inode_put(r->s->it, i);
  if (!fh) { close(fd); inode_forget(r->s->it, id, 1); reply_err(r, EMFILE); return; }
  reply_create(r, id, &st, fh, open_reply_flags(r->s));
}

void op_create(struct req *r) {
  const struct fuse_create_in *in = (const void *)r->in;
  size_t off = sizeof *in;
  int err = 0;
  const char *name = in_name(r, &off, &err);
  if (!name) { reply_err(r, err); return; }
  struct inode *p = req_inode(r);
  if (!p) return;
  create_file(r, p, name, in->flags, in->mode & 07777, in->open_flags, 1);
  inode_put(r->s->it, p);
}

void op_read(struct req *r) {
  const struct fuse_read_in *in = (const void *)r->in;
  struct handle *h = handle_get(r->s->it, in->fh);
  if (!h || h->fd < 0 || h->dir) { reply_err(r, EBADF); return; }
  size_t size = in->size < r->s->bufsize ? in->size : r->s->bufsize;
  ssize_t n = pread(h->fd, r->out, size, (off_t)in->offset);
  if (n < 0) { reply_err(r, errno); return; }
  __atomic_add_fetch(&r->s->st.reads, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&r->s->st.read_bytes, (uint64_t)n, __ATOMIC_RELAXED);
  reply_buf(r, r->out, (size_t)n);
}

void op_write(struct req *r) {
  const struct fuse_write_in *in = (const void *)r->in;
  const char *data = r->in + sizeof *in;
  if (in->size > r->inlen - sizeof *in) { reply_err(r, EINVAL); return; }
  struct handle *h = handle_get(r->s->it, in->fh);
  if (!h || h->fd < 0 || h->dir) { reply_err(r, EBADF); return; }
  struct inode *i = h->ino;
  uint64_t off = in->offset, len = in->size;
  int rc = 0;
  if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off) { reply_err(r, EFBIG); return; }
  if (i->image) {
    uint64_t vsize = vol_of(r->s, i)->size;
    if (off >= vsize && len) { reply_err(r, ENOSPC); return; }
    if (len > vsize - off) len = vsize - off;         /* cut at the end */
  }
  struct mut m;
  pathbuf p;
  int pl = -ENOENT;
  rc = mut_begin(r, &m);
  if (!rc && m.c) rc = mut_node_path(r, &m, i, p, &pl);   /* no capture: no path needed */
  if (!rc && len) {
    for (int64_t reg = (int64_t)(off >> REGION_SHIFT); reg <= (int64_t)((off + len - 1) >> REGION_SHIFT); reg++)
      mut_mark(&m, i->vol, HOT_REGION, reg, p, pl);
    rc = mut_hot(&m);
  }
  size_t done = 0;
  while (!rc && done < len) {
    size_t want = len - done, room = BACKING_PIECE - (size_t)((off + done) % BACKING_PIECE);
    if (room < want) want = room;
    ssize_t n = pwrite(h->fd, data + done, want, (off_t)(off + done));
    if (n < 0) { if (errno == EINTR) continue; if (!done) rc = -errno; break; }
    if (n == 0) break;
    done += (size_t)n;
  }
  struct rec recs[2];
  int n = 0;
  if (!rc && done && pl >= 0)
    recs[n++] = (struct rec){ .kind = REC_WRITE, .vol = i->vol, .path = p, .path_len = (size_t)pl,
                              .off = off, .data = data, .data_len = done };
  struct stat st;
  mode_t nm;
  int killed = 0;
  if (!rc && (in->write_flags & FUSE_WRITE_KILL_SUIDGID) && fstat(h->fd, &st) == 0 &&
      killed_mode(st.st_mode, &nm) && fchmod(h->fd, nm) == 0) {
    killed = 1;
    if (pl >= 0)
      recs[n++] = (struct rec){ .kind = REC_CHMOD, .vol = i->vol, .path = p, .path_len = (size_t)pl, .mode = nm };
  }
  int jrc = mut_commit(&m, !rc, recs, n);
  int drc = mut_end(&m);
  if (!rc) rc = jrc ? jrc : drc;
  if (killed) notify_inval_attr(r, r->h->nodeid);   /* the kernel does not drop its cached mode */
  if (rc) { reply_err(r, -rc); return; }
  __atomic_add_fetch(&r->s->st.writes, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&r->s->st.write_bytes, (uint64_t)done, __ATOMIC_RELAXED);
  reply_write(r, (uint32_t)done);
}

void op_flush(struct req *r) { reply_err(r, 0); }   /* nothing buffered here */

void op_release(struct req *r) {
  const struct fuse_release_in *in = (const void *)r->in;
  handle_free(r->s->it, in->fh);
  reply_err(r, 0);
}

/* With a journal, an fsync waits for the journal only: it is the redo log,
 * the backing files are synced in the background and brought up to date
 * from it after a power loss (capture/backing-sync.ts, apply/redo.ts).
 * What is not journalled is fsynced on the backing store: a file with no
 * name, and everything while the capture tracks (an overflowed journal:
 * records go to the dirty set, no sequence, nothing to redo them from) and
 * until a backing sync has put what it tracked on disk (fsync_backing). */
void do_fsync(struct req *r, struct inode *i, int fd, int datasync) {
  int rc = 0, journalled = 0;
  if (!r->s->cfg.read_only && r->s->cfg.capture) {
    struct mut m;
    pathbuf p;
    int pl = -ENOENT;
    rc = mut_begin_barrier(r, &m);
    if (!rc) pl = inode_path(r->s->it, i, p, sizeof p);
    if (pl >= 0 && mut_text(&m, p, pl)) pl = -ENOENT;   /* not journallable: the fsync alone */
    struct rec rec = { .kind = REC_FSYNC, .vol = i->vol, .path = p, .path_len = pl > 0 ? (size_t)pl : 0 };
    if (!rc) rc = mut_commit(&m, 1, &rec, pl >= 0 ? 1 : 0);
    journalled = !rc && pl >= 0 && !capture_fsync_backing(r->s->cfg.capture);
    int erc = mut_end_sync(&m);        /* unlock, journal on disk, durable */
    if (!rc) rc = erc;
  }
  if (!rc && !journalled && (datasync ? fdatasync(fd) : fsync(fd)) < 0) rc = -errno;
  reply_err(r, -rc);
}

void op_fsync(struct req *r) {
  const struct fuse_fsync_in *in = (const void *)r->in;
  struct handle *h = handle_get(r->s->it, in->fh);
  if (!h || h->fd < 0 || h->dir) { reply_err(r, EBADF); return; }
  do_fsync(r, h->ino, h->fd, in->fsync_flags & FUSE_FSYNC_FDATASYNC);
}

void op_fallocate(struct req *r) {
  const struct fuse_fallocate_in *in = (const void *)r->in;
  struct handle *h = handle_get(r->s->it, in->fh);
  if (!h || h->fd < 0 || h->dir) { reply_err(r, EBADF); return; }
  if (in->mode & ~(uint32_t)FALLOC_FL_KEEP_SIZE) { reply_err(r, EOPNOTSUPP); return; }
  if (in->offset > (uint64_t)INT64_MAX || in->length > (uint64_t)INT64_MAX - in->offset) { reply_err(r, EFBIG); return; }
  struct inode *i = h->ino;
  if (i->image && !(in->mode & FALLOC_FL_KEEP_SIZE) && in->offset + in->length > vol_of(r->s, i)->size) {
    reply_err(r, ENOSPC);
    return;
  }
  struct mut m;
  pathbuf p;
  int pl = -ENOENT;
  int rc = mut_begin(r, &m);
  if (!rc) rc = mut_node_path(r, &m, i, p, &pl);
  if (!rc) { mut_mark(&m, i->vol, HOT_META, -1, p, pl); rc = mut_hot(&m); }
  struct stat before, after;
  if (!rc && fstat(h->fd, &before) < 0) rc = -errno;
  if (!rc && fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length) < 0) rc = -errno;
  struct rec rec = { .kind = REC_TRUNCATE, .vol = i->vol, .path = p, .path_len = pl > 0 ? (size_t)pl : 0 };
  int n = 0;
  if (!rc && pl >= 0 && fstat(h->fd, &after) == 0 && after.st_size > before.st_size) {
    rec.size = (uint64_t)after.st_size;
    n = 1;
  }
  int jrc = mut_commit(&m, !rc, &rec, n);
  int drc = mut_end(&m);
  if (!rc) rc = jrc ? jrc : drc;
  reply_err(r, -rc);
}

void op_lseek(struct req *r) {
  const struct fuse_lseek_in *in = (const void *)r->in;
  struct handle *h = handle_get(r->s->it, in->fh);
  if (!h || h->fd < 0 || h->dir) { reply_err(r, EBADF); return; }
  off_t o = lseek(h->fd, (off_t)in->offset, (int)in->whence);
  if (o < 0) reply_err(r, errno); else reply_lseek(r, (uint64_t)o);
}
