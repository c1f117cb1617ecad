#!/usr/bin/env bash
# The agent under load: 50 concurrent clients on loopback for 10 s each, for
# `{ api { version } }` and for `{ services { allServices { id status } } }` on a
# machine with 10 services (10 states with a unit each); requests per second and
# p50/p99 latency (bench-load), and the agent's RSS idle and after the load.
# Release code (the release profile).
#
#   ./bench/agent.sh [CLIENTS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-50}
seconds=${2:-10}
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release --locked -q -p clan-cli -p bench-load
bin=$PWD/target/release
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

# A clan whose machine has 10 services, each a state with a folder and a unit.
states=""
for i in $(seq -w 1 10); do
  mkdir -p "$work/data/app$i"
  head -c 100000 /dev/urandom > "$work/data/app$i/file"
  states+="clan.core.state.app$i = { folders = [ \"$work/data/app$i\" ]; services = [ \"app$i.service\" ]; }; "
done
mkdir -p "$work/clan"
cat > "$work/clan/clan.nix" <<NIX
{ meta.name = "bench"; inventory.machines.m = { }; machines.m = { ... }: { $states }; }
NIX
token=$(cd "$work/clan" && "$bin/clan" agent token create --device bench --data-dir "$work/agent" 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work/clan" && exec "$bin/clan" agent serve --listen "127.0.0.1:$port" --machine m \
   --data-dir "$work/agent" --log-level warn) &
pid=$!
url="http://127.0.0.1:$port/graphql"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} END {printf "%.1f MiB (%.1f MiB its own, the rest pages of the clan binary)", r/1024, a/1024}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
"$bin/bench-load" "$url" "$token" '{ api { version } }' 1 1 >/dev/null   # warm up
idle=$(rss)
version=$("$bin/bench-load" "$url" "$token" '{ api { version } }' "$clients" "$seconds")
services=$("$bin/bench-load" "$url" "$token" '{ services { allServices { id status } } }' "$clients" "$seconds")
count=$(curl -s "$url" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"query": "{ services { allServices { id } } }"}' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["services"]["allServices"]))')
row() { python3 -c 'import json,sys; r=json.loads(sys.argv[2]); print("| %s | %.0f | %s | %s | %s |" % (sys.argv[1], r["rps"], r["p50_ms"], r["p99_ms"], r["requests"]))' "$1" "$2"; }
echo "| query ($clients clients, ${seconds} s, loopback) | requests/s | p50 (ms) | p99 (ms) | requests |"
echo "|---|---|---|---|---|"
row '`{ api { version } }`' "$version"
row "\`{ services { allServices { id status } } }\` ($count services)" "$services"
echo
echo "agent RSS: idle $idle; after the load $(rss); peak $(hwm) MiB"
