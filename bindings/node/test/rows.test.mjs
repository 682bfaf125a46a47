// Every row object the library answers with has exactly the keys (camelCase) of its row in the
// core's schema (docs/schema.json), from which its TypeScript interface is generated: a field the
// core adds, or one the binding returns but the schema lacks, fails here.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Librarian, Library, ManualClock, Member } from '../index.js'

const SCHEMA = JSON.parse(readFileSync(new URL('../../../docs/schema.json', import.meta.url), 'utf8'))
const EVENT_TYPES = new Set(SCHEMA.events.map((e) => e.type))
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
// Rows the Node binding does not return (it has no consumers query); scripts/generate.py leaves
// them out of commands.d.ts too.
const LEFT_OUT = new Set(['ConsumerStatus'])
const ROWS = SCHEMA.rows.filter((r) => !LEFT_OUT.has(r.name))

function fits(field, value) {
  // The Node binding leaves an absent optional field out (undefined), as the types say.
  if (value === undefined || value === null) return field.optional && value === undefined
  switch (field.kind) {
    case 'integer':
      return Number.isSafeInteger(value)
    case 'boolean':
      return typeof value === 'boolean'
    case 'string':
      return typeof value === 'string'
    case 'event_type':
      return EVENT_TYPES.has(value)
    case 'enum':
      return field.values.includes(value)
    case 'object':
      // An event's payload keeps its stored snake_case keys.
      return typeof value === 'object' && !Array.isArray(value) && Object.keys(value).every((k) => k === k.toLowerCase())
    case 'list':
      return Array.isArray(value)
    default:
      throw new Error(`unknown kind ${field.kind}`)
  }
}

/** Real rows of every kind, from a small library that went through a loan, a late return, a
 * cancellation and a notice that failed for good. */
async function rows() {
  const notices = []
  const notifier = (notice) => {
    notices.push(notice)
    if (notices.length === 1) throw new Error('the SMS provider is down')
  }
  const clock = new ManualClock()
  const lib = await Library.inMemory({ background: false, clock, notifier, maxAttempts: 1 })
  const librarian = Librarian('lib-1')
  const m1 = Member('m-1')
  try {
    const outcomes = [
      await lib.registerBook({ bookId: 'b-1', title: 'Domain-Driven Design', author: 'Evans', copies: 2, fee: 10 }, librarian),
      await lib.registerBook({ bookId: 'b-2', title: 'Refactoring', copies: 1, fee: 5 }, librarian),
      await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, librarian),
      await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1' }, m1),
    ]
    await lib.settle()
    outcomes.push(await lib.startLoan({ rentalId: 'r-1' }, librarian))
    clock.advanceDays(20)
    outcomes.push(await lib.returnBook({ rentalId: 'r-1' }, librarian))
    outcomes.push(await lib.reserveBook({ bookId: 'b-2', memberId: 'm-1', rentalId: 'r-2' }, m1))
    await lib.settle()
    outcomes.push(await lib.cancelRental({ rentalId: 'r-2', reason: 'changed my mind' }, m1))
    await lib.settle()
    // A loan under stored rules (renewals left), and a blocked member.
    const rules = readFileSync(new URL('../../../tests/fixtures/circulation-rules.toml', import.meta.url), 'utf8')
    await lib.changeCirculationRules({ rules }, librarian)
    outcomes.push(await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-3' }, m1))
    await lib.settle()
    await lib.startLoan({ rentalId: 'r-3' }, librarian)
    outcomes.push(await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-4' }, m1))
    await lib.settle()
    await lib.startLoan({ rentalId: 'r-4', branch: 'main' }, librarian)
    clock.advanceDays(30)
    await lib.joinMember({ memberId: 'm-2', name: 'Lee' }, librarian)
    await lib.blockMember({ memberId: 'm-2', reason: 'card reported lost' }, librarian)
    await lib.settle()
    // Holds: one on the shelf at a named branch, one at none, one waiting in line.
    await lib.joinMember({ memberId: 'm-3', name: 'Park' }, librarian)
    await lib.joinMember({ memberId: 'm-4', name: 'Choi' }, librarian)
    await lib.registerBook({ bookId: 'b-3', title: 'Holds', copies: 1, fee: 5 }, librarian)
    for (const [who, bookId, holdId, pickupBranch] of [['m-3', 'b-3', 'h-1', 'main'], ['m-4', 'b-2', 'h-2'], ['m-3', 'b-2', 'h-3']]) {
      await lib.placeHold({ bookId, memberId: who, holdId, pickupBranch }, Member(who))
      await lib.settle()
    }
    const page = await lib.memberPage('m-1')
    const shelf = await lib.holdShelf()
    assert.equal(shelf.length, 2)
    return {
      BookRow: await lib.bookList(),
      MemberPage: [page, await lib.memberPage('m-2')],
      RentalRow: [...page.rentals, ...(await lib.memberPage('m-3')).rentals],
      HoldShelfRow: shelf,
      Event: [...(await lib.events()), ...outcomes.flatMap((o) => o.events)],
      Outcome: outcomes,
      OverdueRow: await lib.overdueList(),
      DeadLetter: await lib.deadLetters(),
      Notice: notices,
    }
  } finally {
    await lib.close()
  }
}

test('every row object has exactly the camelCase fields of its schema row', async () => {
  const found = await rows()
  assert.deepEqual(Object.keys(found).sort(), ROWS.map((r) => r.name).sort(), 'a row of every kind is made')
  for (const spec of ROWS) {
    const instances = found[spec.name]
    assert.ok(instances.length > 0, `no ${spec.name} was made`)
    const fields = spec.fields.map((f) => camel(f.name))
    const required = spec.fields.filter((f) => !f.optional).map((f) => camel(f.name))
    const seen = new Set()
    for (const row of instances) {
      const keys = Object.keys(row)
      keys.forEach((k) => seen.add(k))
      const extra = keys.filter((k) => !fields.includes(k))
      const missing = required.filter((k) => !keys.includes(k))
      assert.deepEqual(extra, [], `${spec.name} has keys the schema lacks (describe them in lendkit::rows::ROWS)`)
      assert.deepEqual(missing, [], `${spec.name} lacks fields of the schema (return them)`)
      for (const f of spec.fields) {
        const value = row[camel(f.name)]
        assert.ok(fits(f, value), `${spec.name}.${camel(f.name)} = ${JSON.stringify(value)} is not a ${f.kind}`)
      }
    }
    // Optional fields are left out when absent: each is seen set at least once.
    assert.deepEqual([...seen].sort(), [...fields].sort(), `${spec.name}: every field is seen`)
    for (const f of spec.fields.filter((f) => f.optional)) {
      assert.ok(
        instances.some((row) => !(camel(f.name) in row)),
        `${spec.name}.${camel(f.name)} was not seen absent`,
      )
    }
  }
})

test('the generated declarations name the same rows and fields as the schema', () => {
  const dts = readFileSync(new URL('../commands.d.ts', import.meta.url), 'utf8')
  for (const spec of ROWS) {
    const name = spec.name === 'Event' ? 'LendkitEvent' : spec.name
    const body = dts.match(new RegExp(`export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`))
    assert.ok(body, `commands.d.ts declares ${name}`)
    const keys = [...body[1].matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1])
    assert.deepEqual(keys, spec.fields.map((f) => camel(f.name)), name)
  }
  assert.ok(!/interface ConsumerStatus/.test(dts))
})
