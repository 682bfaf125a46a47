// Every scenario file in tests/scenarios/ is one test, named by its path relative to that
// folder: the same files the Rust and Python suites run. Files under `_pending/` show known
// bugs in the core and are skipped (but must fit the schema). The suite fails when it finds no
// files. The cases of tests/scenario-selftest.json, which every runner must judge alike, show
// that the matching and the schema check can fail.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PENDING, SCHEMA_FILE, SELF_TEST, checkScenario, runScenario, runScenarioObject } from './scenario-runner.mjs'

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
    return e.name.endsWith('.json') && e.name !== SCHEMA_FILE ? [path] : []
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

test('every file fits the schema, pending ones too', () => {
  for (const { name, path } of files) {
    assert.doesNotThrow(() => checkScenario(JSON.parse(readFileSync(path, 'utf8'))), name)
  }
})

for (const c of SELF_TEST.cases) {
  test(`self-test: ${c.name}`, async () => {
    const { name, fails_with: failsWith, ...keys } = c
    const s = { ...SELF_TEST.base, ...keys }
    let error
    try {
      await runScenarioObject(`${s.seed}/self-test.json`, s)
    } catch (e) {
      error = e
    }
    if (failsWith === null) {
      assert.equal(error, undefined, `${name}: failed, expected a pass: ${error?.message}`)
    } else {
      assert.ok(error, `${name}: passed, expected a failure with ${JSON.stringify(failsWith)}`)
      assert.ok(error.message.includes(failsWith), `${name}: failed without ${JSON.stringify(failsWith)}: ${error.message}`)
    }
  })
}
