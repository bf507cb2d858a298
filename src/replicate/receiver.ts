// The secondary: receives batches from the primary and applies them, in
// sequence order, to its copy. Per batch: validate, append to this side's
// journal (verbatim: both journals hash alike), apply record by record
// with a cursor, acknowledge. A crash of the process anywhere re-applies
// from the cursor: the copy is always a prefix of the primary's history at
// a record boundary, and at a batch boundary once the batch is
// acknowledged. (A crash of its machine: a full compare, applied-cursor.ts.)
import fs from 'node:fs'
import { join } from 'node:path'
import type { Batch, Record, Seq } from '../core/records.js'
import { describe, isReplError, replError, type ReplError } from '../core/errors.js'
import { chainHash, decodeBatch } from '../journal/codec.js'
import { describeDamage, type Journal, type JournalDamage } from '../journal/journal.js'
import type { Connection } from './transport.js'
import { handshake, type Identity } from './handshake.js'
import type { ManifestEntry, Message, VerifyAnswer, VerifyItem } from './messages.js'
import { Heartbeat, silentPeerMs } from './heartbeat.js'
import { clipHistory, historyOf, type GenStart } from '../journal/generations.js'
import { changesSince, parseReport, reportText } from './divergence.js'
import { reportBytesMax } from './messages.js'
import { loadSplitBrain, saveSplitBrain, splitBrainError, splitBrainSummary, type SplitBrainRecord } from './split-brain.js'
import { splitBrainWayOut } from './pair-state.js'
import { clearFailbackMarks, readDemoted, readRestated, restateDigest } from './restated.js'
import { prepareRollBack, type Discard } from './roll-back.js'
import { readCursorFd, writeCursorFd, cursorFile, readCursorBoot, writeCursorBoot, clearCursorBoot } from '../journal/applied-cursor.js'
import { bootId } from '../journal/backing-point.js'

/** What the secondary applies to: its volumes (apply/ and volume/, wired by cli). */
export interface ReplicaTarget {
  /** Throws if a record cannot be valid on this side (no I/O). */
  check (r: Record): void
  apply (r: Record): Promise<void>
  /** Flushes the volumes to disk (a sync batch, an fsync record). */
  flush (): Promise<void>
  /** Everything applied on disk, names included (a clean stop). */
  syncAll (): Promise<void>
  /** Every path of every volume with block checksums, for initial sync. */
  manifest (): AsyncGenerator<{ vol: number, entries: ManifestEntry[] }>
}

export interface SecondaryStatus {
  role: 'secondary'
  group: string
  peer: string | null
  peerState: 'waiting' | 'connected' | 'silent'
  peerSilentSec: number
  appliedSeq: Seq
  /** In the journal's file (acknowledged to sync-mode writes); applied next. */
  storedSeq: Seq
  /** In the journal on this disk (acknowledged to sync-mode fsyncs). */
  durableSeq: Seq
  consistent: boolean
  generation: string
  batchesApplied: number
  /** Flushes of the copy's files (fsync barriers, those of barrierMergeMs together; trims). */
  copyFlushes: number
  bytesApplied: number
  lastError: string | null
  resyncUntil: Seq | null
  /** An apply that cannot go on (full or failing copy): what, where, since when. */
  applyError: ApplyBlock | null
  damage: string[] // journal damage met since start (named: file, byte, sequences)
  generations: GenStart[]
  splitBrain: ReturnType<typeof splitBrainSummary> | null
}

export interface ApplyBlock {
  seq: Seq
  vol: number
  path: string
  message: string
  since: string // ISO time of the first failure
  attempts: number
}

/** Retry delays of a blocked apply: the operator may free space any time. */
const retryMs = [250, 500, 1000, 2000, 5000]
/** How long an applied ack after a sync-mode batch waits for a written or stored ack to carry it. */
const appliedAckDelayMs = 10
/** An fsync record's barrier (the copy's files made durable) is flushed at
 *  most this long after it applied, with every barrier that came meanwhile:
 *  one disk flush (about 1 ms here) for them all, not one per fsync the
 *  application made. Nothing waits for these flushes: a sync-mode fsync is
 *  acknowledged once its batch is in this side's journal, which keeps every
 *  batch until a flush of the copy covers it (trim); and a crash of this
 *  machine marks the copy inconsistent whatever was flushed (constructor).
 *  A flush per barrier cost the application's own fsyncs on the primary
 *  (native-notes/performance.md 18), and made a secondary catching up a
 *  backlog no faster than the application had been (section 12). */
const barrierMergeMs = 100
/** Trims run beside the apply (trimSoon); at this many segments in the
 *  journal, the apply waits for the one under way: a copy slow to flush
 *  would otherwise let the journal grow as fast as batches come. */
const untrimmedSegmentsMax = 8

/** A batch received; once stored, the journal's mark before it (for `undo`) and its chain hash. */
interface Arrived { payload: Buffer, batch: Batch, before: ReturnType<Journal['mark']> | null, hash: Buffer | null }

/** Written by `resolve --discard-local`: what this copy rolled back
 *  (divergence.ts Rollback), sent to the primary until a rebase. */
export const rollbackFile = 'rollback.json'

function readRollback (dir: string): string | null {
  try { return fs.readFileSync(join(dir, rollbackFile), 'utf8') } catch { return null }
}

