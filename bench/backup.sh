#!/usr/bin/env bash
# Backup and restore, side by side in one run: `cp -a` (the copy limit), the restic
# CLI and clan's restic provider (the embedded engine); on request clan's local
# provider (hard-linked snapshots), borg through clan and the borg CLI. For each:
# initial backup, unchanged re-run, re-run after a 1% change, full restore (the
# CLIs': first repetition only), and clan's restore drill (first repetition); wall
# time, CPU time, peak RSS, repository size. Every step starts with cold caches
# (when the kernel lets us drop them) and ends with `sync`; every restore is
# verified against its source (names, types, sizes, modes, owners, mtimes, link
# targets and contents) before its time counts. Each measurement is
# repeated REPS times (default 3) on fresh repositories; the tables show medians
# and ranges. Two shapes of data, one after the other (see bench/README.md):
# `mixed` (2.1 GB: small text files and large files) and `tiny` (0.8 GB: 80,000
# files under 4 KiB and two disk images). Each repetition also times `find -printf`
# over the dataset: reading every file's metadata, the limit of an unchanged
# re-run. Needs root (to drop caches), restic, GNU time, python3 (and borg for
# the borg tools).
#
#   ./bench/backup.sh [REPS]          # writes target/bench/results.md and prints it
#   BENCH_DIVISOR=20 ./bench/backup.sh 1   # a quick try on 1/20 of the data
#   BENCH_TOOLS="restic clan-restic clan-local" ./bench/backup.sh   # also clan's local provider
#   BENCH_TOOLS="restic borg clan-restic clan-borg clan-local" ./bench/backup.sh
#       # every tool: borg is slow (both borg tools take as long as the rest together;
#       # 33 min of measurements instead of about 16), so it is not in the default set
#   BENCH_SHAPES=tiny ./bench/backup.sh 1   # one shape only
#   BENCH_TOOLS="restic clan-restic clan-restic-rc" ./bench/backup.sh 1   # also the engine with
#       # rustic_core's archiver instead of its own
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
divisor=${BENCH_DIVISOR:-1}
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo build --release --locked -q -p clan-cli -p bench-dataset
bin=$PWD/target/release
W=${BENCH_DIR:-$PWD/target/bench}

# rm -rf, 16 unlinks at a time: deleting a restored mixed tree took 9.5 s, this 6–7 s
# (a disk mounted with `discard`, which frees every file's blocks one by one).
wipe() {
  [ -e "$1" ] || return 0
  find "$1" ! -type d -print0 | xargs -0 -r -P 16 -n 200 rm -f
  rm -rf "$1"
}
wipe "$W"
mkdir -p "$W"
# The dataset, its copy, a restore and five repositories at once: ~16 GiB at full size.
need=$((16 * 1024 * 1024 / divisor))
avail=$(df -Pk "$W" | awk 'NR == 2 { print $4 }')
if [ "$avail" -lt "$need" ]; then
  echo "error: $W has $((avail / 1024)) MiB free; the benchmark needs $((need / 1024)) MiB (set BENCH_DIR to a larger disk)" >&2
  exit 1
fi
src=$W/data
raw=$W/raw.tsv
log=$W/log
mkdir -p "$log"
printf 'shape\ttool\tstep\trep\twall\tcpu\trss_kib\trepo_bytes\n' >"$raw"

say() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }


if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
  caches="dropped before every step"
  drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
else
  caches="NOT dropped (the kernel refused: not root?); numbers are warm-cache"
  drop() { sync; }
fi

umask 077
echo "bench repository password" >"$W/password"
umask 022
export RESTIC_PASSWORD_FILE=$W/password
export BORG_PASSCOMMAND="cat $W/password" BORG_BASE_DIR=$W/borg-base
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

