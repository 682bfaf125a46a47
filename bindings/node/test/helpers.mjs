// Small helpers shared by the Node-only tests.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Librarian, Library, Member } from '../index.js'

export const librarian = Librarian('lib-1')

/** A fresh directory under the OS temp dir, removed by the returned `cleanup`. */
export function tempDir(prefix = 'lendkit-node-') {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A library in memory with one book (`copies` copies, fee 30) and `members` members (`m-0` …). */
export async function stocked({ copies = 1, members = 1, welcomePoints = 100, ...options } = {}) {
  const lib = await Library.inMemory({ background: false, welcomePoints, ...options })
  await lib.registerBook({ bookId: 'b-1', title: 'Domain-Driven Design', copies, fee: 30 }, librarian)
  for (let i = 0; i < members; i++) {
    await lib.joinMember({ memberId: `m-${i}`, name: `Member ${i}` }, librarian)
  }
  return lib
}

/** Reserves `b-1` for member `m-i` as that member. */
export const reserve = (lib, i, extra = {}) =>
  lib.reserveBook({ bookId: 'b-1', memberId: `m-${i}`, ...extra }, Member(`m-${i}`))

/** Resolves with the error `promise` rejects with; fails if it resolves. */
export async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  throw new Error('expected the call to fail, but it succeeded')
}

/** The error `fn` throws synchronously; fails if it returns. */
export function thrown(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected the call to throw, but it returned')
}

/** Waits until `check()` is truthy (polling), or fails after `ms`. */
export async function eventually(check, ms = 5000) {
  const until = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() > until) throw new Error('timed out waiting for a condition')
    await new Promise((r) => setTimeout(r, 10))
  }
}
