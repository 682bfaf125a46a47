// The scenario runner for Node: one scenario file, checked against
// tests/scenarios/scenario.schema.json and driven through the public `lendkit` API exactly as
// tests/scenarios/README.md describes (the Rust runner, tests/acceptance.rs, is the reference).
// No rule lives here: it loads a file, drives the library and compares.

import { readFileSync } from 'node:fs'
import { Library, ManualClock } from '../index.js'

/** 2026-01-01T00:00:00.000Z, where every scenario's clock starts. */
const START = 1767225600000
export const PENDING = '_pending/'
const TESTS = new URL('../../../tests/', import.meta.url)
/** The format's one description, in tests/scenarios/; not a scenario itself. */
export const SCHEMA_FILE = 'scenario.schema.json'
const SCHEMA = JSON.parse(readFileSync(new URL(`scenarios/${SCHEMA_FILE}`, TESTS), 'utf8'))
/** The cases of tests/scenario-selftest.json, which every runner must judge alike. */
export const SELF_TEST = JSON.parse(readFileSync(new URL('scenario-selftest.json', TESTS), 'utf8'))
const COMMANDS = new Set(Object.keys(SCHEMA.$defs.commands.$defs))

class Malformed extends Error {}

const camel = (snake) => snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
const show = (v) => JSON.stringify(v)

// The scenario schema, walked by the keywords its $comment lists (as the Rust and Python runners do).

