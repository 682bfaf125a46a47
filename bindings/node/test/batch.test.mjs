// executeBatch: many commands in one crossing, each with its own answer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Library, Librarian, Member, LendkitError } = require('../index.js')

test('a batch runs in order, answers each command, and a refusal does not stop the rest', async () => {
  const lib = await Library.inMemory({ background: false })
  const librarian = Librarian('lib-1')
  const answers = await lib.executeBatch([
    { command: 'registerBook', input: { bookId: 'b-1', title: 'Refactoring', copies: 1, fee: 30 }, actor: librarian },
    { command: 'joinMember', input: { memberId: 'm-1', name: 'Kim' }, actor: librarian },
    { command: 'reserveBook', input: { bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1', commandId: 'c-1' }, actor: Member('m-1') },
    { command: 'cancelRental', input: { rentalId: 'r-1' }, actor: Member('m-2') },
    { command: 'topUp', input: { memberId: 'm-1', points: 0 }, actor: librarian },
    { command: 'reserveBook', input: { bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1', commandId: 'c-1' }, actor: Member('m-1') },
  ])
  assert.equal(answers.length, 6)
  assert.deepEqual(answers[0].outcome.events.map((e) => e.type), ['BookRegistered'])
  assert.deepEqual(answers[1].outcome.events.map((e) => e.type), ['MemberJoined', 'AccountOpened'])
  assert.equal(answers[2].outcome.rentalId, 'r-1')
  assert.ok(answers[3].error instanceof LendkitError)
  assert.equal(answers[3].error.code, 'NOT_RENTAL_OWNER')
  assert.equal(answers[4].error.code, 'INVALID_INPUT')
  assert.deepEqual(answers[5].outcome.events, answers[2].outcome.events, 'the same command id is applied once')
  await lib.settle()
  assert.equal((await lib.memberPage('m-1')).points, 70)
  await lib.close()
})

test('a batch can leave the events out of its answers', async () => {
  const lib = await Library.inMemory({ background: false })
  const [a] = await lib.executeBatch([{ command: 'joinMember', input: { memberId: 'm-1', name: 'Kim', commandId: 'j-1' }, actor: Librarian('x') }], { events: false })
  assert.equal(a.outcome.commandId, 'j-1')
  assert.deepEqual(a.outcome.events, [])
  assert.equal((await lib.events()).length, 2, 'the events were stored all the same')
  await assert.rejects(lib.executeBatch([], { events: 'no' }), { code: 'INVALID_INPUT' })
  await lib.close()
})

test('a malformed batch is refused with INVALID_INPUT', async () => {
  const lib = await Library.inMemory({ background: false })
  await assert.rejects(lib.executeBatch('nope'), { code: 'INVALID_INPUT' })
  await assert.rejects(lib.executeBatch([{ command: 'burnBook', input: {}, actor: Librarian('x') }]), { code: 'INVALID_INPUT' })
  const [answer] = await lib.executeBatch([{ command: 'registerBook', input: { bookId: 'b-1', title: 't', copies: 'many', fee: 1 }, actor: Librarian('x') }])
  assert.equal(answer.error.code, 'INVALID_INPUT')
  await lib.close()
})

test('a field JSON cannot carry is refused in its place in the batch, and the rest run in order', async () => {
  const lib = await Library.inMemory({ background: false })
  const librarian = Librarian('x')
  const answers = await lib.executeBatch([
    { command: 'joinMember', input: { memberId: 'm-1', name: 'Kim' }, actor: librarian },
    { command: 'joinMember', input: { memberId: 'm-2', name: 'Lee\ud800' }, actor: librarian },
    { command: 'topUp', input: { memberId: 'm-1', points: 5n }, actor: librarian },
    { command: 'topUp', input: { memberId: 'm-1', points: 5 }, actor: librarian },
  ])
  assert.deepEqual(answers.map((a) => (a.error ? a.error.code : a.outcome.events.map((e) => e.type).join())), [
    'MemberJoined,AccountOpened',
    'INVALID_INPUT',
    'INVALID_INPUT',
    'PointsToppedUp',
  ])
  assert.match(answers[1].error.message, /name is "Lee\\ud800", which is not valid text/)
  assert.match(answers[2].error.message, /points must be .* not a bigint/)
  assert.equal(answers[3].outcome.events[0].position, 3, 'nothing was stored for the refused ones')
  await lib.close()
})

test("a batch's answers keep one shape, with or without events, whatever the ids hold", async () => {
  const lib = await Library.inMemory({ background: false })
  const librarian = Librarian('x')
  // Ids with JSON's and the answer text's punctuation in them (a quote, a backslash, a colon,
  // non-ASCII text): they come back as they went in.
  const items = (suffix) => [
    { command: 'joinMember', input: { memberId: `m "1" \\ é${suffix}`, name: 'Kim', commandId: `j:1 "x"${suffix}` }, actor: librarian },
    { command: 'topUp', input: { memberId: `m "1" \\ é${suffix}`, points: 1 }, actor: librarian },
    { command: 'registerBook', input: { bookId: `b\\1${suffix}`, title: 'T', copies: 1, fee: 1 }, actor: librarian },
    { command: 'reserveBook', input: { bookId: `b\\1${suffix}`, memberId: `m "1" \\ é${suffix}`, rentalId: `r "1"${suffix}` }, actor: Member(`m "1" \\ é${suffix}`) },
    { command: 'cancelRental', input: { rentalId: 'nobody' }, actor: librarian },
  ]
  const plain = await lib.executeBatch(items('-a'), { events: false })
  assert.deepEqual(Object.keys(plain[0].outcome), ['commandId', 'events'])
  assert.equal(plain[0].outcome.commandId, 'j:1 "x"-a')
  assert.deepEqual(plain[0].outcome.events, [])
  assert.deepEqual(Object.keys(plain[3].outcome), ['commandId', 'rentalId', 'events'])
  assert.equal(plain[3].outcome.rentalId, 'r "1"-a')
  assert.ok(plain[4].error instanceof LendkitError)
  assert.equal(plain[4].error.code, 'RENTAL_NOT_FOUND')
  assert.match(plain[4].error.message, /nobody/)

  const full = await lib.executeBatch(items('-b'))
  assert.deepEqual(Object.keys(full[3].outcome), ['commandId', 'rentalId', 'events'])
  assert.equal(full[3].outcome.rentalId, 'r "1"-b')
  assert.deepEqual(full[0].outcome.events.map((e) => e.payload.member), ['m "1" \\ é-b', 'm "1" \\ é-b'])
  assert.equal(full[0].outcome.events[0].commandId, 'j:1 "x"-b')
  // The same as a single call's outcome: events parsed when read, and assignable.
  const single = await lib.joinMember({ memberId: 'm-solo', name: 'Lee' }, librarian)
  assert.deepEqual(Object.keys(full[0].outcome), Object.keys(single))
  full[2].outcome.events = ['replaced']
  assert.deepEqual(full[2].outcome.events, ['replaced'])
  assert.equal(full[4].error.code, 'RENTAL_NOT_FOUND')
  await lib.close()
})
