// Wiring of a primary: the journal recovered (torn tail, power loss, an
// unclean stop's hot parts) by JS, then handed to the native core, which
// serves the mount and journals every operation; JS follows the journal for
// the replicator (when a peer is given), the backing sync and status.
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import type { GroupSpec } from '../core/config.js'
import { batchBytesTarget, segmentBytesDefault } from '../core/limits.js'
import { describe } from '../core/errors.js'
import { describeDamage, Journal } from '../journal/journal.js'
import { bootId, readBackingPoint } from '../journal/backing-point.js'
import { markBootId } from '../journal/end-mark.js'
import { GroupCommit, type CommitApi } from '../journal/group-commit.js'
import { ActivityLog, activityFileName, markKey, readMarks, type HotMark } from '../capture/activity-log.js'
import { Capture, type CaptureApi } from '../capture/capture.js'
import { NativeCapture } from '../capture/native-capture.js'
import { BackingSync } from '../capture/backing-sync.js'
import { Retention, type RetainPolicy } from '../capture/retention.js'
import { redoAfterPowerLoss, syncVolumes } from '../apply/redo.js'
import { DirtySet } from '../capture/dirty-set.js'
import { restateSteps, sortMarks, type RestateSource } from '../capture/restate.js'
import { checkRoom, dropOwed, keepOwed, mergeMarks, owedIntoDirty, readOwedMarks, restateIntoDirty, restateIntoJournal, type Owed } from '../capture/owed.js'
import { mountCore, type Mounted } from '../fs/mount.js'
import { nativeCore, type CaptureHandle } from '../native/addon.js'
import { allXattrsSync } from '../volume/xattr.js'
import { Replicator, type ReplicatorOptions } from '../replicate/sender.js'
import { serveControl } from './control.js'
import { VerifyService } from './verify-service.js'
import { reportResync } from './progress.js'
import { noteRestated } from '../replicate/restated.js'

export type Log = (line: string) => void

/** FUSE reader threads of a sync-mode primary (REPLFS_THREADS overrides). */
const syncReaderThreads = 4

/** A stop for `demote` waits at most this for the secondary to catch up. */
const drainMs = 20_000

export type Replication = Omit<ReplicatorOptions, 'volumes' | 'source' | 'log'>

export interface Primary {
  journal: Journal
  commit: CommitApi
  capture: CaptureApi
  replicator: Replicator | null
  /** drain: after the unmount, wait (bounded) until the secondary acknowledged everything. */
  stop (how?: { drain: boolean }): Promise<void>
}

/** Backing path of a volume-relative path, null for an unknown volume. */
function backingPath (spec: GroupSpec, num: number, rel: string): string | null {
  const v = spec.volumes[num]
  if (!v) return null
  return rel === '' ? v.path : join(v.path, rel)
}

/** Segments small enough that trimming whole segments frees the journal
 *  well before its limit; with a retention by age, small enough that the
 *  newest (never dropped) holds little. */
function segmentSize (journalMaxBytes: number, retain: RetainPolicy | null): number {
  const bound = journalMaxBytes || (retain && 'maxBytes' in retain ? retain.maxBytes : 0)
  if (bound) return Math.max(1 << 20, Math.min(segmentBytesDefault, Math.floor(bound / 8)))
  return retain ? 8 << 20 : segmentBytesDefault
}

/** The journal's growth that brings the backing store's sync forward
 *  (capture/backing-sync.ts): half the journal's limit or retention by size,
 *  so the segments held for a redo are let go well before either, and at
 *  most 1 GiB, a redo of a few seconds after a power loss. */
function backingSyncBound (journalMaxBytes: number, retain: RetainPolicy | null): number {
  const limits = [1 << 30, journalMaxBytes / 2, retain && 'maxBytes' in retain ? retain.maxBytes / 2 : 0]
  return Math.min(...limits.filter(b => b > 0))
}

