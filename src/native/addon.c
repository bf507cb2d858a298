/* addon.c: the N-API surface of the native core, and nothing else.
 *
 * Owns: the JS objects that wrap a capture (journal appender) and a FUSE
 * session, the thread-safe function that wakes JS, and the async works that
 * run blocking calls (mount, unmount, taking the group lock) off the JS
 * thread.
 *
 * Threads: every exported function runs on the JS thread. `wake_from_any`
 * runs on whatever thread changed the capture's state (a FUSE worker, the
 * sync-timeout path) and only queues a coalesced call through the
 * thread-safe function; `call_js_wake` runs on the JS thread. Execute
 * callbacks of async works run on libuv's pool and touch no JS value.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"
#include "capture.h"

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "replfs native: " #call " failed");   \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

/* ---- small value helpers (JS thread) -------------------------------------- */

static napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* The capture's own message for its last error (it names file and offset). */
static void throw_capture_error(napi_env env, struct capture *c, const char *code, int rc, const char *what) {
  struct capture_status st;
  memset(&st, 0, sizeof st);
  capture_poll(c, &st);
  char text[600];
  snprintf(text, sizeof text, "%s: %s", what, st.error ? st.error_msg : strerror(rc < 0 ? -rc : rc));
  napi_throw_error(env, code, text);
}

static int throw_errno(napi_env env, const char *code, int err, const char *msg) {
  char text[512];
  snprintf(text, sizeof text, "%s (%s)", msg, strerror(err < 0 ? -err : err));
  napi_throw_error(env, code, text);
  return -1;
}

static int get_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return -1;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return -1;
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t == napi_undefined || t == napi_null ? -1 : 0;
}

/* A string property, malloc'd (NULL if absent). */
static char *get_string(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  if (get_prop(env, obj, key, &v) < 0) return NULL;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static double get_number(napi_env env, napi_value obj, const char *key, double dflt) {
  napi_value v;
  double d;
  if (get_prop(env, obj, key, &v) < 0 || napi_get_value_double(env, v, &d) != napi_ok) return dflt;
  return d;
}

static int get_bool(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  bool b;
  if (get_prop(env, obj, key, &v) < 0 || napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b;
}

static napi_value make_number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static void set_number(napi_env env, napi_value obj, const char *key, double d) {
  napi_set_named_property(env, obj, key, make_number(env, d));
}

static void set_bool(napi_env env, napi_value obj, const char *key, int b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  napi_set_named_property(env, obj, key, v);
}

static void set_buffer_copy(napi_env env, napi_value obj, const char *key, const void *data, size_t len) {
  napi_value v;
  void *dst;
  napi_create_buffer_copy(env, len, data, &dst, &v);
  napi_set_named_property(env, obj, key, v);
}

/* Sequences travel as JS numbers: exact up to 2^53, as on the TS side. */
static uint64_t arg_seq(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d < 0 ? 0 : (uint64_t)d;
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
  napi_value recv = undefined_value(env);
  napi_call_function(env, recv, js_cb, 0, NULL, NULL);
}

static struct capture_obj *unwrap_capture(napi_env env, napi_value v) {
  struct capture_obj *o = NULL;
  if (napi_get_value_external(env, v, (void **)&o) != napi_ok || !o || !o->c) {
    napi_throw_error(env, "NATIVE_STATE", "not an open capture");
    return NULL;
  }
  return o;
}

/* openCapture({ stateDir, group, nextSeq, lastHash, segmentBytes, syncMode, syncTimeoutMs }, onWake) */
static napi_value open_capture(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "openCapture(options, onWake)"); return NULL; }
  struct capture_obj *o = calloc(1, sizeof *o);
  if (!o) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
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
  memset(&cfg, 0, sizeof cfg);
  char *dir = get_string(env, argv[0], "stateDir");
  char *group = get_string(env, argv[0], "group");
  cfg.state_dir = dir;
  cfg.group = group;
  cfg.next_seq = (uint64_t)get_number(env, argv[0], "nextSeq", 1);
  cfg.segment_bytes = (uint64_t)get_number(env, argv[0], "segmentBytes", 64 << 20);
  cfg.sync_mode = get_bool(env, argv[0], "syncMode", 0);
  napi_value vf;
  if (get_prop(env, argv[0], "verifyFrom", &vf) == 0) {
    cfg.verify_at = 1;
    cfg.verify_first = (uint64_t)get_number(env, vf, "segment", 0);
    cfg.verify_offset = (uint64_t)get_number(env, vf, "offset", 0);
  }
  cfg.sync_timeout_ms = (uint32_t)get_number(env, argv[0], "syncTimeoutMs", 10000);
  napi_value hv;
  if (get_prop(env, argv[0], "lastHash", &hv) == 0) {
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, hv, &data, &len) == napi_ok && len == sizeof cfg.last_hash) memcpy(cfg.last_hash, data, len);
  }
  cfg.wake = wake_from_any;
  cfg.wake_ctx = o;
  char err[512] = "";
  int rc = dir && group ? capture_open(&cfg, &o->c, err, sizeof err) : -EINVAL;
  free(dir);
  free(group);
  if (rc < 0) {
    napi_release_threadsafe_function(o->tsfn, napi_tsfn_abort);
    free(o);
    throw_errno(env, "JOURNAL_OPEN", rc, err[0] ? err : "cannot open the journal appender");
    return NULL;
  }
  napi_value ext;
  CHECK(env, napi_create_external(env, o, NULL, NULL, &ext));
  return ext;
}

