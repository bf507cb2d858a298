/* journal_scan.c: capture_open's check of the journal it is handed. The TS
 * side recovered the state directory (cut a torn tail) and tells the core
 * where history stands (next_seq, last_hash); before appending after it we
 * read the newest segment back the way src/journal/segments.ts scans one:
 * every frame's length, CRC32C and CBOR shape (libcbor's decoder), the chain
 * and sequence continuity inside it, then where it ends. A disagreement is
 * an error naming the file and byte offset: two writers would otherwise
 * fork history silently.
 *
 * Threads: the JS thread (capture_open), or the harness's main(). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "errmsg.h"
#include "journal.h"

#include <cbor.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Segment first-sequences in dir, sorted ascending (*out malloc'd). */
static int list_segments(const char *dir, uint64_t **out, size_t *n) {
  DIR *d = opendir(dir);
  *out = NULL;
  *n = 0;
  if (!d) return errno == ENOENT ? 0 : -errno;
  size_t cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d))) {
    const char *s = de->d_name;
    if (strlen(s) != 24 || strcmp(s + 20, ".seg") != 0 || strspn(s, "0123456789") != 20) continue;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno) continue;   /* past 2^64: not a name we write */
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      uint64_t *p = realloc(*out, cap * sizeof *p);
      if (!p) { rc = -ENOMEM; break; }
      *out = p;
    }
    (*out)[(*n)++] = v;
  }
  closedir(d);
  if (rc == 0 && *n) qsort(*out, *n, sizeof **out, cmp_u64);
  return rc;
}

/* The newest segment's first seq and size; 1 if there is one, 0 if none. */
int journal_scan_newest(const char *dir, uint64_t *first, uint64_t *bytes) {
  uint64_t *segs;
  size_t n;
  int rc = list_segments(dir, &segs, &n);
  if (rc < 0 || n == 0) { free(segs); return rc; }
  *first = segs[n - 1];
  free(segs);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, *first);
  struct stat st;
  if (stat(path, &st) < 0) return -errno;
  *bytes = (uint64_t)st.st_size;
  return 1;
}

static const cbor_item_t *map_get(const cbor_item_t *m, const char *key) {
  size_t n = cbor_map_size(m), kl = strlen(key);
  struct cbor_pair *p = cbor_map_handle(m);
  for (size_t i = 0; i < n; i++) {
    const cbor_item_t *k = p[i].key;
    if (cbor_isa_string(k) && cbor_string_is_definite(k) && cbor_string_length(k) == kl &&
        memcmp(cbor_string_handle(k), key, kl) == 0) return p[i].value;
  }
  return NULL;
}

struct batch_info { uint64_t seq, count; uint8_t prev[J_HASH_BYTES]; };

/* An unsigned integer as either writer stores it: a CBOR uint, or (past 32
 * bits, as cbor-x writes them) an integral float64. */
static int get_uint(const cbor_item_t *v, uint64_t *out) {
  if (!v) return -1;
  if (cbor_isa_uint(v)) { *out = cbor_get_int(v); return 0; }
  if (cbor_isa_float_ctrl(v) && cbor_float_get_width(v) != CBOR_FLOAT_0) {
    double d = cbor_float_get_float(v);
    if (d >= 0 && d <= 9007199254740991.0 && d == (double)(uint64_t)d) { *out = (uint64_t)d; return 0; }
  }
  return -1;
}

/* The batch fields the check needs; NULL or the reason it is not a batch. */
static const char *decode_batch(const uint8_t *p, size_t len, const char *group, struct batch_info *b) {
  struct cbor_load_result res;
  cbor_item_t *item = cbor_load(p, len, &res);
  const char *why = NULL;
  if (!item || res.error.code != CBOR_ERR_NONE) { why = "payload is not valid CBOR"; goto out; }
  if (res.read != len) { why = "payload has bytes after the batch"; goto out; }
  if (!cbor_isa_map(item) || !cbor_map_is_definite(item)) { why = "payload is not a map"; goto out; }
  const cbor_item_t *v = map_get(item, "v"), *g = map_get(item, "group"), *seq = map_get(item, "seq");
  const cbor_item_t *prev = map_get(item, "prev"), *recs = map_get(item, "records");
  if (!v || !cbor_isa_uint(v) || cbor_get_int(v) != J_FORMAT_VERSION) { why = "batch format version is not " J_STR(J_FORMAT_VERSION) " (an older or newer replfs wrote it)"; goto out; }
  uint64_t seqv = 0;
  if (get_uint(seq, &seqv) < 0) { why = "batch has no seq"; goto out; }
  if (!prev || !cbor_isa_bytestring(prev) || !cbor_bytestring_is_definite(prev) ||
      cbor_bytestring_length(prev) != J_HASH_BYTES) { why = "batch prev is not 16 bytes"; goto out; }
  if (!recs || !cbor_isa_array(recs) || cbor_array_size(recs) == 0 || cbor_array_size(recs) > J_BATCH_RECORDS_MAX) {
    why = "batch records is not an array of 1..4096"; goto out;
  }
  if (!g || !cbor_isa_string(g) || !cbor_string_is_definite(g)) { why = "batch has no group"; goto out; }
  if (group && (cbor_string_length(g) != strlen(group) || memcmp(cbor_string_handle(g), group, strlen(group)) != 0)) {
    why = "batch belongs to another group"; goto out;
  }
  b->seq = seqv;
  b->count = cbor_array_size(recs);
  memcpy(b->prev, cbor_bytestring_handle(prev), J_HASH_BYTES);
out:
  if (item) cbor_decref(&item);
  return why;
}

static void hex(const uint8_t *h, char out[2 * J_HASH_BYTES + 1]) {
  for (int i = 0; i < J_HASH_BYTES; i++) sprintf(out + 2 * i, "%02x", h[i]);
}

