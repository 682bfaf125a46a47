// What the npm tarball carries: both licence texts, byte for byte the repository's, and honest
// package metadata. Packs the package for real (`npm pack`) and reads the files back out of the
// tarball, so a `files` list that forgets them fails here.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helpers.mjs'

const PACKAGE = fileURLToPath(new URL('..', import.meta.url))
const ROOT = join(PACKAGE, '..', '..')
const LICENCES = ['LICENSE-MIT', 'LICENSE-APACHE']

test('the npm tarball ships both licence texts, the same as the repository root', () => {
  const { dir, cleanup } = tempDir()
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const quiet = { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] }
  try {
    const dry = JSON.parse(execFileSync(npm, ['pack', '--dry-run', '--json'], { ...quiet, cwd: PACKAGE }))
    const listed = dry[0].files.map((f) => f.path)
    for (const licence of LICENCES) {
      assert.ok(listed.includes(licence), `npm pack --dry-run lists ${licence}: ${listed.join(', ')}`)
    }
    const [{ filename }] = JSON.parse(
      execFileSync(npm, ['pack', '--json', '--pack-destination', dir], { ...quiet, cwd: PACKAGE }),
    )
    execFileSync('tar', ['-xzf', join(dir, filename), '-C', dir], quiet)
    for (const licence of LICENCES) {
      const shipped = readFileSync(join(dir, 'package', licence), 'utf8')
      assert.equal(shipped, readFileSync(join(ROOT, licence), 'utf8'), `${licence} in the tarball`)
    }
  } finally {
    cleanup()
  }
})

test('the addon is the stripped dist build, under 16 MiB', () => {
  const addon = readdirSync(PACKAGE).find((f) => f.endsWith('.node'))
  assert.ok(addon, 'no .node file: run npm run build')
  const bytes = readFileSync(join(PACKAGE, addon))
  console.log(`lendkit addon: ${addon}, ${(bytes.length / 2 ** 20).toFixed(2)} MiB`)
  // About 10.5 MiB with the PostgreSQL and NATS clients of Library.connect.
  assert.ok(bytes.length < 16 * 2 ** 20, `${addon} is ${bytes.length} bytes: not the stripped dist build?`)
  assert.ok(!bytes.includes('.symtab'), `${addon} still carries its symbol table`)
})

test('package.json states the licence, keywords and engines, and no placeholder address', () => {
  const pkg = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8'))
  assert.equal(pkg.license, 'MIT OR Apache-2.0')
  assert.ok(Array.isArray(pkg.keywords) && pkg.keywords.length > 0, 'keywords')
  assert.match(pkg.engines?.node ?? '', /^>=\d+/, 'engines.node')
  for (const licence of LICENCES) assert.ok(pkg.files.includes(licence), `files lists ${licence}`)
  for (const field of ['repository', 'homepage', 'bugs']) {
    assert.ok(!JSON.stringify(pkg[field] ?? '').includes('example.'), `${field} is no placeholder`)
  }
})
