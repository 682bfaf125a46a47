// The smoke scenario scripts/cross.sh runs with every installed npm package (linux-x64-gnu in a
// fresh npm project, linux-arm64-gnu under qemu): `require('lendkit')` as a CommonJS user would,
// open a library in a temporary folder, register a book, sign up a member, reserve, settle, and
// read the rental back, then again after reopening the folder.
'use strict'
const assert = require('node:assert/strict')
const { mkdtempSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { Library, Librarian, Member } = require('lendkit')

async function main() {
  const folder = mkdtempSync(join(tmpdir(), 'lendkit-smoke-'))
  try {
    const path = join(folder, 'library.db')
    let lib = await Library.open(path)
    await lib.registerBook({ bookId: 'isbn-1', title: 'Domain-Driven Design', copies: 1, fee: 30 }, Librarian('lib-1'))
    await lib.joinMember({ memberId: 'm-1', name: 'Kim' }, Librarian('lib-1'))
    const { rentalId } = await lib.reserveBook({ bookId: 'isbn-1', memberId: 'm-1', rentalId: 'r-1' }, Member('m-1'))
    assert.equal(rentalId, 'r-1')
    await lib.settle()
    await lib.close()
    lib = await Library.open(path)
    const page = await lib.memberPage('m-1')
    assert.equal(page.points, 70)
    const rentals = page.rentals.map((r) => [r.rentalId, r.bookId, r.status, r.paymentStatus, r.fee])
    assert.deepEqual(rentals, [['r-1', 'isbn-1', 'confirmed', 'charged', 30]])
    const books = await lib.bookList()
    assert.deepEqual(books.map((b) => [b.bookId, b.title]), [['isbn-1', 'Domain-Driven Design']])
    await lib.close()
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
  const addon = require.resolve(`lendkit-${process.platform}-${process.arch === 'x64' ? 'x64' : process.arch}-gnu`)
  console.log(`smoke ok: lendkit ${require('lendkit/package.json').version} on ${process.arch}, Node ${process.version}, ${addon.split('/').slice(-2).join('/')}`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
