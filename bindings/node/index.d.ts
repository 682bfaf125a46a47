// Types of the `lendkit` package: what `require('lendkit')` / `import … from 'lendkit'` gives.
// Written by hand for the wrapper (index.js), except the commands and the rows: the command
// methods, inputs and the `EventType` / `ErrorCode` unions, and the rows the library answers with
// (`BookRow`, `MemberPage`, `LendkitEvent`, `Outcome`, …), are generated from docs/schema.json
// into commands.d.ts (`python3 scripts/generate.py`), merged into `Library` and re-exported here.
// The native half's generated types are in native.d.ts, and test/types-check.ts fails when the
// two drift apart.

import type {
  BatchItem,
  BookRow,
  CommandInputs,
  CommandName,
  DeadLetter,
  ErrorCode as ErrorCodeUnion,
  LendkitEvent,
  LibraryCommands,
  MemberPage,
  Notice,
  Outcome,
  OverdueRow,
  HoldShelfRow,
} from './commands.js'

export type {
  AddCopiesInput,
  BatchItem,
  BookRow,
  CancelRentalInput,
  CommandInput,
  CommandInputs,
  CommandName,
  DeadLetter,
  EventType,
  JoinMemberInput,
  LendkitEvent,
  LibraryCommands,
  MarkDeliveredInput,
  MemberPage,
  Notice,
  Outcome,
  OverdueRow,
  HoldShelfRow,
  PlaceHoldInput,
  CancelHoldInput,
  ReorderQueueInput,
  CollectHoldInput,
  RegisterBookInput,
  RenewLoanInput,
  RentalRow,
  ReserveBookInput,
  ReturnBookInput,
  StartLoanInput,
  TopUpInput,
} from './commands.js'

// ---- errors ------------------------------------------------------------------------------------

/** Every stable error code (docs/errors.md). Codes are API: new ones may be added, none is renamed. */
export type ErrorCode = ErrorCodeUnion
/** The same as {@link ErrorCode} (its older name). */
export type ErrorCodeName = ErrorCode

/** Every code, frozen: `ErrorCode.INSUFFICIENT_POINTS === 'INSUFFICIENT_POINTS'`. */
export declare const ErrorCode: Readonly<{ [K in ErrorCode]: K }>

/**
 * Every failure lendkit reports, from sync and async methods alike. Compare `code`, never the
 * message. Wrong argument types give `code === 'INVALID_INPUT'`.
 */
export declare class LendkitError extends Error {
  readonly name: 'LendkitError'
  /** The stable code. */
  readonly code: ErrorCode
  /** True when the same call may succeed if simply tried again later. */
  readonly retryable: boolean
}

// ---- actors ------------------------------------------------------------------------------------

/** Who issues a command. */
export interface Actor {
  readonly role: 'librarian' | 'member'
  readonly id: string
}

/** A librarian: registers books, adds copies, registers members, tops up points, marks deliveries. */
export declare function Librarian(id: string): Actor
/** A member: reserves for themselves and acts on their own rentals only. */
export declare function Member(id: string): Actor

// ---- the clock ---------------------------------------------------------------------------------

/** A clock that stands still until moved, for tests and simulations. */
export declare class ManualClock {
  /** A clock showing `startMs` (ms since the Unix epoch; default 2026-01-01T00:00:00.000Z). */
  constructor(startMs?: number)
  /** The time shown, in ms since the Unix epoch. */
  now(): number
  /** Sets the time (it may go backwards). */
  set(ms: number): void
  /** Moves the time forward by `ms` milliseconds. */
  advance(ms: number): void
  /** Moves the time forward by whole days. */
  advanceDays(days: number): void
}

// ---- host ports --------------------------------------------------------------------------------

/**
 * What a host `charge` may return (or resolve to): the payment id as a non-empty string,
 * `{ paymentId }` with a non-empty string, or nothing (`undefined`: the id is made from the key).
 * Any other answer (a number, `null`, an array, an empty or non-string `paymentId`, …) is a failed
 * charge: `PAYMENT_UNAVAILABLE`, nothing is stored, and the circuit breaker counts an outage.
 */
