// The native core (src/native/, a Node addon of our own): loading it and the
// shape of what it exports. The core serves FUSE on its own threads and
// appends the journal there; JS only hears from it through `onWake`, a
// coalesced call (never one per operation), and then asks `poll`.
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { replError } from '../core/errors.js'

/** An open journal appender (opaque). */
export type CaptureHandle = { readonly __capture: unique symbol }
/** A mounted FUSE session (opaque). */
export type SessionHandle = { readonly __session: unique symbol }

export interface CaptureOptions {
  stateDir: string
  group: string
  /** The journal keeps an end mark for this boot (journal/end-mark.ts) */
  bootId?: string
  nextSeq: number
  lastHash: Buffer
  segmentBytes: number
  syncMode: boolean
  syncTimeoutMs: number
  /** Where the journal's last batch starts: only it is verified (else the newest segments whole) */
  verifyFrom?: { segment: number, offset: number }
  /** Finished segments leave the page cache once synced (no peer: nobody reads them back) */
  dropFinishedSegments?: boolean
}

/** What the core reports when polled. */
export interface CaptureStatus {
  nextSeq: number
  lastHash: Buffer
  durableSeq: number
  segmentFirst: number // the segment being appended to (0: none yet)
  segmentBytes: number
  batches: number
  records: number
  dataBytes: number
  journalBytesWritten: number
  syncFallbacks: number // times sync mode fell back to async (timeouts)
  syncWaiting: number
  syncActive: boolean
  track: boolean
  trackedRecords: number
  error?: string
  errno?: number
}

export interface NativeVolume { num: number, name: string, kind: 'dir' | 'image', path: string, size: number }

export interface SessionOptions {
  mountpoint: string
  fsname: string
  readOnly: boolean
  single: boolean
  volumes: NativeVolume[]
  threads?: number
  /** FUSE over io_uring (Linux 6.14+, fuse.enable_uring) instead of /dev/fuse */
  ioUring?: boolean
  /** microseconds a lone reader polls for the next request after a reply (0: off) */
  pollUs?: number
  maxWrite?: number
  attrTimeout?: number
  entryTimeout?: number
  debug?: boolean
}

export interface SessionStats { requests: number, writes: number, writeBytes: number, reads: number, readBytes: number, errors: number }

export interface NativeCore {
  openCapture (o: CaptureOptions, onWake: () => void): CaptureHandle
  closeCapture (c: CaptureHandle): void
  poll (c: CaptureHandle): CaptureStatus
  /** Resolves holding the group lock: FUSE mutations wait until `unlock`. */
  lock (c: CaptureHandle): Promise<void>
  unlock (c: CaptureHandle): void
  /** Appends records (one CBOR array) as one batch; the caller holds the lock. Returns the last sequence. */
  appendEncoded (c: CaptureHandle, records: Buffer, count: number): number
  /** The journal's chain hash of a batch payload (XXH3-128, 16 bytes). */
  chainHash (payload: Uint8Array): Buffer
  /** The standard CRC-32C of bytes, continuing from `prev` (ISA-L). */
  crc32c (bytes: Uint8Array, prev?: number): number
  /** Large buffers from the heap and freed ones kept for reuse (glibc's mallopt), for the daemon's life. */
  keepFreedMemory (): void
  ack (c: CaptureHandle, written: number, flushed: number): void
  /** Block policy: FUSE mutations wait once the journal has written this many bytes since open (0: no bound). */
  setCredit (c: CaptureHandle, journalBytesWritten: number): void
  /** owed: a restate is owed (changes refused with ENOSPC until it is cleared; the core sets it itself when an append fails). */
  setFlag (c: CaptureHandle, flag: 'sync' | 'gate' | 'track' | 'owed' | 'fsyncBacking', on: boolean): void
  /** Sync writers wait until the secondary is within `records` of them (0: has them). */
  setSyncWindow (c: CaptureHandle, records: number): void
  takeTracked (c: CaptureHandle): { records: Buffer, count: number, token: number } | null
  releaseTracked (c: CaptureHandle, token: number): void
  /** Drops every segment and continues history at `seq` after `prev`; the caller holds the lock. */
  rebase (c: CaptureHandle, seq: number, prev: Buffer): void
  mount (o: SessionOptions, capture: CaptureHandle | null): Promise<SessionHandle>
  unmount (s: SessionHandle): Promise<void>
  stats (s: SessionHandle): SessionStats
  /** utimensat(AT_SYMLINK_NOFOLLOW) with nanoseconds (the apply side). */
  utimens (path: string | Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void
  /** mknod: fifos, sockets, devices (Node has none). */
  mknod (path: string | Buffer, mode: number, rdev: number): void
  /** An O_PATH fd of the directory `path` (relative, '.' for root itself)
   *  names under the directory `root`, which the kernel keeps beneath it
   *  (openat2 RESOLVE_BENEATH: EXDEV if a symlink or '..' leads out). The
   *  caller closes it. */
  openBeneath (root: string, path: string | Buffer): number
  /** Every extended attribute of the entry itself (l* calls): name, value. */
  xattrs (path: string | Buffer): Array<[string, Buffer]>
  /** lsetxattr / lremovexattr (for paths given as bytes). */
  xattrSet (path: string | Buffer, name: string, value: Buffer): void
  xattrRemove (path: string | Buffer, name: string): void
  /** syncfs(2) of the filesystem holding `path`, on the thread pool. */
  syncfs (path: string): Promise<void>
}

const here = dirname(fileURLToPath(import.meta.url))
/** dist/fs → the addon built under src/native/build (REPLFS_NATIVE overrides: the ASan build). */
export function addonPath (): string {
  return process.env.REPLFS_NATIVE ?? join(here, '..', '..', 'src', 'native', 'build', 'Release', 'replfs_core.node')
}

let loaded: NativeCore | null = null

export function nativeCore (): NativeCore {
  if (loaded) return loaded
  const path = addonPath()
  if (!existsSync(path)) throw replError('NATIVE_MISSING', `the native core is not built (${path})`, 'run make build')
  loaded = createRequire(import.meta.url)(path) as NativeCore
  return loaded
}
