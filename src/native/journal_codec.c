/* journal_codec.c: records and batches as CBOR (libcbor's encoders), the
 * frame's CRC32C (ISA-L) and the chain hash (libxxhash's XXH3-128). Pure: no
 * I/O, no shared state; any thread may call it on its own struct jenc.
 *
 * The bytes must read back through src/journal/codec.ts (cbor-x, then
 * validateRecord): maps with text keys exactly as src/core/records.ts names
 * them, byte strings untagged, integers as CBOR ints. Key order follows the
 * TS encoder's (object insertion order); readers do not depend on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "journal.h"

#include <cbor.h>
#include <errno.h>
#include <isa-l/crc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

/* Data at least this long goes by reference (an iovec of its own), shorter
 * is copied: an iovec costs more than copying a few hundred bytes. */
#define BY_REF_MIN 1024
/* Pieces per batch stay well under IOV_MAX (1024) with the frame header. */
#define PIECES_MAX JENC_PIECES_MAX
#define J_SAFE_INT_MAX ((1ull << 53) - 1)   /* Number.MAX_SAFE_INTEGER: the TS validator's bound */

void jenc_init(struct jenc *e, int by_ref) {
  memset(e, 0, sizeof *e);
  e->by_ref = by_ref;
}

void jenc_reset(struct jenc *e) {
  e->len = 0;
  e->npieces = 0;
  e->err = 0;
}

void jenc_free(struct jenc *e) {
  free(e->buf);
  free(e->pieces);
  memset(e, 0, sizeof *e);
}

size_t jenc_size(const struct jenc *e) {
  size_t n = 0;
  for (int i = 0; i < e->npieces; i++) n += e->pieces[i].len;
  return n;
}

static int grow_pieces(struct jenc *e) {
  if (e->npieces < e->cappieces) return 0;
  int cap = e->cappieces ? e->cappieces * 2 : 16;
  struct jpiece *p = realloc(e->pieces, (size_t)cap * sizeof *p);
  if (!p) { e->err = -ENOMEM; return -1; }
  e->pieces = p;
  e->cappieces = cap;
  return 0;
}

/* Room for n more bytes of our own at the end; returns where they go. */
static uint8_t *reserve(struct jenc *e, size_t n) {
  if (e->err) return NULL;
  if (e->len + n > e->cap) {
    size_t cap = e->cap ? e->cap : 1024;
    while (cap < e->len + n) cap *= 2;
    uint8_t *b = realloc(e->buf, cap);
    if (!b) { e->err = -ENOMEM; return NULL; }
    e->buf = b;
    e->cap = cap;
  }
  return e->buf + e->len;
}

/* The n bytes just written at buf+len become part of the output. */
static void commit(struct jenc *e, size_t n) {
  if (e->err || n == 0) return;
  struct jpiece *last = e->npieces ? &e->pieces[e->npieces - 1] : NULL;
  if (last && !last->ext && last->off + last->len == e->len) {
    last->len += n;
  } else {
    if (grow_pieces(e) < 0) return;
    e->pieces[e->npieces++] = (struct jpiece){ .off = e->len, .len = n, .ext = NULL };
  }
  e->len += n;
}

static void put_raw(struct jenc *e, const void *p, size_t n) {
  uint8_t *dst = reserve(e, n);
  if (!dst) return;
  if (n) memcpy(dst, p, n);
  commit(e, n);
}

/* Large bytes by reference (when allowed and the iovec budget lasts). */
static void put_data(struct jenc *e, const void *p, size_t n) {
  if (!e->by_ref || n < BY_REF_MIN || e->npieces >= PIECES_MAX - 2) { put_raw(e, p, n); return; }
  if (e->err || grow_pieces(e) < 0) return;
  e->pieces[e->npieces++] = (struct jpiece){ .off = 0, .len = n, .ext = p };
}

#define HEAD(e, call)                                   \
  do {                                                  \
    uint8_t *d_ = reserve((e), 9);                      \
    if (d_) commit((e), call);                          \
  } while (0)

/* Integers as cbor-x writes them, so that both writers' batches read back
 * the same way: up to 32 bits a CBOR int, past that a float64 (exact to
 * 2^53, where JS numbers end: jrec_check keeps records below it). cbor-x
 * decodes a 64-bit CBOR int (0x1b) as a BigInt, which the TS validator
 * refuses; a float64 it decodes as a number. */