# The clan: one machine (this one) whose state is the dataset, with three providers.
mkdir -p "$W/clan"
cat >"$W/clan/clan.nix" <<NIX
{
  meta.name = "bench";
  inventory.machines.bench = { machineClass = "linux"; };
  machines.bench = { ... }: {
    clan.core.state.data.folders = [ "$src" ];
    clan.core.backups.stagingDirectory = "$W/staging";
    clan.core.backups.providers = {
      restic = { type = "restic"; repository = "$W/repo/clan-restic"; passwordFile = "$W/password"; };
      restic-rc = { type = "restic"; repository = "$W/repo/clan-restic-rc"; passwordFile = "$W/password"; };
      borg = { type = "borg"; destinations.local.repo = "$W/repo/clan-borg"; passphraseFile = "$W/password"; };
      local = { type = "local"; directory = "$W/repo/clan-local"; snapshots = 5; };
    };
  };
}
NIX
clan() { "$bin/clan" --dir "$W/clan" "$@"; }
# The same machine described in JSON (inventory.json and the machine's
# configuration.json), which clan reads without Nix: its unchanged re-run is the
# backup alone, without evaluating clan.nix, as a machine's backup timer runs it.
mkdir -p "$W/clan-json/machines/bench"
echo '{"meta": {"name": "bench"}, "machines": {"bench": {"machineClass": "linux"}}}' >"$W/clan-json/inventory.json"
cat >"$W/clan-json/machines/bench/configuration.json" <<JSON
{"clan": {"core": {
  "state": {"data": {"folders": ["$src"]}},
  "backups": {"stagingDirectory": "$W/staging", "providers": {
    "restic": {"type": "restic", "repository": "$W/repo/clan-restic", "passwordFile": "$W/password"}}}}}}
JSON
clan_json() { "$bin/clan" --dir "$W/clan-json" "$@"; }
# The engine keeps repository keys between runs (in /run for root); a reboot
# empties that folder.
forget_keys() {
  if [ "$(id -u)" = 0 ]; then rm -rf /run/clan/keys; else rm -rf "${XDG_RUNTIME_DIR:-/nonexistent}/clan/keys"; fi
}

# measure TOOL STEP REP COMMAND...: cold caches, then COMMAND followed by sync,
# under GNU time. stdout goes to $log/TOOL-STEP-REP.out.
measure() {
  local tool=$1 step=$2 rep=$3
  shift 3
  drop
  local out=$log/$shape-$tool-$step-$rep
  /usr/bin/time -f '%e %U %S %M' -o "$out.time" bash -c '"$@" && sync' _ "$@" >"$out.out" 2>"$out.err" ||
    { say "FAILED: $tool $step (see $out.err)"; cat "$out.err" >&2; exit 1; }
  read -r wall user sys rss <"$out.time"
  local size=""
  [ "$step" = change ] && [ -e "$W/repo/$tool" ] && size=$(du -sb "$W/repo/$tool" | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shape" "$tool" "$step" "$rep" "$wall" \
    "$(awk "BEGIN { print $user + $sys }")" "$rss" "$size" >>"$raw"
  say "$shape $tool $step: ${wall}s"
}

backup() { # backup TOOL: one backup of $src into TOOL's repository
  case $1 in
    restic) restic -q -r "$W/repo/restic" --cache-dir "$W/cache/restic" backup "$src" ;;
    borg) borg create "$W/repo/borg::$(date +%s%N)" "$src" ;;
    clan-restic-rc) CLAN_BENCH_RUSTIC_CORE_ARCHIVER=1 clan backups create bench --local --provider restic-rc ;;
    clan-*) clan backups create bench --local --provider "${1#clan-}" ;;
  esac
}

restore() { # restore TOOL DIR: the latest backup into DIR (files at DIR/$src)
  case $1 in
    restic) restic -q -r "$W/repo/restic" --cache-dir "$W/cache/restic" restore latest --target "$2" ;;
    borg) mkdir -p "$2" && cd "$2" && borg extract "$W/repo/borg::$(borg list --last 1 --short "$W/repo/borg")" ;;
    clan-*) clan backups restore bench --local "${1#clan-}" "$(tail -n 1 "$log/$shape-$1-change-$rep.out")" --target "$2" ;;
  esac
}

export W src log bin shape
export -f backup restore clan clan_json

# What a tree holds: one line per entry (everything but atime/ctime) with its contents' hash.
fingerprint() { "$bin/bench-dataset" fingerprint "$1"; }

# clan local (hard-linked copies) is measured on request, like borg: it took a
# quarter of a default run and is not what the engine's numbers are compared with.
read -ra tools <<<"${BENCH_TOOLS:-restic clan-restic}"
read -ra shapes <<<"${BENCH_SHAPES:-mixed tiny}"
sizes=$W/sizes.tsv
: >"$sizes"
for shape in "${shapes[@]}"; do
wipe "$src"
say "generating the $shape dataset (seed 42, divisor $divisor)"
"$bin/bench-dataset" generate "$src" 42 "$divisor" "$shape"
# Sizes from a fingerprint (the tree is still in the page cache): bytes and files.
# Its cache lets each change's fingerprint read only the files the change wrote.
rm -f "$W/source.fp-cache"
read -r size files < <("$bin/bench-dataset" fingerprint "$src" "$W/source.fp-cache" |
  awk -F '\t' '$2 == "f" { n++; s += $3 } END { printf "%d %d\n", s, n }')
