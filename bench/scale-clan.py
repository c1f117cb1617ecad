#!/usr/bin/env python3
"""A generated clan of N machines (tags, three instances) for the benchmarks, as
inventory.json (FORMAT json) or clan.nix (FORMAT nix). Usage: scale-clan.py DIR N FORMAT"""
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
