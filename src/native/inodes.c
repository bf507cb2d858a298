/* inodes.c: the inode table and the open-handle table.
 *
 * Owns: one struct inode per backing object the kernel knows about, keyed by
 * (volume, st_dev, st_ino) and by nodeid. Each holds an O_PATH fd, so ops use
 * *at() calls relative to it (never long absolute paths), and the kernel's
 * lookup count (entry replies minus FORGET/BATCH_FORGET). Each also remembers
 * its most recent name (parent inode + name) so a volume-relative path can be
 * built for journal records: the walk up the parents stops at the volume root.
 * A child holds a ref on its parent, so a parent outlives named children even
 * after the kernel forgot it. An inode is freed when both counts are zero.
 *
 * Fd budget: the kernel keeps inodes cached as long as memory allows, so one
 * O_PATH fd per inode meets RLIMIT_NOFILE (20000 here, not raisable without
 * CAP_SYS_RESOURCE) on a large copy. Idle inodes (no request in flight, no
 * open handle, no named child) with a name sit on an LRU list; past the
 * budget the oldest lose their fd, and inode_get reopens it from the parent's
 * fd (a parent with named children is never idle) and name, checking that
 * (dev, ino) still match (ESTALE otherwise).
 *
 * Threads: every function runs on a FUSE reader thread (start/stop: on the
 * starting thread, before the readers start or after they are joined) and
 * takes the one table mutex. Nodeids are never reused, so generation is 0. */
#define _GNU_SOURCE
#include "inodes.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define HANDLE_CHUNK 1024
#define HANDLE_CHUNKS 4096           /* 4 Mi handles open at once at most */

struct itable {
  pthread_mutex_t mu;
  struct inode **by_id, **by_key;
  size_t nbuckets, count;
  uint64_t next_nodeid;
  /* handles: chunks are never freed while the table lives, so handle_get
   * reads without the lock (the kernel never races a RELEASE with other ops
   * on the same fh). */
  struct handle *chunks[HANDLE_CHUNKS];
  uint32_t nchunks;
  uint32_t *free_slots;
  size_t nfree, free_cap;
  uint32_t gen;
  struct inode *lru_head, *lru_tail;          /* oldest first */
  size_t nfds, fd_budget;
};

static size_t hash_id(uint64_t id, size_t n) { return (id * 0x9E3779B97F4A7C15ull) >> 20 & (n - 1); }
static size_t hash_key(uint32_t vol, dev_t dev, ino_t ino, size_t n) {
  uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ ((uint64_t)dev << 17) ^ vol;
  return (h ^ h >> 29) & (n - 1);
}

int itable_new(struct itable **out) {
  struct itable *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  pthread_mutex_init(&t->mu, NULL);
  t->nbuckets = 1024;
  t->by_id = calloc(t->nbuckets, sizeof *t->by_id);
  t->by_key = calloc(t->nbuckets, sizeof *t->by_key);
  if (!t->by_id || !t->by_key) { free(t->by_id); free(t->by_key); free(t); return -ENOMEM; }
  t->next_nodeid = 2;
  t->gen = 1;
  struct rlimit rl;
  t->fd_budget = 8192;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    t->fd_budget = rl.rlim_cur / 2 > 512 ? rl.rlim_cur / 2 : 512;
  const char *b = getenv("REPLFS_FD_BUDGET");        /* tests: force eviction */
  if (b && atoi(b) > 0) t->fd_budget = (size_t)atoi(b);
  *out = t;
  return 0;
}

static void free_inode_mem(struct inode *i) {
  if (i->fd >= 0) close(i->fd);   /* itable_free, or maybe_free which counts it */
  free(i->name);
  while (i->aliases) { struct alias *a = i->aliases; i->aliases = a->next; free(a->name); free(a); }
  free(i);
}

