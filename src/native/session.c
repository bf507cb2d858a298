/* session.c: one FUSE session spoken directly over /dev/fuse (no libfuse).
 *
 * Owns: the mount (mount(2) of "fuse.replfs" with our fd), the INIT
 * negotiation, the reader threads (each with its own buffer and, when the
 * kernel allows it, its own FUSE_DEV_IOC_CLONE fd so replies go back on the
 * queue the request came from), the dispatch by opcode through op_table
 * (ops.c), the reply helpers (one per reply kind: every request gets exactly
 * one reply, FORGET/BATCH_FORGET/INTERRUPT none), and the unmount and join.
 *
 * Threads: session_start/session_stop/session_stats run on the starting
 * thread (the JS thread in the addon, main() in the harness); worker() and
 * everything it calls (reply_*, ops) run on a FUSE reader thread. */
#define _GNU_SOURCE
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "fuse_uring_abi.h"
#include "inodes.h"
#include "reader_wait.h"
#include "uring.h"

#define PROTO_MINOR_MAX 38                 /* <linux/fuse.h> here is 7.38 */
#define MAX_WRITE_DEFAULT (256u * 1024)    /* 64 pages: measured best on this box */
#define MAX_WRITE_MAX (1024u * 1024)       /* kernel default max_pages_limit is 256 pages */
#define XATTR_VALUE_MAX 65536
#define HEADER_ROOM 4096                   /* fuse_in_header + fuse_write_in + slack */
#define INIT_WAIT_MS 10000
#define STOP_WAIT_S 3
#define FD_LIMIT_WANT (1u << 20)              /* fs.nr_open default */

struct worker {
  struct session *s;
  pthread_t tid;
  int fd;                                  /* own clone fd, or the session fd */
  int started;
  char *in, *out;
  struct reader_wait wait;
};

/* ---------- replies (FUSE reader thread; INIT: the starting thread) ---------- */

static void send_reply(struct req *r, int err, const struct iovec *payload, int n) {
  if (r->replied) return;                   /* a bug if it happens: never reply twice */
  r->replied = 1;
  struct iovec iov[4];
  struct fuse_out_header oh;
  size_t len = sizeof oh;
  iov[0].iov_base = &oh;
  iov[0].iov_len = sizeof oh;
  for (int k = 0; k < n && k < 3; k++) { iov[k + 1] = payload[k]; len += payload[k].iov_len; }
  oh.len = (uint32_t)len;
  oh.error = -err;
  oh.unique = r->h->unique;
  if (err) __atomic_add_fetch(&r->s->st.errors, 1, __ATOMIC_RELAXED);
  if (r->s->cfg.debug)
    fprintf(stderr, "replfs:   unique %llu -> error %d, %zu bytes\n",
            (unsigned long long)r->h->unique, -err, len);
  if (r->ent) { uring_put_reply(r, err, payload, n); return; }   /* committed after dispatch */
  ssize_t w = writev(r->fd, iov, n + 1);
  /* ENOENT: the request was interrupted and is gone; ENODEV: unmounted */
  if (w < 0 && errno != ENOENT && errno != ENODEV && r->s->cfg.debug)
    fprintf(stderr, "replfs: reply to %llu failed: %s\n", (unsigned long long)r->h->unique, strerror(errno));
}

void reply_err(struct req *r, int err) { send_reply(r, err, NULL, 0); }
void reply_none(struct req *r) { r->replied = 1; }

void reply_buf(struct req *r, const void *p, size_t n) {
  struct iovec v = { (void *)p, n };
  send_reply(r, 0, &v, n ? 1 : 0);
}

static void split_time(double t, uint64_t *sec, uint32_t *nsec) {
  if (t <= 0) { *sec = 0; *nsec = 0; return; }
  *sec = (uint64_t)t;
  *nsec = (uint32_t)((t - (double)*sec) * 1e9);
}

