#!/usr/bin/env bash
# Builds the Node addon and runs the Node suite (every scenario file plus the Node-only tests).
# Needs only Node 20+, npm and a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
npm test
