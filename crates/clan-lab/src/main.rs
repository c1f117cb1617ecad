//! `clan-lab guide CLAN_BINARY`: the seed's backup guide in the lab, by hand.
//! Boots alice-laptop and backup-server, writes the guide's clan (adapted to the
//! lab) with an admin key, and opens a shell where `clan` talks to them. Leaving
//! the shell tears the lab down.
//!
//! `clan-lab nixos-bench CLAN_BINARY N...` (bench/nixos.sh): for systems whose
//! closures hold N more store paths, the time of `clan machines update` of a NixOS
//! machine (copy and activation), of one with nothing to do, and of
//! `nix-copy-closure` alone of the same system to another machine.

use std::path::PathBuf;
use std::process::Command;

use clan_lab::lab::{self, Lab};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("guide"), Some(clan)) => guide(clan),
        (Some("nixos-bench"), Some(clan)) => nixos_bench(clan, &args[3..]),
        _ => {
            eprintln!(
                "usage: clan-lab guide PATH/TO/clan\n       clan-lab nixos-bench PATH/TO/clan N..."
            );
            std::process::exit(2);
        }
    }
}

fn guide(clan: &str) {
    let clan = std::fs::canonicalize(clan).expect("the clan binary");
    if !lab::available("the lab") {
        std::process::exit(1);
    }
    eprintln!("Starting the lab (the first time, its template is built: about a minute)...");
    let lab = Lab::start(&lab::GUIDE_MACHINES);
    let dir = lab.dir.join("clan");
    std::fs::create_dir_all(&dir).expect("clan directory");
    std::fs::write(dir.join("clan.nix"), lab::guide_clan_nix(&lab)).expect("clan.nix");
    let key = lab.dir.join("admin-age-key.txt");
    let path = format!(
        "{}:{}",
        clan.parent().expect("a directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        Command::new(&clan)
            .args(args)
            .current_dir(&dir)
            .env("CLAN_AGE_KEY_FILE", &key)
            .status()
            .expect("clan")
    };
    let git = |args: &[&str]| {
        Command::new("git")
            .args(["-c", "user.name=lab", "-c", "user.email=lab@lab"])
            .args(args)
            .current_dir(&dir)
            .status()
            .expect("git")
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "init"]);
    run(&["vars", "keygen", "--name", "admin"]);
    for (name, ip) in lab::GUIDE_MACHINES {
        eprintln!(
            "  {name:14} {ip}   ssh -F {} root@{ip}",
            lab.ssh_config.display()
        );
    }
    eprintln!(
        "\nThe guide's clan is in {} (this shell's directory). Try:\n\
         \n  clan machines update backup-server\n  clan machines update alice-laptop\n  \
         ssh -F $CLAN_SSH_CONFIG root@10.231.0.11 'mkdir -p /home/alice/documents && echo hi > /home/alice/documents/welcome.md'\n  \
         clan backups create alice-laptop\n  clan backups list alice-laptop\n\n\
         Leave the shell (exit) to tear the lab down.\n",
        dir.display()
    );
    let shell = std::env::var_os("SHELL").map_or_else(|| PathBuf::from("/bin/bash"), PathBuf::from);
    let _ = Command::new(shell)
        .current_dir(&dir)
        .env("PATH", path)
        .env("CLAN_DIR", &dir)
        .env("CLAN_SSH_CONFIG", &lab.ssh_config)
        .env("CLAN_AGE_KEY_FILE", &key)
        .status();
    eprintln!("Tearing the lab down...");
    drop(lab);
}

/// Seconds `cmd` takes; it must succeed.
fn timed(cmd: &mut Command) -> f64 {
    let started = std::time::Instant::now();
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

fn nixos_bench(clan: &str, counts: &[String]) {
    let clan = std::fs::canonicalize(clan).expect("the clan binary");
    if !lab::available("the NixOS benchmark") {
        std::process::exit(1);
    }
    const A: &str = "nixos-bench-a";
    const B: &str = "nixos-bench-b";
    let lab = Lab::start(&[(A, "10.231.0.41"), (B, "10.231.0.42")]);
    let dir = lab.dir.join("clan");
    std::fs::create_dir_all(dir.join("machines").join(A)).expect("clan directory");
    let double =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clan-cli/tests/fixtures/nixpkgs-double");
    let double = std::fs::canonicalize(double).expect("the nixpkgs test double");
    std::fs::write(
        dir.join("clan.nix"),
        format!(
            "{{ meta.name = \"bench\"; meta.nixpkgs = \"{}\";\n  \
             inventory.machines.{A} = {{ machineClass = \"nixos\"; deploy.targetHost = \"root@{}\"; }}; }}\n",
            double.display(),
            lab.ip(A)
        ),
    )
    .expect("clan.nix");
    let key = lab.dir.join("admin-age-key.txt");
    let clan_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&clan);
        cmd.args(args)
            .current_dir(&dir)
            .env("CLAN_AGE_KEY_FILE", &key)
            .env("CLAN_SSH_CONFIG", &lab.ssh_config)
            .env("NIX_CONFIG", "build-users-group =\nsubstituters =");
        cmd
    };
    Command::new("git")
        .args(["init", "-q"])
        .current_dir(&dir)
        .status()
        .expect("git");
    timed(&mut clan_cmd(&["vars", "keygen", "--name", "bench"]));
    println!(
        "| store paths in the system | `clan machines update` (copy, activate, confirm) | update with nothing to do | `nix-copy-closure` alone |"
    );
    println!("|---|---|---|---|");
    // A first update installs the runtime and copies busybox: not measured.
    for n in std::iter::once("0").chain(counts.iter().map(String::as_str)) {
        let warm_up = n == "0";
        let n: u32 = n.parse().expect("a number of store paths");
        std::fs::write(
            dir.join("machines").join(A).join("configuration.nix"),
            format!(
                "{{ ... }}: {{ system.benchmarkPaths = {n}; system.nixos.label = \"n{n}\"; }}\n"
            ),
        )
        .expect("configuration.nix");
        // Built first: the numbers are about copying and activating.
        let built = clan_cmd(&["machines", "update", A, "--dry-run"])
            .output()
            .expect("clan");
        let text = String::from_utf8_lossy(&built.stdout).into_owned();
        let system = text
            .split_whitespace()
            .find(|w| w.starts_with("/nix/store/"))
            .unwrap_or_else(|| {
                panic!(
                    "no system built: {text}{}",
                    String::from_utf8_lossy(&built.stderr)
                )
            })
            .to_string();
        let closure = Command::new("nix-store")
            .args(["--query", "--requisites", &system])
            .output()
            .expect("nix-store");
        let paths = String::from_utf8_lossy(&closure.stdout).lines().count();
        let update = timed(&mut clan_cmd(&["machines", "update", A]));
        let noop = timed(&mut clan_cmd(&["machines", "update", A]));
        let copy = timed(
            Command::new("nix-copy-closure")
                .env("NIX_SSHOPTS", format!("-F {}", lab.ssh_config.display()))
                .args(["--to", &format!("root@{}", lab.ip(B)), &system]),
        );
        if !warm_up {
            println!("| {paths} ({n} new) | {update:.2} s | {noop:.2} s | {copy:.2} s |");
        }
    }
    drop(lab);
}
