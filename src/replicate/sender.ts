// The primary's replicator: one connection to one secondary (fan-out is one
// Replicator per peer over the same journal: nothing here assumes it is the
// only reader). It connects with backoff, authenticates, agrees on where
// the secondary's copy stands, then streams journal batches in order with a
// window, takes acks (journal trim, extent map, sync-mode writers), and
// runs a resync when the secondary missed history.
import type { Seq } from '../core/records.js'
import { describe, replError } from '../core/errors.js'
import { describeDamage, type Journal, type Appended, type JournalDamage } from '../journal/journal.js'
import { chainHash } from '../journal/codec.js'
import type { CommitApi } from '../journal/group-commit.js'
import type { CaptureApi } from '../capture/capture.js'
import type { RestateSource } from '../capture/restate.js'
import type { VolumeSpec } from '../core/config.js'
import { connect, type Connection, type TlsFiles } from './transport.js'
import { handshake, type Identity } from './handshake.js'
import type { ManifestEntry, Message } from './messages.js'
import { Heartbeat, silentPeerMs } from './heartbeat.js'
import { Resync, type Manifest } from './resync.js'
import { Overflow, type OverflowPolicy } from './overflow.js'
import { RecentBatches } from './recent.js'
import { DiskBatches } from './disk-batches.js'
import { historyOf, startGeneration } from '../journal/generations.js'
import { newGeneration } from '../journal/checkpoint.js'
import { bootId } from '../journal/backing-point.js'
import type { Compared } from './pair-state.js'
import { changesSince, parseReport, reportText, type ChangedPath } from './divergence.js'
import { planSession, rollbackPaths, type Plan } from './plan.js'
import { askRollBack, heldOnPrimary } from './roll-back.js'
import type { RestateEntry } from './restated.js'
import { reportBytesMax } from './messages.js'
import { archiveSplitBrain, loadSplitBrain, saveSplitBrain, splitBrainError, splitBrainSummary, type SplitBrainRecord } from './split-brain.js'

export interface ReplicatorOptions {
  host: string
  port: number
  tls: TlsFiles | null
  identity: Identity
  mode: 'async' | 'sync'
  syncTimeoutMs: number
  journalMaxBytes: number
  onOverflow: OverflowPolicy
  volumes: VolumeSpec[]
  source: RestateSource
  log: (line: string) => void
  /** The capture journals again after tracking: what it tracked is to reach
   *  the backing files' disk (BackingSync.syncAllSoon), fsyncs going to them
   *  until then. */
  trackingEnded?: () => void
}

/** Bounds of the pipeline: batches in flight, and memory kept for them.
 *  In async mode the bytes are the bound that matters; the count only caps
 *  the list. At 256 batches, an application of small writes (one batch
 *  each) got one window per round trip: the secondary acknowledged 256 at a
 *  time, fell behind, and the sender then read from disk what had left
 *  memory (native-notes/performance.md 11). In sync mode the count stays
 *  256: what is in flight is ahead of a sync writer's batch, and the
 *  secondary, which stores what arrives at once, applies what it stored
 *  before it reads on. Behind 4096, a pair resuming sync after a fallback
 *  measured the secondary's pace while it stored them (a tenth of its
 *  real one), and took a minute to resume. */
const windowBatches = { async: 4096, sync: 256 }
const windowBytes = 16 * 1024 * 1024
/** The batches of one burst go out together up to this many bytes (the rest after them). */
const gatherBytesMax = 1024 * 1024
const recentBytesMax = 16 * 1024 * 1024
const backoffMs = [250, 500, 1000, 2000, 5000, 10000]

// `batch.hash` may be computed on demand (over the payload): only the last batch an
// ack covers needs it.
interface InFlight { end: Seq, bytes: number, batch: { readonly hash: Buffer }, ts: number, held: Buffer | null }

interface Session {
  conn: Connection
  sentUpTo: Seq
  inflight: InFlight[]
  inflightBytes: number
  /** Wakes the pump; counted, so that a wake while the pump was reading
   *  (no sleep to end yet) is not lost. */
  wake: () => void
  wakes: number
  waiting: Promise<void> | null
  endWait: (() => void) | null
  disk: DiskBatches
  /** Bytes of batches sent since the socket began gathering them (Connection.gather). */
  gatheredBytes: number
  flushSoon: NodeJS.Immediate | null
  closed: boolean
  manifest: Manifest | null
  manifestDone: (() => void) | null
  hb: Heartbeat | null
  onDiverged: ((m: Extract<Message, { t: 'diverged' }>) => void) | null
  onState: ((m: Extract<Message, { t: 'state' }>) => void) | null
}

