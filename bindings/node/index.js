'use strict'
// The public face of the `lendkit` package: a thin wrapper over the napi-generated loader
// (`native.js`). It holds no rule of the library. It only
//   - turns native failures into `LendkitError`s whose `code` is the catalogue's stable code
//     (napi's async functions can reject only with their own status, so the native side sends
//     `[CODE] message` and this file decodes it, for sync and async calls alike);
//   - accepts actors as `Librarian(id)`, `Member(id)` or `{ role, id }`;
//   - sends every command through the one native `execute` (or `executeBatch`), its camelCase
//     keys made snake_case; the per-command methods (`reserveBook`, …) are generated from
//     docs/schema.json into `commands.js`, and the core's messages name fields as JS wrote them;
//   - normalises the host's ports (sync or async functions, thrown errors, rejected promises)
//     into the one reply shape the native side awaits, so a failing host is an answer, never a
//     crash — and a charge answer that is not a documented shape is a failure, never a payment;
//   - flattens the options object, and makes every storage call return a Promise.

const native = require('./native.js')
const { COMMANDS, LibraryCommands } = require('./commands.js')

/** Every stable error code, as `ErrorCode.INSUFFICIENT_POINTS === 'INSUFFICIENT_POINTS'`. */
const ErrorCode = Object.freeze(Object.fromEntries(native.errorCodes().map((c) => [c, c])))

/** Every failure lendkit reports: `err.code` is a stable `ErrorCode`, `err.message` says what happened. */
class LendkitError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.name = 'LendkitError'
    this.code = code
  }

  /** True when the same call may succeed if simply tried again later. */
  get retryable() {
    return RETRYABLE.has(this.code)
  }
}

const RETRYABLE = new Set(native.retryableCodes())

const CODED = /^\[([A-Z_]+)\] ([\s\S]*)$/

function describe(e) {
  try {
    if (e instanceof Error) return String(e.message)
    return String(e)
  } catch {
    return 'an unprintable value was thrown'
  }
}

function invalid(message) {
  return new LendkitError(ErrorCode.INVALID_INPUT, `invalid input: ${message}`)
}

/** Any failure of a native call as a `LendkitError`. */
function translate(e) {
  if (e instanceof LendkitError) return e
  const message = describe(e)
  const coded = CODED.exec(message)
  if (coded && Object.hasOwn(ErrorCode, coded[1])) {
    return new LendkitError(coded[1], coded[2], { cause: e })
  }
  // Every failure of the core arrives coded. What does not is napi refusing an argument (a
  // wrong type, a throwing getter): the caller's input.
  return new LendkitError(ErrorCode.INVALID_INPUT, `invalid input: ${message}`, { cause: e })
}

function sync(fn) {
  try {
    return fn()
  } catch (e) {
    throw translate(e)
  }
}

async function later(fn) {
  try {
    return await fn()
  } catch (e) {
    throw translate(e)
  }
}

// ---- actors ------------------------------------------------------------------------------------

function actor(role, id) {
  if (typeof id !== 'string') throw invalid(`a ${role} id must be a string, not ${typeof id}`)
  return Object.freeze({ role, id })
}

/** A librarian: registers books, adds copies, registers members, tops up points, marks deliveries. */
function Librarian(id) {
  return actor('librarian', id)
}

/** A member: reserves for themselves and acts on their own rentals only. */
function Member(id) {
  return actor('member', id)
}

/** `librarian:ID` / `member:ID`, the native form of an actor. */
function actorText(a) {
  if (a === null || typeof a !== 'object') {
    throw invalid('actor must be Librarian(id), Member(id) or { role, id }')
  }
  const { role, id } = a
  if (role !== 'librarian' && role !== 'member') {
    throw invalid(`actor role must be 'librarian' or 'member', not ${describe(role)}`)
  }
  if (typeof id !== 'string') throw invalid(`actor id must be a string, not ${typeof id}`)
  return `${role}:${id}`
}

/** The native form of a query's optional actor (`undefined` when none is given). */
function readerText(a) {
  return a === undefined || a === null ? undefined : actorText(a)
}

// ---- commands ----------------------------------------------------------------------------------

