#!/usr/bin/env bash
# Times `clan machines list` and `clan inventory show --json` (one machine and all)
# on generated clans of N machines (default 10 100 1000), written both as
# inventory.json and as clan.nix (the same machines, tags and instances), median of
# 5 runs, release code (the perf profile), wall time including process start.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --profile perf --locked -q -p clan-cli
clan="$PWD/target/perf/clan"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
five() { for _ in 1 2 3 4 5; do time_ms "$@"; done | median; }
printf '| machines | format | machines list (ms) | inventory show, one (ms) | inventory show, all (ms) |\n|---|---|---|---|---|\n'
for n in ${@:-10 100 1000}; do
  for format in json nix; do
    dir="$work/c$n-$format"; mkdir -p "$dir"
    python3 - "$dir" "$n" "$format" <<'PY'
import json, sys
path, n, fmt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
machines = {f"m{i:04d}": {"tags": [f"rack{i % 10}"] + (["laptop"] if i % 3 == 0 else []), "machineClass": "linux",
            "deploy": {"targetHost": f"root@10.0.{i // 250}.{i % 250 + 1}"}} for i in range(n)}
instances = {
  "borgbackup": {"roles": {"client": {"tags": ["laptop"]}, "server": {"machines": {"m0000": {"settings": {"directory": "/srv/borg"}}}}}},
  "sshd": {"roles": {"server": {"tags": ["all"], "settings": {"authorizedKeys": {"admin": "ssh-ed25519 AAAA admin"}}}}},
  "hello": {"module": {"name": "hello-world"}, "roles": {"greeter": {"tags": ["rack1"]}, "listener": {"tags": ["rack2"]}}},
}
if fmt == "json":
    json.dump({"meta": {"name": "scale"}, "machines": machines, "instances": instances}, open(f"{path}/inventory.json", "w"))
else:
    def nix(v):
        if isinstance(v, dict):
            return "{ " + " ".join(f'"{k}" = {nix(x)};' for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[ " + " ".join(nix(x) for x in v) + " ]"
        return json.dumps(v)
    open(f"{path}/clan.nix", "w").write(
        "{ ... }: {\n  meta.name = \"scale\";\n"
        + "".join(f"  inventory.machines.{m} = {nix(v)};\n" for m, v in machines.items())
        + "".join(f"  inventory.instances.{i} = {nix(v)};\n" for i, v in instances.items())
        + "}\n")
PY
    printf '| %s | %s | %s | %s | %s |\n' "$n" "$(
      [ "$format" = json ] && echo inventory.json || echo clan.nix)" \
      "$(five "$clan" --dir "$dir" machines list)" \
      "$(five "$clan" --dir "$dir" inventory show m0001 --json)" \
      "$(five "$clan" --dir "$dir" inventory show --json)"
  done
done
