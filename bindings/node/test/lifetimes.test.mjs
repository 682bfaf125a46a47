// Lifetimes: subscriptions, clean process exit, and a real sled file surviving close/reopen.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Library, Member } from '../index.js'
import { eventually, librarian, rejection, stocked, tempDir } from './helpers.mjs'

const PACKAGE = fileURLToPath(new URL('..', import.meta.url))

/** Runs `source` in a child `node`; resolves with its exit code and output, or fails if it has not exited by itself in `ms`. */
function child(source, env = {}, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', source], {
      cwd: PACKAGE,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => {
      p.kill('SIGKILL')
      reject(new Error(`the child did not exit by itself within ${ms} ms; output:\n${out}`))
    }, ms)
    p.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, out })
    })
  })
}

const PRELUDE = `
const { Library, Librarian, Member } = require('./index.js')
const L = Librarian('lib-1')
const path = process.env.DB
`

test('a subscription hands over every committed event, in order, until unsubscribed', async () => {
  for (const background of [false, true]) {
    const lib = await stocked({ background })
    try {
      // Without the background runner, settle() hands events over, including those committed
      // since the previous settle: start from a settled library.
      await lib.settle()
      // The facade may still hand over events committed shortly before subscribing (see the
      // binding's notes); this test looks at those committed after.
      const from = await lib.head()
      const all = []
      const sub = lib.subscribe((e) => all.push(e))
      const after = () => all.filter((e) => e.position > from)
      await lib.reserveBook({ bookId: 'b-1', memberId: 'm-0', rentalId: 'r-1' }, Member('m-0'))
      await lib.settle()
      await eventually(() => after().some((e) => e.type === 'RentalConfirmed'))
      const seen = after()
      const positions = seen.map((e) => e.position)
      assert.deepEqual(positions, [...positions].sort((a, b) => a - b))
      assert.deepEqual(seen.slice(0, 2).map((e) => e.type), ['PointsCharged', 'RentalReserved'])
      const reserved = seen.find((e) => e.type === 'RentalReserved')
      assert.equal(reserved.payload.rental, 'r-1')
      assert.equal(typeof reserved.payload.payment_id, 'string', 'payloads keep their stored snake_case fields')
      assert.equal(sub.unsubscribe(), true)
      assert.equal(sub.unsubscribe(), false)
      const count = all.length
      await lib.cancelRental({ rentalId: 'r-1' }, Member('m-0'))
      await lib.settle()
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(all.length, count, 'nothing after unsubscribe')
    } finally {
      await lib.close()
    }
  }
})

test('a throwing subscriber is reported as a warning, never a crash', async () => {
  const lib = await stocked()
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    lib.subscribe(() => {
      throw new Error('subscriber bug')
    })
    lib.subscribe(async () => {
      throw new Error('async subscriber bug')
    })
    await lib.reserveBook({ bookId: 'b-1', memberId: 'm-0' }, Member('m-0'))
    await lib.settle()
    await eventually(() => warnings.some((w) => /async subscriber bug/.test(w.message)))
    assert.ok(warnings.some((w) => /subscriber bug/.test(w.message)))
  } finally {
    process.off('warning', onWarning)
    await lib.close()
  }
})

test('a child that opens, subscribes, unsubscribes and closes exits by itself', async () => {
  const { dir, cleanup } = tempDir()
  try {
    const r = await child(
      `${PRELUDE}
      ;(async () => {
        const lib = await Library.open(path)
        let seen = 0
        const sub = lib.subscribe(() => { seen++ })
        await lib.registerBook({ bookId: 'b-1', title: 'T', copies: 1, fee: 1 }, L)
        await lib.settle()
        while (seen === 0) await new Promise((r) => setTimeout(r, 5))
        sub.unsubscribe()
        await lib.close()
        console.log('closed after', seen, 'events')
      })()`,
      { DB: join(dir, 'lib.db') },
    )
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /closed after 1 events/)
  } finally {
    cleanup()
  }
})