/** `bookId` → `book_id`. */
const SNAKE = new Map()

function snake(key) {
  let s = SNAKE.get(key)
  if (s === undefined) {
    s = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
    // Field names are few; a caller's odd keys do not grow the cache without end.
    if (SNAKE.size < 4096) SNAKE.set(key, s)
  }
  return s
}

/**
 * A command as the native side takes it: the core's JSON form (`{ command: 'reserve_book',
 * book_id, … }`) from a method name and its input, the command id apart, and why it cannot
 * cross (`refusal`), if it cannot. Keys are converted, never checked: the core refuses an
 * unknown one, naming it (in the caller's terms by `inJsTerms`). It crosses as JSON text (see
 * `jsonText`).
 */
function nativeCommand(method, input) {
  if (typeof method !== 'string' || !Object.hasOwn(COMMANDS, method)) {
    throw invalid(`not a command: ${describe(method)} is not one of ${Object.keys(COMMANDS).join(', ')}`)
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalid(`${method} takes an object of named fields`)
  }
  const spec = COMMANDS[method]
  const command = { command: spec.name }
  let commandId
  let refusal
  for (const key of Object.keys(input)) {
    const value = input[key]
    if (value === undefined) continue
    if (key === 'commandId') {
      commandId = value ?? undefined
      if (typeof value === 'string') refusal ??= unsendable(key, value)
    } else if (key === 'command') {
      throw invalid(`${method} has no field "command"`)
    } else if (key === '__proto__') {
      // A plain assignment would set the object's prototype, not a field the core can refuse.
      Object.defineProperty(command, key, { value, enumerable: true, writable: true, configurable: true })
    } else {
      refusal ??= unsendable(key, value)
      command[snake(key)] = value
    }
  }
  return { command, commandId, refusal }
}

/**
 * The JS names of a command's fields by their core names (`book_id` → `bookId`), for wording an
 * error: made only when there is one. `method` is a command's method name (`nativeCommand` has
 * checked it) and `input` the object it was given.
 */
function namesOf(method, input) {
  const spec = COMMANDS[method]
  return new Map([[spec.name, method], ...spec.fields.map((f) => [snake(f), f]), ...Object.keys(input).map((k) => [snake(k), k])])
}

/**
 * Why a field's value cannot cross as JSON text, or `undefined`: JSON has no function, symbol or
 * BigInt (`JSON.stringify` would drop the field or throw), and a string with a lone surrogate is
 * not text (worded as the Python package words it). The command is refused like any bad field.
 */
function unsendable(key, value) {
  const type = typeof value
  if (type === 'string') {
    return value.isWellFormed() ? undefined : `${key} is ${JSON.stringify(value)}, which is not valid text: it holds a lone surrogate`
  }
  if (type === 'function' || type === 'symbol' || type === 'bigint') return `${key} must be a string, a number, a boolean or null, not a ${type}`
  return undefined
}

/**
 * `value` as the JSON text that crosses to the native side: one string, where napi reading an
 * object would take a call per key and per field. A value JSON cannot hold (a `BigInt`, a cycle,
 * a getter that throws) is the caller's input at fault.
 */
function jsonText(value) {
  try {
    return JSON.stringify(value)
  } catch (e) {
    throw invalid(describe(e))
  }
}

/**
 * A command's outcome from the native `[commandId, eventsJson, rentalId?]`. `events` is parsed
 * the first time it is read (one `JSON.parse`) and kept: a caller that never reads it — most
 * callers of a command — does not pay for it (several times the cost of the rest of the outcome). It is an own
 * enumerable property, so spreading, `JSON.stringify` and deep equality see it as before, and
 * it can be assigned.
 */
function outcomeOf([commandId, eventsJson, rentalId]) {
  let json = eventsJson
  let events
  const read = () => {
    if (json !== null) {
      events = JSON.parse(json)
      json = null
    }
    return events
  }
  const write = (value) => {
    events = value
    json = null
  }
  // Two literals, not one and a `delete`: an outcome without a rental has no `rentalId` key.
  if (rentalId === undefined) {
    return { commandId, get events() { return read() }, set events(v) { write(v) } }
  }
  return { commandId, rentalId, get events() { return read() }, set events(v) { write(v) } }
}