/** Opens and recovers a primary's journal before the core takes it over. */
export async function openPrimary (spec: GroupSpec, state: string, log: Log, journalMaxBytes = 0, retain: RetainPolicy | null = null) {
  const segmentBytes = segmentSize(journalMaxBytes, retain)
  const journal = await Journal.open(state, { group: spec.group, segmentBytes })
  // Until the backing sync takes it over (startPrimary), the floor is the
  // point on disk: a recovery below that fills the state directory trims
  // (journal.ts appendPayload), and must keep what a power loss would redo.
  journal.trimFloor = () => { try { return readBackingPoint(state)?.seq ?? 0 } catch { return 0 } }
  if (journal.recovery) {
    const r = journal.recovery
    log(`journal: torn tail cut from ${r.segment} at byte ${r.offset} (${r.cutBytes} bytes, ${r.reason})`)
  }
  for (const d of journal.stateDamage) log(d)
  // Whom this side followed as a secondary no longer says where its data
  // came from once it writes on its own (replicate/plan.ts).
  // (On a full state directory it is written with the next checkpoint.)
  if (journal.checkpoint.origin !== undefined) await journal.setCheckpoint({ origin: undefined }).catch(() => {})
  // On this boot the backing store was synced through the backing point,
  // and the journal held it (the page cache outlives a kill -9): a journal
  // ending before it lost its end.
  const point = (() => { try { return readBackingPoint(state) } catch { return null } })()
  if (point && point.bootId === bootId()) await journal.lostTail(point.seq, 'the backing store was synced through on this boot')
  journal.tailLostOnThisBoot = journal.tailLostIn !== null && (point?.bootId === bootId() || journal.endMarkThisBoot)
  await journal.noteHeadLost()
  for (const d of journal.damage) log(describeDamage(d))
  const commit = new GroupCommit(journal, { onError: err => log(`journal append failed, retrying: ${describe(err)}`) })
  // After a power loss, the backing store first catches up with the journal.
  await redoAfterPowerLoss(state, spec.volumes, journal, log)
  const { log: activity, leftover } = await ActivityLog.open(state)
  const dirty = DirtySet.load(state)
  const capture = new Capture(journal, commit, activity, dirty)
  const source: RestateSource = { backing: (num, rel) => backingPath(spec, num, rel), xattrs: allXattrsSync }
  // A primary that was tracking (journal overflowed) keeps tracking until a
  // resync. With retention (no peer) the dirty set holds what was dropped,
  // and the journal goes on.
  if (!dirty.empty && !retain) capture.mode = 'track'

  // The journal holds every change not yet acknowledged: the extent map is
  // rebuilt from it (it is the persisted form of the map).
  for await (const { batch } of journal.read(journal.checkpoint.acked + 1)) {
    batch.records.forEach((r, i) => { if (batch.seq + i > journal.checkpoint.acked) capture.extents.note(r, batch.seq + i) })
  }

  // An unclean stop: parts of the volumes had operations in flight (the
  // activity log's marks, and those an earlier start could not re-journal).
  const owedBefore = await readOwedMarks(state)
  const hot = mergeMarks(leftover, owedBefore.marks)
  let owed: Owed | null = null
  if (hot.length > 0) {
    try {
      const from = journal.nextSeq
      const n = capture.mode === 'track'
        ? await restateIntoDirty(hot, source, capture)
        : restateIntoJournal(hot, source, journal, capture, journalMaxBytes)
      // Which sequences are the restate: a failback compares them with the
      // other side's data (replicate/restated.ts).
      await noteRestated(state, from, journal.lastSeq, journal.checkpoint.acked)
      log(`recovery: ${hot.length} hot parts left by an unclean stop re-journalled as ${n} records`)
      activity.reset()
      await dropOwed(state, owedBefore.files)
    } catch (err) {
      // A full or failing state directory (or a journal at its limit) must
      // not keep the mount down: the marks stay on disk (a rename needs no
      // space), the mount comes up, status names what is owed, and the
      // capture re-journals it once appends go through (native-capture.ts).
      const file = await keepOwed(state)
      owed = { parts: hot.length, message: `recovery: ${hot.length} hot parts left by an unclean stop not re-journalled yet (${describe(err)}); kept in ${file ?? owedBefore.files[0]}` }
      log(`${owed.message}: the mount comes up, new writes get an errno while the journal cannot take them, and these parts are re-journalled once it can; until then the pair is not in sync`)
    }
  } else {
    activity.reset()
  }

  // The journal is handed to the native core: JS has nothing in flight.
  await commit.close()
  if (capture.mode === 'track') await capture.saveDirty().catch(err => { log(`dirty set: not saved (${describe(err)}); the activity log keeps its parts`) })
  await journal.sync()
  activity.close()
  return { journal, capture, source, dirty, segmentBytes, owed }
}

