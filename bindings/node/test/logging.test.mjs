// LENDKIT_LOG: the library's log lines on stderr (warnings only without it). Each case runs a
// child node process, since the logger is installed once per process at the first open.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { tempDir } from './helpers.mjs'

const NAME = 'Kim Secretname'
const CONTACT = 'kim@secret.example'
const ADDRESS = '1 Secret Road, Hidden Town'
const index = fileURLToPath(new URL('../index.js', import.meta.url))

/**
 * Runs a day on a library file in a child process with `env`; returns its stderr. With `logger`,
 * the library is opened with a logger that prints each record as a JSON line on stdout, and
 * `{ stderr, records }` is returned.
 */
function aDay(env, { logger = false } = {}) {
  const dir = tempDir()
  try {
    const script = `
      const { Library, Librarian, Member } = require(${JSON.stringify(index)})
      ;(async () => {
        const librarian = Librarian('lib-1')
        const logger = ${logger} ? (record) => process.stdout.write(JSON.stringify(record) + '\\n') : undefined
        const lib = await Library.open(${JSON.stringify(join(dir.dir, 'library.sqlite'))}, { background: false, logger })
        await lib.registerBook({ bookId: 'b-1', title: 'Dune', copies: 1, fee: 5 }, librarian)
        await lib.joinMember({ memberId: 'm-1', name: ${JSON.stringify(NAME)}, contact: ${JSON.stringify(CONTACT)} }, librarian)
        await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1', deliveryAddress: ${JSON.stringify(ADDRESS)} }, Member('m-1'))
        await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1' }, Member('m-2')).catch(() => {})
        await lib.settle()
        await lib.close()
      })().catch((e) => { console.error('FAILED', e); process.exit(1) })
    `
    const run = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    })
    assert.equal(run.status, 0, run.stderr)
    if (!logger) return run.stderr
    const records = run.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
    return { stderr: run.stderr, records }
  } finally {
    dir.cleanup()
  }
}

test('LENDKIT_LOG=debug prints every command, reaction and commit, and no personal data', () => {
  const stderr = aDay({ LENDKIT_LOG: 'debug' })
  for (const expected of ['command applied', 'command="reserve_book"', 'command refused', 'lendkit::policy', 'lendkit::store']) {
    assert.ok(stderr.includes(expected), `no ${expected} in:\n${stderr}`)
  }
  for (const secret of [NAME, 'Secretname', CONTACT, 'Secret Road', 'Hidden Town']) {
    assert.ok(!stderr.includes(secret), `a log line carries ${secret}:\n${stderr}`)
  }
})

test('without LENDKIT_LOG nothing below a warning is printed', () => {
  const stderr = aDay({ LENDKIT_LOG: '' })
  assert.ok(!stderr.includes('DEBUG') && !stderr.includes('command applied'), stderr)
})

test('a logger option receives the lines instead of stderr, as records with their fields', () => {
  const { stderr, records } = aDay({ LENDKIT_LOG: 'debug' }, { logger: true })
  assert.ok(!stderr.includes('command applied'), `stderr still has the lines:\n${stderr}`)
  const applied = records.find((r) => r.message.startsWith('command applied') && r.fields.command === 'reserve_book')
  assert.ok(applied, `no reserve_book record in ${JSON.stringify(records.slice(0, 5))}`)
  assert.equal(applied.level, 'debug')
  assert.equal(applied.target, 'lendkit::command')
  const refused = records.find((r) => r.message.startsWith('command refused'))
  assert.ok(refused && refused.fields.code, 'a refusal carries its code')
  assert.ok(records.some((r) => r.target === 'lendkit::store'), 'store commits are logged')
  const all = JSON.stringify(records)
  for (const secret of [NAME, 'Secretname', CONTACT, 'Secret Road', 'Hidden Town']) {
    assert.ok(!all.includes(secret), `a log record carries ${secret}`)
  }
})

test('a logger that throws is a process warning, not a crash', () => {
  const dir = tempDir()
  try {
    const script = `
      const { Library, Librarian } = require(${JSON.stringify(index)})
      ;(async () => {
        const logger = () => { throw new Error('the logger broke') }
        const lib = await Library.open(${JSON.stringify(join(dir.dir, 'library.sqlite'))}, { background: false, logger })
        await lib.registerBook({ bookId: 'b-1', title: 'Dune', copies: 1, fee: 5 }, Librarian('lib-1'))
        await lib.close()
        await new Promise((resolve) => setTimeout(resolve, 50))
        console.log('survived')
      })().catch((e) => { console.error('FAILED', e); process.exit(1) })
    `
    const run = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, LENDKIT_LOG: 'debug' },
      encoding: 'utf8',
    })
    assert.equal(run.status, 0, run.stderr)
    assert.ok(run.stdout.includes('survived'), run.stdout)
    assert.ok(run.stderr.includes('LENDKIT_LOGGER') || run.stderr.includes('a lendkit logger failed'), run.stderr)
  } finally {
    dir.cleanup()
  }
})

test('options.logger must be a function', async () => {
  const { Library } = await import('../index.js')
  await assert.rejects(Library.inMemory({ logger: 'console' }), (e) => e.code === 'INVALID_INPUT')
})
