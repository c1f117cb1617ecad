//! Setting up a Linux machine (any distribution with systemd) from its resolved
//! configuration, on the machine: /etc/clan/machine.json, users, the admins' SSH
//! keys, the SSH host keys from the clan's vars, borg repositories for its backup
//! clients, and backup timers.
//!
//! Every step converges: running it twice changes nothing the second time. Keys
//! are only ever added to root's authorized_keys, never removed, so an update
//! cannot lock the admin out.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clan_backup::{Event, Reporter};
use clan_core::ResolvedMachine;
use clan_core::machine::{AgentConfig, BorgClient, KeyRef, User, VarFile};
use clan_core::process::Cmd;

use crate::serve::SECRETS_DIR;

pub const CONFIG_FILE: &str = "/etc/clan/machine.json";
const UNIT_DIR: &str = "/etc/systemd/system";
const UNIT_PREFIX: &str = "clan-backup-";
const DRILL_PREFIX: &str = "clan-drill-";
const AGENT_UNIT: &str = "clan-agent.service";

type Result<T> = std::result::Result<T, String>;

fn step(reporter: &dyn Reporter, step: impl Into<String>) {
    reporter.report(Event::Step {
        provider: None,
        step: step.into(),
    });
}

fn run(cmd: Cmd) -> Result<String> {
    cmd.run()
        .map(|o| o.stdout_string())
        .map_err(|e| e.to_string())
}

pub(crate) fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let fail = |e: std::io::Error| format!("writing {}: {e}", path.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    std::fs::write(tmp.path(), content).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Writes the configuration the runtime's timers and restores read (on NixOS
/// machines the only part of `apply` that is not in the system).
pub fn configure(m: &ResolvedMachine, reporter: &dyn Reporter) -> Result<Vec<String>> {
    step(reporter, format!("writing {CONFIG_FILE}"));
    let json = serde_json::to_vec_pretty(m).expect("serialisable");
    if std::fs::read(CONFIG_FILE).ok().as_deref() == Some(&json[..]) {
        return Ok(Vec::new());
    }
    write_file(Path::new(CONFIG_FILE), &json, 0o600)?;
    Ok(vec![CONFIG_FILE.to_string()])
}

/// Sets the machine up; returns what it changed, one line each.
pub fn apply(m: &ResolvedMachine, reporter: &dyn Reporter) -> Result<Vec<String>> {
    let mut changed = configure(m, reporter)?;
    for (name, user) in &m.clan_core.users {
        step(reporter, format!("user {name}"));
        changed.extend(ensure_user(name, user)?);
    }
    let root_keys: Vec<String> = m.clan_core.sshd.authorized_keys.values().cloned().collect();
    if !root_keys.is_empty() {
        step(reporter, "admin keys for root");
        if add_keys(Path::new("/root/.ssh/authorized_keys"), &root_keys, 0, 0)? {
            changed.push("/root/.ssh/authorized_keys".into());
        }
    }
    if let Some(h) = &m.clan_core.sshd.host_keys {
        step(reporter, "SSH host keys from the clan's vars");
        changed.extend(host_keys(&h.generator)?);
    }
    // Only a borg server has clients (a machine.json of an older clan gave every
    // client `"server": {"clients": null}`).
    if let Some(server) = &m.clan_core.borgbackup.server
        && let Some(clients) = &server.clients
    {
        step(reporter, "borg repositories for the backup clients");
        changed.extend(borg_server(&server.directory, clients)?);
    }
    step(reporter, "backup timers");
    changed.extend(timers(&m.clan_core.backups.providers)?);
    step(reporter, "the machine agent");
    if let Some(tz) = &m.clan_core.timezone {
        step(reporter, format!("time zone {tz}"));
        changed.extend(timezone(tz)?);
    }
    changed.extend(agent(m.clan_core.agent.as_ref())?);
    if Path::new(SECRETS_DIR).is_dir() {
        // Secrets may belong to users created just now.
        clan_vars::upload::reapply_ownership(Path::new(SECRETS_DIR))
            .map_err(|e| format!("setting owners in {SECRETS_DIR}: {e}"))?;
    }
    Ok(changed)
}

/// Installs the host keys generated in the clan's vars (deployed as secrets) as
/// sshd's, and reloads sshd when they changed: the machine keeps its identity
/// across reinstalls, and the admin's clan verifies it by these keys (they are
/// pinned for every connection it makes). Connections that are open stay open.
fn host_keys(generator: &str) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for kind in ["ed25519", "rsa"] {
        let secret = Path::new(SECRETS_DIR)
            .join("vars")
            .join(generator)
            .join(format!("ssh.id_{kind}"));
        let Ok(key) = std::fs::read(&secret) else {
            continue;
        };
        let public = run(Cmd::new("ssh-keygen").arg("-y").arg("-f").arg(&secret))?;
        let path = PathBuf::from(format!("/etc/ssh/ssh_host_{kind}_key"));
        let pub_path = path.with_extension("pub");
        if std::fs::read(&path).ok().as_deref() == Some(&key[..])
            && std::fs::read_to_string(&pub_path).ok().as_deref() == Some(public.as_str())
        {
            continue;
        }
        write_file(&path, &key, 0o600)?;
        write_file(&pub_path, public.as_bytes(), 0o644)?;
        changed.push(path.display().to_string());
    }
    if !changed.is_empty() && systemd_running() {
        let unit = ["ssh.service", "sshd.service"].into_iter().find(|u| {
            run(Cmd::new("systemctl").args(["show", "-P", "LoadState", u]))
                .is_ok_and(|s| s.trim() == "loaded")
        });
        match unit {
            Some(unit) => {
                run(Cmd::new("systemctl").args(["reload-or-restart", unit]))?;
            }
            None => changed.push("sshd uses the new host keys once it restarts".into()),
        }
    }
    Ok(changed)
}

