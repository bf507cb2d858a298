/* activity.c: the activity log's table of hot parts and its file (see
 * activity.h; the format and the reasons are src/capture/activity-log.ts').
 *
 * Threads: the group-lock holder only (open/close: the JS thread). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "errmsg.h"
#include "activity.h"

#include <cbor.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "journal.h"

#define IDLE_MARKS_MAX 1024     /* activity-log.ts idleMarksMax */

struct hot_entry {
  struct hot_entry *next;       /* hash chain */
  uint64_t hash;
  uint32_t inflight;
  uint32_t vol;
  int fresh;                    /* added by the activity_mark call under way */
  enum hot_kind kind;
  int64_t region;
  size_t path_len;
  char path[];
};

struct activity {
  char *path, *tmp;
  int fd;
  off_t size;                   /* of the file: a short write is cut back to it */
  struct hot_entry **buckets;
  size_t nbuckets, count, idle;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

static uint64_t hash_mark(const struct hot *m) {
  uint64_t h = 0xcbf29ce484222325ull;
  int64_t region = m->kind == HOT_REGION ? m->region : -1;
  uint32_t kind = m->kind;
  h = fnv(h, &m->vol, sizeof m->vol);
  h = fnv(h, &kind, sizeof kind);
  h = fnv(h, &region, sizeof region);
  return fnv(h, m->path, m->path_len);
}

static struct hot_entry *find(const struct activity *a, const struct hot *m, uint64_t h) {
  int64_t region = m->kind == HOT_REGION ? m->region : -1;
  for (struct hot_entry *e = a->buckets[h & (a->nbuckets - 1)]; e; e = e->next)
    if (e->hash == h && e->vol == m->vol && e->kind == m->kind && e->region == region &&
        e->path_len == m->path_len && memcmp(e->path, m->path, m->path_len) == 0) return e;
  return NULL;
}

static int grow(struct activity *a) {
  size_t n = a->nbuckets * 2;
  struct hot_entry **b = calloc(n, sizeof *b);
  if (!b) return -ENOMEM;
  for (size_t i = 0; i < a->nbuckets; i++) {
    for (struct hot_entry *e = a->buckets[i], *next; e; e = next) {
      next = e->next;
      e->next = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
    }
  }
  free(a->buckets);
  a->buckets = b;
  a->nbuckets = n;
  return 0;
}

static void unlink_entry(struct activity *a, struct hot_entry *x) {
  struct hot_entry **pp = &a->buckets[x->hash & (a->nbuckets - 1)];
  while (*pp != x) pp = &(*pp)->next;
  *pp = x->next;
  a->count--;
  free(x);
}

static const char *kind_name(enum hot_kind k) {
  return k == HOT_PATH ? "path" : k == HOT_META ? "meta" : "region";
}

/* One mark's frame appended to e: u32 len | u32 crc | [vol, kind, region, path]. */
static void encode_mark(struct jenc *e, const struct hot_entry *m) {
  uint8_t head[40];
  size_t at = 8;
  const char *kn = kind_name(m->kind);
  size_t kl = strlen(kn);
  at += cbor_encode_array_start(4, head + at, sizeof head - at);
  at += cbor_encode_uint(m->vol, head + at, sizeof head - at);
  at += cbor_encode_string_start(kl, head + at, sizeof head - at);
  memcpy(head + at, kn, kl);
  at += kl;
  at += m->region >= 0 ? cbor_encode_uint((uint64_t)m->region, head + at, sizeof head - at)
                       : cbor_encode_negint((uint64_t)(-(m->region + 1)), head + at, sizeof head - at);
  /* A path that is not UTF-8 as a byte string (names are bytes: core/names.ts). */
  at += jname_is_text(m->path, m->path_len) ? cbor_encode_string_start(m->path_len, head + at, sizeof head - at)
                                             : cbor_encode_bytestring_start(m->path_len, head + at, sizeof head - at);
  size_t len = at - 8 + m->path_len;
  uint32_t crc = j_crc32c(j_crc32c(0, head + 8, at - 8), m->path, m->path_len);
  uint8_t hdr[8] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len,
                     (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc };
  memcpy(head, hdr, 8);
  jenc_verbatim(e, head, at);        /* e copies: it is not by reference */
  jenc_verbatim(e, m->path, m->path_len);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? -errno : -ENOSPC;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int activity_open(const char *state_dir, struct activity **out, char *err, size_t errlen) {
  struct activity *a = calloc(1, sizeof *a);
  if (!a) return fail(err, errlen, -ENOMEM, "out of memory");
  a->fd = -1;
  a->nbuckets = 256;
  a->buckets = calloc(a->nbuckets, sizeof *a->buckets);
  if (asprintf(&a->path, "%s/activity.log", state_dir) < 0) a->path = NULL;
  if (asprintf(&a->tmp, "%s/activity.log.tmp", state_dir) < 0) a->tmp = NULL;
  if (!a->buckets || !a->path || !a->tmp) { activity_close(a, 0); return fail(err, errlen, -ENOMEM, "out of memory"); }
  a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (a->fd < 0) {
    int rc = -errno;
    fail(err, errlen, rc, "cannot open %s: %s", a->path, strerror(errno));
    activity_close(a, 0);
    return rc;
  }
  a->size = lseek(a->fd, 0, SEEK_END);
  *out = a;
  return 0;
}

void activity_close(struct activity *a, int truncate) {
  if (!a) return;
  if (a->fd >= 0) {
    if (truncate && ftruncate(a->fd, 0) < 0) { /* nothing to do: the next start restates a little more */ }
    close(a->fd);
  }
  for (size_t i = 0; a->buckets && i < a->nbuckets; i++) {
    for (struct hot_entry *e = a->buckets[i], *next; e; e = next) {
      next = e->next;
      free(e);
    }
  }
  free(a->buckets);
  free(a->path);
  free(a->tmp);
  free(a);
}

int activity_mark(struct activity *a, const struct hot *marks, int n, char *err, size_t errlen) {
  struct jenc fresh;
  jenc_init(&fresh, 0);
  int rc = 0, i;
  for (i = 0; i < n && !rc; i++) {
    const struct hot *m = &marks[i];
    uint64_t h = hash_mark(m);
    struct hot_entry *e = find(a, m, h);
    if (e) {
      if (e->inflight++ == 0) a->idle--;
      continue;
    }
    if (a->count >= a->nbuckets && (rc = grow(a)) < 0) break;
    e = malloc(sizeof *e + m->path_len);
    if (!e) { rc = -ENOMEM; break; }
    *e = (struct hot_entry){ .hash = h, .inflight = 1, .fresh = 1, .vol = m->vol, .kind = m->kind,
                             .region = m->kind == HOT_REGION ? m->region : -1, .path_len = m->path_len };
    memcpy(e->path, m->path, m->path_len);
    e->next = a->buckets[h & (a->nbuckets - 1)];
    a->buckets[h & (a->nbuckets - 1)] = e;
    a->count++;
    encode_mark(&fresh, e);
  }
  if (!rc) rc = fresh.err;
  if (!rc && fresh.len) {
    rc = write_all(a->fd, fresh.buf, fresh.len);
    if (rc == 0) a->size += (off_t)fresh.len;
    /* A torn frame ends the reader's scan: marks after it would be lost. */
    else if (ftruncate(a->fd, a->size) < 0) rc = -EIO;
  }
  jenc_free(&fresh);
  /* Undo this call: new parts leave the table (the file does not have
   * them), parts already hot go back to their count. */
  for (int k = 0; k < i; k++) {
    struct hot_entry *e = find(a, &marks[k], hash_mark(&marks[k]));
    if (!e) continue;
    if (rc && e->fresh) unlink_entry(a, e);
    else if (rc && --e->inflight == 0) a->idle++;
    else e->fresh = 0;
  }
  if (rc) fail(err, errlen, rc, "cannot mark parts hot in %s: %s", a->path, strerror(-rc));
  return rc;
}

/* Rewrites the file with the marks in flight only (tmp + rename), as
 * activity-log.ts' compact does. */
static int compact(struct activity *a, char *err, size_t errlen) {
  struct jenc out;
  jenc_init(&out, 0);
  for (size_t i = 0; i < a->nbuckets; i++) {
    for (struct hot_entry *e = a->buckets[i], *next; e; e = next) {
      next = e->next;
      if (e->inflight == 0) unlink_entry(a, e);
      else encode_mark(&out, e);
    }
  }
  a->idle = 0;
  int rc = out.err;
  int fd = rc ? -1 : open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (!rc && fd < 0) rc = -errno;
  if (!rc) rc = write_all(fd, out.buf, out.len);
  if (fd >= 0) close(fd);
  if (!rc && rename(a->tmp, a->path) < 0) rc = -errno;
  if (!rc) {
    int nfd = open(a->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (nfd < 0) rc = -errno;
    else {
      close(a->fd);
      a->fd = nfd;
      a->size = (off_t)out.len;
    }
  }
  jenc_free(&out);
  /* On an error the old file stays: it still holds every hot mark (and
   * some idle ones: a crash restates a little more). */
  if (rc) fail(err, errlen, rc, "cannot compact %s: %s", a->path, strerror(-rc));
  return rc;
}

int activity_release(struct activity *a, const struct hot *marks, int n, char *err, size_t errlen) {
  for (int i = 0; i < n; i++) {
    struct hot_entry *e = find(a, &marks[i], hash_mark(&marks[i]));
    if (e && e->inflight > 0 && --e->inflight == 0) a->idle++;
  }
  return a->idle > IDLE_MARKS_MAX ? compact(a, err, errlen) : 0;
}

int activity_hold(struct activity *a, const struct hot *marks, int n, struct hot_entry **out) {
  int k = 0;
  for (int i = 0; i < n; i++) {
    struct hot_entry *e = find(a, &marks[i], hash_mark(&marks[i]));
    if (e && e->inflight > 0) out[k++] = e;
  }
  return k;
}

int activity_release_entries(struct activity *a, struct hot_entry *const *e, size_t n, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++)
    if (e[i]->inflight > 0 && --e[i]->inflight == 0) a->idle++;
  return a->idle > IDLE_MARKS_MAX ? compact(a, err, errlen) : 0;
}

size_t activity_hot(const struct activity *a) { return a->count - a->idle; }
size_t activity_idle(const struct activity *a) { return a->idle; }
