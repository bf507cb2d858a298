/* addon_session.c: mounting and unmounting the FUSE session from JS.
 * session_start (it waits for the kernel's INIT) and session_stop (it joins
 * the FUSE threads) run on the pool; everything else on the JS thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"
#include "capture.h"
#include "core.h"

#define STRINGS_MAX (2 + 2 * 64)

/* A session and everything its config points to (freed when its JS value is collected). */
struct session_obj {
  struct pool_job job;
  struct session *s;
  struct core_config cfg;
  struct core_volume *vols;
  char *strings[STRINGS_MAX];
  int nstrings;
  int mounted;
};

static char *keep(struct session_obj *so, char *s) {
  if (s && so->nstrings < STRINGS_MAX) so->strings[so->nstrings++] = s;
  return s;
}

static void session_obj_free(struct session_obj *so) {
  for (int i = 0; i < so->nstrings; i++) free(so->strings[i]);
  free(so->vols);
  free(so);
}

/* The job's release: a mounted session lives on (its external holds it). */
static void mount_release(struct pool_job *j) {
  struct session_obj *so = (struct session_obj *)j;
  if (!so->mounted) session_obj_free(so);
}

static void mount_run(struct pool_job *j) { /* pool thread */
  struct session_obj *so = (struct session_obj *)j;
  char err[512] = "";
  int rc = session_start(&so->cfg, &so->s, err, sizeof err);
  if (rc < 0) {
    j->err = -rc;
    snprintf(j->msg, sizeof j->msg, "cannot mount %.300s: %s", so->cfg.mountpoint, err[0] ? err : strerror(-rc));
  } else {
    so->mounted = 1;
  }
}

/* JS thread, when the session's JS value is collected (unmounted or not). */
static void session_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct session_obj *so = data;
  if (so->s) session_stop(so->s); /* never unmounted: the process is going away */
  session_obj_free(so);
}

static napi_value mount_value(napi_env env, struct pool_job *j) { /* JS thread */
  napi_value ext;
  return napi_create_external(env, j, session_finalize, NULL, &ext) == napi_ok ? ext : NULL;
}

/* Reads the volumes array into so; -1 after throwing. */
static int read_volumes(napi_env env, napi_value opts, struct session_obj *so) {
  napi_value vols;
  uint32_t n = 0;
  if (get_prop(env, opts, "volumes", &vols) == 0) napi_get_array_length(env, vols, &n);
  if (n == 0 || n > 64) { napi_throw_type_error(env, NULL, "mount: 1..64 volumes are required"); return -1; }
  if (!(so->vols = calloc(n, sizeof *so->vols))) { throw_errno(env, NULL, ENOMEM, "mount"); return -1; }
  for (uint32_t i = 0; i < n; i++) {
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
    if (!cv->name || !cv->path) { napi_throw_type_error(env, NULL, "mount: every volume needs a name and a path"); return -1; }
  }
  so->cfg.volumes = so->vols;
  so->cfg.nvolumes = (int)n;
  return 0;
}

/* mount({ mountpoint, fsname, readOnly, single, volumes: [{num,name,kind,path,size}],
 *         threads, maxWrite, attrTimeout, entryTimeout, debug, ioUring, pollUs }, capture|null) -> Promise<session> */
napi_value js_mount(napi_env env, napi_callback_info info) {
  ARGS(env, info, 2);
  struct session_obj *so = calloc(1, sizeof *so);
  if (!so) return throw_errno(env, NULL, ENOMEM, "mount");
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
  cfg->io_uring = get_bool(env, opts, "ioUring", 0);
  double poll_us = get_number(env, opts, "pollUs", 0);
  cfg->poll_us = poll_us <= 0 ? 0 : poll_us >= 10000 ? 10000 : (unsigned)poll_us;   /* at most 10 ms, as the CLI allows */
  if (!cfg->mountpoint) { session_obj_free(so); napi_throw_type_error(env, NULL, "mount: a mountpoint is required"); return NULL; }
  if (read_volumes(env, opts, so) < 0) { session_obj_free(so); return NULL; }
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (t == napi_external && !(cfg->capture = capture_of(env, argv[1]))) { session_obj_free(so); return NULL; }
  so->job.code = "MOUNT_FAILED";
  so->job.run = mount_run;
  so->job.value = mount_value;
  so->job.release = mount_release;
  return queue_job(env, &so->job, "replfs-mount");
}

struct unmount_job {
  struct pool_job job;
  struct session *s;
};

static void unmount_run(struct pool_job *j) { /* pool thread */
  session_stop(((struct unmount_job *)j)->s);
}

static struct session_obj *session_of(napi_env env, napi_value v) {
  struct session_obj *so = NULL;
  if (napi_get_value_external(env, v, (void **)&so) != napi_ok || !so || !so->s) {
    napi_throw_error(env, "NATIVE_STATE", "not a mounted session");
    return NULL;
  }
  return so;
}

/* unmount(session) -> Promise: unmounts, joins the FUSE threads. */
napi_value js_unmount(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  struct session_obj *so = session_of(env, argv[0]);
  if (!so) return NULL;
  struct unmount_job *u = calloc(1, sizeof *u);
  if (!u) return throw_errno(env, NULL, ENOMEM, "unmount");
  /* FUSE threads waiting at a shut gate, for credit or for a sync ack must
   * be let go, or they could not be joined. */
  struct capture *c = so->cfg.capture;
  if (c) {
    capture_set_gate(c, 0);
    capture_set_credit(c, 0);
    capture_set_sync(c, 0);
  }
  u->s = so->s;
  so->s = NULL; /* from here the value names no session: a second unmount or stats is refused */
  u->job.run = unmount_run;
  return queue_job(env, &u->job, "replfs-unmount");
}

napi_value js_stats(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  struct session_obj *so = session_of(env, argv[0]);
  if (!so) return NULL;
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
