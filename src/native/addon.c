/* addon.c: the N-API surface of the native core: the capture (journal
 * appender) object and the module's table of exports. The FUSE session's
 * functions are in addon_session.c, the apply side's system calls in
 * addon_posix.c, shared helpers in napi_util.c.
 *
 * Threads: every exported function runs on the JS thread. `wake_from_any`
 * runs on whatever thread changed the capture's state (a FUSE worker, the
 * sync-timeout path) and only queues a coalesced call through the
 * thread-safe function; `call_js_wake` runs on the JS thread. The group
 * lock is taken for JS on libuv's pool (napi_util.h's jobs). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"
#include "capture.h"
#include "journal.h"

/* The capture's own message for its last error (it names file and offset). */
static napi_value throw_capture_error(napi_env env, struct capture *c, const char *code, int rc, const char *what) {
  struct capture_status st;
  memset(&st, 0, sizeof st);
  capture_poll(c, &st);
  char text[600];
  snprintf(text, sizeof text, "%s: %s", what, st.error ? st.error_msg : strerror(rc < 0 ? -rc : rc));
  napi_throw_error(env, code, text);
  return NULL;
}

/* ---- the capture object ---------------------------------------------------- */

struct capture_obj {
  struct capture *c;
  napi_threadsafe_function tsfn;
  atomic_int closed;
};

/* Any thread: queue one call of JS's onWake. The capture coalesces (at most
 * one wake until the next capture_poll), so this never runs once per op. */
static void wake_from_any(void *ctx) {
  struct capture_obj *o = ctx;
  if (atomic_load(&o->closed)) return;
  napi_call_threadsafe_function(o->tsfn, NULL, napi_tsfn_nonblocking);
}

/* JS thread: calls the onWake function given to openCapture. */
static void call_js_wake(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  (void)data;
  if (env == NULL || js_cb == NULL) return;
  napi_call_function(env, undefined_value(env), js_cb, 0, NULL, NULL);
}

static struct capture_obj *capture_obj_of(napi_env env, napi_value v) {
  struct capture_obj *o = NULL;
  if (napi_get_value_external(env, v, (void **)&o) != napi_ok || !o || !o->c) {
    napi_throw_error(env, "NATIVE_STATE", "not an open capture");
    return NULL;
  }
  return o;
}

struct capture *capture_of(napi_env env, napi_value v) {
  struct capture_obj *o = capture_obj_of(env, v);
  return o ? o->c : NULL;
}

/* Reads openCapture's options into cfg (strings malloc'd: free them). */
static void read_capture_options(napi_env env, napi_value opts, struct capture_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->state_dir = get_string(env, opts, "stateDir");
  cfg->group = get_string(env, opts, "group");
  cfg->boot_id = get_string(env, opts, "bootId");
  cfg->next_seq = (uint64_t)get_number(env, opts, "nextSeq", 1);
  cfg->segment_bytes = (uint64_t)get_number(env, opts, "segmentBytes", 64 << 20);
  cfg->sync_mode = get_bool(env, opts, "syncMode", 0);
  cfg->sync_timeout_ms = (uint32_t)get_number(env, opts, "syncTimeoutMs", 10000);
  cfg->drop_finished = get_bool(env, opts, "dropFinishedSegments", 0);
  napi_value v;
  if (get_prop(env, opts, "verifyFrom", &v) == 0) {
    cfg->verify_at = 1;
    cfg->verify_first = (uint64_t)get_number(env, v, "segment", 0);
    cfg->verify_offset = (uint64_t)get_number(env, v, "offset", 0);
  }
  if (get_prop(env, opts, "lastHash", &v) == 0) {
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, v, &data, &len) == napi_ok && len == sizeof cfg->last_hash) memcpy(cfg->last_hash, data, len);
  }
}

/* openCapture({ stateDir, group, bootId, nextSeq, lastHash, segmentBytes, syncMode, syncTimeoutMs, verifyFrom,
 *               dropFinishedSegments }, onWake) */