say "dataset: $size bytes, $files files"
printf '%s\t%s\t%s\n' "$shape" "$size" "$files" >>"$sizes"
for rep in $(seq 1 "$reps"); do
  export rep shape
  say "== $shape: repetition $rep of $reps"
  for d in repo cache borg-base staging; do wipe "$W/$d"; done
  mkdir -p "$W/repo" "$W/cache"
  restic -q -r "$W/repo/restic" init >/dev/null
  case " ${tools[*]} " in *" borg "*) borg init -e repokey "$W/repo/borg" 2>/dev/null ;; esac

  # The copy is deleted at the end of the repetition, while the last restore is checked.
  measure cp-a copy "$rep" cp -a "$src" "$W/copy"
  measure find metadata "$rep" find "$src" -printf '%s %T@\n'
  for t in "${tools[@]}"; do measure "$t" initial "$rep" backup "$t"; done
  for t in "${tools[@]}"; do measure "$t" unchanged "$rep" backup "$t"; done
  case " ${tools[*]} " in *" clan-restic "*)
    measure clan-restic-json unchanged "$rep" clan_json backups create bench --local --provider restic
    # As the first run after a reboot: the repository key derived again (scrypt).
    forget_keys
    measure clan-restic-newkey unchanged "$rep" clan_json backups create bench --local --provider restic ;;
  esac
  "$bin/bench-dataset" change "$src" "$rep"
  "$bin/bench-dataset" fingerprint "$src" "$W/source.fp-cache" >"$W/expected"
  for t in "${tools[@]}"; do measure "$t" change "$rep" backup "$t"; done
  # The restore drill of each clan provider: the same restore into a scratch
  # directory, checked against the backup's own record. In the first repetition
  # only: a drill takes about as long as the restore (its table shows the ratio).
  if [ "$rep" = 1 ]; then
    for t in "${tools[@]}"; do
      case $t in clan-*) measure "$t" drill "$rep" clan backups drill bench --local --provider "${t#clan-}" ;; esac
    done
  fi
  # The CLIs' restores are the reference for time and memory, not a target:
  # measured in the first repetition only (as the drill), they took 2 min of a run.
  restored=()
  for t in "${tools[@]}"; do
    case $t in clan-*) restored+=("$t") ;; *) [ "$rep" != 1 ] || restored+=("$t") ;; esac
  done
  for t in "${restored[@]}"; do
    wipe "$W/restore"
    measure "$t" restore "$rep" restore "$t" "$W/restore"
    # Nothing is measured after the last restore: the copy and the repositories
    # are deleted while it is checked (deleting 40,000 files takes 4-6 s here).
    if [ "$t" = "${restored[-1]}" ]; then
      { wipe "$W/copy"; for d in repo cache borg-base staging; do wipe "$W/$d"; done; } &
    fi
    fingerprint "$W/restore$src" >"$W/got"
    if ! cmp -s "$W/expected" "$W/got"; then
      say "restore of $t differs from its source:"
      diff "$W/expected" "$W/got" | head -20 >&2
      exit 1
    fi
  done
  wipe "$W/restore"
  wait
  wipe "$W/copy"
done
done
wipe "$src"

python3 - "$raw" "$W/results.md" "$reps" "$caches" "$sizes" <<'PY'
import csv, statistics, sys, platform, os
raw, out, reps, caches, sizes = sys.argv[1:]
rows = list(csv.DictReader(open(raw), delimiter="\t"))
cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" :\t")
lines = [
    f"Machine: {os.cpu_count()} × {cpu}, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB RAM, "
    f"Linux {platform.release()}. Medians of {reps} runs, (min–max) where they differ by 5% or more; "
    f"caches {caches}; every step ends with `sync`. The CLIs' restores (the reference) and clan's "
    f"drill: the first repetition only.",
]
names = {"restic": "restic CLI", "borg": "borg CLI", "clan-restic": "clan restic (embedded)",
         "clan-restic-rc": "clan restic, rustic_core's archiver",
         "clan-borg": "clan borg", "clan-local": "clan local",
         "clan-restic-json": "clan restic (embedded) with the clan in JSON (no Nix evaluation)",
         "clan-restic-newkey": "the same with the repository key derived again (as after a reboot)"}
