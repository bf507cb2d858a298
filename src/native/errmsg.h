/* errmsg.h: one way for the core's setup paths to fail with a message.
 * Any thread; the buffer is the caller's. */
#ifndef REPLFS_ERRMSG_H
#define REPLFS_ERRMSG_H

#include <stddef.h>

/* Formats the message into err (if given) and returns rc (a -errno), so a
 * failure reads `return fail(err, errlen, -ENOENT, "no %s", what);`. */
int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