/** An outcome without its events (a batch run with `{ events: false }`). */
function plainOutcome(commandId, rentalId) {
  // Two literals, as in `outcomeOf`: an outcome without a rental has no `rentalId` key.
  return rentalId === undefined ? { commandId, events: [] } : { commandId, rentalId, events: [] }
}

/** The core's `INVALID_INPUT` naming fields as the JS caller wrote them (`bookId`, not `book_id`). */
function inJsTerms(e, method, input) {
  if (e.code !== ErrorCode.INVALID_INPUT) return e
  const known = namesOf(method, input)
  const message = e.message.replace(/\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b/g, (word) => known.get(word) ?? word)
  return message === e.message ? e : new LendkitError(e.code, message, { cause: e.cause ?? e })
}

// ---- the manual clock --------------------------------------------------------------------------

const nativeClock = new WeakMap()

/** A clock that stands still until moved (for tests and simulations). Default start: 2026-01-01T00:00:00Z. */
class ManualClock {
  constructor(startMs) {
    nativeClock.set(
      this,
      sync(() => new native.ManualClock(startMs)),
    )
  }

  /** The time shown, in milliseconds since the Unix epoch. */
  now() {
    return nativeClock.get(this).now()
  }

  /** Sets the time (it may go backwards). */
  set(ms) {
    sync(() => nativeClock.get(this).set(ms))
  }

  /** Moves the time forward by `ms` milliseconds. */
  advance(ms) {
    sync(() => nativeClock.get(this).advance(ms))
  }

  /** Moves the time forward by whole days. */
  advanceDays(days) {
    sync(() => nativeClock.get(this).advanceDays(days))
  }
}

// ---- host ports --------------------------------------------------------------------------------

function failed(e) {
  const declined = e !== null && typeof e === 'object' && e.code === ErrorCode.PAYMENT_DECLINED
  return { ok: false, declined, message: describe(e) }
}

/** What a value is, for a message (never calls into the value). */
function shape(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return 'an empty string'
  if (typeof v === 'object') return 'an object without a non-empty string paymentId'
  return `a ${typeof v}`
}

/**
 * A charge's answer as a reply. Only the documented shapes are a payment: a non-empty string
 * (the payment id), `{ paymentId: non-empty string }`, or nothing (`undefined`). Anything else is
 * a gateway that does not say what it did — a failed charge (`PAYMENT_UNAVAILABLE`), never a
 * payment.
 */
function chargeReply(result) {
  if (result === undefined) return { ok: true }
  if (typeof result === 'string' && result.length > 0) return { ok: true, paymentId: result }
  if (result !== null && typeof result === 'object' && !Array.isArray(result)) {
    const id = result.paymentId
    if (typeof id === 'string' && id.length > 0) return { ok: true, paymentId: id }
  }
  return {
    ok: false,
    declined: false,
    message: `charge must return a payment id (a non-empty string), { paymentId: non-empty string } or nothing, not ${shape(result)}`,
  }
}

function chargePort(charge) {
  return async (request) => {
    try {
      return chargeReply(await charge(request.memberId, request.amount, request.key))
    } catch (e) {
      return failed(e)
    }
  }
}

function refundPort(refund) {
  return async (request) => {
    try {
      await refund(request.key, request.memberId, request.amount)
      return { ok: true }
    } catch (e) {
      return failed(e)
    }
  }
}

function notifierPort(notifier) {
  return async (notice) => {
    try {
      await notifier(notice)
      return { ok: true }
    } catch (e) {
      return { ok: false, message: describe(e) }
    }
  }
}

// ---- options -----------------------------------------------------------------------------------

const OPTIONS = new Set([
  'welcomePoints',
  'loanDays',
  'maxRenewals',
  'holdShelfDays',
  'store',
  'durability',
  'payment',
  'notifier',
  'clock',
  'background',
  'immediateReactions',
  'maxAttempts',
  'retryBackoffMs',
  'breaker',
  'workers',
  'faultInjection',
  'logger',
])
const BREAKER = new Set(['failureThreshold', 'coolDownMs', 'callTimeoutMs'])

