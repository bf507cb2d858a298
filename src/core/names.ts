// File names are bytes; JS strings are UTF-16. A name (or path) that is
// valid UTF-8 is the string it decodes to. Each byte of one that is not,
// where it cannot start or continue a valid sequence, becomes a lone low
// surrogate U+DC80..U+DCFF (Python's surrogateescape, PEP 383): valid
// UTF-8 never decodes to a lone surrogate, so the mapping is one to one and
// every name survives the round trip exactly (`y\xe8` and `y\xe9` stay two
// names; 255 x `\x80` stays 255 bytes).
//
// On the wire and in the journal a name that is not valid UTF-8 is a CBOR
// byte string (journal/codec.ts); in memory it is its escaped string; at a
// system call it is a Buffer again (nameToBytes: Node's fs takes Buffer
// paths, and would turn a lone surrogate into U+FFFD). Pure, no I/O.

/** Length of the valid UTF-8 sequence at s[i], 0 if none starts there
 *  (the rules of native/journal_codec.c's utf8_ok). */
function seqLength (s: Uint8Array, i: number): number {
  const c = s[i]
  if (c < 0x80) return 1
  const k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0
  if (k === 0 || i + k >= s.length) return 0 // a bad lead byte, or cut short
  for (let j = 1; j <= k; j++) if ((s[i + j] & 0xc0) !== 0x80) return 0
  const d = s[i + 1]
  if ((c === 0xe0 && d < 0xa0) || (c === 0xed && d > 0x9f) || (c === 0xf0 && d < 0x90) || (c === 0xf4 && d > 0x8f)) return 0
  return k + 1
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The name's string: its UTF-8, with bytes outside valid sequences escaped. */
export function nameFromBytes (b: Uint8Array): string {
  let out = ''
  let start = 0 // of the valid stretch not yet decoded
  for (let i = 0; i < b.length;) {
    const n = seqLength(b, i)
    if (n > 0) { i += n; continue }
    if (i > start) out += utf8.decode(b.subarray(start, i))
    out += String.fromCharCode(0xdc00 + b[i])
    start = ++i
  }
  if (start < b.length) out += utf8.decode(b.subarray(start))
  return out
}

/** True if `s` holds an escaped byte (then it is no valid UTF-8 name). */
export function hasEscapes (s: string): boolean {
  return /[\udc80-\udcff]/.test(s) && escapedAt(s)
}

function escapedAt (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) { i++; continue } // a pair: one character
    }
    if (c >= 0xdc80 && c <= 0xdcff) return true
  }
  return false
}

/** The name's bytes (the inverse of nameFromBytes). */
export function nameToBytes (s: string): Buffer {
  if (!hasEscapes(s)) return Buffer.from(s, 'utf8')
  const parts: Buffer[] = []
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) { i++; continue }
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.of(c - 0xdc00))
      start = i + 1
    }
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'))
  return Buffer.concat(parts)
}

/** What a system call takes for the name: the string itself when it is
 *  valid UTF-8 (the common case, no copy), else its bytes. */
export function syscallName (s: string): string | Buffer {
  return hasEscapes(s) ? nameToBytes(s) : s
}

/** For a terminal: each escaped byte shown as \xNN (a lone surrogate
 *  would print as U+FFFD, and y\xe8 and y\xe9 look the same). The `u`
 *  flag leaves the halves of a surrogate pair alone. */
export function displayName (s: string): string {
  return hasEscapes(s) ? s.replace(/[\udc80-\udcff]/gu, c => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16)}`) : s
}

/** Bytes of the name on disk (limits are in bytes). */
export function nameByteLength (s: string): number {
  return hasEscapes(s) ? nameToBytes(s).length : Buffer.byteLength(s)
}

/** A name as CBOR carries it: text when valid UTF-8, else its bytes. */
export function nameToWire (s: string): string | Buffer {
  return hasEscapes(s) ? nameToBytes(s) : s
}

/** The inverse of nameToWire (text as it is, bytes escaped). */
export function nameFromWire (v: unknown): string {
  if (v instanceof Uint8Array) return nameFromBytes(v)
  if (typeof v !== 'string') throw new TypeError(`a name is text or bytes, not ${typeof v}`)
  return v
}
