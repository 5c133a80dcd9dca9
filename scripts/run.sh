#!/usr/bin/env bash
# The main job: the accumulation lab's reference experiment on the nano model —
# full batch vs naive vs corrected accumulation at micro-batch 1, 2, 4, 8, 16 —
# on the GPU (software Vulkan if there is no GPU), printing the table and
# writing it to sweep-out/. Arguments replace the default `sweep --steps 40`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s mesa-vulkan-drivers >/dev/null 2>&1; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
if [ $# -eq 0 ]; then
  set -- sweep --steps 40
fi
exec cargo run --release --bin gradlab -- "$@"