export class Secondary {
  private conn: Connection | null = null
  private hb: Heartbeat | null = null
  private connNode = ''
  private applied: Seq
  private consistent: boolean
  private generation: string
  private resyncUntil: Seq | null = null
  private queue: Promise<void> = Promise.resolve()
  private readonly cursorFd: number
  private cursorAt: Seq // the applied sequence the cursor file counts as holding (see the constructor)
  private cursorSoon: NodeJS.Immediate | null = null
  /** The oldest fsync record applied but not yet flushed, and when (see barrierMergeMs). */
  private barrier: { since: number, r: Record, seq: Seq } | null = null
  private barrierTimer: NodeJS.Timeout | null = null
  /** The trims running beside the apply (trimSoon), and the point the next is to reach. */
  private trimming: Promise<void> | null = null
  private trimWanted: { end: Seq, hash: Buffer } | null = null
  /** Batches received and not stored yet: those of one read of the socket (storeSoon). */
  private arrived: Arrived[] = []
  /** The cursor failed its check at start: what past the checkpoint's
   *  appliedSeq is on the copy is unknown, so nothing is re-applied from
   *  there (only a record's worth is sure to re-apply cleanly) until the
   *  primary's full resync rebases history. */
  private cursorDamaged: boolean
  private batches = 0
  private flushes = 0
  private bytes = 0
  private lastError: string | null = null
  private pendingRebases = 0
  private deferredStores = 0
  private storedAcked: Seq = 0 // the last `stored` told to the primary on this connection
  private storedAckScheduled = false
  private writtenAcked: Seq = 0 // the last `written` (or `stored`) told to it
  private writtenAckScheduled = false
  private appliedAcked: Seq = 0 // the last `applied` told to it (a rebase or roll-back moves `applied` back below it)
  private appliedAckTimer: NodeJS.Timeout | null = null
  private appliedAckSoon: NodeJS.Immediate | null = null
  private blocked: ApplyBlock | null = null
  private closing = false
  private wakeRetry: (() => void) | null = null
  /** The data generations of the copy: the primary's, adopted as followed. */
  private history: GenStart[]
  /** A split brain found with a primary: every primary is refused until resolved. */
  private splitBrain: SplitBrainRecord | null = null
  /** Online verify: reads of the copy waiting for their sequence to be applied. */
  private readonly verifyWaiters = new Map<Seq, Array<(missed: boolean) => void>>()
  /** Reads the copy for an online verify (verify-read.ts; set by the wiring). */
  readCopy: ((items: VerifyItem[]) => VerifyAnswer[]) | null = null
  /** Saves writes this side rolls back at a failback (set by the wiring). */
  discard: Discard | null = null

  constructor (private readonly journal: Journal, private readonly target: ReplicaTarget, private readonly me: Identity,
    private readonly log: (l: string) => void) {
    this.cursorFd = fs.openSync(join(journal.dir, cursorFile), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600)
    const cursor = readCursorFd(this.cursorFd)
    if (typeof cursor === 'string') {
      journal.stateDamage.push(`applied cursor damaged: ${join(journal.dir, cursorFile)}: ${cursor}; the copy counts as applied through sequence ${journal.checkpoint.appliedSeq} (the checkpoint) and inconsistent: the primary compares every block`)
    }
    this.cursorDamaged = typeof cursor === 'string'
    const known = typeof cursor === 'object' ? cursor : null
    this.applied = Math.max(journal.checkpoint.appliedSeq, known?.applied ?? 0)
    // As found: a damaged cursor stays so until a rebase writes it (nothing is re-applied from it).
    this.cursorAt = this.applied
    // A fresh secondary is "consistent" only in that it claims nothing yet.
    this.consistent = typeof cursor === 'string' ? false : known?.consistent ?? true
    this.generation = journal.checkpoint.generation
    this.history = historyOf(journal.checkpoint)
    this.splitBrain = loadSplitBrain(journal.dir)
    const onDamage = (d: JournalDamage) => { this.lastError = describeDamage(d); this.log(this.lastError) }
    if (this.applied > journal.lastSeq) {
      // Applied batches are never trimmed from the newest segment: a journal
      // ending before them lost segments (truncated, deleted). Nothing is
      // lost from the copy; its chain hash there is unknown, so the primary
      // resyncs what it cannot prove.
      journal.stateDamage.push(`journal damaged: ${journal.dir}: it ends at sequence ${journal.lastSeq}, before sequence ${this.applied} applied here (a truncated or deleted segment); the copy holds them, the primary compares what it cannot prove`)
    }
    const downOn = readCursorBoot(journal.dir)
    if (downOn !== null && downOn !== bootId() && this.consistent) {
      // The copy's files are made durable only at flushes; what was
      // applied since, the cursor included, may or may not have reached
      // the disk. Re-applying from the last flush is no answer: records
      // applied again over a copy that holds some of their later effects
      // (a rename whose target was since replaced) can end somewhere else.
      journal.stateDamage.push(`this secondary's machine went down under it (it ran on boot ${downOn}, this is ${bootId()}: a power loss or a crash of the system): the copy may lack writes its cursor counts as applied; it is marked inconsistent: the primary compares every block`)
      this.consistent = false
      this.writeCursor()
      fs.fsyncSync(this.cursorFd)
    }
    writeCursorBoot(journal.dir, bootId())
    for (const d of journal.stateDamage) { this.lastError = d; this.log(d) }
    journal.damage.forEach(onDamage)
    journal.damageListeners.push(onDamage)
  }

