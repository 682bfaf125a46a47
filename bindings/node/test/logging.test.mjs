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

/** Runs a day on a library file in a child process with `env`; returns its stderr. */
function aDay(env) {
  const dir = tempDir()
  try {
    const script = `
      const { Library, Librarian, Member } = require(${JSON.stringify(index)})
      ;(async () => {
        const librarian = Librarian('lib-1')
        const lib = await Library.open(${JSON.stringify(join(dir.dir, 'library.sqlite'))}, { background: false })
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
    return run.stderr
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