/* closeCapture(capture): syncs and closes; the session must be stopped first. */
static napi_value close_capture(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  atomic_store(&o->closed, 1);
  capture_close(o->c);
  o->c = NULL;
  napi_release_threadsafe_function(o->tsfn, napi_tsfn_release);
  return undefined_value(env);
}

/* poll(capture) -> status object; re-arms the wake. */
static napi_value poll_capture(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  struct capture_status st;
  memset(&st, 0, sizeof st);
  capture_poll(o->c, &st);
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

struct lock_work {
  struct capture_obj *o;
  napi_async_work work;
  napi_deferred deferred;
  int rc;
};

static void lock_execute(napi_env env, void *data) { /* pool thread */
  (void)env;
  struct lock_work *w = data;
  /* Ungated: JS's restates and rebases are part of draining the queue the
   * overflow gate waits on; they must not wait at the gate themselves. */
  w->rc = capture_lock_ungated(w->o->c);
}

static void lock_complete(napi_env env, napi_status status, void *data) { /* JS thread */
  struct lock_work *w = data;
  if (status == napi_ok && w->rc == 0) {
    napi_resolve_deferred(env, w->deferred, undefined_value(env));
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, "cannot take the group lock", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, w->deferred, err);
  }
  napi_delete_async_work(env, w->work);
  free(w);
}

/* lock(capture) -> Promise: resolves holding the group lock (FUSE mutations
 * wait until unlock). The JS thread never blocks on it. */
static napi_value lock_capture(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  struct lock_work *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  w->o = o;
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &w->deferred, &promise));
  napi_create_string_utf8(env, "replfs-lock", NAPI_AUTO_LENGTH, &name);
  CHECK(env, napi_create_async_work(env, NULL, name, lock_execute, lock_complete, w, &w->work));
  CHECK(env, napi_queue_async_work(env, w->work));
  return promise;
}

static napi_value unlock_capture(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  capture_unlock(o->c);
  return undefined_value(env);
}

/* appendEncoded(capture, recordsCborArray, count) -> last seq. The caller
 * holds the group lock (lock()). */
static napi_value append_encoded(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  void *data;
  size_t len;
  uint32_t count;
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &len));
  CHECK(env, napi_get_value_uint32(env, argv[2], &count));
  uint64_t first = 0, last = 0;
  int rc = capture_append_encoded(o->c, data, len, count, &first, &last);
  if (rc < 0) { throw_capture_error(env, o->c, rc == -ENOSPC ? "JOURNAL_FULL" : "JOURNAL_WRITE", rc, "journal append failed"); return NULL; }
  return make_number(env, (double)last);
}

/* setCredit(capture, journalBytesWritten): see capture_set_credit. */
static napi_value set_credit(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  capture_set_credit(o->c, arg_seq(env, argv[1]));
  return undefined_value(env);
}

static napi_value ack_capture(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  capture_ack(o->c, arg_seq(env, argv[1]));
  return undefined_value(env);
}

/* setFlag(capture, 'sync'|'gate'|'track', on) */
static napi_value set_flag(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  char which[16] = "";
  size_t n;
  bool on = false;
  napi_get_value_string_utf8(env, argv[1], which, sizeof which, &n);
  napi_get_value_bool(env, argv[2], &on);
  if (strcmp(which, "sync") == 0) capture_set_sync(o->c, on);
  else if (strcmp(which, "gate") == 0) capture_set_gate(o->c, on);
  else if (strcmp(which, "track") == 0) capture_set_track(o->c, on);
  else { napi_throw_type_error(env, NULL, "setFlag: sync, gate or track"); return NULL; }
  return undefined_value(env);
}