/** The native core serves the mount and journals on its own threads; JS
 *  recovers the journal first, then follows it (replication, status). */
export async function startPrimary (spec: GroupSpec, state: string, mountpoint: string, log: Log, repl: Replication | null,
  verifyEvery: { intervalMs: number, rateBytesPerSec: number } | null = null, retain: RetainPolicy | null = null,
  transport: { ioUring: boolean, pollUs?: number } = { ioUring: false }): Promise<Primary> {
  // Recovery journalled through JS; from here the core is the one writer.
  const p = await openPrimary(spec, state, log, repl?.journalMaxBytes, retain)
  const core = nativeCore()
  const syncMode = repl?.mode === 'sync'
  const syncTimeoutMs = repl?.syncTimeoutMs ?? 10_000
  let capture: NativeCapture | null = null
  let handle: CaptureHandle
  try {
    p.journal.stopAppending()
    handle = core.openCapture({
      stateDir: state, group: spec.group, bootId: markBootId(), nextSeq: p.journal.nextSeq, lastHash: p.journal.lastHash,
      segmentBytes: p.segmentBytes, syncMode, syncTimeoutMs, dropFinishedSegments: repl === null,
      ...(p.journal.tail ? { verifyFrom: p.journal.tail } : {})
    }, () => capture?.wake())
  } catch (err) {
    await p.journal.close()
    throw err
  }
  capture = new NativeCapture(core, handle, p.journal, p.dirty, p.capture.extents, log, syncMode, syncTimeoutMs, repl !== null)
  if (!p.dirty.empty && !retain) capture.mode = 'track'
  const nc = capture
  // Room for the checkpoint when the journal fills the state directory (journal/reserve.ts).
  if (!p.journal.keepReserve()) log(`state directory ${state}: no room for its reserve of free space yet; made once the journal is trimmed`)
  // How far earlier tries of this process got with each owed part (its
  // restate's steps journalled). A try goes a round of steps at a time and
  // keeps what went in: one restate of everything, larger than the room the
  // journal had (its filesystem, its limit), started over at every try, took
  // the room the acknowledgements had made, and never finished.
  const owedDone = new Map<string, number>()
  let journalled = 0 // records the tries since the last success put in
  nc.restateHot = async () => {
    const owed = await readOwedMarks(state)
    const hot = await readMarks(join(state, activityFileName))
    const hotNow = new Set(hot.map(markKey)) // hot again since: restated whole again
    const marks = mergeMarks(hot, owed.marks)
    if (nc.mode === 'track') {
      // Nothing is journalled while tracking: the hot and owed parts join the dirty set.
      await owedIntoDirty(marks, p.dirty)
    } else {
      for (const m of sortMarks(marks)) await restateOwed(m, hotNow.has(markKey(m)) ? 0 : owedDone.get(markKey(m)) ?? 0)
    }
    await dropOwed(state, owed.files)
    owedDone.clear()
    const n = journalled
    journalled = 0
    return n
  }
  /** Restates one part in rounds under the group lock, the first `skip` steps
   *  without records (journalled by an earlier try; later changes to them
   *  were journalled, or are hot again). */
  const restateOwed = async (m: HotMark, skip: number): Promise<void> => {
    let n = 0
    let i = 0
    let quiet = false
    const it = restateSteps([m], p.source, r => { if (!quiet) { n++; nc.record(r, [], () => {}) } })
    for (let done = false; !done;) {
      n = 0
      done = await nc.exclusive(() => {
        checkRoom(p.journal, repl?.journalMaxBytes ?? 0)
        for (let bytes = 0, steps = 0; bytes < batchBytesTarget && steps < 16;) {
          const next = it.next()
          if (next.done) return true
          quiet = i < skip
          const b = next.value()
          i++
          if (!quiet) { bytes += b; steps++ }
        }
        return false
      })
      owedDone.set(markKey(m), i) // journalled: the lock is let go after the append
      journalled += n
    }
  }
  if (p.owed) nc.owe(p.owed.message)
  const backing = new BackingSync(state, spec.volumes, {
    syncfs: syncVolumes, appended: () => nc.exclusive(() => nc.commit.lastAssigned), journalWritten: () => nc.journalWritten,
    boundBytes: backingSyncBound(repl?.journalMaxBytes ?? 0, retain), log, onSynced: () => p.journal.trim(),
    writeFull: (err, write) => p.journal.writeWithReserve(err, write)
  })
  p.journal.trimFloor = () => backing.synced
  // Two passes at most: the first may be one already under way, from an older point.
  p.journal.raiseFloor = async seq => { for (let i = 0; i < 2 && backing.synced < seq; i++) await backing.syncNow() }
  backing.start()
  const retention = retain ? new Retention(p.journal, p.dirty, retain, () => backing.synced, log) : null
  retention?.start()
  let replicator: Replicator | null = null
  let stopProgress = () => {}
  let mounted: Mounted
  const closeCapture = async () => {
    await retention?.stop()
    await backing.stop().catch(err => log(`backing sync: ${describe(err)}`))
    await capture!.barrier()
    if (capture!.mode === 'track') await capture!.saveDirty()
    capture!.close()
    core.closeCapture(handle)
    await p.journal.close()
  }
  try {
    if (repl) {
      replicator = new Replicator(p.journal, capture.commit, capture, { ...repl, volumes: spec.volumes, source: p.source, log, trackingEnded: () => backing.syncAllSoon(() => nc.trackedOnDisk()) })
      replicator.start()
      stopProgress = reportResync(replicator, log)
    }
    // Sync mode: a reader thread waits for the secondary's ack with its
    // request, so one thread allows one write in flight. Measured with 4 fio
    // writers on an idle box: 536 IOPS with 1 thread, 1054 with 4 (median
    // of 3 interleaved rounds); async mode keeps the core's default (1 wins
    // QD1 here: BENCHMARKS.md, threads).
    mounted = await mountCore(mountpoint, spec, { fsname: `replfs-${spec.group}`, readOnly: false, capture: handle, threads: syncMode ? syncReaderThreads : undefined, ioUring: transport.ioUring, pollUs: transport.pollUs })
  } catch (err) {
    await replicator?.stop()
    await closeCapture()
    throw err
  }
  const verify = new VerifyService(capture, replicator, spec.volumes, p.source, log)
  const control = await serveControl(state, () => ({
    ...primaryStatus(spec, mountpoint, p.journal, capture!, replicator), backingSyncedSeq: backing.synced, verify: verify.status(),
    ...(retention ? { retention: retention.status() } : {})
  }), { verify: verify.command })
  if (verifyEvery) verify.startPeriodic(verifyEvery.intervalMs, verifyEvery.rateBytesPerSec)
  let stopping: Promise<void> | null = null
  return {
    journal: p.journal, commit: capture.commit, capture,
    replicator,
    stop: (how?: { drain: boolean }) => (stopping ??= (async () => {
      verify.stop()
      await mounted.unmount().catch(err => log(`unmount: ${describe(err)}`))
      if (how?.drain && replicator) {
        const left = await replicator.drain(drainMs)
        log(left === 0 ? 'drained: the secondary acknowledged every sequence' : `not drained: ${left} sequences not acknowledged by the secondary`)
      }
      stopProgress()
      await replicator?.stop()
      control.close()
      await closeCapture()
    })())
  }
}

function primaryStatus (spec: GroupSpec, mountpoint: string, journal: Journal, capture: CaptureApi, replicator: Replicator | null) {
  return {
    group: spec.group,
    mountpoint,
    volumes: spec.volumes.map(v => ({ name: v.name, kind: v.kind })),
    journal: { nextSeq: journal.nextSeq, bytes: journal.bytes, segments: journal.segmentCount, acked: journal.checkpoint.acked, generation: journal.checkpoint.generation },
    records: capture.stats.records,
    dataBytes: capture.stats.dataBytes,
    // Kept while a peer follows the batches (native-capture.ts); without one, `journal inspect` has it.
    extents: replicator ? capture.extents.summary() : null,
    memory: process.memoryUsage(),
    ...(replicator ? replicator.status() : {
      role: 'primary', mode: 'standalone', peer: null, peerState: 'none', journalError: capture.commit.appendError ?? null,
      damage: [...journal.stateDamage, ...journal.damage.map(d => describeDamage(d))]
    })
  }
}

export async function isMountpointBusy (path: string): Promise<boolean> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8')
  return info.split('\n').some(line => {
    const f = line.split(' ')
    return f[4] !== undefined && f[4].replace(/\\040/g, ' ') === path
  })
}