export type ChargeResult = string | { paymentId: string } | void | undefined

/**
 * A payment gateway written in JavaScript. Both functions may be sync or async. A thrown value or
 * a rejected promise is a gateway failure (`PAYMENT_UNAVAILABLE`; it counts towards opening the
 * circuit breaker) — unless it is an object whose `code` is `'PAYMENT_DECLINED'`, which is a
 * refusal (`PAYMENT_DECLINED`, not an outage). `charge` must answer with a {@link ChargeResult};
 * whatever `refund` returns (or resolves to) is a success. Both must be idempotent per `key` (the
 * rental id): a call cut short by the call timeout or by `close()` may still complete at the host.
 */
export interface PaymentGateway {
  charge(memberId: string, amount: number, key: string): ChargeResult | Promise<ChargeResult>
  refund(key: string, memberId: string, amount: number): unknown
}

/**
 * Sends a notice (sync or async). Whatever it returns (or resolves to) is a success; a thrown value
 * or a rejected promise is retried later. Rentals never wait for it; `close()` does not either.
 */
export type Notifier = (notice: Notice) => unknown

/** One of lendkit's log lines, as a `logger` receives it. */
export interface LogRecord {
  /** `error`, `warn`, `info`, `debug` or `trace`. */
  level: 'error' | 'warn' | 'info' | 'debug' | 'trace'
  /** Where it comes from: `lendkit::command`, `lendkit::policy`, `lendkit::store`, … */
  target: string
  /** What happened, then its fields as `key=value`. */
  message: string
  /** The fields by name (`command`, `command_id`, `code`, …), as text. */
  fields: Record<string, string>
}

/**
 * Receives lendkit's log lines instead of stderr. Which lines: `LENDKIT_LOG` (warnings and worse
 * without it). Per process: the logger of the last library opened with one gets the lines of
 * every library. A thrown error is reported as a process warning, never a crash.
 */
export type Logger = (record: LogRecord) => unknown

// ---- options -----------------------------------------------------------------------------------

/** The circuit breaker around the payment gateway. */
export interface BreakerOptions {
  /** Consecutive gateway failures that open the circuit (default 5). */
  failureThreshold?: number
  /** How long the circuit stays open before one trial call, in ms (default 30000). */
  coolDownMs?: number
  /**
   * A slower payment call counts as a failure, in ms (default 5000); `null`: no limit — a charge
   * that never settles then waits until `close()`, which ends it with `LIBRARY_CLOSED`.
   */
  callTimeoutMs?: number | null
}

/**
 * When commands reach the disk. `'everyCommit'` (default): a command that returned survives a
 * crash. `{ periodicMs }`: flushed every `periodicMs` ms — faster, but a crash may lose the last
 * interval's commands.
 */
export type Durability = 'everyCommit' | { periodicMs: number }

/** How to connect to a library shared through PostgreSQL and NATS (`Library.connect`). */
export interface ConnectOptions extends Omit<LibraryOptions, 'store' | 'durability'> {
  /** The PostgreSQL schema and NATS namespace of the library (default `'lendkit'`). */
  name?: string
  /** How long a process may hold an event before another takes it over (default 30,000). */
  ackWaitMs?: number
}

