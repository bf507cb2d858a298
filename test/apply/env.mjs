// Shared scaffolding for the apply and volume tests: a temp dir holding a
// directory volume, an image volume, and a sentinel directory beside them
// that nothing may ever touch (hostile records aim at it).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createHash } from 'node:crypto'
import * as assert from 'uvu/assert'
import { openVolumes, closeVolumes } from '../../dist/volume/volume.js'

export const tmpRoot = process.env.REPLFS_TEST_TMP || os.tmpdir()
export const imageSize = 64 * 1024
export const DIR = 0
export const IMG = 1

export async function makeEnv () {
  fs.mkdirSync(tmpRoot, { recursive: true })
  const base = fs.mkdtempSync(path.join(tmpRoot, 'replfs-apply-'))
  const root = path.join(base, 'vol')
  const image = path.join(base, 'disk.img')
  const outside = path.join(base, 'outside')
  fs.mkdirSync(root)
  fs.mkdirSync(outside)
  fs.writeFileSync(path.join(outside, 'secret'), 'untouched\n', { mode: 0o644 })
  fs.chmodSync(path.join(outside, 'secret'), 0o644)
  const specs = [
    { num: DIR, name: 'data', kind: 'dir', path: root, size: 0 },
    { num: IMG, name: 'disk', kind: 'image', path: image, size: imageSize }
  ]
  const vols = await openVolumes(specs)
  const before = snapshot(outside)
  const baseEntries = fs.readdirSync(base).sort()
  return {
    base, root, image, outside, vols, specs,
    /** The sentinel and the temp dir's top level are exactly as made. */
    assertOutsideUntouched () {
      assert.equal(snapshot(outside), before, 'sentinel directory changed')
      assert.equal(fs.readdirSync(base).sort(), baseEntries, 'something appeared next to the volumes')
    },
    async cleanup () {
      await closeVolumes(vols)
      fs.rmSync(base, { recursive: true, force: true })
    }
  }
}

/** Everything observable about a tree, for equality checks. */
export function snapshot (dir) {
  const out = {}
  const walk = (rel) => {
    const abs = rel ? path.join(dir, rel) : dir
    const st = fs.lstatSync(abs)
    const e = { mode: (st.mode & 0o170000).toString(8) + ':' + (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid }
    if (st.isSymbolicLink()) e.target = fs.readlinkSync(abs)
    else if (st.isFile()) { e.size = st.size; e.sha = createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 16); e.nlink = st.nlink }
    out[rel || '.'] = e
    if (st.isDirectory()) for (const n of fs.readdirSync(abs).sort()) walk(rel ? `${rel}/${n}` : n)
  }
  walk('')
  return out
}

/** Awaits `p` and checks it failed with `code` (and, if given, a message
 *  matching `re`). Returns the error. */
export async function rejects (p, code, re) {
  try {
    await p
  } catch (err) {
    assert.is(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
    if (re) assert.match(err.message, re)
    return err
  }
  assert.unreachable(`expected ${code}, but it succeeded`)
}

export const bytes = (s) => new Uint8Array(Buffer.from(s))
