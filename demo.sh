#!/usr/bin/env bash
# The main job on the embedded default: a clan with one Linux machine (this one),
# a state holding a folder and a PostgreSQL database (a throwaway cluster this
# script starts), backed up with clan's embedded engine (restic format) to a local
# repository; then the data is damaged (a file deleted, a table dropped), restored,
# and shown to be back. Needs root (it runs PostgreSQL as the postgres user).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release --locked -q
clan="$PWD/target/release/clan"

work=$(mktemp -d /tmp/clan-demo.XXXXXX)
chmod 755 "$work"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg() { runuser -u postgres -- "$@"; }
psql_() { psql -X -q -A -t -h "$work/pg" -p 5499 -U postgres "$@"; }
cleanup() {
  pg "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -s stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '$ clan %s\n' "$*" >&2; (cd "$work/demo-clan" && "$clan" "$@"); }

say "A throwaway PostgreSQL cluster with a 'shop' database"
install -d -o postgres "$work/pg"
pg "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres --no-sync >/dev/null
pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -o "-k $work/pg -p 5499 -c listen_addresses=" -w -s start </dev/null >/dev/null 2>&1
psql_ -d postgres -c "CREATE DATABASE shop"
psql_ -d shop -c "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 1000) g"
echo "orders: $(psql_ -d shop -c 'SELECT count(*) FROM orders') rows"

say "Files the shop keeps"
mkdir -p "$work/srv/shop/invoices"
echo "Invoice 2026-001: 5000 EUR" > "$work/srv/shop/invoices/2026-001.txt"
echo "Hello World!" > "$work/srv/shop/welcome.md"
head -c 300000 /dev/urandom > "$work/srv/shop/logo.png"
ls -l "$work/srv/shop"

say "A clan describing this machine"
"$clan" init "$work/demo-clan" --name demo --domain demo.internal
(umask 077; echo "demo repository password $(date +%s%N)" > "$work/repo-password")
cat > "$work/demo-clan/clan.nix" <<NIX
{
  meta.name = "demo";
  meta.domain = "demo.internal";
  inventory.machines.shop-server = { machineClass = "linux"; deploy.targetHost = "root@localhost"; };
  inventory.instances.restic = {
    roles.client.machines.shop-server.settings = {
      repository = "$work/repository";
      passwordFile = "$work/repo-password";
    };
  };
  machines.shop-server = { ... }: {
    clan.core.state.shop = {
      folders = [ "$work/srv/shop" ];
      postgresDatabases = [ "shop" ];
    };
    clan.core.postgresql = { host = "$work/pg"; port = 5499; user = "postgres"; };
    clan.core.backups.stagingDirectory = "$work/staging";
  };
}
NIX
run inventory show shop-server

say "Back up"
name=$(run backups create shop-server)
echo "$name"
run backups list shop-server

say "Damage: delete a file, add a stray one, drop the table"
rm "$work/srv/shop/welcome.md"
echo "not in the backup" > "$work/srv/shop/stray.tmp"
psql_ -d shop -c "DROP TABLE orders"
ls "$work/srv/shop"

say "Restore"
run backups restore shop-server restic "$name"

say "Everything is back"
ls -l "$work/srv/shop"
test "$(cat "$work/srv/shop/welcome.md")" = "Hello World!"
test ! -e "$work/srv/shop/stray.tmp"
rows=$(psql_ -d shop -c 'SELECT count(*) FROM orders')
echo "orders: $rows rows"
test "$rows" = 1000
run backups check shop-server --read-data
say "The repository is readable by restic itself"
restic -r "$work/repository" --password-file "$work/repo-password" snapshots 2>/dev/null || echo "(install restic to see this)"
say "Demo passed."
