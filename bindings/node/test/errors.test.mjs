// Errors: every failure is a LendkitError with the catalogue's code, from sync and async calls
// alike; the exported ErrorCode matches the catalogue (docs/errors.md) and the generated types.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ErrorCode, LendkitError, Librarian, Library, ManualClock, Member } from '../index.js'
import { librarian, rejection, stocked, thrown } from './helpers.mjs'

const read = (rel) => readFileSync(new URL(rel, import.meta.url), 'utf8')

test('err.code from an async call', async () => {
  const lib = await stocked({ welcomePoints: 10 })
  try {
    const e = await rejection(lib.reserveBook({ bookId: 'b-1', memberId: 'm-0' }, Member('m-0')))
    assert.ok(e instanceof LendkitError)
    assert.ok(e instanceof Error)
    assert.equal(e.name, 'LendkitError')
    assert.equal(e.code, 'INSUFFICIENT_POINTS')
    assert.equal(e.code, ErrorCode.INSUFFICIENT_POINTS)
    assert.equal(e.message, 'member m-0 has 10 points but the fee is 30; top up first')
    assert.equal(e.retryable, false)
    const other = await rejection(lib.cancelRental({ rentalId: 'nope' }, Member('m-0')))
    assert.equal(other.code, 'RENTAL_NOT_FOUND')
    const who = await rejection(lib.registerBook({ bookId: 'b-2', title: 'T', copies: 1, fee: 1 }, Member('m-0')))
    assert.equal(who.code, 'UNAUTHORIZED')
    const dup = await rejection(lib.registerBook({ bookId: 'b-1', title: 'T', copies: 1, fee: 1 }, librarian))
    assert.equal(dup.code, 'BOOK_EXISTS')
  } finally {
    await lib.close()
  }
})

test('err.code from a sync call', async () => {
  const lib = await stocked()
  try {
    const e = thrown(() => lib.pause('no-such-consumer'))
    assert.ok(e instanceof LendkitError)
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /no consumer named "no-such-consumer"/)
    const outage = thrown(() => lib.setPaymentOutage(true))
    assert.equal(outage.code, 'INVALID_INPUT', 'outages need faultInjection')
    assert.equal(thrown(() => new ManualClock('soon')).code, 'INVALID_INPUT')
    assert.equal(thrown(() => new ManualClock().advance(-1)).code, 'INVALID_INPUT')
    assert.equal(thrown(() => Librarian(42)).code, 'INVALID_INPUT')
  } finally {
    await lib.close()
  }
  assert.equal(thrown(() => lib.pause('catalog')).code, 'LIBRARY_CLOSED', 'closed')
})

test('another member cannot cancel your rental: NOT_RENTAL_OWNER', async () => {
  const lib = await stocked({ members: 2 })
  try {
    const r = await lib.reserveBook({ bookId: 'b-1', memberId: 'm-0' }, Member('m-0'))
    const e = await rejection(lib.cancelRental({ rentalId: r.rentalId }, Member('m-1')))
    assert.equal(e.code, 'NOT_RENTAL_OWNER')
    assert.match(e.message, new RegExp(r.rentalId))
  } finally {
    await lib.close()
  }
})

test('wrong argument types are INVALID_INPUT errors, rejected (not thrown) by async methods', async () => {
  const lib = await stocked()
  try {
    const p = lib.reserveBook({ bookId: 5, memberId: 'm-0' }, Member('m-0'))
    assert.ok(p instanceof Promise)
    const e = await rejection(p)
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /bookId/)
    assert.equal((await rejection(lib.reserveBook(null, Member('m-0')))).code, 'INVALID_INPUT')
    assert.equal((await rejection(lib.reserveBook({ bookId: 'b-1', memberId: 'm-0' }, 'm-0'))).code, 'INVALID_INPUT')
    assert.equal((await rejection(lib.reserveBook({ bookId: 'b-1', memberId: 'm-0' }, { role: 'system', id: 'x' }))).code, 'INVALID_INPUT')
    assert.equal((await rejection(lib.memberPage(7))).code, 'INVALID_INPUT')
    assert.equal((await rejection(Library.open(''))).code, 'INVALID_INPUT')
    assert.equal((await rejection(Library.inMemory({ wellcomePoints: 5 }))).code, 'INVALID_INPUT', 'typos in options are caught')
    assert.equal(thrown(() => new Library()).code, 'INVALID_INPUT')
  } finally {
    await lib.close()
  }
})

test('ErrorCode is frozen and lists exactly the catalogue in docs/errors.md', () => {
  assert.ok(Object.isFrozen(ErrorCode))
  for (const [k, v] of Object.entries(ErrorCode)) assert.equal(k, v)
  const doc = read('../../../docs/errors.md')
  const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1])
  const missing = documented.filter((c) => !(c in ErrorCode))
  const extra = Object.keys(ErrorCode).filter((c) => !documented.includes(c))
  assert.deepEqual(missing, [], `ErrorCode lacks ${missing}: rebuild the addon (npm run build)`)
  assert.deepEqual(extra, [], `docs/errors.md lacks rows for ${extra}`)
})

test('the types name every code in ErrorCode (generated into commands.d.ts)', () => {
  const dts = read('../commands.d.ts')
  const union = dts.slice(dts.indexOf('export type ErrorCode ='), dts.indexOf('export type CommandName'))
  const typed = [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1])
  const missing = Object.keys(ErrorCode).filter((c) => !typed.includes(c))
  assert.deepEqual(missing, [], `add ${missing.map((c) => `| '${c}'`).join(' ')} to the schema (docs/schema.json) and run python3 scripts/generate.py`)
  assert.deepEqual(typed.filter((c) => !(c in ErrorCode)), [])
})