/* takeTracked(capture) -> { records: Buffer (CBOR array), count, token } | null */
static napi_value take_tracked(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  uint8_t *buf = NULL;
  size_t len = 0;
  uint32_t count = 0;
  uint64_t token = 0;
  if (capture_take_tracked(o->c, &buf, &len, &count, &token) <= 0 || !buf) {
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
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  capture_release_tracked(o->c, arg_seq(env, argv[1]));
  return undefined_value(env);
}

/* rebase(capture, nextSeq, prevHash): the caller holds the group lock. */
static napi_value rebase_capture(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct capture_obj *o = unwrap_capture(env, argv[0]);
  if (!o) return NULL;
  void *data;
  size_t len;
  CHECK(env, napi_get_buffer_info(env, argv[2], &data, &len));
  if (len != 16) { napi_throw_range_error(env, NULL, "rebase: the hash is 16 bytes"); return NULL; }
  int rc = capture_rebase(o->c, arg_seq(env, argv[1]), data);
  if (rc < 0) { throw_capture_error(env, o->c, "JOURNAL_WRITE", rc, "journal rebase failed"); return NULL; }
  return undefined_value(env);
}

/* ---- the FUSE session ------------------------------------------------------ */

struct session_obj {
  struct session *s;
  struct core_config cfg;
  struct core_volume *vols;
  char *strings[2 + 2 * 64]; /* everything cfg points to, freed at the end */
  int nstrings;
  napi_async_work work;
  napi_deferred deferred;
  int rc;
  char err[512];
};

static char *keep(struct session_obj *so, char *s) {
  if (s && so->nstrings < (int)(sizeof so->strings / sizeof so->strings[0])) so->strings[so->nstrings++] = s;
  return s;
}

static void free_session_obj(struct session_obj *so) {
  for (int i = 0; i < so->nstrings; i++) free(so->strings[i]);
  free(so->vols);
  free(so);
}

static void mount_execute(napi_env env, void *data) { /* pool thread */
  (void)env;
  struct session_obj *so = data;
  so->rc = session_start(&so->cfg, &so->s, so->err, sizeof so->err);
}

static void mount_complete(napi_env env, napi_status status, void *data) { /* JS thread */
  struct session_obj *so = data;
  napi_delete_async_work(env, so->work);
  so->work = NULL;
  if (status == napi_ok && so->rc == 0) {
    napi_value ext;
    napi_create_external(env, so, NULL, NULL, &ext);
    napi_resolve_deferred(env, so->deferred, ext);
    return;
  }
  char text[700];
  snprintf(text, sizeof text, "cannot mount %s: %s", so->cfg.mountpoint ? so->cfg.mountpoint : "?",
           so->err[0] ? so->err : strerror(so->rc < 0 ? -so->rc : EIO));
  napi_value msg, code, err;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, "MOUNT_FAILED", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &err);
  napi_reject_deferred(env, so->deferred, err);
  free_session_obj(so);
}

/* mount({ mountpoint, fsname, readOnly, single, volumes: [{num,name,kind,path,size}],
 *         threads, maxWrite, attrTimeout, entryTimeout, debug }, capture|null) -> Promise<session> */
static napi_value mount_session(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, NULL, "mount(options, capture)"); return NULL; }
  struct session_obj *so = calloc(1, sizeof *so);
  if (!so) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  napi_value opts = argv[0];
  struct core_config *cfg = &so->cfg;
  cfg->mountpoint = keep(so, get_string(env, opts, "mountpoint"));
  cfg->fsname = keep(so, get_string(env, opts, "fsname"));
  cfg->read_only = get_bool(env, opts, "readOnly", 0);
  cfg->single = get_bool(env, opts, "single", 0);
  cfg->threads = (int)get_number(env, opts, "threads", 0);
  cfg->max_write = (uint32_t)get_number(env, opts, "maxWrite", 0);
  cfg->attr_timeout = get_number(env, opts, "attrTimeout", 1);
  cfg->entry_timeout = get_number(env, opts, "entryTimeout", 1);
  cfg->debug = get_bool(env, opts, "debug", 0);
  napi_value vols;
  uint32_t nvols = 0;
  if (get_prop(env, opts, "volumes", &vols) == 0) napi_get_array_length(env, vols, &nvols);
  if (!cfg->mountpoint || nvols == 0 || nvols > 64) {
    free_session_obj(so);
    napi_throw_type_error(env, NULL, "mount: mountpoint and 1..64 volumes are required");
    return NULL;
  }
  so->vols = calloc(nvols, sizeof *so->vols);
  for (uint32_t i = 0; i < nvols; i++) {
    napi_value v;
    napi_get_element(env, vols, i, &v);
    struct core_volume *cv = &so->vols[i];
    cv->num = (uint32_t)get_number(env, v, "num", i);
    cv->name = keep(so, get_string(env, v, "name"));
    cv->path = keep(so, get_string(env, v, "path"));
    char *kind = get_string(env, v, "kind");
    cv->kind = kind && strcmp(kind, "image") == 0 ? VOL_IMAGE : VOL_DIR;
    free(kind);
    cv->size = (uint64_t)get_number(env, v, "size", 0);
    if (!cv->name || !cv->path) {
      free_session_obj(so);
      napi_throw_type_error(env, NULL, "mount: every volume needs a name and a path");
      return NULL;
    }
  }
  cfg->volumes = so->vols;
  cfg->nvolumes = (int)nvols;
  if (argc >= 2) {
    napi_valuetype t;
    napi_typeof(env, argv[1], &t);
    if (t == napi_external) {
      struct capture_obj *o = unwrap_capture(env, argv[1]);
      if (!o) { free_session_obj(so); return NULL; }
      cfg->capture = o->c;
    }
  }
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &so->deferred, &promise));
  napi_create_string_utf8(env, "replfs-mount", NAPI_AUTO_LENGTH, &name);
  CHECK(env, napi_create_async_work(env, NULL, name, mount_execute, mount_complete, so, &so->work));
  CHECK(env, napi_queue_async_work(env, so->work));
  return promise;
}