/// (uid, gid, home) of `name` from /etc/passwd.
fn passwd_entry(name: &str) -> Option<(u32, u32, PathBuf)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[0] == name)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?, PathBuf::from(f[5]))))?
    })
}

fn group_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/group")
        .is_ok_and(|t| t.lines().any(|l| l.split(':').next() == Some(name)))
}

fn ensure_user(name: &str, user: &User) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    if passwd_entry(name).is_none() {
        let mut cmd = Cmd::new("useradd");
        cmd = if user.regular_user.unwrap_or(true) {
            cmd.args(["--create-home", "--user-group", "--shell", "/bin/bash"])
        } else {
            cmd.args(["--system", "--user-group"])
        };
        run(cmd.arg(name))?;
        changed.push(format!("user {name} created"));
    }
    let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
    for g in &groups {
        if !group_exists(g) {
            run(Cmd::new("groupadd").arg(g))?;
        }
    }
    if !groups.is_empty() {
        run(Cmd::new("usermod").args(["--append", "--groups", &groups.join(","), name]))?;
    }
    if let Some(VarFile { generator, file }) = &user.password_hash {
        let path = Path::new(SECRETS_DIR)
            .join("vars")
            .join(generator)
            .join(file);
        let hash = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "user {name}: reading the password hash {}: {e} (the secrets are installed by `clan machines update`)",
                path.display()
            )
        })?;
        if shadow_hash(name).as_deref() != Some(hash.trim()) {
            // On stdin: a password hash is a secret.
            run(Cmd::new("chpasswd")
                .arg("--encrypted")
                .stdin(format!("{name}:{}\n", hash.trim())))?;
            changed.push(format!("user {name}: password set"));
        }
    }
    let keys = &user.authorized_keys;
    if !keys.is_empty() {
        let (uid, gid, home) =
            passwd_entry(name).ok_or_else(|| format!("user {name} is not in /etc/passwd"))?;
        let file = home.join(".ssh/authorized_keys");
        if add_keys(&file, keys, uid, gid)? {
            changed.push(file.display().to_string());
        }
    }
    Ok(changed)
}

fn shadow_hash(name: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/shadow").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.next().map(str::to_string))?
    })
}

/// Adds the keys not yet in `file`; true when it changed.
fn add_keys(file: &Path, keys: &[String], uid: u32, gid: u32) -> Result<bool> {
    let old = std::fs::read_to_string(file).unwrap_or_default();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !old.lines().any(|l| l.trim() == k.trim()))
        .collect();
    if missing.is_empty() {
        return Ok(false);
    }
    let mut text = old.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    missing.iter().for_each(|k| {
        text.push_str(k.trim());
        text.push('\n');
    });
    let dir = file.parent().expect("a file in .ssh");
    let fresh_dir = !dir.exists();
    write_file(file, text.as_bytes(), 0o600)?;
    chown(file, uid, gid)?;
    if fresh_dir {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        chown(dir, uid, gid)?;
    }
    Ok(true)
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", path.display()))
}

