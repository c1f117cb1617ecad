//! Finding and creating a clan directory.

use std::path::{Path, PathBuf};

use crate::git;

pub const CLAN_NIX: &str = "clan.nix";
pub const INVENTORY_JSON: &str = "inventory.json";
pub const MACHINE_JSON: &str = "configuration.json";
pub const MACHINES_DIR: &str = "machines";
pub const MODULES_DIR: &str = "modules";
/// Where a machine keeps the clan it holds (`clan init --machine-held`): found
/// when no clan is given or around the current directory.
pub const MACHINE_HELD_DIR: &str = "/var/lib/clan/clan";

#[derive(Debug, thiserror::Error)]
pub enum ClanDirError {
    #[error(
        "no clan found in {} or any of its parents, nor in /var/lib/clan/clan (a clan has \
         clan.nix or inventory.json).\n\
         Run `clan init` to create one, or point to one with `--dir DIR` or CLAN_DIR",
        .start.display()
    )]
    NotFound { start: PathBuf },
    #[error("{} is not a clan: it has neither clan.nix nor inventory.json (given by {given_by})", .dir.display())]
    NotAClan {
        dir: PathBuf,
        given_by: &'static str,
    },
    #[error("{} already holds a clan; refusing to overwrite it", .0.display())]
    AlreadyExists(PathBuf),
    #[error("invalid --name: {0}")]
    InvalidName(String),
    #[error(
        "invalid --domain {0:?}: use lowercase DNS labels separated by dots, e.g. home.example"
    )]
    InvalidDomain(String),
    #[error("could not write {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] git::GitError),
}

/// A clan's root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClanDir {
    root: PathBuf,
}

impl ClanDir {
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn clan_nix(&self) -> PathBuf {
        self.root.join(CLAN_NIX)
    }
    pub fn inventory_json(&self) -> PathBuf {
        self.root.join(INVENTORY_JSON)
    }
    pub fn machines_dir(&self) -> PathBuf {
        self.root.join(MACHINES_DIR)
    }
    /// The machine's JSON layer: settings of its configuration that `clan config`
    /// writes (`{"clan": {"core": ...}}`), merged like `machines.<name>` of clan.nix.
    pub fn machine_json(&self, machine: &str) -> PathBuf {
        self.machines_dir().join(machine).join(MACHINE_JSON)
    }
    pub fn modules_dir(&self) -> PathBuf {
        self.root.join(MODULES_DIR)
    }

    fn is_clan(dir: &Path) -> bool {
        dir.join(CLAN_NIX).is_file() || dir.join(INVENTORY_JSON).is_file()
    }

    /// Opens a directory that must be a clan.
    pub fn open(dir: &Path, given_by: &'static str) -> Result<Self, ClanDirError> {
        let root = std::path::absolute(dir).map_err(|source| ClanDirError::Io {
            path: dir.into(),
            source,
        })?;
        if Self::is_clan(&root) {
            Ok(Self { root })
        } else {
            Err(ClanDirError::NotAClan {
                dir: root,
                given_by,
            })
        }
    }

    /// `--dir`, else `$CLAN_DIR`, else the nearest parent of `cwd` holding a clan.
    pub fn find(
        explicit: Option<&Path>,
        env: Option<&Path>,
        cwd: &Path,
    ) -> Result<Self, ClanDirError> {
        if let Some(dir) = explicit {
            return Self::open(dir, "--dir");
        }
        if let Some(dir) = env {
            return Self::open(dir, "CLAN_DIR");
        }
        let start = std::path::absolute(cwd).map_err(|source| ClanDirError::Io {
            path: cwd.into(),
            source,
        })?;
        start
            .ancestors()
            .find(|d| Self::is_clan(d))
            .or_else(|| Some(Path::new(MACHINE_HELD_DIR)).filter(|d| Self::is_clan(d)))
            .map(|d| Self {
                root: d.to_path_buf(),
            })
            .ok_or(ClanDirError::NotFound { start })
    }

    /// `clan init`: a commented clan.nix, inventory.json, machines/, modules/, and a
    /// git repository with a first commit.
    pub fn init(dir: &Path, name: &str, domain: &str) -> Result<Self, ClanDirError> {
        Self::init_with(dir, name, domain, true)
    }

