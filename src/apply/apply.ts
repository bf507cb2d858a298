// Apply records to volumes, in order, with the semantics of the primary's
// operation (a passthrough of POSIX calls). The secondary applies a batch
// after it is in its journal and records the applied sequence after, so a
// crash between the two re-applies a batch that may be partly applied
// already: each record's apply tolerates meeting its own effect (mkdir of
// an existing directory, unlink of a missing name, ...). It does not
// tolerate anything else: a write to a missing file is an error, because a
// copy that silently skipped it would diverge.
import { constants as fsc } from 'node:fs'
import type { Batch, Record, Seq } from '../core/records.js'
import { unreachable } from '../core/records.js'
import { ReplError, replError, type ErrorCode } from '../core/errors.js'
import type { Volume } from '../volume/volume.js'

export type Volumes = ReadonlyMap<number, Volume>

/** Errors that already say what is wrong with the record; others (errno
 *  from the backing store) become APPLY_FAILED naming the record. */
const recordErrors: readonly ErrorCode[] = ['PATH_ESCAPE', 'UNKNOWN_VOLUME', 'IMAGE_BOUNDS', 'BAD_RECORD']

export async function applyRecord (vols: Volumes, r: Record): Promise<void> {
  const vol = vols.get(r.vol)
  if (!vol) {
    throw replError('UNKNOWN_VOLUME', `${r.kind} ${JSON.stringify(r.path)} names volume ${r.vol}, which this side does not have`,
      'both sides must be started with the same volumes')
  }
  try {
    await dispatch(vol, r)
  } catch (err) {
    throw failure(vol, r, err)
  }
}

export interface ApplyRange {
  from?: Seq // first sequence to apply (default: the batch's first)
  to?: Seq // last sequence to apply (default: the batch's last)
}

/** Applies a batch's records in order (record i has sequence seq + i),
 *  optionally only those inside `range`. Stops at the first failure, whose
 *  message then names the sequence. Returns how many records it applied. */
export async function applyBatch (vols: Volumes, batch: Batch, range: ApplyRange = {}): Promise<number> {
  let n = 0
  for (let i = 0; i < batch.records.length; i++) {
    const seq = batch.seq + i
    if ((range.from !== undefined && seq < range.from) || (range.to !== undefined && seq > range.to)) continue
    try {
      await applyRecord(vols, batch.records[i])
    } catch (err) {
      const e = err as ReplError
      throw replError(e.code, `sequence ${seq}: ${e.message}`, e.hint)
    }
    n++
  }
  return n
}

/** Errnos that say the copy's storage cannot take the record now (full,
 *  failing, or not writable by the daemon), not that the record is wrong:
 *  the same record applies once the operator fixes the disk. An apply that
 *  meets one is retried, never skipped (receiver.ts). */
const blockedErrnos: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EACCES', 'EROFS', 'ENOMEM', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY'])

export function isBlockedErrno (code: string | undefined): boolean {
  return code !== undefined && blockedErrnos.has(code)
}

function failure (vol: Volume, r: Record, err: unknown): Error {
  if (err instanceof ReplError && recordErrors.includes(err.code)) return err
  const e = err as NodeJS.ErrnoException
  const code = typeof e.code === 'string' ? e.code : 'EIO'
  const msg = e.message?.startsWith(code) ? e.message : `${code}: ${e.message ?? String(err)}`
  const what = r.kind === 'rename' || r.kind === 'link' ? `${JSON.stringify(r.path)} -> ${JSON.stringify(r.to)}` : JSON.stringify(r.path)
  if (isBlockedErrno(code)) {
    return replError('APPLY_BLOCKED', `volume ${vol.spec.name} (${vol.spec.num}): ${r.kind} ${what} failed: ${msg}`,
      'free space or fix the copy\'s storage on the secondary; applying resumes by itself')
  }
  return replError('APPLY_FAILED', `volume ${vol.spec.name} (${vol.spec.num}): ${r.kind} ${what} failed: ${msg}`)
}

