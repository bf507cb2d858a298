// Mutual authentication by HMAC-SHA256 challenge–response over a shared
// secret. Pure: no I/O. Each side sends a fresh nonce in its hello and
// proves it knows the secret by a MAC over both nonces, its role and the
// group, so a MAC cannot be replayed to another connection, reflected back
// to its sender, or moved to another group.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export function newNonce (): Buffer {
  return randomBytes(32)
}

export function authMac (secret: Buffer, role: string, group: string, ownNonce: Uint8Array, peerNonce: Uint8Array): Buffer {
  return createHmac('sha256', secret)
    .update(`replfs-auth-v1\0${role}\0${group}\0`)
    .update(peerNonce)
    .update(ownNonce)
    .digest()
}

export function checkMac (secret: Buffer, peerRole: string, group: string, peerNonce: Uint8Array, ownNonce: Uint8Array, mac: Uint8Array): boolean {
  const want = authMac(secret, peerRole, group, peerNonce, ownNonce)
  return mac.length === want.length && timingSafeEqual(want, mac)
}
