//! Lab tests: real Debian machines (systemd-nspawn containers in network
//! namespaces, see clan-lab), driven by the real `clan` over SSH. Root only; one lab
//! at a time (the lab holds a lock).

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clan_lab::lab::{self, Lab};

const ALICE: &str = "alice-laptop";
const SERVER: &str = "backup-server";

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// A clan in `tmp/clan` with `clan_nix`, an admin key, and the lab's ssh config.
struct Admin {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Admin {
    fn new(tmp: &Path, lab: &Lab, clan_nix: &str) -> Self {
        let dir = tmp.join("clan");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("clan.nix"), clan_nix).unwrap();
        git(&dir, &["init", "-q"]);
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "init"]);
        let env = vec![
            (
                "CLAN_AGE_KEY_FILE".into(),
                tmp.join("admin-key.txt").display().to_string(),
            ),
            (
                "CLAN_SSH_CONFIG".into(),
                lab.ssh_config.display().to_string(),
            ),
        ];
        let admin = Admin { dir, env };
        admin.clan(&["vars", "keygen", "--name", "tester"]).ok();
        admin
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn clan(&self, args: &[&str]) -> Run {
        clan_env(&self.dir, args, &self.env())
    }

    /// `clan ARGS` running in the background.
    fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clan"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env_remove("CLAN_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }
}

fn finished(child: Child) -> Run {
    Run {
        out: child.wait_with_output().unwrap(),
    }
}

/// Waits until a process matching `pattern` (pgrep -f) runs on the machine, or
/// (`running` false) until none does.
fn wait_process(lab: &Lab, machine: &str, pattern: &str, running: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab
        .ssh_status(machine, &format!("pgrep -f '{pattern}'"))
        .status
        .success()
        != running
    {
        assert!(
            Instant::now() < deadline,
            "{pattern} running = {} on {machine} for a minute",
            !running
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The clan ssh processes (they use a ControlPath) that talk to `ip`: the
/// connection a running clan command holds.
fn clan_ssh_pids(ip: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let words: Vec<String> = c
                    .split(|b| *b == 0)
                    .map(|w| String::from_utf8_lossy(w).into_owned())
                    .collect();
                words.first().is_some_and(|w| w == "ssh")
                    && words.iter().any(|w| w.starts_with("ControlPath="))
                    && words.iter().any(|w| w.ends_with(&format!("@{ip}")))
            })
        })
        .collect()
}

fn checksums(lab: &Lab, machine: &str, dir: &str) -> String {
    lab.ssh(
        machine,
        &format!("cd {dir} && find . -type f | sort | xargs -r sha256sum"),
    )
}