export interface LibraryOptions {
  /** Points every new member's account opens with (default 100). */
  welcomePoints?: number
  /** Loan (and renewal) length in days (default 14). */
  loanDays?: number
  /** How often one loan may be renewed (default 2). */
  maxRenewals?: number
  /** Open days a hold's copy waits on the pickup shelf, where the rules do not say (default 7). */
  holdShelfDays?: number
  /**
   * The store a library opened at a path lives in: `'sled'` (a folder), `'sqlite'` (one file),
   * or `'auto'` (default: the one already there; a new library is sled unless the name ends in
   * `.sqlite`).
   */
  store?: 'sled' | 'sqlite' | 'auto'
  /** When commands reach the disk. */
  durability?: Durability
  /** Take payment through the host instead of the members' point accounts. */
  payment?: PaymentGateway
  /** Where notices go (default: nowhere). */
  notifier?: Notifier
  /** The clock (default: the system clock). */
  clock?: ManualClock
  /** Where lendkit's log lines go instead of stderr (see `Logger`). */
  logger?: Logger
  /** Run the saga and views on a background thread (default true). Off: only `settle()` runs them. */
  background?: boolean
  /**
   * Copy allocation, confirmation, release and deliveries happen within the command that caused
   * them (default false): `reserveBook` resolves with the rental already confirmed (or
   * cancelled), and the request and its reactions cost one sync. Refunds, notices and the views
   * still wait for `settle()`.
   */
  immediateReactions?: boolean
  /** Attempts before an event is moved to the dead letters (default 5). */
  maxAttempts?: number
  /** The first wait before a failing event is retried, in ms (default 1000; doubles per failure). */
  retryBackoffMs?: number
  /** The payment circuit breaker. */
  breaker?: BreakerOptions
  /** Workers per policy, e.g. `{ catalog: 4 }` (default one each). */
  workers?: Record<string, number>
  /** Allow `setPaymentOutage()` to rehearse a payment outage (default false). */
  faultInjection?: boolean
}

// ---- commands ----------------------------------------------------------------------------------
// Each command's input (`ReserveBookInput`, …) is generated into commands.d.ts.

/** The input every rental command shares (`markDelivered`'s whole input). */
export interface RentalInput {
  rentalId: string
  commandId?: string
}

/** What a command resolves to: `reserveBook` always names its rental. */
export type OutcomeOf<C extends CommandName> = C extends 'reserveBook' ? ReserveOutcome : Outcome

// ---- answers -----------------------------------------------------------------------------------

// The rows (`LendkitEvent`, `Outcome`, `BookRow`, `RentalRow`, `MemberPage`, `DeadLetter`,
// `Notice`) are generated from docs/schema.json into commands.d.ts and re-exported above.
export type { LendkitEvent as Event }

/** `reserveBook` always names its rental. */
export interface ReserveOutcome extends Outcome {
  rentalId: string
}

/** The consumers that can be paused, resumed and redelivered to. */
export type ConsumerName = 'catalog' | 'rentals' | 'payments' | 'deliveries' | 'notices' | 'book_list' | 'member_page'

export interface Subscription {
  /** Ends the subscription; false if it had already ended. */
  unsubscribe(): boolean
}

// ---- the library -------------------------------------------------------------------------------

/**
 * A lending library. Every method that touches storage returns a Promise and does its work off
 * the JS thread; failures are `LendkitError`s. One method per command (`registerBook`,
 * `reserveBook`, …) comes from {@link LibraryCommands}.
 */
export interface Library extends LibraryCommands {}
export declare class Library {
  private constructor()
  /** Opens (or creates) the sled database at `path`. */
  static open(path: string, options?: LibraryOptions): Promise<Library>
  /** A library kept in memory only. */
  static inMemory(options?: LibraryOptions): Promise<Library>
  /**
   * Connects to a library shared by several processes through PostgreSQL (`pgUrl`) and NATS
   * JetStream (`natsUrl`): each policy reaction happens once, in whichever process takes the
   * event; each process keeps its own views.
   */
  static connect(pgUrl: string, natsUrl: string, options?: ConnectOptions): Promise<Library>
  /** Removes a library shared through PostgreSQL and NATS: its schema and stream `name`. */
  static dropConnected(pgUrl: string, natsUrl: string, name: string): Promise<boolean>

  /**
   * Runs one command: `command` is its method's name and `input` what that method takes;
   * `lib.execute('reserveBook', input, actor)` is `lib.reserveBook(input, actor)`.
   */
  execute<C extends CommandName>(command: C, input: CommandInputs[C], actor: Actor): Promise<OutcomeOf<C>>
  /**
   * Runs many commands in order in one call (one crossing into Rust for the whole batch). One
   * answer per item, `{ outcome }` or `{ error }`; a refusal does not stop the rest.
   */
  executeBatch(items: BatchItem[], options?: { events?: boolean }): Promise<BatchAnswer[]>

