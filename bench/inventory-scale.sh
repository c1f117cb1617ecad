#!/usr/bin/env bash
# Times `clan machines list` and `clan inventory show --json` on generated
# inventory.json clans of N machines (default 10 100 1000), median of 5 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
clan="$PWD/target/release/clan"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
printf '| machines | machines list (ms) | inventory show, all (ms) |\n|---|---|---|\n'
for n in "${@:-10 100 1000}"; do
  for n1 in $n; do
    dir="$work/c$n1"; mkdir -p "$dir"
    python3 - "$dir/inventory.json" "$n1" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
machines = {f"m{i:04d}": {"tags": [f"rack{i % 10}"] + (["laptop"] if i % 3 == 0 else []), "machineClass": "linux",
            "deploy": {"targetHost": f"root@10.0.{i // 250}.{i % 250 + 1}"}} for i in range(n)}
instances = {
  "borgbackup": {"roles": {"client": {"tags": ["laptop"]}, "server": {"machines": {"m0000": {"settings": {"directory": "/srv/borg"}}}}}},
  "sshd": {"roles": {"server": {"tags": ["all"], "settings": {"authorizedKeys": {"admin": "ssh-ed25519 AAAA admin"}}}}},
  "hello": {"module": {"name": "hello-world"}, "roles": {"greeter": {"tags": ["rack1"]}, "listener": {"tags": ["rack2"]}}},
}
json.dump({"meta": {"name": "scale"}, "machines": machines, "instances": instances}, open(path, "w"))
PY
    list=$(for _ in 1 2 3 4 5; do time_ms "$clan" --dir "$dir" machines list; done | median)
    show=$(for _ in 1 2 3 4 5; do time_ms "$clan" --dir "$dir" inventory show --json; done | median)
    printf '| %s | %s | %s |\n' "$n1" "$list" "$show"
  done
done
