#!/usr/bin/env bash
# Runs every check and every test lendkit has, exactly as CI does. Installs nothing by hand:
# what it needs comes from crates.io through cargo (and, as root on Debian, strace through apt).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

if cargo fmt --version >/dev/null 2>&1; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
else
  echo "rustfmt is not installed on this machine; skipping the format check"
fi

if cargo clippy --version >/dev/null 2>&1; then
  step "cargo clippy -D warnings"
  cargo clippy --locked --workspace --all-targets --all-features -- -D warnings
else
  echo "clippy is not installed on this machine; skipping the lint check"
fi

# The sync-count test (tests/cli.rs) counts the fdatasync calls of a command with strace.
if ! command -v strace >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  step "strace, from Debian, for the test that counts sync calls"
  apt-get install -y -qq strace >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq strace >/dev/null 2>&1; } \
    || echo "could not install strace; the sync-count test will say it skipped"
fi

step "cargo test (unit, store contract, saga, properties, crash, CLI, scenarios, doctests)"
cargo test --locked --all-features

step "cargo doc: the manual builds without a broken link"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p lendkit-core -p lendkit-adapters -p lendkit

step "Python package: build the wheel with maturin into a venv, run pytest (scenarios and Python-only tests)"
bash bindings/python/test.sh

step "Node package: build the addon with napi, run node --test (scenarios and Node-only tests)"
bash bindings/node/test.sh

step "generated command methods and types match docs/schema.json (scripts/generate.py --check)"
python3 scripts/generate.py --check

step "generated Node loader and types match what is committed"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git diff --exit-code -- bindings/node/native.js bindings/node/native.d.ts \
    || { echo "npm run build changed native.js/native.d.ts: commit the regenerated files"; exit 1; }
fi