function plainObject(value, what) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`${what} must be an object`)
  }
  return value
}

function checkKeys(value, allowed, what) {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) throw invalid(`${what} has no option ${JSON.stringify(key)} (options: ${[...allowed].join(', ')})`)
  }
}

/** The public options as the native side takes them: `[nativeOptions, nativeClock]`. */
function nativeOptions(options) {
  if (options === undefined) return [{}, undefined]
  plainObject(options, 'options')
  checkKeys(options, OPTIONS, 'options')
  const o = {}
  for (const key of ['welcomePoints', 'loanDays', 'maxRenewals', 'holdShelfDays', 'maxAttempts', 'retryBackoffMs']) {
    if (options[key] !== undefined) {
      if (typeof options[key] !== 'number') throw invalid(`options.${key} must be a number`)
      o[key] = options[key]
    }
  }
  for (const key of ['background', 'immediateReactions', 'faultInjection']) {
    if (options[key] !== undefined) {
      if (typeof options[key] !== 'boolean') throw invalid(`options.${key} must be true or false`)
      o[key] = options[key]
    }
  }
  const { durability, breaker, workers, payment, notifier, clock, store } = options
  if (store !== undefined) {
    if (typeof store !== 'string') throw invalid("options.store must be 'sled', 'sqlite' or 'auto'")
    o.store = store
  }
  if (durability !== undefined && durability !== 'everyCommit') {
    if (durability === null || typeof durability !== 'object' || typeof durability.periodicMs !== 'number') {
      throw invalid("options.durability must be 'everyCommit' or { periodicMs: number }")
    }
    o.periodicFlushMs = durability.periodicMs
  }
  if (breaker !== undefined) {
    plainObject(breaker, 'options.breaker')
    checkKeys(breaker, BREAKER, 'options.breaker')
    o.breaker = {}
    for (const key of BREAKER) {
      const v = breaker[key]
      if (v === undefined) continue
      if (key === 'callTimeoutMs' && v === null) {
        o.breaker.noCallTimeout = true
      } else if (typeof v !== 'number') {
        throw invalid(`options.breaker.${key} must be a number${key === 'callTimeoutMs' ? ' or null' : ''}`)
      } else {
        o.breaker[key] = v
      }
    }
  }
  if (workers !== undefined) {
    plainObject(workers, 'options.workers')
    o.workers = {}
    for (const [name, n] of Object.entries(workers)) {
      if (typeof n !== 'number') throw invalid(`options.workers.${name} must be a number`)
      o.workers[name] = n
    }
  }
  if (payment !== undefined) {
    plainObject(payment, 'options.payment')
    if (typeof payment.charge !== 'function' || typeof payment.refund !== 'function') {
      throw invalid('options.payment must have charge(memberId, amount, key) and refund(key, memberId, amount) functions')
    }
    const charge = payment.charge.bind(payment)
    const refund = payment.refund.bind(payment)
    o.charge = chargePort(charge)
    o.refund = refundPort(refund)
  }
  if (notifier !== undefined) {
    if (typeof notifier !== 'function') throw invalid('options.notifier must be a function (notice) => …')
    o.notify = notifierPort(notifier)
  }
  if (options.logger !== undefined) {
    const { logger } = options
    if (typeof logger !== 'function') throw invalid('options.logger must be a function (record) => …')
    o.logger = (record) => {
      try {
        logger(record)
      } catch (e) {
        process.emitWarning(`a lendkit logger failed: ${describe(e)}`, { code: 'LENDKIT_LOGGER' })
      }
    }
  }
  let nclock
  if (clock !== undefined) {
    nclock = nativeClock.get(clock)
    if (nclock === undefined) throw invalid('options.clock must be a ManualClock')
  }
  return [o, nclock]
}

// ---- the library -------------------------------------------------------------------------------

const CONSTRUCT = Symbol('lendkit.construct')

function warnSubscriber(e) {
  process.emitWarning(`a lendkit subscriber failed: ${describe(e)}`, { code: 'LENDKIT_SUBSCRIBER' })
}

