// The types: `tsc --noEmit` accepts a small typed program (test/types-check.ts) against the
// package's index.d.ts, and the hand-written types name the same fields as the generated ones.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const PACKAGE = fileURLToPath(new URL('..', import.meta.url))

test('tsc --noEmit over test/types-check.ts', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', 'test/tsconfig.json'], { cwd: PACKAGE, encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})
