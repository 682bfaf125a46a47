// The scenario runner for Node: one scenario file, driven through the public `lendkit` API
// exactly as tests/scenarios/README.md describes (the Rust runner, tests/acceptance.rs, is the
// reference). No rule lives here: it loads a file, drives the library and compares.

import { readFileSync } from 'node:fs'
import { Library, ManualClock } from '../index.js'

/** 2026-01-01T00:00:00.000Z, where every scenario's clock starts. */
const START = 1767225600000
const SEEDS = ['library', 'water-purifier', 'book-delivery', 'ebook', 'rental-payment', 'rules']
export const PENDING = '_pending/'
const SCENARIO_FIELDS = ['description', 'seed', 'options', 'given', 'steps']
const OPTION_FIELDS = ['welcome_points', 'loan_days', 'max_renewals', 'max_attempts', 'breaker', 'workers']
const BREAKER_FIELDS = ['failure_threshold', 'cool_down_ms']
const STEP_FIELDS = ['when', 'then']
const EXPECT_FIELDS = [
  'error',
  'events',
  'new_events',
  'new_events_include',
  'book_list',
  'member_page',
  'notices',
  'payment_circuit',
  'dead_letters',
]
const BOOK_FIELDS = 'book_id title copies available reserved on_loan status last_activity fee'.split(' ')
const PAGE_FIELDS = 'name points rentals'.split(' ')
const RENTAL_FIELDS = 'rental_id book_id status payment_status delivery_status fee due_date late_days'.split(' ')
const NOTICE_FIELDS = 'member_id rental_id kind message'.split(' ')
const MATCHER_FIELDS = 'type stream payload'.split(' ')
/** Each command's fields, as in `lendkit_core::Command`'s JSON. */
const COMMANDS = {
  register_book: ['book_id', 'title', 'author', 'copies', 'fee'],
  add_copies: ['book_id', 'copies'],
  join_member: ['member_id', 'name', 'contact'],
  top_up: ['member_id', 'points'],
  reserve_book: ['book_id', 'member_id', 'rental_id', 'delivery_address'],
  start_loan: ['rental_id'],
  return_book: ['rental_id'],
  cancel_rental: ['rental_id', 'reason'],
  renew_loan: ['rental_id'],
  mark_delivered: ['rental_id'],
}

class Malformed extends Error {}

const camel = (snake) => snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
const show = (v) => JSON.stringify(v)

function known(what, object, allowed) {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    throw new Malformed(`${what} must be an object, not ${show(object)}`)
  }
  const unknown = Object.keys(object).find((k) => !allowed.includes(k))
  if (unknown !== undefined) throw new Malformed(`${what}: no field ${show(unknown)} (fields: ${allowed.join(' ')})`)
}

/** JSON equality. */
function same(a, b) {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]))
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]))
  }
  return false
}

/** True when every key of `expected` is in `actual` with an equal value, recursively. */
function subset(expected, actual) {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && expected.length === actual.length && expected.every((v, i) => subset(v, actual[i]))
  }
  if (expected && typeof expected === 'object') {
    return (
      actual !== null &&
      typeof actual === 'object' &&
      !Array.isArray(actual) &&
      Object.entries(expected).every(([k, v]) => Object.hasOwn(actual, k) && subset(v, actual[k]))
    )
  }
  return same(expected, actual)
}

function actorOf(text) {
  if (typeof text !== 'string') throw new Malformed('as takes a string')
  const i = text.indexOf(':')
  const role = text.slice(0, i)
  if (i < 0 || (role !== 'librarian' && role !== 'member')) {
    throw new Malformed(`actor ${show(text)} is not of the form librarian:ID or member:ID`)
  }
  return { role, id: text.slice(i + 1) }
}

async function build(o = {}) {
  known('options', o, OPTION_FIELDS)
  const breaker = o.breaker ?? {}
  known('options.breaker', breaker, BREAKER_FIELDS)
  const clock = new ManualClock(START)
  const notices = []
  const options = {
    clock,
    notifier: (notice) => {
      notices.push(notice)
    },
    faultInjection: true,
    background: false,
    breaker: {
      failureThreshold: breaker.failure_threshold ?? 3,
      coolDownMs: breaker.cool_down_ms ?? 60000,
      callTimeoutMs: null,
    },
  }
  if (o.welcome_points !== undefined) options.welcomePoints = o.welcome_points
  if (o.loan_days !== undefined) options.loanDays = o.loan_days
  if (o.max_renewals !== undefined) options.maxRenewals = o.max_renewals
  if (o.max_attempts !== undefined) options.maxAttempts = o.max_attempts
  if (o.workers !== undefined) options.workers = o.workers
  const lib = await Library.inMemory(options)
  return { lib, clock, notices }
}

