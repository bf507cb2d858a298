// The fault campaign's disks: each of the four places where a pair keeps data gets a small
// filesystem of its own (a tmpfs), so that a fault can fill exactly that place up (ENOSPC)
// and free it again: the primary's backing store (volume `one`), the primary's state
// directory, the secondary's copy of `one` and the secondary's state directory.
// The filler lives at the filesystem's root, beside the volume or state directory, never in
// it: it must not become part of what is replicated or compared.
import fs from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { scanBuffer } from '../../dist/journal/segments.js'
import { cursorFile, decodeCursor } from '../../dist/journal/applied-cursor.js'
import { readCheckpoint } from '../../dist/journal/checkpoint.js'
import { DirtySet } from '../../dist/capture/dirty-set.js'

export const PLACES = ['primary-backing', 'primary-state', 'secondary-copy', 'secondary-state']

/** Mounts the four filesystems and points the layout L (test/helpers/pair.mjs) at them. */
/** Takes every free byte of the filesystem at `root` (a file `filler` there; remove it to
 *  give the room back). Daemons write meanwhile, so a size read a moment ago may no longer
 *  fit: ask again and grow the filler. */
export function fillFilesystem (root) {
  const filler = join(root, 'filler')
  for (let t = 0; t < 20; t++) {
    const st = fs.statfsSync(root)
    const free = st.bavail * st.bsize
    if (free === 0) return
    const have = fs.existsSync(filler) ? fs.statSync(filler).size : 0
    try { execFileSync('fallocate', ['-l', String(have + free), filler], { stdio: 'ignore' }) } catch {}
  }
}

export function smallFilesystems (L, sizeMiB = 256) {
  const roots = {}
  const place = (name, dirName) => {
    const root = join(L.base, `fs-${name}`)
    fs.mkdirSync(root)
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, `replfs-faults-${name}`, root])
    roots[name] = root
    const dir = join(root, dirName)
    fs.mkdirSync(dir, { mode: 0o700 })
    return dir
  }
  L.p.one = place('primary-backing', 'one')
  L.pstate = place('primary-state', 'state')
  L.s.one = place('secondary-copy', 'one')
  L.sstate = place('secondary-state', 'state')
  return {
    fill (name) { fillFilesystem(roots[name]) },
    free (name) {
      fs.rmSync(join(roots[name], 'filler'), { force: true })
    },
    /** Copies what the filesystems hold into `dir` (a failed run is kept for a look). */
    keep (dir) {
      for (const [name, root] of Object.entries(roots)) {
        try { fs.cpSync(root, join(dir, `kept-${name}`), { recursive: true, filter: src => !fs.lstatSync(src).isSocket() }) } catch {}
      }
    },
    /** Lazy unmounts (a daemon killed late may still hold a file open). */
    close () {
      for (const root of Object.values(roots)) {
        try { execFileSync('umount', ['-l', root], { stdio: 'ignore' }) } catch {}
      }
    }
  }
}

/** Flips a seeded random bit of a seeded random byte of `file` (`size` bytes). */
function flipBit (file, size, r) {
  const at = Math.floor(r() * size)
  const bit = 1 << Math.floor(r() * 8)
  const fd = fs.openSync(file, 'r+')
  try {
    const b = Buffer.alloc(1)
    fs.readSync(fd, b, 0, 1, at)
    b[0] ^= bit
    fs.writeSync(fd, b, 0, 1, at)
  } finally { fs.closeSync(fd) }
  return { at, bit }
}

/** Flips one bit at a seeded random place of a random journal segment in a state
 *  directory (the daemon that owns it is stopped). Returns what was flipped. */
export function flipJournalBit (stateDir, r) {
  const segs = fs.readdirSync(stateDir).filter(n => n.endsWith('.seg')).sort()
    .map(n => ({ n, size: fs.statSync(join(stateDir, n)).size })).filter(s => s.size > 0)
  if (segs.length === 0) return null
  const seg = segs[Math.floor(r() * segs.length)]
  const { at, bit } = flipBit(join(stateDir, seg.n), seg.size, r)
  return `${seg.n} byte ${at} of ${seg.size} (bit ${bit})`
}

/** Flips one bit at a seeded random byte of the state directory's checkpoint (its daemon
 *  is stopped). Returns what was flipped. */
export function flipCheckpointBit (stateDir, r) {
  const file = join(stateDir, 'checkpoint.cbor')
  let size = 0
  try { size = fs.statSync(file).size } catch { return null }
  if (size === 0) return null
  const { at, bit } = flipBit(file, size, r)
  return `checkpoint.cbor byte ${at} of ${size} (bit ${bit})`
}

/** Truncates a seeded random journal segment at a random byte, or deletes one (`how`:
 *  'truncate' | 'delete'; its daemon is stopped). Resolves with what was done. */
