// Pure path confinement: every way a record's path can try to leave its
// volume, refused with PATH_ESCAPE; every plain path accepted unchanged.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkRelPath, splitRelPath, isInside } from '../../dist/volume/confine.js'

function refused (p, why) {
  try {
    checkRelPath(p)
  } catch (err) {
    assert.is(err.code, 'PATH_ESCAPE', `${JSON.stringify(p)}: code`)
    assert.match(err.message, why, `${JSON.stringify(p)}: message`)
    return
  }
  assert.unreachable(`${JSON.stringify(p)} was accepted`)
}

test('the root and plain relative paths are accepted unchanged', () => {
  for (const p of ['', 'a', 'a/b', 'a/b/c.txt', '.hidden', 'a/..b', 'a/b..', '...', 'x y/ü/€', 'a'.repeat(255)]) {
    assert.is(checkRelPath(p), p)
  }
})

test('absolute paths are refused', () => {
  refused('/', /absolute|slash/)
  refused('/etc/passwd', /absolute/)
  refused('//x', /absolute/)
})

test("'..' and '.' components are refused wherever they are", () => {
  for (const p of ['..', '../x', 'a/..', 'a/../../x', 'a/../b']) refused(p, /'\.\.'/)
  for (const p of ['.', './a', 'a/.', 'a/./b']) refused(p, /'\.'/)
})

test('empty components and a trailing slash are refused', () => {
  refused('a//b', /empty component/)
  refused('a/', /ends with a slash/)
  refused('a/b/', /ends with a slash/)
})

test('NUL is refused', () => {
  refused('a\0b', /NUL/)
  refused('\0', /NUL/)
})

test('a component over 255 bytes is refused, counting bytes not characters', () => {
  refused('a'.repeat(256), /component longer than 255/)
  refused('d/' + 'é'.repeat(128), /component longer than 255/) // 256 bytes, 128 chars
  assert.is(checkRelPath('é'.repeat(127)), 'é'.repeat(127)) // 254 bytes
})

test('a path over 4096 bytes is refused; exactly 4096 is fine', () => {
  // 17 components, 16 slashes: 15 × 255 + 200 + 55 + 16 = 4096 bytes.
  const exact = [...Array(15).fill('n'.repeat(255)), 'x'.repeat(200), 'y'.repeat(55)].join('/')
  assert.is(Buffer.byteLength(exact), 4096)
  assert.is(checkRelPath(exact), exact)
  refused(exact + 'x', /longer than 4096/)
})

test('a non-string is refused', () => {
  try { checkRelPath(undefined); assert.unreachable('accepted') } catch (err) { assert.is(err.code, 'PATH_ESCAPE') }
})

test('splitRelPath gives parent and name', () => {
  assert.equal(splitRelPath('a'), { parent: '', name: 'a' })
  assert.equal(splitRelPath('a/b/c'), { parent: 'a/b', name: 'c' })
})

test('isInside compares whole components', () => {
  assert.ok(isInside('/v/root', '/v/root'))
  assert.ok(isInside('/v/root', '/v/root/a'))
  assert.not.ok(isInside('/v/root', '/v/rootx'))
  assert.not.ok(isInside('/v/root', '/v'))
  assert.ok(isInside('/', '/anything'))
})

test.run()
