// Every bound in one place (tigerbeetle's constants.zig in spirit): each with
// its reason, units last. Relations between them are asserted at load, so a
// bad edit fails at start-up rather than as a corrupt frame later.
import { assert } from './errors.js'

/** Journal/wire format version: written in every batch and hello (2: the
 *  chain hash is XXH3-128, was SHA-256 truncated; journal.h J_FORMAT_VERSION). */
export const formatVersion = 2

/** libfuse 2 with big_writes hands us at most this much per write request. */
export const fuseWriteBytesMax = 128 * 1024

/** Largest single record payload (a write extent, an xattr value, a resync chunk). */
export const recordDataBytesMax = 1024 * 1024

/** A batch closes once its records' data reach this (group commit size trigger). */
export const batchBytesTarget = 1024 * 1024

/** Records per batch: bounds decode work for one frame from a peer. */
export const batchRecordsMax = 4096

/** Frame payload bound, checked before buffering a frame from disk or the wire.
 *  A full batch plus per-record CBOR overhead (keys, paths) fits well inside. */
export const frameBytesMax = 16 * 1024 * 1024

/** Frame payload bound on a connection before its peer authenticated: a
 *  hello (64 volumes with names) and an auth message fit many times over;
 *  anything bigger from a stranger is refused before it is buffered. */
export const preAuthFrameBytesMax = 64 * 1024

/** An unauthenticated connection is dropped after this: a stranger cannot
 *  hold one of the few slots below for long. */
export const preAuthDeadlineMs = 10_000

/** Connections not yet authenticated at once; more are closed with an
 *  error. With the frame bound: at most 16 x 64 KiB buffered for strangers. */
export const preAuthConnectionsMax = 16

/** Frame header: u32 length | u32 crc32c. */
export const frameHeaderBytes = 8

/** Longest path accepted in a record (Linux PATH_MAX). */
export const pathBytesMax = 4096

/** Longest single name component (Linux NAME_MAX). */
export const nameBytesMax = 255

/** Linux XATTR_SIZE_MAX. */
export const xattrValueBytesMax = 64 * 1024

/** Volumes per group: volume numbers are small integers in every record. */
export const volumesMax = 64

/** Segment files rotate once they pass this size. */
export const segmentBytesDefault = 64 * 1024 * 1024

/** Bytes of the SHA-256 kept as the batch chain hash. 128 bits: collisions are
 *  not a concern for detecting divergence between two honest journals. */
export const chainHashBytes = 16

/** A primary keeps this much of its state directory's filesystem in a file
 *  of its own (journal/reserve.ts): when the journal took every other byte,
 *  the checkpoint that lets acknowledged segments be trimmed can still be
 *  written (a new temporary file: a page or a block, twice that with the
 *  backing point). Trimming is the only way a full directory gets room back. */
export const stateReserveBytes = 64 * 1024

/** Extent-map granularity for persisted "hot" regions of files (activity log). */
export const activityRegionBytes = 1024 * 1024

/** Activity log is compacted when it grows past this. */
export const activityLogBytesMax = 4 * 1024 * 1024

assert(batchBytesTarget >= fuseWriteBytesMax, 'a batch must hold at least one FUSE write')
assert(recordDataBytesMax >= fuseWriteBytesMax, 'a record must hold one FUSE write')
assert(frameBytesMax >= batchBytesTarget + recordDataBytesMax + batchRecordsMax * (pathBytesMax / 4),
  'a frame must hold a full batch: target + one overshooting record + per-record overhead')
assert(xattrValueBytesMax <= recordDataBytesMax, 'xattr values are records')
assert(preAuthFrameBytesMax <= frameBytesMax, 'the pre-authentication bound is the smaller one')
