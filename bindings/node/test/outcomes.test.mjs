// A command's outcome carries its events as JSON text from the native side (one JSON.parse,
// not an object per event built through napi); the log's own query builds them through napi.
// The two must be the same objects, field for field, for every kind of event a day stores —
// escapes, optional fields and numbers included.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Library, Member } from '../index.js'
import { librarian } from './helpers.mjs'

test("an outcome's events are the log's events, field for field", async () => {
  const lib = await Library.inMemory({ background: false, immediateReactions: true })
  const outcomes = []
  const run = async (p) => outcomes.push(await p)
  await run(lib.registerBook({ bookId: 'b-"1"', title: 'Éte\u0301 "quoted" \\ tab\t 📚', author: 'A\nB', copies: 2, fee: 3 }, librarian))
  await run(lib.joinMember({ memberId: 'm-1', name: 'Ada' }, librarian))
  await run(lib.topUp({ memberId: 'm-1', points: 50 }, librarian))
  await run(lib.reserveBook({ bookId: 'b-"1"', memberId: 'm-1', rentalId: 'r-1' }, Member('m-1')))
  await run(lib.startLoan({ rentalId: 'r-1' }, Member('m-1')))
  await run(lib.returnBook({ rentalId: 'r-1' }, Member('m-1')))
  await run(lib.reserveBook({ bookId: 'b-"1"', memberId: 'm-1', rentalId: 'r-2' }, Member('m-1')))
  await run(lib.cancelRental({ rentalId: 'r-2' }, Member('m-1')))
  const [batch] = await lib.executeBatch([{ command: 'topUp', input: { memberId: 'm-1', points: 1 }, actor: librarian }])
  outcomes.push(batch.outcome)
  await lib.settle()
  const stored = await lib.events(1, 1000)
  const byPosition = new Map(stored.map((e) => [e.position, e]))
  let compared = 0
  for (const outcome of outcomes) {
    assert.ok(outcome.events.length > 0, JSON.stringify(outcome))
    for (const e of outcome.events) {
      assert.deepStrictEqual(e, byPosition.get(e.position))
      compared++
    }
  }
  const types = new Set(outcomes.flatMap((o) => o.events.map((e) => e.type)))
  for (const t of ['BookRegistered', 'MemberJoined', 'PointsToppedUp', 'PointsCharged', 'RentalReserved', 'LoanStarted', 'BookReturned', 'RentalCanceled']) {
    assert.ok(types.has(t), `${t} among ${[...types]}`)
  }
  assert.ok(compared >= 10, `${compared} events compared`)
  await lib.close()
})

// `events` is parsed when first read; until then and after, the outcome behaves as a plain
// object holding it.
test("an outcome's events read, spread, serialize, compare and assign like a plain field", async () => {
  const lib = await Library.inMemory({ background: false })
  const out = await lib.joinMember({ memberId: 'm-1', name: 'Ada', commandId: 'j-1' }, librarian)
  assert.deepEqual(Object.keys(out), ['commandId', 'events'], 'no rentalId for a command without a rental')
  const copy = { ...out }
  assert.deepEqual(copy.events.map((e) => e.type), ['MemberJoined', 'AccountOpened'])
  assert.equal(out.events, out.events, 'parsed once, the same array after')
  assert.deepStrictEqual(JSON.parse(JSON.stringify(out)), { commandId: 'j-1', events: copy.events })
  assert.deepStrictEqual(out, { commandId: 'j-1', events: copy.events })
  const reserved = await lib.execute('topUp', { memberId: 'm-1', points: 5 }, librarian)
  reserved.events = []
  assert.deepEqual(reserved.events, [], 'assigned, it holds what was assigned')
  const rental = await lib.registerBook({ bookId: 'b-1', title: 'T', copies: 1, fee: 1 }, librarian).then(() => lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1' }, Member('m-1')))
  assert.deepEqual(Object.keys(rental), ['commandId', 'rentalId', 'events'])
  await lib.close()
})
