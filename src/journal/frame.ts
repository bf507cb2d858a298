// Framing, one for disk and wire: u32 length | u32 crc32c(payload) | payload,
// big endian. Pure: no I/O. The decoder is a push parser (node-postgres'
// parser in spirit) that checks the length against the bound *before*
// buffering, so a hostile peer cannot make us allocate a huge frame.
import { nativeCore } from '../native/addon.js'
import { frameBytesMax, frameHeaderBytes } from '../core/limits.js'
import { replError } from '../core/errors.js'
import type { ReadBuffers } from './read-buffers.js'

/** The standard CRC-32C (RFC 3720) of bytes, continuing from `prev`: ISA-L's,
 *  through the addon. @node-rs/crc32's was 1.3 s of CPU per GiB replicated,
 *  spread over both sides (native-notes/performance.md 9); the golden tests
 *  still check every frame against it. */
export function crc32c (bytes: Uint8Array, prev?: number): number {
  return nativeCore().crc32c(bytes, prev)
}

/** Header for a payload; write header then payload (writev avoids a copy). */
export function frameHeader (payload: Uint8Array): Buffer {
  const h = Buffer.allocUnsafe(frameHeaderBytes)
  h.writeUInt32BE(payload.length, 0)
  h.writeUInt32BE(crc32c(payload), 4)
  return h
}

/** Header for a payload given in parts (written side by side, not joined). */
export function frameHeaderOf (parts: Uint8Array[]): Buffer {
  const h = Buffer.allocUnsafe(frameHeaderBytes)
  let crc = 0
  let len = 0
  for (const p of parts) { crc = crc32c(p, crc); len += p.length }
  h.writeUInt32BE(len, 0)
  h.writeUInt32BE(crc, 4)
  return h
}

export function encodeFrame (payload: Uint8Array): Buffer {
  return Buffer.concat([frameHeader(payload), payload])
}

export type FrameCheck =
  | { ok: true, payload: Buffer, end: number }
  | { ok: false, reason: 'short' | 'crc' | 'too-large', end: number }

/** Checks the frame starting at `off` in `buf` (a whole file read, say). */
export function checkFrameAt (buf: Buffer, off: number, maxBytes = frameBytesMax): FrameCheck {
  if (buf.length - off < frameHeaderBytes) return { ok: false, reason: 'short', end: off }
  const len = buf.readUInt32BE(off)
  if (len > maxBytes) return { ok: false, reason: 'too-large', end: off }
  const end = off + frameHeaderBytes + len
  if (end > buf.length) return { ok: false, reason: 'short', end: off }
  const payload = buf.subarray(off + frameHeaderBytes, end)
  if (crc32c(payload) !== buf.readUInt32BE(off + 4)) return { ok: false, reason: 'crc', end: off }
  return { ok: true, payload, end }
}

/** Stream decoder: feed chunks as they arrive, get whole verified payloads.
 *  Throws FRAME_TOO_LARGE / FRAME_CRC; after a throw the stream is unusable
 *  (the caller ends the connection, as DESIGN.md says).
 *
 *  A payload that lies in one chunk is a view of it; one that lies across
 *  chunks is joined into a new buffer, or, given `joined` and when it starts
 *  with `joined.prefix`, into one of `joined.buffers` with one user: whoever
 *  takes the payload, who releases it when done (read-buffers.ts). */
export class FrameDecoder {
  private chunks: Buffer[] = []
  private buffered = 0
  private need = -1 // payload length of the frame being assembled, -1 = header not read
  private crc = 0
  constructor (private maxBytes = frameBytesMax, private readonly joined?: { buffers: ReadBuffers, prefix: Uint8Array }) {}

  /** Changes the bound for frames whose header is read from now on (a
   *  connection's bound rises once its peer authenticated). */
  setMax (bytes: number): void { this.maxBytes = bytes }

  push (chunk: Buffer): Buffer[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const out: Buffer[] = []
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < frameHeaderBytes) break
        const h = this.take(frameHeaderBytes)
        const len = h.readUInt32BE(0)
        if (len > this.maxBytes) {
          throw replError('FRAME_TOO_LARGE', `frame of ${len} bytes exceeds the limit of ${this.maxBytes}`)
        }
        this.need = len
        this.crc = h.readUInt32BE(4)
      }
      if (this.buffered < this.need) break
      const payload = this.take(this.need, this.joined && this.startsWith(this.joined.prefix) ? this.joined.buffers : undefined)
      if (crc32c(payload) !== this.crc) throw replError('FRAME_CRC', `frame CRC mismatch (${this.need} bytes)`)
      this.need = -1
      out.push(payload)
    }
    return out
  }

  /** Bytes held for an incomplete frame (0 at a frame boundary). */
  get pending (): number { return this.buffered + (this.need >= 0 ? frameHeaderBytes : 0) }

  /** Whether the bytes buffered begin with `prefix`. */
  private startsWith (prefix: Uint8Array): boolean {
    if (this.buffered < prefix.length) return false
    let i = 0
    for (const c of this.chunks) {
      for (let k = 0; k < c.length && i < prefix.length; k++, i++) if (c[k] !== prefix[i]) return false
      if (i === prefix.length) return true
    }
    return false
  }

  private take (n: number, into?: ReadBuffers): Buffer {
    if (n === 0) return Buffer.alloc(0)
    const first = this.chunks[0]
    if (first.length >= n) {
      // Common case: the frame lies in one chunk, no copy.
      const out = first.subarray(0, n)
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      this.buffered -= n
      return out
    }
    const out = into ? into.take(n) : Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[0]
      const k = Math.min(c.length, n - filled)
      c.copy(out, filled, 0, k)
      filled += k
      if (k === c.length) this.chunks.shift()
      else this.chunks[0] = c.subarray(k)
    }
    this.buffered -= n
    return out
  }
}