  /** Waits until the saga and the views have caught up. */
  settle(): Promise<void>
  // Queries take an optional actor last: without one the host is trusted; with one, reads are
  // authorized like commands (a member reads only their own page; the log and the dead
  // letters are for librarians) and a refusal rejects with code UNAUTHORIZED.
  bookList(actor?: Actor): Promise<BookRow[]>
  memberPage(memberId: string, actor?: Actor): Promise<MemberPage>
  /**
   * Which circulation rules apply when a member borrows a book (at a branch, `*` by default):
   * the rules' `version` (0: none stored, the library's defaults), the member's `group`, the
   * book's `item_type`, the `branch` and the `explanation` (`winner`, `beaten`, `policies`),
   * with the core's snake_case keys.
   */
  explainPolicy(input: { memberId: string; bookId: string; branch?: string }, actor?: Actor): Promise<Record<string, any>>
  /**
   * The blocks a member would meet now if they borrowed, renewed or reserved, each with its
   * error code (`FEES_OWED`, `CARD_EXPIRED`, …); empty when nothing stops them.
   */
  memberBlocks(memberId: string, actor?: Actor): Promise<Array<{ action: 'borrow' | 'renew' | 'reserve'; code: ErrorCodeUnion; message: string }>>
  /** Stored events with `position >= fromPosition` (default 1), at most `limit`. */
  events(fromPosition?: number, limit?: number, actor?: Actor): Promise<LendkitEvent[]>
  /** The newest event's position (0 when the log is empty). */
  head(actor?: Actor): Promise<number>
  /**
   * Loans made under circulation rules that are past due at `nowMs` (default: the clock's time),
   * earliest due first, with days late and the fine so far; `branch` keeps one branch's.
   */
  overdueList(input?: { nowMs?: number; branch?: string }, actor?: Actor): Promise<OverdueRow[]>
  /**
   * The holds whose copies wait on the pickup shelf of `branch` (every branch when absent),
   * with their deadlines, earliest first within a branch.
   */
  holdShelf(input?: { branch?: string }, actor?: Actor): Promise<HoldShelfRow[]>
  /**
   * Runs the clock-driven circulation rules due at or before `nowMs` (automatic renewals,
   * overdue notices, items aged to lost); resolves to how many pieces of work ran. Running it
   * twice for the same instant changes nothing.
   */
  advanceTo(nowMs: number): Promise<number>
  deadLetters(actor?: Actor): Promise<DeadLetter[]>
  replayDeadLetter(id: string, actor?: Actor): Promise<void>
  /** Hands a stored event to a consumer once more (at-least-once delivery); nothing changes twice. */
  redeliver(consumer: ConsumerName, position: number): Promise<void>
  flush(): Promise<void>
  /**
   * Stops the background work, waits for calls in flight and flushes. Idempotent. A call still
   * waiting on a host port (a `charge` or notifier that has not settled) ends at once: its Promise
   * rejects with `LIBRARY_CLOSED`, nothing is stored, and it no longer keeps the process alive.
   * Every later call rejects with `LIBRARY_CLOSED`.
   */
  close(): Promise<void>
  readonly closed: boolean

  pause(consumer: ConsumerName): void
  resume(consumer: ConsumerName): void
  paymentCircuit(): 'closed' | 'open' | 'half_open'
  /** Needs `faultInjection: true`. */
  setPaymentOutage(down: boolean): void
  /**
   * Every event committed from now on, in position order. Never keeps the process alive. Without
   * the background runner (`background: false`) events are handed over during `settle()`, and the
   * first settle after subscribing also hands over events committed since the previous settle.
   */
  subscribe(callback: (event: LendkitEvent) => unknown): Subscription
}

/** One answer of `executeBatch`. */
export type BatchAnswer = { outcome: Outcome; error?: undefined } | { outcome?: undefined; error: LendkitError }
