//! A machine's configuration: `clan.core.*` (typed, validated, with defaults) and
//! everything else (other NixOS settings), kept as opaque data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::names::StateName;
use crate::options::build::*;
use crate::options::{Group, OptionType};

/// `clan.core.state.<name>`: what a machine must not lose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub folders: Vec<String>,
    pub postgres_databases: Vec<String>,
    /// systemd units stopped while restoring and started after.
    pub services: Vec<String>,
    pub pre_backup_script: Option<String>,
    pub post_backup_script: Option<String>,
    pub pre_restore_script: Option<String>,
    pub post_restore_script: Option<String>,
    /// Run by `clan backups drill` on the restored copy (`$DRILL_DIR`); its exit
    /// code decides whether the copy is usable.
    #[serde(default)]
    pub drill_script: Option<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeneratorFile {
    pub secret: bool,
    pub deploy: bool,
    pub owner: String,
    pub group: String,
    pub mode: String,
    pub needed_for: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub persist: bool,
}

/// `clan.core.vars.generators.<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Generator {
    pub share: bool,
    pub dependencies: Vec<String>,
    pub files: BTreeMap<String, GeneratorFile>,
    pub prompts: BTreeMap<String, Prompt>,
    pub runtime_inputs: Vec<String>,
    pub script: String,
    pub validation: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vars {
    pub generators: BTreeMap<String, Generator>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backups {
    /// Provider name -> its settings, by kind (`type`: restic | borg | local | command).
    pub providers: BTreeMap<String, crate::providers::ProviderConfig>,
    /// Where database dumps are staged (and go into every snapshot), and the lock lives.
    pub staging_directory: String,
    /// Run by the backup and drill timers when one fails, with CLAN_MACHINE,
    /// CLAN_PROVIDER, CLAN_STATE (when one state failed) and CLAN_MESSAGE set.
    #[serde(default)]
    pub on_failure: Option<String>,
}

/// How clan reaches the machine's PostgreSQL server for dumps and restores.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Postgresql {
    /// Run pg_dump/pg_restore as this user (e.g. postgres); null: as clan's user.
    pub run_as: Option<String>,
    /// Host or socket directory (PGHOST); null: libpq's default.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Role to connect as (PGUSER); null: libpq's default.
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub require_explicit_update: bool,
    /// NixOS machines: seconds an activation waits for the admin's confirmation
    /// over a new connection before it rolls back by itself.
    #[serde(default = "default_confirm_timeout")]
    pub confirm_timeout: u64,
}

fn default_confirm_timeout() -> u64 {
    30
}

/// `clan.core.networking`: Clan's machine-level names for where it is deployed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Networking {
    pub target_host: Option<String>,
    pub build_host: Option<String>,
}

/// `null` read as the type's default (modules pass settings through that may be null).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A file of a generator's output on the machine (`/var/lib/clan/secrets/vars/<generator>/<file>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VarFile {
    pub generator: String,
    pub file: String,
}

/// `clan.core.users.<name>`: an account `machines update` makes on Linux machines.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// A person's account (home, shell) rather than a system user; default true.
    #[serde(default)]
    pub regular_user: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub authorized_keys: Vec<String>,
    /// The password hash, generated in the clan's vars.
    #[serde(default)]
    pub password_hash: Option<VarFile>,
}

/// `clan.core.sshd`: the admins' keys for root and the host keys from the vars.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sshd {
    /// Name -> public key, added to root's authorized_keys.
    #[serde(default, deserialize_with = "null_as_default")]
    pub authorized_keys: BTreeMap<String, String>,
    #[serde(default)]
    pub host_keys: Option<HostKeys>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeys {
    /// The generator whose `ssh.id_*` files are the machine's host keys.
    pub generator: String,
}

/// `clan.core.borgbackup`: the repositories a borg server keeps for its clients.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Borgbackup {
    #[serde(default)]
    pub server: Option<BorgServer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BorgServer {
    #[serde(default = "default_borg_directory")]
    pub directory: String,
    /// `None` in configurations of older clans that gave every machine a server.
    #[serde(default)]
    pub clients: Option<BTreeMap<String, BorgClient>>,
}

