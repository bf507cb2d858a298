/* napi_util.c: see napi_util.h. JS thread, except job_execute (the pool). */
#define _GNU_SOURCE
#include "napi_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

napi_value undefined_value(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value throw_errno(napi_env env, const char *code, int err, const char *msg) {
  char text[700];
  snprintf(text, sizeof text, "%s (%s)", msg, strerror(err < 0 ? -err : err));
  napi_throw_error(env, code, text);
  return NULL;
}

int get_prop(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  if (napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return -1;
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return -1;
  napi_valuetype t;
  napi_typeof(env, *out, &t);
  return t == napi_undefined || t == napi_null ? -1 : 0;
}

char *get_string(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  if (get_prop(env, obj, key, &v) < 0) return NULL;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

double get_number(napi_env env, napi_value obj, const char *key, double dflt) {
  napi_value v;
  double d;
  if (get_prop(env, obj, key, &v) < 0 || napi_get_value_double(env, v, &d) != napi_ok) return dflt;
  return d;
}

int get_bool(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  bool b;
  if (get_prop(env, obj, key, &v) < 0 || napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b;
}

uint64_t arg_u64(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d < 0 ? 0 : (uint64_t)d;
}

int path_arg(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  bool is_buffer = false;
  /* A Buffer holds a path's bytes as they are (a name need not be UTF-8). */
  if (napi_is_buffer(env, v, &is_buffer) == napi_ok && is_buffer) {
    void *data = NULL;
    if (napi_get_buffer_info(env, v, &data, &len) == napi_ok && len + 1 < size && !memchr(data, 0, len)) {
      memcpy(buf, data, len);
      buf[len] = 0;
      return 0;
    }
  } else if (napi_get_value_string_utf8(env, v, buf, size, &len) == napi_ok && len + 1 < size) {
    return 0;
  }
  napi_throw_type_error(env, NULL, "path: a string or Buffer shorter than PATH_MAX, without NUL");
  return -1;
}

napi_value make_number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

void set_number(napi_env env, napi_value obj, const char *key, double d) {
  napi_set_named_property(env, obj, key, make_number(env, d));
}

void set_bool(napi_env env, napi_value obj, const char *key, int b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  napi_set_named_property(env, obj, key, v);
}

void set_string(napi_env env, napi_value obj, const char *key, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, key, v);
}

void set_buffer_copy(napi_env env, napi_value obj, const char *key, const void *data, size_t len) {
  napi_value v;
  void *dst;
  napi_create_buffer_copy(env, len, data, &dst, &v);
  napi_set_named_property(env, obj, key, v);
}

/* ---- pool jobs ------------------------------------------------------------- */

static void job_release(struct pool_job *j) {
  if (j->release) j->release(j);
  else free(j);
}

static void job_execute(napi_env env, void *data) { /* pool thread */
  (void)env;
  struct pool_job *j = data;
  j->run(j);
}

static void job_complete(napi_env env, napi_status status, void *data) { /* JS thread */
  struct pool_job *j = data;
  napi_delete_async_work(env, j->work);
  if (status == napi_ok && j->err == 0) {
    napi_value v = j->value ? j->value(env, j) : NULL;
    napi_resolve_deferred(env, j->deferred, v ? v : undefined_value(env));
  } else {
    napi_value msg, code, err;
    napi_create_string_utf8(env, j->msg[0] ? j->msg : strerror(j->err ? j->err : EIO), NAPI_AUTO_LENGTH, &msg);
    const char *name = j->code ? j->code : strerrorname_np(j->err ? j->err : EIO);
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, msg, &err);
    napi_reject_deferred(env, j->deferred, err);
  }
  job_release(j);
}

napi_value queue_job(napi_env env, struct pool_job *j, const char *name) {
  napi_value promise, resource;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_async_work(env, NULL, resource, job_execute, job_complete, j, &j->work) != napi_ok) {
    job_release(j);
    napi_throw_error(env, NULL, "replfs native: cannot queue a job");
    return NULL;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    job_release(j);
    napi_throw_error(env, NULL, "replfs native: cannot queue a job");
    return NULL;
  }
  return promise;
}
