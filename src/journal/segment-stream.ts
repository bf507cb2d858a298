// Reading one segment file's batches in order: streamed in chunks, and at
// a bad frame that is not a tail being written, read whole and scanned past
// the damage (segments.ts scanBuffer), naming each bad stretch.
import { promises as fsp } from 'node:fs'
import { frameBytesMax, frameHeaderBytes } from '../core/limits.js'
import { isReplError, replError } from '../core/errors.js'
import { decodeBatch } from './codec.js'
import { checkFrameAt } from './frame.js'
import { scanBuffer, type SegmentHole } from './segments.js'
import { readChunkBytes, type ReadBuffers } from './read-buffers.js'
import type { JournalEntry } from './journal.js'

/** One segment's batches, streamed. At a bad frame (not a tail being
 *  written) it reads the segment whole and goes on past the damage
 *  (segments.ts scanBuffer), listing the bad stretches in `holes`. */
export async function * readSegment (path: string, limit = Infinity, holes: SegmentHole[] = [], from = 0, buffers?: ReadBuffers): AsyncGenerator<JournalEntry> {
  let nextSeq = -1
  try {
    for await (const e of streamSegment(path, limit, from, buffers)) {
      nextSeq = e.batch.seq + e.batch.records.length
      yield e
    }
    return
  } catch (err) {
    if (!isReplError(err) || !/^FRAME_|^BAD_/.test(err.code)) throw err
  }
  let buf: Buffer
  try {
    buf = await fsp.readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const scan = scanBuffer(limit < buf.length ? buf.subarray(0, limit) : buf, path)
  holes.push(...scan.holes)
  for (const b of scan.batches) if (b.batch.seq >= nextSeq) yield { batch: b.batch, payload: b.payload }
}

/** One segment's batches from byte `from`, read in chunks of readChunkBytes;
 *  each payload is a view of the chunk it lies in. A frame that runs past a
 *  chunk's end starts the next chunk (one larger than a chunk is read alone):
 *  never joined from pieces, which cost a copy and a buffer of its size for
 *  nearly every frame of a large write (native-notes/performance.md 22).
 *  Throws FRAME_SHORT for a frame that runs past the end of the file, and
 *  FRAME_CRC, FRAME_TOO_LARGE for a bad one (readSegment scans past them);
 *  stops before a frame that runs past `limit`. */
async function * streamSegment (path: string, limit = Infinity, from = 0, buffers?: ReadBuffers): AsyncGenerator<JournalEntry> {
  let fh: fsp.FileHandle
  try {
    fh = await fsp.open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return // trimmed while we were reading
    throw err
  }
  let buf: Buffer | null = null // the buffer read into last
  try {
    for (let pos = from; pos < limit;) {
      let asked = Math.min(readChunkBytes, limit - pos)
      buf = buffers ? buffers.next(asked, buf) : Buffer.allocUnsafe(asked)
      let n = (await fh.read(buf, 0, asked, pos)).bytesRead
      if (n === 0) return
      const first = n >= frameHeaderBytes ? frameHeaderBytes + buf.readUInt32BE(0) : 0
      if (n === asked && first > n && first <= frameHeaderBytes + frameBytesMax) {
        if (pos + first > limit) return
        asked = first
        buf = buffers ? buffers.next(asked, buf) : Buffer.allocUnsafe(asked)
        n = (await fh.read(buf, 0, asked, pos)).bytesRead
      }
      const read = buf.subarray(0, n)
      let off = 0
      for (;;) {
        const f = checkFrameAt(read, off)
        if (!f.ok) {
          if (f.reason === 'crc') throw replError('FRAME_CRC', `${path}: frame CRC mismatch at byte ${pos + off}`)
          if (f.reason === 'too-large') throw replError('FRAME_TOO_LARGE', `${path}: frame at byte ${pos + off} exceeds the limit of ${frameBytesMax}`)
          break // not whole in this chunk
        }
        if (f.payload.length === 0) return // a header of zeros: the frames end there (segments.ts isZeroHeader)
        yield { batch: decodeBatch(f.payload), payload: f.payload }
        off = f.end
      }
      if (off < n) {
        // A partial frame at the end of the file: a batch still being
        // written (the core appends while we read), or a damaged length that
        // claims more than is there. Let the caller's scan tell them apart:
        // it resumes at the next valid frame, or finds none and stops.
        if (n < asked) throw replError('FRAME_SHORT', `${path}: a frame at byte ${pos + off} runs past the end of the segment`)
        if (pos + n >= limit) return
      } else if (n < asked) {
        return
      }
      pos += off
    }
  } finally {
    if (buf) buffers?.release(buf)
    await fh.close()
  }
}
