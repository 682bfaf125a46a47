// Fuzz: wrong types, hostile strings, huge strings, odd numbers, null and undefined to every
// method. Each call either works or fails with a LendkitError carrying a code; the process never
// crashes, and the library stays consistent afterwards.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ErrorCode, LendkitError, Librarian, Member } from '../index.js'
import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { librarian, stocked, tempDir } from './helpers.mjs'

const hostileGetter = {
  get bookId() {
    throw new Error('getter bomb')
  },
}
const proxy = new Proxy(
  {},
  {
    get() {
      throw new Error('proxy bomb')
    },
    ownKeys() {
      throw new Error('proxy bomb')
    },
  },
)

const VALUES = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  NaN,
  Infinity,
  -Infinity,
  2 ** 53,
  2 ** 64,
  Number.MAX_VALUE,
  -0,
  10n,
  '',
  ' ',
  ' b-1',
  'b-1\u0000',
  '\u0000',
  '\ud800',
  '💥'.repeat(100),
  'x'.repeat(201),
  'y'.repeat(5_000_000),
  "'; DROP TABLE events; --",
  '../../../etc/passwd',
  '__proto__',
  'constructor',
  '<script>alert(1)</script>',
  'line\nbreak',
  Symbol('s'),
  [],
  ['b-1'],
  {},
  { toString: () => 'b-1' },
  Object.create(null),
  () => 'b-1',
  new Date(0),
  hostileGetter,
  proxy,
]

const ACTORS = [librarian, Member('m-0'), undefined, null, 'librarian:lib-1', { role: 'librarian' }, { role: 'member', id: 5 }, { role: 'system', id: 'x' }, proxy]

// Every command's fields, camelCase, from the core's schema (docs/schema.json).
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
const SCHEMA = JSON.parse(readFileSync(new URL('../../../docs/schema.json', import.meta.url), 'utf8'))
const FIELDS = Object.fromEntries(
  SCHEMA.commands.map((c) => [camel(c.name), [...c.fields.map((f) => camel(f.name)), 'commandId']]),
)
const VALID = {
  registerBook: { bookId: 'b-9', title: 'T', copies: 1, fee: 1 },
  addCopies: { bookId: 'b-1', copies: 1 },
  joinMember: { memberId: 'm-9', name: 'N' },
  topUp: { memberId: 'm-0', points: 1 },
  reserveBook: { bookId: 'b-1', memberId: 'm-0', wait: true },
  placeHold: { bookId: 'b-1', memberId: 'm-0' },
  cancelHold: { holdId: 'r-0' },
  reorderQueue: { bookId: 'b-1', holdId: 'r-0', position: 1 },
  collectHold: { holdId: 'r-0' },
  withdrawCopy: { bookId: 'b-1', copy: 1 },
  startLoan: { rentalId: 'r-0' },
  returnBook: { rentalId: 'r-0' },
  cancelRental: { rentalId: 'r-0' },
  renewLoan: { rentalId: 'r-0' },
  markDelivered: { rentalId: 'r-0' },
  payFees: { memberId: 'm-0', amount: 1 },
  waiveFee: { memberId: 'm-0', feeId: 'r-0:overdue', reason: 'kind' },
  blockMember: { memberId: 'm-0', reason: 'R' },
  unblockMember: { memberId: 'm-0' },
  changeCirculationRules: {
    rules:
      '[policies.loan.l]\nperiod = "7 days"\n[policies.fine.f]\npoints = 0\nper = "day"\n[policies.limits.n]\n' +
      '[policies.lost.x]\naged_to_lost_after_days = 60\nreplacement_cost = 1\n' +
      '[[rules]]\nloan = "l"\nfine = "f"\nlimits = "n"\nlost = "x"\n',
  },
}

test('the fuzzer has a valid input for every command of the schema', () => {
  assert.deepEqual(Object.keys(VALID).sort(), Object.keys(FIELDS).sort())
})

/** Calls `fn`; a failure must be a LendkitError with a known code. Returns 'ok' or the code. */
async function attempt(what, fn) {
  try {
    await fn()
    return 'ok'
  } catch (e) {
    assert.ok(e instanceof LendkitError, `${what}: threw ${e && e.stack}`)
    assert.ok(Object.hasOwn(ErrorCode, e.code), `${what}: unknown code ${e.code}`)
    assert.equal(typeof e.message, 'string')
    return e.code
  }
}

