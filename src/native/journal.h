/* journal.h: the group's journal as the native core writes it. Same format
 * as src/journal/ (frame.ts, codec.ts, segments.ts): segments
 * <first seq, 20 digits>.seg of frames u32 BE length | u32 BE crc32c |
 * CBOR batch {v, group, seq, prev, ts, sync, records}; each batch's prev is
 * the chain hash (XXH3-128 of the payload, canonical bytes) of the one
 * before it. A frame header of zeros ends the frames: after an fsync the
 * newest segment has zeros written ahead of its end (journal.c, prealloc),
 * cut at rotation and at a clean close.
 *
 * Threads: journal_append*, journal_rebase run on the thread that holds the
 * capture's group lock (a FUSE worker, or the JS thread for JS-originated
 * batches); journal_sync on any thread (group commit: one fdatasync covers
 * every caller waiting); journal_status on any thread (the JS thread polls);
 * journal_open/journal_close on the JS thread. A private "retire" thread
 * fdatasyncs and closes finished segments in the background, so a rotation
 * never stalls a FUSE request and closed segments do not pile up as fds. */
#ifndef REPLFS_JOURNAL_H
#define REPLFS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include "capture.h"

#define J_FORMAT_VERSION 2   /* limits.ts formatVersion (2: the chain hash is XXH3-128) */
#define J_STR_(x) #x
#define J_STR(x) J_STR_(x)
#define J_HASH_BYTES 16
#define J_FRAME_HEADER_BYTES 8
#define J_FRAME_BYTES_MAX (16u * 1024 * 1024)   /* limits.ts frameBytesMax */
#define J_BATCH_RECORDS_MAX 4096                /* limits.ts batchRecordsMax */
#define J_RECORD_DATA_MAX (1024u * 1024)        /* limits.ts recordDataBytesMax */
#define J_PATH_MAX 4096                         /* limits.ts pathBytesMax */
#define J_NAME_MAX 255                          /* limits.ts nameBytesMax */
#define J_XATTR_VALUE_MAX (64u * 1024)          /* limits.ts xattrValueBytesMax */
#define J_VOLUMES_MAX 64                        /* limits.ts volumesMax */

/* ---- CBOR encoding of records (pure: no I/O; any thread) -------------------
 * The output is a list of pieces: runs of our own buffer and, for large
 * write data and xattr values, the caller's bytes by reference, so that a
 * write's data is copied once (by the kernel, from the page the request came
 * in) and never by us. */
struct jpiece { size_t off, len; const void *ext; };   /* ext NULL: buf[off, off+len) */
struct jenc {
  uint8_t *buf; size_t len, cap;
  struct jpiece *pieces; int npieces, cappieces;
  int by_ref;                 /* 1: large data by reference; 0: copy everything into buf */
  int err;                    /* -ENOMEM once an allocation failed */
};
void   jenc_init(struct jenc *e, int by_ref);
void   jenc_reset(struct jenc *e);
void   jenc_free(struct jenc *e);
size_t jenc_size(const struct jenc *e);
/* Checks a record against the TS validator's bounds; 0 or -EINVAL/-E2BIG. */
int    jrec_check(const struct rec *r);
/* 1 if s[0..n) is valid UTF-8 (a name CBOR can carry as text), else 0. */
int    jname_is_text(const char *s, size_t n);
/* One record map, keys exactly as src/core/records.ts names them. */
void   jenc_record(struct jenc *e, const struct rec *r);
void   jenc_array_start(struct jenc *e, size_t n);
/* The batch map up to its records array's items, and verbatim bytes (an
 * encoded records array, by reference). */
void   jenc_batch_head(struct jenc *e, const char *group, size_t group_len, uint64_t seq,
                       const uint8_t prev[J_HASH_BYTES], uint64_t ts_ms, int sync);
