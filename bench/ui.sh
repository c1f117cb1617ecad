#!/usr/bin/env bash
# clan ui on generated clans of N machines (default 10 1000; inventory.json, the
# clans of inventory-scale.sh): the machine list's API answer, the overview rendered
# in headless Chromium, the bundle's size, RSS. Release code (the perf profile).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --profile perf --locked -q -p clan-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in ${@:-10 1000}; do
  dir="$work/c$n"; mkdir -p "$dir"
  python3 - "$dir" "$n" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
machines = {f"m{i:04d}": {"tags": [f"rack{i % 10}"] + (["laptop"] if i % 3 == 0 else []), "machineClass": "linux",
            "deploy": {"targetHost": f"root@10.0.{i // 250}.{i % 250 + 1}"}} for i in range(n)}
instances = {
  "borgbackup": {"roles": {"client": {"tags": ["laptop"]}, "server": {"machines": {"m0000": {"settings": {"directory": "/srv/borg"}}}}}},
  "sshd": {"roles": {"server": {"tags": ["all"], "settings": {"authorizedKeys": {"admin": "ssh-ed25519 AAAA admin"}}}}},
  "hello": {"module": {"name": "hello-world"}, "roles": {"greeter": {"tags": ["rack1"]}, "listener": {"tags": ["rack2"]}}},
}
json.dump({"meta": {"name": "scale"}, "machines": machines, "instances": instances}, open(f"{path}/inventory.json", "w"))
PY
  node bench/ui.mjs "$PWD/target/perf/clan" "$dir" "$n"
done
