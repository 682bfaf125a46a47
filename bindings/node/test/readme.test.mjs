// The README's example runs as written — from this checkout, and from the `npm pack` tarball
// installed into an empty project.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helpers.mjs'

const PACKAGE = fileURLToPath(new URL('..', import.meta.url))
const EXPECTED = ["[ 'RentalReserved' ]", '70', '1', 'true', '100']

function example() {
  const readme = readFileSync(join(PACKAGE, 'README.md'), 'utf8')
  const block = /## Example\s+```js\n([\s\S]*?)```/.exec(readme)
  assert.ok(block, 'README.md has a ```js block under "## Example"')
  return block[1]
}

function run(dir, file) {
  return execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 }).trim().split('\n')
}

test('the README example runs as written', () => {
  const { dir, cleanup } = tempDir()
  try {
    mkdirSync(join(dir, 'node_modules'))
    symlinkSync(PACKAGE, join(dir, 'node_modules', 'lendkit'), 'dir')
    writeFileSync(join(dir, 'example.js'), example())
    assert.deepEqual(run(dir, 'example.js'), EXPECTED)
  } finally {
    cleanup()
  }
})

test('npm pack yields a package an empty project installs from the tarball, then require and import work', () => {
  const { dir, cleanup } = tempDir()
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const quiet = { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] }
  try {
    const packed = JSON.parse(execFileSync(npm, ['pack', '--json', '--pack-destination', dir], { ...quiet, cwd: PACKAGE }))
    const [{ filename, name, files }] = packed
    assert.equal(name, 'lendkit')
    const shipped = files.map((f) => f.path)
    for (const f of ['index.js', 'index.d.ts', 'native.js', 'native.d.ts', 'package.json', 'README.md']) {
      assert.ok(shipped.includes(f), `the tarball ships ${f}`)
    }
    assert.ok(shipped.some((f) => f.endsWith('.node')), 'the tarball ships the addon')
    assert.ok(!shipped.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'no sources or tests')
    const project = join(dir, 'app')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    execFileSync(npm, ['install', '--no-audit', '--no-fund', '--offline', join(dir, filename)], { ...quiet, cwd: project })
    writeFileSync(join(project, 'example.js'), example())
    assert.deepEqual(run(project, 'example.js'), EXPECTED)
    writeFileSync(
      join(project, 'esm.mjs'),
      "import { Library, Librarian, ErrorCode } from 'lendkit'\n" +
        'const lib = await Library.inMemory()\n' +
        "await lib.registerBook({ bookId: 'b', title: 'T', copies: 1, fee: 1 }, Librarian('l'))\n" +
        'await lib.settle()\n' +
        "console.log((await lib.bookList()).length, ErrorCode.STORAGE)\n" +
        'await lib.close()\n',
    )
    assert.deepEqual(run(project, 'esm.mjs'), ['1 STORAGE'])
  } finally {
    cleanup()
  }
})
