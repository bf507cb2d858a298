// Writing a record's data into a copy in pieces of at most `pieceBytes`,
// each ending at a multiple of it in the file. The kernel (6.18 here) sizes
// a new page-cache folio by the write that creates it, and every later write
// into that folio walks all of its blocks' buffer heads in ext4's
// write_begin: a copy whose file came as 256 KiB writes spent a quarter of
// the secondary's thread there under 4 KiB overwrites (native-notes/
// performance.md 21). Pieces keep the folios small; a large write costs a
// few more system calls. The native core writes a mount's backing files
// the same way (ops_file.c, BACKING_PIECE).
import fs from 'node:fs'

/** 16 KiB measured best of 16, 64 and 256 KiB (performance.md 21). */
const pieceBytes = 16 * 1024

/** pwrite of all of `data` at `off` into `fd`, in pieces. */
export function writePieces (fd: number, data: Uint8Array, off: number): void {
  let done = 0
  while (done < data.length) {
    const at = off + done
    const room = pieceBytes - (at % pieceBytes)
    done += fs.writeSync(fd, data, done, Math.min(room, data.length - done), at)
  }
}
