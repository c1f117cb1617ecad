//! The `command` provider: Clan's interface, unchanged. `list` prints a JSON array
//! of `{name, job_name?}` (one name per line is accepted too), `create` makes a
//! backup, `restore` restores NAME's FOLDERS in place (FOLDERS is ':'-separated;
//! FOLDERS_FILE names a file with one folder per line, for long lists).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Listed, Provider, SnapshotRequest};
use crate::config::CommandConfig;
use crate::engine::Keep;
use crate::error::{BackupError, Result, io};
use crate::event::Reporter;
use crate::hooks::run_script;

pub struct Command {
    name: String,
    config: CommandConfig,
}

impl Command {
    pub fn new(name: &str, config: &CommandConfig) -> Self {
        Self {
            name: name.to_string(),
            config: config.clone(),
        }
    }
}

impl Provider for Command {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(&self, req: &SnapshotRequest, reporter: &dyn Reporter) -> Result<Listed> {
        run_script(
            &format!("create command of provider '{}'", self.name),
            &self.config.create,
            &[],
            reporter,
        )?;
        let newest = self.list()?.pop();
        Ok(newest.unwrap_or(Listed {
            name: req.name.clone(),
            time: req.time.clone(),
            states: vec![],
            reason: None,
            size: None,
            missing: vec![],
        }))
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let out = run_script(
            &format!("list command of provider '{}'", self.name),
            &self.config.list,
            &[],
            &crate::event::Silent,
        )?;
        let names: Vec<String> = match serde_json::from_str::<serde_json::Value>(&out) {
            Ok(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i["name"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| BackupError::Provider {
                            provider: self.name.clone(),
                            message: format!("list printed an entry without a \"name\": {i}"),
                        })
                })
                .collect::<Result<_>>()?,
            _ => out
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        };
        Ok(names
            .into_iter()
            .map(|name| Listed {
                name,
                time: String::new(),
                states: vec![],
                reason: None,
                size: None,
                missing: vec![],
            })
            .collect())
    }

    fn restore_path(
        &self,
        _name: &str,
        _path: &Path,
        _dest: &Path,
        _reporter: &dyn Reporter,
    ) -> Result<()> {
        Err(BackupError::Config(format!(
            "provider '{}' (command) restores in place only",
            self.name
        )))
    }

    fn restores_in_place_only(&self) -> bool {
        true
    }

    fn restore_in_place(
        &self,
        name: &str,
        folders: &[PathBuf],
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let mut list = tempfile::NamedTempFile::new().map_err(io("creating the folder list"))?;
        for f in folders {
            writeln!(list, "{}", f.display()).map_err(io("writing the folder list"))?;
        }
        let joined = folders
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let file = list.path().display().to_string();
        run_script(
            &format!("restore command of provider '{}'", self.name),
            &self.config.restore,
            &[
                ("NAME", name),
                ("FOLDERS", &joined),
                ("FOLDERS_FILE", &file),
            ],
            reporter,
        )?;
        Ok(())
    }

    fn check(&self, _read_data: bool) -> Result<String> {
        Ok("the command provider has no check; nothing verified".into())
    }

    fn prune(&self, _keep: &Keep) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Clan's provider interface has no command to remove one backup.
    fn forget(&self, name: &str) -> Result<()> {
        Err(BackupError::Provider {
            provider: self.name.clone(),
            message: format!(
                "cannot remove backup '{name}': command providers have no command for it; remove \
                 it where the commands keep it"
            ),
        })
    }
}