  /** At start: re-apply what the journal holds past the cursor, on the
   *  apply queue (a blocked apply there must not keep `serve` from
   *  listening and reporting it). */
  startRecovery (): void {
    this.enqueueLocal(async () => {
      const n = await this.recover()
      if (n > 0) this.log(`recovery: re-applied ${n} records from the journal past the applied cursor`)
    })
  }

  /** After a crash: apply what the journal holds past the cursor. */
  async recover (): Promise<number> {
    if (this.cursorDamaged) return 0
    let n = 0
    try {
      for await (const { batch, payload } of this.journal.read(this.applied + 1)) {
        if (batch.seq > this.applied + 1) {
          // A hole in this side's journal: what it held cannot be applied,
          // and applying past it would skip history.
          const d = [...this.journal.damage].reverse().find(x => x.fromSeq <= this.applied + 1 && this.applied + 1 <= x.toSeq)
          throw replError('JOURNAL_DAMAGE', d ? describeDamage(d) : `journal has no sequences ${this.applied + 1}..${batch.seq - 1}`)
        }
        for (let i = 0; i < batch.records.length; i++) {
          const seq = batch.seq + i
          if (seq <= this.applied) continue
          await this.applyOne(batch.records[i], seq)
          n++
        }
        this.trimSoon(batch.seq + batch.records.length - 1, chainHash(payload))
      }
      // All applied, and a trim may still be owed: a store that found the
      // state directory full started a segment of its own, which makes the
      // one before it trimmable, and no batch end comes to trim it while
      // every store fails (an apply that kept up left none to re-apply).
      if (this.applied === this.journal.lastSeq) this.trimSoon(this.applied, this.journal.lastHash)
    } catch (err) {
      if (isReplError(err, 'APPLY_BLOCKED')) return n // stopping while blocked: the journal keeps the batch
      // The copy stopped inside a batch it cannot finish: it is no longer a
      // prefix at a batch boundary. Say so; the primary resyncs it in full.
      this.markInconsistent(`recovery could not re-apply the journal past sequence ${this.applied}: ${describe(err)}`)
    }
    return n
  }

  private markInconsistent (why: string): void {
    this.consistent = false
    this.resyncUntil = null
    this.writeCursor()
    this.lastError = why
    this.log(`${why}; the copy is marked inconsistent until a full resync`)
  }

  status (): SecondaryStatus {
    const silentMs = this.conn && this.hb ? this.hb.silentMs : 0
    const silent = silentMs > silentPeerMs
    return {
      role: 'secondary', group: this.me.group, peer: this.conn?.remote ?? null,
      peerState: this.conn ? (silent ? 'silent' : 'connected') : 'waiting', peerSilentSec: silent ? Math.round(silentMs / 100) / 10 : 0,
      appliedSeq: this.applied, storedSeq: this.journal.lastSeq, durableSeq: this.journal.durableThrough, consistent: this.consistent && !this.blocked, generation: this.generation, batchesApplied: this.batches, copyFlushes: this.flushes,
      bytesApplied: this.bytes, lastError: this.lastError, resyncUntil: this.resyncUntil, applyError: this.blocked && { ...this.blocked },
      damage: [...this.journal.stateDamage, ...this.journal.damage.map(d => describeDamage(d))],
      generations: clipHistory(this.history, this.applied),
      splitBrain: this.splitBrain ? splitBrainSummary(this.splitBrain) : null
    }
  }

  /** A new connection. It takes the primary's place only once it has
   *  authenticated (an unauthenticated client cannot hold the secondary).
   *  The same primary node replaces its older connection (likely dead: a
   *  reconnect after a cut link, before the heartbeat noticed); another
   *  node is refused while one is connected. */
  attach (conn: Connection): void {
    const hb = new Heartbeat(conn, () => this.log(`primary ${conn.remote} silent: dropping the connection`))
    conn.on('close', err => {
      hb.stop()
      if (this.conn === conn) {
        this.conn = null
        // Its queued applies are dropped with it, but what it stored was
        // acknowledged (sync writers returned): apply it now, not only when
        // a primary is back (it may never be: a failover).
        if (!this.closing) this.startRecovery()
      }
      if (err) {
        this.lastError = describe(err)
        this.log(`connection from ${conn.remote} ended: ${describe(err)}`)
      } else if (this.conn === null) this.log(`primary ${conn.remote} disconnected`)
    })
    handshake(conn, this.me, 10_000).then(peer => {
      if (this.splitBrain) {
        const sb = this.splitBrain
        conn.fail(splitBrainError(sb.point, `this secondary recorded a split brain with primary ${sb.peerNode} at sequence ${sb.point} (${sb.detected}); it takes no primary's stream until it is resolved`, this.journal.dir, 'secondary'))
        return
      }
      if (this.blocked) {
        // Nothing can be applied or acknowledged now: tell the primary why
        // (its status shows it) rather than take batches it would wait on.
        conn.fail(this.blockedError())
        return
      }
      const old = this.conn
      if (old && this.connNode !== peer.node) {
        conn.fail(replError('PEER_ERROR', `this secondary already serves a primary (${old.remote})`))
        return
      }
      this.log(`primary ${peer.node} at ${conn.remote} authenticated`)
      this.conn = conn
      this.hb = hb
      this.connNode = peer.node
      this.pendingRebases = 0 // queued jobs of an earlier connection will be skipped
      this.verifyWaiters.clear() // they answer only the connection that asked
      this.deferredStores = 0
      this.storedAcked = 0
      this.writtenAcked = 0
      old?.fail(replError('PEER_ERROR', `replaced by a new connection from the primary (${conn.remote})`))
      hb.start()
      conn.on('message', m => this.onMessage(conn, m))
      conn.resume()
      // A previous connection may have left batches stored but not applied
      // (they arrive ahead of their apply): apply them first, as after a crash.
      this.enqueue(conn, async () => {
        await this.recover()
        await this.sendState(conn)
      })
    }).catch(err => this.log(`handshake with ${conn.remote} failed: ${describe(err)}`))
  }

