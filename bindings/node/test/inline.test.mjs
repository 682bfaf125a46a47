// A library in memory with the members' point accounts runs each command on the JS thread (no
// hop to a worker thread and back). Nothing such a command waits for may need this thread: here
// the background runner sends notices to an async JS notifier all the while, and every command
// must still come back, with the same outcomes as through the worker threads.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Library, Member } from '../index.js'
import { eventually, librarian } from './helpers.mjs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

async function day(options) {
  const notices = []
  const notifier = async (notice) => {
    await new Promise((resolve) => setImmediate(resolve))
    notices.push(notice.kind)
  }
  const lib = await Library.inMemory({ notifier, ...options })
  await lib.registerBook({ bookId: 'b-1', title: 'Refactoring', copies: 300, fee: 1 }, librarian)
  for (let m = 0; m < 4; m++) {
    await lib.joinMember({ memberId: `m-${m}`, name: `Member ${m}` }, librarian)
    await lib.topUp({ memberId: `m-${m}`, points: 500 }, librarian)
  }
  const outcomes = []
  for (let i = 0; i < 200; i++) {
    const member = `m-${i % 4}`
    const outcome = await lib.reserveBook({ bookId: 'b-1', memberId: member, rentalId: `r-${i}` }, Member(member))
    outcomes.push(outcome.events.map((e) => e.type))
  }
  await lib.settle()
  await eventually(() => notices.filter((k) => k === 'RentalConfirmed').length === 200)
  const page = await lib.memberPage('m-0')
  await lib.close()
  return { outcomes, page }
}

test('commands run on the JS thread while the background runner awaits a JS notifier', async () => {
  const inline = await day({})
  assert.equal(inline.outcomes.length, 200)
  assert.deepEqual(inline.outcomes[0], ['PointsCharged', 'RentalReserved'])
  assert.equal(inline.page.rentals.length, 50)
  assert.ok(inline.page.rentals.every((r) => r.status === 'confirmed'))
})

test('the same day through the worker threads (a JS gateway) has the same outcomes', async () => {
  const payment = { charge: (memberId, amount, key) => `pay-${key}`, refund() {} }
  const pooled = await day({ payment })
  assert.equal(pooled.outcomes.length, 200)
  assert.deepEqual(pooled.outcomes[0], ['RentalReserved'])
  assert.equal(pooled.page.rentals.length, 50)
  assert.ok(pooled.page.rentals.every((r) => r.status === 'confirmed'))
})

// Without a JS notifier a settle waits for nothing on this thread either, so it runs here too,
// and so does executeBatch: the saga, the views and the subscribers must come out as they do
// through the worker threads (a library on a file runs both there; one with a JS notifier
// settles there).
async function batchDay(options, path) {
  const lib = path === undefined ? await Library.inMemory(options) : await Library.open(path, options)
  const seen = []
  lib.subscribe((e) => seen.push(e.type))
  await lib.registerBook({ bookId: 'b-1', title: 'Refactoring', copies: 100, fee: 2 }, librarian)
  await lib.executeBatch([0, 1, 2, 3].flatMap((m) => [
    { command: 'joinMember', input: { memberId: `m-${m}`, name: `Member ${m}` }, actor: librarian },
    { command: 'topUp', input: { memberId: `m-${m}`, points: 100 }, actor: librarian },
  ]))
  const rentals = Array.from({ length: 40 }, (_, i) => [`r-${i}`, `m-${i % 4}`])
  const reserved = await lib.executeBatch(rentals.map(([rentalId, memberId]) => ({ command: 'reserveBook', input: { bookId: 'b-1', memberId, rentalId }, actor: Member(memberId) })))
  // One refused in the middle: a rental that does not exist. The rest go on.
  const loans = await lib.executeBatch([...rentals.slice(0, 20), ['r-nope', 'm-0'], ...rentals.slice(20)].map(([rentalId, memberId]) => ({ command: 'startLoan', input: { rentalId }, actor: Member(memberId) })))
  await lib.settle()
  const loansAfterSettle = await lib.executeBatch(rentals.map(([rentalId, memberId]) => ({ command: 'startLoan', input: { rentalId }, actor: Member(memberId) })), { events: false })
  await lib.settle()
  const result = {
    reserved: reserved.map((a) => a.outcome.events.map((e) => e.type)),
    loans: loans.map((a) => (a.error ? a.error.code : 'ok')),
    loansAfterSettle: loansAfterSettle.map((a) => (a.error ? a.error.code : a.outcome.events.length)),
    page: (await lib.memberPage('m-1')).rentals.map((r) => [r.rentalId, r.status]),
    book: (await lib.bookList()).map((b) => [b.available, b.onLoan]),
    balance: (await lib.memberPage('m-2')).points,
    seen: seen.length,
  }
  await lib.close()
  return result
}

test('settle and executeBatch on the JS thread give what the worker threads give', async () => {
  const notifier = async () => {}
  const inline = await batchDay({ background: false })
  const settledPooled = await batchDay({ background: false, notifier })
  const dir = await mkdtemp(join(tmpdir(), 'lendkit-inline-'))
  const pooled = await batchDay({ background: false }, join(dir, 'library.db'))
  await rm(dir, { recursive: true, force: true })
  assert.deepEqual(inline, settledPooled)
  assert.deepEqual(inline, pooled)
  assert.equal(inline.reserved.length, 40)
  assert.deepEqual(inline.reserved[0], ['PointsCharged', 'RentalReserved'])
  assert.equal(inline.loans.filter((c) => c === 'ok').length, 0, 'no loan before the copy is allocated')
  assert.equal(inline.loansAfterSettle.filter((n) => n === 0).length, 40)
  assert.ok(inline.page.every(([, status]) => status === 'on_loan'), JSON.stringify(inline.page))
  assert.deepEqual(inline.book, [[60, 40]])
  assert.equal(inline.balance, (await balanceOfANewMember()) - 10 * 2)
  assert.ok(inline.seen > 100, `the subscriber saw ${inline.seen} events`)
})

async function balanceOfANewMember() {
  const lib = await Library.inMemory({ background: false })
  await lib.joinMember({ memberId: 'm', name: 'M' }, librarian)
  await lib.topUp({ memberId: 'm', points: 100 }, librarian)
  await lib.settle()
  const points = (await lib.memberPage('m')).points
  await lib.close()
  return points
}
