// A small typed program against the package's public types; `tsc --noEmit` must accept it.
// It is type-checked, never run. The last part fails to compile when the hand-written
// index.d.ts and the generated native.d.ts drift apart.

import {
  ErrorCode,
  Librarian,
  LendkitError,
  Library,
  ManualClock,
  Member,
  type BookRow,
  type LogRecord,
  type CancelRentalInput,
  type DeadLetter,
  type ErrorCodeName,
  type Event,
  type JoinMemberInput,
  type LendkitEvent,
  type LibraryOptions,
  type MemberPage,
  type Notice,
  type Outcome,
  type RegisterBookInput,
  type RentalInput,
  type RentalRow,
  type ReserveBookInput,
  type Subscription,
  type TopUpInput,
  type AddCopiesInput,
  type CommandInputs,
  type CommandName,
  type ErrorCode as ErrorCodeType,
  type EventType,
  type LibraryCommands,
  type MarkDeliveredInput,
} from '../index.js'
import type * as native from '../native.js'

declare function log(...values: unknown[]): void

async function example(): Promise<number> {
  const clock = new ManualClock()
  const options: LibraryOptions = {
    welcomePoints: 100,
    durability: { periodicMs: 50 },
    clock,
    background: false,
    immediateReactions: true,
    breaker: { failureThreshold: 3, coolDownMs: 60_000, callTimeoutMs: null },
    workers: { catalog: 2 },
    payment: {
      charge: async (memberId: string, amount: number, key: string) => ({ paymentId: `${memberId}:${amount}:${key}` }),
      refund: (key: string) => undefined,
    },
    notifier: (notice: Notice) => log(notice.kind, notice.message),
    logger: (record: LogRecord) => log(record.level, `${record.target}: ${record.message} ${record.fields['code'] ?? ''}`),
  }
  const lib: Library = await Library.inMemory(options)
  const librarian = Librarian('lib-1')
  await lib.registerBook({ bookId: 'isbn-1', title: 'Domain-Driven Design', copies: 2, fee: 30 }, librarian)
  await lib.joinMember({ memberId: 'm-1', name: 'Kim', commandId: 'join-m-1' }, { role: 'librarian', id: 'lib-1' })
  const reserved = await lib.reserveBook({ bookId: 'isbn-1', memberId: 'm-1' }, Member('m-1'))
  const rentalId: string = reserved.rentalId
  const first: LendkitEvent | undefined = reserved.events[0]
  const fee: unknown = first?.payload['fee']
  await lib.settle()
  const books: BookRow[] = await lib.bookList()
  const page: MemberPage = await lib.memberPage('m-1')
  const due: string | undefined = page.rentals[0]?.dueDate
  const sub: Subscription = lib.subscribe((e: Event) => log(e.type, e.position))
  sub.unsubscribe()
  lib.pause('catalog')
  lib.resume('catalog')
  const state: 'closed' | 'open' | 'half_open' = lib.paymentCircuit()
  const letters: DeadLetter[] = await lib.deadLetters()
  try {
    await lib.cancelRental({ rentalId, reason: 'changed my mind' }, Member('m-2'))
  } catch (e) {
    if (e instanceof LendkitError && e.code === ErrorCode.NOT_RENTAL_OWNER) {
      const code: ErrorCodeName = e.code
      log(code, e.retryable)
    }
  }
  clock.advanceDays(3)
  await lib.close()
  return books.length + letters.length + String(fee).length + (due ?? state).length
}

void example

// ---- the hand-written types name the same fields as the native ones ----------------------------

type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Assert<T extends true> = T

export type Drift = [
  // (The native outcome is `[commandId, eventsJson, rentalId?]`: the wrapper makes `Outcome`,
  // whose keys test/outcomes.test.mjs checks.)
  Assert<Equal<keyof native.Event, keyof LendkitEvent>>,
  Assert<Equal<keyof native.BookRow, keyof BookRow>>,
  Assert<Equal<keyof native.RentalRow, keyof RentalRow>>,
  Assert<Equal<keyof native.MemberPage, keyof MemberPage>>,
  Assert<Equal<keyof native.DeadLetter, keyof DeadLetter>>,
  Assert<Equal<keyof native.Notice, keyof Notice>>,
  // The command methods are generated from docs/schema.json (commands.d.ts); everything else
  // of Library is the native class's (but for the inline paths `execute`, `executeBatch` and
  // `settle` take by themselves).
  Assert<Equal<Exclude<keyof native.NativeLibrary, 'subscribe' | 'unsubscribe' | 'runsInline' | 'executeNow' | 'settlesInline' | 'settleNow' | 'executeBatchNow'>, Exclude<keyof Library, 'subscribe' | CommandName>>>,
  Assert<Equal<keyof LibraryCommands, CommandName>>,
  Assert<Equal<keyof CommandInputs, CommandName>>,
  Assert<Equal<keyof RentalInput, keyof MarkDeliveredInput>>,
]

// A wrong call must not type-check.
// @ts-expect-error copies is a number
void Library.inMemory().then((l) => l.registerBook({ bookId: 'b', title: 't', copies: '1', fee: 1 }, Librarian('x')))
// A connected library takes the same options but a store or durability, plus its name.
void Library.connect('postgres://h/db', 'nats://h:4222', { name: 'lib', ackWaitMs: 5_000, background: false })
// @ts-expect-error a connected library has no store option
void Library.connect('postgres://h/db', 'nats://h:4222', { store: 'sled' })
void Library.dropConnected('postgres://h/db', 'nats://h:4222', 'lib').then((gone: boolean) => gone)
// @ts-expect-error not an event type
void ((t: EventType) => t)('BookBorrowed')
// @ts-expect-error not an error code
void ((c: ErrorCodeType) => c)('NO_SUCH_CODE')
// @ts-expect-error execute checks the input against the command
void Library.inMemory().then((l) => l.execute('topUp', { memberId: 'm-1' }, Librarian('x')))
void Library.inMemory().then(async (l) => {
  const r = await l.execute('reserveBook', { bookId: 'b', memberId: 'm' }, Member('m'))
  const id: string = r.rentalId
  const items: Parameters<Library['executeBatch']>[0] = [{ command: 'addCopies', input: { bookId: 'b', copies: 2 }, actor: Librarian('x') }]
  return id + String(items.length)
})
