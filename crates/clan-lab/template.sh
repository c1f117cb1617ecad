#!/bin/sh
# Builds the lab's machine template: Debian bookworm with systemd, sshd,
# PostgreSQL 15, borg, rsync, sudo, git (a clan the machine holds), Nix (machines
# that stand for NixOS machines: a store and profiles, NixOS's activation by clan's
# test double). Usage: template.sh OUT_DIR
# The harness builds into a temporary directory and renames it into the cache,
# so an interrupted build is never taken for a finished one.
set -eu
R=$1
MIRROR=${CLAN_LAB_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,openssh-server,dbus,iproute2,ca-certificates \
    bookworm "$R" "$MIRROR"

# Packages: no service may start while installing (policy-rc.d), host resolver for apt.
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
chmod +x "$R/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$R/etc/resolv.conf"
chroot "$R" sh -c 'mount -t proc proc /proc; trap "umount /proc" EXIT
    apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        postgresql-15 rsync borgbackup sudo procps less git nix-bin' </dev/null
rm -f "$R/usr/sbin/policy-rc.d"
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin

# Inside the lab there is no DNS: an empty resolv.conf makes lookups fail at once
# (with the host's resolver every getfqdn() waits 10 s for an unreachable server).
: > "$R/etc/resolv.conf"
mkdir -p -m 700 "$R/root/.ssh"
# Units that make no sense in a container or would only add noise.
chroot "$R" systemctl mask console-getty.service e2scrub_reap.service systemd-pstore.service \
    apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer dpkg-db-backup.timer \
    systemd-timesyncd.service >/dev/null 2>&1 || true
# Host keys and machine-id are made per machine when it first boots.
rm -f "$R"/etc/ssh/ssh_host_*
: > "$R/etc/machine-id"