  /** Tells the primary how far the copy is applied (it trims its journal
   *  and its window by this). After a sync-mode batch the written or stored ack that
   *  released its writers is out already, and the next one carries
   *  `applied` too: the separate ack waits a moment (one message and one
   *  system call less per batch on each side while writers keep coming).
   *  After an async-mode batch it goes once the turn of the event loop
   *  ends: one ack for every batch that came in one read of the socket,
   *  not one each (each ack costs both sides a system call and a wake-up,
   *  and the primary a chain hash and a call into the core). */
  private ackApplied (conn: Connection, lazy: boolean): void {
    if (lazy) this.appliedAckTimer ??= setTimeout(() => { this.appliedAckTimer = null; this.ackAppliedNow(conn) }, appliedAckDelayMs)
    else this.appliedAckSoon ??= setImmediate(() => { this.appliedAckSoon = null; this.ackAppliedNow(conn) })
  }

  /** The deferred applied ack, unless the connection changed or another ack carried it. */
  private ackAppliedNow (conn: Connection): void {
    if (this.conn === conn && this.applied !== this.appliedAcked) this.sendAck(conn)
  }

  private sendAck (conn: Connection, held?: { stored: Seq } | { written: Seq }): void {
    this.appliedAcked = this.applied
    conn.send({ t: 'ack', applied: this.applied, ...held })
  }

  /** Stores `a` with the other batches of this read of the socket, in one
   *  write, once the read's messages are handled: a microtask, before
   *  their acks and applies (which store them first if they come earlier).
   *  One `writev` per batch was a quarter of this side's CPU under small
   *  writes (native-notes/performance.md 19). */
  private storeSoon (conn: Connection, a: Arrived): void {
    this.arrived.push(a)
    if (this.arrived.length === 1) queueMicrotask(() => this.storeArrived(conn))
  }

  /** Stores what arrived and is not stored yet; false: it failed, and the connection ends. */
  private storeArrived (conn: Connection): boolean {
    if (this.arrived.length === 0) return true
    const list = this.arrived.splice(0)
    try {
      this.store(list)
    } catch (err) {
      this.reject(conn, err)
      return false
    }
    return true
  }

  private store (list: Arrived[]): void {
    this.journal.appendPayloads(list).forEach((stored, i) => {
      list[i].before = stored.before
      list[i].hash = stored.appended.hash
    })
  }

  /** Tells the primary as soon as its sync-mode batches are in this
   *  journal's file, before they are applied: their writers may return then
   *  (a crash of this process keeps the file's page cache, and recovery
   *  re-applies it from the journal), as a local write returns once in the
   *  page cache. Once per read of the socket: its messages are handled in
   *  one synchronous loop, and the microtask runs right after it, so one ack
   *  covers them all and goes before any of them is applied. */
  private scheduleWrittenAck (conn: Connection): void {
    if (this.writtenAckScheduled) return
    this.writtenAckScheduled = true
    queueMicrotask(() => { this.writtenAckScheduled = false; this.ackWritten(conn) })
  }

  private ackWritten (conn: Connection): void {
    if (!this.storeArrived(conn)) return
    const written = this.journal.lastSeq
    if (this.conn !== conn || written <= this.writtenAcked) return
    this.writtenAcked = written
    this.sendAck(conn, { written })
  }

  /** Tells the primary once a sync-mode batch that holds an fsync is on
   *  disk in this journal, with everything before it: the fsync may return
   *  then (an application's fsync reaches this disk, not only this
   *  journal's file). Once per turn of the event loop: every batch that
   *  came in one read of the socket is stored first, then one fdatasync
   *  covers them all (fsyncs in flight together cost one sync). */
  private scheduleStoredAck (conn: Connection): void {
    if (this.storedAckScheduled) return
    this.storedAckScheduled = true
    setImmediate(() => { this.storedAckScheduled = false; this.ackStored(conn).catch(() => {}) })
  }

  private async ackStored (conn: Connection): Promise<void> {
    if (!this.storeArrived(conn)) return
    let synced = false
    try { synced = this.journal.syncHere() } catch {}
    if (!synced) await this.journal.sync() // an error: the apply job's, reported there (the scheduled call drops it)
    const stored = this.journal.durableThrough
    if (this.conn !== conn || stored <= this.storedAcked) return
    this.storedAcked = stored
    this.writtenAcked = Math.max(this.writtenAcked, stored)
    this.sendAck(conn, { stored })
  }

