//! Hosts for real: this machine, and an OpenSSH server on loopback that the test
//! starts (and stops).

use clan_core::host::{Host, HostError, HostKeyMode, Local, Ssh};
use clan_core::process::{Cmd, CommandError};
use clan_lab::Sshd;

fn ssh_to(sshd: &Sshd) -> Ssh {
    Ssh::new(format!("root@127.0.0.1:{}", sshd.port).parse().unwrap())
        .unwrap()
        .identity_file(&sshd.client_key)
        .known_hosts_file(&sshd.known_hosts)
        .host_keys(HostKeyMode::Strict)
}

/// Arguments a careless shell line would mangle, an environment and stdin.
fn tricky() -> Cmd {
    Cmd::new("sh")
        .args([
            "-c",
            r#"printf '%s|' "$0" "$1" "$WHO"; cat"#,
            "it's a \"test\"",
            "$HOME `id` ; rm -rf /nonexistent *",
        ])
        .env("WHO", "x y")
        .stdin("a secret on stdin\n")
}

fn same_answers(host: &dyn Host) {
    let out = host.run(&tricky()).unwrap();
    assert_eq!(
        out.stdout_string(),
        "it's a \"test\"|$HOME `id` ; rm -rf /nonexistent *|x y|a secret on stdin\n"
    );
    match host.run(&Cmd::new("sh").args(["-c", "echo nope >&2; exit 3"])) {
        Err(HostError::Command {
            source:
                CommandError::Failed {
                    code,
                    stderr,
                    command,
                    ..
                },
            host: name,
        }) => {
            assert_eq!((code, stderr.as_str()), (3, "nope\n"));
            assert!(command.starts_with("sh -c"), "{command}");
            assert_eq!(name, host.describe());
        }
        other => panic!("{other:?}"),
    }
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(needle))
        .count()
}

#[test]
fn local_runs_argument_vectors() {
    same_answers(&Local);
}

#[test]
fn ssh_runs_the_same_commands_over_one_shared_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(tmp.path());
    let host = ssh_to(&sshd);
    assert_eq!(host.describe(), format!("root@127.0.0.1:{}", sshd.port));
    assert!(!host.connected(), "no connection before the first command");
    same_answers(&host);
    assert!(host.connected(), "the master connection stays up");
    let control = host.control_dir().display().to_string();
    assert_eq!(processes_with(&control), 1, "one master process");
    host.run(&Cmd::new("true")).unwrap();
    assert_eq!(processes_with(&control), 1, "commands share it");
    drop(host);
    assert_eq!(processes_with(&control), 0, "dropping closes it");
}

#[test]
fn unreachable_hosts_and_unknown_host_keys_are_told_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(tmp.path());
    // Strict: a host key not in known_hosts is refused.
    let empty = tmp.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let strict = ssh_to(&sshd).known_hosts_file(&empty);
    match strict.run(&Cmd::new("true")) {
        Err(HostError::Unreachable { message, .. }) => {
            assert!(
                message.contains("Host key verification failed"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Accept-new: trusted on first use and written down.
    let learned = tmp.path().join("learned_known_hosts");
    let tofu = ssh_to(&sshd)
        .known_hosts_file(&learned)
        .host_keys(HostKeyMode::AcceptNew);
    tofu.run(&Cmd::new("true")).unwrap();
    let host_key = std::fs::read_to_string(tmp.path().join("host_key.pub")).unwrap();
    let key_blob = host_key.split_whitespace().nth(1).unwrap();
    assert!(
        std::fs::read_to_string(&learned)
            .unwrap()
            .contains(key_blob)
    );
    // A user whose ssh config says `StrictHostKeyChecking yes` is not overridden by
    // clan's trust-on-first-use: the unknown host is refused and nothing learned.
    let strict_known = tmp.path().join("strict_known_hosts");
    let config = tmp.path().join("strict_config");
    std::fs::write(
        &config,
        format!(
            "Host *\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {}\n",
            strict_known.display()
        ),
    )
    .unwrap();
    let strict_user = Ssh::new(format!("root@127.0.0.1:{}", sshd.port).parse().unwrap())
        .unwrap()
        .identity_file(&sshd.client_key)
        .config_file(&config);
    match strict_user.run(&Cmd::new("true")) {
        Err(HostError::Unreachable { message, .. }) => {
            assert!(
                message.contains("Host key verification failed"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(!strict_known.exists() || std::fs::read_to_string(&strict_known).unwrap().is_empty());
    // Nobody listening.
    let port = clan_lab::free_port();
    let nobody = Ssh::new(format!("root@127.0.0.1:{port}").parse().unwrap())
        .unwrap()
        .host_keys(HostKeyMode::None);
    match nobody.run(&Cmd::new("true")) {
        Err(e @ HostError::Unreachable { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("cannot reach root@127.0.0.1:{port}"))
                    && text.contains("Connection refused"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}
