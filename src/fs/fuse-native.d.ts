// The parts of fuse-native 2.2.6 we use (it ships no types).
declare module 'fuse-native' {
  interface FuseOptions {
    [k: string]: unknown
    timeout?: number | false
    force?: boolean
    mkdir?: boolean
  }
  class Fuse {
    constructor (mnt: string, ops: { [op: string]: unknown }, opts?: FuseOptions)
    mount (cb: (err: Error | null) => void): void
    unmount (cb: (err: Error | null) => void): void
    static unmount (mnt: string, cb: (err: Error | null) => void): void
  }
  export default Fuse
}
