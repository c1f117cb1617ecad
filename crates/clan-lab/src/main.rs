//! `clan-lab guide CLAN_BINARY`: the seed's backup guide in the lab, by hand.
//! Boots alice-laptop and backup-server, writes the guide's clan (adapted to the
//! lab) with an admin key, and opens a shell where `clan` talks to them. Leaving
//! the shell tears the lab down.

use std::path::PathBuf;
use std::process::Command;

use clan_lab::lab::{self, Lab};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some("guide"), Some(clan)) = (args.get(1).map(String::as_str), args.get(2)) else {
        eprintln!("usage: clan-lab guide PATH/TO/clan");
        std::process::exit(2);
    };
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
