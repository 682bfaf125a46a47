// Every ```js block of the READMEs runs as written against the built addon, prints what its
// comments say, and passes `tsc` (checkJs, strict) against the package's types — from this
// checkout, and the Node README's example also from the `npm pack` tarball installed into an
// empty project. A block that uses `import` runs as an ES module (`.mjs`), any other as
// CommonJS (`.cjs`). (cli/tests/readme.rs fails when a README holds a block that no test runs.)

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Library } from '../index.js'
import { tempDir } from './helpers.mjs'

const PACKAGE = fileURLToPath(new URL('..', import.meta.url))
const ROOT = join(PACKAGE, '..', '..')
// The READMEs whose JavaScript blocks run here, by their path in the repository.
const READMES = ['README.md', 'bindings/node/README.md']
const NODE_README = 'bindings/node/README.md'

// What each block prints. A new block needs its entry here: running without error is not enough.
const EXPECTED = {
  'README.md#0': ['70', 'NOT_RENTAL_OWNER'],
  'bindings/node/README.md#0': ["[ 'PointsCharged', 'RentalReserved' ]", '70', '1', 'true', '100'],
}

function blocks(name) {
  const readme = readFileSync(join(ROOT, name), 'utf8')
  return [...readme.matchAll(/^```js\n([\s\S]*?)^```/gm)].map((m) => m[1])
}

function everyBlock() {
  return READMES.flatMap((name) =>
    blocks(name).map((code, i) => ({ key: `${name}#${i}`, code, file: `example${i}.${/^import\s/m.test(code) ? 'mjs' : 'cjs'}` })),
  )
}

/** A temporary project whose `node_modules/lendkit` is this package. */
function project() {
  const { dir, cleanup } = tempDir()
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(PACKAGE, join(dir, 'node_modules', 'lendkit'), 'dir')
  return { dir, cleanup }
}

function run(dir, file) {
  return execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 }).trim().split('\n')
}

test('the READMEs have JavaScript examples, each with its expected output', () => {
  assert.ok(blocks('README.md').length >= 1)
  assert.ok(blocks(NODE_README).length >= 1)
  assert.deepEqual(everyBlock().map((b) => b.key).sort(), Object.keys(EXPECTED).sort())
})

for (const { key, code, file } of everyBlock()) {
  test(`${key} runs as written (as ${file})`, () => {
    const { dir, cleanup } = project()
    try {
      writeFileSync(join(dir, file), code)
      assert.deepEqual(run(dir, file), EXPECTED[key])
    } finally {
      cleanup()
    }
  })
}

test('the examples type-check with tsc --strict (checkJs) against index.d.ts', () => {
  const { dir, cleanup } = project()
  try {
    const files = []
    for (const { key, code, file } of everyBlock()) {
      const name = `${key.replace(/[^A-Za-z0-9]/g, '_')}_${file}`
      writeFileSync(join(dir, name), code)
      files.push(name)
    }
    // No @types/node here: declare the one global the examples use.
    writeFileSync(join(dir, 'globals.d.ts'), 'declare const console: { log(...values: unknown[]): void }\n')
    const compilerOptions = {
      strict: true,
      noEmit: true,
      allowJs: true,
      checkJs: true,
      target: 'es2022',
      lib: ['es2022'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      types: [],
    }
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['globals.d.ts', ...files] }))
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' })
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
  } finally {
    cleanup()
  }
})

test('the README names the code a closed library rejects calls with', async () => {
  const lib = await Library.inMemory()
  await lib.close()
  const code = await lib.bookList().then(
    () => assert.fail('a closed library answered'),
    (err) => err.code,
  )
  assert.equal(code, 'LIBRARY_CLOSED')
  assert.ok(readFileSync(join(ROOT, NODE_README), 'utf8').includes(`rejects every call with \`${code}\``))
})

test('npm pack yields a package an empty project installs from the tarball, then require and import work', () => {
  const { dir, cleanup } = tempDir()
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const quiet = { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] }
  const [example] = blocks(NODE_README)
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
    writeFileSync(join(project, 'example.js'), example)
    assert.deepEqual(run(project, 'example.js'), EXPECTED[`${NODE_README}#0`])
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