export type PeerState = 'connecting' | 'handshake' | 'resync' | 'streaming' | 'disconnected'

export class Replicator {
  private session: Session | null = null
  private peerState: PeerState = 'disconnected'
  private acked: Seq
  private readonly recent = new RecentBatches(recentBytesMax, b => this.journal.buffers.release(b.payload))
  private stopped = false
  private attempt = 0
  private lastError: string | null = null
  private resync: Resync | null = null
  private checkpointTimer: NodeJS.Timeout | null = null
  private pendingAck: { seq: Seq, hash?: Buffer } | null = null
  /** Sync writers are released up to here: what the secondary holds. */
  private released: Seq
  /** The secondary's journal is on its disk through here (its `stored`
   *  acks): sync fsyncs are released up to here, and no further than writers. */
  private stored: Seq
  private releasedStored = 0
  /** While a resync rebuilds the copy, an ack says the secondary applied a
   *  sequence, not that it holds what came before (it skips operations on
   *  paths not rebuilt yet): no sync writer is released until the copy is
   *  consistent, at this sequence (Infinity: not known yet). */
  private holdUntil: Seq | null = null
  /** A split brain found with the secondary (kept in STATE/diverged.json). */
  private splitBrain: SplitBrainRecord | null = null
  /** Batch bytes sent on the wire since start: what resyncs and streaming cost. */
  private sentBytes = 0
  private decision: string | null = null
  /** A generation was started for writes made without the peer since the last session. */
  private aloneGeneration = false
  /** This node on this boot, as the secondary records whom it follows: the
   *  same at connect means this side's backing store holds what it sent
   *  (the page cache outlives a kill -9; replicate/plan.ts). */
  private get origin (): string { return `${this.o.identity.node}@${bootId()}` }
  readonly overflow: Overflow
  /** Online verify (verify.ts) hears the secondary's answers here. */
  readonly verifyListeners = new Set<(m: Extract<Message, { t: 'verified' }>) => void>()

  constructor (private readonly journal: Journal, private readonly commit: CommitApi, private readonly capture: CaptureApi,
    private readonly o: ReplicatorOptions) {
    this.acked = journal.checkpoint.acked
    this.released = this.acked
    this.stored = this.acked
    const onDamage = (d: JournalDamage) => this.noteError(`${describeDamage(d)}${d.toSeq > this.acked ? '; the secondary is resynced in full' : ' (already on the secondary)'}`)
    journal.damage.forEach(onDamage)
    journal.damageListeners.push(onDamage)
    this.overflow = new Overflow(journal, capture, o.onOverflow, o.journalMaxBytes, o.log, () => this.acked)
    commit.listeners.push(a => this.onAppended(a))
    try { this.splitBrain = loadSplitBrain(journal.dir) } catch (err) { o.log(describe(err)) }
    this.overflow.onTrack = () => this.session?.conn.fail(replError('JOURNAL_FULL', 'the journal overflowed: batches were dropped; a resync of the tracked changes follows'))
  }

