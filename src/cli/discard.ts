// Writes a side gives up are saved before they are rolled back, never
// lost: STATE/discarded-TIME/ holds their journal (journal/: its segments,
// `replfs journal inspect` reads them), this side's copies of the files
// they touched (files/: whole files of directory volumes, the written
// ranges of image volumes as START-END.bin) and report.json. Used by
// `resolve --discard-local` and by a demoted side's failback.
import fs, { promises as fsp } from 'node:fs'
import { dirname, join } from 'node:path'
import type { GroupSpec } from '../core/config.js'
import type { Seq } from '../core/records.js'
import type { Journal } from '../journal/journal.js'
import { segmentSuffix } from '../journal/segments.js'
import { collectSince, describeReport, type ChangedPath, type ChangeReport } from '../replicate/divergence.js'
import { unheldParts } from '../replicate/restated.js'

export interface Discarded { point: Seq, savedIn: string, journalDir: string, filesDir: string, rolledBack: ChangeReport, changed: ChangedPath[] | null }

/** Saves what `journal` holds past `point`: the report (without the
 *  restated parts the peer holds as they are, `held`) and the files it names; the journal's segments
 *  are copied when `copySegments` (else the caller moves them). */
export async function saveDiscarded (state: string, spec: GroupSpec, journal: Journal, point: Seq, copySegments: boolean, held?: ReadonlySet<string>): Promise<Discarded> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const savedIn = join(state, `discarded-${stamp}`)
  const journalDir = join(savedIn, 'journal')
  const filesDir = join(savedIn, 'files')
  const c = await collectSince(journal, point + 1, journal.lastSeq, spec.volumes.map(v => v.name), held && ((r, seq) => unheldParts(r, seq, held)))
  await fsp.mkdir(filesDir, { recursive: true, mode: 0o700 })
  await fsp.mkdir(journalDir, { mode: 0o700 })
  await saveFiles(spec, c.report, filesDir)
  if (copySegments) {
    await journal.sync()
    for (const name of await fsp.readdir(state)) {
      if (name.endsWith(segmentSuffix)) await fsp.copyFile(join(state, name), join(journalDir, name))
    }
  }
  await fsp.copyFile(join(state, 'group.json'), join(journalDir, 'group.json'))
  await fsp.writeFile(join(savedIn, 'report.json'), JSON.stringify({ point, rolledBack: c.report }, null, 2) + '\n')
  return { point, savedIn, journalDir, filesDir, rolledBack: c.report, changed: c.complete ? c.changed : null }
}

/** What was rolled back and where it is kept, for the log and the terminal. */
export function describeDiscarded (d: Discarded): string[] {
  const r = d.rolledBack
  return [
    `rolled back ${r.bytesWritten} bytes written in ${r.files.length + r.filesOmitted} files (sequences ${r.from}..${r.to}):`,
    ...describeReport(r),
    `the discarded writes are kept in ${d.savedIn}:`,
    `  ${d.journalDir}: this side's journal segments (replfs journal inspect ${d.journalDir} --records)`,
    `  ${d.filesDir}: this side's copies of the files it changed, as they were (image volumes: the written ranges, START-END.bin)`
  ]
}

/** This side's copies of what it changed: whole files of directory
 *  volumes, the written ranges of image volumes. */
async function saveFiles (spec: GroupSpec, r: ChangeReport, filesDir: string): Promise<void> {
  for (const f of r.files) {
    const v = spec.volumes.find(x => x.name === f.vol)
    if (!v) continue
    if (v.kind === 'dir') {
      const src = join(v.path, f.path)
      const st = await fsp.lstat(src).catch(() => null)
      if (!st?.isFile()) continue
      const dest = join(filesDir, f.vol, f.path)
      await fsp.mkdir(dirname(dest), { recursive: true, mode: 0o700 })
      await fsp.copyFile(src, dest)
      continue
    }
    const fd = fs.openSync(v.path, 'r')
    try {
      await fsp.mkdir(join(filesDir, f.vol), { recursive: true, mode: 0o700 })
      for (const [start, end] of f.ranges) {
        const buf = Buffer.alloc(end - start)
        fs.readSync(fd, buf, 0, buf.length, start)
        await fsp.writeFile(join(filesDir, f.vol, `${start}-${end}.bin`), buf)
      }
    } finally {
      fs.closeSync(fd)
    }
  }
}