static void stat_to_attr(const struct stat *st, struct fuse_attr *a) {
  memset(a, 0, sizeof *a);
  a->ino = st->st_ino;
  a->size = (uint64_t)st->st_size;
  a->blocks = (uint64_t)st->st_blocks;
  a->atime = (uint64_t)st->st_atim.tv_sec;
  a->mtime = (uint64_t)st->st_mtim.tv_sec;
  a->ctime = (uint64_t)st->st_ctim.tv_sec;
  a->atimensec = (uint32_t)st->st_atim.tv_nsec;
  a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
  a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
  a->mode = st->st_mode;
  a->nlink = (uint32_t)st->st_nlink;
  a->uid = st->st_uid;
  a->gid = st->st_gid;
  a->rdev = (uint32_t)st->st_rdev;
  a->blksize = (uint32_t)st->st_blksize;
}

void fill_entry(struct req *r, struct fuse_entry_out *e, uint64_t nodeid, const struct stat *st) {
  memset(e, 0, sizeof *e);
  e->nodeid = nodeid;
  e->generation = 0;                       /* nodeids are never reused */
  split_time(r->s->cfg.entry_timeout, &e->entry_valid, &e->entry_valid_nsec);
  split_time(r->s->cfg.attr_timeout, &e->attr_valid, &e->attr_valid_nsec);
  stat_to_attr(st, &e->attr);
}

void reply_entry(struct req *r, uint64_t nodeid, const struct stat *st) {
  struct fuse_entry_out e;
  fill_entry(r, &e, nodeid, st);
  reply_buf(r, &e, sizeof e);
}

void reply_attr(struct req *r, const struct stat *st) {
  struct fuse_attr_out a;
  memset(&a, 0, sizeof a);
  split_time(r->s->cfg.attr_timeout, &a.attr_valid, &a.attr_valid_nsec);
  stat_to_attr(st, &a.attr);
  reply_buf(r, &a, sizeof a);
}

void reply_open(struct req *r, uint64_t fh, uint32_t open_flags) {
  struct fuse_open_out o;
  memset(&o, 0, sizeof o);
  o.fh = fh;
  o.open_flags = open_flags;
  reply_buf(r, &o, sizeof o);
}

void reply_create(struct req *r, uint64_t nodeid, const struct stat *st, uint64_t fh, uint32_t open_flags) {
  struct { struct fuse_entry_out e; struct fuse_open_out o; } c;
  memset(&c, 0, sizeof c);
  fill_entry(r, &c.e, nodeid, st);
  c.o.fh = fh;
  c.o.open_flags = open_flags;
  reply_buf(r, &c, sizeof c);
}

void reply_write(struct req *r, uint32_t n) {
  struct fuse_write_out w = { .size = n, .padding = 0 };
  reply_buf(r, &w, sizeof w);
}

void reply_statfs(struct req *r, const struct fuse_kstatfs *k) {
  struct fuse_statfs_out o;
  o.st = *k;
  reply_buf(r, &o, sizeof o);
}

void reply_xattr_size(struct req *r, uint32_t n) {
  struct fuse_getxattr_out o = { .size = n, .padding = 0 };
  reply_buf(r, &o, sizeof o);
}

void reply_lseek(struct req *r, uint64_t off) {
  struct fuse_lseek_out o = { .offset = off };
  reply_buf(r, &o, sizeof o);
}

void notify_inval_attr(struct req *r, uint64_t nodeid) {
  struct fuse_notify_inval_inode_out o = { .ino = nodeid, .off = -1, .len = 0 };
  struct fuse_out_header oh = { .len = sizeof oh + sizeof o, .error = FUSE_NOTIFY_INVAL_INODE, .unique = 0 };
  struct iovec iov[2] = { { &oh, sizeof oh }, { &o, sizeof o } };
  if (writev(r->fd, iov, 2) < 0 && r->s->cfg.debug)
    fprintf(stderr, "replfs: notify inval inode %llu: %s\n", (unsigned long long)nodeid, strerror(errno));
}

