/* napi_util.h: what the addon's files share: argument unpacking, value
 * helpers, and jobs run on libuv's pool that settle a promise.
 * Threads: everything here runs on the JS thread, except a job's `run`,
 * which runs on the pool and touches no JS value. */
#ifndef REPLFS_NAPI_UTIL_H
#define REPLFS_NAPI_UTIL_H

#define NAPI_VERSION 8
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* A failed N-API call throws and returns NULL from the calling function. */
#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), NULL, "replfs native: " #call " failed");   \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

/* Declares argv[n] and fills it with the call's arguments (missing: undefined). */
#define ARGS(env, info, n)                                                  \
  size_t argc = (n);                                                        \
  napi_value argv[(n)];                                                     \
  CHECK((env), napi_get_cb_info((env), (info), &argc, argv, NULL, NULL))

napi_value undefined_value(napi_env env);
/* Throws code: "msg (strerror)". Returns NULL for `return throw_errno(...)`. */
napi_value throw_errno(napi_env env, const char *code, int err, const char *msg);

/* Properties of an options object; absent, undefined or null gives the default. */
int get_prop(napi_env env, napi_value obj, const char *key, napi_value *out);
char *get_string(napi_env env, napi_value obj, const char *key);   /* malloc'd, NULL if absent */
double get_number(napi_env env, napi_value obj, const char *key, double dflt);
int get_bool(napi_env env, napi_value obj, const char *key, int dflt);
/* Sequences and byte counts travel as JS numbers: exact up to 2^53, as on the TS side. */
uint64_t arg_u64(napi_env env, napi_value v);
/* A string argument that fits buf (a path), or -1 after throwing. */
int path_arg(napi_env env, napi_value v, char *buf, size_t size);

napi_value make_number(napi_env env, double d);
void set_number(napi_env env, napi_value obj, const char *key, double d);
void set_bool(napi_env env, napi_value obj, const char *key, int b);
void set_string(napi_env env, napi_value obj, const char *key, const char *s);
void set_buffer_copy(napi_env env, napi_value obj, const char *key, const void *data, size_t len);

/* A blocking call run on the pool that settles a promise: embed it first in
 * a struct of your own, set run (pool thread) and optionally value (JS
 * thread: what the promise resolves to; NULL: undefined) and release (frees
 * the struct; NULL: free()). `run` reports failure by setting err (an
 * errno) and msg; the promise is then rejected with an Error whose code is
 * `code` ("EIO"-like if NULL). */
struct pool_job {
  napi_async_work work;
  napi_deferred deferred;
  void (*run)(struct pool_job *j);
  napi_value (*value)(napi_env env, struct pool_job *j);
  void (*release)(struct pool_job *j);
  const char *code;
  int err;
  char msg[700];
};
/* Queues j; returns the promise (NULL after throwing, j released). */
napi_value queue_job(napi_env env, struct pool_job *j, const char *name);

#endif