void   jenc_verbatim(struct jenc *e, const void *p, size_t n);
/* Copies the pieces out into one buffer (track queue, tests). */
int    jenc_flatten(const struct jenc *e, uint8_t **out, size_t *len);
/* The pieces as iovecs (at most max); returns how many. */
int    jenc_iov(const struct jenc *e, struct iovec *iov, int max);
#define JENC_PIECES_MAX 512

/* Standard CRC-32C (what @node-rs/crc32's crc32c(buf, prev) returns), over
 * bytes or over an encoder's pieces; and the chain hash (XXH3-128) of the
 * pieces or of bytes. */
uint32_t j_crc32c(uint32_t crc, const void *p, size_t n);   /* crc: a previous result, 0 to start */
uint32_t jenc_crc32c(const struct jenc *e);
void     j_chain_hash(const struct jenc *e, uint8_t out[J_HASH_BYTES]);
void     j_chain_hash_bytes(const void *p, size_t n, uint8_t out[J_HASH_BYTES]);

/* ---- the segment writer ------------------------------------------------- */
struct journal;

struct journal_config {
  const char *dir, *group;
  uint64_t next_seq;
  uint8_t last_hash[J_HASH_BYTES];
  uint64_t segment_bytes;
  int verify_at;                        /* verify only the batch at verify_first's verify_offset */
  uint64_t verify_first, verify_offset;
  const char *boot_id;                  /* keep an end mark for this boot (end_mark.h); NULL: none */
  int drop_finished;                    /* finished segments leave the page cache once synced: nobody reads them back */
  /* Any thread: an error the journal met outside a call that returns it
   * (the background retire thread's fdatasync). */
  void (*on_error)(void *ctx, int err, const char *msg);
  void *ctx;
};

struct journal_status {
  uint64_t next_seq, durable_seq, segment_first, segment_bytes;
  uint8_t last_hash[J_HASH_BYTES];
  uint64_t batches, records, data_bytes, bytes_written;
};

/* Verifies the newest segment against next_seq/last_hash (journal_verify),
 * then prepares to append after it. */
int  journal_open(const struct journal_config *cfg, struct journal **out, char *err, size_t errlen);
/* Syncs everything, stops the retire thread, closes. */
void journal_close(struct journal *j);

/* One batch of nrec records (group-lock holder). *first = its first seq. */
int  journal_append(struct journal *j, const struct rec *recs, int nrec, int sync,
                    uint64_t *first, char *err, size_t errlen);
/* One batch whose records are already a CBOR array of count maps (the TS
 * side encoded them), written verbatim (group-lock holder). */
int  journal_append_encoded(struct journal *j, const uint8_t *arr, size_t len, uint32_t count, int sync,
                            uint64_t *first, char *err, size_t errlen);
/* The journal is on disk through seq (any thread). */
int  journal_sync(struct journal *j, uint64_t seq, char *err, size_t errlen);
/* Drops every segment; history continues at next_seq after prev
 * (group-lock holder). */
int  journal_rebase(struct journal *j, uint64_t next_seq, const uint8_t prev[J_HASH_BYTES], char *err, size_t errlen);
void journal_status(struct journal *j, struct journal_status *out);

/* ---- verification (capture_open's scan; also the harness) -------------
 * Scans the newest segment holding a batch: every frame's length, CRC,
 * CBOR shape (v, group when given, seq, prev, records), the chain and the
 * sequence continuity inside it; then compares where it ends with
 * next_seq/last_hash. No segment (or only empty ones): fine. 0, or -EINVAL
 * with a message naming the file and the byte offset; -errno on I/O errors. */
/* Verifies only the batch at byte `offset` of segment `first` (and that it ends the journal). */
int  journal_verify_at(const char *dir, const char *group, uint64_t first, uint64_t offset, uint64_t next_seq,
                       const uint8_t last_hash[J_HASH_BYTES], char *err, size_t errlen);
int  journal_verify(const char *dir, const char *group, uint64_t next_seq, const uint8_t last_hash[J_HASH_BYTES],
                    char *err, size_t errlen);

#endif