    /// [`ClanDir::init`], with or without a clan.nix: a clan of inventory.json
    /// alone needs no Nix (a machine that holds its own clan may have none).
    pub fn init_with(
        dir: &Path,
        name: &str,
        domain: &str,
        clan_nix: bool,
    ) -> Result<Self, ClanDirError> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ClanDirError::InvalidName(format!(
                "{name:?}: use letters, digits, '_' and '-'"
            )));
        }
        if !is_domain(domain) {
            return Err(ClanDirError::InvalidDomain(domain.to_string()));
        }
        let root = std::path::absolute(dir).map_err(|source| ClanDirError::Io {
            path: dir.into(),
            source,
        })?;
        if Self::is_clan(&root) {
            return Err(ClanDirError::AlreadyExists(root));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ClanDirError::Io { path, source }
        };
        let clan = Self { root };
        for d in [clan.machines_dir(), clan.modules_dir()] {
            std::fs::create_dir_all(&d).map_err(io(&d))?;
            std::fs::write(d.join(".gitkeep"), "").map_err(io(&d))?;
        }
        let template = CLAN_NIX_TEMPLATE
            .replace("@NAME@", name)
            .replace("@DOMAIN@", domain);
        if clan_nix {
            std::fs::write(clan.clan_nix(), template).map_err(io(&clan.clan_nix()))?;
        }
        let inventory = serde_json::json!({ "meta": { "name": name, "domain": domain }, "machines": {}, "instances": {} });
        crate::inventory::write_json(&clan.inventory_json(), &inventory)
            .map_err(io(&clan.inventory_json()))?;
        git::init(clan.root())?;
        git::commit_all(clan.root(), &format!("clan: init {name}"))?;
        Ok(clan)
    }
}

/// Lowercase DNS labels separated by dots.
pub fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

const CLAN_NIX_TEMPLATE: &str = r#"# This is your clan: the machines you run, the services on them and the data
# they must not lose. `clan` reads this file together with inventory.json (which
# the `clan` command edits for you) and every directory under machines/.
#
# Nix here is the language only: there is no nixpkgs. `lib` offers mkOption,
# types, mkIf, mkMerge, mkDefault, mkForce and friends.
{
  # Used in generated names; keep it unique among the clans you manage.
  meta.name = "@NAME@";
  # Machines are reached as root@<machine>.<domain> unless deploy.targetHost is set.
  meta.domain = "@DOMAIN@";

  inventory.machines = {
    # alice-laptop = {
    #   deploy.targetHost = "root@192.0.2.10";
    #   machineClass = "linux";   # nixos (default), darwin, or linux (any systemd Linux)
    #   tags = [ "laptops" ];
    # };
  };

  # Services: an instance of a module, machines join it through roles.
  # List the modules with `clan modules list`, their settings with `clan modules show NAME`.
  inventory.instances = {
    # borgbackup = {
    #   roles.client.tags.laptops = { };
    #   roles.server.machines.nas.settings.directory = "/srv/borgbackup";
    # };
  };

  # Per-machine configuration; machines/<name>/configuration.nix is read as well.
  machines = {
    # alice-laptop = { ... }: {
    #   clan.core.state.documents.folders = [ "/home/alice/documents" ];
    # };
  };
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert!(is_domain("clan"));
        assert!(is_domain("mybackupclan.lol"));
        for bad in ["", "Upper.case", "a..b", "-a.b", "a_b"] {
            assert!(!is_domain(bad), "{bad}");
        }
    }

    #[test]
    fn find_walks_up_and_honours_explicit_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let clan = tmp.path().join("c");
        std::fs::create_dir_all(clan.join("machines/x")).unwrap();
        std::fs::write(clan.join("inventory.json"), "{}").unwrap();
        let found = ClanDir::find(None, None, &clan.join("machines/x")).unwrap();
        assert_eq!(found.root(), clan);
        let err = ClanDir::find(None, None, tmp.path()).unwrap_err();
        assert!(err.to_string().contains("clan init"), "{err}");
        let err = ClanDir::find(Some(tmp.path()), None, &clan).unwrap_err();
        assert!(err.to_string().contains("given by --dir"), "{err}");
        let err = ClanDir::find(None, Some(tmp.path()), &clan).unwrap_err();
        assert!(err.to_string().contains("CLAN_DIR"), "{err}");
    }
}
