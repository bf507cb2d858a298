// Wiring of a primary: journal → group commit → capture → FUSE ops → mount,
// with recovery of an unclean stop before the mount goes live.
import { promises as fsp } from 'node:fs'
import type { GroupSpec } from '../core/config.js'
import type { Record } from '../core/records.js'
import { Journal } from '../journal/journal.js'
import { GroupCommit } from '../journal/group-commit.js'
import { ActivityLog } from '../capture/activity-log.js'
import { Capture } from '../capture/capture.js'
import { restateSteps } from '../capture/restate.js'
import { Layout } from '../fs/layout.js'
import { makeOps } from '../fs/ops.js'
import { mountFs, type Mounted } from '../fs/mount.js'
import { allXattrs } from '../fs/xattr.js'
import { describe } from '../core/errors.js'

export interface Primary {
  journal: Journal
  commit: GroupCommit
  capture: Capture
  layout: Layout
  mounted: Mounted | null
  stop (): Promise<void>
}

export type Log = (line: string) => void

export async function openPrimary (spec: GroupSpec, state: string, log: Log): Promise<Omit<Primary, 'mounted' | 'stop'> & { close (): Promise<void> }> {
  const journal = await Journal.open(state, { group: spec.group })
  if (journal.recovery) {
    const r = journal.recovery
    log(`journal: torn tail cut from ${r.segment} at byte ${r.offset} (${r.cutBytes} bytes, ${r.reason})`)
  }
  const commit = new GroupCommit(journal, { onError: err => log(`journal append failed, retrying: ${describe(err)}`) })
  const { log: activity, leftover } = await ActivityLog.open(state)
  const capture = new Capture(journal, commit, activity)
  const layout = new Layout(spec)

  // The journal holds every change not yet acknowledged: the extent map is
  // rebuilt from it (it is the persisted form of the map).
  for await (const { batch } of journal.read(journal.checkpoint.acked + 1)) {
    batch.records.forEach((r, i) => {
      if (batch.seq + i <= journal.checkpoint.acked) return
      if (r.kind === 'write') capture.extents.add(r.vol, r.path, r.off, r.off + r.data.length, batch.seq + i)
      else if (r.kind === 'truncate') capture.extents.clip(r.vol, r.path, r.size)
      else if (r.kind === 'unlink') capture.extents.drop(r.vol, r.path)
      else if (r.kind === 'rename') capture.extents.rename(r.vol, r.path, r.to)
    })
  }

  if (leftover.length > 0) {
    // An unclean stop: parts of the volumes had operations in flight.
    let n = 0
    const emit = (r: Record) => { n++; capture.record(r, [], () => {}) }
    for (const step of restateSteps(leftover, { backing: (v, rel) => layout.backing(v, rel), xattrs: allXattrs }, emit)) step()
    await capture.barrier()
    log(`recovery: ${leftover.length} hot parts left by an unclean stop re-journalled as ${n} records`)
  }
  activity.reset()

  return {
    journal, commit, capture, layout,
    async close () {
      await commit.close()
      activity.reset() // a clean stop: nothing is in flight, nothing to restate
      activity.close()
      await journal.close()
    }
  }
}

export async function startPrimary (spec: GroupSpec, state: string, mountpoint: string, log: Log): Promise<Primary> {
  const p = await openPrimary(spec, state, log)
  let mounted: Mounted
  try {
    const ops = makeOps({ layout: p.layout, capture: p.capture, startedMs: Date.now(), readOnly: false })
    mounted = await mountFs(mountpoint, ops, { fsname: `replfs-${spec.group}`, readOnly: false })
  } catch (err) {
    await p.close()
    throw err
  }
  let stopping: Promise<void> | null = null
  return {
    ...p,
    mounted,
    stop: () => (stopping ??= (async () => {
      await mounted.unmount().catch(err => log(`unmount: ${describe(err)}`))
      await p.close()
    })())
  }
}

export async function isMountpointBusy (path: string): Promise<boolean> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8')
  return info.split('\n').some(line => {
    const f = line.split(' ')
    return f[4] !== undefined && f[4].replace(/\\040/g, ' ') === path
  })
}