/* ---------- dispatch (FUSE reader thread) ---------- */

static void dispatch(struct session *s, struct worker *w, size_t n) {
  const struct fuse_in_header *h = (const void *)w->in;
  struct req r = { .s = s, .fd = w->fd, .h = h, .in = w->in + sizeof *h,
                   .inlen = n - sizeof *h, .out = w->out, .replied = 0, .ent = NULL };
  session_dispatch(&r);
}

void session_dispatch(struct req *r) {
  struct session *s = r->s;
  const struct fuse_in_header *h = r->h;
  __atomic_add_fetch(&s->st.requests, 1, __ATOMIC_RELAXED);
  if (s->cfg.debug)
    fprintf(stderr, "replfs: op %u (%s) unique %llu node %llu len %u uid %u%s\n", h->opcode,
            h->opcode < (uint32_t)op_table_len && op_table[h->opcode].name ? op_table[h->opcode].name : "?",
            (unsigned long long)h->unique, (unsigned long long)h->nodeid, h->len, h->uid,
            r->ent ? " (ring)" : "");
  if (h->opcode == FUSE_INIT) { reply_err(r, EIO); return; }   /* only once, at start */
  if (h->opcode >= (uint32_t)op_table_len || !op_table[h->opcode].fn) {
    if (h->opcode == FUSE_INTERRUPT || h->opcode == FUSE_FORGET) return;   /* never replied */
    reply_err(r, ENOSYS);
    return;
  }
  const struct op_desc *d = &op_table[h->opcode];
  if (r->inlen < d->min_in) {
    if (h->opcode != FUSE_FORGET && h->opcode != FUSE_BATCH_FORGET && h->opcode != FUSE_INTERRUPT)
      reply_err(r, EINVAL);
    return;
  }
  d->fn(r);
}

void session_thread_setup(const char *name) {
  /* own umask (0: modes are used as the kernel sends them, it already
   * applied the caller's umask) without touching the process's */
  if (unshare(CLONE_FS) == 0) umask(0);
  pthread_setname_np(pthread_self(), name);      /* visible in top -H, gdb, /proc */
}

static void *worker(void *arg) {
  struct worker *w = arg;
  struct session *s = w->s;
  char nm[16];
  snprintf(nm, sizeof nm, "replfs-fuse%d", (int)(w - s->workers));
  session_thread_setup(nm);
  for (;;) {
    ssize_t n = reader_wait_read(&w->wait, w->in, s->bufsize);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
      if (errno != ENODEV) fprintf(stderr, "replfs: read /dev/fuse: %s\n", strerror(errno));
      break;
    }
    const struct fuse_in_header *h = (const void *)w->in;
    if ((size_t)n < sizeof *h || h->len != (uint32_t)n) {
      fprintf(stderr, "replfs: short read from /dev/fuse (%zd bytes)\n", n);
      continue;
    }
    dispatch(s, w, (size_t)n);
  }
  return NULL;
}

/* ---------- start (starting thread) ---------- */

static int copy_config(struct session *s, const struct core_config *cfg) {
  s->cfg = *cfg;
  s->cfg.mountpoint = strdup(cfg->mountpoint);
  s->cfg.fsname = strdup(cfg->fsname ? cfg->fsname : "replfs");
  s->vols = calloc((size_t)cfg->nvolumes, sizeof *s->vols);
  if (!s->cfg.mountpoint || !s->cfg.fsname || !s->vols) return -ENOMEM;
  for (int k = 0; k < cfg->nvolumes; k++) {
    s->vols[k] = cfg->volumes[k];
    s->vols[k].name = strdup(cfg->volumes[k].name ? cfg->volumes[k].name : "");
    s->vols[k].path = strdup(cfg->volumes[k].path);
    if (!s->vols[k].name || !s->vols[k].path) return -ENOMEM;
  }
  s->cfg.volumes = s->vols;
  return 0;
}