/**
 * A lending library. Open one with `await Library.open(path, options)` (a sled database: a folder)
 * or `await Library.inMemory(options)`; close it with `await lib.close()`.
 */
class Library extends LibraryCommands {
  #native
  #inline
  #settlesInline

  constructor(handle, token) {
    if (token !== CONSTRUCT) throw invalid('use `await Library.open(path)` or `await Library.inMemory()`')
    super()
    this.#native = handle
    // In memory with the members' point accounts, a command waits for no disk and no host port:
    // it runs right here, and the Promise resolves without a hop to a worker thread and back.
    this.#inline = handle.runsInline()
    // …and, without a JS notifier, so does a settle: the saga's reactions run here too.
    this.#settlesInline = handle.settlesInline()
  }

  /** Opens (or creates) the library stored at `path`. */
  static async open(path, options) {
    if (typeof path !== 'string' || path.length === 0) {
      throw invalid('Library.open takes the path of the database as a non-empty string')
    }
    const handle = await later(() => native.open(path, ...nativeOptions(options)))
    return new Library(handle, CONSTRUCT)
  }

  /**
   * Connects to a library shared by several processes: its log in the PostgreSQL schema
   * `options.name` (default `'lendkit'`) at `pgUrl`, its events spread through the NATS
   * JetStream stream of that namespace at `natsUrl`. The other options are `open`'s (without
   * `store` and `durability`), plus `ackWaitMs`.
   */
  static async connect(pgUrl, natsUrl, options) {
    if (typeof pgUrl !== 'string' || pgUrl.length === 0) throw invalid('Library.connect takes the PostgreSQL URL as a non-empty string')
    if (typeof natsUrl !== 'string' || natsUrl.length === 0) throw invalid('Library.connect takes the NATS URL as a non-empty string')
    const { name, ackWaitMs, ...rest } = options === undefined ? {} : plainObject(options, 'options')
    if (name !== undefined && typeof name !== 'string') throw invalid('options.name must be a string')
    if (ackWaitMs !== undefined && (typeof ackWaitMs !== 'number' || !(ackWaitMs > 0))) throw invalid('options.ackWaitMs must be a positive number')
    if (rest.store !== undefined || rest.durability !== undefined) throw invalid('options.store and options.durability do not apply to a connected library')
    const handle = await later(() => native.connect(pgUrl, natsUrl, name, ackWaitMs, ...nativeOptions(rest)))
    return new Library(handle, CONSTRUCT)
  }

  /** Removes a library shared through PostgreSQL and NATS: the schema and stream `name`. */
  static async dropConnected(pgUrl, natsUrl, name) {
    if (typeof name !== 'string' || name.length === 0) throw invalid('Library.dropConnected takes the name as a non-empty string')
    return later(() => native.dropConnected(pgUrl, natsUrl, name))
  }

  /** A library kept in memory only: nothing survives the process. */
  static async inMemory(options) {
    const handle = await later(() => native.open(null, ...nativeOptions(options)))
    return new Library(handle, CONSTRUCT)
  }

