#!/usr/bin/env bash
# The main job, as far as it exists today: create a clan with the seed's backup
# guide layout, then show how clan resolves every machine's configuration.
# (Backing up and restoring real data arrives with the backups work.)
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release --locked -q
clan="$PWD/target/release/clan"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() { printf '\n$ clan %s\n' "$*"; (cd "$work/demo-clan" && "$clan" "$@"); }

"$clan" init "$work/demo-clan" --name demo --domain demo.internal
run machines create alice-laptop --class linux --target-host root@localhost --tags laptops
run machines create backup-server --class linux --target-host root@localhost
cat > "$work/demo-clan/clan.nix" <<'NIX'
{
  meta.name = "demo";
  meta.domain = "demo.internal";
  inventory.instances = {
    borgbackup = {
      roles.client.tags.laptops = { };
      roles.server.machines.backup-server.settings.directory = "/srv/borgbackup";
    };
    user-alice = {
      module.name = "users";
      roles.default.machines.alice-laptop.settings.user = "alice";
    };
  };
  machines.alice-laptop = { ... }: {
    clan.core.state.documents.folders = [ "/home/alice/documents" ];
  };
}
NIX
run show
run machines list
run modules list
run inventory show alice-laptop
run inventory show backup-server
printf '\nThe demo clan was in %s (removed on exit).\n' "$work/demo-clan"