static void free_config(struct session *s) {
  free((void *)s->cfg.mountpoint);
  free((void *)s->cfg.fsname);
  for (int k = 0; s->vols && k < s->cfg.nvolumes; k++) {
    free((void *)s->vols[k].name);
    free((void *)s->vols[k].path);
  }
  free(s->vols);
}

static int open_volumes(struct session *s, char *err, size_t errlen) {
  struct inode *synth = NULL;
  if (!s->cfg.single && !(synth = itable_add_synth(s->it))) return fail(err, errlen, -ENOMEM, "out of memory");
  s->synth = synth;
  s->roots = calloc((size_t)s->cfg.nvolumes, sizeof *s->roots);
  if (!s->roots) return fail(err, errlen, -ENOMEM, "out of memory");
  for (int k = 0; k < s->cfg.nvolumes; k++) {
    const struct core_volume *v = &s->vols[k];
    if (s->cfg.single && k > 0) break;
    int fd = open(v->path, O_PATH | O_CLOEXEC);
    if (fd < 0) return fail(err, errlen, -errno, "volume %s: %s: %s", v->name, v->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) { int e = errno; close(fd); return fail(err, errlen, -e, "volume %s: %s", v->name, strerror(e)); }
    int want_dir = v->kind == VOL_DIR;
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
      close(fd);
      return fail(err, errlen, -EINVAL, "volume %s: %s is not a %s", v->name, v->path, want_dir ? "directory" : "regular file");
    }
    if (!s->cfg.single) {
      const char *nm = v->name;
      if (!*nm || strlen(nm) > NAME_MAX || strchr(nm, '/') || !strcmp(nm, ".") || !strcmp(nm, "..")) {
        close(fd);
        return fail(err, errlen, -EINVAL, "volume name '%s' is not a file name", nm);
      }
    }
    if (!(s->roots[k] = itable_add_volroot(s->it, s->cfg.single, v->num, fd, &st, v->kind == VOL_IMAGE, synth, v->name)))
      return fail(err, errlen, -ENOMEM, "out of memory");
  }
  return 0;
}