  /**
   * Runs one command: `command` is its method's name (`'reserveBook'`, …) and `input` what that
   * method takes (with an optional `commandId`). Every per-command method is this.
   */
  execute(command, input, actor) {
    let checked = false
    try {
      const prepared = nativeCommand(command, input)
      // Worded in the caller's terms already: thrown before the core's names would be reworded.
      if (prepared.refusal !== undefined) throw invalid(prepared.refusal)
      checked = true
      const who = actorText(actor)
      const text = jsonText(prepared.command)
      // Inline, the outcome is known now: one settled Promise, no await in between.
      if (this.#inline) return Promise.resolve(outcomeOf(this.#native.executeNow(text, who, prepared.commandId)))
      return this.#native.execute(text, who, prepared.commandId).then(outcomeOf, (e) => {
        throw inJsTerms(translate(e), command, input)
      })
    } catch (e) {
      const error = translate(e)
      return Promise.reject(checked ? inJsTerms(error, command, input) : error)
    }
  }

  /**
   * Runs many commands in order in one call — one crossing into Rust for the whole batch, which
   * is what makes bulk work fast. Each item is `{ command, input, actor }` with `command` the
   * method's name (`'reserveBook'`, …) and `input` what that method takes (with an optional
   * `commandId`). Resolves to one answer per item, `{ outcome }` or `{ error }` (a
   * `LendkitError`); a refusal does not stop the rest. With `{ events: false }` the outcomes
   * carry their ids but no events (faster when only success matters).
   */
  async executeBatch(items, options) {
    const withEvents = plainObject(options ?? {}, 'executeBatch options').events ?? true
    if (typeof withEvents !== 'boolean') throw invalid('executeBatch option events must be a boolean')
    if (!Array.isArray(items)) throw invalid('executeBatch takes an array of { command, input, actor }')
    // Each item read once, here (a getter is not called twice): its method, its input, and
    // what crosses. A command whose fields cannot cross is answered here, as the core answers
    // a bad field; `refused` holds those (by item), and most batches have none.
    const methods = new Array(items.length)
    const inputs = new Array(items.length)
    const sent = []
    let refused
    sync(() => {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]
        if (item === null || typeof item !== 'object') throw invalid(`batch item ${i} is not an object`)
        const method = item.command
        const input = item.input ?? {}
        const { command, commandId, refusal } = nativeCommand(method, input)
        const actor = actorText(item.actor)
        methods[i] = method
        inputs[i] = input
        if (refusal === undefined) sent.push({ command, actor, commandId })
        else (refused ??= new Map()).set(i, refusal)
      }
    })
    const commands = sync(() => jsonText(sent))
    // The answers come back as one text, a line per command sent, in order (the native
    // `answers_text`): `o` commandId TAB rentalId-or-nothing TAB events-JSON-or-nothing, or `e`
    // and the JSON of `{ code, message }`. Split here, not parsed as JSON: an outcome is made
    // from its slices, and its events are parsed when first read, as a single command's are.
    const text = await later(() => (this.#inline ? this.#native.executeBatchNow(commands, withEvents) : this.#native.executeBatch(commands, withEvents)))
    const lines = text.split('\n')
    const answers = new Array(items.length)
    for (let i = 0, line = 0; i < items.length; i++) {
      const refusal = refused?.get(i)
      if (refusal !== undefined) {
        answers[i] = { error: invalid(refusal) }
        continue
      }
      const answer = lines[line++]
      if (answer.charCodeAt(0) === 111 /* o */) {
        const tab = answer.indexOf('\t', 1)
        const tab2 = answer.indexOf('\t', tab + 1)
        const commandId = answer.slice(1, tab)
        const rentalId = tab2 === tab + 1 ? undefined : answer.slice(tab + 1, tab2)
        answers[i] = { outcome: withEvents ? outcomeOf([commandId, answer.slice(tab2 + 1), rentalId]) : plainOutcome(commandId, rentalId) }
      } else {
        const e = JSON.parse(answer.slice(1))
        answers[i] = { error: inJsTerms(new LendkitError(e.code, e.message), methods[i], inputs[i]) }
      }
    }
    return answers
  }

  /** Waits until policies and views have caught up. */
  async settle() {
    return later(() => (this.#settlesInline ? this.#native.settleNow() : this.#native.settle()))
  }

  // Queries take an optional actor last. Without one the host is trusted; with one, reads are
  // authorized like commands (a member reads only their own page; the log and the dead letters
  // are for librarians) and a refusal rejects with code UNAUTHORIZED.

  /** Every book with its stock and status. */
  async bookList(actor) {
    return later(() => this.#native.bookList(readerText(actor)))
  }

  /** A member's points and rentals. */
  async memberPage(memberId, actor) {
    return later(() => this.#native.memberPage(memberId, readerText(actor)))
  }

  /** The blocks a member would meet now: `[{ action, code, message }]`. */
  async memberBlocks(memberId, actor) {
    return later(() => this.#native.memberBlocks(memberId, readerText(actor)))
  }

  /** Which circulation rules apply when a member borrows a book: `{ memberId, bookId, branch? }`. */
  async explainPolicy(input, actor) {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      throw invalid('explainPolicy takes an object of named fields: { memberId, bookId, branch? }')
    }
    const { memberId, bookId, branch } = input
    return later(() => this.#native.explainPolicy(memberId, bookId, branch, readerText(actor)))
  }

  /** Stored events with `position >= fromPosition` (default 1), at most `limit`, in order. */
  async events(fromPosition, limit, actor) {
    return later(() => this.#native.events(fromPosition, limit, readerText(actor)))
  }

  /** The position of the newest stored event (0 when the log is empty). */
  async head(actor) {
    return later(() => this.#native.head(readerText(actor)))
  }

  /** Loans under circulation rules past due at `nowMs` (default: now): `{ nowMs?, branch? }`. */
  async overdueList(input, actor) {
    if (input !== undefined && (input === null || typeof input !== 'object' || Array.isArray(input))) {
      throw invalid('overdueList takes an object of named fields: { nowMs?, branch? }')
    }
    const { nowMs, branch } = input ?? {}
    return later(() => this.#native.overdueList(nowMs, branch, readerText(actor)))
  }

  /** The holds whose copies wait on a pickup shelf, with their deadlines: `{ branch? }`. */
  async holdShelf(input, actor) {
    if (input !== undefined && (input === null || typeof input !== 'object' || Array.isArray(input))) {
      throw invalid('holdShelf takes an object of named fields: { branch? }')
    }
    const { branch } = input ?? {}
    return later(() => this.#native.holdShelf(branch, readerText(actor)))
  }

  /** Runs the clock-driven circulation rules due at or before `nowMs`; how many ran. */
  async advanceTo(nowMs) {
    return later(() => this.#native.advanceTo(nowMs))
  }

  /** Events consumers gave up on, oldest first. */
  async deadLetters(actor) {
    return later(() => this.#native.deadLetters(readerText(actor)))
  }

  /** Hands a dead letter's event to its consumer again; on success it leaves the list. */
  async replayDeadLetter(id, actor) {
    return later(() => this.#native.replayDeadLetter(id, readerText(actor)))
  }

  /** Hands the stored event at `position` to `consumer` once more; nothing changes twice. */
  async redeliver(consumer, position) {
    return later(() => this.#native.redeliver(consumer, position))
  }

  /** Writes everything to disk (a no-op in memory). */
  async flush() {
    return later(() => this.#native.flush())
  }

  /** Stops the background work, waits for calls in flight and flushes. Calling it again does nothing. */
  async close() {
    return later(() => this.#native.close())
  }

  /** True once `close()` was called. */
  get closed() {
    return this.#native.closed
  }

  /** Stops a consumer (`catalog`, `rentals`, `payments`, `deliveries`, `notices`, `book_list`, `member_page`). */
  pause(consumer) {
    sync(() => this.#native.pause(consumer))
  }

  /** Lets a paused consumer go on; it catches up at the next settle. */
  resume(consumer) {
    sync(() => this.#native.resume(consumer))
  }

  /** The payment circuit breaker's state: `'closed'`, `'open'` or `'half_open'`. */
  paymentCircuit() {
    return sync(() => this.#native.paymentCircuit())
  }

  /** Makes the payment gateway fail as unavailable (`true`) or work again (`false`). Needs `faultInjection: true`. */
  setPaymentOutage(down) {
    sync(() => this.#native.setPaymentOutage(down))
  }

  /**
   * Calls `callback(event)` with every event committed from now on, in position order. Returns a
   * handle whose `unsubscribe()` ends it. A subscription never keeps the process alive.
   */
  subscribe(callback) {
    if (typeof callback !== 'function') throw invalid('subscribe takes a function (event) => …')
    const listener = (event) => {
      try {
        const r = callback(event)
        if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(undefined, warnSubscriber)
      } catch (e) {
        warnSubscriber(e)
      }
    }
    const id = sync(() => this.#native.subscribe(listener))
    let active = true
    return Object.freeze({
      unsubscribe: () => {
        if (!active) return false
        active = false
        return sync(() => this.#native.unsubscribe(id))
      },
    })
  }
}

module.exports = { Library, Librarian, Member, ManualClock, ErrorCode, LendkitError }
