/* fuse_uring_abi.h: the few pieces of the kernel's FUSE-over-io_uring ABI
 * (FUSE 7.42, Linux 6.14+) that <linux/fuse.h> 7.38 here lacks. Copied by
 * meaning from the kernel's include/uapi/linux/fuse.h; layouts checked by
 * the static asserts below. No code, no thread. */
#ifndef REPLFS_FUSE_URING_ABI_H
#define REPLFS_FUSE_URING_ABI_H

#include <stdint.h>

#define FUSE_URING_MINOR 42                       /* the minor that brought the ring */
#define FUSE_OVER_IO_URING_FLAG2 (1u << (41 - 32)) /* FUSE_OVER_IO_URING (1ULL << 41) in flags2 */

#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128

/* The trailer of each entry's header buffer: written by the kernel with a
 * request (commit_id, payload_sz of the request's payload), by us with the
 * reply (payload_sz of the reply's payload). */
struct fuse_uring_ent_in_out {
  uint64_t flags;
  uint64_t commit_id;                             /* the request's unique */
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};

/* iov[0] of a REGISTER: fuse_in_header in, fuse_out_header out; the per-op
 * header (the request's first argument) in op_in; then the trailer. */
struct fuse_uring_req_header {
  char in_out[FUSE_URING_IN_OUT_HEADER_SZ];
  char op_in[FUSE_URING_OP_IN_OUT_SZ];
  struct fuse_uring_ent_in_out ring_ent_in_out;
};

/* sqe->cmd_op of an IORING_OP_URING_CMD on the /dev/fuse fd */
enum {
  FUSE_IO_URING_CMD_REGISTER = 1,                 /* give an entry, fetch a request into it */
  FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2,         /* the reply in the entry; fetch the next */
};

/* In the SQE's 80-byte command area (needs IORING_SETUP_SQE128). */
struct fuse_uring_cmd_req {
  uint64_t flags;
  uint64_t commit_id;                             /* 0 for REGISTER */
  uint16_t qid;                                   /* queue = CPU number */
  uint8_t padding[6];
};

_Static_assert(sizeof(struct fuse_uring_ent_in_out) == 32, "fuse_uring_ent_in_out is 32 bytes");
_Static_assert(sizeof(struct fuse_uring_req_header) == 288, "fuse_uring_req_header is 288 bytes");
_Static_assert(sizeof(struct fuse_uring_cmd_req) == 24, "fuse_uring_cmd_req is 24 bytes");

#endif
