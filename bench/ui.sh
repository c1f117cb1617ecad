#!/usr/bin/env bash
# clan ui on generated clans of N machines (default 10 1000; inventory.json, the
# clans of inventory-scale.sh): the machine list's API answer, the overview rendered
# in headless Chromium, the bundle's size, RSS. Release code (the release profile).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release --locked -q -p clan-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in ${@:-10 1000}; do
  dir="$work/c$n"; mkdir -p "$dir"
  python3 bench/scale-clan.py "$dir" "$n" json
  node bench/ui.mjs "$PWD/target/release/clan" "$dir" "$n"
done
