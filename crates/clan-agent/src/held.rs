//! The clan this machine holds (`clan init --machine-held`): the API's
//! configuration changes are edits of its inventory.json — checked by the same
//! validation as every edit (a refusal changes nothing), committed with a message
//! naming the device — and `system.runSystemRebuild` applies them through
//! `machines update`. What is served (services, their state) stays what is
//! applied until then.
//!
//! On a machine managed from elsewhere there is no such clan and these changes are
//! refused (409) with the command to run in the clan repository.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use clan_core::event::Reporter;
use clan_core::services::MachineService;
use clan_core::{Clan, ClanDir, ResolvedMachine};
use clan_ops::inventory::{self, Edit, SettingsLayer};
use clan_vars::generate::{PromptRequest, Prompter};

/// A refusal: SelfPrivacy's code (400 bad input, 404 unknown, 409 conflict, 500)
/// and a message for the owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: i32,
    pub message: String,
}

impl Refusal {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, Refusal>;

fn bad(e: clan_ops::Error) -> Refusal {
    Refusal::new(400, e.to_string())
}

/// The clan a machine holds and the machine's name in it.
#[derive(Debug, Clone)]
pub struct Held {
    pub dir: ClanDir,
    pub machine: String,
    /// The admin's age key: vars are generated and deployed with it.
    pub admin_key: std::path::PathBuf,
}

/// One change at a time: edits read, change and write inventory.json.
static EDITING: Mutex<()> = Mutex::new(());

impl Held {
    /// The clan in `dir` when it holds `machine` and updates it here (its target
    /// host is this machine).
    pub fn find(dir: &std::path::Path, machine: &str, admin_key: &std::path::Path) -> Option<Self> {
        let dir = ClanDir::open(dir, "the machine-held clan").ok()?;
        let inventory: Value =
            serde_json::from_slice(&std::fs::read(dir.inventory_json()).ok()?).ok()?;
        let target = inventory["machines"][machine]["deploy"]["targetHost"].as_str();
        clan_ops::remote::is_local(target).then(|| Self {
            dir,
            machine: machine.to_string(),
            admin_key: admin_key.to_path_buf(),
        })
    }

    fn open(&self) -> Result<Clan> {
        Clan::open(self.dir.clone()).map_err(|e| {
            Refusal::new(
                500,
                format!("the clan in {}: {e}", self.dir.root().display()),
            )
        })
    }

    /// Applies the edits `plan` makes (from the clan and the machine resolved from
    /// it), validated, written and committed as `what` by `device`.
    pub fn change(
        &self,
        device: &str,
        what: &str,
        plan: impl FnOnce(&Clan, &ResolvedMachine) -> Result<Vec<Edit>>,
    ) -> Result<()> {
        let _one = EDITING.lock().unwrap_or_else(|e| e.into_inner());
        let clan = self.open()?;
        let resolved = clan
            .resolve(std::slice::from_ref(&self.machine))
            .map_err(|e| Refusal::new(500, format!("the clan does not resolve: {e}")))?;
        let machine = &resolved.machines[&self.machine];
        let edits = plan(&clan, machine)?;
        let message = format!("{what} (agent, device '{device}')");
        inventory::edit(&clan, &edits, &message).map_err(bad)?;
        tracing::info!("{message}: committed");
        Ok(())
    }

    /// Sets a `clan.core` option of the machine in its JSON layer (as `clan config`
    /// does), committed naming `device`.
    pub fn set_option(&self, device: &str, option: &str, value: &Value) -> Result<()> {
        let _one = EDITING.lock().unwrap_or_else(|e| e.into_inner());
        let fleet = self.fleet()?;
        let by = format!("agent, device '{device}'");
        clan_ops::config::set_by(&fleet, &self.machine, option, &value.to_string(), Some(&by))
            .map_err(bad)?;
        tracing::info!("{option} set (by {by}): committed");
        Ok(())
    }

    /// Runs `generator` of the machine (when missing, or always with
    /// `regenerate`), answering its prompts from `answers` (`prompt` → value).
    pub fn generate(
        &self,
        generator: &str,
        answers: BTreeMap<&str, Vec<u8>>,
        regenerate: bool,
    ) -> Result<()> {
        let fleet = self.fleet()?;
        let answers: BTreeMap<String, Vec<u8>> = answers
            .into_iter()
            .map(|(p, v)| (format!("{generator}/{p}"), v))
            .collect();
        let o = clan_ops::vars::GenerateOptions {
            machines: vec![self.machine.clone()],
            generators: vec![generator.to_string()],
            regenerate,
            answered: answers.keys().cloned().collect(),
        };
        let admin = self.admin().map_err(|e| Refusal::new(500, e))?;
        clan_ops::vars::generate_as(
            &fleet,
            &o,
            &admin,
            &Answers(answers),
            &clan_core::event::Silent,
        )
        .map(|_| ())
        .map_err(|e| Refusal::new(500, e.to_string()))
    }