static void put_double(struct jenc *e, double v);
static void put_uint(struct jenc *e, uint64_t v) {
  if (v <= UINT32_MAX) HEAD(e, cbor_encode_uint(v, d_, 9));
  else put_double(e, (double)v);
}
static void put_int(struct jenc *e, int64_t v) {
  if (v >= 0) put_uint(e, (uint64_t)v);
  else if (v >= -(int64_t)UINT32_MAX - 1) HEAD(e, cbor_encode_negint((uint64_t)(-(v + 1)), d_, 9));
  else put_double(e, (double)v);
}
static void put_bool(struct jenc *e, int b) { HEAD(e, cbor_encode_bool(b != 0, d_, 9)); }
static void put_double(struct jenc *e, double v) { HEAD(e, cbor_encode_double(v, d_, 9)); }
static void put_map(struct jenc *e, size_t n) { HEAD(e, cbor_encode_map_start(n, d_, 9)); }
void jenc_array_start(struct jenc *e, size_t n) { HEAD(e, cbor_encode_array_start(n, d_, 9)); }

static void put_text(struct jenc *e, const char *s, size_t n) {
  HEAD(e, cbor_encode_string_start(n, d_, 9));
  put_raw(e, s, n);
}
static void put_bytes(struct jenc *e, const void *p, size_t n) {
  HEAD(e, cbor_encode_bytestring_start(n, d_, 9));
  put_data(e, p, n);
}
static void put_key(struct jenc *e, const char *k) { put_text(e, k, strlen(k)); }
static int utf8_ok(const uint8_t *s, size_t n);
/* A name or path: a text string when it is valid UTF-8, else a byte string
 * of its bytes (names are bytes; core/names.ts reads them back exactly). */
static void put_name(struct jenc *e, const char *s, size_t n) {
  if (utf8_ok((const uint8_t *)s, n)) { put_text(e, s, n); return; }
  HEAD(e, cbor_encode_bytestring_start(n, d_, 9));
  put_raw(e, s, n);
}

/* A timespec as records.ts' atimeMs (ms, an integer when exact, else a
 * double: what JS's Date and utimes take) plus the exact sub-second ns. */
static void put_time(struct jenc *e, const char *ms_key, struct timespec t) {
  int64_t ms = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
  long rest = t.tv_nsec % 1000000;
  put_key(e, ms_key);
  if (rest == 0) put_int(e, ms);
  else put_double(e, (double)ms + (double)rest / 1e6);
}

static const char *const kind_names[] = {
  [REC_WRITE] = "write", [REC_TRUNCATE] = "truncate", [REC_CREATE] = "create", [REC_MKDIR] = "mkdir",
  [REC_MKNOD] = "mknod", [REC_UNLINK] = "unlink", [REC_RMDIR] = "rmdir", [REC_RENAME] = "rename",
  [REC_LINK] = "link", [REC_SYMLINK] = "symlink", [REC_CHMOD] = "chmod", [REC_CHOWN] = "chown",
  [REC_UTIMENS] = "utimens", [REC_SETXATTR] = "setxattr", [REC_REMOVEXATTR] = "removexattr",
  [REC_FSYNC] = "fsync",
};

/* Strict UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF): a CBOR text string must be, and cbor-x would turn a bad
 * sequence into U+FFFD, i.e. into another name on the secondary. */
static int utf8_ok(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (k == 0 || n - i <= k) return 0;            /* a bad lead byte, or cut short */
    for (size_t j = 1; j <= k; j++) if ((s[i + j] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && s[i + 1] < 0xa0) return 0;   /* overlong */
    if (c == 0xed && s[i + 1] > 0x9f) return 0;   /* surrogate */
    if (c == 0xf0 && s[i + 1] < 0x90) return 0;   /* overlong */
    if (c == 0xf4 && s[i + 1] > 0x8f) return 0;   /* past U+10FFFF */
    i += k + 1;
  }
  return 1;
}

int capture_text_ok(const char *s, size_t n) {
  if (n && !s) return -EINVAL;
  if (n && memchr(s, 0, n)) return -EINVAL;   /* the TS validator refuses NUL */
  return utf8_ok((const uint8_t *)s, n) ? 0 : -EILSEQ;
}

int jname_is_text(const char *s, size_t n) { return utf8_ok((const uint8_t *)s, n); }

int capture_name_ok(const char *s, size_t n) {
  if (n && !s) return -EINVAL;
  return n && memchr(s, 0, n) ? -EINVAL : 0;   /* any bytes but NUL: names are bytes */
}

static int str_ok(const char *s, size_t n, size_t max) {
  if (n > max) return -E2BIG;
  return capture_text_ok(s, n);
}

static int name_ok(const char *s, size_t n, size_t max) {
  if (n > max) return -E2BIG;
  return capture_name_ok(s, n);
}

