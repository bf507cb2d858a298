// `replfs demo`: the main job on an embedded default. A secondary and a
// primary on this machine (loopback, temporary directories), a workload
// through the mount, status and lag, and proof that the replica is
// identical (checksums of both trees); then the same in sync mode.
// Daemons are child processes: this process only writes through the mount.
import type { Command } from 'commander'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import net from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createHash } from 'node:crypto'
import { queryControl } from './control.js'
import { humanStatus } from './status.js'
import { describe } from '../core/errors.js'

const cli = fileURLToPath(new URL('../cli.js', import.meta.url))

export function registerDemo (program: Command): void {
  program.command('demo')
    .description('run a primary and a secondary on this machine, replicate a workload, prove the replica identical')
    .option('--dir <dir>', 'work directory (default: a new temporary directory, removed afterwards)')
    .option('--keep', 'keep the work directory')
    .action(async (o: { dir?: string, keep?: boolean }) => {
      try {
        const ok = await demo(o.dir ?? fs.mkdtempSync(join(os.tmpdir(), 'replfs-demo-')), !o.dir && !o.keep)
        process.exitCode = ok ? 0 : 1
      } catch (err) {
        process.stderr.write(`replfs demo: error: ${describe(err)}\n`)
        process.exitCode = 1
      }
    })
}

interface Daemon { proc: ChildProcess, stop (): Promise<void> }

function start (args: string[], ready: string, logFile: string): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(logFile, 'a')
    const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', log] })
    let out = ''
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`${args[0]} did not start; see ${logFile}`)) }, 30_000)
    proc.stdout!.on('data', d => {
      out += d
      if (out.includes(ready)) { clearTimeout(timer); resolve({ proc, stop: () => stop(proc) }) }
    })
    proc.on('exit', code => { clearTimeout(timer); if (!out.includes(ready)) reject(new Error(`${args[0]} exited (${code}); see ${logFile}:\n${fs.readFileSync(logFile, 'utf8')}`)) })
  })
}