static napi_value open_capture(napi_env env, napi_callback_info info) {
  ARGS(env, info, 2);
  if (argc < 2) { napi_throw_type_error(env, NULL, "openCapture(options, onWake)"); return NULL; }
  struct capture_obj *o = calloc(1, sizeof *o);
  if (!o) return throw_errno(env, NULL, ENOMEM, "openCapture");
  napi_value name;
  napi_create_string_utf8(env, "replfs-wake", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, call_js_wake, &o->tsfn) != napi_ok) {
    free(o);
    napi_throw_error(env, NULL, "cannot create the wake function");
    return NULL;
  }
  /* The mount and its daemon keep the process alive, not this. */
  napi_unref_threadsafe_function(env, o->tsfn);
  struct capture_config cfg;
  read_capture_options(env, argv[0], &cfg);
  cfg.wake = wake_from_any;
  cfg.wake_ctx = o;
  char err[512] = "";
  int rc = cfg.state_dir && cfg.group ? capture_open(&cfg, &o->c, err, sizeof err) : -EINVAL;
  free((void *)cfg.state_dir);
  free((void *)cfg.group);
  free((void *)cfg.boot_id);
  if (rc < 0) {
    napi_release_threadsafe_function(o->tsfn, napi_tsfn_abort);
    free(o);
    return throw_errno(env, "JOURNAL_OPEN", rc, err[0] ? err : "cannot open the journal appender");
  }
  napi_value ext;
  CHECK(env, napi_create_external(env, o, NULL, NULL, &ext));
  return ext;
}

/* closeCapture(capture): syncs and closes; the session must be stopped first. */
static napi_value close_capture(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  struct capture_obj *o = capture_obj_of(env, argv[0]);
  if (!o) return NULL;
  atomic_store(&o->closed, 1);
  capture_close(o->c);
  o->c = NULL;
  napi_release_threadsafe_function(o->tsfn, napi_tsfn_release);
  return undefined_value(env);
}

/* poll(capture) -> status object; re-arms the wake. */
static napi_value poll_capture(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  struct capture_status st;
  memset(&st, 0, sizeof st);
  capture_poll(c, &st);
  napi_value out;
  CHECK(env, napi_create_object(env, &out));
  set_number(env, out, "nextSeq", (double)st.next_seq);
  set_buffer_copy(env, out, "lastHash", st.last_hash, sizeof st.last_hash);
  set_number(env, out, "durableSeq", (double)st.durable_seq);
  set_number(env, out, "segmentFirst", (double)st.segment_first);
  set_number(env, out, "segmentBytes", (double)st.segment_bytes);
  set_number(env, out, "batches", (double)st.batches);
  set_number(env, out, "records", (double)st.records);
  set_number(env, out, "dataBytes", (double)st.data_bytes);
  set_number(env, out, "journalBytesWritten", (double)st.journal_bytes_written);
  set_number(env, out, "syncFallbacks", (double)st.sync_fallbacks);
  set_number(env, out, "syncWaiting", st.sync_waiting);
  set_bool(env, out, "syncActive", st.sync_active);
  set_bool(env, out, "track", st.track);
  set_number(env, out, "trackedRecords", (double)st.tracked_records);
  if (st.error) {
    napi_value msg;
    napi_create_string_utf8(env, st.error_msg, NAPI_AUTO_LENGTH, &msg);
    napi_set_named_property(env, out, "error", msg);
    set_number(env, out, "errno", st.error);
  }
  return out;
}

/* ---- the group lock, taken for JS on the pool ------------------------------ */

struct lock_job {
  struct pool_job job;
  struct capture *c;
};

static void lock_run(struct pool_job *j) { /* pool thread */
  /* Ungated: JS's restates and rebases are part of draining the queue the
   * overflow gate waits on; they must not wait at the gate themselves. */
  int rc = capture_lock_ungated(((struct lock_job *)j)->c);
  if (rc < 0) { j->err = -rc; snprintf(j->msg, sizeof j->msg, "cannot take the group lock: %s", strerror(-rc)); }
}

/* lock(capture) -> Promise: resolves holding the group lock (FUSE mutations
 * wait until unlock). The JS thread never blocks on it. */
static napi_value lock_capture(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  struct lock_job *l = calloc(1, sizeof *l);
  if (!l) return throw_errno(env, NULL, ENOMEM, "lock");
  l->c = c;
  l->job.run = lock_run;
  return queue_job(env, &l->job, "replfs-lock");
}

static napi_value unlock_capture(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  capture_unlock(c);
  return undefined_value(env);
}

/* The bytes of a Uint8Array argument (a Buffer is one); false, with a
 * TypeError thrown that names `fn`, for anything else. */
static bool uint8_array_arg(napi_env env, napi_value v, const char *fn, void **data, size_t *len) {
  napi_typedarray_type type;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s: a Uint8Array", fn);
    napi_throw_type_error(env, NULL, msg);
    return false;
  }
  return true;
}