/// The `borg` user, a repository directory per client, and one authorized_keys
/// line per client that can only run `borg serve` in its own directory.
fn borg_server(directory: &str, clients: &BTreeMap<String, BorgClient>) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    if Cmd::new("borg").arg("--version").run().is_err() {
        return Err("borg is not installed on this machine; install it (e.g. `apt-get install borgbackup`) and update again".into());
    }
    let dir = PathBuf::from(directory);
    if passwd_entry("borg").is_none() {
        run(Cmd::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--shell",
                "/bin/sh",
                "--home-dir",
            ])
            .arg(&dir)
            .arg("borg"))?;
        changed.push("user borg created".into());
    }
    let (uid, gid, _) = passwd_entry("borg").ok_or("user borg is not in /etc/passwd")?;
    let mkdir = |d: &Path| -> Result<()> {
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", d.display()))?;
        chown(d, uid, gid)
    };
    mkdir(&dir)?;
    mkdir(&dir.join(".ssh"))?;
    let mut lines = String::new();
    for (client, c) in clients {
        let path = c
            .path
            .as_deref()
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join(client));
        mkdir(&path)?;
        let Some(KeyRef::Key(key)) = &c.authorized_key else {
            return Err(format!(
                "client {client}: its public key is missing; run `clan vars generate {client}` and update again"
            ));
        };
        let path = path.display().to_string().replace('"', "");
        // The client's key may only add archives (unless the server opts out); the
        // admin's key for this client may also prune.
        let append_only = if c.append_only { " --append-only" } else { "" };
        lines.push_str(&format!(
            "command=\"borg serve{append_only} --restrict-to-path {path}\",restrict {}\n",
            key.trim()
        ));
        if let Some(KeyRef::Key(admin)) = &c.admin_key {
            lines.push_str(&format!(
                "command=\"borg serve --restrict-to-path {path}\",restrict {}\n",
                admin.trim()
            ));
        }
    }
    let keys = dir.join(".ssh/authorized_keys");
    if std::fs::read_to_string(&keys).ok().as_deref() != Some(lines.as_str()) {
        write_file(&keys, lines.as_bytes(), 0o600)?;
        chown(&keys, uid, gid)?;
        changed.push(keys.display().to_string());
    }
    Ok(changed)
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// A timer per provider with `startAt`, running the backup then the prune, and one
/// per provider with a drill schedule (`drillAt`), running the drill at idle CPU
/// and IO priority; timers of providers that are gone are removed.
fn timers(providers: &BTreeMap<String, clan_backup::ProviderConfig>) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    let mut wanted = Vec::new();
    for (name, p) in providers {
        let mut units = Vec::new();
        if let Some(at) = p.start_at() {
            let service = format!(
                "[Unit]\nDescription=clan backup of this machine to provider {name}\n\
                 After=network-online.target\nWants=network-online.target\n\n\
                 [Service]\nType=oneshot\nExecStart={} __runtime --timer {name}\n",
                crate::binary::LINK
            );
            units.push((
                format!("{UNIT_PREFIX}{name}"),
                "startAt",
                at,
                "backup to",
                service,
            ));
        }
        if let Some(at) = p.drill_at() {
            let service = format!(
                "[Unit]\nDescription=clan restore drill of provider {name}\n\
                 After=network-online.target\nWants=network-online.target\n\n\
                 [Service]\nType=oneshot\nNice=19\nIOSchedulingClass=idle\n\
                 ExecStart={} __runtime --drill {name}\n",
                crate::binary::LINK
            );
            units.push((
                format!("{DRILL_PREFIX}{name}"),
                "drillAt",
                at,
                "restore drill of",
                service,
            ));
        }
        for (unit, option, at, what, service) in units {
            // Checked at resolution on the admin's machine; again here, where systemd is.
            clan_core::calendar::check(at)
                .map_err(|e| format!("clan.core.backups.providers.{name}.{option}: {e}"))?;
            wanted.push(unit.clone());
            let timer = format!(
                "[Unit]\nDescription=clan {what} {name}: {at}\n\n\
                 [Timer]\nOnCalendar={at}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n"
            );
            for (file, text) in [
                (format!("{unit}.service"), service),
                (format!("{unit}.timer"), timer),
            ] {
                let path = Path::new(UNIT_DIR).join(&file);
                if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                    write_file(&path, text.as_bytes(), 0o644)?;
                    changed.push(path.display().to_string());
                }
            }
        }
    }
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(UNIT_DIR).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(unit) = file
            .strip_suffix(".timer")
            .or_else(|| file.strip_suffix(".service"))
        else {
            continue;
        };
        if (unit.starts_with(UNIT_PREFIX) || unit.starts_with(DRILL_PREFIX))
            && !wanted.iter().any(|w| w == unit)
        {
            stale.push((unit.to_string(), entry.path()));
        }
    }
    if !systemd_running() {
        return Ok(changed);
    }
    for (unit, _) in &stale {
        let _ = run(Cmd::new("systemctl").args(["disable", "--now", &format!("{unit}.timer")]));
    }
    for (_, path) in &stale {
        std::fs::remove_file(path).map_err(|e| format!("removing {}: {e}", path.display()))?;
        changed.push(format!("{} removed", path.display()));
    }
    run(Cmd::new("systemctl").arg("daemon-reload"))?;
    for unit in &wanted {
        run(Cmd::new("systemctl").args(["enable", "--now", &format!("{unit}.timer")]))?;
    }
    Ok(changed)
}

