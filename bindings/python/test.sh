#!/usr/bin/env bash
# Builds the lendkit wheel as `pip install ./bindings/python` does (with the locked maturin), installs it into a
# virtual environment and runs the Python suite. Needs Python >= 3.10 with pip, a Rust toolchain,
# and PyPI (for maturin, pytest, hypothesis, mypy and trove-classifiers: the exact versions and
# hashes of requirements-test.txt, locked for CPython 3.11 on Linux x86_64).
#
#   bash bindings/python/test.sh            # venv in bindings/python/.venv (reused if present)
#   LENDKIT_VENV=/tmp/v bash bindings/python/test.sh
#   LENDKIT_FRESH_VENV=1 bash bindings/python/test.sh   # start from an empty venv
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${LENDKIT_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }

if [ "${LENDKIT_FRESH_VENV:-0}" = 1 ]; then
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  step "python venv in $venv"
  if ! "$python" -m venv "$venv"; then
    echo "'$python -m venv' failed (Debian and Ubuntu need the python3-venv package); trying virtualenv"
    rm -rf "$venv"
    "$python" -m pip install --user --quiet virtualenv
    "$python" -m virtualenv --quiet "$venv"
  fi
fi
py="$venv/bin/python"

step "test tools: the hash-pinned lock bindings/python/requirements-test.txt"
# To update the lock: pip-compile --generate-hashes --allow-unsafe --strip-extras
# --no-emit-index-url --no-emit-find-links requirements-test.in (pip-tools, with Python 3.11).
"$py" -m pip install --quiet --disable-pip-version-check --require-hashes \
  -r "$here/requirements-test.txt"

step "pip install ./bindings/python (maturin builds the abi3 wheel)"
# A leftover in-place build (maturin develop) must not shadow the installed wheel.
rm -f "$here"/python/lendkit/_native*.so "$here"/python/lendkit/_native*.pyd
"$py" -m pip uninstall --quiet --yes lendkit >/dev/null 2>&1 || true
# --no-build-isolation: the build uses the locked maturin just installed, not whatever PyPI
# serves at build time (maturin's build hook runs `maturin` from PATH, hence the venv's bin/
# first). maturin builds with `cargo --locked`: MATURIN_PEP517_ARGS are its build options here
# (pyproject.toml says why the lock is not enforced there).
export PATH="$venv/bin:$PATH"
MATURIN_PEP517_ARGS="--locked" \
  "$py" -m pip install --disable-pip-version-check --no-deps --no-build-isolation "$here"
"$py" -c 'import lendkit, os; f = lendkit._native.__file__; print("lendkit", lendkit.__version__, "from", f, "(%.2f MiB)" % (os.path.getsize(f) / 2**20))'

step "pytest bindings/python/tests"
cd "$root"
export HYPOTHESIS_STORAGE_DIRECTORY="${HYPOTHESIS_STORAGE_DIRECTORY:-$venv/.hypothesis}"
"$py" -m pytest -q -p no:cacheprovider bindings/python/tests