int jrec_check(const struct rec *r) {
  if ((unsigned)r->kind > REC_FSYNC) return -EINVAL;
  if (r->vol >= J_VOLUMES_MAX) return -EINVAL;
  int rc = name_ok(r->path, r->path_len, J_PATH_MAX);
  if (rc) return rc;
  switch (r->kind) {
    case REC_WRITE:
      if (r->off > J_SAFE_INT_MAX - r->data_len) return -EFBIG;
      return r->data_len > J_RECORD_DATA_MAX || (r->data_len && !r->data) ? -E2BIG : 0;
    case REC_TRUNCATE: return r->size > J_SAFE_INT_MAX ? -EFBIG : 0;
    case REC_RENAME: case REC_LINK: case REC_SYMLINK: return name_ok(r->to, r->to_len, J_PATH_MAX);
    case REC_SETXATTR:
      if (r->data_len > J_XATTR_VALUE_MAX || (r->data_len && !r->data) || r->flags > 3) return -E2BIG;
      /* fall through */
    case REC_REMOVEXATTR: return str_ok(r->name, r->name_len, J_NAME_MAX);
    case REC_UTIMENS:
      return r->atime.tv_nsec < 0 || r->atime.tv_nsec > 999999999 ||
             r->mtime.tv_nsec < 0 || r->mtime.tv_nsec > 999999999 ? -EINVAL : 0;
    default: return 0;
  }
}

void jenc_record(struct jenc *e, const struct rec *r) {
  static const uint8_t pairs[] = {
    [REC_WRITE] = 5, [REC_TRUNCATE] = 4, [REC_CREATE] = 4, [REC_MKDIR] = 4, [REC_MKNOD] = 5,
    [REC_UNLINK] = 3, [REC_RMDIR] = 3, [REC_RENAME] = 4, [REC_LINK] = 4, [REC_SYMLINK] = 4,
    [REC_CHMOD] = 4, [REC_CHOWN] = 5, [REC_UTIMENS] = 7, [REC_SETXATTR] = 6, [REC_REMOVEXATTR] = 4,
    [REC_FSYNC] = 3,
  };
  put_map(e, pairs[r->kind]);
  put_key(e, "kind");
  put_key(e, kind_names[r->kind]);
  put_key(e, "vol");
  put_uint(e, r->vol);
  put_key(e, "path");
  put_name(e, r->path, r->path_len);
  switch (r->kind) {
    case REC_WRITE:
      put_key(e, "off"); put_uint(e, r->off);
      put_key(e, "data"); put_bytes(e, r->data, r->data_len);
      break;
    case REC_TRUNCATE: put_key(e, "size"); put_uint(e, r->size); break;
    case REC_CREATE: case REC_MKDIR: case REC_CHMOD: put_key(e, "mode"); put_uint(e, r->mode); break;
    case REC_MKNOD:
      put_key(e, "mode"); put_uint(e, r->mode);
      put_key(e, "rdev"); put_uint(e, r->rdev);
      break;
    case REC_UNLINK: case REC_RMDIR: case REC_FSYNC: break;
    case REC_RENAME: case REC_LINK: put_key(e, "to"); put_name(e, r->to, r->to_len); break;
    case REC_SYMLINK: put_key(e, "target"); put_name(e, r->to, r->to_len); break;
    case REC_CHOWN:
      put_key(e, "uid"); put_uint(e, r->uid);
      put_key(e, "gid"); put_uint(e, r->gid);
      break;
    case REC_UTIMENS:
      put_time(e, "atimeMs", r->atime);
      put_time(e, "mtimeMs", r->mtime);
      put_key(e, "atimeNs"); put_uint(e, (uint64_t)r->atime.tv_nsec);
      put_key(e, "mtimeNs"); put_uint(e, (uint64_t)r->mtime.tv_nsec);
      break;
    case REC_SETXATTR:
      put_key(e, "name"); put_text(e, r->name, r->name_len);
      put_key(e, "value"); put_bytes(e, r->data, r->data_len);
      put_key(e, "flags"); put_uint(e, r->flags);
      break;
    case REC_REMOVEXATTR: put_key(e, "name"); put_text(e, r->name, r->name_len); break;
  }
}

