// Holds through the JS API with Promise.all: the queue is one aggregate per title in the core,
// so sixteen holds placed at once get positions 1..16, sixteen calls lending the one copy on the
// pickup shelf make one loan, and a return racing a cancel gives the copy to exactly one member.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Library, Member } from '../index.js'
import { librarian, rejection } from './helpers.mjs'

/** A library whose one copy of b-1 is lent to m-x; `members` have joined. */
async function allOut(members) {
  const lib = await Library.inMemory({ background: false })
  await lib.registerBook({ bookId: 'b-1', title: 'Holds', copies: 1, fee: 10 }, librarian)
  for (const m of ['m-x', ...members]) await lib.joinMember({ memberId: m, name: m }, librarian)
  await lib.reserveBook({ bookId: 'b-1', memberId: 'm-x', rentalId: 'r-x' }, Member('m-x'))
  await lib.settle()
  await lib.startLoan({ rentalId: 'r-x' }, Member('m-x'))
  return lib
}

test('sixteen holds placed at once get positions 1..16', async () => {
  const members = Array.from({ length: 16 }, (_, i) => `m-${i}`)
  const lib = await allOut(members)
  try {
    await Promise.all(members.map((m) => lib.placeHold({ bookId: 'b-1', memberId: m, holdId: `h-${m}` }, Member(m))))
    await lib.settle()
    const positions = []
    for (const m of members) positions.push((await lib.memberPage(m)).rentals[0].position)
    assert.deepEqual(positions.sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i + 1))
  } finally {
    await lib.close()
  }
})

test('sixteen calls lending the copy on the pickup shelf make one loan, to its holder', async () => {
  const others = Array.from({ length: 8 }, (_, i) => `m-${i}`)
  const lib = await allOut(['m-a', ...others])
  try {
    await lib.placeHold({ bookId: 'b-1', memberId: 'm-a', holdId: 'h-a' }, Member('m-a'))
    await lib.settle()
    await lib.returnBook({ rentalId: 'r-x' }, Member('m-x'))
    await lib.settle()
    assert.deepEqual((await lib.holdShelf()).map((r) => [r.holdId, r.memberId]), [['h-a', 'm-a']])
    const collects = Array.from({ length: 8 }, () => lib.collectHold({ holdId: 'h-a' }, librarian).then((o) => o, (e) => e))
    const borrows = others.map((m) => lib.reserveBook({ bookId: 'b-1', memberId: m }, Member(m)).then((o) => o, (e) => e))
    const results = await Promise.all([...collects, ...borrows])
    const loans = results.slice(0, 8).filter((r) => !(r instanceof Error)).flatMap((o) => o.events.filter((e) => e.type === 'LoanStarted'))
    assert.equal(loans.length, 1)
    for (const r of results.slice(0, 8)) if (r instanceof Error) assert.equal(r.code, 'INVALID_TRANSITION')
    for (const r of results.slice(8)) assert.ok(['HELD_FOR_OTHER', 'BOOK_UNAVAILABLE'].includes(r.code), String(r))
    await lib.settle()
    assert.equal((await lib.memberPage('m-a')).rentals[0].status, 'on_loan')
    assert.deepEqual(await lib.holdShelf(), [])
  } finally {
    await lib.close()
  }
})

test('a return racing a cancel gives the copy to exactly one member', async () => {
  for (let round = 0; round < 5; round++) {
    const lib = await allOut(['m-a', 'm-b'])
    try {
      await lib.placeHold({ bookId: 'b-1', memberId: 'm-a', holdId: 'h-a' }, Member('m-a'))
      await lib.placeHold({ bookId: 'b-1', memberId: 'm-b', holdId: 'h-b' }, Member('m-b'))
      await lib.settle()
      await Promise.all([
        lib.returnBook({ rentalId: 'r-x' }, Member('m-x')).then(() => lib.settle()),
        lib.cancelHold({ holdId: 'h-a' }, Member('m-a')).then(() => lib.settle()),
      ])
      await lib.settle()
      assert.deepEqual((await lib.holdShelf()).map((r) => [r.holdId, r.memberId]), [['h-b', 'm-b']])
      const a = await lib.memberPage('m-a')
      assert.deepEqual([a.points, a.rentals[0].status, a.rentals[0].paymentStatus], [100, 'canceled', 'refunded'])
    } finally {
      await lib.close()
    }
  }
})

test('hold mistakes are typed errors with stable codes', async () => {
  const lib = await allOut(['m-a', 'm-b'])
  try {
    await lib.placeHold({ bookId: 'b-1', memberId: 'm-a', holdId: 'h-a' }, Member('m-a'))
    await lib.settle()
    assert.equal((await rejection(lib.placeHold({ bookId: 'b-404', memberId: 'm-a' }, Member('m-a')))).code, 'BOOK_NOT_FOUND')
    assert.equal((await rejection(lib.placeHold({ bookId: 'b-1', memberId: 'm-a' }, Member('m-a')))).code, 'ALREADY_HELD')
    assert.equal((await rejection(lib.cancelHold({ holdId: 'h-a' }, Member('m-b')))).code, 'NOT_HOLD_OWNER')
    assert.equal((await rejection(lib.reorderQueue({ bookId: 'b-1', holdId: 'h-a', position: 1 }, Member('m-a')))).code, 'UNAUTHORIZED')
    assert.equal((await rejection(lib.reorderQueue({ bookId: 'b-1', holdId: 'h-a', position: 2 }, librarian))).code, 'INVALID_INPUT')
    assert.equal((await rejection(lib.placeHold({ bookId: 'b-1', memberId: 'm-b', notNeededAfter: 1 }, Member('m-b')))).code, 'INVALID_INPUT')
    assert.equal((await rejection(lib.renewLoan({ rentalId: 'r-x' }, Member('m-x')))).code, 'HAS_HOLDS')
    assert.equal((await rejection(lib.reserveBook({ bookId: 'b-1', memberId: 'm-b', wait: 'yes' }, Member('m-b')))).code, 'INVALID_INPUT')
  } finally {
    await lib.close()
  }
})
