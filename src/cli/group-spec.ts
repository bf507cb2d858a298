// Parsing and checking a group from command-line flags, and the group.json
// that pins a state directory to its group. All checks happen before
// anything is created, so a bad invocation leaves no trace.
import { promises as fsp } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import type { GroupSpec, VolumeSpec } from '../core/config.js'
import { volumeNamePattern } from '../core/config.js'
import { volumesMax } from '../core/limits.js'
import { replError } from '../core/errors.js'

export function collect (value: string, prev: string[] = []): string[] {
  return [...prev, value]
}

const units: { [u: string]: number } = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** "512M", "10G", "4096": bytes. Image sizes are whole 4 KiB blocks. */
export function parseSize (s: string): number {
  const m = /^(\d+)([KMGT]?)(i?B)?$/i.exec(s.trim())
  if (!m) throw replError('USAGE', `bad size "${s}" (use a number of bytes or e.g. 512M, 10G)`)
  const n = Number(m[1]) * units[m[2].toUpperCase()]
  if (!Number.isSafeInteger(n) || n <= 0 || n % 4096 !== 0) {
    throw replError('USAGE', `bad size "${s}": must be a positive multiple of 4096 bytes`)
  }
  return n
}

function splitNameValue (flag: string, s: string): [string, string] {
  const i = s.indexOf('=')
  if (i <= 0 || i === s.length - 1) throw replError('USAGE', `--${flag} wants NAME=PATH, got "${s}"`)
  const name = s.slice(0, i)
  if (!volumeNamePattern.test(name)) throw replError('USAGE', `bad volume name "${name}" (letters, digits, . _ -; at most 64)`)
  return [name, s.slice(i + 1)]
}

/** Checks and builds the group; nothing is created here. Image files that
 *  do not exist yet are listed in `toCreate`. */
export async function groupFromFlags (group: string, volumes: string[], images: string[], single: boolean): Promise<{ spec: GroupSpec, toCreate: VolumeSpec[] }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(group)) throw replError('USAGE', `bad group name "${group}"`)
  const specs: VolumeSpec[] = []
  const toCreate: VolumeSpec[] = []
  const seen = new Set<string>()
  const add = (v: VolumeSpec) => {
    if (seen.has(v.name)) throw replError('USAGE', `volume name "${v.name}" is given twice`)
    seen.add(v.name)
    specs.push(v)
  }
  for (const s of volumes) {
    const [name, dir] = splitNameValue('volume', s)
    const path = resolve(dir)
    const st = await fsp.stat(path).catch(() => null)
    if (!st) throw replError('USAGE', `volume ${name}: source directory ${path} does not exist`)
    if (!st.isDirectory()) throw replError('USAGE', `volume ${name}: ${path} is not a directory`)
    add({ num: specs.length, name, kind: 'dir', path, size: 0 })
  }
  for (const s of images) {
    const [name, rest] = splitNameValue('image', s)
    const colon = rest.lastIndexOf(':')
    const file = resolve(colon > 0 ? rest.slice(0, colon) : rest)
    const wanted = colon > 0 ? parseSize(rest.slice(colon + 1)) : 0
    const st = await fsp.stat(file).catch(() => null)
    if (st && !st.isFile()) throw replError('USAGE', `image ${name}: ${file} is not a regular file`)
    if (st && wanted && st.size !== wanted) {
      throw replError('USAGE', `image ${name}: ${file} is ${st.size} bytes, not ${wanted}`, 'an image volume cannot be resized')
    }
    if (!st && !wanted) throw replError('USAGE', `image ${name}: ${file} does not exist; give its size as FILE:SIZE to create it`)
    if (st && (st.size === 0 || st.size % 4096 !== 0)) throw replError('USAGE', `image ${name}: ${file} size ${st.size} is not a positive multiple of 4096`)
    const v: VolumeSpec = { num: 0, name, kind: 'image', path: file, size: st ? st.size : wanted }
    add(v)
    if (!st) toCreate.push(v)
  }
  specs.forEach((v, i) => { v.num = i })
  if (specs.length === 0) throw replError('USAGE', 'a group needs at least one --volume or --image')
  if (specs.length > volumesMax) throw replError('USAGE', `at most ${volumesMax} volumes in a group`)
  return { spec: { group, volumes: specs, single }, toCreate }
}

export function singleFromSource (source: string): Promise<{ spec: GroupSpec, toCreate: VolumeSpec[] }> {
  const name = basename(resolve(source)).replace(/[^A-Za-z0-9._-]/g, '_') || 'root'
  return groupFromFlags(name, [`${name}=${source}`], [], true)
}

/** The state dir must be empty, new, or this group's. */
export async function checkStateDir (state: string, spec: GroupSpec): Promise<'new' | 'same'> {
  const existing = await readGroupFile(state)
  if (!existing) {
    const entries = await fsp.readdir(state).catch(() => null)
    if (entries && entries.some(e => e.endsWith('.seg'))) {
      throw replError('STATE_OTHER_GROUP', `state directory ${state} holds a journal but no group.json`)
    }
    return 'new'
  }
  if (existing.group !== spec.group) {
    throw replError('STATE_OTHER_GROUP', `state directory ${state} belongs to group "${existing.group}", not "${spec.group}"`, 'use another --state')
  }
  const names = (g: GroupSpec) => g.volumes.map(v => `${v.num}:${v.name}:${v.kind}`).join(',')
  if (names(existing) !== names(spec)) {
    throw replError('STATE_OTHER_GROUP', `state directory ${state} was made for volumes ${names(existing)}, not ${names(spec)}`,
      'the volumes of a group are fixed: give the same --volume/--image list in the same order')
  }
  return 'same'
}

export async function readGroupFile (state: string): Promise<GroupSpec | null> {
  const text = await fsp.readFile(join(state, 'group.json'), 'utf8').catch(() => null)
  if (text === null) return null
  try {
    return JSON.parse(text) as GroupSpec
  } catch {
    throw replError('STATE_OTHER_GROUP', `state directory ${state} has a damaged group.json`)
  }
}

export async function writeGroupFile (state: string, spec: GroupSpec): Promise<void> {
  await fsp.writeFile(join(state, 'group.json'), JSON.stringify(spec, null, 2) + '\n', { mode: 0o644 })
}