    fn admin(&self) -> std::result::Result<clan_vars::keys::Identity, String> {
        clan_vars::keys::read_identity(&self.admin_key).map_err(|e| e.to_string())
    }

    fn fleet(&self) -> Result<clan_ops::Fleet> {
        clan_ops::Fleet::load(
            self.dir.clone(),
            std::slice::from_ref(&self.machine),
            &clan_core::event::Silent,
        )
        .map_err(|e| Refusal::new(500, format!("the clan does not resolve: {e}")))
    }

    /// `clan machines update` of this machine, here: vars, the runtime, the
    /// configuration. Returns what changed.
    pub fn rebuild(&self, reporter: &dyn Reporter) -> std::result::Result<String, String> {
        let fleet = self.fleet().map_err(|r| r.message)?;
        let o = clan_ops::machines::update::UpdateOptions {
            machines: vec![self.machine.clone()],
            tags: Vec::new(),
            jobs: 1,
            answered: Vec::new(),
            nixos: Default::default(),
        };
        let report =
            clan_ops::machines::update::update(&fleet, &o, &Answers(BTreeMap::new()), reporter)
                .map_err(|e| e.to_string())?;
        match report.machines.into_iter().next().map(|(_, o)| o) {
            Some(clan_ops::machines::update::Outcome::Updated { changes, .. }) => {
                Ok(if changes.is_empty() {
                    "Nothing to change.".into()
                } else {
                    format!("Changed: {}", changes.join("; "))
                })
            }
            Some(clan_ops::machines::update::Outcome::Failed { error }) => Err(error),
            None => Err("the machine was not updated".into()),
        }
    }
}

/// Prompts answered by the API's input (a new user's password); others cannot be
/// asked here.
struct Answers(BTreeMap<String, Vec<u8>>);

impl Prompter for Answers {
    fn ask(&self, r: &PromptRequest<'_>) -> clan_vars::Result<Vec<u8>> {
        self.0
            .get(&format!("{}/{}", r.generator, r.prompt))
            .cloned()
            .ok_or_else(|| clan_vars::VarsError::Generator {
                machine: r.machine.to_string(),
                generator: r.generator.to_string(),
                message: format!(
                    "asks for {} ({}); answer it on the machine: `clan vars generate {}`",
                    r.prompt, r.description, r.machine
                ),
            })
    }
}

/// The settings this machine has of its own in `instance`/`role` (inventory.json).
fn machine_layer(clan: &Clan, instance: &str, role: &str, machine: &str) -> Map<String, Value> {
    std::fs::read(clan.dir.inventory_json())
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|inv| {
            inv["instances"][instance]["roles"][role]["machines"][machine]["settings"]
                .as_object()
                .cloned()
        })
        .unwrap_or_default()
}

/// Sets `values` in the machine's own settings of `instance`/`role`, keeping the
/// others there.
fn set_settings(
    clan: &Clan,
    instance: &str,
    role: &str,
    machine: &str,
    values: Map<String, Value>,
) -> Edit {
    let mut layer = machine_layer(clan, instance, role, machine);
    layer.extend(values);
    Edit::SetRoleSettings {
        instance: instance.into(),
        role: role.into(),
        layer: SettingsLayer::Machine(machine.into()),
        settings: Some(Value::Object(layer)),
    }
}

/// The edits that turn `service` on or off on `machine`.
pub fn enable(service: &MachineService, machine: &str, enabled: bool) -> Result<Vec<Edit>> {
    let Some(instance) = &service.instance else {
        return Err(Refusal::new(
            400,
            format!(
                "{} is a state of this machine, not a service that can be turned off",
                service.id
            ),
        ));
    };
    if !enabled
        && (service.meta.is_required == Some(true) || service.module.as_deref() == Some("agent"))
    {
        return Err(Refusal::new(
            400,
            format!(
                "{} is required and cannot be turned off",
                service.display_name()
            ),
        ));
    }
    Ok(service
        .roles
        .iter()
        .map(|role| Edit::SetEnabled {
            instance: instance.clone(),
            role: role.clone(),
            machine: machine.into(),
            enabled,
        })
        .collect())
}

