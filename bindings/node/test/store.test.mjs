// The store a library lives in: a sled folder or one SQLite file, chosen by `store` or by what
// is at the path; every command and query is the same on both.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { statSync, writeFileSync, readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Library, Member } from '../index.js'
import { librarian, rejection, tempDir } from './helpers.mjs'

for (const [name, store, folder] of [['library.db', undefined, true], ['library.sqlite', undefined, false], ['lib', 'sqlite', false]]) {
  test(`a library survives close and reopen: ${name}${store ? ` with store '${store}'` : ''}`, async () => {
    const dir = tempDir()
    const path = join(dir.dir, name)
    try {
      const lib = await Library.open(path, { store, background: false })
      await lib.registerBook({ bookId: 'b-1', title: 'T', copies: 1, fee: 10 }, librarian)
      await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, librarian)
      await lib.reserveBook({ bookId: 'b-1', memberId: 'm-1', rentalId: 'r-1' }, Member('m-1'))
      await lib.settle()
      const events = await lib.events()
      await lib.close()
      assert.equal(statSync(path).isDirectory(), folder)
      const again = await Library.open(path, { background: false })
      try {
        await again.settle()
        assert.deepEqual(await again.events(), events)
        assert.equal((await again.memberPage('m-1')).points, 90)
      } finally {
        await again.close()
      }
    } finally {
      dir.cleanup()
    }
  })
}

test('an unknown store is INVALID_INPUT; a text file is NOT_A_LIBRARY, left as it was', async () => {
  const dir = tempDir()
  try {
    const bad = await rejection(Library.open(join(dir.dir, 'x'), { store: 'csv' }))
    assert.equal(bad.code, 'INVALID_INPUT')
    assert.equal(existsSync(join(dir.dir, 'x')), false)
    const notes = join(dir.dir, 'notes.sqlite')
    writeFileSync(notes, 'not a library')
    const refused = await rejection(Library.open(notes))
    assert.equal(refused.code, 'NOT_A_LIBRARY')
    assert.equal(readFileSync(notes, 'utf8'), 'not a library')
  } finally {
    dir.cleanup()
  }
})