  /** Where the copy stands: sent at connect, and after a roll-back. A side
   *  demoted since it last took anything, and the records its unclean-stop
   *  recoveries re-journalled, say so (restated.ts). */
  private async sendState (conn: Connection): Promise<void> {
    // The primary counts what is applied here as on this disk: its fsyncs
    // that waited across the reconnect go (their batches are not sent again).
    await this.journal.sync()
    const dir = this.journal.dir
    const rollback = this.consistent ? null : readRollback(dir)
    const demoted = readDemoted(dir)
    const digest = await restateDigest(this.journal, readRestated(dir), this.journal.checkpoint.acked)
    const restated = digest && JSON.stringify(digest)
    conn.send({
      t: 'state', applied: this.applied, hash: await this.appliedHash(), generation: this.generation, consistent: this.consistent, history: clipHistory(this.history, this.applied),
      ...(rollback ? { rollback } : {}), ...(demoted?.at === this.applied ? { demoted: demoted.at } : {}),
      ...(restated && Buffer.byteLength(restated) <= reportBytesMax ? { restated } : {}),
      ...(this.journal.checkpoint.origin ? { origin: this.journal.checkpoint.origin } : {})
    })
  }

  /** Fast failback: this side's sequences past the common point go (the
   *  primary decided, roll-back.ts): saved first unless they only restate
   *  what the primary holds; then it stands at the point and says so. */
  private async rollBack (conn: Connection, m: Extract<Message, { t: 'roll-back' }>): Promise<void> {
    const dir = this.journal.dir
    const { changed } = await prepareRollBack(this.journal, dir, this.applied, m, this.discard, this.log)
    await this.journal.rebase(m.common + 1, Buffer.from(m.prev))
    this.storedAcked = 0 // history goes on from m.common
    this.writtenAcked = 0
    this.applied = m.common
    this.history = clipHistory(this.history, m.common)
    this.generation = this.history[this.history.length - 1].id
    this.consistent = m.drop // else the primary sends what either side changed since
    this.writeCursor()
    await this.journal.setCheckpoint({ appliedSeq: this.applied, history: this.history, generation: this.generation })
    const list = !m.drop && changed ? JSON.stringify({ point: m.common, files: changed }) : null
    if (list && Buffer.byteLength(list) <= reportBytesMax) fs.writeFileSync(join(dir, rollbackFile), list)
    else fs.rmSync(join(dir, rollbackFile), { force: true })
    clearFailbackMarks(dir)
    this.log(`failback: rolled back to sequence ${m.common}; ${m.drop ? 'the copy is consistent there' : 'the primary sends what either side changed since'}`)
    await this.sendState(conn)
  }

  /** The chain position the primary checks: the hash of the batch ending
   *  at the applied sequence (zeros when unknown: the primary then resyncs). */
  private async appliedHash (): Promise<Buffer> {
    if (this.applied === this.journal.lastSeq) return this.journal.lastHash
    return (await this.journal.hashAt(this.applied).catch(() => null)) ?? Buffer.alloc(16)
  }

