/* capture.h: the contract between the FUSE ops (ops*.c, on FUSE worker
 * threads) and the journal side (journal.c, activity.c, capture.c).
 *
 * A mutation, on the worker thread that read the request:
 *
 *   capture_lock(c)                    group lock; waits while the overflow gate is shut
 *   path = inode path (under the lock, so it is the path at this point of history)
 *   capture_mark(c, marks, n)          activity log: the parts about to change are "hot"
 *   backing op (*at() call)
 *   ok:   capture_append(c, recs, nrec, marks, n, &seq, &sync_batch)   one batch; releases the marks
 *   fail: capture_release(c, marks, n)
 *   capture_unlock(c)
 *   ok:   capture_durable(c, seq, 0)   a sync batch: waits for the secondary's ack (outside the lock)
 *   reply
 *
 * Holding the one group lock from before the backing op to after the append
 * is what makes the journal order the backing store's order (DESIGN.md).
 * A record's strings are not NUL-terminated: lengths are given. Paths are
 * volume-relative, no leading slash, "" for the volume root. */
#ifndef REPLFS_CAPTURE_H
#define REPLFS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct capture;

/* Same kinds and fields as src/core/records.ts (the TS side decodes them). */
enum rec_kind {
  REC_WRITE, REC_TRUNCATE, REC_CREATE, REC_MKDIR, REC_MKNOD, REC_UNLINK, REC_RMDIR,
  REC_RENAME, REC_LINK, REC_SYMLINK, REC_CHMOD, REC_CHOWN, REC_UTIMENS,
  REC_SETXATTR, REC_REMOVEXATTR, REC_FSYNC
};

struct rec {
  enum rec_kind kind;
  uint32_t vol;
  const char *path; size_t path_len;
  const char *to; size_t to_len;       /* rename/link: the new name; symlink: the target */
  const char *name; size_t name_len;   /* xattr name */
  const void *data; size_t data_len;   /* write: the bytes written; setxattr: the value */
  uint64_t off;                        /* write */
  uint64_t size;                       /* truncate */
  uint32_t mode;                       /* create mkdir chmod: permission bits (07777); mknod: with the type bits */
  uint32_t rdev;                       /* mknod */
  uint32_t uid, gid;                   /* chown: the resulting owner */
  struct timespec atime, mtime;        /* utimens: the resulting times (ns kept) */
  uint32_t flags;                      /* setxattr: XATTR_CREATE / XATTR_REPLACE */
};

/* Activity-log marks (src/capture/activity-log.ts): a whole path (namespace
 * ops), its metadata, or one 1 MiB region of a file's content. */
enum hot_kind { HOT_PATH, HOT_META, HOT_REGION };
struct hot {
  uint32_t vol;
  enum hot_kind kind;
  int64_t region;                      /* HOT_REGION: offset / 1 MiB; else -1 */
  const char *path; size_t path_len;
};

/* Any thread, no lock: 0 if a record string can be journalled; else
 * -EILSEQ / -EINVAL. Paths and link targets are bytes (capture_name_ok: no
 * NUL; one that is not UTF-8 is journalled as a CBOR byte string); xattr
 * names are text (capture_text_ok: valid UTF-8 without NUL). Check with
 * them BEFORE the backing op: capture_append refuses such a record, and by
 * then the backing store has changed. */
int  capture_text_ok(const char *s, size_t len);
int  capture_name_ok(const char *s, size_t len);

/* All return 0 or -errno. Threads: a FUSE worker (capture_lock also JS's
 * pool thread; capture_unlock whichever thread holds the lock now). */
int  capture_lock(struct capture *c);
void capture_unlock(struct capture *c);
int  capture_mark(struct capture *c, const struct hot *marks, int n);
void capture_release(struct capture *c, const struct hot *marks, int n);
/* Appends recs as one batch (sequences seq .. seq+nrec-1; *seq = the last).
 * *sync_batch (if not NULL): the batch is a sync-mode one, which the secondary
 * acknowledges, so its caller waits (capture_durable); a batch appended
 * while sync mode is off or fallen back is not waited for, even if sync mode
 * comes back before the wait. In track mode nothing is journalled: the
 * records go to the dirty set and the marks stay hot until it is saved. On a
 * journal error the marks stay hot (a restart restates them) and the error
 * is returned. */
int  capture_append(struct capture *c, const struct rec *recs, int nrec,
                    const struct hot *marks, int nmarks, uint64_t *seq, int *sync_batch);
/* After the reply-worthy part: waits as the mode promises (async: nothing;
 * sync: the secondary acknowledged seq, or the sync timeout fell back). The
 * ack of a write says the secondary's journal file holds it; of an fsync
 * (`flushed`), that its disk does. */
int  capture_durable(struct capture *c, uint64_t seq, int flushed);
/* An application's fsync: the journal is on disk through seq (group commit:
 * one fdatasync covers every thread waiting). */
int  capture_sync(struct capture *c, uint64_t seq);

/* ======================================================================
 * The addon's side (src/native/addon.c). Threads are named per call; "JS"
 * is the Node main thread, which never waits here on a lock held across
 * I/O (every lock below is held for memory work only, except the group
 * lock, which JS takes through capture_lock_ungated on a libuv pool thread
 * and lets go with capture_unlock on the JS thread).
 * ====================================================================== */

