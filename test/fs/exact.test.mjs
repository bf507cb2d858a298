// timeout: 240
// What the native core carries that libfuse 2 could not, each captured and
// replayed exactly: nanosecond times, `touch -m`/`touch -a` alone,
// fallocate, new files owned by the calling user (and setgid inheritance),
// fifos, sockets and devices, binary xattrs up to the kernel's 64 KiB, hard
// links; and concurrent writers on overlapping ranges, whose journal order
// must be the backing store's order. The journal replayed onto a copy of
// the initial directory must give the same tree, owners, times and links.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fs from 'node:fs'
import { join } from 'node:path'
import { tempDir, mount, unstick, bounded, cli, sh } from '../helpers/mount.mjs'
import { snapshot } from '../helpers/tree.mjs'

const asUser = (uid, cmd) => `setpriv --reuid=${uid} --regid=${uid} --clear-groups -- bash -c '${cmd}'`

test('ops libfuse 2 could not carry are captured and replayed exactly', bounded(200_000, async () => {
  const base = tempDir('exact')
  // The backing store on a tmpfs: ext4 without ea_inode caps an xattr
  // value at one block, tmpfs takes the kernel's 64 KiB.
  const disk = join(base, 'tmpfs')
  fs.mkdirSync(disk)
  sh(`mount -t tmpfs -o size=64m replfs-test ${disk}`)
  try { await body(base, disk) } finally { sh(`umount -l ${disk}`) }
}))

async function body (base, disk) {
  const src = join(disk, 'src'); const copy = join(disk, 'copy'); const mnt = join(base, 'mnt'); const state = join(base, 'state')
  fs.mkdirSync(src); fs.mkdirSync(mnt)
  fs.chmodSync(base, 0o755) // the other user must reach the mount
  fs.writeFileSync(join(src, 'old'), 'before the mount')
  sh(`cp -a ${src} ${copy}`)
  const d = await mount([src, mnt, '--state', state])
  try {
    const m = p => join(mnt, p)
    // Nanosecond times, and each of the two alone.
    sh(`touch ${m('t')} && touch -d '2001-02-03 04:05:06.123456789' ${m('t')}`)
    assert.equal(sh(`stat -c %y ${m('t')}`).trim().slice(0, 29), '2001-02-03 04:05:06.123456789')
    sh(`touch ${m('tm')} && touch -a -d '2002-01-01 00:00:00.5' ${m('tm')} && touch -m -d '2003-01-01 00:00:00.000000007' ${m('tm')}`)
    assert.equal(sh(`stat -c %y ${m('tm')}`).trim().slice(0, 29), '2003-01-01 00:00:00.000000007')
    assert.equal(sh(`stat -c %x ${m('tm')}`).trim().slice(0, 29), '2002-01-01 00:00:00.500000000')
    // fallocate: the size grows, the content reads as zeros.
    sh(`fallocate -l 1000000 ${m('fa')}`)
    assert.equal(fs.statSync(m('fa')).size, 1000000)
    // A user's files are the user's; a setgid directory passes its group on.
    sh(`mkdir ${m('pub')} && chmod 1777 ${m('pub')} && mkdir ${m('sg')} && chown 0:4321 ${m('sg')} && chmod 2777 ${m('sg')}`)
    sh(asUser(1234, `echo mine > ${m('pub/u')} && mkdir ${m('pub/ud')} && ln -s u ${m('pub/ul')} && echo x > ${m('sg/f')} && mkdir ${m('sg/d')}`))
    assert.equal(fs.statSync(m('pub/u')).uid, 1234)
    assert.equal(fs.lstatSync(m('pub/ul')).uid, 1234)
    assert.equal(fs.statSync(m('sg/f')).gid, 4321)
    assert.equal(fs.statSync(m('sg/d')).mode & 0o2000, 0o2000, 'a directory made in a setgid directory is setgid')
    // Special files.
    sh(`mkfifo ${m('fifo')} && mknod ${m('null')} c 1 3 && python3 -c "import socket; s=socket.socket(socket.AF_UNIX); s.bind('${m('sock')}')"`)
    // Binary xattrs: 1,000 bytes and the kernel's 64 KiB limit, read back exactly.
    const v1 = Buffer.alloc(1000, 0x80); const v64 = Buffer.alloc(65536); for (let i = 0; i < v64.length; i++) v64[i] = (i * 7) & 0xff
    fs.writeFileSync(join(base, 'v1'), v1); fs.writeFileSync(join(base, 'v64'), v64)
    sh(`touch ${m('x')} && python3 -c "import os; os.setxattr('${m('x')}', 'user.a', open('${base}/v1','rb').read()); os.setxattr('${m('x')}', 'user.b', open('${base}/v64','rb').read())"`)
    assert.equal(sh(`python3 -c "import os,hashlib; print(hashlib.sha256(os.getxattr('${m('x')}','user.b')).hexdigest())"`).trim(),
      (await import('node:crypto')).createHash('sha256').update(v64).digest('hex'))
    // Hard links keep one inode number through the mount.
    sh(`echo linked > ${m('h1')} && ln ${m('h1')} ${m('h2')}`)
    assert.equal(fs.statSync(m('h1')).ino, fs.statSync(m('h2')).ino)
    // Four threads writing overlapping ranges of one file at once.
    sh(`python3 - <<'EOF'
import os, threading, random
fd = os.open('${m('race')}', os.O_CREAT | os.O_RDWR, 0o644)
def w(k):
    r = random.Random(k)
    for i in range(300):
        os.pwrite(fd, bytes([k]) * r.randint(1, 20000), r.randint(0, 200000))
ts = [threading.Thread(target=w, args=(k,)) for k in range(1, 5)]
[t.start() for t in ts]; [t.join() for t in ts]
os.close(fd)
EOF`)
  } finally {
    const r = await d.stop()
    unstick(mnt)
    assert.equal(r.code, 0, d.err)
  }
  const rep = await cli(['journal', 'replay', state, '--volume', `src=${copy}`])
  assert.equal(rep.code, 0, rep.err)
  // Times first: the snapshots read the files (and so move their atimes).
  const times = p => { const st = fs.lstatSync(p, { bigint: true }); return `${st.atimeNs} ${st.mtimeNs}` }
  for (const f of ['t', 'tm']) assert.equal(times(join(copy, f)), times(join(src, f)), `times of ${f}`)
  assert.equal(snapshot(copy, { exact: true }), snapshot(src, { exact: true }))
}

test.run()