  private onMessage (conn: Connection, m: Message): void {
    switch (m.t) {
      case 'batch': {
        // Decode now (a bad batch ends the connection before anything is
        // queued), apply in order on the queue.
        let batch
        try {
          batch = decodeBatch(m.b)
          if (batch.group !== this.me.group) throw replError('GROUP_MISMATCH', `batch for group ${batch.group}`)
          for (const r of batch.records) this.target.check(r) // the whole batch, before any of it is stored
        } catch (err) {
          return this.reject(conn, err)
        }
        // A view, not a copy (the frame's bytes are this message's alone).
        const payload = Buffer.from(m.b.buffer, m.b.byteOffset, m.b.length)
        // Stored on arrival, applied in turn: batches that arrive while one
        // waits for its fdatasync are in the journal by then, so one sync
        // covers them all (group commit on this side). Behind a rebase, the
        // store waits for the rebase.
        // Once one store waits in the queue, every later one waits too:
        // stores must keep arrival order.
        const arrived: Arrived = { payload, batch, before: null, hash: null }
        const deferred = this.pendingRebases > 0 || this.deferredStores > 0
        const toDisk = batch.sync && batch.records.some(r => r.kind === 'fsync')
        if (deferred) this.deferredStores++
        else {
          this.storeSoon(conn, arrived)
          if (toDisk) this.scheduleStoredAck(conn)
          else if (batch.sync) this.scheduleWrittenAck(conn)
        }
        this.enqueue(conn, async () => {
          try {
            await this.storeAndApply(conn, arrived, deferred, toDisk)
          } finally {
            conn.releaseBatch(payload) // stored and applied, or never to be: its buffer is read into again
          }
        }, true)
        return
      }
      case 'rebase':
        this.pendingRebases++
        this.enqueue(conn, async () => {
          this.log(`primary rebases history at sequence ${m.seq}${m.full ? ' with a full resync' : ' with a resync of changed parts'}: copy inconsistent until it completes`)
          await this.journal.rebase(m.seq, Buffer.from(m.prev))
          this.storedAcked = 0 // history restarts at m.seq
          this.writtenAcked = 0
          fs.rmSync(join(this.journal.dir, rollbackFile), { force: true }) // what it listed is in this resync, or a full one covers it
          clearFailbackMarks(this.journal.dir)
          this.applied = m.seq - 1
          this.consistent = false
          this.cursorDamaged = false // rewritten below, at the new base
          this.answerVerifiesUpTo(Infinity) // missed: the copy is rebuilt
          this.generation = m.generation
          this.resyncUntil = null
          this.writeCursor()
          await this.journal.setCheckpoint({ generation: m.generation, appliedSeq: this.applied })
          this.pendingRebases = Math.max(0, this.pendingRebases - 1) // batches may be stored on arrival again
          if (m.full) {
            for await (const part of this.target.manifest()) conn.send({ t: 'manifest', vol: part.vol, entries: part.entries })
            conn.send({ t: 'manifest-end' })
          }
        })
        return
      case 'consistent':
        this.enqueue(conn, async () => {
          this.resyncUntil = m.seq
          if (this.applied >= m.seq) this.becomeConsistent()
        })
        return
      case 'history':
        this.enqueue(conn, async () => {
          clearFailbackMarks(this.journal.dir) // following a primary: a demote's or recovery's record is done
          this.history = m.gens
          // Which primary (node, boot) the batches from here come from: one
          // that lost them from its journal knows by this that its backing
          // store still holds them (replicate/plan.ts).
          await this.journal.setCheckpoint({ history: m.gens, origin: m.origin })
        })
        return
      case 'diverged':
        this.enqueue(conn, async () => {
          const names = this.me.volumes.map(v => v.name)
          const local = await changesSince(this.journal, m.common + 1, this.applied, names)
          conn.send({ t: 'diverged', common: m.common, report: reportText(local, reportBytesMax) })
          this.splitBrain = {
            detected: new Date().toISOString(), side: 'secondary', node: this.me.node, peerNode: this.connNode, point: m.common,
            common: clipHistory(this.history, m.common).pop()!, local, remote: parseReport(m.report), wayOut: splitBrainWayOut(m.common, this.journal.dir, 'secondary')
          }
          await saveSplitBrain(this.journal.dir, this.splitBrain)
          this.log(`SPLIT_BRAIN: split brain with primary ${this.connNode}: ${this.splitBrain.wayOut}`)
        })
        return
      case 'roll-back': this.enqueue(conn, () => this.rollBack(conn, m)); return
      case 'verify': return this.onVerify(conn, m)
      case 'ping': conn.send({ t: 'pong', ts: m.ts }); return
      case 'pong': return
      default:
        return this.reject(conn, replError('BAD_MESSAGE', `a secondary does not take "${m.t}" messages`))
    }
  }

  /** A batch's turn on the queue: stored (if its read's store has not run
   *  yet), acknowledged as its mode asks, applied, acknowledged as applied. */
  private async storeAndApply (conn: Connection, arrived: Arrived, deferred: boolean, toDisk: boolean): Promise<void> {
    const { batch, payload } = arrived
    if (deferred) {
      this.deferredStores--
      this.store([arrived])
    } else this.storeArrived(conn) // if its read's store has not run yet
    const { before, hash } = arrived
    if (!before || !hash) return // its store failed: the connection ends
    // Acknowledged before it is applied: by the ack scheduled at its
    // arrival, or here (a deferred store; for a sync, this runs before
    // the turn's scheduled one would, and one sync covers every batch
    // of the socket read).
    if (toDisk) await this.ackStored(conn)
    else if (batch.sync) this.ackWritten(conn)
    if (this.journal.segmentCount > untrimmedSegmentsMax) await this.trimsSettled()
    try {
      for (let i = 0; i < batch.records.length; i++) {
        if (batch.seq + i > this.applied) await this.applyOne(batch.records[i], batch.seq + i) // recovery may have applied it
      }
    } catch (err) {
      // Stopping while the copy's storage refuses it: the batch stays
      // in the journal and is applied at the next start.
      if (isReplError(err, 'APPLY_BLOCKED')) throw err
      // Refused halfway (what only the copy could tell, a symlink
      // leading out): the batch leaves the journal, so neither a
      // restart nor the chain keeps it; the copy is mid-batch.
      await this.trimsSettled()
      await this.journal.undo(before)
      if (this.consistent) this.markInconsistent(`batch ${batch.seq} refused after part of it was applied`)
      throw err
    }
    this.batches++
    this.bytes += payload.length
    if (this.resyncUntil !== null && this.applied >= this.resyncUntil) this.becomeConsistent()
    this.ackApplied(conn, batch.sync)
    this.trimSoon(batch.seq + batch.records.length - 1, hash)
  }

  /** Queues `job` in arrival order. Only a batch's apply runs `besideTrims`:
   *  any other job may move the journal's history or checkpoint (a rebase,
   *  a roll-back), or read segments a trim deletes, so it waits for them. */
  private enqueue (conn: Connection, job: () => Promise<void>, besideTrims = false): void {
    this.queue = this.queue.then(async () => {
      if (!besideTrims) await this.trimsSettled()
      if (this.conn !== conn) return // that connection is gone: its queued work with it
      try {
        await job()
      } catch (err) {
        this.reject(conn, err)
      }
    })
  }