/* chainHash(bytes) -> a 16-byte Buffer: the journal's chain hash of a batch
 * payload (XXH3-128, journal_codec.c), the same function for both sides. */
static napi_value chain_hash(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  size_t len;
  void *data;
  if (!uint8_array_arg(env, argv[0], "chainHash", &data, &len)) return NULL;
  void *out;
  napi_value buf;
  CHECK(env, napi_create_buffer(env, J_HASH_BYTES, &out, &buf));
  j_chain_hash_bytes(data, len, out);
  return buf;
}

/* crc32c(bytes, prev = 0) -> the standard CRC-32C of bytes, continuing from
 * a previous result: ISA-L's, several times faster here than a JS-side
 * package's (native-notes/performance.md 9), for the frames both sides
 * check and write. */
static napi_value crc32c(napi_env env, napi_callback_info info) {
  ARGS(env, info, 2);
  size_t len;
  void *data;
  if (!uint8_array_arg(env, argv[0], "crc32c", &data, &len)) return NULL;
  uint32_t prev = 0;
  napi_valuetype t;
  CHECK(env, napi_typeof(env, argv[1], &t));
  if (t != napi_undefined) CHECK(env, napi_get_value_uint32(env, argv[1], &prev));
  napi_value out;
  CHECK(env, napi_create_uint32(env, j_crc32c(prev, data, len), &out));
  return out;
}

/* appendEncoded(capture, recordsCborArray, count) -> last seq. The caller
 * holds the group lock (lock()). */
static napi_value append_encoded(napi_env env, napi_callback_info info) {
  ARGS(env, info, 3);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  void *data;
  size_t len;
  uint32_t count;
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &len));
  CHECK(env, napi_get_value_uint32(env, argv[2], &count));
  uint64_t first = 0, last = 0;
  int rc = capture_append_encoded(c, data, len, count, &first, &last);
  if (rc < 0) return throw_capture_error(env, c, rc == -ENOSPC ? "JOURNAL_FULL" : "JOURNAL_WRITE", rc, "journal append failed");
  return make_number(env, (double)last);
}

/* The calls that hand one sequence or count to the capture: (capture, n). */
static napi_value with_u64(napi_env env, napi_callback_info info, void (*fn)(struct capture *, uint64_t)) {
  ARGS(env, info, 2);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  fn(c, arg_u64(env, argv[1]));
  return undefined_value(env);
}

/* setCredit(capture, journalBytesWritten): see capture_set_credit. */
static napi_value set_credit(napi_env env, napi_callback_info info) { return with_u64(env, info, capture_set_credit); }
/* ack(capture, written, flushed): see capture_ack. */
static napi_value ack_capture(napi_env env, napi_callback_info info) {
  ARGS(env, info, 3);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  capture_ack(c, arg_u64(env, argv[1]), arg_u64(env, argv[2]));
  return undefined_value(env);
}
/* setSyncWindow(capture, records) */
static napi_value set_sync_window(napi_env env, napi_callback_info info) { return with_u64(env, info, capture_set_window); }

/* setFlag(capture, 'sync'|'gate'|'track'|'owed'|'fsyncBacking', on) */
static napi_value set_flag(napi_env env, napi_callback_info info) {
  ARGS(env, info, 3);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  char which[16] = "";
  size_t n;
  bool on = false;
  napi_get_value_string_utf8(env, argv[1], which, sizeof which, &n);
  napi_get_value_bool(env, argv[2], &on);
  if (strcmp(which, "sync") == 0) capture_set_sync(c, on);
  else if (strcmp(which, "gate") == 0) capture_set_gate(c, on);
  else if (strcmp(which, "track") == 0) capture_set_track(c, on);
  else if (strcmp(which, "owed") == 0) capture_set_owed(c, on ? ENOSPC : 0);
  else if (strcmp(which, "fsyncBacking") == 0) capture_set_fsync_backing(c, on);
  else { napi_throw_type_error(env, NULL, "setFlag: sync, gate, track, owed or fsyncBacking"); return NULL; }
  return undefined_value(env);
}

