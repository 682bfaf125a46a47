// Host ports written in JavaScript: a payment gateway (sync, async, throwing, declining, lying)
// behind the circuit breaker, and a notifier; closing while a port never answers.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Library, ManualClock, Member } from '../index.js'
import { eventually, librarian, rejection } from './helpers.mjs'

async function withGateway(payment, options = {}) {
  const lib = await Library.inMemory({ background: false, payment, ...options })
  await lib.registerBook({ bookId: 'b-1', title: 'Refactoring', copies: 10, fee: 30 }, librarian)
  await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, librarian)
  return lib
}

const reserve = (lib, rentalId) => lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId }, Member('m-1'))

test('a gateway that throws opens the circuit, fails fast while open, and recovers after the cool-down', async () => {
  const clock = new ManualClock()
  let down = true
  const calls = []
  const payment = {
    charge(memberId, amount, key) {
      calls.push(['charge', memberId, amount, key])
      if (down) throw new Error('the card processor is down')
      return `pay-${key}`
    },
    refund(key) {
      calls.push(['refund', key])
    },
  }
  const lib = await withGateway(payment, {
    clock,
    breaker: { failureThreshold: 2, coolDownMs: 60_000, callTimeoutMs: null },
  })
  try {
    for (const r of ['r-1', 'r-2']) {
      const e = await rejection(reserve(lib, r))
      assert.equal(e.code, 'PAYMENT_UNAVAILABLE')
      assert.match(e.message, /the card processor is down/)
    }
    assert.equal(lib.paymentCircuit(), 'open')
    assert.equal(calls.length, 2)
    // Open: refused at once, the host is not even called.
    const fast = await rejection(reserve(lib, 'r-3'))
    assert.equal(fast.code, 'PAYMENT_UNAVAILABLE')
    assert.match(fast.message, /retry in/)
    assert.equal(calls.length, 2)
    assert.equal((await lib.events()).filter((e) => e.stream.startsWith('rental:')).length, 0, 'no payment, no rental')
    // The host recovers, but the circuit stays open until the cool-down has passed.
    down = false
    assert.equal((await rejection(reserve(lib, 'r-4'))).code, 'PAYMENT_UNAVAILABLE')
    clock.advance(60_000)
    assert.equal(lib.paymentCircuit(), 'half_open')
    const ok = await reserve(lib, 'r-5')
    assert.equal(ok.rentalId, 'r-5')
    assert.equal(ok.events[0].payload.payment_id, 'pay-r-5')
    assert.equal(lib.paymentCircuit(), 'closed')
    assert.deepEqual(calls.at(-1), ['charge', 'm-1', 30, 'r-5'])
  } finally {
    await lib.close()
  }
})

test('an async gateway: charges are awaited, a rejected promise is a failure, refunds follow a cancellation', async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
  const charged = new Map()
  const refunded = []
  let reject = false
  const payment = {
    async charge(memberId, amount, key) {
      await sleep(5)
      if (reject) throw new Error('timeout talking to the bank')
      charged.set(key, amount)
      return { paymentId: `async-${key}` }
    },
    async refund(key, memberId, amount) {
      await sleep(5)
      refunded.push([key, memberId, amount])
    },
  }
  const lib = await withGateway(payment)
  try {
    const r = await reserve(lib, 'r-1')
    assert.equal(r.events[0].type, 'RentalReserved')
    assert.equal(r.events[0].payload.payment_id, 'async-r-1')
    assert.equal(charged.get('r-1'), 30)
    await lib.settle()
    assert.equal((await lib.memberPage('m-1')).points, 100, 'the host took the payment, not the points account')
    await lib.cancelRental({ rentalId: 'r-1' }, Member('m-1'))
    await lib.settle()
    assert.deepEqual(refunded, [['r-1', 'm-1', 30]])
    const page = await lib.memberPage('m-1')
    assert.equal(page.rentals[0].status, 'canceled')
    assert.equal(page.rentals[0].paymentStatus, 'refunded')
    reject = true
    const e = await rejection(reserve(lib, 'r-2'))
    assert.equal(e.code, 'PAYMENT_UNAVAILABLE')
    assert.match(e.message, /timeout talking to the bank/)
  } finally {
    await lib.close()
  }
})

