#!/usr/bin/env bash
# Times `clan machines list` and `clan inventory show --json` (one machine and all)
# on generated clans of N machines (default 10 100 1000), written both as
# inventory.json and as clan.nix (the same machines, tags and instances), median of
# 5 runs, release code (the release profile), wall time including process start.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release --locked -q -p clan-cli
clan="$PWD/target/release/clan"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
five() { for _ in 1 2 3 4 5; do time_ms "$@"; done | median; }
printf '| machines | format | machines list (ms) | inventory show, one (ms) | inventory show, all (ms) |\n|---|---|---|---|---|\n'
for n in ${@:-10 100 1000}; do
  for format in json nix; do
    dir="$work/c$n-$format"; mkdir -p "$dir"
    python3 bench/scale-clan.py "$dir" "$n" "$format"
    printf '| %s | %s | %s | %s | %s |\n' "$n" "$(
      [ "$format" = json ] && echo inventory.json || echo clan.nix)" \
      "$(five "$clan" --dir "$dir" machines list)" \
      "$(five "$clan" --dir "$dir" inventory show m0001 --json)" \
      "$(five "$clan" --dir "$dir" inventory show --json)"
  done
done
