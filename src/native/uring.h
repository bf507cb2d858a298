/* uring.h: the --io-uring transport (uring.c): FUSE requests served from
 * io_uring ring entries instead of read(2)/writev(2) on /dev/fuse. The op
 * table, capture and journal do not change; only where a request comes from
 * and where its reply goes. */
#ifndef REPLFS_URING_H
#define REPLFS_URING_H

#include <stddef.h>
#include <sys/uio.h>
#include <time.h>

struct session;
struct req;

/* Starting thread, before mount(2): fuse.enable_uring must be Y (sets it
 * when it may); 0 or -errno with a message that says how. */
int uring_enable_param(char *err, size_t errlen);
/* Starting thread, after INIT negotiated FUSE_OVER_IO_URING: cfg.threads
 * threads (at least 1) per queue (a queue per possible CPU), each with its
 * own io_uring and entry; returns once every thread registered its entry
 * (the kernel switches to the ring once every queue has one) or with -errno
 * and a message. */
int uring_start(struct session *s, char *err, size_t errlen);
/* Starting thread: joins the ring threads (they end when the unmount or an
 * abort fails their entries with ENOTCONN); with a deadline returns how many
 * are still running; NULL (after an abort) also tells them to end within
 * about a second even with entries still live, and waits. */
int uring_join(struct session *s, const struct timespec *deadline);
void uring_free(struct session *s);

/* FUSE ring thread (send_reply in session.c): writes the reply into the
 * request's ring entry; the thread commits it when the op returns. */
void uring_put_reply(struct req *r, int err, const struct iovec *payload, int n);

#endif