test('a gateway that declines (error code PAYMENT_DECLINED) is an answer, not an outage', async () => {
  const payment = {
    charge() {
      const e = new Error('card expired')
      e.code = 'PAYMENT_DECLINED'
      throw e
    },
    refund() {},
  }
  const lib = await withGateway(payment, { breaker: { failureThreshold: 1 } })
  try {
    for (const r of ['r-1', 'r-2', 'r-3']) {
      const e = await rejection(reserve(lib, r))
      assert.equal(e.code, 'PAYMENT_DECLINED')
      assert.match(e.message, /card expired/)
    }
    assert.equal(lib.paymentCircuit(), 'closed')
  } finally {
    await lib.close()
  }
})

test('odd host answers never crash: thrown strings, symbols, null, hostile objects', async () => {
  const throws = [
    'a string',
    Symbol('sym'),
    null,
    undefined,
    42,
    { toString() { throw new Error('no') } },
    Object.create(null),
  ]
  let i = 0
  const payment = {
    charge() {
      throw throws[i++ % throws.length]
    },
    refund() {},
  }
  const lib = await withGateway(payment, { breaker: { failureThreshold: 1000 } })
  try {
    for (let n = 0; n < throws.length; n++) {
      const e = await rejection(reserve(lib, `r-${n}`))
      assert.equal(e.code, 'PAYMENT_UNAVAILABLE')
    }
  } finally {
    await lib.close()
  }
})

/** Charge answers that are not a payment: each must be a failed charge, never a rental. */
const BAD_CHARGE_ANSWERS = {
  'a number': () => 42,
  'a numeric paymentId': () => ({ paymentId: 42 }),
  'an empty paymentId': () => ({ paymentId: '' }),
  'an object without paymentId': () => ({ id: 'pay-1' }),
  'an empty string': () => '',
  'null': () => null,
  'true': () => true,
  'an array': () => ['pay-1'],
  'an array with a paymentId': () => Object.assign([], { paymentId: 'pay-1' }),
  'a promise of a number': () => Promise.resolve(42),
  'an async null': async () => null,
  'a promise of a numeric paymentId': async () => ({ paymentId: 7 }),
  'a thrown string': () => {
    throw 'a thrown string'
  },
  'a thrown number': () => {
    throw 42
  },
  'a paymentId getter that throws': () => ({
    get paymentId() {
      throw new Error('getter')
    },
  }),
  'a promise rejected with a non-Error': () => Promise.reject('no'),
  'a rejected promise': () => Promise.reject(new Error('bank down')),
}

test('a charge that does not answer with a payment id is a failed charge: nothing stored, no points moved, an outage', async () => {
  for (const [what, charge] of Object.entries(BAD_CHARGE_ANSWERS)) {
    const lib = await withGateway({ charge, refund() {} }, { breaker: { failureThreshold: 1, coolDownMs: 60_000 } })
    try {
      await lib.settle()
      const head = await lib.head()
      const points = (await lib.memberPage('m-1')).points
      const e = await rejection(reserve(lib, 'r-1'))
      assert.equal(e.code, 'PAYMENT_UNAVAILABLE', what)
      await lib.settle()
      assert.equal(await lib.head(), head, `${what}: nothing was stored`)
      const page = await lib.memberPage('m-1')
      assert.equal(page.points, points, `${what}: the points did not move`)
      assert.deepEqual(page.rentals, [], what)
      assert.equal(lib.paymentCircuit(), 'open', `${what}: the breaker counted an outage`)
    } finally {
      await lib.close()
    }
  }
})

test('a charge answers with a non-empty string, { paymentId } or nothing, sync or async', async () => {
  const answers = [
    ['pay-1', 'pay-1'],
    [{ paymentId: 'pay-2' }, 'pay-2'],
    [undefined, 'host:r-3'],
    [Promise.resolve('pay-4'), 'pay-4'],
    [Promise.resolve({ paymentId: 'pay-5' }), 'pay-5'],
  ]
  let i = 0
  const lib = await withGateway({ charge: () => answers[i][0], refund() {} })
  try {
    for (; i < answers.length; i++) {
      const r = await reserve(lib, `r-${i + 1}`)
      assert.equal(r.events[0].payload.payment_id, answers[i][1])
    }
  } finally {
    await lib.close()
  }
})