function label(v) {
  try {
    if (typeof v === 'string') return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…(${v.length})` : v)
    if (typeof v === 'bigint') return `${v}n`
    return String(v)
  } catch {
    return typeof v
  }
}

test('every command with every hostile field value and actor', async () => {
  const lib = await stocked({ members: 1 })
  try {
    await lib.reserveBook({ bookId: 'b-1', memberId: 'm-0', rentalId: 'r-0' }, Member('m-0'))
    const codes = new Map()
    for (const [method, fields] of Object.entries(FIELDS)) {
      for (const field of fields) {
        for (const v of VALUES) {
          const input = { ...VALID[method], [field]: v }
          const code = await attempt(`${method}.${field}=${label(v)}`, () => lib[method](input, librarian))
          codes.set(code, (codes.get(code) ?? 0) + 1)
        }
      }
      for (const input of [undefined, null, 5, 'x', [], proxy, hostileGetter]) {
        assert.equal(await attempt(`${method}(${label(input)})`, () => lib[method](input, librarian)), 'INVALID_INPUT')
      }
      for (const actor of ACTORS) {
        await attempt(`${method} as ${label(actor)}`, () => lib[method](VALID[method], actor))
      }
    }
    assert.ok(codes.get('INVALID_INPUT') > 100)
  } finally {
    await lib.close()
  }
})

test('every query and control method with hostile arguments', async () => {
  const lib = await stocked()
  const scratch = tempDir()
  try {
    const calls = {
      memberPage: (v) => lib.memberPage(v),
      events: (v) => lib.events(v, v),
      replayDeadLetter: (v) => lib.replayDeadLetter(v),
      redeliver: (v) => lib.redeliver(v, v),
      redeliverPosition: (v) => lib.redeliver('catalog', v),
      pause: (v) => lib.pause(v),
      resume: (v) => lib.resume(v),
      setPaymentOutage: (v) => lib.setPaymentOutage(v),
      subscribe: (v) => lib.subscribe(v),
      clock: (v) => import('../index.js').then(({ ManualClock }) => new ManualClock(v).advanceDays(v)),
      actor: (v) => Librarian(v),
      optionsObject: (v) => import('../index.js').then(({ Library }) => Library.inMemory(v).then((l) => l.close())),
      // Hostile paths stay inside a temp dir: separators and dots are replaced.
      openPath: (v) =>
        import('../index.js').then(({ Library }) =>
          Library.open(typeof v === 'string' ? join(scratch.dir, `db-${v.slice(0, 100).replace(/[/.\\]/g, '_')}`) : v, {
            background: false,
          }).then((l) => l.close()),
        ),
      options: (v) => import('../index.js').then(({ Library }) => Library.inMemory({ welcomePoints: v, background: false }).then((l) => l.close())),
    }
    for (const [name, call] of Object.entries(calls)) {
      for (const v of VALUES) await attempt(`${name}(${label(v)})`, () => call(v))
    }
    for (const c of ['catalog', 'rentals', 'payments', 'deliveries', 'notices', 'book_list', 'member_page']) lib.resume(c)
  } finally {
    await lib.close()
    scratch.cleanup()
  }
})

test('after the fuzzing the library is still consistent and working', async () => {
  const lib = await stocked({ copies: 2, members: 2 })
  try {
    for (const v of VALUES) {
      await attempt('reserve', () => lib.reserveBook({ bookId: v, memberId: 'm-0' }, Member('m-0')))
      await attempt('cancel', () => lib.cancelRental({ rentalId: v }, Member('m-0')))
      await attempt('topUp', () => lib.topUp({ memberId: 'm-0', points: v }, librarian))
    }
    const r = await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1' }, Member('m-1'))
    await lib.settle()
    const events = await lib.events()
    assert.deepEqual(events.map((e) => e.position), events.map((_, i) => i + 1), 'the log has no gaps')
    const [book] = await lib.bookList()
    assert.equal(book.copies, 2)
    const pages = [await lib.memberPage('m-0'), await lib.memberPage('m-1')]
    const reserved = pages.flatMap((p) => p.rentals).filter((x) => x.status === 'confirmed').length
    assert.equal(book.available + book.reserved + book.onLoan, book.copies)
    assert.equal(book.reserved, reserved)
    assert.equal(pages[1].rentals.at(-1).rentalId, r.rentalId)
    assert.equal(pages[1].rentals.at(-1).status, 'confirmed')
    assert.deepEqual(await lib.deadLetters(), [])
  } finally {
    await lib.close()
  }
})
