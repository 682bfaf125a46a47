// One command, one place: every command of the core (docs/schema.json) is a method of Library,
// declared in the types, and a bad field gets the same code and message whichever way the
// command enters (its method, execute, executeBatch).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { LendkitError, Librarian, Library } from '../index.js'
import { librarian, rejection, stocked } from './helpers.mjs'

const read = (rel) => readFileSync(new URL(rel, import.meta.url), 'utf8')
const SCHEMA = JSON.parse(read('../../../docs/schema.json'))
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase())
const pascal = (name) => camel(name).replace(/^[a-z]/, (c) => c.toUpperCase())

test('every command of the schema is a Library method, declared with its input', async () => {
  const dts = read('../commands.d.ts')
  const lib = await Library.inMemory({ background: false })
  try {
    for (const command of SCHEMA.commands) {
      const method = camel(command.name)
      assert.equal(typeof lib[method], 'function', `Library has no ${method}: run python3 scripts/generate.py`)
      assert.equal(lib[method].length, 2, `${method}(input, actor)`)
      assert.ok(dts.includes(`  ${method}(input: ${pascal(command.name)}Input, actor: Actor)`), `commands.d.ts declares ${method}`)
      const body = dts.slice(dts.indexOf(`export interface ${pascal(command.name)}Input extends CommandInput {`))
      const fields = body.slice(0, body.indexOf('\n}') + 1)
      for (const f of command.fields) {
        const type = { amount: 'number', count: 'number', instant: 'number', flag: 'boolean' }[f.kind] ?? 'string'
        assert.ok(fields.includes(`\n  ${camel(f.name)}${f.optional ? '?' : ''}: ${type}\n`), `${method}: ${f.name}`)
      }
    }
    const methods = SCHEMA.commands.map((c) => camel(c.name))
    const extra = Object.getOwnPropertyNames(Object.getPrototypeOf(Library.prototype)).filter((m) => m !== 'constructor' && !methods.includes(m))
    assert.deepEqual(extra, [], 'no command method the schema does not have')
  } finally {
    await lib.close()
  }
})

test('the generated unions are the schema\'s event types and error codes', () => {
  const dts = read('../commands.d.ts')
  const union = (name) => {
    const start = dts.indexOf(`export type ${name} =`)
    return [...dts.slice(start, dts.indexOf('\n\n', start)).matchAll(/'([A-Za-z_]+)'/g)].map((m) => m[1])
  }
  assert.deepEqual(union('EventType'), SCHEMA.events.map((e) => e.type))
  assert.deepEqual(union('ErrorCode'), SCHEMA.errors.map((e) => e.code))
})

test('execute runs a command by its method name', async () => {
  const lib = await stocked()
  try {
    const out = await lib.execute('addCopies', { bookId: 'b-1', copies: 2, commandId: 'c-1' }, librarian)
    assert.equal(out.commandId, 'c-1')
    assert.deepEqual(out.events.map((e) => e.type), ['CopiesAdded'])
    const again = await lib.addCopies({ bookId: 'b-1', copies: 2, commandId: 'c-1' }, librarian)
    assert.deepEqual(again, out, 'the same command')
    const big = await lib.execute('topUp', { memberId: 'm-0', points: 2 ** 40 }, librarian)
    assert.equal(big.events[0].payload.points, 2 ** 40, 'whole numbers past 2^32 stay whole')
    const unknown = await rejection(lib.execute('reserveBook', { bookId: 'b-1', memberId: 'm-0', shelfId: 's' }, librarian))
    assert.equal(unknown.code, 'INVALID_INPUT')
    assert.match(unknown.message, /reserveBook has no field "shelfId"; its fields are bookId, memberId, rentalId, deliveryAddress/)
    assert.equal((await rejection(lib.execute('burnBook', {}, librarian))).code, 'INVALID_INPUT')
    assert.equal((await rejection(lib.execute('topUp', { command: 'x' }, librarian))).code, 'INVALID_INPUT')
  } finally {
    await lib.close()
  }
})