  /** Work of no connection (start-up recovery, catching up after a blocked
   *  apply): it runs whoever is connected. */
  private enqueueLocal (job: () => Promise<void>): void {
    this.queue = this.queue.then(job).catch(err => {
      this.lastError = describe(err)
      this.log(`apply: ${describe(err)}`)
    })
  }

  private async applyOne (r: Record, seq: Seq): Promise<void> {
    // A write applied again lands the same bytes: after a crash, a run of
    // writes re-applies from the cursor to the same result, so the cursor
    // is written once after the run, not per record (a system call each).
    // Any other record may not re-apply cleanly across others (a rename
    // after a write to its old name): the cursor stands right before it
    // and is written right after it, as a crash between the two always allowed.
    const rerunnable = r.kind === 'write'
    if (!rerunnable) this.catchUpCursor()
    for (let attempt = 0; ; attempt++) {
      try {
        await this.target.apply(r)
        break
      } catch (err) {
        // The copy's storage refuses (full, failing): never skipped, even
        // during a resync. Wait and retry the same record.
        if (isReplError(err, 'APPLY_BLOCKED')) {
          await this.waitBlocked(r, seq, err, attempt)
          continue
        }
        // While a resync rebuilds the copy, an operation may meet a path the
        // resync has not restated yet; the resync restates every path such
        // operations touch, so it is skipped here, not an error.
        if (this.consistent || !isReplError(err, 'APPLY_FAILED')) throw err
        break
      }
    }
    if (r.kind === 'fsync' && !this.barrier) {
      this.barrier = { since: Date.now(), r, seq }
      // Flushed then even if nothing more comes to apply.
      this.barrierTimer ??= setTimeout(() => {
        this.barrierTimer = null
        if (!this.closing) this.enqueueLocal(() => this.flushBarrier())
      }, barrierMergeMs)
    }
    if (this.barrier && Date.now() - this.barrier.since >= barrierMergeMs) await this.flushBarrier()
    if (this.blocked) this.unblock(seq)
    this.applied = seq
    if (rerunnable) this.cursorSoon ??= setImmediate(() => { this.cursorSoon = null; this.catchUpCursor() })
    else this.writeCursor()
    if (this.verifyWaiters.size > 0) this.answerVerifiesUpTo(seq)
  }

  /** Makes the copy's files durable: every barrier applied before it began is
   *  met (a trim's flush runs beside the apply: what applies meanwhile may
   *  not be in it). */
  private async flushFiles (): Promise<void> {
    const covered = this.applied
    await this.target.flush()
    this.flushes++
    if (this.barrier && this.barrier.seq <= covered) this.barrier = null
  }

  /** The pending barrier's flush, if a flush has not met it already. */
  private async flushBarrier (): Promise<void> {
    if (this.barrier) await this.flushCopy(this.barrier.r, this.barrier.seq)
  }