void itable_free(struct itable *t) {
  if (!t) return;
  for (size_t b = 0; b < t->nbuckets; b++) {
    struct inode *i = t->by_id[b];
    while (i) { struct inode *n = i->next_id; free_inode_mem(i); i = n; }
  }
  for (uint32_t c = 0; c < t->nchunks; c++) {
    for (int k = 0; k < HANDLE_CHUNK; k++) {
      struct handle *h = &t->chunks[c][k];
      if (!h->used) continue;
      if (h->dir) closedir(h->dir); else if (h->fd >= 0) close(h->fd);
    }
    free(t->chunks[c]);
  }
  free(t->free_slots);
  free(t->by_id);
  free(t->by_key);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

/* --- hashing (lock held) --- */

static void insert_hashes(struct itable *t, struct inode *i);

static void grow(struct itable *t) {
  size_t n = t->nbuckets * 2;
  struct inode **id = calloc(n, sizeof *id), **key = calloc(n, sizeof *key);
  if (!id || !key) { free(id); free(key); return; }   /* stay small: still correct */
  struct inode **old = t->by_id;
  size_t oldn = t->nbuckets;
  free(t->by_key);
  t->by_id = id; t->by_key = key; t->nbuckets = n;
  for (size_t b = 0; b < oldn; b++) {
    struct inode *i = old[b];
    while (i) { struct inode *nx = i->next_id; insert_hashes(t, i); i = nx; }
  }
  free(old);
}

static void insert_hashes(struct itable *t, struct inode *i) {
  size_t a = hash_id(i->nodeid, t->nbuckets);
  i->next_id = t->by_id[a]; t->by_id[a] = i;
  if (i->kind == INODE_SYNTH) { i->next_key = NULL; return; }
  size_t k = hash_key(i->vol, i->dev, i->ino, t->nbuckets);
  i->next_key = t->by_key[k]; t->by_key[k] = i;
}

static void add(struct itable *t, struct inode *i) {
  if (t->count + 1 > t->nbuckets) grow(t);
  insert_hashes(t, i);
  t->count++;
}

static void remove_hashes(struct itable *t, struct inode *i) {
  struct inode **p = &t->by_id[hash_id(i->nodeid, t->nbuckets)];
  while (*p && *p != i) p = &(*p)->next_id;
  if (*p) *p = i->next_id;
  if (i->kind != INODE_SYNTH) {
    p = &t->by_key[hash_key(i->vol, i->dev, i->ino, t->nbuckets)];
    while (*p && *p != i) p = &(*p)->next_key;
    if (*p) *p = i->next_key;
  }
  t->count--;
}

static struct inode *find_id(struct itable *t, uint64_t id) {
  for (struct inode *i = t->by_id[hash_id(id, t->nbuckets)]; i; i = i->next_id)
    if (i->nodeid == id) return i;
  return NULL;
}

static struct inode *find_key(struct itable *t, uint32_t vol, dev_t dev, ino_t ino) {
  for (struct inode *i = t->by_key[hash_key(vol, dev, ino, t->nbuckets)]; i; i = i->next_key)
    if (i->ino == ino && i->dev == dev && i->vol == vol) return i;
  return NULL;
}

/* --- fd budget (lock held) --- */

static void lru_remove(struct itable *t, struct inode *i) {
  if (!i->in_lru) return;
  if (i->lru_prev) i->lru_prev->lru_next = i->lru_next; else t->lru_head = i->lru_next;
  if (i->lru_next) i->lru_next->lru_prev = i->lru_prev; else t->lru_tail = i->lru_prev;
  i->lru_prev = i->lru_next = NULL;
  i->in_lru = 0;
}

/* Puts i on the LRU (newest end) iff its fd could be closed now. */
static void lru_fix(struct itable *t, struct inode *i) {
  int idle = i->kind == INODE_NORMAL && i->refs == 0 && i->fd >= 0 && i->name && i->parent && !i->keep_fd;
  if (idle && !i->in_lru) {
    i->lru_prev = t->lru_tail;
    i->lru_next = NULL;
    if (t->lru_tail) t->lru_tail->lru_next = i; else t->lru_head = i;
    t->lru_tail = i;
    i->in_lru = 1;
  } else if (!idle && i->in_lru) {
    lru_remove(t, i);
  }
}

static void evict(struct itable *t) {
  while (t->nfds > t->fd_budget && t->lru_head) {
    struct inode *i = t->lru_head;
    lru_remove(t, i);
    close(i->fd);
    i->fd = -1;
    t->nfds--;
  }
}

static void ref_inc(struct itable *t, struct inode *i) { i->refs++; lru_fix(t, i); }
static void ref_dec(struct itable *t, struct inode *i) { i->refs--; lru_fix(t, i); }

/* Reopens i's fd from its parent's if it was closed (0, or -ESTALE). */
static int ensure_fd(struct itable *t, struct inode *i) {
  if (i->fd >= 0 || i->kind == INODE_SYNTH) return 0;
  if (i->kind != INODE_NORMAL || !i->name || !i->parent) return -ESTALE;
  int rc = ensure_fd(t, i->parent);
  if (rc) return rc;
  int fd = openat(i->parent->fd, i->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -ESTALE;
  struct stat st;
  if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != i->dev || st.st_ino != i->ino) {
    close(fd);
    return -ESTALE;
  }
  i->fd = fd;
  t->nfds++;
  lru_fix(t, i);
  evict(t);
  return 0;
}

/* Frees i if nothing refers to it any more, then its parents likewise (lock held). */
static void maybe_free(struct itable *t, struct inode *i) {
  while (i && i->nlookup == 0 && i->refs == 0 && i->kind == INODE_NORMAL) {
    struct inode *p = i->parent;
    lru_remove(t, i);
    remove_hashes(t, i);
    if (i->fd >= 0) t->nfds--;
    /* the parents of its other names let go too */
    while (i->aliases) {
      struct alias *a = i->aliases;
      i->aliases = a->next;
      struct inode *ap = a->parent;
      free(a->name);
      free(a);
      ref_dec(t, ap);
      maybe_free(t, ap);
    }
    free_inode_mem(i);
    if (!p) break;
    ref_dec(t, p);
    i = p;
  }
}

#define ALIASES_MAX 64

/* Removes parent/name from i's other names; 1 if it was one (lock held). */
static int drop_alias(struct itable *t, struct inode *i, struct inode *parent, const char *name) {
  for (struct alias **pp = &i->aliases; *pp; pp = &(*pp)->next) {
    struct alias *a = *pp;
    if (a->parent == parent && strcmp(a->name, name) == 0) {
      *pp = a->next;
      free(a->name);
      free(a);
      ref_dec(t, parent);
      maybe_free(t, parent);
      return 1;
    }
  }
  return 0;
}

/* i is now (also) called parent/name, its most recent name: records use it.
 * A file's previous name stays known as an alias (it is another hard link
 * until it is unlinked or renamed away); a directory has one name. */
static void set_name(struct itable *t, struct inode *i, struct inode *parent, const char *name) {
  if (i->kind != INODE_NORMAL) return;        /* volume roots keep theirs */
  if (i->parent == parent && i->name && strcmp(i->name, name) == 0) return;
  char *n = strdup(name);
  if (!n) return;                             /* keeps the old name: best effort */
  ref_inc(t, parent);
  drop_alias(t, i, parent, name);
  struct inode *old = i->parent;
  char *oldname = i->name;
  int nalias = 0;
  for (struct alias *a = i->aliases; a; a = a->next) nalias++;
  struct alias *a = NULL;
  if (old && oldname && i->type != S_IFDIR && nalias < ALIASES_MAX && (a = malloc(sizeof *a))) {
    a->parent = old;                          /* keeps its ref on old */
    a->name = oldname;
    a->next = i->aliases;
    i->aliases = a;
  }
  i->name = n;
  i->parent = parent;
  lru_fix(t, i);
  if (!a) {
    free(oldname);
    if (old) { ref_dec(t, old); maybe_free(t, old); }
  }
}

/* parent/name no longer names i: an alias, if i has one, becomes its name. */
static void drop_name(struct itable *t, struct inode *i, struct inode *parent, const char *name) {
  if (!(i->parent == parent && i->name && strcmp(i->name, name) == 0)) {
    drop_alias(t, i, parent, name);
    return;
  }
  struct inode *old = i->parent;
  free(i->name);
  i->name = NULL;
  i->parent = NULL;
  struct alias *a = i->aliases;
  if (a) {                                    /* its ref on a->parent moves to the name */
    i->aliases = a->next;
    i->name = a->name;
    i->parent = a->parent;
    free(a);
  }
  lru_fix(t, i);
  ref_dec(t, old);
  maybe_free(t, old);
}

/* --- pinned inodes (starting thread) --- */

struct inode *itable_add_synth(struct itable *t) {
  struct inode *i = calloc(1, sizeof *i);
  if (!i) return NULL;
  i->nodeid = 1;
  i->fd = -1;
  i->kind = INODE_SYNTH;
  i->type = S_IFDIR;
  i->refs = 1;
  pthread_mutex_lock(&t->mu);
  add(t, i);
  pthread_mutex_unlock(&t->mu);
  return i;
}

struct inode *itable_add_volroot(struct itable *t, int single, uint32_t vol, int fd,
                                 const struct stat *st, int image,
                                 struct inode *synth, const char *name) {
  struct inode *i = calloc(1, sizeof *i);
  if (!i) { close(fd); return NULL; }
  i->fd = fd;
  i->dev = st->st_dev;
  i->ino = st->st_ino;
  i->vol = vol;
  i->kind = INODE_VOLROOT;
  i->image = (uint8_t)image;
  i->type = st->st_mode & S_IFMT;
  i->refs = 1;                                 /* pinned */
  pthread_mutex_lock(&t->mu);
  t->nfds++;
  i->nodeid = single ? 1 : t->next_nodeid++;
  if (synth && name) {
    i->name = strdup(name);
    i->parent = synth;
    synth->refs++;
  }
  add(t, i);
  pthread_mutex_unlock(&t->mu);
  return i;
}

/* --- reader threads --- */

struct inode *inode_get(struct itable *t, uint64_t nodeid) {
  pthread_mutex_lock(&t->mu);
  struct inode *i = find_id(t, nodeid);
  if (i) {
    ref_inc(t, i);                   /* first: off the LRU, so the reopen stays open */
    if (ensure_fd(t, i) != 0) { ref_dec(t, i); maybe_free(t, i); i = NULL; }
  }
  pthread_mutex_unlock(&t->mu);
  return i;
}

void inode_ref(struct itable *t, struct inode *i) {
  pthread_mutex_lock(&t->mu);
  ref_inc(t, i);
  pthread_mutex_unlock(&t->mu);
}

void inode_put(struct itable *t, struct inode *i) {
  if (!i) return;
  pthread_mutex_lock(&t->mu);
  ref_dec(t, i);
  maybe_free(t, i);
  pthread_mutex_unlock(&t->mu);
}

uint64_t inode_link(struct itable *t, struct inode *parent, const char *name, int fd,
                    const struct stat *st) {
  pthread_mutex_lock(&t->mu);
  struct inode *i = find_key(t, parent->vol, st->st_dev, st->st_ino);
  if (i) {
    if (i->fd < 0) { i->fd = fd; t->nfds++; }   /* its fd had been closed: take this one */
    else close(fd);
    /* a reused inode number (the old object was deleted): refresh the type */
    i->type = st->st_mode & S_IFMT;
  } else {
    i = calloc(1, sizeof *i);
    if (!i) { pthread_mutex_unlock(&t->mu); close(fd); return 0; }
    i->nodeid = t->next_nodeid++;
    i->fd = fd;
    i->dev = st->st_dev;
    i->ino = st->st_ino;
    i->vol = parent->vol;
    i->type = st->st_mode & S_IFMT;
    add(t, i);
    t->nfds++;
  }
  i->nlookup++;
  set_name(t, i, parent, name);
  lru_fix(t, i);
  evict(t);
  uint64_t id = i->nodeid;
  pthread_mutex_unlock(&t->mu);
  return id;
}

void inode_lookup_again(struct itable *t, struct inode *i) {
  pthread_mutex_lock(&t->mu);
  i->nlookup++;
  pthread_mutex_unlock(&t->mu);
}

void inode_forget(struct itable *t, uint64_t nodeid, uint64_t n) {
  pthread_mutex_lock(&t->mu);
  struct inode *i = find_id(t, nodeid);
  if (i) {
    i->nlookup = n >= i->nlookup ? 0 : i->nlookup - n;
    maybe_free(t, i);
  }
  pthread_mutex_unlock(&t->mu);
}

void inode_renamed(struct itable *t, uint32_t vol, dev_t dev, ino_t ino,
                   struct inode *oldparent, const char *oldname,
                   struct inode *newparent, const char *newname) {
  pthread_mutex_lock(&t->mu);
  struct inode *i = find_key(t, vol, dev, ino);
  if (i && i->kind == INODE_NORMAL) {
    ref_inc(t, i);
    set_name(t, i, newparent, newname);
    drop_name(t, i, oldparent, oldname);
    ref_dec(t, i);
    maybe_free(t, i);
  }
  pthread_mutex_unlock(&t->mu);
}

void inode_unlinked(struct itable *t, uint32_t vol, dev_t dev, ino_t ino,
                    struct inode *parent, const char *name) {
  pthread_mutex_lock(&t->mu);
  struct inode *i = find_key(t, vol, dev, ino);
  if (i && i->kind == INODE_NORMAL) {
    ref_inc(t, i);
    drop_name(t, i, parent, name);
    ref_dec(t, i);
    maybe_free(t, i);
  }
  pthread_mutex_unlock(&t->mu);
}

void inode_keep_fd(struct itable *t, uint32_t vol, dev_t dev, ino_t ino) {
  pthread_mutex_lock(&t->mu);
  struct inode *i = find_key(t, vol, dev, ino);
  if (i) {
    i->keep_fd = 1;
    lru_fix(t, i);
    ensure_fd(t, i);
  }
  pthread_mutex_unlock(&t->mu);
}

/* Builds the path of i (lock held). */
static int path_locked(struct inode *i, char *buf, size_t cap) {
  const char *parts[PATH_MAX / 2];
  size_t lens[PATH_MAX / 2];
  int n = 0;
  size_t total = 0;
  while (i->kind == INODE_NORMAL) {
    if (!i->name || !i->parent) return -ENOENT;
    if (n == (int)(sizeof parts / sizeof parts[0])) return -ENAMETOOLONG;
    lens[n] = strlen(i->name);
    parts[n++] = i->name;
    total += lens[n - 1] + 1;
    if (total > cap) return -ENAMETOOLONG;
    i = i->parent;
  }
  if (i->kind == INODE_SYNTH) return -ENOENT;
  size_t pos = 0;
  for (int k = n - 1; k >= 0; k--) {
    memcpy(buf + pos, parts[k], lens[k]);
    pos += lens[k];
    if (k) buf[pos++] = '/';
  }
  if (pos >= cap) return -ENAMETOOLONG;
  buf[pos] = 0;
  return (int)pos;
}

int inode_path(struct itable *t, struct inode *i, char *buf, size_t cap) {
  pthread_mutex_lock(&t->mu);
  int rc = path_locked(i, buf, cap);
  pthread_mutex_unlock(&t->mu);
  return rc;
}

int inode_child_path(struct itable *t, struct inode *parent, const char *name,
                     char *buf, size_t cap) {
  pthread_mutex_lock(&t->mu);
  int rc = path_locked(parent, buf, cap);
  pthread_mutex_unlock(&t->mu);
  if (rc < 0) return rc;
  size_t pos = (size_t)rc, nl = strlen(name);
  if (pos + (pos ? 1 : 0) + nl + 1 > cap) return -ENAMETOOLONG;
  if (pos) buf[pos++] = '/';
  memcpy(buf + pos, name, nl + 1);
  return (int)(pos + nl);
}

int inode_parent_name(struct itable *t, struct inode *i, int *parent_fd, char *name, size_t cap) {
  int rc = -ENOENT;
  pthread_mutex_lock(&t->mu);
  if (i->name && i->parent && i->parent->fd >= 0 && strlen(i->name) < cap) {
    int fd = fcntl(i->parent->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) rc = -errno;
    else { strcpy(name, i->name); *parent_fd = fd; rc = 0; }
  }
  pthread_mutex_unlock(&t->mu);
  return rc;
}

/* --- handles --- */

uint64_t handle_new(struct itable *t, int fd, DIR *dir, struct inode *ino, int synth) {
  pthread_mutex_lock(&t->mu);
  if (t->nfree == 0) {
    if (t->nchunks == HANDLE_CHUNKS) { pthread_mutex_unlock(&t->mu); return 0; }
    struct handle *c = calloc(HANDLE_CHUNK, sizeof *c);
    size_t need = (size_t)(t->nchunks + 1) * HANDLE_CHUNK;   /* every slot may be freed */
    if (c && need > t->free_cap) {
      uint32_t *f = realloc(t->free_slots, need * sizeof *f);
      if (!f) { free(c); c = NULL; } else { t->free_slots = f; t->free_cap = need; }
    }
    if (!c) { pthread_mutex_unlock(&t->mu); return 0; }
    uint32_t base = t->nchunks * HANDLE_CHUNK;
    for (int k = HANDLE_CHUNK - 1; k >= 0; k--) t->free_slots[t->nfree++] = base + (uint32_t)k;
    __atomic_store_n(&t->chunks[t->nchunks], c, __ATOMIC_RELEASE);
    t->nchunks++;
  }
  uint32_t slot = t->free_slots[--t->nfree];
  struct handle *h = &t->chunks[slot / HANDLE_CHUNK][slot % HANDLE_CHUNK];
  h->gen = t->gen++;
  if (t->gen == 0) t->gen = 1;
  h->fd = fd;
  h->dir = dir;
  h->dir_off = 0;
  h->ino = ino;
  h->synth = synth;
  if (ino) ref_inc(t, ino);
  __atomic_store_n(&h->used, 1, __ATOMIC_RELEASE);
  uint64_t fh = (uint64_t)h->gen << 32 | slot;
  pthread_mutex_unlock(&t->mu);
  return fh;
}

struct handle *handle_get(struct itable *t, uint64_t fh) {
  uint32_t slot = (uint32_t)fh, gen = (uint32_t)(fh >> 32);
  if (slot / HANDLE_CHUNK >= HANDLE_CHUNKS) return NULL;
  struct handle *c = __atomic_load_n(&t->chunks[slot / HANDLE_CHUNK], __ATOMIC_ACQUIRE);
  if (!c) return NULL;
  struct handle *h = &c[slot % HANDLE_CHUNK];
  if (!__atomic_load_n(&h->used, __ATOMIC_ACQUIRE) || h->gen != gen) return NULL;
  return h;
}

void handle_free(struct itable *t, uint64_t fh) {
  struct handle *h = handle_get(t, fh);
  if (!h) return;
  pthread_mutex_lock(&t->mu);
  if (h->used && h->gen == (uint32_t)(fh >> 32)) {
    h->used = 0;
    h->gen = 0;
    if (h->dir) closedir(h->dir); else if (h->fd >= 0) close(h->fd);
    h->dir = NULL;
    h->fd = -1;
    struct inode *i = h->ino;
    h->ino = NULL;
    t->free_slots[t->nfree++] = (uint32_t)fh;
    if (i) { ref_dec(t, i); maybe_free(t, i); }
  }
  pthread_mutex_unlock(&t->mu);
}