/// The agent's unit text: it runs this very build (so a new build changes the unit
/// and restarts the agent) and restarts after failures.
fn agent_unit(c: &AgentConfig, exe: &str) -> Result<String> {
    let listen: std::net::SocketAddr = c
        .listen
        .parse()
        .map_err(|e| format!("clan.core.agent.listen {:?}: {e}", c.listen))?;
    let mut args = format!("agent serve --listen {listen} --log-level {}", c.log_level);
    match (&c.tls_certificate, &c.tls_key) {
        (Some(cert), Some(key)) => {
            for (name, path) in [("tlsCertificate", cert), ("tlsKey", key)] {
                // Plain absolute paths only: the unit's command line is not quoted.
                if !path.starts_with('/')
                    || path.contains(|ch: char| ch.is_whitespace() || "\"'\\$%;".contains(ch))
                {
                    return Err(format!(
                        "clan.core.agent.{name} {path:?}: give an absolute path without spaces, quotes, '$', '%' or ';'"
                    ));
                }
            }
            args.push_str(&format!(" --tls-certificate {cert} --tls-key {key}"));
        }
        (None, None) => {}
        _ => return Err("clan.core.agent: give both tlsCertificate and tlsKey, or neither".into()),
    }
    if !["error", "warn", "info", "debug"].contains(&c.log_level.as_str()) {
        return Err(format!(
            "clan.core.agent.logLevel {:?}: one of error, warn, info, debug",
            c.log_level
        ));
    }
    Ok(format!(
        "[Unit]\nDescription=clan agent: the API of this machine\n\
         After=network-online.target\nWants=network-online.target\n\n\
         [Service]\nExecStart={exe} {args}\nRestart=on-failure\nRestartSec=2\n\
         KillMode=mixed\nTimeoutStopSec=15min\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    ))
}

/// Points /etc/localtime at the zone's file and writes /etc/timezone (as
/// `timedatectl set-timezone` does, without needing systemd-timedated).
fn timezone(tz: &str) -> Result<Vec<String>> {
    let zone = Path::new("/usr/share/zoneinfo").join(tz);
    if tz.split('/').any(|p| p.is_empty() || p == "." || p == "..") || !zone.is_file() {
        return Err(format!(
            "clan.core.timezone {tz:?}: no such time zone here ({} is missing; install tzdata)",
            zone.display()
        ));
    }
    let mut changed = Vec::new();
    let localtime = Path::new("/etc/localtime");
    if std::fs::read_link(localtime).ok().as_deref() != Some(zone.as_path()) {
        let tmp = Path::new("/etc/.localtime.clan");
        let _ = std::fs::remove_file(tmp);
        let fail =
            |e: std::io::Error| format!("pointing /etc/localtime at {}: {e}", zone.display());
        std::os::unix::fs::symlink(&zone, tmp).map_err(fail)?;
        std::fs::rename(tmp, localtime).map_err(fail)?;
        changed.push(format!("/etc/localtime -> {}", zone.display()));
    }
    let text = format!("{tz}\n");
    if std::fs::read_to_string("/etc/timezone").ok().as_deref() != Some(text.as_str()) {
        write_file(Path::new("/etc/timezone"), text.as_bytes(), 0o644)?;
        changed.push("/etc/timezone".into());
    }
    Ok(changed)
}

/// Whether this process runs in the agent's unit (the agent applies its machine).
fn inside_agent() -> bool {
    std::fs::read_to_string("/proc/self/cgroup")
        .is_ok_and(|c| c.lines().any(|l| l.ends_with(&format!("/{AGENT_UNIT}"))))
}

/// Installs, starts and (when its unit changed) restarts `clan-agent.service`; or
/// removes it when the machine has no agent any more.
fn agent(config: Option<&AgentConfig>) -> Result<Vec<String>> {
    let path = Path::new(UNIT_DIR).join(AGENT_UNIT);
    let mut changed = Vec::new();
    let Some(c) = config else {
        if path.exists() {
            if systemd_running() {
                let _ = run(Cmd::new("systemctl").args(["disable", "--now", AGENT_UNIT]));
            }
            std::fs::remove_file(&path).map_err(|e| format!("removing {}: {e}", path.display()))?;
            if systemd_running() {
                run(Cmd::new("systemctl").arg("daemon-reload"))?;
            }
            changed.push(format!("{} removed", path.display()));
        }
        return Ok(changed);
    };
    let installed = crate::binary::remote_path().map_err(|e| e.to_string())?;
    let exe = if Path::new(&installed).is_file() {
        installed
    } else {
        std::env::current_exe()
            .map_err(|e| format!("finding this clan binary: {e}"))?
            .display()
            .to_string()
    };
    let unit = agent_unit(c, &exe)?;
    let new = std::fs::read_to_string(&path).ok().as_deref() != Some(unit.as_str());
    if new {
        write_file(&path, unit.as_bytes(), 0o644)?;
        changed.push(path.display().to_string());
    }
    if systemd_running() {
        if new {
            run(Cmd::new("systemctl").arg("daemon-reload"))?;
        }
        run(Cmd::new("systemctl").args(["enable", AGENT_UNIT]))?;
        let verb = if new { "restart" } else { "start" };
        if new && inside_agent() {
            // The agent runs this update (system.runSystemRebuild): it restarts once
            // its jobs have ended (KillMode=mixed: only it gets SIGTERM), so the
            // update's own job is recorded first.
            run(Cmd::new("systemctl").args(["--no-block", verb, AGENT_UNIT]))?;
            changed.push("the agent restarts once its jobs end".into());
        } else {
            run(Cmd::new("systemctl").args([verb, AGENT_UNIT]))?;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod agent_tests {
    use super::*;

    fn config() -> AgentConfig {
        AgentConfig {
            listen: "0.0.0.0:5050".into(),
            tls_certificate: None,
            tls_key: None,
            log_level: "info".into(),
        }
    }

    #[test]
    fn the_agent_unit_runs_this_build_and_restarts_after_failures() {
        let unit = agent_unit(&config(), "/usr/local/lib/clan/clan-0.1.0-abc").unwrap();
        assert!(unit.contains("ExecStart=/usr/local/lib/clan/clan-0.1.0-abc agent serve --listen 0.0.0.0:5050 --log-level info\n"), "{unit}");
        assert!(unit.contains("Restart=on-failure"));
        assert!(unit.contains("After=network-online.target"));
        let tls = AgentConfig {
            tls_certificate: Some("/etc/ssl/agent.pem".into()),
            tls_key: Some("/etc/ssl/agent.key".into()),
            ..config()
        };
        assert!(
            agent_unit(&tls, "/x")
                .unwrap()
                .contains("--tls-certificate /etc/ssl/agent.pem --tls-key /etc/ssl/agent.key")
        );
    }

    #[test]
    fn settings_that_would_change_the_command_line_are_refused() {
        let bad = AgentConfig {
            listen: "127.0.0.1:5050 --data-dir /tmp".into(),
            ..config()
        };
        assert!(
            agent_unit(&bad, "/x")
                .unwrap_err()
                .contains("clan.core.agent.listen")
        );
        let bad = AgentConfig {
            tls_certificate: Some("/a b".into()),
            tls_key: Some("/k".into()),
            ..config()
        };
        assert!(
            agent_unit(&bad, "/x")
                .unwrap_err()
                .contains("tlsCertificate")
        );
        let half = AgentConfig {
            tls_key: Some("/k".into()),
            ..config()
        };
        assert!(agent_unit(&half, "/x").unwrap_err().contains("both"));
    }
}
