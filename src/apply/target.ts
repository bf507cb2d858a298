// The secondary's side of apply: records onto its volumes, a flush that
// makes what was applied durable, and the manifest of its copy for an
// initial sync (every path, and a checksum per block of every file).
import fs from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { Record } from '../core/records.js'
import type { VolumeSpec } from '../core/config.js'
import { applyRecord, type Volumes } from './apply.js'
import { syncVolumes } from './redo.js'
import { checkRelPath } from '../volume/confine.js'
import { replError } from '../core/errors.js'
import { withPath } from '../volume/long-path.js'
import { nameFromBytes } from '../core/names.js'

export interface ManifestPart {
  vol: number
  entries: Array<{ path: string, type: 'file' | 'dir' | 'symlink' | 'other', size: number, sums: Uint8Array[] }>
}

export const manifestBlockBytes = 1024 * 1024
const entriesPerPart = 512
const filesSyncedAtOnce = 16

export class ApplyTarget {
  /** Files written since a flush covered them, a new entry per write: a
   *  flush runs beside the apply (receiver.ts, trims), and lets go only of
   *  the entries it saw, so a file written again during its fsync stays
   *  listed for the next one. */
  private readonly written = new Map<string, { vol: number, path: string }>()

  constructor (private readonly vols: Volumes, private readonly specs: VolumeSpec[]) {}

  /** What can be known of a record without touching the volumes: its
   *  volume exists, its paths are confined in form, an image record is one
   *  an image can hold, within its size. The receiver checks a whole batch
   *  so before storing or applying any of it (validate before dispatch);
   *  what only the copy can tell (a symlink leading out) fails in apply. */
  check (r: Record): void {
    const spec = this.specs[r.vol]
    if (!spec || !this.vols.has(r.vol)) throw replError('UNKNOWN_VOLUME', `${r.kind} names volume ${r.vol}, which this side does not have`)
    checkRelPath(r.path)
    if (r.kind === 'rename' || r.kind === 'link') checkRelPath(r.to)
    if (spec.kind !== 'image') return
    if (r.path !== '' || (r.kind !== 'write' && r.kind !== 'fsync' && r.kind !== 'state')) {
      throw replError('BAD_RECORD', `image volume ${spec.name}: ${r.kind} of ${JSON.stringify(r.path)} is not valid on an image`)
    }
    if (r.kind === 'write' && r.off + r.data.length > spec.size) {
      throw replError('IMAGE_BOUNDS', `image volume ${spec.name}: ${r.data.length} bytes at offset ${r.off} run past its end (${spec.size} bytes)`)
    }
  }

  /** An fsync record only lists its file: the receiver's next flush
   *  syncs it with every other file written (receiver.ts, barriers). */
  async apply (r: Record): Promise<void> {
    if (r.kind !== 'fsync') await applyRecord(this.vols, r)
    if (r.kind === 'write' || r.kind === 'truncate' || r.kind === 'create' || r.kind === 'fsync' || (r.kind === 'state' && r.type === 'file')) {
      this.written.set(`${r.vol}\0${r.path}`, { vol: r.vol, path: r.path })
    }
  }

  /** fsyncs every file written since the last flush, several at once
   *  (the file system commits them together; a bound, as each holds a
   *  descriptor). A file that fails stays listed and the failure is
   *  APPLY_BLOCKED (retried, never skipped: the journal must not let go
   *  of what is not on disk). */
  async flush (): Promise<void> {
    const files = [...this.written]
    let failed: string | null = null
    for (let i = 0; i < files.length; i += filesSyncedAtOnce) {
      await Promise.all(files.slice(i, i + filesSyncedAtOnce).map(async ([key, f]) => {
        const vol = this.vols.get(f.vol)
        try {
          await vol?.fsync(f.path)
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code
          if (!goneSince(code)) { failed ??= `volume ${vol?.spec.name} (${f.vol}): fsync ${JSON.stringify(f.path)} failed: ${code ?? String(err)}`; return }
        }
        if (this.written.get(key) === f) this.written.delete(key)
      }))
    }
    if (failed !== null) throw replError('APPLY_BLOCKED', failed, 'fix the copy\'s storage on the secondary; applying resumes by itself')
  }

  /** Everything the volumes' filesystems hold, on disk (syncfs): names
   *  and directories too, which a flush of the files written leaves to the
   *  filesystem's own commit. */
  async syncAll (): Promise<void> {
    const files = [...this.written]
    await syncVolumes(this.specs)
    for (const [key, f] of files) if (this.written.get(key) === f) this.written.delete(key)
  }

  async * manifest (): AsyncGenerator<ManifestPart> {
    for (const v of this.specs) {
      let part: ManifestPart = { vol: v.num, entries: [] }
      for await (const e of v.kind === 'image' ? imageEntry(v) : walk(v.path, '')) {
        part.entries.push(e)
        if (part.entries.length >= entriesPerPart) {
          yield part
          part = { vol: v.num, entries: [] }
        }
      }
      if (part.entries.length > 0) yield part
    }
  }
}

/** fsync errors that say the name no longer leads to the file written (removed, or
 *  replaced by a symlink, a fifo or a device, or its parent by a non-directory): there is
 *  nothing of it to sync under that name, and retrying would block the copy for good. */
function goneSince (code: string | undefined): boolean {
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'PATH_ESCAPE' || code === 'EINVAL'
}

async function * imageEntry (v: VolumeSpec): AsyncGenerator<ManifestPart['entries'][number]> {
  yield { path: '', type: 'file', size: v.size, sums: await blockSums(v.path) }
}

/** The copy's tree, at any depth (withPath: its paths can pass PATH_MAX). */
async function * walk (root: string, rel: string): AsyncGenerator<ManifestPart['entries'][number]> {
  const abs = rel === '' ? root : join(root, rel)
  // Names as bytes, escaped where not UTF-8 (core/names.ts).
  for (const name of (await withPath(abs, d => fs.promises.readdir(d, { encoding: 'buffer' }))).map(nameFromBytes).sort()) {
    const p = rel === '' ? name : `${rel}/${name}`
    const st = await withPath(join(root, p), f => fs.promises.lstat(f))
    if (st.isDirectory()) {
      yield { path: p, type: 'dir', size: 0, sums: [] }
      yield * walk(root, p)
    } else if (st.isFile()) {
      yield { path: p, type: 'file', size: st.size, sums: await blockSums(join(root, p)) }
    } else {
      yield { path: p, type: st.isSymbolicLink() ? 'symlink' : 'other', size: 0, sums: [] }
    }
  }
}

/** Truncated SHA-256 per block (same function as the primary's resync). */
async function blockSums (file: string): Promise<Uint8Array[]> {
  const fh = await withPath(file, f => fs.promises.open(f, 'r'))
  try {
    const sums: Uint8Array[] = []
    const buf = Buffer.allocUnsafe(manifestBlockBytes)
    for (let off = 0; ; off += manifestBlockBytes) {
      const { bytesRead } = await fh.read(buf, 0, manifestBlockBytes, off)
      if (bytesRead === 0) break
      sums.push(createHash('sha256').update(buf.subarray(0, bytesRead)).digest().subarray(0, 16))
    }
    return sums
  } finally {
    await fh.close()
  }
}
