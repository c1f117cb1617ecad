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

/// One JSON line per table of the database (`{"table": "schema.name", "rows": N}`),
/// from psql's `\gexec`.
const COUNT_ROWS: &str = r#"SELECT format('SELECT json_build_object(''table'', %L, ''rows'', count(*)) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  ORDER BY 1 \gexec
"#;

const DUMPED: &str = "clan-dump-ok";

/// Rows per table, as recorded beside a dump.
pub type Counts = std::collections::BTreeMap<String, u64>;

fn parse_counts(stdout: &str) -> Counts {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["table"].as_str()?.to_string(), v["rows"].as_u64()?)))
        .collect()
}

/// `pg_dump -Fc` of `db` into `file`, and the row count of every table into
/// [`counts_file`], both from one snapshot of the database: psql holds a
/// repeatable-read transaction open, exports its snapshot, runs pg_dump on it and
/// counts the rows in it (the drill compares a restored copy with these counts).
pub fn dump(cfg: &Postgresql, db: &str, file: &Path) -> Result<()> {
    let tmp = file.with_extension("pgdump.tmp");
    let script = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n\
         SELECT pg_export_snapshot() AS snapshot \\gset\n\
         \\setenv CLAN_SNAPSHOT :snapshot\n\
         \\! pg_dump --format=custom --snapshot=\"$CLAN_SNAPSHOT\" --file=\"$CLAN_DUMP\" \"$CLAN_DB\" && echo {DUMPED}\n\
         {COUNT_ROWS}\
         COMMIT;\n"
    );
    let out = cmd(cfg, "psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--dbname"])
        .arg(db)
        .env("CLAN_DUMP", &tmp)
        .env("CLAN_DB", db)
        .stdin(script)
        .run()
        .map_err(step(format!("pg_dump of database '{db}'")))?;
    let stdout = out.stdout_string();
    if !stdout.lines().any(|l| l == DUMPED) {
        let _ = std::fs::remove_file(&tmp);
        return Err(BackupError::Step {
            step: format!("pg_dump of database '{db}'"),
            message: out.stderr.trim().to_string(),
        });
    }
    let counts = counts_file(file.parent().expect("in a directory"), db);
    let json = serde_json::to_vec_pretty(&serde_json::json!({ "tables": parse_counts(&stdout) }))
        .expect("serialisable");
    std::fs::write(&counts, json)
        .map_err(crate::error::io(format!("writing {}", counts.display())))?;
    std::fs::rename(&tmp, file).map_err(crate::error::io(format!(
        "moving the dump of '{db}' into place"
    )))
}

/// The row counts recorded with the dump of `db` in a state's dump directory.
pub fn counts_file(dir: &Path, db: &str) -> std::path::PathBuf {
    dir.join(format!("{db}.counts.json"))
}

/// Reads a counts file; `None` when the backup has none (made before clan
/// recorded them).
pub fn read_counts(path: &Path) -> Option<Counts> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    serde_json::from_value(v.get("tables")?.clone()).ok()
}

/// Restores `dump` into a new database `scratch` of the machine's cluster and
/// compares its row counts with `want`; returns the differences. The scratch
/// database is dropped afterwards, whatever happened.
pub fn drill(
    cfg: &Postgresql,
    db: &str,
    dump: &Path,
    want: Option<&Counts>,
    scratch: &str,
) -> Result<Vec<String>> {
    cmd(cfg, "createdb")
        .arg(scratch)
        .run()
        .map_err(step(format!("creating the drill's database {scratch}")))?;
    let checked = (|| {
        cmd(cfg, "pg_restore")
            .args(["--exit-on-error", "--dbname"])
            .arg(scratch)
            .arg(dump)
            .run()
            .map_err(step(format!(
                "pg_restore of database '{db}' into {scratch}"
            )))?;
        let out = cmd(cfg, "psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--dbname"])
            .arg(scratch)
            .stdin(COUNT_ROWS)
            .run()
            .map_err(step(format!("counting the rows of {scratch}")))?;
        let got = parse_counts(&out.stdout_string());
        let Some(want) = want else {
            return Ok(Vec::new());
        };
        let mut diff = Vec::new();
        for (table, rows) in want {
            match got.get(table) {
                None => diff.push(format!(
                    "database '{db}': table {table} is missing from the dump"
                )),
                Some(n) if n != rows => diff.push(format!(
                    "database '{db}': table {table} has {n} rows in the dump, {rows} at backup"
                )),
                Some(_) => {}
            }
        }
        for table in got.keys().filter(|t| !want.contains_key(*t)) {
            diff.push(format!(
                "database '{db}': table {table} is in the dump, not in the database at backup"
            ));
        }
        Ok(diff)
    })();
    drop_database(cfg, scratch);
    checked
}

fn drop_database(cfg: &Postgresql, name: &str) {
    let _ = cmd(cfg, "dropdb")
        .args(["--if-exists", "--force", name])
        .run();
}

/// Drops databases whose names start with `prefix` (a killed drill's).
pub fn drop_leftovers(cfg: &Postgresql, prefix: &str) -> Vec<String> {
    let Ok(out) = cmd(cfg, "psql")
        .args(["-X", "-q", "-A", "-t", "--dbname", "postgres", "-c"])
        .arg("SELECT datname FROM pg_database")
        .run()
    else {
        return Vec::new();
    };
    let names: Vec<String> = out
        .stdout_string()
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    for n in &names {
        drop_database(cfg, n);
    }
    names
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