fn default_borg_directory() -> String {
    "/var/lib/borgbackup".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BorgClient {
    #[serde(default)]
    pub path: Option<String>,
    /// The client's key: the var it is in (on the admin's side), or the key itself
    /// (what `machines update` sends).
    #[serde(default)]
    pub authorized_key: Option<KeyRef>,
    /// The key with which the admin's clan prunes this client's repository.
    #[serde(default)]
    pub admin_key: Option<KeyRef>,
    #[serde(default = "yes")]
    pub append_only: bool,
}

fn yes() -> bool {
    true
}

/// A public key, or where it is in another machine's vars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyRef {
    Key(String),
    Var {
        machine: String,
        generator: String,
        file: String,
    },
}

/// `clan.core`, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClanCore {
    pub state: BTreeMap<StateName, State>,
    pub vars: Vars,
    pub backups: Backups,
    pub deployment: Deployment,
    #[serde(default)]
    pub networking: Networking,
    pub postgresql: Postgresql,
    pub users: BTreeMap<String, User>,
    pub sshd: Sshd,
    pub borgbackup: Borgbackup,
    /// The machine agent, when an `agent` instance runs it here.
    #[serde(default)]
    pub agent: Option<AgentConfig>,
    /// The time zone `machines update` sets, when given.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// `clan.core.agent`: how `clan-agent.service` serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentConfig {
    pub listen: String,
    pub tls_certificate: Option<String>,
    pub tls_key: Option<String>,
    pub log_level: String,
}

