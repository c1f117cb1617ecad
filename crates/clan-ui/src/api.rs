//! The API the frontend calls: JSON in, JSON out, every action through clan-ops
//! (the code the CLI runs). Errors are `{ "error": message, "issues": [{ path,
//! message }] }` in the CLI's words, with the path of each bad setting so a form can
//! show it at its field.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use clan_core::inventory::settings::Layer;
use clan_core::{Clan, ClanDir};
use clan_ops::Fleet;
use clan_ops::inventory::{Edit, SettingsLayer};

use crate::server::Shared;

/// An answer that is an error: status, the CLI's message, and the bad settings.
pub struct ApiError {
    status: StatusCode,
    message: String,
    issues: Vec<Value>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            issues: Vec::new(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<clan_ops::Error> for ApiError {
    fn from(e: clan_ops::Error) -> Self {
        let issues = match &e {
            clan_ops::Error::Core(core) => match core.as_ref() {
                clan_core::Error::InvalidSettings { issues, .. }
                | clan_core::Error::InvalidMachineConfig { issues, .. } => issues
                    .iter()
                    .map(|i| json!({ "path": i.path, "message": i.message }))
                    .collect(),
                clan_core::Error::Inventory(clan_core::inventory::InventoryError::Invalid(
                    issues,
                )) => issues
                    .iter()
                    .map(|i| json!({ "path": i.path, "message": i.message }))
                    .collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let status = match e.kind() {
            clan_ops::ErrorKind::Backup | clan_ops::ErrorKind::Partial => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let mut message = e.to_string();
        if let Some(hint) = e.hint() {
            message.push_str(&format!("\nhint: {hint}"));
        }
        Self {
            status,
            message,
            issues,
        }
    }
}

impl From<clan_core::Error> for ApiError {
    fn from(e: clan_core::Error) -> Self {
        clan_ops::Error::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.message, "issues": self.issues });
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

/// Runs blocking work (Nix, git, SSH) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking work panicked")
}

/// Each file a clan is read from, and when it changed.
type Fingerprint = Vec<(std::path::PathBuf, Option<SystemTime>)>;

/// The evaluated clan, reused while none of its files changed.
#[derive(Default)]
pub struct ClanCache(Mutex<Option<(Fingerprint, Arc<Clan>)>>);

impl ClanCache {
    fn get(&self, dir: &ClanDir) -> Result<Arc<Clan>, ApiError> {
        let seen = fingerprint(dir);
        let mut cache = self.0.lock().expect("cache");
        if let Some((f, clan)) = &*cache
            && *f == seen
        {
            return Ok(clan.clone());
        }
        let clan = Arc::new(Clan::open(dir.clone())?);
        *cache = Some((seen, clan.clone()));
        Ok(clan)
    }
}

/// The modification times of everything a clan is read from.
fn fingerprint(dir: &ClanDir) -> Fingerprint {
    fn walk(p: &std::path::Path, out: &mut Fingerprint) {
        let meta = std::fs::symlink_metadata(p).ok();
        out.push((
            p.to_path_buf(),
            meta.as_ref().and_then(|m| m.modified().ok()),
        ));
        if meta.is_some_and(|m| m.is_dir()) {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, out);
            }
        }
    }
    let mut out = Vec::new();
    for p in [
        dir.clan_nix(),
        dir.inventory_json(),
        dir.machines_dir(),
        dir.modules_dir(),
    ] {
        walk(&p, &mut out);
    }
    out
}

fn clan_of(app: &Shared) -> ApiResult<Arc<Clan>> {
    app.cache.get(&app.config.dir)
}

/// The clan opened and `names` resolved (all when empty), as the CLI's commands do.
fn fleet(app: &Shared, names: &[String]) -> ApiResult<Fleet> {
    Ok(Fleet::load_only(
        app.config.dir.clone(),
        names,
        &clan_core::event::Silent,
    )?)
}

/// [`fleet`] (all machines resolved when `names` is empty), off the async threads.
async fn fleet_off_thread(app: &Shared, names: Vec<String>) -> ApiResult<Fleet> {
    let app = app.clone();
    blocking(move || fleet(&app, &names)).await
}

/// Overview: the clan and its machines (cheap: the inventory only).
pub async fn clan(State(app): State<Shared>) -> ApiResult {
    blocking(move || {
        let clan = match clan_of(&app) {
            Ok(c) => c,
            Err(e) => {
                return Ok(Json(json!({
                    "name": null, "machines": [], "instances": [],
                    "dir": app.config.dir.root(), "problems": [e.message],
                })));
            }
        };
        let inv = &clan.inventory;
        let machines: Vec<Value> = inv
            .machines
            .values()
            .map(|m| {
                json!({
                    "name": m.name, "description": m.description, "class": m.machine_class,
                    "tags": m.tags, "targetHost": m.deploy.target_host,
                })
            })
            .collect();
        Ok(Json(json!({
            "name": inv.meta.name, "domain": inv.meta.domain, "description": inv.meta.description,
            "dir": app.config.dir.root(), "machines": machines,
            "instances": inv.instances.keys().collect::<Vec<_>>(), "problems": [],
        })))
    })
    .await
}

/// A machine: its resolved configuration (instances, roles, settings and where
/// each came from), states, services, vars (secret values never), prompts.
pub async fn machine(State(app): State<Shared>, Path(name): Path<String>) -> ApiResult {
    blocking(move || {
        let fleet = fleet(&app, std::slice::from_ref(&name))?;
        let m = fleet.machine(&name)?;
        let vars = clan_ops::vars::list(&fleet, &name)?;
        let mut prompts = Vec::new();
        for (g, decl) in &m.clan_core.vars.generators {
            let missing = vars
                .iter()
                .any(|v| v.id.starts_with(&format!("{g}/")) && !v.set);
            for (p, prompt) in &decl.prompts {
                prompts.push(json!({
                    "generator": g, "prompt": p, "description": prompt.description,
                    "type": prompt.kind, "missing": missing,
                }));
            }
        }
        let states: Vec<Value> = m
            .clan_core
            .state
            .iter()
            .map(|(n, s)| json!({ "name": n, "folders": s.folders, "services": s.services, "postgresDatabases": s.postgres_databases }))
            .collect();
        let instances: Vec<Value> = m
            .instances
            .iter()
            .map(|a| {
                let sources = setting_sources(&fleet.clan, a, &m.name, &m.tags);
                json!({ "instance": a.instance, "module": a.module, "role": a.role, "settings": a.settings, "sources": sources })
            })
            .collect();
        Ok(Json(json!({
            "name": m.name, "description": m.description, "class": m.machine_class,
            "tags": m.tags, "deploy": m.deploy, "instances": instances, "states": states,
            "services": m.services, "vars": vars, "prompts": prompts,
            "providers": m.clan_core.backups.providers.keys().collect::<Vec<_>>(),
            "sources": m.provenance,
            "undeletable": clan_ops::machines::delete::why_not(&fleet.clan, &m.name),
        })))
    })
    .await
}

/// Where each top-level setting of `a` on `machine` comes from: the layers that set
/// it (role-wide, its tags, its own; the last wins), or nothing for a default.
fn setting_sources(
    clan: &Clan,
    a: &clan_core::RoleAssignment,
    machine: &str,
    tags: &[String],
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(role) = clan
        .inventory
        .instances
        .get(&a.instance)
        .and_then(|i| i.roles.get(&a.role))
    else {
        return out;
    };
    for def in role.settings.for_machine(machine, tags) {
        for key in def.value.as_object().into_iter().flat_map(|o| o.keys()) {
            out.entry(key.clone())
                .or_default()
                .push(def.source.0.clone());
        }
    }
    out
}

/// What is wrong with the clan: errors of the whole resolution, and vars to fix.
pub async fn problems(State(app): State<Shared>) -> ApiResult {
    blocking(move || {
        let fleet = match Fleet::load(app.config.dir.clone(), &[], &clan_core::event::Silent) {
            Ok(f) => f,
            Err(e) => return Ok(Json(json!([ApiError::from(e).message]))),
        };
        let mut out: Vec<String> = Vec::new();
        match clan_ops::vars::check(&fleet) {
            Ok(checked) => {
                out.extend(
                    checked
                        .missing
                        .iter()
                        .map(|m| format!("vars to generate: {m}")),
                );
                out.extend(
                    checked
                        .todo()
                        .into_iter()
                        .filter(|t| !t.contains("need to run")),
                );
            }
            Err(e) => out.push(e.to_string()),
        }
        Ok(Json(json!(out)))
    })
    .await
}

/// Which machines answer over the connection `machines update` uses.
pub async fn reachability(State(app): State<Shared>) -> ApiResult {
    let fleet = fleet_off_thread(&app, Vec::new()).await?;
    let found = blocking(move || {
        clan_ops::machines::check::reachability(&fleet, &clan_ops::machines::update::ssh)
    })
    .await;
    Ok(Json(json!(found)))
}

/// Every module: its roles and each role's settings as JSON Schema.
pub async fn modules(State(app): State<Shared>) -> ApiResult {
    blocking(move || {
        let clan = clan_of(&app)?;
        let mut out = Vec::new();
        for m in clan.registry.all() {
            let mut roles = serde_json::Map::new();
            for (r, info) in &m.roles {
                let schema = clan_core::schema::document(&info.interface)
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                roles.insert(
                    r.clone(),
                    json!({ "description": info.description, "schema": schema }),
                );
            }
            out.push(json!({
                "name": m.name, "description": m.manifest.description,
                "builtin": matches!(m.origin, clan_core::modules::Origin::Builtin),
                "roles": roles,
            }));
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// Every instance: its module, and per role its members and settings layers (with
/// the file each layer is written in: the UI edits inventory.json only).
pub async fn instances(State(app): State<Shared>) -> ApiResult {
    blocking(move || {
        let clan = clan_of(&app)?;
        let mut out = Vec::new();
        for (name, i) in &clan.inventory.instances {
            let mut roles = serde_json::Map::new();
            for (r, role) in &i.roles {
                let mut defs = Vec::new();
                for (layer, def) in &role.settings.defs {
                    let (kind, of) = match layer {
                        Layer::RoleWide => ("role", None),
                        Layer::Tag(t) => ("tag", Some(t.clone())),
                        Layer::Machine(m) => ("machine", Some(m.clone())),
                    };
                    defs.push(json!({
                        "layer": kind, "of": of, "settings": def.value,
                        "source": def.source.0,
                        "editable": def.source.0.starts_with("inventory.json"),
                    }));
                }
                roles.insert(
                    r.clone(),
                    json!({
                        "machines": role.machines, "tags": role.tags,
                        "disabled": role.disabled, "layers": defs,
                    }),
                );
            }
            out.push(json!({
                "name": name, "module": i.module.name, "input": i.module.input, "roles": roles,
            }));
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

#[derive(Deserialize)]
pub struct NewInstance {
    instance: String,
    module: String,
    input: Option<String>,
}

pub async fn create_instance(State(app): State<Shared>, Json(n): Json<NewInstance>) -> ApiResult {
    edit(
        app,
        vec![Edit::CreateInstance {
            instance: n.instance.clone(),
            module: n.module.clone(),
            input: n.input,
        }],
        format!("instances: add {} ({})", n.instance, n.module),
    )
    .await
}

/// Settings of one layer of a role: `{ "layer": "role" | "tag" | "machine", "of":
/// tag or machine, "settings": object or null (removes them) }`.
#[derive(Deserialize)]
pub struct SettingsInput {
    layer: String,
    of: Option<String>,
    settings: Option<Value>,
}

pub async fn set_settings(
    State(app): State<Shared>,
    Path((instance, role)): Path<(String, String)>,
    Json(s): Json<SettingsInput>,
) -> ApiResult {
    let layer = match (s.layer.as_str(), s.of) {
        ("role", _) => SettingsLayer::Role,
        ("tag", Some(t)) => SettingsLayer::Tag(t),
        ("machine", Some(m)) => SettingsLayer::Machine(m),
        _ => {
            return Err(ApiError::bad(
                "layer: \"role\", or \"tag\"/\"machine\" with \"of\"",
            ));
        }
    };
    let which = match &layer {
        SettingsLayer::Role => "role-wide".to_string(),
        SettingsLayer::Tag(t) => format!("tag {t}"),
        SettingsLayer::Machine(m) => format!("machine {m}"),
    };
    let message = format!("instances: settings of {instance} {role} ({which})");
    edit(
        app,
        vec![Edit::SetRoleSettings {
            instance,
            role,
            layer,
            settings: s.settings,
        }],
        message,
    )
    .await
}

/// The machines and tags of a role (inventory.json's part of them).
#[derive(Deserialize)]
pub struct MembersInput {
    machines: Vec<String>,
    tags: Vec<String>,
}

pub async fn set_members(
    State(app): State<Shared>,
    Path((instance, role)): Path<(String, String)>,
    Json(want): Json<MembersInput>,
) -> ApiResult {
    let app2 = app.clone();
    let (inst, r) = (instance.clone(), role.clone());
    let edits = blocking(move || -> ApiResult<Vec<Edit>> {
        let json = clan_core::inventory::read_json_object(&app2.config.dir.inventory_json())
            .map_err(clan_core::Error::from)?
            .unwrap_or_else(|| json!({}));
        let role_json = &json["instances"][&inst]["roles"][&r];
        let have: Vec<String> = role_json["machines"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let mut edits: Vec<Edit> = Vec::new();
        for m in want.machines.iter().filter(|m| !have.contains(m)) {
            edits.push(Edit::AddMember {
                instance: inst.clone(),
                role: r.clone(),
                machine: m.clone(),
            });
        }
        for m in have.iter().filter(|m| !want.machines.contains(m)) {
            edits.push(Edit::RemoveMember {
                instance: inst.clone(),
                role: r.clone(),
                machine: m.clone(),
            });
        }
        let current_tags: Vec<String> = match &role_json["tags"] {
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Value::Object(o) => o.keys().cloned().collect(),
            _ => Vec::new(),
        };
        if current_tags != want.tags {
            edits.push(Edit::SetRoleTags {
                instance: inst.clone(),
                role: r.clone(),
                tags: want.tags.clone(),
            });
        }
        Ok(edits)
    })
    .await?;
    edit(
        app,
        edits,
        format!("instances: members of {instance} {role}"),
    )
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMachine {
    name: String,
    class: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    target_host: Option<String>,
    description: Option<String>,
}

pub async fn create_machine(State(app): State<Shared>, Json(n): Json<NewMachine>) -> ApiResult {
    blocking(move || {
        let name = clan_core::names::MachineName::new(&n.name)
            .map_err(|e| ApiError::bad(format!("machine name {:?}: {e}", n.name)))?;
        let class = match n.class.as_deref() {
            None | Some("") => None,
            Some(c) => Some(serde_json::from_value(json!(c)).map_err(|_| {
                ApiError::bad(format!("machine class {c:?}: one of nixos, darwin, linux"))
            })?),
        };
        let fleet = Fleet::unresolved(app.config.dir.clone())?;
        let written = clan_ops::machines::create::create(
            &fleet,
            &name,
            &clan_ops::machines::create::CreateOptions {
                tags: n.tags,
                target_host: n.target_host.filter(|t| !t.is_empty()),
                class,
                description: n.description.filter(|d| !d.is_empty()),
            },
        )?;
        Ok(Json(json!({ "committed": written.committed })))
    })
    .await
}

/// Deleting a machine needs its name typed again (`{ "confirm": name }`).
#[derive(Deserialize)]
pub struct Confirm {
    confirm: String,
}

pub async fn delete_machine(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Json(c): Json<Confirm>,
) -> ApiResult {
    if c.confirm != name {
        return Err(ApiError::bad(format!(
            "type the machine's name ({name}) to delete it"
        )));
    }
    blocking(move || {
        let fleet = Fleet::unresolved(app.config.dir.clone())?;
        let deleted = clan_ops::machines::delete::delete(&fleet, &name)?;
        Ok(Json(serde_json::to_value(deleted).expect("serialisable")))
    })
    .await
}

/// Applies inventory edits (validated, written, committed with `message`).
async fn edit(app: Shared, edits: Vec<Edit>, message: String) -> ApiResult {
    blocking(move || {
        let clan = clan_of(&app)?;
        let written = clan_ops::inventory::edit(&clan, &edits, &message)?;
        Ok(Json(
            json!({ "committed": written.committed, "message": message }),
        ))
    })
    .await
}

/// The machine's backups, per provider (errors per provider beside).
pub async fn backups(State(app): State<Shared>, Path(name): Path<String>) -> ApiResult {
    blocking(move || {
        let fleet = fleet(&app, std::slice::from_ref(&name))?;
        let per = clan_ops::backups::on(&fleet, &name, false)?
            .list(None, &clan_core::event::Silent)
            .map_err(clan_ops::Error::from)?;
        let providers: Vec<Value> = per
            .into_iter()
            .map(|(p, r)| match r {
                Ok(list) => json!({ "provider": p, "backups": list }),
                Err(e) => json!({ "provider": p, "error": e.to_string() }),
            })
            .collect();
        Ok(Json(Value::Array(providers)))
    })
    .await
}

#[derive(Deserialize, Default)]
pub struct BackUp {
    provider: Option<String>,
    state: Option<String>,
}

/// "Back up now": a job (all providers, or one; all states, or one).
pub async fn back_up(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Json(b): Json<BackUp>,
) -> ApiResult {
    let fleet = fleet_off_thread(&app, vec![name.clone()]).await?;
    let title = format!("Back up {name}");
    let id = app.jobs.start(title, move |reporter| {
        let mut on = clan_ops::backups::on(&fleet, &name, false).map_err(|e| e.to_string())?;
        if let Some(s) = &b.state {
            on.machine = on
                .machine
                .only_states(std::slice::from_ref(s))
                .map_err(|e| e.to_string())?;
        }
        let per = on
            .create(
                b.provider.as_deref(),
                clan_backup::Reason::Explicit,
                reporter,
            )
            .map_err(|e| e.to_string())?;
        per_provider(per)
    });
    Ok(Json(json!({ "job": id })))
}

/// One result per provider as JSON; fails when every provider failed.
fn per_provider<T: serde::Serialize>(
    per: clan_ops::backups::PerProvider<T>,
) -> Result<Value, String> {
    let failed: Vec<String> = per
        .iter()
        .filter_map(|(p, r)| r.as_ref().err().map(|e| format!("{p}: {e}")))
        .collect();
    if !failed.is_empty() && failed.len() == per.len() {
        return Err(failed.join("\n"));
    }
    Ok(Value::Array(
        per.into_iter()
            .map(|(p, r)| match r {
                Ok(v) => json!({ "provider": p, "result": v }),
                Err(e) => json!({ "provider": p, "error": e.to_string() }),
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
pub struct RestoreInput {
    provider: String,
    backup: String,
    state: Option<String>,
}

/// Restore of a chosen backup (and state), exact, with a safety backup first: a job.
pub async fn restore(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Json(r): Json<RestoreInput>,
) -> ApiResult {
    let fleet = fleet_off_thread(&app, vec![name.clone()]).await?;
    let title = format!("Restore {name} from {} {}", r.provider, r.backup);
    let id = app.jobs.start(title, move |reporter| {
        let options = clan_backup::RestoreOptions {
            state: r.state.clone(),
            ..Default::default()
        };
        let report = clan_ops::backups::on(&fleet, &name, false)
            .map_err(|e| e.to_string())?
            .restore(&r.provider, &r.backup, &options, reporter)
            .map_err(|e| e.to_string())?;
        Ok(serde_json::to_value(report).expect("serialisable"))
    });
    Ok(Json(json!({ "job": id })))
}

/// The machine's backup health (`clan backups status MACHINE`).
pub async fn health(State(app): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let fleet = fleet_off_thread(&app, vec![name]).await?;
    let lines = blocking(move || clan_ops::health::status(&fleet)).await;
    Ok(Json(json!(lines)))
}

/// "Run a restore drill" (`clan backups drill MACHINE`): a job; its result is the
/// list of drills.
pub async fn drill(State(app): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let fleet = fleet_off_thread(&app, vec![name.clone()]).await?;
    let id = app
        .jobs
        .start(format!("Restore drill of {name}"), move |reporter| {
            let per = clan_ops::backups::on(&fleet, &name, false)
                .map_err(|e| e.to_string())?
                .drill(None, None, reporter)
                .map_err(|e| e.to_string())?;
            let mut drills = Vec::new();
            for (provider, r) in per {
                drills.extend(r.map_err(|e| format!("{provider}: {e}"))?);
            }
            let failed: Vec<String> = drills
                .iter()
                .filter(|d| !d.ok)
                .map(|d| {
                    let why = d.error.clone().or_else(|| d.mismatches.first().cloned());
                    format!(
                        "{}: state '{}' FAILED: {}",
                        d.provider,
                        d.state,
                        why.unwrap_or_default()
                    )
                })
                .collect();
            if !failed.is_empty() {
                return Err(failed.join("\n"));
            }
            Ok(serde_json::to_value(drills).expect("serialisable"))
        });
    Ok(Json(json!({ "job": id })))
}

/// Prompt answers (`{ "answers": { "GEN/PROMPT": value } }`) and generation of
/// the machine's missing vars: a job. Answers stay in memory.
#[derive(Deserialize)]
pub struct VarsInput {
    #[serde(default)]
    answers: BTreeMap<String, String>,
}

pub async fn generate_vars(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Json(v): Json<VarsInput>,
) -> ApiResult {
    let fleet = fleet_off_thread(&app, Vec::new()).await?;
    let title = format!("Generate the vars of {name}");
    let key = app.config.admin_key_file.clone();
    let id = app.jobs.start(title, move |reporter| {
        let admin = clan_vars::keys::read_identity(&key).map_err(|e| e.to_string())?;
        let o = clan_ops::vars::GenerateOptions {
            machines: vec![name],
            answered: v.answers.keys().cloned().collect(),
            ..Default::default()
        };
        let generated =
            clan_ops::vars::generate_as(&fleet, &o, &admin, &Answers(v.answers), reporter)
                .map_err(|e| e.to_string())?;
        Ok(serde_json::to_value(generated).expect("serialisable"))
    });
    Ok(Json(json!({ "job": id })))
}

struct Answers(BTreeMap<String, String>);

impl clan_vars::generate::Prompter for Answers {
    fn ask(&self, r: &clan_vars::generate::PromptRequest<'_>) -> clan_vars::Result<Vec<u8>> {
        self.0
            .get(&format!("{}/{}", r.generator, r.prompt))
            .map(|v| v.clone().into_bytes())
            .ok_or_else(|| clan_vars::VarsError::Generator {
                machine: r.machine.to_string(),
                generator: r.generator.to_string(),
                message: format!("prompt {} has no answer: answer it in the form", r.prompt),
            })
    }
}

/// `clan machines update MACHINE`: a job.
pub async fn update(State(app): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let fleet = fleet_off_thread(&app, Vec::new()).await?;
    let key = app.config.admin_key_file.clone();
    let id = app.jobs.start(format!("Update {name}"), move |reporter| {
        let admin = clan_vars::keys::read_identity(&key).map_err(|e| e.to_string())?;
        let o = clan_ops::machines::update::UpdateOptions {
            machines: vec![name],
            tags: Vec::new(),
            jobs: 1,
            answered: Vec::new(),
            nixos: Default::default(),
        };
        let report = clan_ops::machines::update::update_with(
            &fleet,
            &o,
            &admin,
            &Answers(BTreeMap::new()),
            reporter,
            &clan_ops::machines::update::ssh,
        )
        .map_err(|e| e.to_string())?;
        if let Some((_, clan_ops::machines::update::Outcome::Failed { error })) =
            report.machines.first()
        {
            return Err(error.clone());
        }
        Ok(serde_json::to_value(report).expect("serialisable"))
    });
    Ok(Json(json!({ "job": id })))
}

pub async fn job(State(app): State<Shared>, Path(id): Path<u64>) -> ApiResult {
    let job = app
        .jobs
        .get(id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no job {id}")))?;
    Ok(Json(serde_json::to_value(job).expect("serialisable")))
}

/// The job's events as server-sent events (`event` each), then `end` with the job.
pub async fn job_events(
    State(app): State<Shared>,
    Path(id): Path<u64>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    if app.jobs.get(id).is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no job {id}")));
    }
    let mut changes = app.jobs.subscribe();
    let stream = async_stream(move |tx| async move {
        let mut sent = 0;
        loop {
            let Some(job) = app.jobs.get(id) else { return };
            for e in &job.events[sent..] {
                let data = serde_json::to_string(e).expect("serialisable");
                if tx
                    .send(SseEvent::default().event("event").data(data))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            sent = job.events.len();
            if job.status != crate::jobs::Status::Running {
                let data = serde_json::to_string(&job).expect("serialisable");
                let _ = tx.send(SseEvent::default().event("end").data(data)).await;
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by `f` through a channel.
fn async_stream<F, Fut>(f: F) -> impl futures_util::Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<SseEvent>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