/** Runs `op`; an error with one of `codes` is fine if `already()` confirms
 *  the effect the operation wanted is in place (replay met its own work). */
async function tolerate (op: Promise<void>, codes: readonly string[], already: () => Promise<boolean>): Promise<void> {
  try {
    await op
  } catch (err) {
    if (codes.includes((err as NodeJS.ErrnoException).code ?? '') && await already()) return
    throw err
  }
}

const yes = async (): Promise<boolean> => true

async function dispatch (v: Volume, r: Record): Promise<void> {
  switch (r.kind) {
    case 'write': return v.write(r.path, r.off, r.data)
    case 'truncate': return v.truncate(r.path, r.size)
    case 'create':
      // Already a regular file: leave its content (later records of this
      // batch rewrite it), set the mode the create asked for.
      return tolerate(v.create(r.path, r.mode), ['EEXIST'], async () => {
        if (!(await v.lstat(r.path))?.isFile()) return false
        await v.chmod(r.path, r.mode)
        return true
      })
    case 'mkdir':
      return tolerate(v.mkdir(r.path, r.mode), ['EEXIST'], async () => {
        if (!(await v.lstat(r.path))?.isDirectory()) return false
        await v.chmod(r.path, r.mode)
        return true
      })
    case 'mknod':
      return tolerate(v.mknod(r.path, r.mode, r.rdev), ['EEXIST'], async () => {
        const st = await v.lstat(r.path)
        const type = r.mode & fsc.S_IFMT
        if (!st || (type !== 0 && (st.mode & fsc.S_IFMT) !== type) || (type === 0 && !st.isFile())) return false
        await v.chmod(r.path, r.mode)
        return true
      })
    case 'unlink': return tolerate(v.unlink(r.path), ['ENOENT'], yes)
    case 'rmdir': return tolerate(v.rmdir(r.path), ['ENOENT'], yes)
    case 'rename':
      return tolerate(v.rename(r.path, r.to), ['ENOENT'], () => movedAlready(v, r.path, r.to))
    case 'link':
      return tolerate(v.link(r.path, r.to), ['EEXIST', 'ENOENT'], async () => {
        const [a, b] = await Promise.all([v.lstat(r.path), v.lstat(r.to)])
        if (a && b) return a.ino === b.ino && a.dev === b.dev
        return !a && !!b // source gone (a later unlink of this batch), new name in place
      })
    case 'symlink':
      return tolerate(v.symlink(r.path, r.target), ['EEXIST'], async () =>
        !!(await v.lstat(r.path))?.isSymbolicLink() && await v.readlink(r.path) === r.target)
    case 'chmod': return v.chmod(r.path, r.mode)
    case 'chown': return v.chown(r.path, r.uid, r.gid)
    case 'utimens': return v.utimens(r.path, r.atimeMs, r.mtimeMs, r.atimeNs !== undefined && r.mtimeNs !== undefined ? [r.atimeNs, r.mtimeNs] : undefined)
    // Flags (XATTR_CREATE/REPLACE) are not re-checked: they held on the
    // primary, and re-checking them would fail an idempotent replay.
    case 'setxattr': return v.setxattr(r.path, r.name, r.value)
    case 'removexattr': return tolerate(v.removexattr(r.path, r.name), ['ENODATA'], yes)
    // A barrier: the file must be durable before later records apply. A
    // file already gone was removed by a later record of a replayed batch.
    case 'fsync': return tolerate(v.fsync(r.path), ['ENOENT'], yes)
    // Absent is already true when the parent is gone too (opening the
    // parent fails ENOENT): after an unclean stop the primary restates hot
    // paths of a subtree its journal already removed on this side.
    case 'state': return r.type === 'absent' ? tolerate(v.state(r.path, r), ['ENOENT'], async () => !(await v.lstat(r.path).catch(() => null))) : v.state(r.path, r)
    default: return unreachable(r)
  }
}

async function movedAlready (v: Volume, from: string, to: string): Promise<boolean> {
  const [a, b] = await Promise.all([v.lstat(from), v.lstat(to)])
  return !a && !!b
}
