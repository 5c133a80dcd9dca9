#!/usr/bin/env bash
# Installs what gradlab's build and tests need on a Debian machine that has
# only rustup: software Vulkan (lavapipe) for native GPU tests, Chromium and
# its driver for browser tests, the wasm32 target, a pinned nightly for the
# threads build, and wasm-bindgen-cli pinned to the wasm-bindgen version in
# Cargo.lock. Skips whatever is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in mesa-vulkan-drivers libvulkan1 chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# the nightly that builds the module's threads build (pkg-threads/, with std
# rebuilt for shared memory: scripts/build-site.mjs), pinned by date
threads_toolchain=$(cat scripts/threads-toolchain)
installed=$(rustup +"$threads_toolchain" component list --installed 2>/dev/null || true)
if ! grep -qx rust-src <<<"$installed" || ! grep -q '^clippy' <<<"$installed"; then
  echo "setup: installing the $threads_toolchain toolchain with rust-src and clippy (for pkg-threads/)"
  rustup toolchain install "$threads_toolchain" --profile minimal --component rust-src --component clippy
fi

# wasm-bindgen-cli must match the wasm-bindgen the crate links exactly
[ -f Cargo.lock ] || cargo generate-lockfile
wb_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb_version\$"; then
  echo "setup: installing wasm-bindgen-cli $wb_version (a few minutes)"
  # not --locked: a yanked transitive dependency breaks the locked install
  cargo install wasm-bindgen-cli --version "$wb_version" --force
fi
if ! wasm-pack --version 2>/dev/null | grep -q "0.15.1"; then
  echo "setup: installing wasm-pack 0.15.1"
  cargo install wasm-pack --version 0.15.1 --locked --force
fi
# the page's npm packages, exactly as locked
npm ci --no-audit --no-fund --loglevel=error
echo "setup: ok ($(wasm-bindgen --version), $(wasm-pack --version), $(chromium --version 2>/dev/null | head -1))"
