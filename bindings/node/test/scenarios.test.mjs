// Every scenario file in tests/scenarios/ is one test, named by its path relative to that
// folder: the same files the Rust and Python suites run. Files under `_pending/` show known
// bugs in the core and are skipped. The suite fails when it finds no files.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PENDING, runScenario } from './scenario-runner.mjs'

const ROOT = fileURLToPath(new URL('../../../tests/scenarios', import.meta.url))

function scenarioFiles(dir) {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return []
  }
  return entries.flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return scenarioFiles(path)
    return e.name.endsWith('.json') ? [path] : []
  })
}

const files = scenarioFiles(ROOT)
  .map((path) => ({ name: relative(ROOT, path).split(sep).join('/'), path }))
  .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

test('scenario files are found', () => {
  assert.ok(files.length > 0, `no scenario files (*.json) under ${ROOT}`)
})

for (const { name, path } of files) {
  const pending = name.startsWith(PENDING)
  test(name, { skip: pending && 'pending: shows a known bug in the core' }, () => runScenario(name, path))
}
