// The shape of a group: its name and volumes. Parsed by cli/, persisted in
// the state directory (so a state dir cannot be reused for another group),
// used by fs/, capture/ and apply/ alike.

export type VolumeKind = 'dir' | 'image'

export interface VolumeSpec {
  num: number // index in the group, carried by every record
  name: string // top-level entry of the mount, and the name peers agree on
  kind: VolumeKind
  path: string // backing directory, or backing image file
  size: number // image volumes: fixed size in bytes; 0 for directories
}

export interface GroupSpec {
  group: string
  volumes: VolumeSpec[]
  /** true for `replfs mount SOURCE MOUNTPOINT`: the one volume is the mount root */
  single: boolean
}

/** Volume names are single path components a user can type. */
export const volumeNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
