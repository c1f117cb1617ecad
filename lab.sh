#!/usr/bin/env bash
# The seed's backup guide in the lab, by hand (root): two Debian machines booted
# with systemd-nspawn, and a shell whose `clan` manages them. Exit the shell to
# tear them down.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build -q --bin clan --bin clan-lab
exec target/debug/clan-lab guide target/debug/clan