/* Scans one segment. 1: it holds batches (*last filled); 0: empty. */
static int scan_segment(const char *path, const char *group, uint64_t name_seq, uint64_t start, struct batch_info *last,
                        uint8_t last_hash[J_HASH_BYTES], uint64_t *last_off, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int rc = -errno;
    close(fd);
    return fail(err, errlen, rc, "cannot stat %s: %s", path, strerror(-rc));
  }
  size_t size = (size_t)st.st_size;
  if (size == 0 || start >= size) {
    close(fd);
    return start ? fail(err, errlen, -EINVAL, "%s: no batch at byte %" PRIu64 " (the file has %zu bytes)", path, start, size) : 0;
  }
  const uint8_t *buf = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (buf == MAP_FAILED) return fail(err, errlen, -errno, "cannot map %s: %s", path, strerror(errno));
  int rc = 0, any = 0;
  size_t off = (size_t)start;
  while (off < size) {
    if (size - off < J_FRAME_HEADER_BYTES) { rc = fail(err, errlen, -EINVAL, "%s at byte %zu: a frame header cut short (a torn tail not cut?)", path, off); break; }
    const uint8_t *h = buf + off;
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    uint32_t crc = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    if (len > J_FRAME_BYTES_MAX) { rc = fail(err, errlen, -EINVAL, "%s at byte %zu: frame of %u bytes exceeds the limit of %u", path, off, len, J_FRAME_BYTES_MAX); break; }
    if (len > size - off - J_FRAME_HEADER_BYTES) { rc = fail(err, errlen, -EINVAL, "%s at byte %zu: frame of %u bytes cut short (a torn tail not cut?)", path, off, len); break; }
    const uint8_t *payload = h + J_FRAME_HEADER_BYTES;
    uint32_t got = j_crc32c(0, payload, len);
    if (got != crc) { rc = fail(err, errlen, -EINVAL, "%s at byte %zu: frame CRC mismatch (stored %08x, computed %08x)", path, off, crc, got); break; }
    struct batch_info b;
    const char *why = decode_batch(payload, len, group, &b);
    if (why) { rc = fail(err, errlen, -EINVAL, "%s at byte %zu: %s", path, off, why); break; }
    if (!any && start == 0 && b.seq != name_seq) {
      rc = fail(err, errlen, -EINVAL, "%s at byte %zu: the first batch starts at sequence %" PRIu64 ", not as the segment's name says", path, off, b.seq);
      break;
    }
    if (any && b.seq != last->seq + last->count) {
      rc = fail(err, errlen, -EINVAL, "%s at byte %zu: batch starts at sequence %" PRIu64 ", expected %" PRIu64, path, off, b.seq, last->seq + last->count);
      break;
    }
    if (any && memcmp(b.prev, last_hash, J_HASH_BYTES) != 0) {
      rc = fail(err, errlen, -EINVAL, "%s at byte %zu: batch %" PRIu64 " does not continue the chain (prev differs from the hash of the batch before it)", path, off, b.seq);
      break;
    }
    j_chain_hash_bytes(payload, len, last_hash);
    *last = b;
    *last_off = off;
    any = 1;
    off += J_FRAME_HEADER_BYTES + len;
  }
  munmap((void *)buf, size);
  return rc < 0 ? rc : any;
}

/* The journal's end as the core was told it: next sequence and hash. */
static int check_end(const char *path, uint64_t off, const struct batch_info *last, const uint8_t hash[J_HASH_BYTES],
                     uint64_t next_seq, const uint8_t want_hash[J_HASH_BYTES], char *err, size_t errlen) {
  if (last->seq + last->count == next_seq && memcmp(hash, want_hash, J_HASH_BYTES) == 0) return 0;
  char h1[2 * J_HASH_BYTES + 1], h2[2 * J_HASH_BYTES + 1];
  hex(hash, h1);
  hex(want_hash, h2);
  return fail(err, errlen, -EINVAL,
              "%s: the journal ends with the batch at byte %" PRIu64 " (next sequence %" PRIu64 ", hash %s), "
              "but the core was told next sequence %" PRIu64 ", hash %s",
              path, off, last->seq + last->count, h1, next_seq, h2);
}

int journal_verify_at(const char *dir, const char *group, uint64_t first, uint64_t offset, uint64_t next_seq,
                      const uint8_t want_hash[J_HASH_BYTES], char *err, size_t errlen) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, first);
  struct batch_info last = { 0 };
  uint8_t hash[J_HASH_BYTES] = { 0 };
  uint64_t off = 0;
  int rc = scan_segment(path, group, first, offset, &last, hash, &off, err, errlen);
  if (rc < 0) return rc;
  return check_end(path, off, &last, hash, next_seq, want_hash, err, errlen);
}

int journal_verify(const char *dir, const char *group, uint64_t next_seq, const uint8_t want_hash[J_HASH_BYTES],
                   char *err, size_t errlen) {
  uint64_t *segs;
  size_t n;
  int rc = list_segments(dir, &segs, &n);
  if (rc < 0) return fail(err, errlen, rc, "cannot list %s: %s", dir, strerror(-rc));
  for (size_t i = n; i-- > 0;) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, segs[i]);
    struct batch_info last = { 0 };
    uint8_t hash[J_HASH_BYTES] = { 0 };
    uint64_t off = 0;
    rc = scan_segment(path, group, segs[i], 0, &last, hash, &off, err, errlen);
    if (rc < 0) break;
    if (rc == 0) continue;   /* an empty segment: history ends in an older one */
    rc = check_end(path, off, &last, hash, next_seq, want_hash, err, errlen);
    break;
  }
  free(segs);
  return rc;
}
