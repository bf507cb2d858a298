/* addon_posix.c: calls Node's fs lacks, for the apply side and the backing
 * sync. The secondary makes its copy exact with them: nanosecond times on
 * the entry itself (Node's lutimes takes a double of seconds, ~µs), mknod
 * of sockets and devices (Node has none); the primary's backing sync needs
 * syncfs. Paths come confined by the volume code, which resolves a record's
 * parent directory with openBeneath: the kernel keeps it under the volume's
 * root, at any depth (an absolute path past PATH_MAX cannot be named).
 * Threads: the JS thread; syncfs runs on the pool. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "addon.h"

/* Throws an Error shaped like Node's fs errors: code (ENOENT...) and a negative errno. */
static napi_value throw_sys(napi_env env, const char *what, const char *path) {
  int e = errno;
  char msg[4200];
  snprintf(msg, sizeof msg, "%s, %s '%s'", strerror(e), what, path);
  napi_value m, err;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &err);
  const char *name = strerrorname_np(e);
  set_string(env, err, "code", name ? name : "EIO");
  set_number(env, err, "errno", -e);
  napi_throw(env, err);
  return NULL;
}

/* utimens(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec): the entry itself (no follow). */
napi_value js_utimens(napi_env env, napi_callback_info info) {
  ARGS(env, info, 5);
  char path[4097];
  if (argc < 5 || path_arg(env, argv[0], path, sizeof path) < 0) return NULL;
  int64_t t[4];
  for (int k = 0; k < 4; k++) napi_get_value_int64(env, argv[k + 1], &t[k]);
  struct timespec ts[2] = { { .tv_sec = t[0], .tv_nsec = t[1] }, { .tv_sec = t[2], .tv_nsec = t[3] } };
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) return throw_sys(env, "utimensat", path);
  return undefined_value(env);
}

/* mknod(path, mode, rdev): fifos, sockets, character and block devices. */
napi_value js_mknod(napi_env env, napi_callback_info info) {
  ARGS(env, info, 3);
  char path[4097];
  if (argc < 3 || path_arg(env, argv[0], path, sizeof path) < 0) return NULL;
  uint32_t mode = 0, rdev = 0;
  napi_get_value_uint32(env, argv[1], &mode);
  napi_get_value_uint32(env, argv[2], &rdev);
  if (mknodat(AT_FDCWD, path, mode, rdev) < 0) return throw_sys(env, "mknod", path);
  return undefined_value(env);
}

/* openBeneath(root, path) -> fd: an O_PATH descriptor of the directory that
 * the relative `path` names under the directory `root`. The kernel resolves
 * it (openat2 with RESOLVE_BENEATH) so that it cannot leave root's tree:
 * '..' above it, an absolute symlink, or a relative one leading out fail
 * with EXDEV; a relative symlink that stays beneath is followed, as realpath
 * would. Magic links (/proc) are never followed. A resolution raced by a
 * rename gives EAGAIN: tried again a few times before it is reported. The
 * root is opened by its path each time, so a root directory replaced by
 * another of the same name is the one used, as with a path. */
napi_value js_open_beneath(napi_env env, napi_callback_info info) {
  ARGS(env, info, 2);
  char root[4097], path[4097];
  if (argc < 2 || path_arg(env, argv[0], root, sizeof root) < 0 || path_arg(env, argv[1], path, sizeof path) < 0) return NULL;
  int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return throw_sys(env, "open", root);
  struct open_how how = {
    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
  };
  long fd = -1;
  for (int tries = 0; tries < 4; tries++) {
    fd = syscall(SYS_openat2, rootfd, path, &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN) break;
  }
  int e = errno;
  close(rootfd);
  errno = e;
  if (fd < 0) return throw_sys(env, "openat2", path);
  return make_number(env, (double)fd);
}

/* xattrs(path) -> [[name, Buffer], ...]: every extended attribute of the
 * entry itself (l* calls, never following a final symlink). For a path
 * given as bytes (a name that is not UTF-8), which the xattr binding the
 * rest of the code uses cannot take. An attribute that vanishes between the
 * list and the read is left out; none at all (or no support) is []. */
