/* addon.h: the exported functions of the addon's files (addon.c registers
 * them all). JS thread. */
#ifndef REPLFS_ADDON_H
#define REPLFS_ADDON_H

#include "napi_util.h"

struct capture;
/* The capture wrapped by a value openCapture returned, or NULL after throwing. */
struct capture *capture_of(napi_env env, napi_value v);

/* addon_session.c */
napi_value js_mount(napi_env env, napi_callback_info info);
napi_value js_unmount(napi_env env, napi_callback_info info);
napi_value js_stats(napi_env env, napi_callback_info info);

/* addon_posix.c */
napi_value js_utimens(napi_env env, napi_callback_info info);
napi_value js_mknod(napi_env env, napi_callback_info info);
napi_value js_syncfs(napi_env env, napi_callback_info info);
napi_value js_open_beneath(napi_env env, napi_callback_info info);
napi_value js_xattrs(napi_env env, napi_callback_info info);
napi_value js_xattr_set(napi_env env, napi_callback_info info);
napi_value js_xattr_remove(napi_env env, napi_callback_info info);

#endif