  /** flushFiles for an fsync record's barrier, retried like the record `r`
   *  it follows while the copy's storage refuses. */
  private async flushCopy (r: Record, seq: Seq): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.flushFiles()
      } catch (err) {
        if (!isReplError(err, 'APPLY_BLOCKED')) throw err
        await this.waitBlocked(r, seq, err, attempt)
      }
    }
  }

  /** An online verify asks what the copy holds exactly at sequence `at`,
   *  before `at + 1` applies: the primary read its side at `at` under its
   *  group lock and sent this before any later batch, so the copy is at or
   *  before `at` now (already past it only after a reconnect: `missed`, the
   *  primary asks again). The read is synchronous: no apply falls inside it. */
  private onVerify (conn: Connection, m: Extract<Message, { t: 'verify' }>): void {
    const answer = (missed: boolean): void => {
      if (this.conn !== conn) return
      const consistent = this.consistent && !this.blocked && this.readCopy !== null
      let answers: VerifyAnswer[] = []
      if (!missed && consistent) {
        try { answers = this.readCopy!(m.items) } catch (err) { return this.reject(conn, err) }
      }
      conn.send({ t: 'verified', id: m.id, at: m.at, missed, consistent, answers })
    }
    if (this.applied > m.at) return answer(true)
    // At `at` already: after the jobs queued now (none applies past `at`).
    if (this.applied === m.at) return this.enqueue(conn, async () => answer(this.applied !== m.at))
    const list = this.verifyWaiters.get(m.at)
    if (list) list.push(answer)
    else this.verifyWaiters.set(m.at, [answer])
  }

  /** Answers the verify reads waiting for `seq` (and, as missed, any below it). */
  private answerVerifiesUpTo (seq: Seq): void {
    for (const [at, list] of this.verifyWaiters) {
      if (at > seq) continue
      this.verifyWaiters.delete(at)
      for (const answer of list) answer(at < seq)
    }
  }

  /** Lets the journal go of segments wholly applied, once what they hold is
   *  on disk in the copy (files fsynced, cursor and checkpoint written): a
   *  crash then re-applies only from the journal that is left. Asked for
   *  when the oldest segment can go (about once per segment), at the end
   *  `end` of a batch whose chain hash is `hash` (it keeps the chain across
   *  the trim: only where the cursor is exactly there).
   *
   *  The trim runs beside the apply, which never waits for it: each one
   *  waits for the disk (the copy's files, the cursor, the checkpoint, a
   *  segment's deletion), 100-400 ms per 64 MiB segment here under a stream
   *  of large writes, and the apply stood still that long each time
   *  (native-notes/performance.md 23). One runs at a time; asked for
   *  meanwhile, the next reaches the latest point asked. */
  private trimSoon (end: Seq, hash: Buffer): void {
    const below = this.journal.trimmableBelow
    if (below === null || below > this.applied + 1 || this.blocked || this.applied !== end) return
    this.trimWanted = { end, hash }
    this.trimming ??= this.runTrims().finally(() => { this.trimming = null })
  }

  private async runTrims (): Promise<void> {
    for (let want = this.trimWanted; want !== null; want = this.trimWanted) {
      this.trimWanted = null
      try {
        await this.flushFiles()
        // At `end` or past it (what applied meanwhile, maybe not flushed):
        // only a crash of this machine loses unflushed writes, and that marks
        // the copy inconsistent whatever the cursor says (constructor).
        this.catchUpCursor()
        // Through the pool: batches arriving meanwhile are stored and applied.
        await new Promise<void>((resolve, reject) => fs.fsync(this.cursorFd, err => err ? reject(err) : resolve()))
        await this.journal.ack(want.end, want.hash, { appliedSeq: want.end })
      } catch (err) {
        this.log(`journal trim postponed: ${describe(err)}`) // the next batch end tries again
      }
    }
  }

  /** No trim runs or is owed (each one asked for has run). */
  private async trimsSettled (): Promise<void> {
    while (this.trimming) await this.trimming
  }

  /** One failed attempt of a blocked apply: report it (first time, and when
   *  the reason changes), drop the primary's connection with the reason,
   *  sleep with backoff. Throws when the daemon stops meanwhile. */
  private async waitBlocked (r: Record, seq: Seq, err: ReplError, attempt: number): Promise<void> {
    const first = !this.blocked || this.blocked.seq !== seq
    const changed = first || this.blocked!.message !== err.message
    if (first) this.blocked = { seq, vol: r.vol, path: r.path, message: err.message, since: new Date().toISOString(), attempts: 0 }
    const b = this.blocked!
    b.attempts++
    b.message = err.message
    this.lastError = describe(err)
    if (changed) {
      this.log(`apply of sequence ${seq} blocked: ${describe(err)}; the batch is kept in the journal and retried, the copy is not consistent until it applies`)
    }
    if (first && this.conn) this.conn.fail(this.blockedError())
    if (this.closing) throw err
    await new Promise<void>(resolve => {
      const t = setTimeout(() => { this.wakeRetry = null; resolve() }, retryMs[Math.min(attempt, retryMs.length - 1)])
      this.wakeRetry = () => { clearTimeout(t); this.wakeRetry = null; resolve() }
    })
    if (this.closing) throw err
  }

  private blockedError (): ReplError {
    const b = this.blocked!
    return replError('APPLY_BLOCKED', `the secondary cannot apply sequence ${b.seq} (since ${b.since}, ${b.attempts} attempts): ${b.message}`,
      'free space or fix the copy\'s storage on the secondary; it retries by itself')
  }

  private unblock (seq: Seq): void {
    const b = this.blocked!
    this.blocked = null
    this.lastError = null
    this.log(`apply of sequence ${seq} succeeded after ${b.attempts} failed attempts since ${b.since}; applying resumes`)
    // Batches stored behind it belonged to the dropped connection: apply
    // them now, not only when the primary is back.
    this.enqueueLocal(async () => { await this.recover() })
  }

  private becomeConsistent (): void {
    this.consistent = true
    this.resyncUntil = null
    this.writeCursor()
    this.log(`resync complete at sequence ${this.applied}: the copy is consistent`)
  }

  /** The cursor: applied sequence + consistent flag, rewritten in place
   *  (a process crash keeps it; trims make it durable): after each record
   *  but a run of writes, which gets it once after the run (applyOne). */
  private writeCursor (): void {
    writeCursorFd(this.cursorFd, { applied: this.applied, consistent: this.consistent })
    this.cursorAt = this.applied
  }

  private catchUpCursor (): void {
    if (this.cursorAt !== this.applied) this.writeCursor()
  }

  private reject (conn: Connection, err: unknown): void {
    this.lastError = describe(err)
    this.log(`refusing input from ${conn.remote}: ${describe(err)}`)
    conn.fail(err)
  }

  async close (): Promise<void> {
    this.closing = true
    if (this.appliedAckTimer) clearTimeout(this.appliedAckTimer)
    if (this.barrierTimer) clearTimeout(this.barrierTimer)
    if (this.appliedAckSoon) clearImmediate(this.appliedAckSoon)
    this.wakeRetry?.()
    this.conn?.close()
    this.startRecovery() // what the connection stored and did not apply yet
    await this.queue
    await this.trimsSettled()
    // A clean stop leaves the copy on disk through the cursor: a start on
    // another boot then trusts it (applied-cursor.ts, cursorBootFile).
    let synced = true
    await this.target.syncAll().catch(err => { synced = false; this.log(`sync of the copy at stop: ${describe(err)}`) })
    if (this.cursorSoon) clearImmediate(this.cursorSoon)
    this.catchUpCursor()
    fs.fsyncSync(this.cursorFd)
    await this.journal.setCheckpoint({ appliedSeq: this.applied })
    fs.closeSync(this.cursorFd)
    if (synced) clearCursorBoot(this.journal.dir)
  }
}
