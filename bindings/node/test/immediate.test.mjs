// immediateReactions: the in-process policies react within the command that caused them. Each
// test opens a real library file (sled or SQLite) without a background runner, so nothing
// reacts unless the command itself does or settle() runs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ErrorCode, LendkitError, Library, Member } from '../index.js'
import { librarian, rejection, tempDir } from './helpers.mjs'

const STORES = ['library.db', 'library.sqlite'] // sled, SQLite

/** Opens a library file in a fresh temp dir with one book of one copy and members m-1 … m-N, runs `body`, closes. */
async function withLibrary(name, options, members, body) {
  const dir = tempDir()
  const lib = await Library.open(join(dir.dir, name), { background: false, ...options })
  try {
    await lib.registerBook({ bookId: 'b-1', title: 'Dune', copies: 1, fee: 30 }, librarian)
    for (let i = 1; i <= members; i++) await lib.joinMember({ memberId: `m-${i}`, name: `Member ${i}` }, librarian)
    await lib.settle()
    await body(lib)
  } finally {
    await lib.close()
    dir.cleanup()
  }
}

/** The types of the events stored on the rental's stream so far (the log, not a view). */
async function rentalLog(lib, rentalId) {
  return (await lib.events()).filter((e) => e.stream === `rental:${rentalId}`).map((e) => e.type)
}

const reserve = (lib, i, rentalId) => lib.reserveBook({ bookId: 'b-1', memberId: `m-${i}`, rentalId }, Member(`m-${i}`))

for (const name of STORES) {
  test(`${name}: with immediateReactions a reservation resolves confirmed, before any settle`, async () => {
    await withLibrary(name, { immediateReactions: true }, 1, async (lib) => {
      const r = await reserve(lib, 1, 'r-1')
      // The outcome still holds the command's own events; the reactions follow them in the log.
      assert.deepEqual(r.events.map((e) => e.type), ['PointsCharged', 'RentalReserved'])
      assert.deepEqual(await rentalLog(lib, 'r-1'), ['RentalReserved', 'RentalConfirmed'])
      const allocated = (await lib.events()).filter((e) => e.type === 'CopyAllocated')
      assert.deepEqual(allocated.map((e) => [e.stream, e.payload.rental]), [['book:b-1', 'r-1']])
      // The views still wait for settle.
      assert.deepEqual((await lib.memberPage('m-1')).rentals, [])
      await lib.settle()
      assert.deepEqual((await lib.memberPage('m-1')).rentals.map((row) => row.status), ['confirmed'])
      assert.deepEqual(await rentalLog(lib, 'r-1'), ['RentalReserved', 'RentalConfirmed'], 'settle reacts no second time')
    })
  })

  test(`${name}: by default a reservation stays reserved until settle`, async () => {
    await withLibrary(name, {}, 1, async (lib) => {
      const r = await reserve(lib, 1, 'r-1')
      assert.deepEqual(r.events.map((e) => e.type), ['PointsCharged', 'RentalReserved'])
      assert.deepEqual(await rentalLog(lib, 'r-1'), ['RentalReserved'])
      assert.equal((await lib.events()).filter((e) => e.type === 'CopyAllocated').length, 0)
      await lib.settle()
      assert.deepEqual(await rentalLog(lib, 'r-1'), ['RentalReserved', 'RentalConfirmed'])
      assert.deepEqual((await lib.memberPage('m-1')).rentals.map((row) => row.status), ['confirmed'])
    })
  })

  test(`${name}: with immediateReactions another member's reservation of the last copy is refused at once`, async () => {
    // The first reservation's copy is allocated before it resolves, so the second is refused
    // outright (BOOK_UNAVAILABLE), storing and charging nothing.
    await withLibrary(name, { immediateReactions: true }, 2, async (lib) => {
      await reserve(lib, 1, 'r-1')
      const head = await lib.head()
      const refused = await rejection(reserve(lib, 2, 'r-2'))
      assert.ok(refused instanceof LendkitError)
      assert.equal(refused.code, ErrorCode.BOOK_UNAVAILABLE)
      assert.equal(refused.code, 'BOOK_UNAVAILABLE')
      assert.equal(await lib.head(), head)
      await lib.settle()
      const page = await lib.memberPage('m-2')
      assert.deepEqual([page.rentals, page.points], [[], 100])
    })
  })

  test(`${name}: by default another member's reservation of the last copy is cancelled at settle`, async () => {
    // Without immediate reactions the copy is still free when the second member reserves: the
    // reservation is stored and charged, then cancelled and refunded at settle.
    await withLibrary(name, {}, 2, async (lib) => {
      await reserve(lib, 1, 'r-1')
      const r = await reserve(lib, 2, 'r-2')
      assert.deepEqual(r.events.map((e) => e.type), ['PointsCharged', 'RentalReserved'])
      await lib.settle()
      assert.deepEqual((await rentalLog(lib, 'r-2')).slice(0, 2), ['RentalReserved', 'RentalCanceled'])
      const [row] = (await lib.memberPage('m-2')).rentals
      assert.deepEqual([row.status, row.paymentStatus], ['canceled', 'refunded'])
      assert.deepEqual((await lib.memberPage('m-1')).rentals.map((row) => row.status), ['confirmed'])
    })
  })
}

test('immediateReactions must be true or false', async () => {
  const e = await rejection(Library.inMemory({ immediateReactions: 'yes' }))
  assert.equal(e.code, 'INVALID_INPUT')
  assert.match(e.message, /immediateReactions/)
})