/* takeTracked(capture) -> { records: Buffer (CBOR array), count, token } | null */
static napi_value take_tracked(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  uint8_t *buf = NULL;
  size_t len = 0;
  uint32_t count = 0;
  uint64_t token = 0;
  if (capture_take_tracked(c, &buf, &len, &count, &token) <= 0 || !buf) {
    napi_value nul;
    napi_get_null(env, &nul);
    return nul;
  }
  napi_value out;
  CHECK(env, napi_create_object(env, &out));
  set_buffer_copy(env, out, "records", buf, len);
  free(buf);
  set_number(env, out, "count", count);
  set_number(env, out, "token", (double)token);
  return out;
}

static napi_value release_tracked(napi_env env, napi_callback_info info) {
  ARGS(env, info, 2);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  capture_release_tracked(c, arg_u64(env, argv[1]));
  return undefined_value(env);
}

/* rebase(capture, nextSeq, prevHash): the caller holds the group lock. */
static napi_value rebase_capture(napi_env env, napi_callback_info info) {
  ARGS(env, info, 3);
  struct capture *c = capture_of(env, argv[0]);
  if (!c) return NULL;
  void *data;
  size_t len;
  CHECK(env, napi_get_buffer_info(env, argv[2], &data, &len));
  if (len != 16) { napi_throw_range_error(env, NULL, "rebase: the hash is 16 bytes"); return NULL; }
  int rc = capture_rebase(c, arg_u64(env, argv[1]), data);
  if (rc < 0) return throw_capture_error(env, c, "JOURNAL_WRITE", rc, "journal rebase failed");
  return undefined_value(env);
}

/* ---- the process's allocator ------------------------------------------------ */

/* keepFreedMemory(): buffers of up to 32 MiB come from the heap, and up to
 * 64 MiB freed at its top stays there for the next ones. A replicating
 * daemon allocates a buffer per journal read and per frame it receives
 * (hundreds of KiB each, freed by V8's collector in bursts); glibc mapped
 * each one afresh and gave the freed ones back, and fresh memory costs a
 * fault per page, ten times more on this VM once its host has taken the page
 * back (native-notes/performance.md 13 and 20). Best effort: an allocator
 * that has no such settings (ASan's) ignores them. */
static napi_value keep_freed_memory(napi_env env, napi_callback_info info) {
  (void)info;
  mallopt(M_MMAP_THRESHOLD, 32 << 20); /* glibc's largest */
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  return undefined_value(env);
}

/* ---- module ------------------------------------------------------------------ */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "openCapture", NULL, open_capture, NULL, NULL, NULL, napi_default, NULL },
    { "closeCapture", NULL, close_capture, NULL, NULL, NULL, napi_default, NULL },
    { "poll", NULL, poll_capture, NULL, NULL, NULL, napi_default, NULL },
    { "lock", NULL, lock_capture, NULL, NULL, NULL, napi_default, NULL },
    { "unlock", NULL, unlock_capture, NULL, NULL, NULL, napi_default, NULL },
    { "chainHash", NULL, chain_hash, NULL, NULL, NULL, napi_default, NULL },
    { "crc32c", NULL, crc32c, NULL, NULL, NULL, napi_default, NULL },
    { "appendEncoded", NULL, append_encoded, NULL, NULL, NULL, napi_default, NULL },
    { "ack", NULL, ack_capture, NULL, NULL, NULL, napi_default, NULL },
    { "setCredit", NULL, set_credit, NULL, NULL, NULL, napi_default, NULL },
    { "setFlag", NULL, set_flag, NULL, NULL, NULL, napi_default, NULL },
    { "setSyncWindow", NULL, set_sync_window, NULL, NULL, NULL, napi_default, NULL },
    { "takeTracked", NULL, take_tracked, NULL, NULL, NULL, napi_default, NULL },
    { "releaseTracked", NULL, release_tracked, NULL, NULL, NULL, napi_default, NULL },
    { "rebase", NULL, rebase_capture, NULL, NULL, NULL, napi_default, NULL },
    { "mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL },
    { "unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL },
    { "utimens", NULL, js_utimens, NULL, NULL, NULL, napi_default, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_default, NULL },
    { "syncfs", NULL, js_syncfs, NULL, NULL, NULL, napi_default, NULL },
    { "openBeneath", NULL, js_open_beneath, NULL, NULL, NULL, napi_default, NULL },
    { "xattrs", NULL, js_xattrs, NULL, NULL, NULL, napi_default, NULL },
    { "xattrSet", NULL, js_xattr_set, NULL, NULL, NULL, napi_default, NULL },
    { "xattrRemove", NULL, js_xattr_remove, NULL, NULL, NULL, napi_default, NULL },
    { "keepFreedMemory", NULL, keep_freed_memory, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