/* The batch map up to its records array's items (journal.c adds them). */
void jenc_batch_head(struct jenc *e, const char *group, size_t group_len, uint64_t seq,
                     const uint8_t prev[J_HASH_BYTES], uint64_t ts_ms, int sync) {
  put_map(e, 7);
  put_key(e, "v"); put_uint(e, J_FORMAT_VERSION);
  put_key(e, "group"); put_text(e, group, group_len);
  put_key(e, "seq"); put_uint(e, seq);
  put_key(e, "prev");
  HEAD(e, cbor_encode_bytestring_start(J_HASH_BYTES, d_, 9));
  put_raw(e, prev, J_HASH_BYTES);
  put_key(e, "ts"); put_uint(e, ts_ms);
  put_key(e, "sync"); put_bool(e, sync);
  put_key(e, "records");
}

/* Verbatim bytes (an encoded records array), by reference. */
void jenc_verbatim(struct jenc *e, const void *p, size_t n) {
  if (e->err || n == 0) return;
  if (!e->by_ref) { put_raw(e, p, n); return; }
  if (grow_pieces(e) < 0) return;
  e->pieces[e->npieces++] = (struct jpiece){ .off = 0, .len = n, .ext = p };
}

static const void *piece_ptr(const struct jenc *e, const struct jpiece *p) {
  return p->ext ? p->ext : e->buf + p->off;
}

int jenc_flatten(const struct jenc *e, uint8_t **out, size_t *len) {
  if (e->err) return e->err;
  size_t n = jenc_size(e);
  uint8_t *b = malloc(n ? n : 1);
  if (!b) return -ENOMEM;
  size_t at = 0;
  for (int i = 0; i < e->npieces; i++) {
    memcpy(b + at, piece_ptr(e, &e->pieces[i]), e->pieces[i].len);
    at += e->pieces[i].len;
  }
  *out = b;
  *len = n;
  return 0;
}

/* ISA-L's CRC (AVX-512 code on this CPU) returns with the upper halves of
 * the vector registers dirty, and code in the legacy SSE encoding after it
 * (libxxhash's XXH3 is built for SSE2) then pays a transition penalty on
 * every vector instruction: XXH3-128 ran at 3.9 GB/s after a CRC and 16 GB/s
 * after a vzeroupper (journalmain bench, native-notes/performance.md 8).
 * vzeroupper exists only where AVX does, and ISA-L picks AVX code only
 * there. */
static void clear_upper_vectors(void) {
  if (__builtin_cpu_supports("avx")) __asm__ volatile("vzeroupper" ::: "memory");
}

/* ISA-L's crc32_iscsi is the bare reflected CRC-32C update: no initial or
 * final inversion (crc_base.c). The standard CRC-32C (RFC 3720; what
 * @node-rs/crc32 crc32c(buf, prev) returns) starts from ~0 and inverts the
 * result, so continuing from a previous *standard* value is ~update(~prev). */
uint32_t j_crc32c(uint32_t crc, const void *p, size_t n) {
  uint32_t c = ~crc;
  const unsigned char *b = p;
  while (n > 0) {   /* ISA-L takes an int length */
    int k = n > (1u << 30) ? (1 << 30) : (int)n;
    c = crc32_iscsi((unsigned char *)b, k, c);
    b += k;
    n -= (size_t)k;
  }
  clear_upper_vectors();
  return ~c;
}

uint32_t jenc_crc32c(const struct jenc *e) {
  uint32_t crc = 0;
  for (int i = 0; i < e->npieces; i++) crc = j_crc32c(crc, piece_ptr(e, &e->pieces[i]), e->pieces[i].len);
  return crc;
}

/* XXH3-128 in its canonical form (big-endian high then low 64 bits), the
 * bytes the TS side gets from the addon's chainHash. */
static void j_hash_canonical(XXH128_hash_t h, uint8_t out[J_HASH_BYTES]) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  memcpy(out, c.digest, J_HASH_BYTES);
}

void j_chain_hash(const struct jenc *e, uint8_t out[J_HASH_BYTES]) {
  XXH3_state_t st;
  XXH3_128bits_reset(&st);
  for (int i = 0; i < e->npieces; i++) XXH3_128bits_update(&st, piece_ptr(e, &e->pieces[i]), e->pieces[i].len);
  j_hash_canonical(XXH3_128bits_digest(&st), out);
}

void j_chain_hash_bytes(const void *p, size_t n, uint8_t out[J_HASH_BYTES]) {
  j_hash_canonical(XXH3_128bits(p, n), out);
}

/* Fills iov (at most PIECES_MAX) with the pieces; returns the count. */
int jenc_iov(const struct jenc *e, struct iovec *iov, int max) {
  int n = 0;
  for (int i = 0; i < e->npieces && n < max; i++) {
    iov[n].iov_base = (void *)piece_ptr(e, &e->pieces[i]);
    iov[n].iov_len = e->pieces[i].len;
    n++;
  }
  return n;
}