const BAD = [
  ['registerBook', { bookId: 'b-9', title: 'T', copies: 1, fee: true }, /fee is a boolean, but fee must be a whole number/],
  ['registerBook', { bookId: 'b-9', title: 'T', copies: 1, fee: 2 ** 64 }, /fee is 1\.8446744073709552e\+19, but fee must be a whole number/],
  ['registerBook', { bookId: 'b-9', title: 'T', copies: 1, fee: 1.5 }, /fee is 1\.5/],
  ['registerBook', { bookId: 'b-9', title: 'T', copies: 2 ** 32, fee: 1 }, /copies is 4294967296/],
  ['registerBook', { bookId: 'b-9', title: 'T', copies: 1, fee: 2 ** 53 }, /fee is 9007199254740992; the largest amount/],
  ['registerBook', { bookId: 'b\ud800', title: 'T', copies: 1, fee: 1 }, /bookId is "b\\ud800", which is not valid text: it holds a lone surrogate/],
  ['registerBook', { bookId: 'b-9', title: () => 'T', copies: 1, fee: 1 }, /title must be a string, a number, a boolean or null, not a function/],
  ['registerBook', { bookId: 'b-9', title: 'T', copies: 1, fee: 10n }, /fee must be a string, a number, a boolean or null, not a bigint/],
  ['registerBook', { bookId: 'b-9', title: Symbol('T'), copies: 1, fee: 1 }, /title must be .* not a symbol/],
  ['registerBook', { bookId: 5, title: 'T', copies: 1, fee: 1 }, /bookId must be a string/],
  ['joinMember', { memberId: 'm-9' }, /joinMember needs name/],
  ['topUp', { memberId: 'm-0', points: 0 }, /points/],
  ['reserveBook', { bookId: 'b-1', memberId: 'm-0', rentalId: '' }, /rentalId/],
]

for (const [method, input, says] of BAD) {
  test(`the same bad ${method} input is the same error every way: ${says}`, async () => {
    const lib = await stocked()
    try {
      const head = await lib.head()
      const byMethod = await rejection(lib[method](input, librarian))
      const byExecute = await rejection(lib.execute(method, input, librarian))
      const [{ error: byBatch }] = await lib.executeBatch([{ command: method, input, actor: librarian }])
      for (const e of [byMethod, byExecute, byBatch]) {
        assert.ok(e instanceof LendkitError)
        assert.equal(e.code, 'INVALID_INPUT')
        assert.equal(e.message, byMethod.message)
      }
      assert.match(byMethod.message, says)
      assert.equal(await lib.head(), head, 'nothing was stored')
    } finally {
      await lib.close()
    }
  })
}

test('the same command as Python and Rust send it is accepted in snake_case too', async () => {
  const lib = await Library.inMemory({ background: false })
  try {
    const out = await lib.execute('joinMember', { member_id: 'm-1', name: 'Kim' }, Librarian('x'))
    assert.deepEqual(out.events.map((e) => e.type), ['MemberJoined', 'AccountOpened'])
  } finally {
    await lib.close()
  }
})

test('a command id holding a lone surrogate is refused the same way every way, as in Python', async () => {
  const lib = await stocked()
  try {
    const head = await lib.head()
    const input = { memberId: 'm-9', name: 'Kim', commandId: 'c\ud800' }
    const byMethod = await rejection(lib.joinMember(input, librarian))
    const byExecute = await rejection(lib.execute('joinMember', input, librarian))
    const [{ error: byBatch }] = await lib.executeBatch([{ command: 'joinMember', input, actor: librarian }])
    for (const e of [byMethod, byExecute, byBatch]) {
      assert.equal(e.code, 'INVALID_INPUT')
      assert.equal(e.message, byMethod.message)
    }
    assert.match(byMethod.message, /commandId is "c\\ud800", which is not valid text/)
    assert.equal(await lib.head(), head, 'nothing was stored')
  } finally {
    await lib.close()
  }
})
