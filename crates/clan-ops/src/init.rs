//! `init`: a new clan in a directory.

use std::path::Path;

use clan_core::ClanDir;

use crate::error::Result;

/// Creates a clan in `dir` (made if missing) named `name`, else after the
/// directory (characters a clan name cannot hold become '-').
pub fn init(dir: &Path, name: Option<&str>, domain: &str) -> Result<(ClanDir, String)> {
    let name = match name {
        Some(n) => n.to_string(),
        None => std::path::absolute(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map(|n| {
                n.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| "my-clan".into()),
    };
    let clan = ClanDir::init(dir, &name, domain)?;
    Ok((clan, name))
}

pub use clan_core::clan_dir::MACHINE_HELD_DIR;

/// What [`machine_held`] made.
#[derive(Debug, Clone)]
pub struct MachineHeld {
    pub clan: ClanDir,
    /// The admin key made for the user running this (None: the user had one).
    pub new_key: Option<std::path::PathBuf>,
}

/// A clan that this machine holds and manages itself: inventory.json alone (no
/// Nix needed on the machine), the machine `machine` reached as `root@localhost`
/// (so `clan machines update` applies here, without SSH), its agent (listening on
/// `agent_listen` when given), and the running user's age key as the clan's admin
/// `admin` (made when missing), so that the agent, running as root, can update.
pub fn machine_held(
    dir: &Path,
    name: Option<&str>,
    domain: &str,
    machine: &clan_core::names::MachineName,
    agent_listen: Option<&str>,
    admin: &str,
) -> Result<MachineHeld> {
    use std::os::unix::fs::PermissionsExt;

    use crate::inventory::{Edit, SettingsLayer};

    if let Some(parent) = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.parent().map(Path::to_path_buf))
    {
        let made = !parent.exists();
        std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
        if made {
            std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io(&parent, e))?;
        }
    }
    let name = name.unwrap_or(machine.as_str());
    let dir = ClanDir::init_with(dir, name, domain, false)?;
    std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io(dir.root(), e))?;
    let key_file = clan_vars::keys::admin_key_file();
    let new_key = (!key_file.exists()).then(|| key_file.clone());
    let identity = clan_vars::keys::ensure_admin_identity(&key_file)?;
    let admin_file =
        clan_vars::store::Store::new(dir.root()).add_admin(admin, &identity.to_public())?;
    clan_core::git::commit_paths(
        dir.root(),
        &[&admin_file],
        &format!("secrets: add admin {admin}"),
    )
    .map_err(clan_core::Error::from)?;
    let clan = clan_core::Clan::open(dir.clone())?;
    let m = machine.to_string();
    let mut edits = vec![
        Edit::SetMachine {
            machine: m.clone(),
            path: Vec::new(),
            value: Some(serde_json::json!({
                "machineClass": "linux",
                "deploy": { "targetHost": "root@localhost" },
            })),
        },
        Edit::CreateInstance {
            instance: "agent".into(),
            module: "agent".into(),
            input: None,
        },
        Edit::AddMember {
            instance: "agent".into(),
            role: "server".into(),
            machine: m.clone(),
        },
    ];
    if let Some(listen) = agent_listen {
        edits.push(Edit::SetRoleSettings {
            instance: "agent".into(),
            role: "server".into(),
            layer: SettingsLayer::Machine(m.clone()),
            settings: Some(serde_json::json!({ "listen": listen })),
        });
    }
    crate::inventory::edit(&clan, &edits, &format!("machines: {m} holds this clan"))?;
    Ok(MachineHeld { clan: dir, new_key })
}

fn io(path: &Path, source: std::io::Error) -> crate::Error {
    crate::Error::Core(Box::new(clan_core::Error::Io {
        context: format!("creating {}", path.display()),
        source,
    }))
}