/// The declarations of `clan.core`, from which its schema and defaults come.
pub fn clan_core_options() -> Group {
    let script = || opt(null_or(lines())).default(Value::Null).node();
    let state = submodule(group([
        (
            "folders",
            // Absolute, without '.', '..', empty components or a trailing '/'.
            opt(list_of(matching(
                "(/([^/.][^/]*|[.][^/.][^/]*|[.][.][^/]+))+",
            )))
            .default(json!([]))
            .desc("Absolute paths of folders to back up (no '.' or '..' components)")
            .node(),
        ),
        (
            "postgresDatabases",
            opt(list_of(str()))
                .default(json!([]))
                .desc("PostgreSQL databases, dumped with pg_dump -Fc")
                .node(),
        ),
        (
            "services",
            opt(list_of(str()))
                .default(json!([]))
                .desc("systemd units stopped during a restore and started after")
                .node(),
        ),
        ("preBackupScript", script()),
        ("postBackupScript", script()),
        ("preRestoreScript", script()),
        ("postRestoreScript", script()),
        ("drillScript", script()),
        (
            "exclude",
            opt(list_of(matching(".*[^ ].*")))
                .default(json!([]))
                .desc("Patterns left out of backups (not empty)")
                .node(),
        ),
    ]));
    let file = submodule(group([
        ("secret", opt(bool()).default(true).node()),
        (
            "deploy",
            opt(bool())
                .default(true)
                .desc("Upload to the machine; false for values only other generators use")
                .node(),
        ),
        ("owner", opt(str()).default("root").node()),
        ("group", opt(str()).default("root").node()),
        ("mode", opt(matching("[0-7]{4}")).default("0400").node()),
        (
            "neededFor",
            opt(enum_of(&[
                "partitioning",
                "activation",
                "users",
                "services",
            ]))
            .default("services")
            .node(),
        ),
    ]));
    let prompt = submodule(group([
        (
            "description",
            opt(null_or(str())).default(Value::Null).node(),
        ),
        (
            "type",
            opt(enum_of(&[
                "hidden",
                "line",
                "multiline",
                "multiline-hidden",
            ]))
            .default("line")
            .node(),
        ),
        (
            "persist",
            opt(bool())
                .default(false)
                .desc("Store the answer as a file of the same name")
                .node(),
        ),
    ]));
    let generator = submodule(group([
        (
            "share",
            opt(bool())
                .default(false)
                .desc("One value for all machines")
                .node(),
        ),
        (
            "dependencies",
            opt(list_of(str())).default(json!([])).node(),
        ),
        (
            "files",
            opt(named_attrs_of(NAME, file)).default(json!({})).node(),
        ),
        (
            "prompts",
            opt(named_attrs_of(NAME, prompt)).default(json!({})).node(),
        ),
        (
            "runtimeInputs",
            opt(list_of(str()))
                .default(json!([]))
                .desc("Programs the script needs")
                .node(),
        ),
        ("script", opt(lines()).default("").node()),
        (
            "validation",
            opt(anything())
                .default(Value::Null)
                .desc("When this changes, the generator runs again")
                .node(),
        ),
    ]));
    group([
        (
            "state",
            opt(named_attrs_of("[a-zA-Z0-9_-]+", state))
                .default(json!({}))
                .desc("What this machine must not lose")
                .node(),
        ),
        (
            "vars",
            nested([(
                "generators",
                opt(named_attrs_of(NAME, generator))
                    .default(json!({}))
                    .node(),
            )]),
        ),
        (
            "backups",
            nested([
                (
                    "providers",
                    opt(named_attrs_of(NAME, attrs_of(anything())))
                        .default(json!({}))
                        .desc("Where backups go; each has a `type` (restic, borg, local, command)")
                        .node(),
                ),
                (
                    "stagingDirectory",
                    opt(matching("/.*"))
                        .default("/var/lib/clan/backup")
                        .desc("Database dumps are staged here; it goes into every snapshot")
                        .node(),
                ),
                (
                    "onFailure",
                    opt(null_or(lines()))
                        .default(Value::Null)
                        .desc(
                            "A command the backup and drill timers run when one fails \
                             (CLAN_MACHINE, CLAN_PROVIDER, CLAN_STATE, CLAN_MESSAGE in its \
                             environment), e.g. to send a mail",
                        )
                        .node(),
                ),
            ]),
        ),
        (
            "deployment",
            nested([
                ("requireExplicitUpdate", opt(bool()).default(false).node()),
                (
                    "confirmTimeout",
                    opt(OptionType::IntBetween { min: 5, max: 3600 })
                        .default(30)
                        .desc(
                            "NixOS machines: seconds an activation waits for the admin's \
                             confirmation over a new connection before it rolls back by itself",
                        )
                        .node(),
                ),
            ]),
        ),
        (
            // Clan's names for the inventory's deploy.targetHost and deploy.buildHost.
            "networking",
            nested([
                (
                    "targetHost",
                    opt(null_or(str()))
                        .default(Value::Null)
                        .desc("As deploy.targetHost of the inventory ([user@]host[:port])")
                        .node(),
                ),
                (
                    "buildHost",
                    opt(null_or(str()))
                        .default(Value::Null)
                        .desc("As deploy.buildHost of the inventory")
                        .node(),
                ),
            ]),
        ),
        (
            "postgresql",
            nested([
                (
                    "runAs",
                    opt(null_or(str()))
                        .default(Value::Null)
                        .desc("Run pg_dump/pg_restore as this user, e.g. postgres")
                        .node(),
                ),
                (
                    "host",
                    opt(null_or(str()))
                        .default(Value::Null)
                        .desc("Host or socket directory (PGHOST)")
                        .node(),
                ),
                ("port", opt(null_or(port())).default(Value::Null).node()),
                (
                    "user",
                    opt(null_or(str()))
                        .default(Value::Null)
                        .desc("Role to connect as (PGUSER)")
                        .node(),
                ),
            ]),
        ),
        ("users", opt(attrs_of(anything())).default(json!({})).node()),
        ("sshd", opt(anything()).default(json!({})).node()),
        ("borgbackup", opt(anything()).default(json!({})).node()),
        ("agent", opt(anything()).default(Value::Null).node()),
        (
            "timezone",
            opt(null_or(matching(TIMEZONE_PATTERN)))
                .default(Value::Null)
                .desc("The machine's time zone, an IANA name (e.g. Europe/Berlin); null: left as it is")
                .node(),
        ),
    ])
}

/// IANA time zone names: `Area/Location`, `UTC`, `Etc/GMT+1`…
pub const TIMEZONE_PATTERN: &str = "[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*";

const NAME: &str = "[a-zA-Z0-9._-]+";