  start (): void {
    void this.loop()
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.resync?.stop()
    this.session?.conn.close()
    this.capture.releaseWaiters()
    this.overflow.stop()
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer)
    await this.flushAck()
  }

  /** Waits (after writes stopped) until the secondary acknowledged every
   *  sequence, or `ms` passed, or the link is down; the sequences left. */
  async drain (ms: number): Promise<number> {
    const until = Date.now() + ms
    await this.commit.idle()
    while (this.acked < this.commit.lastAssigned && this.session && Date.now() < until) {
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    await this.flushAck()
    return Math.max(0, this.commit.lastAssigned - this.acked)
  }

  status () {
    const unacked = this.session?.inflight ?? []
    const lag = this.recent.after(this.acked)
    // A link that went quiet is not reported as streaming for the whole
    // dead-peer timeout: past a missed heartbeat it is 'silent'.
    const silentMs = this.session?.hb?.silentMs ?? 0
    const silent = this.session !== null && silentMs > silentPeerMs
    return {
      role: 'primary' as const,
      mode: this.o.mode,
      syncFallback: this.capture.syncFellBack,
      peer: `${this.o.host}:${this.o.port}`,
      peerState: silent ? 'silent' : this.peerState,
      peerSilentSec: silent ? Math.round(silentMs / 100) / 10 : 0,
      lastError: this.lastError,
      journalError: this.commit.appendError ?? null,
      lastSeq: this.commit.lastAssigned,
      ackedSeq: this.acked,
      lagRecords: Math.max(0, this.commit.lastAssigned - this.acked),
      lagBytes: lag.complete ? lag.bytes : Math.max(lag.bytes, this.journal.bytes), // past the held batches: what the journal holds
      lagSeconds: lag.oldestTs !== null && this.commit.lastAssigned > this.acked ? (Date.now() - lag.oldestTs) / 1000 : 0,
      inFlightBatches: unacked.length,
      journalBytes: this.journal.bytes,
      journalMaxBytes: this.o.journalMaxBytes,
      overflow: this.o.onOverflow,
      tracking: this.capture.mode === 'track',
      damage: [...this.journal.stateDamage, ...this.journal.damage.map(d => describeDamage(d))],
      resync: this.resync ? { ...this.resync.progress } : null,
      sentBytes: this.sentBytes,
      decision: this.decision,
      generations: historyOf(this.journal.checkpoint),
      splitBrain: this.splitBrain ? splitBrainSummary(this.splitBrain) : null
    }
  }

  /** The session an online verify runs over: only while streaming to a
   *  consistent copy (no resync running or waiting to complete). */
  verifyLink (): { send: (m: Message) => void, onEnd: (fn: () => void) => () => void } | null {
    const s = this.session
    if (!s || s.closed || this.peerState !== 'streaming' || this.resync || this.holdUntil !== null) return null
    return {
      send: m => { s.conn.send(m) },
      onEnd: fn => { const h = () => fn(); s.conn.once('close', h); return () => { s.conn.off('close', h) } }
    }
  }

  // ---- connection life ----------------------------------------------------

  private async loop (): Promise<void> {
    while (!this.stopped) {
      this.peerState = 'connecting'
      let conn: Connection
      try {
        conn = await connect(this.o.host, this.o.port, this.o.tls, 5000)
      } catch (err) {
        this.noteError(`cannot reach ${this.o.host}:${this.o.port}: ${describe(err)}`)
        await this.backoff()
        continue
      }
      const closed = new Promise<Error | null>(resolve => conn.on('close', resolve))
      try {
        await this.runSession(conn)
        this.attempt = 0
      } catch (err) {
        this.noteError(describe(err))
        conn.fail(err)
      }
      const why = await closed
      if (why && !this.stopped) this.noteError(`connection ended: ${describe(why)}`)
      this.endSession()
      if (!this.stopped) await this.backoff()
    }
    this.peerState = 'disconnected'
  }

  private noteError (msg: string): void {
    if (this.lastError !== msg) this.o.log(msg)
    this.lastError = msg
  }

  private async backoff (): Promise<void> {
    const ms = backoffMs[Math.min(this.attempt++, backoffMs.length - 1)]
    await new Promise(resolve => setTimeout(resolve, ms))
  }

  private endSession (): void {
    const s = this.session
    if (!s) return
    s.closed = true
    s.wake()
    s.disk.close()
    for (const f of s.inflight.splice(0)) if (f.held) this.journal.buffers.release(f.held)
    s.inflightBytes = 0
    this.session = null
    this.peerState = 'disconnected'
    if (this.resync) {
      // Cut short: the copy stays marked inconsistent on the secondary, so
      // the next session runs a full resync (plan()), which covers all of it.
      this.resync.stop()
      this.resync = null
    }
  }

  private async runSession (conn: Connection): Promise<void> {
    this.peerState = 'handshake'
    const peer = await handshake(conn, this.o.identity, 10_000)
    const stateMsg = nextMessage(conn, 'state', 10_000)
    conn.resume()
    let state = await stateMsg
    const s: Session = {
      conn, sentUpTo: 0, inflight: [], inflightBytes: 0, disk: new DiskBatches(this.journal),
      wakes: 0, waiting: null, endWait: null, gatheredBytes: 0, flushSoon: null,
      wake: () => { s.wakes++; const end = s.endWait; s.endWait = null; s.waiting = null; end?.() },
      closed: false, manifest: null, manifestDone: null, hb: null, onDiverged: null, onState: null
    }
    this.session = s
    const hb = s.hb = new Heartbeat(conn, () => this.o.log(`secondary ${peer.node} silent: reconnecting`))
    hb.start()
    conn.on('close', () => hb.stop())
    conn.on('message', m => this.onMessage(s, m))
    conn.resume()
    this.o.log(`connected to secondary ${peer.node} at ${conn.remote} (applied ${state.applied}, ${state.consistent ? 'consistent' : 'inconsistent'})`)

    let plan = await this.plan(state)
    if (plan.kind === 'roll-back') {
      // The secondary rolls back past the point, then says where it stands again.
      this.decision = `roll-back: ${plan.why}`
      this.o.log(`pair decision: ${plan.drop ? 'drop the secondary\'s restate' : 'roll back the secondary\'s own writes'}: ${plan.why}`)
      state = await askRollBack(s.conn, plan, next => { s.onState = next })
      plan = await this.plan(state)
      if (plan.kind === 'roll-back') throw replError('PEER_ERROR', `the secondary still holds sequences past ${state.applied} after its roll-back`)
    }
    if (plan.kind === 'split') return await this.refuseSplit(s, peer.node, plan.standing)
    if (plan.kind === 'refuse') throw plan.error
    if (plan.kind === 'full' && plan.lost) await this.journal.notePeerHeldLost(plan.lost.from, plan.lost.to).catch(err => this.noteError(`cannot record the journal damage: ${describe(err)}`))
    this.decision = `${plan.kind}: ${plan.why}`
    this.o.log(`pair decision: ${plan.kind === 'resume' ? 'resume the journal' : plan.kind === 'rollback' ? 'resync the rolled back paths' : `resync, ${plan.kind}`}: ${plan.why}`)
    if (this.splitBrain) {
      const to = await archiveSplitBrain(this.journal.dir)
      this.o.log(`the split brain recorded at sequence ${this.splitBrain.point} is resolved${to ? ` (record kept in ${to})` : ''}`)
      this.splitBrain = null
    }
    // The secondary follows this side's generations from here on.
    conn.send({ t: 'history', gens: historyOf(this.journal.checkpoint), origin: this.origin })
    this.aloneGeneration = false
    if (plan.kind === 'resume') {
      this.holdUntil = null // a consistent copy at state.applied
      s.sentUpTo = state.applied
      this.peerState = 'streaming'
      // What it applied is on its disk (it synced its journal first).
      this.stored = Math.max(this.stored, state.applied)
      if (state.applied > this.acked) await this.takeAck(state.applied)
      else this.takeHeld(state.applied)
      void this.pump(s)
      return
    }
    // Resync: history restarts on the secondary at the next batch.
    await this.commit.idle()
    const seq = this.journal.nextSeq
    const prev = this.journal.lastHash
    const changed = plan.kind === 'rollback' ? await rollbackPaths(this.journal, plan.rollback, seq - 1, this.o.volumes.map(v => v.name)) : null
    const kind = plan.kind === 'full' || (plan.kind === 'rollback' && !changed) ? 'full' : 'partial'
    if (plan.kind === 'rollback' && !changed) this.o.log(`this journal no longer holds every sequence since ${plan.rollback.point}: a full resync instead`)
    if (kind === 'partial') await this.foldSkipped(seq)
    s.sentUpTo = seq - 1
    this.peerState = 'resync'
    // The secondary answers a full rebase with its manifest at once: taken
    // from here on (it came during the awaits below, before the resync
    // began, and ended the connection as one without a full resync).
    const manifest = kind === 'full' ? this.receiveManifest(s) : null
    conn.send({ t: 'rebase', seq, prev, generation: this.journal.checkpoint.generation, full: kind === 'full' })
    // The copy is inconsistent from here until the full resync completes,
    // and the next session resyncs in full again if this one is cut short.
    if (kind === 'full' && this.journal.checkpoint.resyncFull) await this.journal.setCheckpoint({ resyncFull: false })
    this.holdUntil = Infinity
    await this.takeAck(seq - 1, prev) // what came before is covered by the resync (trim), but not on the copy yet (hold)
    this.o.log(`${kind} resync of the secondary starts at sequence ${seq}${changed ? ` (${changed.length} paths changed on either side since the common point)` : ''}`)
    void this.pump(s)
    void this.runResync(s, kind, changed, manifest)
  }

  /** Where does the secondary stand against this journal? (plan.ts) */
  private plan (st: Extract<Message, { t: 'state' }>): Promise<Plan> {
    // History past what the peer acknowledged dropped by retention (a primary
    // that ran without a peer: capture/retention.ts) is in the dirty set too.
    const tracking = this.capture.mode === 'track' || !this.capture.dirty.empty || this.journal.firstSeq > this.acked + 1
    const held = (entries: RestateEntry[], point: Seq) => heldOnPrimary(entries, point, { journal: this.journal, commit: this.commit, capture: this.capture, source: this.o.source, volumes: this.o.volumes })
    return planSession({ journal: this.journal, lastAssigned: this.commit.lastAssigned, acked: this.acked, tracking, held, origin: this.origin }, st)
  }

  /** Both sides wrote since the common point: each tells the other what it
   *  changed (replfs diverged), both write it down, nothing is merged. */
  private async refuseSplit (s: Session, peerNode: string, st: Compared): Promise<never> {
    const names = this.o.volumes.map(v => v.name)
    const local = await changesSince(this.journal, st.point + 1, this.commit.lastAssigned, names)
    const reply = new Promise<Extract<Message, { t: 'diverged' }> | null>(resolve => {
      const timer = setTimeout(() => resolve(null), 15_000)
      s.onDiverged = m => { clearTimeout(timer); resolve(m) }
      s.conn.on('close', () => { clearTimeout(timer); resolve(null) })
    })
    s.conn.send({ t: 'diverged', common: st.point, report: reportText(local, reportBytesMax) })
    const theirs = await reply
    const detail = st.primaryPast > 0
      ? `this primary wrote ${st.primaryPast} sequences and the secondary ${peerNode} holds ${st.secondaryPast} this side never had, since sequence ${st.point} (generation ${st.common.id})`
      : `the secondary ${peerNode} holds ${st.secondaryPast} sequences past sequence ${st.point} (generation ${st.common.id}) that this primary never had: it has newer data (to keep it, make it the primary: demote this side, promote that one)`
    const err = splitBrainError(st.point, detail, this.journal.dir, 'primary')
    const rec: SplitBrainRecord = {
      detected: new Date().toISOString(), side: 'primary', node: this.o.identity.node, peerNode, point: st.point, common: st.common,
      local, remote: theirs ? parseReport(theirs.report) : null, wayOut: err.hint ?? ''
    }
    await saveSplitBrain(this.journal.dir, rec)
    this.splitBrain = rec
    this.decision = `split brain: ${detail}`
    throw err
  }

  /** A partial resync restarts the secondary's history at `seq`: what the
   *  journal still holds between the peer's acknowledgement and there is
   *  not streamed, so it joins the dirty set the resync sends (a journal
   *  kept by retention while no peer was there holds such records). */
  private async foldSkipped (seq: Seq): Promise<void> {
    for await (const { batch } of this.journal.read(this.acked + 1)) {
      if (batch.seq >= seq) break
      batch.records.forEach((r, i) => { if (batch.seq + i > this.acked && batch.seq + i < seq) this.capture.dirty.add(r) })
    }
  }

  /** A resync that cannot go on (its records cannot be journalled: the
   *  state directory full, say) ends the session: the copy stays marked
   *  inconsistent on the secondary, and the next session resyncs in full
   *  (endSession). Before, the failed append was an unhandled rejection
   *  that killed the primary. */
  private async runResync (s: Session, kind: 'full' | 'partial', changed: ChangedPath[] | null, manifest: Promise<Manifest | null> | null): Promise<void> {
    try {
      await this.resyncSession(s, kind, changed, manifest)
    } catch (err) {
      if (s.closed) return
      this.noteError(`resync stopped: ${describe(err)}; the next connection resyncs in full`)
      s.conn.fail(err)
    }
  }

  /** `manifest`: the secondary's, being received (a full resync). */
  private async resyncSession (s: Session, kind: 'full' | 'partial', changed: ChangedPath[] | null, manifest: Promise<Manifest | null> | null): Promise<void> {
    const wasTracking = this.capture.mode === 'track'
    const resync = new Resync(this.capture, this.o.volumes, this.o.source, kind, () => this.overflow.resyncPause())
    this.resync = resync
    // From here on, operations are journalled again: the resync covers what
    // the dirty set holds, the journal what happens next. Tracking stops
    // first, then what was tracked until then (the native core queues it
    // for us) joins the dirty set, and only then is the set taken.
    this.overflow.leaveTrack(wasTracking)
    await this.capture.barrier()
    if (wasTracking) this.o.trackingEnded?.()
    const dirty = this.capture.dirty.drain()
    let ok: boolean
    if (manifest) {
      const theirs = await manifest
      if (!theirs) return
      ok = await resync.full(theirs)
    } else if (changed) {
      ok = await resync.paths(changed) // the dirty set is empty (planRollback)
    } else {
      ok = await resync.partial(dirty.marks, dirty.extents)
    }
    if (!ok || s.closed) return // see endSession: a full resync follows
    await this.commit.idle()
    const until = this.commit.lastAssigned
    s.conn.send({ t: 'consistent', seq: until })
    this.holdUntil = until
    if (this.acked >= until) this.release(this.acked)
    this.o.log(`resync sent (${resync.progress.bytesSent} bytes of data, ${resync.progress.bytesDone} compared); consistent once sequence ${until} is applied`)
    // The saved set still holds what was drained, a superset: a crash now
    // resyncs more than needed, never less. So a failed save ends nothing.
    await this.capture.dirty.save().catch(err => this.noteError(`dirty set not saved after the resync: ${describe(err)}`))
    this.resync = null
    this.peerState = 'streaming'
  }

  private receiveManifest (s: Session): Promise<Manifest | null> {
    s.manifest = new Map()
    return new Promise(resolve => {
      s.manifestDone = () => resolve(s.manifest)
      s.conn.on('close', () => resolve(null))
    })
  }

  /** The first write made without the peer starts a data generation: the
   *  histories then show where this side went on alone (the sequences alone
   *  already tell the pair where it stands, pair-state.ts; the generation
   *  names the point in status, logs and reports). */
  private async startAloneGeneration (from: Seq): Promise<void> {
    const id = newGeneration()
    try {
      await this.journal.setCheckpoint({ generation: id, history: startGeneration(historyOf(this.journal.checkpoint), id, from) })
      this.o.log(`writing without the secondary: data generation ${id} starts at sequence ${from}`)
    } catch (err) {
      this.noteError(`checkpoint write failed (generation not recorded): ${describe(err)}`)
    }
  }

  // ---- streaming ---------------------------------------------------------

  private onAppended (a: Appended): void {
    if (this.keepsPayload(a.seq)) {
      this.journal.buffers.hold(a.payload) // lent by the follower
      this.recent.push(a)
    } else {
      this.recent.push({ seq: a.seq, count: a.count, bytes: a.payload.length, ts: a.ts })
    }
    const gens = historyOf(this.journal.checkpoint)
    // Only when the peer reached into the current generation: one it never
    // acknowledged anything of (a promotion's, or an earlier time alone)
    // already marks the point, and the history stays short.
    if (!this.session && !this.aloneGeneration && !this.stopped && gens[gens.length - 1].from <= this.acked) {
      this.aloneGeneration = true
      void this.startAloneGeneration(a.seq)
    }
    this.session?.wake()
  }

  private flushGathered (s: Session): void {
    if (s.flushSoon) clearImmediate(s.flushSoon)
    s.flushSoon = null
    s.gatheredBytes = 0
    s.conn.flush()
  }

  private async pump (s: Session): Promise<void> {
    try {
      while (!s.closed) {
        const seen = s.wakes
        const full = s.inflight.length >= windowBatches[this.o.mode] || s.inflightBytes >= windowBytes
        if (full || s.sentUpTo >= this.journal.lastSeq) {
          this.flushGathered(s)
          await this.sleep(s, seen)
          continue
        }
        const next = await this.nextBatch(s)
        if (!next || s.closed) { this.flushGathered(s); await this.sleep(s, seen); continue }
        s.sentUpTo = next.seq + next.count - 1
        this.sentBytes += next.payload.length
        // Payloads are lent from the journal's read buffers: each is held
        // until the socket has it, and one from memory until its ack too (its
        // hash is taken then). One read from disk has its hash already.
        const { payload } = next
        const buffers = this.journal.buffers
        if (!next.fromDisk) buffers.hold(payload)
        s.inflight.push({ end: s.sentUpTo, bytes: payload.length, batch: next.fromDisk ? { hash: next.hash } : next, held: next.fromDisk ? null : payload, ts: next.ts })
        s.inflightBytes += payload.length
        // The batches of one burst go out together: at the end of the burst,
        // after every MiB of it, or at the end of the turn (a read from disk).
        s.conn.gather()
        buffers.hold(payload)
        const room = s.conn.sendBatch(payload, () => buffers.release(payload))
        s.gatheredBytes += next.payload.length
        // With the socket's buffer full, now: or the drain never comes.
        if (!room || s.gatheredBytes >= gatherBytesMax) this.flushGathered(s)
        else s.flushSoon ??= setImmediate(() => { s.flushSoon = null; this.flushGathered(s) })
        if (!room) {
          // Whichever comes first; the other listener goes too (one left per wait piled up
          // on a long-lived connection: MaxListenersExceededWarning, unbounded growth).
          await new Promise<void>(resolve => {
            const done = (): void => { s.conn.off('drain', done); s.conn.off('close', done); resolve() }
            s.conn.once('drain', done); s.conn.once('close', done)
          })
        }
      }
    } catch (err) {
      s.conn.fail(err)
    }
  }

  /** Until the next wake, unless one came since `seen`. A read from disk
   *  that ended where the journal ended when it began, while the tail
   *  followed the writer's last batches, slept through their wake: the
   *  pair stood still, the sender idle, until the application wrote again
   *  (RELIABILITY.md, session 17). */
  private sleep (s: Session, seen: number): Promise<void> {
    if (s.wakes !== seen) return Promise.resolve()
    s.waiting ??= new Promise<void>(resolve => { s.endWait = resolve })
    return s.waiting
  }

  /** Whether the payload of the batch appended at `seq` is worth holding:
   *  the pump would send it from memory (recent.ts `wouldSend`). No session:
   *  the next one starts from disk at what was acknowledged. */
  private keepsPayload (seq: Seq): boolean {
    const s = this.session
    return s !== null && !s.closed && this.recent.wouldSend(s.sentUpTo + 1, seq)
  }

  /** The batch after s.sentUpTo: from memory when recent, else from disk. */
  private async nextBatch (s: Session): Promise<{ seq: Seq, count: number, payload: Buffer, hash: Buffer, ts: number, fromDisk?: true } | null> {
    const want = s.sentUpTo + 1
    const held = this.recent.starting(want)
    if (held) return held
    const e = await s.disk.next(want)
    if (!e) return null
    const { batch, payload } = e
    if (batch.seq !== want) throw replError('JOURNAL_GAP', `journal holds sequence ${batch.seq} where ${want} was expected`)
    return { seq: batch.seq, count: batch.records.length, payload, hash: chainHash(payload), ts: batch.ts, fromDisk: true }
  }

  private onMessage (s: Session, m: Message): void {
    switch (m.t) {
      case 'ack': {
        if (m.applied > s.sentUpTo) return s.conn.fail(replError('BAD_MESSAGE', `ack of ${m.applied}, beyond what was sent (${s.sentUpTo})`))
        let last: InFlight | undefined
        const done: InFlight[] = []
        while (s.inflight.length > 0 && s.inflight[0].end <= m.applied) {
          last = s.inflight.shift()!
          s.inflightBytes -= last.bytes
          done.push(last)
        }
        const lastHash = last?.batch.hash // taken before its payload is let go
        for (const f of done) if (f.held) this.journal.buffers.release(f.held)
        // In the secondary's journal, not applied yet: enough for sync
        // writers (written), and fsyncs (stored, on its disk). Never past
        // what was sent on this connection.
        if (m.stored !== undefined) this.stored = Math.max(this.stored, Math.min(m.stored, s.sentUpTo))
        void this.takeAck(m.applied, lastHash)
        const held = Math.max(m.written ?? 0, m.stored ?? 0)
        if (held > 0) this.takeHeld(Math.min(held, s.sentUpTo))
        s.wake()
        return
      }
      case 'manifest': {
        if (!s.manifest) return s.conn.fail(replError('BAD_MESSAGE', 'manifest without a full resync'))
        let vol = s.manifest.get(m.vol)
        if (!vol) s.manifest.set(m.vol, vol = new Map<string, ManifestEntry>())
        for (const e of m.entries) vol.set(e.path, e)
        return
      }
      case 'manifest-end': s.manifestDone?.(); return
      case 'diverged': s.onDiverged?.(m); return
      case 'state': if (s.onState) s.onState(m); else s.conn.fail(replError('BAD_MESSAGE', 'a state message out of turn')); return
      case 'verified': for (const l of this.verifyListeners) l(m); return
      case 'ping': s.conn.send({ t: 'pong', ts: m.ts }); return
      case 'pong': return
      default: s.conn.fail(replError('BAD_MESSAGE', `a primary does not take "${m.t}" messages`))
    }
  }

  /** The secondary holds everything up to `seq`. */
  private async takeAck (seq: Seq, hash?: Buffer): Promise<void> {
    if (seq <= this.acked) return
    this.acked = seq
    if (this.holdUntil === null || seq >= this.holdUntil) this.release(seq)
    const known = hash ?? (await this.journal.hashAt(seq)) ?? undefined
    // A newer ack came while the hash was read: that one is checkpointed
    // (and a timer may have flushed meanwhile: nothing here is held across
    // the await).
    if (seq !== this.acked) return
    // The checkpoint (an fsync) is written at most every 200 ms.
    this.pendingAck = { seq, hash: known }
    if (!this.checkpointTimer) this.checkpointTimer = setTimeout(() => { this.checkpointTimer = null; void this.flushAck() }, 200)
  }

  /** The secondary's journal holds everything up to `seq`. */
  private takeHeld (seq: Seq): void {
    if (this.holdUntil !== null && seq < this.holdUntil) return
    if (seq > this.released || this.stored > this.releasedStored) this.release(seq)
  }

  private release (seq: Seq): void {
    this.holdUntil = null
    this.released = Math.max(this.released, seq)
    this.releasedStored = Math.min(this.stored, this.released)
    // The newest sequence is a poll of the core, which builds its whole
    // status: asked for only while sync mode resumes, not on every ack.
    this.capture.peerAcked(this.released, this.releasedStored, () => this.commit.lastAssigned)
  }

  private async flushAck (): Promise<void> {
    const a = this.pendingAck
    if (!a) return
    this.pendingAck = null
    // The extent map walks every file it holds: once per checkpoint, not per ack.
    this.capture.extents.ack(a.seq)
    try {
      await this.journal.ack(a.seq, a.hash)
    } catch (err) {
      // The checkpoint cannot be written (state directory full or failing):
      // keep the ack, say so, try again; the daemon goes on (this ran from a
      // timer: a throw here was an unhandled rejection that killed it).
      this.noteError(`checkpoint write failed, retrying (nothing is trimmed meanwhile): ${describe(err)}`)
      const newer = this.pendingAck as { seq: Seq, hash?: Buffer } | null // an ack may have come meanwhile
      if (!newer || newer.seq < a.seq) this.pendingAck = a
      if (!this.checkpointTimer && !this.stopped) this.checkpointTimer = setTimeout(() => { this.checkpointTimer = null; void this.flushAck() }, 1000)
      return
    }
    this.overflow.check()
  }
}

function nextMessage<T extends Message['t']> (conn: Connection, t: T, timeoutMs: number): Promise<Extract<Message, { t: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(replError('TIMEOUT', `no ${t} message within ${timeoutMs} ms`)) }, timeoutMs)
    const onMsg = (m: Message) => {
      if (m.t === 'ping' || m.t === 'pong') return
      cleanup()
      conn.pause() // until the awaiting code listens
      if (m.t !== t) reject(replError('BAD_MESSAGE', `expected ${t}, got ${m.t}`))
      else resolve(m as Extract<Message, { t: T }>)
    }
    const onClose = (err: Error | null) => { cleanup(); reject(err ?? replError('PEER_ERROR', 'closed')) }
    const cleanup = () => { clearTimeout(timer); conn.removeListener('message', onMsg); conn.removeListener('close', onClose) }
    conn.on('message', onMsg)
    conn.on('close', onClose)
  })
}
