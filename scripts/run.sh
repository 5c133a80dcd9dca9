#!/usr/bin/env bash
# The main job: build the static site (wasm + page) into dist/ and serve it
# under /gradlab/ on localhost, printing the address. Installs what the build
# needs first. `PORT=9000 bash scripts/run.sh` picks another port;
# `bash scripts/run.sh --not-isolated` serves the pages as a plain static host
# would (no COOP/COEP: the lab's CPU backend on one thread).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
npm run build
exec node scripts/serve.mjs "${PORT:-8080}" /gradlab/ "$@"
