// The promises of issue 12 through the JS API: one effect per command id, reads follow the
// actor, numbers and strings mean the same in every language.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Librarian, Member } from '../index.js'
import { librarian, rejection, stocked } from './helpers.mjs'

const MAX_AMOUNT = 2 ** 53 - 1

test('a retried reservation without a rental id charges once, even 16 at once', async () => {
  const lib = await stocked({ copies: 20 })
  try {
    const input = { bookId: 'b-1', memberId: 'm-0', commandId: 'c-77' }
    const outcomes = await Promise.all(Array.from({ length: 16 }, () => lib.reserveBook(input, Member('m-0'))))
    const rentals = new Set(outcomes.map((o) => o.rentalId))
    assert.equal(rentals.size, 1, 'one rental id for every caller')
    const again = await lib.reserveBook(input, Member('m-0'))
    assert.deepEqual(again.events.map((e) => e.position), outcomes[0].events.map((e) => e.position))
    await lib.settle()
    assert.equal((await lib.memberPage('m-0')).points, 70)
    const types = (await lib.events()).map((e) => e.type)
    assert.equal(types.filter((t) => t === 'PointsCharged').length, 1)
    const reused = await rejection(lib.topUp({ memberId: 'm-0', points: 5, commandId: 'c-77' }, librarian))
    assert.equal(reused.code, 'COMMAND_ID_REUSED')
    assert.equal(reused.retryable, false)
  } finally {
    await lib.close()
  }
})

test('reads follow the actor when one is given', async () => {
  const lib = await stocked({ members: 2 })
  try {
    await lib.reserveBook({ bookId: 'b-1', memberId: 'm-0' }, Member('m-0'))
    await lib.settle()
    assert.equal((await lib.memberPage('m-0', Member('m-0'))).points, 70)
    assert.equal((await lib.memberPage('m-0', librarian)).points, 70)
    assert.equal((await lib.memberPage('m-0')).points, 70)
    assert.equal((await rejection(lib.memberPage('m-0', Member('m-1')))).code, 'UNAUTHORIZED')
    assert.equal((await lib.bookList(Member('m-1'))).length, 1)
    for (const read of [
      () => lib.events(1, 10, Member('m-0')),
      () => lib.head(Member('m-0')),
      () => lib.deadLetters(Member('m-0')),
      () => lib.replayDeadLetter('x', Member('m-0')),
    ]) {
      assert.equal((await rejection(read())).code, 'UNAUTHORIZED')
    }
    assert.ok((await lib.events(1, 10, Librarian('lib-1'))).length > 0)
    assert.equal((await rejection(lib.memberPage('m-0', { role: 'system', id: 'x' }))).code, 'INVALID_INPUT')
  } finally {
    await lib.close()
  }
})

test('amounts past 2^53 - 1 are refused, and a refund is never lost', async () => {
  const lib = await stocked()
  try {
    for (const fee of [MAX_AMOUNT + 1, 2 ** 63, 1.5, -1, true, '5']) {
      const e = await rejection(lib.registerBook({ bookId: 'b-x', title: 'T', copies: 1, fee }, librarian))
      assert.equal(e.code, 'INVALID_INPUT', `fee ${fee}`)
    }
    const r = await lib.reserveBook({ bookId: 'b-1', memberId: 'm-0' }, Member('m-0'))
    await lib.settle()
    const over = await rejection(lib.topUp({ memberId: 'm-0', points: MAX_AMOUNT - 99 }, librarian))
    assert.equal(over.code, 'INVALID_INPUT')
    await lib.topUp({ memberId: 'm-0', points: MAX_AMOUNT - 100 }, librarian)
    await lib.cancelRental({ rentalId: r.rentalId }, Member('m-0'))
    await lib.settle()
    const points = (await lib.memberPage('m-0')).points
    assert.equal(points, MAX_AMOUNT, 'the balance reads back exactly')
    assert.ok(Number.isSafeInteger(points))
  } finally {
    await lib.close()
  }
})

test('ids that look alike are refused, lone surrogates included', async () => {
  const lib = await stocked()
  try {
    const head = await lib.head()
    for (const id of ['m\uD800', 'm\uDC00', 'm\u200B1', 'm\u202E1', '\uFEFFm1', ' m1']) {
      const e = await rejection(lib.joinMember({ memberId: id, name: 'Kim' }, librarian))
      assert.equal(e.code, 'INVALID_INPUT', JSON.stringify(id))
    }
    assert.equal(await lib.head(), head)
  } finally {
    await lib.close()
  }
})

// The table the Rust and Python tests use too.
const RULES = readFileSync(new URL('../../../tests/fixtures/circulation-rules.toml', import.meta.url), 'utf8')

test('circulation rules are stored as events and explained for a member and a book', async () => {
  const lib = await stocked()
  try {
    await lib.registerBook({ bookId: 'dvd-1', title: 'A film', copies: 1, fee: 5, itemType: 'dvd' }, librarian)
    await lib.joinMember({ memberId: 's-1', name: 'Student', group: 'student' }, librarian)
    const before = await lib.explainPolicy({ memberId: 's-1', bookId: 'dvd-1' })
    assert.equal(before.version, 0)
    const bad = await rejection(lib.changeCirculationRules({ rules: RULES.replace('loan = "dvd"', 'loan = "nope"') }, librarian))
    assert.equal(bad.code, 'INVALID_INPUT')
    assert.match(bad.message, /rule 3, field loan/)
    const changed = await lib.changeCirculationRules({ rules: RULES }, librarian)
    assert.deepEqual(changed.events.map((e) => e.type), ['CirculationRulesChanged'])
    const explained = await lib.explainPolicy({ memberId: 's-1', bookId: 'dvd-1' }, Member('s-1'))
    assert.equal(explained.version, 1)
    assert.equal(explained.explanation.policies.loan.name, 'dvd')
    assert.equal((await rejection(lib.explainPolicy({ memberId: 's-1', bookId: 'dvd-1' }, Member('m-0')))).code, 'UNAUTHORIZED')
  } finally {
    await lib.close()
  }
})

test('memberBlocks says what would stop a member; advanceTo and overdueList with nothing due', async () => {
  const lib = await stocked({ members: 2 })
  try {
    assert.deepEqual(await lib.memberBlocks('m-0'), [])
    await lib.blockMember({ memberId: 'm-0', reason: 'card reported stolen' }, librarian)
    const blocks = await lib.memberBlocks('m-0', Member('m-0'))
    assert.deepEqual(blocks.map((b) => [b.action, b.code]), [
      ['borrow', 'MEMBER_BLOCKED'],
      ['renew', 'MEMBER_BLOCKED'],
      ['reserve', 'MEMBER_BLOCKED'],
    ])
    assert.match(blocks[0].message, /card reported stolen/)
    assert.equal((await rejection(lib.memberBlocks('m-0', Member('m-1')))).code, 'UNAUTHORIZED')
    assert.equal((await rejection(lib.overdueList({}, Member('m-1')))).code, 'UNAUTHORIZED')
    assert.equal((await rejection(lib.memberBlocks('nobody'))).code, 'MEMBER_NOT_FOUND')
    assert.equal(await lib.advanceTo(Date.UTC(2027, 0, 1)), 0)
    assert.deepEqual(await lib.overdueList({ nowMs: Date.UTC(2027, 0, 1) }), [])
    assert.equal((await rejection(lib.advanceTo(1.5))).code, 'INVALID_INPUT')
  } finally {
    await lib.close()
  }
})
