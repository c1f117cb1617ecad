//! PostgreSQL databases of a state: `pg_dump -Fc` into the staging directory before
//! the snapshot; on restore, drop and re-create the database from its dump.

use std::path::Path;

use clan_core::machine::Postgresql;
use clan_core::process::Cmd;

use crate::error::{BackupError, Result};

fn cmd(cfg: &Postgresql, program: &str) -> Cmd {
    // runuser waits for its child: both die with clan (see Cmd::die_with_parent).
    let mut cmd = match &cfg.run_as {
        Some(user) => Cmd::new("runuser").args([
            "-u",
            user,
            "--",
            "setpriv",
            "--pdeathsig",
            "KILL",
            "--",
            program,
        ]),
        None => Cmd::new(program),
    }
    .die_with_parent();
    if let Some(h) = &cfg.host {
        cmd = cmd.env("PGHOST", h);
    }
    if let Some(p) = cfg.port {
        cmd = cmd.env("PGPORT", p.to_string());
    }
    if let Some(u) = &cfg.user {
        cmd = cmd.env("PGUSER", u);
    }
    cmd
}

fn step(what: String) -> impl FnOnce(clan_core::process::CommandError) -> BackupError {
    move |e| BackupError::Step {
        step: what,
        message: e.to_string(),
    }
}

pub fn dump(cfg: &Postgresql, db: &str, file: &Path) -> Result<()> {
    let tmp = file.with_extension("pgdump.tmp");
    cmd(cfg, "pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&tmp)
        .arg(db)
        .run()
        .map_err(step(format!("pg_dump of database '{db}'")))?;
    std::fs::rename(&tmp, file).map_err(crate::error::io(format!(
        "moving the dump of '{db}' into place"
    )))
}

pub fn restore(cfg: &Postgresql, db: &str, file: &Path) -> Result<()> {
    cmd(cfg, "dropdb")
        .args(["--if-exists", "--force", db])
        .run()
        .map_err(step(format!("dropping database '{db}'")))?;
    cmd(cfg, "pg_restore")
        .args(["--create", "--exit-on-error", "--dbname=postgres"])
        .arg(file)
        .run()
        .map_err(step(format!("pg_restore of database '{db}'")))?;
    Ok(())
}

/// The dump file of `db` inside a state's dump directory.
pub fn dump_file(dir: &Path, db: &str) -> std::path::PathBuf {
    dir.join(format!("{db}.pgdump"))
}
