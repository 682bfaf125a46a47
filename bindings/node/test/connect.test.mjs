// Library.connect: two libraries in this process, connected to one PostgreSQL schema and one
// NATS namespace (as two Node pods would be), serve one library: the saga runs once, the views
// of both agree with a fresh one. Needs LENDKIT_PG_URL and LENDKIT_NATS_URL (set by .ci/run);
// without them the tests are skipped, saying so.
import test from 'node:test'
import assert from 'node:assert/strict'
import { Library, Librarian, Member } from '../index.js'

const PG = process.env.LENDKIT_PG_URL ?? ''
const NATS = process.env.LENDKIT_NATS_URL ?? ''
const skip = PG && NATS ? false : 'LENDKIT_PG_URL or LENDKIT_NATS_URL is not set (needs PostgreSQL and NATS)'
const librarian = Librarian('lib-1')

// Settles each library in turn until two rounds in a row store nothing new (each settle relays
// the log into its own views first, so they are then at the head).
async function settleAll(libs) {
  const deadline = Date.now() + 60_000
  let quiet = 0
  while (quiet < 2) {
    const before = await libs[0].head()
    for (const lib of libs) await lib.settle()
    quiet = (await libs[0].head()) === before ? quiet + 1 : 0
    assert.ok(Date.now() < deadline, 'the libraries did not settle')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test('two connected libraries run one saga and agree on the views', { skip }, async () => {
  const name = `lk_js_${process.pid}`
  await Library.dropConnected(PG, NATS, name)
  const a = await Library.connect(PG, NATS, { name, background: false })
  const b = await Library.connect(PG, NATS, { name, background: false })
  try {
    await a.registerBook({ bookId: 'isbn-1', title: 'Domain-Driven Design', copies: 2, fee: 30 }, librarian)
    const pairs = [[a, 'm-0'], [b, 'm-1'], [a, 'm-2'], [b, 'm-3']]
    for (const [lib, m] of pairs) await lib.joinMember({ memberId: m, name: `Member ${m}` }, librarian)
    for (const [lib, m] of pairs) await lib.reserveBook({ bookId: 'isbn-1', memberId: m }, Member(m))
    await settleAll([b, a])
    const events = await a.events()
    const count = (type) => events.filter((e) => e.type === type).length
    assert.equal(count('RentalConfirmed'), 2)
    assert.equal(count('RentalCanceled'), 2)
    assert.equal(count('PointsRefunded'), 2)
    assert.deepEqual(events.map((e) => e.position), events.map((_, i) => i + 1))
    const fresh = await Library.connect(PG, NATS, { name, background: false })
    try {
      await settleAll([fresh, a, b])
      for (const lib of [a, b]) {
        assert.deepEqual(await lib.bookList(), await fresh.bookList())
        for (const [, m] of pairs) assert.deepEqual(await lib.memberPage(m), await fresh.memberPage(m))
      }
      const points = []
      for (const [, m] of pairs) points.push((await fresh.memberPage(m)).points)
      assert.deepEqual(points.sort(), [100, 100, 70, 70].sort())
    } finally {
      await fresh.close()
    }
  } finally {
    await a.close()
    await b.close()
    await Library.dropConnected(PG, NATS, name)
  }
})

test('connect refuses what it cannot do, with stable codes', { skip }, async () => {
  const name = `lk_js_r_${process.pid}`
  await assert.rejects(Library.connect(PG, NATS, { name, immediateReactions: true }), { code: 'INVALID_INPUT' })
  await assert.rejects(Library.connect(PG, 'nats://127.0.0.1:1', { name, background: false }), (e) => {
    assert.equal(e.code, 'STORAGE')
    assert.match(e.message, /nats:\/\/127\.0\.0\.1:1/)
    return true
  })
  await assert.rejects(Library.connect(PG, NATS, { name, store: 'sled' }), { code: 'INVALID_INPUT' })
  await assert.rejects(Library.connect('', NATS), { code: 'INVALID_INPUT' })
  await Library.dropConnected(PG, NATS, name)
})