export async function cutSegment (stateDir, r, how) {
  const segs = fs.readdirSync(stateDir).filter(n => n.endsWith('.seg')).sort()
    .map(n => ({ n, size: fs.statSync(join(stateDir, n)).size }))
  if (segs.length === 0) return null
  const seg = segs[Math.floor(r() * segs.length)]
  if (how === 'delete') {
    const i = segs.indexOf(seg)
    // Its last sequence: the one before the next segment's first (the newest one's end is unknown here).
    const point = await ackedPoint(stateDir)
    const trimmable = i < segs.length - 1 && Number.parseInt(segs[i + 1].n, 10) - 1 <= point
    const folded = !trimmable && inDirtySet(stateDir, seg.n, point)
    fs.rmSync(join(stateDir, seg.n))
    return `${seg.n} deleted (${seg.size} bytes, segment ${i + 1} of ${segs.length})${trimmable ? trimmableDelete : folded ? foldedDelete : ''}`
  }
  const to = Math.floor(r() * seg.size)
  // The zeros the native core writes ahead of a segment's last frame hold
  // nothing: a cut within them is no damage, and nothing has to report it.
  const onlyZeros = fs.readFileSync(join(stateDir, seg.n)).subarray(to).every(b => b === 0)
  fs.truncateSync(join(stateDir, seg.n), to)
  const unapplied = !onlyZeros && seg === segs[segs.length - 1] && onlyUnapplied(stateDir, seg.n)
  return `${seg.n} truncated from ${seg.size} to ${to} bytes (segment ${segs.indexOf(seg) + 1} of ${segs.length})${onlyZeros ? harmlessCut : unapplied ? unappliedCut : ''}`
}

/** Said of a cut that took only the zeros past the last frame. */
export const harmlessCut = ': only zeros past the last frame, no damage'
/** Said of a cut of a secondary's newest segment that left every frame through its applied
 *  cursor: it took only batches the copy had not applied, which the primary still holds (its
 *  journal lets go of a batch only once the secondary says it applied it) and sends again.
 *  The secondary cannot tell that from the end of what it received, and need not. */
export const unappliedCut = ': only batches past the applied cursor, which the primary holds and sends again'

/** Said of a deleted segment that held only acknowledged sequences: a trim would have
 *  deleted it (on a primary, once the backing store's next sync reached it), and nothing
 *  on this boot needs it. */
export const trimmableDelete = ': all of it at or below the trim point, which a trim deletes'

/** Said of a deleted segment of a primary that tracks changes (`--on-overflow track`): every
 *  record in it past the trim point is in the dirty set it saved, which is what it resyncs;
 *  the switch to tracking drops the segments once the set is saved (replicate/overflow.ts),
 *  and a kill between the two leaves them. */
export const foldedDelete = ': every record past the trim point is in the saved dirty set, which is resynced'

/** Whether a damage description is one that nothing has to report. */
export const harmless = what => what.endsWith(harmlessCut) || what.endsWith(unappliedCut) || what.endsWith(trimmableDelete) || what.endsWith(foldedDelete)

/** A primary's segment whose records past `from` are all in its saved dirty set: each one's
 *  marks present and its byte ranges inside the set's (a set that moved or dropped them since,
 *  a rename or an unlink, says no: reported as damage, which errs on the safe side). */
function inDirtySet (stateDir, segName, from) {
  if (isSecondary(stateDir)) return false
  let saved
  try { saved = DirtySet.load(stateDir) } catch { return false } // none saved loads empty; a damaged one says no
  if (saved.empty) return false
  const wanted = new DirtySet(join(stateDir, 'never-saved'))
  for (const { batch } of scanBuffer(fs.readFileSync(join(stateDir, segName)), segName).batches) {
    batch.records.forEach((r, k) => { if (batch.seq + k > from) wanted.add(r) })
  }
  for (const key of wanted.marks.keys()) if (!saved.marks.has(key)) return false
  return wanted.extents.toJSON().every(([vol, path, ranges]) => {
    const have = saved.extents.get(vol, path)
    return ranges.every(([start, end]) => have.some(h => h.start <= start && end <= h.end))
  })
}

/** The checkpoint's acknowledged sequence in `stateDir` (0 when it does not read): through it
 *  the journal holds nothing a restart on this boot needs (on a primary the backing store's
 *  page cache has it too; only a power loss would need what its disk lacks, and none is played
 *  with a deleted segment). */
async function ackedPoint (stateDir) {
  const cp = await readCheckpoint(stateDir).catch(() => null)
  return cp?.acked ?? 0
}

/** A secondary's state directory: it has an applied cursor. */
const isSecondary = stateDir => fs.existsSync(join(stateDir, cursorFile))

/** A secondary's state (it has an applied cursor) whose newest segment, as cut, still ends
 *  at or past the cursor. */
function onlyUnapplied (stateDir, segName) {
  let cursor
  try {
    const buf = fs.readFileSync(join(stateDir, cursorFile))
    cursor = decodeCursor(buf, buf.length)
  } catch { return false }
  if (!cursor || typeof cursor === 'string') return false
  const { batches } = scanBuffer(fs.readFileSync(join(stateDir, segName)), segName)
  const last = batches[batches.length - 1]
  const end = last ? last.batch.seq + last.batch.records.length - 1 : Number.parseInt(segName, 10) - 1
  return end >= cursor.applied
}