const string = (action, k) => {
  if (typeof action[k] !== 'string') throw new Malformed(`${k} takes a string`)
  return action[k]
}
const number = (action, k) => {
  if (!Number.isInteger(action[k]) || action[k] < 0) throw new Malformed(`${k} takes a whole number`)
  return action[k]
}

/** Runs one action: `{ outcome }` or `{ error }`; throws `Malformed` when the action itself is. */
async function act(w, action) {
  const attempt = async (fn) => {
    try {
      return { outcome: await fn() }
    } catch (error) {
      if (typeof error?.code !== 'string') throw error
      return { error }
    }
  }
  if (Object.hasOwn(action, 'command')) {
    const { command, as, command_id: commandId, ...fields } = action
    const allowed = COMMANDS[command]
    if (!allowed) throw new Malformed(`not a command: ${show(command)}`)
    known(`command ${command}`, fields, allowed)
    const input = Object.fromEntries(Object.entries(fields).map(([k, v]) => [camel(k), v]))
    if (commandId !== undefined) input.commandId = string(action, 'command_id')
    const actor = actorOf(as)
    return attempt(() => w.lib[camel(command)](input, actor))
  }
  const keys = Object.keys(action).sort().join(' ')
  switch (keys) {
    case 'settle':
      if (action.settle !== true) break
      return attempt(() => w.lib.settle())
    case 'pause':
      return attempt(async () => w.lib.pause(string(action, 'pause')))
    case 'resume':
      return attempt(async () => w.lib.resume(string(action, 'resume')))
    case 'payment': {
      const p = string(action, 'payment')
      if (p !== 'up' && p !== 'down') throw new Malformed(`payment is "up" or "down", not ${show(p)}`)
      w.lib.setPaymentOutage(p === 'down')
      return { outcome: undefined }
    }
    case 'advance_days':
      w.clock.advanceDays(number(action, 'advance_days'))
      return { outcome: undefined }
    case 'advance_ms':
      w.clock.advance(number(action, 'advance_ms'))
      return { outcome: undefined }
    case 'event redeliver': {
      const type = string(action, 'event')
      const found = (await w.lib.events()).find((e) => e.type === type)
      if (!found) throw new Malformed(`no stored ${type} to redeliver`)
      return attempt(() => w.lib.redeliver(string(action, 'redeliver'), found.position))
    }
    case 'position redeliver':
      return attempt(() => w.lib.redeliver(string(action, 'redeliver'), number(action, 'position')))
  }
  throw new Malformed(`not an action (see tests/scenarios/README.md): ${show(action)}`)
}

const shown = (events) => show(events.map((e) => ({ type: e.type, stream: e.stream, payload: e.payload })))

function matchers(ms) {
  if (!Array.isArray(ms)) throw new Malformed('events are matched by a list')
  for (const m of ms) {
    if (typeof m === 'string') continue
    known('event matcher', m, MATCHER_FIELDS)
  }
  return ms
}

const matches = (m, e) => (typeof m === 'string' ? e.type === m : Object.entries(m).every(([k, v]) => subset(v, e[k])))
const allMatch = (ms, events) => matchers(ms).length === events.length && ms.every((m, i) => matches(m, events[i]))
function inOrder(ms, events) {
  let i = 0
  return matchers(ms).every((m) => {
    while (i < events.length) if (matches(m, events[i++])) return true
    return false
  })
}

function ensure(ok, message) {
  if (!ok) throw new Error(message())
}

/** Compares the fields given in `expected` with `actual` (in the stored snake_case form). */
function fields(what, expected, actual, allowed) {
  known(what, expected, allowed)
  for (const [k, v] of Object.entries(expected)) {
    if (k !== 'rentals') {
      ensure(same(actual[k], v), () => `${what}: ${k} expected ${show(v)}, found ${show(actual[k])} in ${show(actual)}`)
      continue
    }
    if (!Array.isArray(v)) throw new Malformed(`${what}: rentals must be a list`)
    ensure(v.length === actual.rentals.length, () => `${what}: expected ${v.length} rentals, found ${show(actual.rentals)}`)
    v.forEach((want, i) => fields(`${what} rentals[${i}]`, want, actual.rentals[i], RENTAL_FIELDS))
  }
}

const bookRow = (r) => ({
  book_id: r.bookId,
  title: r.title,
  author: r.author ?? null,
  fee: r.fee,
  copies: r.copies,
  available: r.available,
  reserved: r.reserved,
  on_loan: r.onLoan,
  status: r.status,
  last_activity: r.lastActivity,
})

const page = (p) => ({
  member_id: p.memberId,
  name: p.name,
  points: p.points,
  rentals: p.rentals.map((r) => ({
    rental_id: r.rentalId,
    book_id: r.bookId,
    status: r.status,
    payment_status: r.paymentStatus,
    delivery_status: r.deliveryStatus,
    fee: r.fee,
    due_date: r.dueDate ?? null,
    late_days: r.lateDays ?? null,
  })),
})