struct capture_config {
  const char *state_dir;       /* the group's state directory (exists; the TS side recovered it) */
  const char *group;
  uint64_t next_seq;           /* where history continues (the TS Journal's nextSeq) */
  uint8_t last_hash[16];       /* chain hash of the batch before next_seq */
  uint64_t segment_bytes;      /* rotate at this size (0: 64 MiB) */
  /* The journal's last batch, when the TS side knows where it is: only it is
   * verified (damage the TS side named and kept earlier is not the core's
   * business). verify_at 0: the newest segments are scanned whole. */
  int verify_at;
  uint64_t verify_first, verify_offset;
  const char *boot_id;         /* the journal keeps an end mark for this boot (end_mark.h); NULL: none */
  int drop_finished;           /* no peer: finished segments leave the page cache once synced (journal.h) */
  int sync_mode;               /* start with sync mode active */
  uint32_t sync_timeout_ms;    /* a sync waiter older than this falls back to async (0: 10 s) */
  /* Any thread, when something changed (batches appended, a sync fallback,
   * an error, tracked records). Coalesced: at most once until the next
   * capture_poll. Called with no lock of ours held; must not block. */
  void (*wake)(void *ctx);
  void *wake_ctx;
};

/* JS. Verifies next_seq/last_hash against the newest segment (fails with a
 * message naming the file and byte offset if they disagree; no segment is
 * fine) and opens the activity log for appending. 0 or -errno. */
int  capture_open(const struct capture_config *cfg, struct capture **out, char *err, size_t errlen);
/* JS, after the FUSE session stopped (no thread may be inside capture_*):
 * releases sync waiters, syncs and closes the journal, empties the
 * activity log (a clean stop has nothing in flight), frees everything. */
void capture_close(struct capture *c);

struct capture_status {
  uint64_t next_seq;
  uint8_t last_hash[16];
  uint64_t durable_seq;        /* fdatasynced through this sequence */
  uint64_t segment_first;      /* the segment being appended to (0: none yet) */
  uint64_t segment_bytes;      /* its size */
  uint64_t batches, records, data_bytes, journal_bytes_written;   /* since open */
  uint64_t sync_fallbacks;     /* times a sync wait timed out (each released every waiter) */
  uint32_t sync_waiting;       /* threads waiting for an ack now */
  int sync_active;             /* sync mode on and not fallen back */
  int track;
  uint64_t tracked_records;    /* queued for capture_take_tracked */
  int error;                   /* errno of the last error since the previous poll (0: none); */
  char error_msg[256];         /* reported once: poll clears it */
};
/* JS. Re-arms the wake, then reads the status (an event after the re-arm
 * wakes again, one before it is in this status). */
void capture_poll(struct capture *c, struct capture_status *out);

/* Pool thread (JS's lock): as capture_lock, but not held back by the
 * overflow gate: what JS journals under the lock (restates, rebase) is how
 * the journal drains or is bounded by its own pause. */
int  capture_lock_ungated(struct capture *c);

/* The caller holds the group lock (taken from another thread: JS's pool).
 * Records the TS side encoded: one CBOR array of count record maps, wrapped
 * into one batch verbatim (journalled in track mode too). JS. */
int  capture_append_encoded(struct capture *c, const uint8_t *records_cbor_array, size_t len, uint32_t count,
                            uint64_t *first, uint64_t *last);
/* JS. The secondary's journal file holds through `written`, its disk
 * through `flushed`: the sync waiters these cover go. */
void capture_ack(struct capture *c, uint64_t written, uint64_t flushed);
/* JS. active=1: sync mode on (and a fallback forgotten); 0: off, every
 * waiter released. */
void capture_set_sync(struct capture *c, int active);
/* JS. Sync writers wait until the secondary is within `records` of them (0:
 * has them): resuming after a fallback, they are held to its pace while the
 * backlog drains (capture/sync-resume.ts). */
void capture_set_window(struct capture *c, uint64_t records);
/* JS. shut=1: capture_lock waits (block overflow policy); 0: open. */
void capture_set_gate(struct capture *c, int shut);
/* A restate owed (an append failed after its backing op): changes are
 * refused with that errno until JS restated (capture_set_owed(c, 0)). */
int  capture_owed(struct capture *c);
void capture_set_owed(struct capture *c, int err);
/* JS: the block policy's bound, without JS in the loop: gated locks wait once
 * the journal has written `bytes_written` bytes since open (0: no bound). */
void capture_set_credit(struct capture *c, uint64_t bytes_written);
/* JS. track=1: capture_append journals nothing and queues the records for
 * capture_take_tracked; their marks stay hot until released. In sync mode
 * it falls back to async (sync_fallbacks counts it): nothing tracked can be
 * waited for. */
void capture_set_track(struct capture *c, int track);
/* Whether an fsync goes to the backing file too, not only to the journal:
 * set with track (what is tracked has no record to redo it after a power
 * loss), and cleared by JS (on=0; refused while tracking) once a backing
 * sync that started after tracking ended has put what was tracked on disk. */
void capture_set_fsync_backing(struct capture *c, int on);
int  capture_fsync_backing(struct capture *c);
/* JS. The queued tracked records as one malloc'd CBOR array of count record
 * maps (free it), and a token for capture_release_tracked. 1: taken;
 * 0: nothing queued; -errno. */
int  capture_take_tracked(struct capture *c, uint8_t **buf, size_t *len, uint32_t *count, uint64_t *token);
/* JS. The dirty set holding the records of token is saved: their marks may
 * cool (applied by the next group-lock holder; never blocks). */
void capture_release_tracked(struct capture *c, uint64_t token);
/* The caller holds the group lock. JS. Syncs and closes every segment,
 * unlinks every *.seg in the state directory, and continues history at
 * next_seq after prev (the next append creates a new segment). */
int  capture_rebase(struct capture *c, uint64_t next_seq, const uint8_t prev[16]);

#endif
