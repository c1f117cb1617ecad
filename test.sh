#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (real Nix).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings
# Nix initialises its store on first use; many evaluations at once on a fresh
# machine race at that ("creating symlink ... File exists"). Once, first:
if command -v nix-instantiate >/dev/null; then nix-instantiate --eval -E 1 >/dev/null; fi
# Tests that need root (the lab, files of other users, dropped capabilities) are
# #[ignore]d with their reason: reported as ignored otherwise, run here as root.
if [ "$(id -u)" = 0 ]; then
  cargo test --all-targets --locked -- --include-ignored
else
  cargo test --all-targets --locked
fi