function resolve(node) {
  while (node.$ref !== undefined) {
    node = node.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce((n, part) => n[part], SCHEMA)
  }
  return node
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
const TYPES = {
  object: isObject,
  array: Array.isArray,
  string: (v) => typeof v === 'string',
  boolean: (v) => typeof v === 'boolean',
  null: (v) => v === null,
  number: (v) => typeof v === 'number',
  integer: Number.isInteger,
}
const isType = (t, v) => TYPES[t]?.(v) ?? false

/** Throws `Malformed` unless `value`, found at `at`, fits the schema `node`. */
export function check(node, value, at) {
  node = resolve(node)
  if (node.oneOf !== undefined) oneOf(node, value, at)
  if (node.type !== undefined) {
    const types = [node.type].flat()
    if (!types.some((t) => isType(t, value))) throw new Malformed(`${at}: must be ${types.join(' or ')}, not ${show(value)}`)
  }
  if (node.enum !== undefined && !node.enum.some((o) => same(o, value))) {
    throw new Malformed(`${at}: ${show(value)} is not one of ${show(node.enum)}`)
  }
  if (Object.hasOwn(node, 'const') && !same(node.const, value)) {
    throw new Malformed(`${at}: must be ${show(node.const)}, not ${show(value)}`)
  }
  if (isObject(value)) {
    const properties = node.properties ?? {}
    const extra = node.additionalProperties
    // An unknown key first: a misspelt one is also a missing one.
    const unknown = Object.keys(value).find((k) => !Object.hasOwn(properties, k))
    if (extra === false && unknown !== undefined) {
      throw new Malformed(`${at}: no field ${show(unknown)} (fields: ${Object.keys(properties).join(' ')})`)
    }
    for (const k of node.required ?? []) {
      if (!Object.hasOwn(value, k)) throw new Malformed(`${at}: needs ${show(k)}`)
    }
    for (const [k, v] of Object.entries(value)) {
      if (Object.hasOwn(properties, k)) check(properties[k], v, `${at}.${k}`)
      else if (isObject(extra)) check(extra, v, `${at}.${k}`)
    }
  }
  if (Array.isArray(value) && node.items !== undefined) value.forEach((v, i) => check(node.items, v, `${at}[${i}]`))
}

/** Exactly one branch must hold; else the error of the one branch the value is evidently meant as, or that it is none of the forms. */
function oneOf(node, value, at) {
  const errors = node.oneOf.map((branch) => {
    try {
      check(branch, value, at)
      return null
    } catch (e) {
      if (!(e instanceof Malformed)) throw e
      return e
    }
  })
  const held = errors.filter((e) => e === null).length
  const title = node.title ?? 'one of its forms'
  if (held === 1) return
  if (held > 1) throw new Malformed(`${at}: ${show(value)} is ${title} in more than one way`)
  const meant = errors.filter((_, i) => meantAs(node.oneOf[i], value))
  if (meant.length === 1) throw meant[0]
  throw new Malformed(`${at}: ${show(value)} is not ${title} (see tests/scenarios/scenario.schema.json)`)
}

/** Of the branch's type, every property it pins with const present and equal, and one of its required keys present (or it has none). */
function meantAs(branch, value) {
  branch = resolve(branch)
  if (typeof branch.type === 'string' && !isType(branch.type, value)) return false
  if (!isObject(value)) return true
  for (const [k, p] of Object.entries(branch.properties ?? {})) {
    const pinned = resolve(p)
    if (Object.hasOwn(pinned, 'const') && !(Object.hasOwn(value, k) && same(pinned.const, value[k]))) return false
  }
  const required = branch.required ?? []
  return required.length === 0 || required.some((k) => Object.hasOwn(value, k))
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
  const breaker = o.breaker ?? {}
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
    if (!COMMANDS.has(command)) throw new Malformed(`not a command: ${show(command)}`)
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
    case 'advance_to': {
      const at = Date.parse(string(action, 'advance_to'))
      if (Number.isNaN(at)) throw new Malformed(`advance_to takes an RFC 3339 instant, not ${show(action.advance_to)}`)
      if (at < w.clock.now()) throw new Malformed('advance_to cannot move the clock back')
      w.clock.set(at)
      return attempt(async () => w.lib.advanceTo(at))
    }
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

const matches = (m, e) => (typeof m === 'string' ? e.type === m : Object.entries(m).every(([k, v]) => subset(v, e[k])))

/**
 * Pairs each matcher with an item it matches, no item twice, so that within each stream the items
 * come in the order of their matchers; with `exact`, every item must be paired. A matcher that
 * names no stream may pair with an item of any stream; the order is checked in the stream of the
 * item it pairs with. True when some pairing does all that. For the global order, `stream` puts
 * every item in one stream.
 */
export function fit(ms, items, stream, match, exact) {
  if (exact && ms.length !== items.length) return false
  const byStream = new Map() // each stream's items in their order
  for (const item of items) {
    const s = stream(item)
    if (!byStream.has(s)) byStream.set(s, [])
    byStream.get(s).push(item)
  }
  const lanes = [...byStream.values()]
  const failed = new Set()
  const search = (i, cursors) => {
    if (i === ms.length) return !exact || cursors.every((c, l) => c === lanes[l].length)
    const key = `${i}:${cursors.join(',')}`
    if (failed.has(key)) return false
    for (const [l, lane] of lanes.entries()) {
      // The earliest fitting item of the stream (exact: only the next one) leaves the most room.
      const stop = exact ? Math.min(cursors[l] + 1, lane.length) : lane.length
      let j = cursors[l]
      while (j < stop && !match(ms[i], lane[j])) j++
      if (j < stop && search(i + 1, cursors.with(l, j + 1))) return true
    }
    failed.add(key)
    return false
  }
  return search(0, lanes.map(() => 0))
}

const oneStream = () => ''

function ensure(ok, message) {
  if (!ok) throw new Error(message())
}

/** Compares the fields given in `expected` with `actual` (in the stored snake_case form). */
function fields(what, expected, actual) {
  for (const [k, v] of Object.entries(expected)) {
    if (k !== 'rentals') {
      ensure(same(actual[k], v), () => `${what}: ${k} expected ${show(v)}, found ${show(actual[k])} in ${show(actual)}`)
      continue
    }
    if (!Array.isArray(v)) throw new Malformed(`${what}: rentals must be a list`)
    ensure(v.length === actual.rentals.length, () => `${what}: expected ${v.length} rentals, found ${show(actual.rentals)}`)
    v.forEach((want, i) => fields(`${what} rentals[${i}]`, want, actual.rentals[i]))
  }
}

/** A row in the scenario files' snake_case, with every field the schema's `$defs/<def>` lists
 * (an absent optional field is null): one rule for every row, read from the schema. */
const camelOf = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
const snakeRow = (def, r) =>
  Object.fromEntries(Object.keys(SCHEMA.$defs[def].properties).map((k) => [k, r[camelOf(k)] ?? null]))

const bookRow = (r) => snakeRow('book_row', r)

const page = (p) => ({ ...snakeRow('page', p), member_id: p.memberId, rentals: p.rentals.map((r) => snakeRow('rental_row', r)) })

const notice = (n) => ({ member_id: n.memberId, rental_id: n.rentalId, kind: n.kind, message: n.message })

async function step(w, action, then = {}) {
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
  // What a command returned is its own output: always in its exact order.
  if (then.events !== undefined) {
    if (!result.outcome) throw new Malformed('"events" needs a command that succeeds')
    const got = result.outcome.events
    ensure(fit(then.events, got, oneStream, matches, true), () => `events: expected ${show(then.events)}, returned ${shown(got)}`)
  }
  const byLog = (then.order ?? 'stream') === 'global'
  const order = byLog ? "in the log's order" : "in each stream's order"
  const lane = byLog ? oneStream : (e) => e.stream
  if (then.new_events !== undefined) {
    ensure(
      fit(then.new_events, fresh, lane, matches, true),
      () => `new_events: expected ${show(then.new_events)} (${order}), found ${shown(fresh)}`,
    )
  }
  if (then.new_events_include !== undefined) {
    ensure(
      fit(then.new_events_include, fresh, lane, matches, false),
      () => `new_events_include: no ${show(then.new_events_include)} (${order}) in ${shown(fresh)}`,
    )
  }
  if (then.book_list !== undefined) {
    const list = (await w.lib.bookList()).map(bookRow)
    for (const want of then.book_list) {
      const row = list.find((r) => r.book_id === want.book_id)
      ensure(row !== undefined, () => `no book ${show(want.book_id)} in ${show(list)}`)
      fields(`book_list ${want.book_id}`, want, row)
    }
  }
  for (const [member, want] of Object.entries(then.member_page ?? {})) {
    let p
    try {
      p = page(await w.lib.memberPage(member))
    } catch (e) {
      throw new Error(`${member}: ${e.message}`)
    }
    fields(`member_page ${member}`, want, p)
  }
  if (then.notices !== undefined) {
    // A notice counts in the stream of the event it tells of.
    const streams = new Map((await w.lib.events()).map((e) => [e.eventId, e.stream]))
    const sent = w.notices.slice(noticesBefore).map((n) => {
      ensure(streams.has(n.eventId), () => `notice ${show(notice(n))} tells of no stored event`)
      return { notice: notice(n), stream: streams.get(n.eventId) }
    })
    const fits = (want, got) => Object.entries(want).every(([k, v]) => same(v, got.notice[k]))
    ensure(
      fit(then.notices, sent, byLog ? oneStream : (s) => s.stream, fits, true),
      () =>
        `notices: expected ${show(then.notices)} (${order}), sent ${show(sent.map((s) => [s.notice.rental_id, s.notice.kind, s.stream]))}`,
    )
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

/** Checks a scenario against tests/scenarios/scenario.schema.json; throws when it does not fit. */
export const checkScenario = (s) => check(SCHEMA, s, 'scenario')

/** Runs the scenario file at `path`, named `name` (its path relative to tests/scenarios). */
export async function runScenario(name, path) {
  return runScenarioObject(name, JSON.parse(readFileSync(path, 'utf8')))
}

/** Runs the scenario `s`, named `name` (its path relative to tests/scenarios). */
export async function runScenarioObject(name, s) {
  checkScenario(s)
  const folder = name.startsWith(PENDING) ? name.slice(PENDING.length).split('/')[0] : name.split('/')[0]
  if (folder !== s.seed) throw new Malformed(`seed ${show(s.seed)} must name the folder`)
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
