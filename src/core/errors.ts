// Errors with a stable code and a hint for the operator (hypercore style).
// Every error that can reach a user or a peer is one of these, so logs and
// tests can match on `code` instead of message text.

export type ErrorCode =
  | 'FRAME_CRC' | 'FRAME_TOO_LARGE' | 'FRAME_SHORT' | 'FRAME_DECODE'
  | 'BAD_RECORD' | 'BAD_BATCH' | 'BAD_MESSAGE' | 'VERSION_MISMATCH'
  | 'JOURNAL_FULL' | 'JOURNAL_GAP' | 'JOURNAL_DAMAGE' | 'STATE_DAMAGED' | 'JOURNAL_CHAIN' | 'JOURNAL_LOCKED' | 'STATE_OTHER_GROUP'
  | 'PATH_ESCAPE' | 'UNKNOWN_VOLUME' | 'IMAGE_BOUNDS' | 'APPLY_FAILED' | 'APPLY_BLOCKED'
  | 'USAGE' | 'MOUNT_FAILED' | 'NATIVE_MISSING' | 'JOURNAL_TAIL'
  | 'AUTH_FAILED' | 'GROUP_MISMATCH' | 'VOLUME_MISMATCH' | 'SPLIT_BRAIN' | 'PEER_ERROR' | 'TIMEOUT' | 'BUSY'

export class ReplError extends Error {
  readonly code: ErrorCode
  readonly hint?: string
  constructor (code: ErrorCode, message: string, hint?: string) {
    super(message)
    this.name = 'ReplError'
    this.code = code
    this.hint = hint
  }
}

export function replError (code: ErrorCode, message: string, hint?: string): ReplError {
  return new ReplError(code, message, hint)
}

export function isReplError (err: unknown, code?: ErrorCode): err is ReplError {
  return err instanceof ReplError && (code === undefined || err.code === code)
}

/** One line for stderr / logs: "CODE: message (hint)". */
export function describe (err: unknown): string {
  if (err instanceof ReplError) return `${err.code}: ${err.message}${err.hint ? ` (${err.hint})` : ''}`
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message
  return String(err)
}

export function assert (cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${message}`)
}
