// The record: one captured mutation. A union on `kind`; every switch over it
// ends in a `never` check so adding a kind is a compile error everywhere it
// matters (capture, codec validation, apply, inspect).
//
// Paths are volume-relative POSIX paths without a leading slash ('' is the
// volume root; an image volume's records always use ''). `vol` is the
// volume's number in its group.

export type Seq = number // 64-bit on disk (CBOR uint); exact in JS up to 2^53

export type Record =
  | { kind: 'write', vol: number, path: string, off: number, data: Uint8Array }
  | { kind: 'truncate', vol: number, path: string, size: number }
  | { kind: 'create', vol: number, path: string, mode: number }
  | { kind: 'mkdir', vol: number, path: string, mode: number }
  | { kind: 'mknod', vol: number, path: string, mode: number, rdev: number }
  | { kind: 'unlink', vol: number, path: string }
  | { kind: 'rmdir', vol: number, path: string }
  | { kind: 'rename', vol: number, path: string, to: string }
  | { kind: 'link', vol: number, path: string, to: string } // new name `to` for existing `path`
  | { kind: 'symlink', vol: number, path: string, target: string }
  | { kind: 'chmod', vol: number, path: string, mode: number }
  | { kind: 'chown', vol: number, path: string, uid: number, gid: number }
  // atimeNs/mtimeNs: the sub-second nanoseconds, when the primary knew them
  // (the native core does); the whole time is then exact, not just to the ms.
  | { kind: 'utimens', vol: number, path: string, atimeMs: number, mtimeMs: number, atimeNs?: number, mtimeNs?: number }
  | { kind: 'setxattr', vol: number, path: string, name: string, value: Uint8Array, flags: number }
  | { kind: 'removexattr', vol: number, path: string, name: string }
  | { kind: 'fsync', vol: number, path: string } // barrier: apply syncs what it has
  // Recovery/resync: the current state of one path on the primary, to be made
  // so on a copy. Written after an unclean stop for paths that had an
  // operation in flight, and by resync. A 'file' state is followed by 'write'
  // records for its content when `whole` is set, the copy's file is rebuilt.
  | { kind: 'state', vol: number, path: string, type: 'absent' | 'file' | 'dir' | 'symlink', mode: number, uid: number, gid: number, size: number, target: string, whole: boolean }

export type RecordKind = Record['kind']

/** A batch as stored in a journal frame and sent on the wire. Record i has
 *  sequence `seq + i`. `prev` is the chain hash of the previous batch (zeros
 *  for the first batch of a journal's history). */
export interface Batch {
  v: number
  group: string
  seq: Seq
  prev: Uint8Array
  ts: number // ms since epoch when the batch closed
  sync: boolean // a writer waits on the secondary's ack for this batch
  records: Record[]
}

/** Bytes of payload a record carries (for batch sizing and lag figures). */
export function recordBytes (r: Record): number {
  switch (r.kind) {
    case 'write': return r.data.length + r.path.length + 32
    case 'setxattr': return r.value.length + r.path.length + r.name.length + 32
    case 'rename': case 'link': return r.path.length + r.to.length + 32
    case 'symlink': return r.path.length + r.target.length + 32
    case 'state': return r.path.length + r.target.length + 64
    case 'truncate': case 'create': case 'mkdir': case 'mknod': case 'unlink': case 'rmdir':
    case 'chmod': case 'chown': case 'utimens': case 'removexattr': case 'fsync':
      return r.path.length + 32
    default: return unreachable(r)
  }
}

export function unreachable (x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`)
}
