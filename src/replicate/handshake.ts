// Connection set-up, identical at both ends: exchange hellos, check they
// match (protocol, group, volumes), then prove knowledge of the shared
// secret to each other. Any mismatch: a clear error to the peer, and here.
// A secret is required on every connection, loopback included (a local user
// is not a trusted peer): without one on either side, nothing moves.
import type { Connection } from './transport.js'
import { protocolVersion, type Message, type VolumeInfo } from './messages.js'
import { authMac, checkMac, newNonce } from './auth.js'
import { replError } from '../core/errors.js'

export interface Identity {
  role: 'primary' | 'secondary'
  group: string
  node: string
  volumes: VolumeInfo[]
  secret: Buffer
}

export type Hello = Extract<Message, { t: 'hello' }>

/** Resolves with the peer's hello once both sides are authenticated. The
 *  connection is left paused: call conn.resume() after attaching listeners. */
export function handshake (conn: Connection, me: Identity, timeoutMs: number): Promise<Hello> {
  const nonce = newNonce()
  if (!me.secret?.length) { // JS callers (and the type's past) may hand null
    const err = replError('AUTH_FAILED', 'this side has no shared secret', 'give --secret-file (a secret is required, loopback included)')
    conn.fail(err)
    return Promise.reject(err)
  }
  return new Promise((resolve, reject) => {
    let peer: Hello | null = null
    const timer = setTimeout(() => fail(replError('TIMEOUT', `handshake with ${conn.remote} timed out`)), timeoutMs)
    const cleanup = () => { clearTimeout(timer); conn.removeListener('message', onMessage); conn.removeListener('close', onClose) }
    const fail = (err: Error) => { cleanup(); conn.fail(err); reject(err) }
    const onClose = (err: Error | null) => { cleanup(); reject(err ?? replError('PEER_ERROR', `${conn.remote} closed during the handshake`)) }
    const onMessage = (m: Message) => {
      if (!peer) {
        if (m.t !== 'hello') return fail(replError('BAD_MESSAGE', `expected hello, got ${m.t}`))
        const err = mismatch(me, m)
        if (err) return fail(err)
        peer = m
        conn.send({ t: 'auth', mac: authMac(me.secret, me.role, me.group, nonce, m.nonce) })
        return
      }
      if (m.t !== 'auth') return fail(replError('BAD_MESSAGE', `expected auth, got ${m.t}`))
      if (!checkMac(me.secret, peer.role, me.group, peer.nonce, nonce, m.mac)) {
        return fail(replError('AUTH_FAILED', `${conn.remote} failed authentication: the shared secrets differ`))
      }
      cleanup()
      conn.authenticated() // full-size frames from here on
      conn.pause() // the caller resumes once it listens (see Connection.pause)
      resolve(peer)
    }
    conn.on('message', onMessage)
    conn.on('close', onClose)
    conn.send({ t: 'hello', proto: protocolVersion, group: me.group, node: me.node, role: me.role, volumes: me.volumes, nonce, auth: true })
  })
}

function mismatch (me: Identity, peer: Hello): Error | null {
  if (peer.proto !== protocolVersion) {
    return replError('VERSION_MISMATCH', `peer speaks protocol version ${peer.proto}, this replfs speaks ${protocolVersion}`, 'run the same replfs version on both hosts')
  }
  if (peer.group !== me.group) return replError('GROUP_MISMATCH', `peer serves group "${peer.group}", this side group "${me.group}"`)
  if (peer.role === me.role) return replError('SPLIT_BRAIN', `both sides are ${me.role}`, 'exactly one side must be primary')
  if (!peer.auth) return replError('AUTH_FAILED', 'this side requires a shared secret, the peer has none', 'a secret is required on every connection: give both sides the same --secret-file')
  const show = (v: VolumeInfo[]) => v.map(x => `${x.name}:${x.kind}${x.kind === 'image' ? ':' + x.size : ''}`).join(',')
  if (show(peer.volumes) !== show(me.volumes)) {
    return replError('VOLUME_MISMATCH', `peer has volumes ${show(peer.volumes)}, this side ${show(me.volumes)}`, 'give both sides the same volume names, kinds and image sizes, in the same order')
  }
  if (peer.node === me.node) return replError('SPLIT_BRAIN', `peer has this node's own id ${me.node}`, 'each host needs its own state directory')
  return null
}
