// Promises under concurrency: many reservations at once on the last copies.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Library } from '../index.js'
import { librarian, reserve, stocked, tempDir } from './helpers.mjs'

for (const background of [false, true]) {
  test(`${background ? 'background runner' : 'settle'}: 40 members reserve the last 3 copies at once; exactly 3 are confirmed, the rest refunded`, async () => {
    const members = 40
    const copies = 3
    const lib = await stocked({ copies, members, background })
    try {
      const results = await Promise.allSettled(Array.from({ length: members }, (_, i) => reserve(lib, i)))
      // A reservation is refused up front (BOOK_UNAVAILABLE) once the saga has allocated every
      // copy; before that, it is paid and the saga decides who gets a copy.
      const refused = results.filter((r) => r.status === 'rejected')
      assert.deepEqual([...new Set(refused.map((r) => r.reason.code))].filter((c) => c !== 'BOOK_UNAVAILABLE'), [])
      const rentals = results.filter((r) => r.status === 'fulfilled').map((r) => r.value.rentalId)
      assert.ok(rentals.length >= copies)
      assert.equal(new Set(rentals).size, rentals.length, 'every reservation names its own rental')
      await lib.settle()
      const pages = await Promise.all(Array.from({ length: members }, (_, i) => lib.memberPage(`m-${i}`)))
      const statuses = pages.flatMap((p) => p.rentals.map((r) => r.status))
      assert.equal(statuses.length, rentals.length)
      assert.equal(statuses.filter((s) => s === 'confirmed').length, copies)
      assert.equal(statuses.filter((s) => s === 'canceled').length, rentals.length - copies)
      for (const p of pages) {
        const [r] = p.rentals
        if (r?.status === 'confirmed') {
          assert.equal(p.points, 70)
          assert.equal(r.paymentStatus, 'charged')
        } else {
          assert.equal(p.points, 100, `${p.memberId} paid nothing in the end`)
          if (r) assert.equal(r.paymentStatus, 'refunded')
        }
      }
      const [book] = await lib.bookList()
      assert.equal(book.available, 0)
      assert.equal(book.reserved, copies)
      const events = await lib.events()
      assert.deepEqual(
        events.map((e) => e.position),
        events.map((_, i) => i + 1),
        'the log has no gaps',
      )
      assert.equal(events.filter((e) => e.type === 'CopyAllocated').length, copies)
    } finally {
      await lib.close()
    }
  })
}

test('the same command id sent concurrently acts once', async () => {
  const lib = await stocked({ copies: 5, members: 1 })
  try {
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => reserve(lib, 0, { rentalId: 'r-1', commandId: 'reserve-once' })),
    )
    const ok = results.filter((r) => r.status === 'fulfilled')
    assert.ok(ok.length >= 1)
    for (const r of results.filter((x) => x.status === 'rejected')) assert.equal(typeof r.reason.code, 'string')
    await lib.settle()
    const page = await lib.memberPage('m-0')
    assert.equal(page.rentals.length, 1)
    assert.equal(page.points, 70, 'charged once')
  } finally {
    await lib.close()
  }
})

test('queries and commands interleave without blocking each other', async () => {
  const lib = await stocked({ copies: 50, members: 20, background: true })
  try {
    const work = []
    for (let i = 0; i < 20; i++) {
      work.push(reserve(lib, i))
      work.push(lib.bookList())
      work.push(lib.events(1, 5))
    }
    await Promise.all(work)
    await lib.settle()
    const [book] = await lib.bookList()
    assert.equal(book.reserved, 20)
    assert.equal(book.available, 30)
  } finally {
    await lib.close()
  }
})

test('the JS thread stays free while the core writes to disk', async () => {
  const { dir, cleanup } = tempDir()
  const lib = await Library.open(join(dir, 'busy.db'), { background: false })
  try {
    await lib.registerBook({ bookId: 'b-1', title: 'T', copies: 100, fee: 1 }, librarian)
    await Promise.all(Array.from({ length: 50 }, (_, i) => lib.joinMember({ memberId: `m-${i}`, name: 'N' }, librarian)))
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    const pending = Promise.all(Array.from({ length: 50 }, (_, i) => reserve(lib, i)))
    // Each call returned a Promise at once; timers keep firing while the core works.
    await new Promise((r) => setTimeout(r, 5))
    await pending
    await lib.settle()
    clearInterval(timer)
    assert.ok(ticks > 0, 'timers fired while the commands ran')
    assert.equal((await lib.bookList())[0].reserved, 50)
  } finally {
    await lib.close()
    cleanup()
  }
})
