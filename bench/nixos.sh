#!/usr/bin/env bash
# NixOS machines in the lab (root): for systems whose closures hold N more store
# paths, `clan machines update` of a NixOS machine (copy what it lacks, activate,
# confirm over a new connection), an update with nothing to do, and
# `nix-copy-closure` alone of the same system to a second machine. Systems are
# built by the nixpkgs test double before the clock starts.
#
#   ./bench/nixos.sh [N...]     # default: 10 100 1000; writes target/bench/nixos.md
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release --locked -q -p clan-cli -p clan-lab
mkdir -p target/bench
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10 100 1000)
target/release/clan-lab nixos-bench target/release/clan "${counts[@]}" | tee target/bench/nixos.md