napi_value js_xattrs(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  char path[4097];
  if (argc < 1 || path_arg(env, argv[0], path, sizeof path) < 0) return NULL;
  napi_value out;
  CHECK(env, napi_create_array(env, &out));
  char *names = NULL, *val = NULL;
  ssize_t n = llistxattr(path, NULL, 0);
  if (n > 0 && (names = malloc((size_t)n)) != NULL) n = llistxattr(path, names, (size_t)n);
  uint32_t k = 0;
  for (ssize_t at = 0; names && n > 0 && at < n; at += (ssize_t)strlen(names + at) + 1) {
    const char *name = names + at;
    ssize_t vl = lgetxattr(path, name, NULL, 0);
    if (vl < 0) continue;
    free(val);
    val = malloc(vl > 0 ? (size_t)vl : 1);
    if (!val || (vl = lgetxattr(path, name, val, (size_t)vl)) < 0) continue;
    napi_value pair, jn, jv;
    void *copy = NULL;
    if (napi_create_array_with_length(env, 2, &pair) != napi_ok ||
        napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &jn) != napi_ok ||
        napi_create_buffer_copy(env, (size_t)vl, val, &copy, &jv) != napi_ok) break;
    napi_set_element(env, pair, 0, jn);
    napi_set_element(env, pair, 1, jv);
    napi_set_element(env, out, k++, pair);
  }
  free(names);
  free(val);
  return out;
}

/* xattrSet(path, name, value), xattrRemove(path, name): on the entry itself,
 * for paths given as bytes (see js_xattrs). Errors are Node-style (code). */
napi_value js_xattr_set(napi_env env, napi_callback_info info) {
  ARGS(env, info, 3);
  char path[4097], name[256];
  void *val = NULL;
  size_t vlen = 0;
  bool isbuf = false;
  if (argc < 3 || path_arg(env, argv[0], path, sizeof path) < 0 || path_arg(env, argv[1], name, sizeof name) < 0) return NULL;
  if (napi_is_buffer(env, argv[2], &isbuf) != napi_ok || !isbuf || napi_get_buffer_info(env, argv[2], &val, &vlen) != napi_ok) {
    return throw_errno(env, "EINVAL", EINVAL, "xattrSet: value must be a Buffer");
  }
  if (lsetxattr(path, name, vlen ? val : "", vlen, 0) < 0) return throw_sys(env, "lsetxattr", path);
  return undefined_value(env);
}

napi_value js_xattr_remove(napi_env env, napi_callback_info info) {
  ARGS(env, info, 2);
  char path[4097], name[256];
  if (argc < 2 || path_arg(env, argv[0], path, sizeof path) < 0 || path_arg(env, argv[1], name, sizeof name) < 0) return NULL;
  if (lremovexattr(path, name) < 0) return throw_sys(env, "lremovexattr", path);
  return undefined_value(env);
}

struct syncfs_job {
  struct pool_job job;
  char path[4097];
};

static void syncfs_run(struct pool_job *j) { /* pool thread */
  struct syncfs_job *s = (struct syncfs_job *)j;
  int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 || syncfs(fd) < 0) {
    j->err = errno;
    snprintf(j->msg, sizeof j->msg, "syncfs %.600s: %s", s->path, strerror(errno));
  }
  if (fd >= 0) close(fd);
}

/* syncfs(path) -> Promise: every dirty page of the filesystem holding path reaches the disk. */
napi_value js_syncfs(napi_env env, napi_callback_info info) {
  ARGS(env, info, 1);
  struct syncfs_job *s = calloc(1, sizeof *s);
  if (!s) return throw_errno(env, NULL, ENOMEM, "syncfs");
  if (argc < 1 || path_arg(env, argv[0], s->path, sizeof s->path) < 0) { free(s); return NULL; }
  s->job.run = syncfs_run;
  return queue_job(env, &s->job, "replfs-syncfs");
}