/* Reads the kernel's INIT on the session fd and answers it. */
static int do_init(struct session *s, char *err, size_t errlen) {
  char *buf = malloc(s->bufsize);
  if (!buf) return fail(err, errlen, -ENOMEM, "out of memory");
  int rc = 0;
  for (;;) {
    struct pollfd p = { .fd = s->fd, .events = POLLIN };
    int pr = poll(&p, 1, INIT_WAIT_MS);
    if (pr == 0) { rc = fail(err, errlen, -ETIMEDOUT, "no INIT from the kernel in %d ms", INIT_WAIT_MS); break; }
    if (pr < 0) { if (errno == EINTR) continue; rc = fail(err, errlen, -errno, "poll /dev/fuse: %s", strerror(errno)); break; }
    ssize_t n = read(s->fd, buf, s->bufsize);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
      rc = fail(err, errlen, -errno, "read /dev/fuse: %s", strerror(errno));
      break;
    }
    struct fuse_in_header *h = (void *)buf;
    struct req r = { .s = s, .fd = s->fd, .h = h, .in = buf + sizeof *h, .inlen = (size_t)n - sizeof *h };
    if ((size_t)n < sizeof *h || h->opcode != FUSE_INIT || r.inlen < 8) {
      rc = fail(err, errlen, -EPROTO, "expected INIT, got opcode %u", (size_t)n >= sizeof *h ? h->opcode : 0);
      if ((size_t)n >= sizeof *h) reply_err(&r, EIO);
      break;
    }
    const struct fuse_init_in *in = (const void *)r.in;
    struct fuse_init_out o;
    memset(&o, 0, sizeof o);
    o.major = FUSE_KERNEL_VERSION;
    o.minor = PROTO_MINOR_MAX;
    if (in->major > 7) { reply_buf(&r, &o, sizeof o); continue; }   /* kernel retries with 7 */
    if (in->major < 7 || in->minor < 31) {
      reply_err(&r, EPROTO);
      rc = fail(err, errlen, -EPROTO, "kernel FUSE %u.%u is too old", in->major, in->minor);
      break;
    }
    /* --io-uring: 7.42 brought the ring; nothing the core sends or reads
     * changed size between 7.38 and 7.42 (native-notes/io-uring.md) */
    uint32_t minor_max = s->cfg.io_uring ? FUSE_URING_MINOR : PROTO_MINOR_MAX;
    o.minor = in->minor < minor_max ? in->minor : minor_max;
    s->proto_minor = o.minor;
    uint32_t kflags = in->flags;
    uint32_t kflags2 = (kflags & FUSE_INIT_EXT) && r.inlen >= sizeof *in ? in->flags2 : 0;
    /* Never FUSE_WRITEBACK_CACHE (writes would return before we have them),
     * nor POSIX/FLOCK locks (the kernel then does locks locally), nor
     * SETXATTR_EXT. HANDLE_KILLPRIV_V2: we clear suid/sgid ourselves, and the
     * kernel stops asking getxattr(security.capability) before each write.
     * READDIRPLUS (AUTO: when the kernel sees lookups follow a readdir):
     * each entry but . and .. counts one lookup. */
    uint32_t want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_MAX_PAGES |
                    FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV_V2 | FUSE_ASYNC_DIO |
                    FUSE_CACHE_SYMLINKS | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
    o.flags = kflags & want;
    o.max_readahead = in->max_readahead;
    o.max_background = 64;
    o.congestion_threshold = 48;
    o.max_write = s->max_write;
    o.time_gran = 1;
    o.max_pages = (uint16_t)(s->max_write / 4096);
    int no_ring = 0;
    if (s->cfg.io_uring) {
      /* the kernel offers the ring only while fuse.enable_uring is Y */
      if ((kflags2 & FUSE_OVER_IO_URING_FLAG2) && o.minor >= FUSE_URING_MINOR) {
        o.flags |= FUSE_INIT_EXT;
        o.flags2 = FUSE_OVER_IO_URING_FLAG2;
      } else no_ring = 1;
    }
    reply_buf(&r, &o, sizeof o);
    if (s->cfg.debug)
      fprintf(stderr, "replfs: INIT kernel %u.%u flags %#x flags2 %#x -> 7.%u flags %#x flags2 %#x max_write %u\n",
              in->major, in->minor, kflags, kflags2, o.minor, o.flags, o.flags2, o.max_write);
    if (no_ring)
      rc = fail(err, errlen, -EOPNOTSUPP,
                "--io-uring: the kernel (FUSE 7.%u) did not offer FUSE over io_uring; it needs Linux 6.14+ "
                "and, as root, echo Y > /sys/module/fuse/parameters/enable_uring", in->minor);
    break;
  }
  free(buf);
  return rc;
}

static void unescape_mount(char *p) {
  char *o = p;
  while (*p) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] && p[3]) {
      *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
      p += 4;
    } else *o++ = *p++;
  }
  *o = 0;
}

/* The fusectl connection id of our mount: its device number (anonymous, major 0). */
static unsigned find_conn_id(const char *mp) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) return 0;
  char line[8192];
  unsigned id = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned maj, min;
    char mnt[4096];
    if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mnt) != 3) continue;
    unescape_mount(mnt);
    if (strcmp(mnt, mp) == 0 && strstr(line, " - fuse")) id = maj << 20 | min;
  }
  fclose(f);
  return id;
}