#[test]
#[ignore = "needs root (network namespaces, containers); ./test.sh runs it as root"]
fn the_backup_guide_across_two_lab_machines_with_faults() {
    let mut lab = Lab::start(&lab::GUIDE_MACHINES);
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let admin = Admin::new(tmp.path(), &lab, &lab::guide_clan_nix(&lab));
    let password = tmp.path().join("alice-password");
    std::fs::write(&password, "correct horse battery staple").unwrap();
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let alice_prompt = format!("user-password-alice/user-password={}", password.display());
    let root_prompt = format!("user-password-root/user-password={}", empty.display());

    // The server first (its clients' keys are generated with it), then alice.
    let run = admin
        .clan(&[
            "machines",
            "update",
            SERVER,
            "--prompt",
            &alice_prompt,
            "--prompt",
            &root_prompt,
        ])
        .ok();
    assert!(
        run.stdout().contains("backup-server: updated")
            && run.stdout().contains("runtime installed"),
        "{}",
        run.stdout()
    );
    // The server now has the host key from the clan's vars. clan's own connections
    // accept it though the lab's known_hosts (StrictHostKeyChecking yes) holds only
    // the key the server had before.
    let server_key = admin
        .clan(&["vars", "get", SERVER, "openssh/ssh.id_ed25519.pub"])
        .ok()
        .stdout();
    let again = admin.clan(&["machines", "update", SERVER]).ok().stdout();
    assert!(
        again.contains("backup-server: updated (0 changes)"),
        "{again}"
    );
    lab.trust_host_key(SERVER, &server_key);
    assert_eq!(
        lab.ssh(SERVER, "cat /etc/ssh/ssh_host_ed25519_key.pub")
            .trim(),
        server_key.trim()
    );
    // A first connection with an empty known_hosts and clan's default policy
    // (accept-new) is verified by that key: nothing is learnt on first use.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::write(fresh.join("known_hosts"), "").unwrap();
    std::fs::write(
        fresh.join("ssh_config"),
        format!(
            "Host 10.231.0.*\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {}\n  LogLevel ERROR\n",
            lab.key.display(),
            fresh.join("known_hosts").display()
        ),
    )
    .unwrap();
    let fresh_config = fresh.join("ssh_config").display().to_string();
    let fresh_env: Vec<(&str, &str)> = admin
        .env()
        .into_iter()
        .map(|(k, v)| match k {
            "CLAN_SSH_CONFIG" => (k, fresh_config.as_str()),
            _ => (k, v),
        })
        .collect();
    let first = clan_env(&admin.dir, &["machines", "update", SERVER], &fresh_env);
    assert!(first.ok().stdout().contains("backup-server: updated"));
    assert_eq!(
        std::fs::read_to_string(fresh.join("known_hosts")).unwrap(),
        ""
    );
    let keys = lab.ssh(SERVER, "cat /var/lib/borgbackup/.ssh/authorized_keys");
    // Alice's key may only add archives; the admin's key for her repository may prune.
    let lines: Vec<&str> = keys.lines().collect();
    assert_eq!(lines.len(), 2, "{keys}");
    assert!(
        lines[0].starts_with(
            "command=\"borg serve --append-only --restrict-to-path /var/lib/borgbackup/alice-laptop\",restrict ssh-ed25519 "
        ),
        "{keys}"
    );
    assert!(
        lines[1].starts_with(
            "command=\"borg serve --restrict-to-path /var/lib/borgbackup/alice-laptop\",restrict ssh-ed25519 "
        ),
        "{keys}"
    );
    assert_eq!(
        lab.ssh(SERVER, "stat -c '%U %a' /var/lib/borgbackup/alice-laptop")
            .trim(),
        "borg 700"
    );
    admin.clan(&["machines", "update", ALICE]).ok();
    let alice_key = admin
        .clan(&["vars", "get", ALICE, "openssh/ssh.id_ed25519.pub"])
        .ok()
        .stdout();
    lab.trust_host_key(ALICE, &alice_key);
    // A client gets no borg server account.
    assert_eq!(
        lab.ssh(
            ALICE,
            "getent passwd borg >/dev/null && echo account || echo none; \
             test -e /var/lib/borgbackup && echo dir || echo no-dir"
        )
        .trim(),
        "none\nno-dir"
    );
    // Installed, configured, with its secrets and a timer for its provider.
    let on_alice = lab.ssh(
        ALICE,
        "clan --version; test -s /etc/clan/machine.json && echo config; \
         stat -c '%a %U' /var/lib/clan/secrets/vars/borgbackup/borgbackup.repokey; \
         systemctl is-enabled clan-backup-borgbackup.timer; \
         systemctl show -P TimersCalendar clan-backup-borgbackup.timer",
    );
    assert!(on_alice.starts_with("clan "), "{on_alice}");
    assert!(
        on_alice.contains("config\n400 root\nenabled\n"),
        "{on_alice}"
    );
    assert!(on_alice.contains("OnCalendar=*-*-* 01:00:00"), "{on_alice}");
    // Again: nothing to install, nothing changes.
    let again = admin.clan(&["machines", "update", ALICE]).ok().stdout();
    assert!(
        again.contains("alice-laptop: updated (0 changes)"),
        "{again}"
    );

    lab.ssh(
        ALICE,
        "mkdir -p /home/alice/documents /home/alice/pictures && \
         echo 'Hello World!' > /home/alice/documents/welcome.md && \
         echo 'Account total: 5000' > /home/alice/documents/finance.txt && \
         head -c 300000 /dev/urandom > /home/alice/pictures/hero.jpg",
    );
    let before = checksums(&lab, ALICE, "/home/alice");
    let name = admin
        .clan(&["backups", "create", ALICE])
        .ok()
        .stdout()
        .trim()
        .to_string();
    assert!(name.starts_with("alice-laptop-borgbackup-"), "{name}");
    let listed = admin
        .clan(&["backups", "list", ALICE, "--json"])
        .ok()
        .json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["name"] == format!("backup-server::{name}").as_str()
                && b["provider"] == "borgbackup"),
        "{listed}"
    );
    lab.ssh(ALICE, "rm /home/alice/documents/welcome.md");
    admin
        .clan(&["backups", "restore", ALICE, "borgbackup", &name])
        .ok();
    assert_eq!(checksums(&lab, ALICE, "/home/alice"), before);

    // The password clan keeps is the one alice's /etc/shadow entry checks.
    let pw = admin
        .clan(&["vars", "get", ALICE, "user-password-alice/user-password"])
        .ok()
        .stdout();
    assert_eq!(pw.trim_end(), "correct horse battery staple");
    let shadow = lab.ssh(ALICE, "getent shadow alice | cut -d: -f2");
    let shadow = shadow.trim();
    let salt = shadow.split('$').nth(2).unwrap();
    let mut mkpasswd = Command::new("mkpasswd")
        .args(["--stdin", "--method=sha-512", &format!("--salt={salt}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    mkpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(pw.trim_end().as_bytes())
        .unwrap();
    let hashed = mkpasswd.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&hashed.stdout).trim(), shadow);

    // Faults need a backup that takes a while.
    lab.ssh(
        ALICE,
        "head -c 400M /dev/urandom > /home/alice/pictures/big.bin",
    );

    // A second backup while one runs is refused, clearly; the first one finishes.
    let first = admin.spawn(&["backups", "create", ALICE]);
    wait_process(&lab, ALICE, "borg create", true);
    let err = admin.clan(&["backups", "create", ALICE]).fails();
    assert!(
        err.contains("another backup or restore of this machine is running"),
        "{err}"
    );
    finished(first).ok();

    // The connection is cut in the middle of a backup: the next one works and the
    // repository checks clean.
    lab.ssh(ALICE, "echo more >> /home/alice/pictures/big.bin");
    let cut = admin.spawn(&["backups", "create", ALICE]);
    wait_process(&lab, ALICE, "borg create", true);
    let pids = clan_ssh_pids(lab.ip(ALICE));
    assert!(!pids.is_empty(), "clan's ssh connection to alice");
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let err = finished(cut).fails();
    assert!(
        err.contains("alice-laptop") || err.contains("10.231.0.11"),
        "{err}"
    );
    wait_process(&lab, ALICE, "borg create", false);
    admin.clan(&["backups", "create", ALICE]).ok();
    let check = admin.clan(&["backups", "check", ALICE]).ok().stdout();
    assert!(check.contains("borgbackup: ok"), "{check}");

    // Alice's borg accepts only the server's host key that the admin's (verified)
    // connection read at update: with another key in its place, backups are refused.
    let server_key = lab.ssh(SERVER, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub");
    let pinned = lab.ssh(ALICE, "cat /etc/clan/machine.json");
    assert!(
        pinned.contains(&format!("\"hostKey\": \"{}\"", server_key.trim())),
        "{pinned}"
    );
    lab.ssh(
        ALICE,
        "k=$(cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub); \
         sed -i \"s|\\\"hostKey\\\": \\\"[^\\\"]*\\\"|\\\"hostKey\\\": \\\"$k\\\"|\" /etc/clan/machine.json",
    );
    let err = admin.clan(&["backups", "create", ALICE]).fails();
    assert!(
        err.contains("machine 'alice-laptop', provider 'borgbackup'"),
        "{err}"
    );
    // borg does not always pass ssh's words on; ssh with the file clan wrote says why.
    let refused = lab.ssh_status(
        ALICE,
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes \
         -o UserKnownHostsFile=/var/lib/clan/backup/borg-known-hosts-borgbackup \
         -i /var/lib/clan/secrets/vars/borgbackup/borgbackup.ssh borg@10.231.0.12 true",
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && (said.contains("Host key verification failed")
                || said.contains("IDENTIFICATION HAS CHANGED")),
        "{said}"
    );
    admin.clan(&["machines", "update", ALICE]).ok();
    admin.clan(&["backups", "create", ALICE]).ok();

    // A compromised alice cannot destroy her backups: with her own key, a delete
    // and a compact leave every byte the repository held (the server keeps the
    // repository append-only for her key); the deletion can be rolled back.
    let repo_files =
        "cd /var/lib/borgbackup/alice-laptop/data && find . -type f | sort | xargs sha256sum";
    let newest = admin
        .clan(&["backups", "create", ALICE])
        .ok()
        .stdout()
        .trim()
        .to_string();
    let held_with_newest = lab.ssh(SERVER, repo_files);
    lab.ssh(
        ALICE,
        &format!(
            "export BORG_PASSCOMMAND='cat /var/lib/clan/secrets/vars/borgbackup/borgbackup.repokey' \
             BORG_RSH='ssh -i /var/lib/clan/secrets/vars/borgbackup/borgbackup.ssh -o IdentitiesOnly=yes \
             -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/var/lib/clan/backup/borg-known-hosts-borgbackup'; \
             r=ssh://borg@{server_ip}/var/lib/borgbackup/alice-laptop; \
             borg delete $r::{newest} && borg compact $r",
            server_ip = lab.ip(SERVER)
        ),
    );
    let after_attack = lab.ssh(SERVER, repo_files);
    for line in held_with_newest.lines() {
        assert!(after_attack.contains(line), "lost {line}:\n{after_attack}");
    }
    // Retention runs from the admin's clan, with the admin's key.
    let before = admin
        .clan(&["backups", "list", ALICE, "--json"])
        .ok()
        .json();
    let count = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|b| b["provider"] == "borgbackup")
            .count()
    };
    assert!(count(&before) > 1, "{before}");
    let pruned = admin
        .clan(&["backups", "prune", ALICE, "--keep-last", "1"])
        .ok()
        .stdout();
    assert!(pruned.contains("borgbackup: removed 0"), "{pruned}");
    assert!(
        pruned.contains(&format!(
            "borgbackup (admin, backup-server): removed {}",
            count(&before) - 1
        )),
        "{pruned}"
    );
    let after = admin
        .clan(&["backups", "list", ALICE, "--json"])
        .ok()
        .json();
    assert_eq!(count(&after), 1, "{after}");
    admin.clan(&["backups", "create", ALICE]).ok();

    // A drill timer beside the backup timer (weekly: the guide backs up on a
    // timer), at idle priority; its result reaches the admin through `clan
    // backups status`. Failures of the timers run the machine's onFailure.
    admin
        .clan(&[
            "config",
            "--machine",
            ALICE,
            "clan.core.backups.onFailure",
            "printf '%s|%s|%s\\n' \"$CLAN_MACHINE\" \"$CLAN_PROVIDER\" \"$CLAN_MESSAGE\" >> /var/log/clan-alerts",
        ])
        .ok();
    admin.clan(&["machines", "update", ALICE]).ok();
    let unit = lab.ssh(
        ALICE,
        "systemctl is-enabled clan-drill-borgbackup.timer; \
         systemctl show -P TimersCalendar clan-drill-borgbackup.timer; \
         systemctl show -P Nice clan-drill-borgbackup.service; \
         systemctl show -P IOSchedulingClass clan-drill-borgbackup.service",
    );
    let lines: Vec<&str> = unit.lines().collect();
    assert_eq!(lines[0], "enabled", "{unit}");
    assert!(lines[1].contains("OnCalendar=Mon *-*-* 00:00:00"), "{unit}");
    assert_eq!(lines[2], "19", "{unit}");
    assert!(matches!(lines[3], "idle" | "3"), "{unit}");
    lab.ssh(ALICE, "systemctl start clan-drill-borgbackup.service");
    let status = admin
        .clan(&["backups", "status", ALICE, "--json"])
        .ok()
        .json();
    let line = status
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["state"] == "my-documents")
        .unwrap();
    assert_eq!(
        (&line["provider"], &line["lastDrillOk"], &line["verdict"]),
        (
            &serde_json::json!("borgbackup"),
            &serde_json::json!(true),
            &serde_json::json!("ok")
        ),
        "{status}"
    );

    // The backup server goes away in the middle of a backup: a clear error naming
    // machine and provider; alice's files are untouched.
    lab.ssh(ALICE, "echo again >> /home/alice/pictures/big.bin");
    let files = checksums(&lab, ALICE, "/home/alice");
    let down = admin.spawn(&["backups", "create", ALICE]);
    wait_process(&lab, ALICE, "borg create", true);
    lab.stop(SERVER);
    let err = finished(down).fails();
    assert!(
        err.contains("machine 'alice-laptop', provider 'borgbackup'"),
        "{err}"
    );
    assert_eq!(checksums(&lab, ALICE, "/home/alice"), files);
    // The timer's backup fails too, and onFailure says so.
    let timer = lab.ssh_status(ALICE, "systemctl start clan-backup-borgbackup.service");
    assert!(!timer.status.success());
    let alerts = lab.ssh(ALICE, "cat /var/log/clan-alerts");
    assert_eq!(
        alerts
            .lines()
            .filter(|l| l.starts_with("alice-laptop|"))
            .count(),
        1,
        "one alert: {alerts}"
    );
    assert!(alerts.starts_with("alice-laptop|borgbackup|"), "{alerts}");
    assert!(alerts.contains("Connection refused"), "{alerts}");
    let run = admin.clan(&["backups", "status", ALICE]);
    let out = run.stdout();
    run.fails();
    assert!(out.contains("FAILING: the last backup failed"), "{out}");

    // A machine whose host key changes is refused: with the lab's config
    // (StrictHostKeyChecking yes) and with clan's default (accept-new).
    lab.ssh(
        ALICE,
        "rm /etc/ssh/ssh_host_ed25519_key*; \
         ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key; \
         systemctl reload ssh",
    );
    for env in [admin.env(), fresh_env] {
        let err = clan_env(&admin.dir, &["backups", "list", ALICE], &env).fails();
        assert!(
            err.contains("Host key verification failed")
                || err.contains("IDENTIFICATION HAS CHANGED"),
            "{err}"
        );
    }
}