/// The edits that set a service's configuration items (`{fieldId: value}`).
pub fn configure(
    clan: &Clan,
    service: &MachineService,
    machine: &str,
    values: &Value,
) -> Result<Vec<Edit>> {
    let (Some(instance), Some(values)) = (&service.instance, values.as_object()) else {
        return Err(Refusal::new(
            400,
            "give the configuration as an object of field ids and values",
        ));
    };
    let mut per_role: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (field, value) in values {
        let Some(s) = service.settings.iter().find(|s| &s.field_id == field) else {
            let known: Vec<&str> = service
                .settings
                .iter()
                .map(|s| s.field_id.as_str())
                .collect();
            return Err(Refusal::new(
                400,
                format!(
                    "{} has no setting '{field}' (it has: {})",
                    service.display_name(),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        per_role
            .entry(&s.role)
            .or_default()
            .insert(s.option.clone(), value.clone());
    }
    Ok(per_role
        .into_iter()
        .map(|(role, v)| set_settings(clan, instance, role, machine, v))
        .collect())
}

/// The instance of module `users` that makes `user` on the machine.
pub fn user_instance(m: &ResolvedMachine, user: &str) -> Option<String> {
    m.instances
        .iter()
        .find(|a| a.module == "users" && a.settings["user"] == user)
        .map(|a| a.instance.clone())
}

/// The instance name a user made through the API gets.
pub fn new_user_instance(user: &str) -> String {
    format!("user-{}", user.replace('_', "-"))
}

/// The edits that make `user` (module `users`) on the machine.
pub fn create_user(
    clan: &Clan,
    m: &ResolvedMachine,
    user: &str,
    groups: &[String],
) -> Result<Vec<Edit>> {
    if m.clan_core.users.contains_key(user) || user == "root" {
        return Err(Refusal::new(409, format!("User {user} already exists")));
    }
    let instance = new_user_instance(user);
    if clan.inventory.instances.contains_key(&instance) {
        return Err(Refusal::new(
            409,
            format!("The clan has an instance '{instance}' already"),
        ));
    }
    Ok(vec![
        Edit::CreateInstance {
            instance: instance.clone(),
            module: "users".into(),
            input: None,
        },
        Edit::AddMember {
            instance: instance.clone(),
            role: "default".into(),
            machine: m.name.to_string(),
        },
        Edit::SetRoleSettings {
            instance: instance.clone(),
            role: "default".into(),
            layer: SettingsLayer::Role,
            settings: Some(json!({ "user": user })),
        },
        // The machine's own layer, where updateUser changes them (lists of
        // several layers add up).
        Edit::SetRoleSettings {
            instance,
            role: "default".into(),
            layer: SettingsLayer::Machine(m.name.to_string()),
            settings: Some(json!({ "groups": groups })),
        },
    ])
}

/// The edits that take `user` off the machine: its instance goes when the machine
/// was its only member.
pub fn delete_user(clan: &Clan, m: &ResolvedMachine, user: &str) -> Result<Vec<Edit>> {
    let instance = user_instance(m, user).ok_or_else(|| Refusal::new(404, "User not found"))?;
    let roles = &clan.inventory.instances[&instance].roles;
    let only_here = roles
        .values()
        .all(|r| r.tags.is_empty() && r.machines.iter().all(|x| x == m.name.as_str()));
    if only_here {
        return Ok(vec![Edit::RemoveInstance { instance }]);
    }
    Ok(roles
        .keys()
        .map(|role| Edit::RemoveMember {
            instance: instance.clone(),
            role: role.clone(),
            machine: m.name.to_string(),
        })
        .collect())
}

/// The edits that set a user's extra groups.
pub fn set_groups(
    clan: &Clan,
    m: &ResolvedMachine,
    user: &str,
    groups: &[String],
) -> Result<Vec<Edit>> {
    let instance = user_instance(m, user).ok_or_else(|| Refusal::new(404, "User not found"))?;
    let mut v = Map::new();
    v.insert("groups".into(), json!(groups));
    Ok(vec![set_settings(
        clan,
        &instance,
        "default",
        m.name.as_str(),
        v,
    )])
}

/// SSH key types SelfPrivacy accepts.
const KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

/// The edits that add (or remove) an SSH key of `user`: a user of module `users`,
/// or root (the admins' keys of the `sshd` server role).
pub fn ssh_key(
    clan: &Clan,
    m: &ResolvedMachine,
    user: &str,
    key: &str,
    add: bool,
) -> Result<Vec<Edit>> {
    let key = key.trim();
    let mut words = key.split_whitespace();
    if add && !(words.next().is_some_and(|t| KEY_TYPES.contains(&t)) && words.next().is_some()) {
        return Err(Refusal::new(
            400,
            "Invalid key type. Only ssh-ed25519, ssh-rsa and ecdsa are supported",
        ));
    }
    let machine = m.name.as_str();
    if user == "root" {
        let a = m
            .instances
            .iter()
            .find(|a| a.module == "sshd" && a.role == "server")
            .ok_or_else(|| Refusal::new(404, "This machine has no sshd service for root's keys"))?;
        let mut keys: BTreeMap<String, Value> = a.settings["authorizedKeys"]
            .as_object()
            .map(|o| o.clone().into_iter().collect())
            .unwrap_or_default();
        let present = keys.values().any(|v| v == key);
        match (add, present) {
            (true, true) => return Err(Refusal::new(409, "Key already exists")),
            (false, false) => return Err(Refusal::new(404, "Key not found")),
            (true, false) => {
                let n = (1..)
                    .find(|n| !keys.contains_key(&format!("app-{n}")))
                    .expect("a free name");
                keys.insert(format!("app-{n}"), key.into());
            }
            (false, true) => keys.retain(|_, v| v != key),
        }
        let mut v = Map::new();
        v.insert("authorizedKeys".into(), json!(keys));
        return Ok(vec![set_settings(clan, &a.instance, "server", machine, v)]);
    }
    let instance = user_instance(m, user).ok_or_else(|| Refusal::new(404, "User not found"))?;
    let mut keys: Vec<String> = m
        .clan_core
        .users
        .get(user)
        .map(|u| u.authorized_keys.clone())
        .unwrap_or_default();
    let present = keys.iter().any(|k| k == key);
    match (add, present) {
        (true, true) => return Err(Refusal::new(409, "Key already exists")),
        (false, false) => return Err(Refusal::new(404, "Key not found")),
        (true, false) => keys.push(key.into()),
        (false, true) => keys.retain(|k| k != key),
    }
    let mut v = Map::new();
    v.insert(
        "openssh".into(),
        json!({ "authorizedKeys": { "keys": keys } }),
    );
    Ok(vec![set_settings(clan, &instance, "default", machine, v)])
}

/// The machine's instances that set a backup provider up, with their role, where
/// the role has `option` (`startAt`; `keep` as an object of counts).
fn provider_roles(m: &ResolvedMachine, option: &str) -> Vec<(String, String)> {
    m.instances
        .iter()
        .filter(|a| m.clan_core.backups.providers.contains_key(&a.instance))
        .filter(|a| match a.settings.get(option) {
            Some(Value::Object(_)) => true,
            Some(_) => option != "keep",
            None => false,
        })
        .map(|a| (a.instance.clone(), a.role.clone()))
        .collect()
}

/// A backup period in minutes as a systemd calendar: minutes that divide an hour,
/// hours that divide a day.
pub fn calendar(minutes: i32) -> Result<String> {
    match minutes {
        m if m > 0 && m < 60 && 60 % m == 0 => Ok(format!("*-*-* *:00/{m}:00")),
        m if m > 0 && m % 60 == 0 && 24 % (m / 60) == 0 => Ok(format!("*-*-* 00/{}:00:00", m / 60)),
        _ => Err(Refusal::new(
            400,
            format!(
                "a backup every {minutes} minutes cannot be scheduled: give minutes that divide an \
                 hour (5, 10, 15, 30…) or whole hours that divide a day (60, 120, 360, 720, 1440)"
            ),
        )),
    }
}

/// The edits that set when the machine's providers back up.
pub fn autobackup_period(
    clan: &Clan,
    m: &ResolvedMachine,
    minutes: Option<i32>,
) -> Result<Vec<Edit>> {
    let Some(minutes) = minutes else {
        return Err(Refusal::new(
            400,
            "automatic backups are turned off by turning off the backup service",
        ));
    };
    let at = calendar(minutes)?;
    let roles = provider_roles(m, "startAt");
    if roles.is_empty() {
        return Err(Refusal::new(
            404,
            "This machine has no backup provider with a schedule",
        ));
    }
    Ok(roles
        .into_iter()
        .map(|(i, r)| {
            let mut v = Map::new();
            v.insert("startAt".into(), json!(at));
            set_settings(clan, &i, &r, m.name.as_str(), v)
        })
        .collect())
}

/// The edits that set how many backups the machine's providers keep.
pub fn autobackup_quotas(
    clan: &Clan,
    m: &ResolvedMachine,
    keep: [(&str, i32); 5],
) -> Result<Vec<Edit>> {
    if let Some((name, _)) = keep.iter().find(|(_, n)| *n < 0) {
        return Err(Refusal::new(
            400,
            format!(
                "{name}: keeping backups without limit is not supported; give a number (0: none)"
            ),
        ));
    }
    let roles = provider_roles(m, "keep");
    if roles.is_empty() {
        return Err(Refusal::new(
            404,
            "This machine has no backup provider with quotas",
        ));
    }
    let keep: Map<String, Value> = keep
        .iter()
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    Ok(roles
        .into_iter()
        .map(|(i, r)| {
            let mut v = Map::new();
            v.insert("keep".into(), Value::Object(keep.clone()));
            set_settings(clan, &i, &r, m.name.as_str(), v)
        })
        .collect())
}