for shape, size, files in csv.reader(open(sizes), delimiter="\t"):
    def vals(tool, step, key):
        return [float(r[key]) for r in rows
                if r["shape"] == shape and r["tool"] == tool and r["step"] == step and r[key]]
    def med(tool, step, key):
        v = vals(tool, step, key)
        return statistics.median(v) if v else None
    def wall(tool, step):
        v = vals(tool, step, "wall")
        m = statistics.median(v)
        spread = f" ({min(v):.2f}–{max(v):.2f})" if max(v) >= 1.05 * min(v) else ""
        return f"{m:.2f}{spread}"
    def ratio(tool, step, ref_tool, ref_step):
        """Median of the per-repetition ratios, with their range."""
        a = {r["rep"]: float(r["wall"]) for r in rows if r["shape"] == shape and r["tool"] == tool and r["step"] == step}
        b = {r["rep"]: float(r["wall"]) for r in rows if r["shape"] == shape and r["tool"] == ref_tool and r["step"] == ref_step}
        v = [a[k] / b[k] for k in a if k in b and b[k] > 0]
        if not v:
            return ""
        m = statistics.median(v)
        return f"{m:.2f} ({min(v):.2f}–{max(v):.2f})" if max(v) >= 1.05 * min(v) else f"{m:.2f}"
    lines += [
        "",
        f"**{shape}**: {int(size) / 2**30:.2f} GiB in {files} files (`bench-dataset generate DIR 42 1 {shape}`).",
        "",
        "| tool | step | wall (s) | × cp -a | × restic | CPU (s) | peak RSS (MiB) | repository (MiB) |",
        "|---|---|---|---|---|---|---|---|",
        f"| cp -a | copy | {wall('cp-a', 'copy')} | 1.00 | {ratio('cp-a', 'copy', 'restic', 'initial')} | "
        f"{med('cp-a', 'copy', 'cpu'):.1f} | {med('cp-a', 'copy', 'rss_kib') / 1024:.0f} | |",
        f"| find -printf | metadata | {wall('find', 'metadata')} | {ratio('find', 'metadata', 'cp-a', 'copy')} | "
        f"{ratio('find', 'metadata', 'restic', 'unchanged')} | {med('find', 'metadata', 'cpu'):.1f} | "
        f"{med('find', 'metadata', 'rss_kib') / 1024:.0f} | |",
    ]
    for tool, name in names.items():
        if med(tool, "initial", "wall") is None:
            continue
        for step in ["initial", "unchanged", "change", "restore"]:
            repo = med(tool, step, "repo_bytes") if step == "change" else None
            lines.append(
                f"| {name} | {'after 1% change' if step == 'change' else step} | {wall(tool, step)} | "
                f"{ratio(tool, step, 'cp-a', 'copy')} | {ratio(tool, step, 'restic', step)} | {med(tool, step, 'cpu'):.1f} | "
                f"{med(tool, step, 'rss_kib') / 1024:.0f} | {'' if repo is None else f'{repo / 2**20:.0f}'} |")
    unchanged = [f"{names[t]} {ratio(t, 'unchanged', 'find', 'metadata')}" for t in names
                 if med(t, "unchanged", "wall") is not None]
    lines += ["", "Unchanged re-run ÷ reading the metadata (`find -printf`): " + ", ".join(unchanged) + "."]
    drills = [t for t in names if med(t, "drill", "wall") is not None]
    if drills:
        lines += ["", "The restore drill, in the first repetition only (the restore: all repetitions):", "",
                  "| provider | restore (s) | drill (s) | drill ÷ restore | restore peak RSS (MiB) | drill peak RSS (MiB) |",
                  "|---|---|---|---|---|---|"]
        for t in drills:
            lines.append(f"| {names[t]} | {wall(t, 'restore')} | {wall(t, 'drill')} | {ratio(t, 'drill', t, 'restore')} | "
                         f"{med(t, 'restore', 'rss_kib') / 1024:.0f} | {med(t, 'drill', 'rss_kib') / 1024:.0f} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
say "raw numbers: $raw; table: $W/results.md"