/// A demo service that writes to a folder and to a PostgreSQL database, and logs
/// its own starts and stops outside its state.
const DEMO_UNIT: &str = r#"[Unit]
Description=clan lab demo service
After=postgresql.service
[Service]
ExecStartPre=/bin/sh -c 'echo start >> /var/log/demo.log'
ExecStart=/bin/sh -c 'cd /; while :; do date +%%s.%%N >> /var/lib/demo/ticks; runuser -u postgres -- psql -q demo -c "insert into ticks default values"; sleep 0.2; done'
ExecStopPost=/bin/sh -c 'echo stop >> /var/log/demo.log'
[Install]
WantedBy=multi-user.target
"#;

#[test]
#[ignore = "needs root (network namespaces, containers); ./test.sh runs it as root"]
fn restoring_a_running_service_stops_it_restores_folder_and_database_and_starts_it() {
    const APP: &str = "app-server";
    let lab = Lab::start(&[(APP, "10.231.0.21")]);
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let clan_nix = format!(
        r#"{{
          meta.name = "svc";
          inventory.machines.{APP} = {{ deploy.targetHost = "root@{ip}"; machineClass = "linux"; }};
          inventory.instances.restic.roles.client.machines.{APP}.settings.repository = "/var/backup/restic";
          machines.{APP} = {{
            clan.core.postgresql.runAs = "postgres";
            clan.core.state.demo = {{
              folders = [ "/var/lib/demo" ];
              postgresDatabases = [ "demo" ];
              services = [ "demo.service" ];
              postRestoreScript = "test ! -e /etc/demo-fail-post-restore";
            }};
          }};
        }}"#,
        ip = lab.ip(APP)
    );
    let admin = Admin::new(tmp.path(), &lab, &clan_nix);
    lab.ssh(
        APP,
        &format!(
            "set -e; cd /; mkdir -p /var/lib/demo; echo before > /var/lib/demo/notes.txt
             runuser -u postgres -- createdb demo
             runuser -u postgres -- psql -q demo -c \"create table notes(t text); create table ticks(at timestamptz default now()); insert into notes values ('before')\"
             cat > /etc/systemd/system/demo.service <<'UNIT'\n{DEMO_UNIT}UNIT
             systemctl daemon-reload; systemctl start demo.service"
        ),
    );
    admin.clan(&["machines", "update", APP]).ok();
    let name = admin
        .clan(&["backups", "create", APP])
        .ok()
        .stdout()
        .trim()
        .to_string();
    lab.ssh(
        APP,
        "cd /; echo after > /var/lib/demo/notes.txt; \
         runuser -u postgres -- psql -q demo -c \"insert into notes values ('after')\"",
    );
    let notes = |lab: &Lab| {
        lab.ssh(
            APP,
            "cd /; cat /var/lib/demo/notes.txt; runuser -u postgres -- psql -At demo -c 'select t from notes order by t'",
        )
    };
    assert_eq!(notes(&lab), "after\nafter\nbefore\n");

    let run = admin
        .clan(&["backups", "restore", APP, "restic", &name])
        .ok();
    assert!(
        run.stdout()
            .contains("The state before the restore is kept as"),
        "{}",
        run.stdout()
    );
    // Folder and database are the backup's again.
    assert_eq!(notes(&lab), "before\nbefore\n");
    // The unit was stopped for the restore (its own log) and runs again.
    assert_eq!(
        lab.ssh(
            APP,
            "cat /var/log/demo.log; systemctl is-active demo.service"
        ),
        "start\nstop\nstart\nactive\n"
    );
    // It writes again: the ticks grow after the restore.
    let ticks = || lab.ssh(APP, "wc -l < /var/lib/demo/ticks");
    let t0 = ticks();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks() == t0 {
        assert!(
            Instant::now() < deadline,
            "demo.service writes nothing after the restore"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A failing postRestoreScript: the error names the step, the unit runs again.
    lab.ssh(APP, "touch /etc/demo-fail-post-restore");
    let err = admin
        .clan(&["backups", "restore", APP, "restic", &name])
        .fails();
    assert!(
        err.contains("restore failed at step 'postRestoreScript of state 'demo''"),
        "{err}"
    );
    assert!(
        err.contains("clan backups restore app-server restic"),
        "{err}"
    );
    assert_eq!(
        lab.ssh(
            APP,
            "systemctl is-active demo.service; tail -n 2 /var/log/demo.log"
        ),
        "active\nstop\nstart\n"
    );
}

/// A unit that says hello in the journal and then waits.
const NOTES_UNIT: &str = r#"[Unit]
Description=clan lab notes service
[Service]
ExecStart=/bin/sh -c 'echo notes service says hello; exec sleep infinity'
"#;

/// The agent's API on a lab machine, as the app calls it.
struct Api {
    url: String,
    token: String,
}

impl Api {
    fn data(&self, query: &str, variables: serde_json::Value) -> serde_json::Value {
        let body = self.call(Some(&self.token), query, variables);
        assert!(body["errors"].is_null(), "{query}: {body}");
        body["data"].clone()
    }

    fn call(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let mut req = reqwest::blocking::Client::new()
            .post(&self.url)
            .json(&serde_json::json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req.send().unwrap().json().unwrap()
    }

    fn status(&self, service: &str) -> String {
        let d = self.data(
            "{ services { allServices { id status } } }",
            serde_json::json!({}),
        );
        let all = d["services"]["allServices"].as_array().unwrap().clone();
        let s = all.iter().find(|s| s["id"] == service).unwrap();
        s["status"].as_str().unwrap().to_string()
    }

    /// Waits for job `uid` to end (it runs on the machine, not in this request).
    fn wait_job(&self, uid: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let d = self.data(
                "query($id: String!) { jobs { getJob(jobId: $id) { status statusText error result } } }",
                serde_json::json!({"id": uid}),
            );
            let job = d["jobs"]["getJob"].clone();
            if matches!(job["status"].as_str(), Some("FINISHED" | "ERROR")) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {uid} still {job}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
#[ignore = "needs root (network namespaces, containers); ./test.sh runs it as root"]
fn the_agent_that_update_installs_serves_the_machine_to_the_app() {
    const HOST: &str = "agent-host";
    let lab = Lab::start(&[(HOST, "10.231.0.31")]);
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let ip = lab.ip(HOST).to_string();
    let clan_nix = format!(
        r#"{{
          meta.name = "agents";
          inventory.machines.{HOST} = {{ deploy.targetHost = "root@{ip}"; machineClass = "linux"; }};
          inventory.instances.agent.roles.server.machines.{HOST}.settings.listen = "0.0.0.0:5050";
          inventory.instances.restic.roles.client.machines.{HOST}.settings.repository = "/var/backup/restic";
          machines.{HOST}.clan.core.state.notes = {{ folders = [ "/var/lib/notes" ]; services = [ "notes.service" ]; }};
        }}"#
    );
    let admin = Admin::new(tmp.path(), &lab, &clan_nix);
    lab.ssh(
        HOST,
        &format!(
            "set -e; mkdir -p /var/lib/notes/2026; echo 'first note' > /var/lib/notes/a.txt
             echo 'second note' > /var/lib/notes/2026/b.txt
             cat > /etc/systemd/system/notes.service <<'UNIT'\n{NOTES_UNIT}UNIT
             systemctl daemon-reload; systemctl start notes.service"
        ),
    );
    admin.clan(&["machines", "update", HOST]).ok();
    assert_eq!(
        lab.ssh(HOST, "systemctl is-active clan-agent.service"),
        "active\n"
    );
    let unit = lab.ssh(HOST, "cat /etc/systemd/system/clan-agent.service");
    assert!(
        unit.contains("/usr/local/lib/clan/clan-")
            && unit.contains("agent serve --listen 0.0.0.0:5050"),
        "{unit}"
    );
    assert!(unit.contains("Restart=on-failure"), "{unit}");

    // The first token is the machine's `agent/token` var.
    let token = admin
        .clan(&["vars", "get", HOST, "agent/token"])
        .ok()
        .stdout()
        .trim()
        .to_string();
    assert_eq!(token.len(), 43, "{token}");
    let api = Api {
        url: format!("http://{ip}:5050/graphql"),
        token,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect((ip.as_str(), 5050)).is_err() {
        assert!(Instant::now() < deadline, "the agent does not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = api.call(
        Some("not the token"),
        "{ services { allServices { id } } }",
        serde_json::json!({}),
    );
    assert_eq!(refused["data"], serde_json::Value::Null, "{refused}");
    let devices = api.data(
        "{ api { devices { name isCaller } } }",
        serde_json::json!({}),
    );
    assert_eq!(
        devices["api"]["devices"],
        serde_json::json!([{"name": "Initial device", "isCaller": true}])
    );

    // Status from systemd; stop and start a real unit.
    assert_eq!(api.status("notes"), "ACTIVE");
    let stop = api.data(
        r#"mutation { services { stopService(serviceId: "notes") { code } } }"#,
        serde_json::json!({}),
    );
    assert_eq!(stop["services"]["stopService"]["code"], 200);
    assert_eq!(api.status("notes"), "INACTIVE");
    assert_eq!(
        lab.ssh(HOST, "systemctl is-active notes.service || true"),
        "inactive\n"
    );
    let start = api.data(
        r#"mutation { services { startService(serviceId: "notes") { code } } }"#,
        serde_json::json!({}),
    );
    assert_eq!(start["services"]["startService"]["code"], 200);
    assert_eq!(api.status("notes"), "ACTIVE");

    // The journal, by unit.
    let logs = api.data(
        r#"{ logs { paginated(limit: 20, filterByUnit: "notes.service") { pageMeta { upCursor downCursor } entries { message systemdUnit cursor } } } }"#,
        serde_json::json!({}),
    );
    let entries = logs["logs"]["paginated"]["entries"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        entries
            .iter()
            .any(|e| e["message"] == "notes service says hello"),
        "{logs}"
    );
    assert!(
        entries.iter().all(|e| e["systemdUnit"] == "notes.service"),
        "{logs}"
    );
    // Paging: one entry older than the page, then the one after it again.
    let page = |args: &str| {
        let d = api.data(
            &format!(r#"{{ logs {{ paginated({args}) {{ pageMeta {{ upCursor }} entries {{ cursor message }} }} }} }}"#),
            serde_json::json!({}),
        );
        d["logs"]["paginated"].clone()
    };
    let newest = page("limit: 2");
    let up = newest["pageMeta"]["upCursor"].as_str().unwrap().to_string();
    let older = page(&format!(r#"limit: 1, downCursor: "{up}""#));
    let older_cursor = older["entries"][0]["cursor"].as_str().unwrap().to_string();
    assert_ne!(older_cursor, up);
    let next = page(&format!(r#"limit: 1, upCursor: "{older_cursor}""#));
    assert_eq!(
        next["entries"][0]["cursor"], newest["entries"][0]["cursor"],
        "{next}"
    );

    // A backup of the service, then damage, then the restore through the API.
    let r = api.data(
        r#"mutation { backup { startBackup(serviceId: "notes") { code job { uid } } } }"#,
        serde_json::json!({}),
    );
    let job = api.wait_job(r["backup"]["startBackup"]["job"]["uid"].as_str().unwrap());
    assert_eq!(job["status"], "FINISHED", "{job}");
    let before = checksums(&lab, HOST, "/var/lib/notes");
    lab.ssh(HOST, "echo damaged > /var/lib/notes/a.txt; rm -r /var/lib/notes/2026; echo stray > /var/lib/notes/c.txt");
    let snaps = api.data(
        "{ backup { allSnapshots { id service { id } reason } } }",
        serde_json::json!({}),
    );
    let snaps = snaps["backup"]["allSnapshots"].as_array().unwrap().clone();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let r = api.data(
        "mutation($id: String!) { backup { restoreBackup(snapshotId: $id) { code job { uid } } } }",
        serde_json::json!({"id": snaps[0]["id"]}),
    );
    let job = api.wait_job(r["backup"]["restoreBackup"]["job"]["uid"].as_str().unwrap());
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert_eq!(checksums(&lab, HOST, "/var/lib/notes"), before);
    assert_eq!(
        lab.ssh(HOST, "systemctl is-active notes.service"),
        "active\n"
    );

    // An update that changes nothing leaves the agent running as it is; a changed
    // unit (as a new build makes one) restarts it.
    let pid = || lab.ssh(HOST, "systemctl show -P MainPID clan-agent.service");
    let first = pid();
    admin.clan(&["machines", "update", HOST]).ok();
    assert_eq!(pid(), first);
    lab.ssh(
        HOST,
        "sed -i 's/RestartSec=2/RestartSec=3/' /etc/systemd/system/clan-agent.service",
    );
    admin.clan(&["machines", "update", HOST]).ok();
    assert_ne!(pid(), first);
    assert_eq!(
        lab.ssh(HOST, "systemctl is-active clan-agent.service"),
        "active\n"
    );
}

#[test]
#[ignore = "needs root (network namespaces, containers); ./test.sh runs it as root"]
fn a_machine_that_holds_its_clan_changes_and_applies_it_through_its_agent() {
    const HOST: &str = "held";
    let lab = Lab::start(&[(HOST, "10.231.0.32")]);
    let ip = lab.ip(HOST).to_string();
    // The owner installs clan on the machine and makes it hold its own clan; no
    // admin machine, no SSH from elsewhere, no Nix.
    let mut copy = lab.ssh_command(HOST);
    copy.arg("cat > /usr/local/bin/clan.part && chmod 755 /usr/local/bin/clan.part && mv /usr/local/bin/clan.part /usr/local/bin/clan")
        .stdin(std::fs::File::open(env!("CARGO_BIN_EXE_clan")).unwrap());
    assert!(copy.status().unwrap().success());
    let init = lab.ssh(
        HOST,
        &format!("cd /root && clan init --machine-held {HOST} --agent-listen 0.0.0.0:5050"),
    );
    assert!(init.contains("/var/lib/clan/clan"), "{init}");
    assert_eq!(lab.ssh(HOST, "stat -c %a /var/lib/clan/clan"), "700\n");
    // The owner's restic backups of a notes folder (an edit of the clan as any
    // other: the file, committed).
    lab.ssh(
        HOST,
        &format!(
            r#"set -e; mkdir -p /var/lib/notes; echo 'a note' > /var/lib/notes/a.txt
            cd /var/lib/clan/clan
            clan config --machine {HOST} clan.core.state.notes.folders '["/var/lib/notes"]'
            sed -i 's|"instances": {{|"instances": {{ "restic": {{ "module": {{ "name": "restic" }}, "roles": {{ "client": {{ "machines": {{ "{HOST}": {{ "settings": {{ "repository": "/var/backup/restic" }} }} }} }} }} }},|' inventory.json
            git -c user.name=owner -c user.email=owner@held commit -qam 'restic backups'"#
        ),
    );
    // `machines update` on the machine applies here, without SSH.
    let update = lab.ssh(HOST, &format!("cd / && clan machines update {HOST} 2>&1"));
    assert!(
        update.contains("done") || update.contains("updated"),
        "{update}"
    );
    assert_eq!(
        lab.ssh(HOST, "systemctl is-active clan-agent.service"),
        "active\n"
    );
    assert_eq!(
        lab.ssh(HOST, "systemctl is-enabled clan-backup-restic.timer"),
        "enabled\n"
    );
    let token = lab
        .ssh(HOST, &format!("clan vars get {HOST} agent/token"))
        .trim()
        .to_string();
    let api = Api {
        url: format!("http://{ip}:5050/graphql"),
        token,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect((ip.as_str(), 5050)).is_err() {
        assert!(Instant::now() < deadline, "the agent does not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rebuild = |api: &Api| {
        let r = api.data(
            "mutation { system { runSystemRebuild { code message job { uid typeId } } } }",
            serde_json::json!({}),
        );
        let r = &r["system"]["runSystemRebuild"];
        assert_eq!(r["code"], 200, "{r}");
        assert_eq!(r["job"]["typeId"], "system.nixos.rebuild");
        r["job"]["uid"].as_str().unwrap().to_string()
    };
    let toggle = |verb: &str| {
        let q = format!(
            r#"mutation {{ services {{ {verb}(serviceId: "restic") {{ code message }} }} }}"#
        );
        let d = api.data(&q, serde_json::json!({}));
        assert_eq!(d["services"][verb]["code"], 200, "{d}");
    };

    // Off through the API: committed in the machine's clan, applied by a rebuild.
    toggle("disableService");
    let log = lab.ssh(HOST, "git -C /var/lib/clan/clan log -1 --format=%s");
    assert_eq!(
        log,
        "services: disable restic (agent, device 'Initial device')\n"
    );
    let job = api.wait_job(&rebuild(&api));
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert_eq!(
        lab.ssh(
            HOST,
            "test -e /etc/systemd/system/clan-backup-restic.timer && echo present || echo gone"
        ),
        "gone\n"
    );
    let listed = api.data(
        "{ services { allServices { id isEnabled } } }",
        serde_json::json!({}),
    );
    assert!(
        listed["services"]["allServices"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"id": "restic", "isEnabled": false})),
        "{listed}"
    );

    // On again, and a backup of the notes through the API works with it.
    toggle("enableService");
    let job = api.wait_job(&rebuild(&api));
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert_eq!(
        lab.ssh(HOST, "systemctl is-enabled clan-backup-restic.timer"),
        "enabled\n"
    );
    let r = api.data(
        r#"mutation { backup { startBackup(serviceId: "notes") { code job { uid } } } }"#,
        serde_json::json!({}),
    );
    let job = api.wait_job(r["backup"]["startBackup"]["job"]["uid"].as_str().unwrap());
    assert_eq!(job["status"], "FINISHED", "{job}");

    // The time zone, and a setting of the agent itself: the rebuild that changes
    // its unit is recorded as finished, then the agent restarts with it.
    let d = api.data(
        r#"mutation { system { changeTimezone(timezone: "Europe/Berlin") { code message } } }"#,
        serde_json::json!({}),
    );
    assert_eq!(d["system"]["changeTimezone"]["code"], 200, "{d}");
    let pid = lab.ssh(HOST, "systemctl show -P MainPID clan-agent.service");
    let d = api.data(
        r#"mutation { services { setServiceConfiguration(input: { serviceId: "agent", configuration: { logLevel: "debug" } }) { code message } } }"#,
        serde_json::json!({}),
    );
    assert_eq!(d["services"]["setServiceConfiguration"]["code"], 200, "{d}");
    let uid = rebuild(&api);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let now = lab.ssh(HOST, "systemctl show -P MainPID clan-agent.service");
        if now != pid && now != "0\n" && std::net::TcpStream::connect((ip.as_str(), 5050)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the agent did not restart");
        std::thread::sleep(Duration::from_millis(200));
    }
    let job = api.wait_job(&uid);
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert!(
        lab.ssh(HOST, "cat /etc/systemd/system/clan-agent.service")
            .contains("--log-level debug")
    );

    // Bad input changes nothing.
    let head = lab.ssh(HOST, "git -C /var/lib/clan/clan rev-parse HEAD");
    let d = api.data(
        r#"mutation { services { setServiceConfiguration(input: { serviceId: "agent", configuration: { logLevel: "loud" } }) { code } } }"#,
        serde_json::json!({}),
    );
    assert_eq!(d["services"]["setServiceConfiguration"]["code"], 400, "{d}");
    assert_eq!(
        lab.ssh(HOST, "git -C /var/lib/clan/clan rev-parse HEAD"),
        head
    );
    assert_eq!(
        lab.ssh(HOST, "git -C /var/lib/clan/clan status --porcelain"),
        ""
    );
}

/// The nixpkgs test double (tests/fixtures/nixpkgs-double): NixOS machines are
/// lab machines with Nix, their activation the double's.
fn nixos_clan(lab: &Lab, machines: &[&str]) -> String {
    let double = fixture("nixpkgs-double");
    let mut inventory = String::new();
    for m in machines {
        inventory.push_str(&format!(
            "inventory.machines.{m} = {{ machineClass = \"nixos\"; deploy.targetHost = \"root@{}\"; }};\n",
            lab.ip(m)
        ));
    }
    format!(
        r#"{{
          meta.name = "nx";
          meta.nixpkgs = "{}";
          {inventory}
        }}"#,
        double.display()
    )
}

/// Machine `m`'s own module: a label (a new system for each) and activation scripts.
fn nixos_machine(admin: &Admin, m: &str, label: &str, activation: &str) {
    let dir = admin.dir.join("machines").join(m);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("configuration.nix"),
        format!(
            r#"{{ ... }}: {{
              clan.core.deployment.confirmTimeout = 8;
              system.nixos.label = "{label}";
              system.activationScripts.network = "ip link set eth0 up";
              system.activationScripts.test = "{activation}";
            }}"#
        ),
    )
    .unwrap();
}

/// The machine's system generation and what /run/current-system is.
fn nixos_state(lab: &Lab, m: &str) -> (String, String) {
    let out = lab.ssh(
        m,
        "readlink /nix/var/nix/profiles/system; readlink /run/current-system; \
         readlink -f /nix/var/nix/profiles/system",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], lines[2], "the profile's system is the active one");
    (lines[0].to_string(), lines[1].to_string())
}

#[test]
#[ignore = "needs root (network namespaces, containers); ./test.sh runs it as root"]
fn nixos_machines_are_built_copied_activated_confirmed_and_roll_back_by_themselves() {
    const N1: &str = "nixos-one";
    const N2: &str = "nixos-two";
    let lab = Lab::start(&[(N1, "10.231.0.31"), (N2, "10.231.0.32")]);
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut admin = Admin::new(tmp.path(), &lab, &nixos_clan(&lab, &[N1, N2]));
    // This host builds without build users or binary caches.
    admin.env.push((
        "NIX_CONFIG".into(),
        "build-users-group =\nsubstituters =".into(),
    ));
    for m in [N1, N2] {
        nixos_machine(&admin, m, "first", "true");
    }

    // Two machines in parallel: built here, copied, activated, confirmed.
    let run = admin.clan(&["machines", "update"]).ok();
    let out = run.stdout();
    for m in [N1, N2] {
        assert!(out.contains(&format!("{m}: updated")), "{out}");
        assert_eq!(nixos_state(&lab, m).0, "system-1-link");
        let log = lab.ssh(m, "cat /var/lib/nixos-double/switches.log");
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(log.starts_with("switch /nix/store/"), "{log}");
    }
    assert_eq!(
        out.matches("activated generation 1 (confirmed over a new connection)")
            .count(),
        2,
        "{out}"
    );
    assert_eq!(out.matches("copied ").count(), 2, "{out}");

    // Nothing new: nothing copied, nothing activated.
    let again = admin.clan(&["machines", "update", N1]).ok().stdout();
    assert!(
        again.contains("the system is active already (generation 1); nothing activated")
            && !again.contains("copied"),
        "{again}"
    );
    assert_eq!(
        lab.ssh(N1, "wc -l < /var/lib/nixos-double/switches.log")
            .trim(),
        "1"
    );

    // A new system: generation 2.
    nixos_machine(&admin, N1, "second", "true");
    let run = admin.clan(&["machines", "update", N1]).ok().stdout();
    assert!(
        run.contains("activated generation 2 (confirmed over a new connection)"),
        "{run}"
    );
    let (gen2, system2) = nixos_state(&lab, N1);
    assert_eq!(gen2, "system-2-link");

    // An activation that cuts the machine off: no new connection can confirm it,
    // the machine goes back to generation 2 by itself (its activation brings the
    // network up again) and the command says so.
    nixos_machine(&admin, N1, "cut-off", "ip link set eth0 down");
    let run = admin.clan(&["machines", "update", N1]);
    let out = run.stdout();
    run.fails();
    assert!(
        out.contains("FAILED") && out.contains("rolled back to generation 2 by itself"),
        "{out}"
    );
    assert_eq!(nixos_state(&lab, N1), (gen2.clone(), system2.clone()));
    assert!(
        !lab.ssh(N1, "ls /nix/var/nix/profiles")
            .contains("system-3-link"),
        "the generation that cut the machine off is deleted"
    );

    // The admin's clan killed after the activation started: no confirmation
    // comes, the machine rolls back by itself.
    nixos_machine(&admin, N1, "unconfirmed", "sleep 4");
    let child = admin.spawn(&["machines", "update", N1]);
    let pid = child.id();
    wait_process(&lab, N1, "__runtime --activate", true);
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let killed = finished(child);
    assert!(!killed.out.status.success());
    wait_process(&lab, N1, "__runtime --activate", false);
    assert_eq!(nixos_state(&lab, N1), (gen2.clone(), system2.clone()));
    let status = lab.ssh(
        N1,
        "cat $(ls /var/lib/clan/activation/*.json | sort | tail -n 1)",
    );
    assert!(status.contains("\"phase\": \"rolled-back\""), "{status}");

    // The generations, and a rollback to the first (confirmed like an update).
    let gens = admin
        .clan(&["machines", "generations", N1, "--json"])
        .ok()
        .json();
    let listed: Vec<(u64, bool)> = gens[N1]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["number"].as_u64().unwrap(),
                g["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(1, false), (2, true)]);
    let run = admin.clan(&["machines", "rollback", N1]).ok().stdout();
    assert!(
        run.contains("activated generation 1 (confirmed over a new connection)"),
        "{run}"
    );
    assert_eq!(nixos_state(&lab, N1).0, "system-1-link");
    let text = admin.clan(&["machines", "generations", N1]).ok().stdout();
    assert!(text.contains("(current)"), "{text}");

    // Without a rollback net, at an address given on the command line.
    nixos_machine(&admin, N1, "unguarded", "true");
    let target = format!("root@{}", lab.ip(N1));
    let run = admin
        .clan(&[
            "machines",
            "update",
            N1,
            "--no-rollback",
            "--target-host",
            &target,
        ])
        .ok()
        .stdout();
    assert!(
        run.contains("activated generation 3 (no confirmation asked: --no-rollback)"),
        "{run}"
    );
    assert_eq!(nixos_state(&lab, N1).0, "system-3-link");
    assert_eq!(
        lab.ssh(N1, "ls /var/lib/clan/activation | grep -c pending || true")
            .trim(),
        "0"
    );
}

#[test]
#[ignore = "needs root (network namespaces, containers); ./test.sh runs it as root"]
fn a_build_host_builds_for_a_nixos_machine_and_an_unreachable_one_fails_only_its_machine() {
    const TARGET: &str = "nixos-small";
    const BUILDER: &str = "nixos-builder";
    const OTHER: &str = "nixos-other";
    let lab = Lab::start(&[
        (TARGET, "10.231.0.34"),
        (BUILDER, "10.231.0.35"),
        (OTHER, "10.231.0.36"),
    ]);
    // The build host builds without build users or binary caches, as this host.
    lab.ssh(
        BUILDER,
        "mkdir -p /etc/nix && printf 'build-users-group =\\nsubstituters =\\n' >> /etc/nix/nix.conf",
    );
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let clan_nix = nixos_clan(&lab, &[TARGET, OTHER]).replace(
        &format!("deploy.targetHost = \"root@{}\";", lab.ip(OTHER)),
        &format!(
            "deploy.targetHost = \"root@{}\"; deploy.buildHost = \"root@10.231.0.99\";",
            lab.ip(OTHER)
        ),
    );
    let mut admin = Admin::new(tmp.path(), &lab, &clan_nix);
    admin.env.push((
        "NIX_CONFIG".into(),
        "build-users-group =\nsubstituters =".into(),
    ));
    for m in [TARGET, OTHER] {
        nixos_machine(&admin, m, "built-elsewhere", "true");
    }
    let builder = format!("root@{}", lab.ip(BUILDER));
    let update = || {
        admin
            .clan(&["machines", "update", TARGET, "--build-host", &builder])
            .ok()
    };
    // The build host has no key for the machine: the result comes through here.
    let run = update();
    assert!(
        run.stdout()
            .contains("activated generation 1 (confirmed over a new connection)"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains(&format!(
            "the build host {builder} cannot copy to root@{} itself",
            lab.ip(TARGET)
        )),
        "{}",
        run.stderr()
    );
    // With a key of its own, the build host copies to the machine directly.
    let key = std::fs::read_to_string(&lab.key).unwrap();
    lab.ssh(
        BUILDER,
        &format!("umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/id_ed25519 <<'KEY'\n{key}KEY"),
    );
    nixos_machine(&admin, TARGET, "built-elsewhere-again", "true");
    let run = update();
    assert!(
        run.stdout()
            .contains("activated generation 2 (confirmed over a new connection)")
            && run.stderr().contains("directly")
            && !run.stderr().contains("cannot copy"),
        "{}\n{}",
        run.stdout(),
        run.stderr()
    );
    let (_, system) = nixos_state(&lab, TARGET);
    // Built on the build host (its derivation is there), never on the target.
    assert!(
        lab.ssh(BUILDER, &format!("nix-store --query --deriver {system}"))
            .trim()
            .ends_with(".drv")
    );
    assert_eq!(
        lab.ssh(BUILDER, &format!("test -e {system} && echo built"))
            .trim(),
        "built"
    );
    assert_eq!(
        lab.ssh(TARGET, "ls /nix/store | grep -c '[.]drv$' || true")
            .trim(),
        "0"
    );

    // A machine whose build host cannot be reached fails alone.
    let run = admin.clan(&["machines", "update"]);
    let out = run.stdout();
    let err = run.fails();
    assert!(
        out.contains(&format!("{TARGET}: updated"))
            && out.contains(&format!("{OTHER}: FAILED"))
            && out.contains("10.231.0.99"),
        "{out}"
    );
    assert!(err.contains("1 of 2 machines failed"), "{err}");
}