test('a child that closes with subscriptions still active exits by itself', async () => {
  const { dir, cleanup } = tempDir()
  try {
    const r = await child(
      `${PRELUDE}
      ;(async () => {
        const lib = await Library.open(path, { notifier: () => {} })
        lib.subscribe(() => {})
        lib.subscribe(() => {})
        await lib.registerBook({ bookId: 'b-1', title: 'T', copies: 1, fee: 1 }, L)
        await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, L)
        await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1' }, Member('m-1'))
        await lib.close()
        console.log('closed')
      })()`,
      { DB: join(dir, 'lib.db') },
    )
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /closed/)
  } finally {
    cleanup()
  }
})

test('a child whose charge never settles exits by itself after close(); the reservation fails with LIBRARY_CLOSED', async () => {
  const r = await child(`${PRELUDE}
    ;(async () => {
      let started
      const charging = new Promise((r) => (started = r))
      const payment = { charge: () => { started(); return new Promise(() => {}) }, refund: () => {} }
      const lib = await Library.inMemory({ payment, breaker: { callTimeoutMs: null } })
      await lib.registerBook({ bookId: 'b-1', title: 'T', copies: 1, fee: 1 }, L)
      await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, L)
      const pending = lib.reserveBook({ bookId: 'b-1', memberId: 'm-1' }, Member('m-1')).then(() => 'reserved', (e) => e.code)
      await charging
      await lib.close()
      console.log('reserveBook:', await pending)
    })()`)
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /reserveBook: LIBRARY_CLOSED/)
})

test('a subscription alone does not keep a child alive, even without close()', async () => {
  const r = await child(`${PRELUDE}
    ;(async () => {
      const lib = await Library.inMemory()
      lib.subscribe(() => {})
      await lib.registerBook({ bookId: 'b-1', title: 'T', copies: 1, fee: 1 }, L)
      console.log('done')
    })()`)
  assert.equal(r.code, 0, r.out)
})

test('a real sled file survives close and reopen', async () => {
  const { dir, cleanup } = tempDir()
  const path = join(dir, 'library.db')
  try {
    const lib = await Library.open(path)
    await lib.registerBook({ bookId: 'b-1', title: 'Domain-Driven Design', copies: 2, fee: 30 }, librarian)
    await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, librarian)
    const r = await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1' }, Member('m-1'))
    await lib.settle()
    const before = await lib.events()
    await lib.close()
    assert.equal(lib.closed, true)
    await lib.close() // idempotent
    const closed = await rejection(lib.bookList())
    assert.equal(closed.code, 'LIBRARY_CLOSED')
    assert.match(closed.message, /closed/)

    const again = await Library.open(path, { durability: 'everyCommit' })
    try {
      await again.settle()
      assert.deepEqual(await again.events(), before)
      const [book] = await again.bookList()
      assert.equal(book.bookId, 'b-1')
      assert.equal(book.reserved, 1)
      const page = await again.memberPage('m-1')
      assert.equal(page.points, 70)
      assert.equal(page.rentals[0].rentalId, r.rentalId)
      assert.equal(page.rentals[0].status, 'confirmed')
      // Retrying the same command id after reopening changes nothing.
      const retried = await again.registerBook(
        { bookId: 'b-1', title: 'Domain-Driven Design', copies: 2, fee: 30, commandId: before[0].commandId },
        librarian,
      )
      assert.deepEqual(retried.events, [before[0]])
    } finally {
      await again.close()
    }

    const periodic = await Library.open(path, { durability: { periodicMs: 20 } })
    await periodic.addCopies({ bookId: 'b-1', copies: 1 }, librarian)
    await periodic.close()
    const last = await Library.open(path)
    try {
      await last.settle()
      assert.equal((await last.bookList())[0].copies, 3)
    } finally {
      await last.close()
    }
  } finally {
    cleanup()
  }
})

test('a path that is not a library is refused with NOT_A_LIBRARY', async () => {
  const { dir, cleanup } = tempDir()
  try {
    const { writeFileSync } = await import('node:fs')
    const path = join(dir, 'notes.txt')
    writeFileSync(path, 'not a database')
    const e = await rejection(Library.open(path))
    assert.equal(e.code, 'NOT_A_LIBRARY')
  } finally {
    cleanup()
  }
})