static int start_workers(struct session *s, char *err, size_t errlen) {
  s->workers = calloc((size_t)s->nthreads, sizeof *s->workers);
  if (!s->workers) return fail(err, errlen, -ENOMEM, "out of memory");
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);     /* readers take no signals */
  int rc = 0;
  for (int k = 0; k < s->nthreads; k++) {
    struct worker *w = &s->workers[k];
    w->s = s;
    w->fd = s->fd;
    if (k > 0) {
      int cfd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
      uint32_t master = (uint32_t)s->fd;
      if (cfd >= 0 && ioctl(cfd, FUSE_DEV_IOC_CLONE, &master) == 0) w->fd = cfd;
      else if (cfd >= 0) close(cfd);
    }
    w->in = malloc(s->bufsize);
    w->out = malloc(s->bufsize);
    if (!w->in || !w->out) { rc = fail(err, errlen, -ENOMEM, "out of memory"); break; }
    /* polling with one reader only (reader_wait.c); the ring waits in the kernel */
    unsigned poll_us = s->nthreads == 1 && !s->cfg.io_uring ? s->cfg.poll_us : 0;
    if ((rc = reader_wait_init(&w->wait, w->fd, poll_us))) { rc = fail(err, errlen, rc, "fcntl /dev/fuse: %s", strerror(-rc)); break; }
    int e = pthread_create(&w->tid, NULL, worker, w);
    if (e) { rc = fail(err, errlen, -e, "pthread_create: %s", strerror(e)); break; }
    w->started = 1;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static void abort_connection(struct session *s) {
  if (!s->conn_id) return;
  char p[96];
  snprintf(p, sizeof p, "/sys/fs/fuse/connections/%u/abort", s->conn_id);
  int fd = open(p, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL);
    fd = open(p, O_WRONLY | O_CLOEXEC);
  }
  if (fd >= 0) { if (write(fd, "1", 1) < 0) { /* nothing more to try */ } close(fd); }
}

static void join_workers(struct session *s) {
  if (!s->workers) return;
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += STOP_WAIT_S;
  int left = 0;
  for (int k = 0; k < s->nthreads; k++) {
    struct worker *w = &s->workers[k];
    if (!w->started) continue;
    if (pthread_timedjoin_np(w->tid, NULL, &dl) == 0) w->started = 0;
    else left++;
  }
  left += uring_join(s, &dl);
  if (left) {
    /* a lazy unmount with files still open: cut the connection (this also
     * ends the ring's entries with ENOTCONN) */
    abort_connection(s);
    for (int k = 0; k < s->nthreads; k++)
      if (s->workers[k].started) { pthread_join(s->workers[k].tid, NULL); s->workers[k].started = 0; }
    uring_join(s, NULL);
  }
  for (int k = 0; k < s->nthreads; k++) {
    struct worker *w = &s->workers[k];
    if (w->fd >= 0 && w->fd != s->fd) close(w->fd);
    reader_wait_close(&w->wait);
    free(w->in);
    free(w->out);
  }
  free(s->workers);
  s->workers = NULL;
}

static void unmount(struct session *s) {
  if (!s->mounted) return;
  if (umount2(s->cfg.mountpoint, UMOUNT_NOFOLLOW) < 0) {
    if (errno == EBUSY) umount2(s->cfg.mountpoint, MNT_DETACH | UMOUNT_NOFOLLOW);
    else if (s->cfg.debug) fprintf(stderr, "replfs: umount %s: %s\n", s->cfg.mountpoint, strerror(errno));
  }
  s->mounted = 0;
}

static void destroy(struct session *s) {
  unmount(s);
  join_workers(s);
  uring_free(s);
  if (s->fd >= 0) close(s->fd);
  itable_free(s->it);
  free(s->roots);
  free_config(s);
  free(s);
}