/** Fails if `promise` has not settled within `ms`. */
function within(promise, ms, what) {
  let timer
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

test('close() ends a reserveBook waiting on a charge that never settles, with LIBRARY_CLOSED', async () => {
  let started
  const charging = new Promise((r) => (started = r))
  const payment = {
    charge() {
      started()
      return new Promise(() => {})
    },
    refund() {},
  }
  const lib = await withGateway(payment, { breaker: { callTimeoutMs: null } })
  const pending = rejection(reserve(lib, 'r-1'))
  await within(charging, 5000, 'the charge')
  await within(lib.close(), 5000, 'close()')
  const e = await within(pending, 5000, 'reserveBook')
  assert.equal(e.code, 'LIBRARY_CLOSED')
  assert.equal(e.retryable, false)
  assert.equal((await rejection(reserve(lib, 'r-2'))).code, 'LIBRARY_CLOSED')
})

test('close() does not wait for a notifier that never settles', async () => {
  let started
  const notified = new Promise((r) => (started = r))
  const notifier = () => {
    started()
    return new Promise(() => {})
  }
  const lib = await Library.inMemory({ notifier })
  await lib.registerBook({ bookId: 'b-1', title: 'Refactoring', copies: 1, fee: 30 }, librarian)
  await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, librarian)
  await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1' }, Member('m-1'))
  await within(notified, 5000, 'the notifier')
  await within(lib.close(), 5000, 'close()')
  assert.equal(lib.closed, true)
})

test('payment options are checked', async () => {
  for (const payment of [null, 1, {}, { charge() {} }, { charge: 1, refund() {} }]) {
    const e = await rejection(Library.inMemory({ payment }))
    assert.equal(e.code, 'INVALID_INPUT')
  }
})

test('the notifier hears of every status change; a sync and an async notifier', async () => {
  for (const async of [false, true]) {
    const notices = []
    const notifier = async
      ? async (n) => {
          await new Promise((r) => setTimeout(r, 1))
          notices.push(n)
        }
      : (n) => {
          notices.push(n)
        }
    const lib = await Library.inMemory({ background: false, notifier })
    try {
      await lib.registerBook({ bookId: 'b-1', title: 'Refactoring', copies: 1, fee: 30 }, librarian)
      await lib.joinMember({ memberId: 'm-1', name: 'Kim', contact: 'kim@example.org' }, librarian)
      await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1', deliveryAddress: '1 Main St' }, Member('m-1'))
      await lib.settle()
      const kinds = notices.map((n) => n.kind)
      assert.ok(kinds.includes('RentalConfirmed'), `notices: ${kinds}`)
      assert.ok(kinds.includes('DeliveryStarted'), `notices: ${kinds}`)
      for (const n of notices) {
        assert.equal(n.memberId, 'm-1')
        assert.equal(n.rentalId, 'r-1')
        assert.equal(typeof n.message, 'string')
        assert.equal(typeof n.eventId, 'string')
      }
    } finally {
      await lib.close()
    }
  }
})

test('a notifier that throws never blocks rentals, and is retried until it works', async () => {
  let failures = 0
  const delivered = []
  const notifier = (n) => {
    if (failures < 2) {
      failures++
      throw new Error('sms gateway down')
    }
    delivered.push(n.kind)
  }
  const lib = await Library.inMemory({ background: false, notifier, retryBackoffMs: 0 })
  try {
    await lib.registerBook({ bookId: 'b-1', title: 'Refactoring', copies: 1, fee: 30 }, librarian)
    await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, librarian)
    await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1' }, Member('m-1'))
    await lib.settle()
    assert.equal((await lib.memberPage('m-1')).rentals[0].status, 'confirmed')
    await eventually(async () => {
      await lib.settle()
      return delivered.includes('RentalConfirmed')
    })
    assert.equal(failures, 2)
    assert.deepEqual(await lib.deadLetters(), [])
  } finally {
    await lib.close()
  }
})

test('host ports run with the background runner too', async () => {
  const notices = []
  const charged = []
  const lib = await Library.inMemory({
    notifier: (n) => notices.push(n.kind),
    payment: { charge: (m, a, key) => void charged.push(key), refund: () => {} },
  })
  try {
    await lib.registerBook({ bookId: 'b-1', title: 'Refactoring', copies: 1, fee: 30 }, librarian)
    await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, librarian)
    await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1' }, Member('m-1'))
    await eventually(() => notices.includes('RentalConfirmed'))
    assert.deepEqual(charged, ['r-1'])
  } finally {
    await lib.close()
  }
})