static void unmount_execute(napi_env env, void *data) { /* pool thread */
  (void)env;
  struct session_obj *so = data;
  session_stop(so->s);
  so->s = NULL;
}

static void unmount_complete(napi_env env, napi_status status, void *data) { /* JS thread */
  (void)status;
  struct session_obj *so = data;
  napi_delete_async_work(env, so->work);
  napi_resolve_deferred(env, so->deferred, undefined_value(env));
  free_session_obj(so);
}

/* unmount(session) -> Promise: unmounts, joins the FUSE threads. */
static napi_value unmount_session(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct session_obj *so = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&so) != napi_ok || !so || !so->s || so->work) {
    napi_throw_error(env, "NATIVE_STATE", "not a mounted session");
    return NULL;
  }
  /* FUSE threads waiting at a shut gate or for a sync ack must be let go,
   * or they could not be joined. */
  if (so->cfg.capture) {
    capture_set_gate(so->cfg.capture, 0);
    capture_set_credit(so->cfg.capture, 0);
    capture_set_sync(so->cfg.capture, 0);
  }
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &so->deferred, &promise));
  napi_create_string_utf8(env, "replfs-unmount", NAPI_AUTO_LENGTH, &name);
  CHECK(env, napi_create_async_work(env, NULL, name, unmount_execute, unmount_complete, so, &so->work));
  CHECK(env, napi_queue_async_work(env, so->work));
  return promise;
}

static napi_value session_stats_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct session_obj *so = NULL;
  if (napi_get_value_external(env, argv[0], (void **)&so) != napi_ok || !so || !so->s) {
    napi_throw_error(env, "NATIVE_STATE", "not a mounted session");
    return NULL;
  }
  struct session_stats st;
  session_stats(so->s, &st);
  napi_value out;
  CHECK(env, napi_create_object(env, &out));
  set_number(env, out, "requests", (double)st.requests);
  set_number(env, out, "writes", (double)st.writes);
  set_number(env, out, "writeBytes", (double)st.write_bytes);
  set_number(env, out, "reads", (double)st.reads);
  set_number(env, out, "readBytes", (double)st.read_bytes);
  set_number(env, out, "errors", (double)st.errors);
  return out;
}

/* ---- calls Node's fs lacks, for the apply side (JS thread) --------------------
 * The secondary makes its copy exact with them: nanosecond times on the
 * entry itself (Node's lutimes takes a double of seconds, ~µs), and mknod
 * of sockets and devices (Node has no mknod). Paths come confined by the
 * volume code. */

static int path_arg(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok || len + 1 >= size) {
    napi_throw_type_error(env, NULL, "path: a string shorter than PATH_MAX");
    return -1;
  }
  return 0;
}

static void throw_sys(napi_env env, const char *what, const char *path) {
  int e = errno;
  char msg[4200];
  snprintf(msg, sizeof msg, "%s, %s '%s'", strerror(e), what, path);
  napi_value m, err, code;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &err);
  /* Node's fs error shape: code (ENOENT...) and a negative errno. */
  const char *name = strerrorname_np(e);
  napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, err, "code", code);
  set_number(env, err, "errno", -e);
  napi_throw(env, err);
}