function stop (proc: ChildProcess): Promise<void> {
  return new Promise(resolve => {
    if (proc.exitCode !== null) return resolve()
    const t = setTimeout(() => proc.kill('SIGKILL'), 20_000)
    proc.on('exit', () => { clearTimeout(t); resolve() })
    proc.kill('SIGTERM')
  })
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

const say = (s: string) => console.log(s)

async function demo (work: string, cleanup: boolean): Promise<boolean> {
  const d = {
    db: join(work, 'primary/db'), logs: join(work, 'primary/logs'), img: join(work, 'primary/disk.img'),
    db2: join(work, 'secondary/db'), logs2: join(work, 'secondary/logs'), img2: join(work, 'secondary/disk.img'),
    mnt: join(work, 'mnt'), pstate: join(work, 'primary/state'), sstate: join(work, 'secondary/state'), secret: join(work, 'secret')
  }
  for (const p of [d.db, d.logs, d.db2, d.logs2, d.mnt]) fs.mkdirSync(p, { recursive: true })
  fs.writeFileSync(d.secret, createHash('sha256').update(String(Math.random())).digest('hex'), { mode: 0o600 })
  // Data that exists before replication starts: the initial sync copies it.
  for (let i = 0; i < 20; i++) fs.writeFileSync(join(d.db, `existing-${i}.dat`), randomBytes(50_000 + i * 3000, i))
  fs.writeFileSync(join(d.logs2, 'stale-on-secondary.log'), 'the initial sync removes this\n')
  const port = await freePort()
  const peer = `127.0.0.1:${port}`
  const vols = ['--volume', `db=%db`, '--volume', `logs=%logs`, '--image', `disk=%img:32M`]
  const volsFor = (side: 'p' | 's') => vols.map(a => a.replace('%db', side === 'p' ? d.db : d.db2).replace('%logs', side === 'p' ? d.logs : d.logs2).replace('%img', side === 'p' ? d.img : d.img2))
  const logFile = join(work, 'daemons.log')
  say(`replfs demo in ${work} (daemon logs: ${logFile})`)
  say(`secondary: replfs serve --listen ${peer} --group demo ...`)
  const secondary = await start(['serve', '--listen', peer, '--state', d.sstate, '--group', 'demo', '--secret-file', d.secret, ...volsFor('s')], 'listening', logFile)
  let primary: Daemon | null = null
  let ok = true
  try {
    for (const mode of ['async', 'sync'] as const) {
      say(`\n== ${mode} mode ==`)
      say(`primary: replfs mount ${d.mnt} --group demo --peer ${peer} --mode ${mode} ...`)
      primary = await start(['mount', d.mnt, '--group', 'demo', '--state', d.pstate, '--peer', peer, '--mode', mode, '--secret-file', d.secret, ...volsFor('p')], 'ready', logFile)
      const t0 = Date.now()
      const stats = workload(d.mnt, mode === 'async' ? 1 : 2)
      say(`workload: ${stats} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
      const st = await queryControl(d.pstate) as { [k: string]: unknown }
      say('status right after the workload:\n' + indent(humanStatus(st)))
      const t1 = Date.now()
      await waitCaughtUp(d.pstate)
      say(`replica caught up ${((Date.now() - t1) / 1000).toFixed(2)} s after the workload ended`)
      const same = compare([[d.db, d.db2], [d.logs, d.logs2]], [d.img, d.img2])
      ok &&= same
      await primary.stop()
      primary = null
    }
    const s = await queryControl(d.sstate) as { [k: string]: unknown }
    say('\nsecondary status:\n' + indent(humanStatus(s)))
  } finally {
    await primary?.stop()
    await secondary.stop()
    if (cleanup) fs.rmSync(work, { recursive: true, force: true })
  }
  say(ok ? '\nDEMO OK: the replica is identical to the primary' : '\nDEMO FAILED: the replica differs')
  return ok
}

function indent (s: string): string { return s.split('\n').map(l => '  ' + l).join('\n') }

function randomBytes (n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  let x = seed * 2654435761 >>> 0
  for (let i = 0; i < n; i += 4) { x = (x * 1664525 + 1013904223) >>> 0; b.writeUInt32LE(x, Math.min(i, n - 4)) }
  return b
}

/** A mixed workload through the mount: files, overwrites, renames,
 *  deletes, links, metadata, xattrs, a sequential file, image blocks. */
function workload (mnt: string, round: number): string {
  const db = join(mnt, 'db')
  const logs = join(mnt, 'logs')
  let files = 0
  let bytes = 0
  fs.mkdirSync(join(db, `tables-${round}`), { recursive: true, mode: 0o755 })
  for (let i = 0; i < 100; i++) {
    const data = randomBytes(1000 + (i * 7919) % 200_000, i + round * 1000)
    fs.writeFileSync(join(db, `tables-${round}`, `t${i}.dat`), data)
    fs.appendFileSync(join(logs, `app-${round}.log`), `row ${i} written, ${data.length} bytes\n`)
    files++; bytes += data.length
  }
  const big = fs.openSync(join(db, `big-${round}.bin`), 'w')
  for (let i = 0; i < 32; i++) { fs.writeSync(big, randomBytes(1 << 20, i), 0, 1 << 20, i << 20); bytes += 1 << 20 }
  for (let i = 0; i < 200; i++) fs.writeSync(big, randomBytes(4096, 500 + i), 0, 4096, ((i * 7717) % 8192) * 4096)
  fs.fsyncSync(big)
  fs.closeSync(big)
  fs.renameSync(join(db, `tables-${round}`, 't1.dat'), join(db, `tables-${round}`, 'renamed.dat'))
  fs.unlinkSync(join(db, `tables-${round}`, 't2.dat'))
  fs.linkSync(join(db, `tables-${round}`, 't3.dat'), join(db, `tables-${round}`, 't3-hardlink.dat'))
  fs.symlinkSync(`tables-${round}/t4.dat`, join(db, `latest-${round}`))
  fs.chmodSync(join(db, `tables-${round}`, 't5.dat'), 0o600)
  fs.truncateSync(join(db, `tables-${round}`, 't6.dat'), 10)
  if (round === 1) fs.unlinkSync(join(db, 'existing-0.dat'))
  const img = fs.openSync(join(mnt, 'disk'), 'r+')
  for (let i = 0; i < 64; i++) fs.writeSync(img, randomBytes(65536, 900 + i + round), 0, 65536, ((i * 37) % 512) * 65536)
  fs.closeSync(img)
  return `${files} files, ${(bytes / (1 << 20)).toFixed(1)} MiB written, renames, unlinks, links, chmod, truncate, image blocks`
}

async function waitCaughtUp (state: string): Promise<void> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const s = await queryControl(state) as { lagRecords: number, peerState: string, resync: unknown, lastSeq: number, ackedSeq: number }
    if (s.peerState === 'streaming' && s.lagRecords === 0 && !s.resync) return
    if (Date.now() > deadline) throw new Error(`replica did not catch up: ${JSON.stringify(s)}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** Checksums of both sides, tree by tree; prints and returns equality. */
function compare (trees: Array<[string, string]>, image: [string, string]): boolean {
  let same = true
  for (const [a, b] of trees) {
    const ha = treeSum(a)
    const hb = treeSum(b)
    say(`  ${a.padEnd(50)} ${ha.sum}  (${ha.entries} entries)`)
    say(`  ${b.padEnd(50)} ${hb.sum}  ${ha.sum === hb.sum ? 'identical' : 'DIFFERENT'}`)
    same &&= ha.sum === hb.sum
  }
  const ia = fileSum(image[0])
  const ib = fileSum(image[1])
  say(`  ${image[0].padEnd(50)} ${ia}`)
  say(`  ${image[1].padEnd(50)} ${ib}  ${ia === ib ? 'identical' : 'DIFFERENT'}`)
  return same && ia === ib
}

function fileSum (p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16)
}

/** One hash over names, types, modes, sizes, contents and link targets. */
function treeSum (root: string): { sum: string, entries: number } {
  const h = createHash('sha256')
  let entries = 0
  const walk = (rel: string) => {
    const abs = rel ? join(root, rel) : root
    for (const name of fs.readdirSync(abs).sort()) {
      const p = rel ? `${rel}/${name}` : name
      const st = fs.lstatSync(join(root, p))
      entries++
      h.update(`${p}\0${st.mode}\0`)
      if (st.isSymbolicLink()) h.update(fs.readlinkSync(join(root, p)))
      else if (st.isFile()) h.update(fs.readFileSync(join(root, p)))
      else if (st.isDirectory()) walk(p)
    }
  }
  walk('')
  return { sum: h.digest('hex').slice(0, 16), entries }
}
