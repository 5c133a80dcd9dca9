#!/usr/bin/env bash
# Runs every test gradlab has: formatting and lints (native and wasm32),
# native tests (GPU kernels on whatever adapter wgpu finds, lavapipe here),
# and browser tests in headless Chromium (WebGPU on SwiftShader), once through
# the cargo runner and once through wasm-pack. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
export CHROMEDRIVER=/usr/bin/chromedriver
# the browser suite runs every kernel family on SwiftShader: more than the
# runner's default 20 s on a busy 2-core machine
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
# lavapipe probes for a display server and complains without a runtime dir
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

echo "== format and lints"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown --all-targets -- -D warnings
# the site's module: the corpora not compiled in
cargo clippy --target wasm32-unknown-unknown --lib --no-default-features -- -D warnings
# its threads build (pkg-threads/): the pinned nightly, std rebuilt with
# atomics, the target features scripts/build-site.mjs builds it with
RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128" \
  cargo "+$(cat scripts/threads-toolchain)" clippy --target wasm32-unknown-unknown --lib --no-default-features \
  --features threads -Z build-std=std,panic_abort --target-dir target/threads-clippy -- -D warnings

echo "== native tests"
cargo test --release 2>&1
# the library as the site builds it: corpora handed over instead of compiled in
cargo test --release --lib --no-default-features shipped_corpora 2>&1

echo "== export-grads against an independent f64 model (JavaScript, from docs/DESIGN.md §2)"
npm run test:export

echo "== browser tests (wasm-bindgen-test-runner)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --release --target wasm32-unknown-unknown --test web 2>&1

echo "== the wasm API in Node: unknown keys, run indices, calls during a step, GPU limits (wasm-bindgen-test-runner)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --release --target wasm32-unknown-unknown --test web_api 2>&1

echo "== browser tests (wasm-pack)"
wasm-pack test --headless --chrome --release --test web 2>&1

echo "== the site, end to end in headless Chromium (screenshots in test-artifacts/)"
npm run build
npm run test:e2e