/* utimens(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec): the entry itself (no follow). */
static napi_value posix_utimens(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4097];
  if (argc < 5 || path_arg(env, argv[0], path, sizeof path) < 0) return NULL;
  int64_t as, an, ms, mn;
  napi_get_value_int64(env, argv[1], &as);
  napi_get_value_int64(env, argv[2], &an);
  napi_get_value_int64(env, argv[3], &ms);
  napi_get_value_int64(env, argv[4], &mn);
  struct timespec ts[2] = { { .tv_sec = as, .tv_nsec = an }, { .tv_sec = ms, .tv_nsec = mn } };
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) { throw_sys(env, "utimensat", path); return NULL; }
  return undefined_value(env);
}

/* mknod(path, mode, rdev): fifos, sockets, character and block devices. */
static napi_value posix_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[4097];
  if (argc < 3 || path_arg(env, argv[0], path, sizeof path) < 0) return NULL;
  uint32_t mode, rdev;
  napi_get_value_uint32(env, argv[1], &mode);
  napi_get_value_uint32(env, argv[2], &rdev);
  if (mknodat(AT_FDCWD, path, mode, rdev) < 0) { throw_sys(env, "mknod", path); return NULL; }
  return undefined_value(env);
}

/* syncfs(path) -> Promise: every dirty page of the filesystem holding path
 * reaches the disk (the backing sync of a primary, journal/backing-sync.ts). */
struct syncfs_work {
  napi_async_work work;
  napi_deferred deferred;
  char path[4097];
  int err;
};

static void syncfs_execute(napi_env env, void *data) { /* pool thread */
  (void)env;
  struct syncfs_work *w = data;
  int fd = open(w->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 || syncfs(fd) < 0) w->err = errno;
  if (fd >= 0) close(fd);
}

static void syncfs_complete(napi_env env, napi_status status, void *data) { /* JS thread */
  struct syncfs_work *w = data;
  if (status == napi_ok && w->err == 0) {
    napi_resolve_deferred(env, w->deferred, undefined_value(env));
  } else {
    char msg[4200];
    snprintf(msg, sizeof msg, "syncfs %s: %s", w->path, strerror(w->err ? w->err : EIO));
    napi_value m, err;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_error(env, NULL, m, &err);
    napi_reject_deferred(env, w->deferred, err);
  }
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value posix_syncfs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct syncfs_work *w = calloc(1, sizeof *w);
  if (!w) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  if (argc < 1 || path_arg(env, argv[0], w->path, sizeof w->path) < 0) { free(w); return NULL; }
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &w->deferred, &promise));
  napi_create_string_utf8(env, "replfs-syncfs", NAPI_AUTO_LENGTH, &name);
  CHECK(env, napi_create_async_work(env, NULL, name, syncfs_execute, syncfs_complete, w, &w->work));
  CHECK(env, napi_queue_async_work(env, w->work));
  return promise;
}

/* ---- module ------------------------------------------------------------------ */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "openCapture", NULL, open_capture, NULL, NULL, NULL, napi_default, NULL },
    { "closeCapture", NULL, close_capture, NULL, NULL, NULL, napi_default, NULL },
    { "poll", NULL, poll_capture, NULL, NULL, NULL, napi_default, NULL },
    { "lock", NULL, lock_capture, NULL, NULL, NULL, napi_default, NULL },
    { "unlock", NULL, unlock_capture, NULL, NULL, NULL, napi_default, NULL },
    { "appendEncoded", NULL, append_encoded, NULL, NULL, NULL, napi_default, NULL },
    { "ack", NULL, ack_capture, NULL, NULL, NULL, napi_default, NULL },
    { "setCredit", NULL, set_credit, NULL, NULL, NULL, napi_default, NULL },
    { "setFlag", NULL, set_flag, NULL, NULL, NULL, napi_default, NULL },
    { "takeTracked", NULL, take_tracked, NULL, NULL, NULL, napi_default, NULL },
    { "releaseTracked", NULL, release_tracked, NULL, NULL, NULL, napi_default, NULL },
    { "rebase", NULL, rebase_capture, NULL, NULL, NULL, napi_default, NULL },
    { "mount", NULL, mount_session, NULL, NULL, NULL, napi_default, NULL },
    { "unmount", NULL, unmount_session, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, session_stats_js, NULL, NULL, NULL, napi_default, NULL },
    { "utimens", NULL, posix_utimens, NULL, NULL, NULL, napi_default, NULL },
    { "mknod", NULL, posix_mknod, NULL, NULL, NULL, napi_default, NULL },
    { "syncfs", NULL, posix_syncfs, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
