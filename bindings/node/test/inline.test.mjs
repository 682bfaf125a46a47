// A library in memory with the members' point accounts runs each command on the JS thread (no
// hop to a worker thread and back). Nothing such a command waits for may need this thread: here
// the background runner sends notices to an async JS notifier all the while, and every command
// must still come back, with the same outcomes as through the worker threads.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Library, Member } from '../index.js'
import { eventually, librarian } from './helpers.mjs'

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