const notice = (n) => ({ member_id: n.memberId, rental_id: n.rentalId, kind: n.kind, message: n.message })

async function step(w, action, then = {}) {
  known('then', then, EXPECT_FIELDS)
  const headBefore = await w.lib.head()
  const noticesBefore = w.notices.length
  const result = await act(w, action)
  const grew = (await w.lib.head()) !== headBefore
  const fresh = await w.lib.events(headBefore + 1)
  if (result.error && then.error === undefined) {
    throw new Error(`failed with ${result.error.code} (${result.error.message}), expected success`)
  }
  if (!result.error && then.error !== undefined) throw new Error(`succeeded, expected error ${then.error}`)
  if (result.error) {
    ensure(result.error.code === then.error, () => `failed with ${result.error.code} (${result.error.message}), expected ${then.error}`)
    ensure(!grew, () => `failed, but the log grew: ${shown(fresh)}`)
  }
  if (then.events !== undefined) {
    if (!result.outcome) throw new Malformed('"events" needs a command that succeeds')
    const got = result.outcome.events
    ensure(allMatch(then.events, got), () => `events: expected ${show(then.events)}, returned ${shown(got)}`)
  }
  if (then.new_events !== undefined) {
    ensure(allMatch(then.new_events, fresh), () => `new_events: expected ${show(then.new_events)}, found ${shown(fresh)}`)
  }
  if (then.new_events_include !== undefined) {
    ensure(inOrder(then.new_events_include, fresh), () => `new_events_include: no ${show(then.new_events_include)} in ${shown(fresh)}`)
  }
  if (then.book_list !== undefined) {
    const list = (await w.lib.bookList()).map(bookRow)
    for (const want of then.book_list) {
      if (!Object.hasOwn(want, 'book_id')) throw new Malformed('a book_list row needs book_id')
      const row = list.find((r) => r.book_id === want.book_id)
      ensure(row !== undefined, () => `no book ${show(want.book_id)} in ${show(list)}`)
      fields(`book_list ${want.book_id}`, want, row, BOOK_FIELDS)
    }
  }
  for (const [member, want] of Object.entries(then.member_page ?? {})) {
    let p
    try {
      p = page(await w.lib.memberPage(member))
    } catch (e) {
      throw new Error(`${member}: ${e.message}`)
    }
    fields(`member_page ${member}`, want, p, PAGE_FIELDS)
  }
  if (then.notices !== undefined) {
    for (const n of then.notices) known('notice', n, NOTICE_FIELDS)
    const sent = w.notices.slice(noticesBefore).map(notice)
    const ok =
      then.notices.length === sent.length &&
      then.notices.every((n, i) => {
        try {
          fields('notice', n, sent[i], NOTICE_FIELDS)
          return true
        } catch {
          return false
        }
      })
    ensure(ok, () => `notices: expected ${show(then.notices)}, sent ${show(sent.map((n) => [n.rental_id, n.kind]))}`)
  }
  if (then.payment_circuit !== undefined) {
    const state = w.lib.paymentCircuit()
    ensure(state === then.payment_circuit, () => `payment_circuit: expected ${then.payment_circuit}, found ${state}`)
  }
  if (then.dead_letters !== undefined) {
    const letters = await w.lib.deadLetters()
    ensure(letters.length === then.dead_letters, () => `dead_letters: expected ${then.dead_letters}, found ${show(letters.map((l) => `${l.id}: ${l.error}`))}`)
  }
}

/** Runs the scenario file at `path`, named `name` (its path relative to tests/scenarios). */
export async function runScenario(name, path) {
  const s = JSON.parse(readFileSync(path, 'utf8'))
  known('scenario', s, SCENARIO_FIELDS)
  if (typeof s.description !== 'string') throw new Malformed('a scenario needs a description')
  const folder = name.startsWith(PENDING) ? name.slice(PENDING.length).split('/')[0] : name.split('/')[0]
  if (!SEEDS.includes(s.seed) || folder !== s.seed) {
    throw new Malformed(`seed ${show(s.seed)} must be one of ${SEEDS.join(' ')} and name the folder`)
  }
  if (!Array.isArray(s.steps)) throw new Malformed('a scenario needs steps')
  const w = await build(s.options)
  try {
    for (const [i, action] of (s.given ?? []).entries()) {
      let r
      try {
        r = await act(w, action)
      } catch (e) {
        throw new Error(`given[${i}] ${show(action)}: ${e.message}`)
      }
      if (r.error) throw new Error(`given[${i}] ${show(action)}: ${r.error.code}: ${r.error.message}`)
    }
    for (const [i, st] of s.steps.entries()) {
      known(`steps[${i}]`, st, STEP_FIELDS)
      try {
        await step(w, st.when, st.then)
      } catch (e) {
        throw new Error(`steps[${i}] (when ${show(st.when)}): ${e.message}`)
      }
    }
  } finally {
    await w.lib.close()
  }
}