/* Every inode the kernel knows holds an O_PATH fd (a cp -a of /usr/include
 * alone is ~30k), so raise the fd limit as far as we may (process-wide). */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
  rlim_t want = FD_LIMIT_WANT;
  if (rl.rlim_cur >= want) return;
  struct rlimit up = { want, rl.rlim_max > want ? rl.rlim_max : want };
  if (setrlimit(RLIMIT_NOFILE, &up) < 0) {
    rl.rlim_cur = rl.rlim_max;                 /* not root: the hard limit */
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int session_start(const struct core_config *cfg, struct session **out, char *err, size_t errlen) {
  *out = NULL;
  raise_fd_limit();
  if (!cfg || !cfg->mountpoint || cfg->mountpoint[0] != '/' || cfg->nvolumes < 1 || !cfg->volumes)
    return fail(err, errlen, -EINVAL, "config: an absolute mountpoint and at least one volume are needed");
  if (cfg->single && cfg->volumes[0].kind != VOL_DIR)
    return fail(err, errlen, -EINVAL, "config: a single mount's volume must be a directory");
  struct session *s = calloc(1, sizeof *s);
  if (!s) return fail(err, errlen, -ENOMEM, "out of memory");
  s->fd = -1;
  int rc = copy_config(s, cfg);
  if (rc) { destroy(s); return fail(err, errlen, rc, "out of memory"); }
  uint32_t mw = cfg->max_write ? cfg->max_write : MAX_WRITE_DEFAULT;
  if (mw < 4096) mw = 4096;
  if (mw > MAX_WRITE_MAX) mw = MAX_WRITE_MAX;
  s->max_write = mw & ~4095u;
  s->bufsize = (s->max_write > XATTR_VALUE_MAX ? s->max_write : XATTR_VALUE_MAX) + HEADER_ROOM + PATH_MAX;
  s->nthreads = cfg->threads > 0 ? cfg->threads : 1;
  if (s->nthreads > 64) s->nthreads = 64;
  /* the ring serves the requests; one reader takes what stays on /dev/fuse
   * (FORGET, INTERRUPT, anything before the ring is ready) */
  if (cfg->io_uring) s->nthreads = 1;
  clock_gettime(CLOCK_REALTIME, &s->start_time);
  if ((rc = itable_new(&s->it))) { destroy(s); return fail(err, errlen, rc, "out of memory"); }
  if ((rc = open_volumes(s, err, errlen))) { destroy(s); return rc; }

  if (cfg->io_uring && (rc = uring_enable_param(err, errlen))) { destroy(s); return rc; }
  s->fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (s->fd < 0) { rc = -errno; destroy(s); return fail(err, errlen, rc, "open /dev/fuse: %s", strerror(-rc)); }
  char opts[256], type[64];
  snprintf(opts, sizeof opts,
           "fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other,default_permissions,max_read=%u",
           s->fd, (unsigned)getuid(), (unsigned)getgid(), s->max_write);
  snprintf(type, sizeof type, "fuse.replfs");
  unsigned long flags = MS_NOSUID | MS_NODEV | (cfg->read_only ? MS_RDONLY : 0);
  if (mount(s->cfg.fsname, s->cfg.mountpoint, type, flags, opts) < 0) {
    rc = -errno;
    destroy(s);
    return fail(err, errlen, rc, "mount %s: %s", cfg->mountpoint, strerror(-rc));
  }
  s->mounted = 1;
  if ((rc = do_init(s, err, errlen))) { destroy(s); return rc; }
  s->conn_id = find_conn_id(s->cfg.mountpoint);
  if ((rc = start_workers(s, err, errlen))) { destroy(s); return rc; }
  if (cfg->io_uring && (rc = uring_start(s, err, errlen))) { destroy(s); return rc; }
  s->alive = 1;
  *out = s;
  return 0;
}

/* Starting thread: unmount (lazily if busy), join the readers, free. */
void session_stop(struct session *s) {
  if (s) destroy(s);
}

void session_stats(struct session *s, struct session_stats *o) {
  o->requests = __atomic_load_n(&s->st.requests, __ATOMIC_RELAXED);
  o->writes = __atomic_load_n(&s->st.writes, __ATOMIC_RELAXED);
  o->write_bytes = __atomic_load_n(&s->st.write_bytes, __ATOMIC_RELAXED);
  o->reads = __atomic_load_n(&s->st.reads, __ATOMIC_RELAXED);
  o->read_bytes = __atomic_load_n(&s->st.read_bytes, __ATOMIC_RELAXED);
  o->errors = __atomic_load_n(&s->st.errors, __ATOMIC_RELAXED);
}
