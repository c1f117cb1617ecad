//! `services`: each service instance of the machine and each state outside
//! instances, described by its module's manifest, its status from systemd, its
//! size from its folders, its settings from its role's schema.

use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, Interface, Json, Object, Result, SimpleObject};
use base64::Engine;
use clan_core::services::{MachineService, SettingKind};
use serde_json::Value;

use super::backup::SnapshotInfo;
use super::jobs::ApiJob;
use super::storage::{StorageVolume, volume_named};
use super::system::DnsRecord;
use super::{GenericMutationReturn, agent, blocking, change_config};
use crate::held::{self, Refusal};
use crate::system::{self, UnitStatus};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ServiceStatusEnum {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    Off,
}

impl From<UnitStatus> for ServiceStatusEnum {
    fn from(s: UnitStatus) -> Self {
        match s {
            UnitStatus::Active => Self::Active,
            UnitStatus::Reloading => Self::Reloading,
            UnitStatus::Inactive => Self::Inactive,
            UnitStatus::Failed => Self::Failed,
            UnitStatus::Activating => Self::Activating,
            UnitStatus::Deactivating => Self::Deactivating,
            UnitStatus::Off => Self::Off,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SupportLevelEnum {
    Normal,
    Experimental,
    Deprecated,
    Community,
    Unknown,
}

#[derive(SimpleObject)]
pub struct LicenseType {
    pub deprecated: bool,
    pub free: bool,
    pub full_name: String,
    pub redistributable: bool,
    pub short_name: String,
    pub spdx_id: Option<String>,
    pub url: Option<String>,
}

// The derive repeats `ty` once per field, which clippy takes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "field_id", ty = "&String"),
    field(name = "description", ty = "&String"),
    field(name = "widget", ty = "&String"),
    field(name = "type", method = "kind", ty = "&String")
)]
pub enum ConfigItem {
    String(StringConfigItem),
    Bool(BoolConfigItem),
    Enum(EnumConfigItem),
}

#[derive(SimpleObject)]
pub struct StringConfigItem {
    pub field_id: String,
    pub description: String,
    pub widget: String,
    #[graphql(name = "type")]
    pub kind: String,
    pub value: String,
    pub default_value: String,
    pub regex: Option<String>,
}

#[derive(SimpleObject)]
pub struct BoolConfigItem {
    pub field_id: String,
    pub description: String,
    pub widget: String,
    #[graphql(name = "type")]
    pub kind: String,
    pub value: bool,
    pub default_value: bool,
}

#[derive(SimpleObject)]
pub struct EnumConfigItem {
    pub field_id: String,
    pub description: String,
    pub widget: String,
    #[graphql(name = "type")]
    pub kind: String,
    pub value: String,
    pub default_value: String,
    pub options: Vec<String>,
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

/// One service as the API shows it.
#[derive(Clone)]
pub struct Service(pub Arc<MachineService>);

impl Service {
    /// What the service stores, and the volume of its first folder.
    pub async fn storage_usage_of(&self, ctx: &Context<'_>) -> ServiceStorageUsage {
        let folders = self.folders(ctx);
        let a = agent(ctx).clone();
        let (used, volume) = blocking(move || {
            let used: u64 = folders.iter().map(|f| a.folder_size(f)).sum();
            let volumes = a.volumes();
            let at = folders.first().map_or("/", String::as_str);
            let volume = system::volume_of(&volumes, at).map(|v| v.name.clone());
            (used, volume)
        })
        .await;
        ServiceStorageUsage {
            used_space: used.to_string(),
            volume,
            title: self.0.display_name().to_string(),
            service: self.clone(),
        }
    }

    /// The service's folders, in state order.
    fn folders(&self, ctx: &Context<'_>) -> Vec<String> {
        let m = agent(ctx).machine();
        self.0
            .states
            .iter()
            .filter_map(|s| m.clan_core.state.iter().find(|(n, _)| n.as_str() == s))
            .flat_map(|(_, st)| st.folders.iter().cloned())
            .collect()
    }
}

#[Object]
impl Service {
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn display_name(&self) -> &str {
        self.0.display_name()
    }

    async fn description(&self) -> String {
        self.0
            .meta
            .description
            .clone()
            .unwrap_or_else(|| "No description found!".into())
    }

    /// The SVG icon, base64-encoded.
    async fn svg_icon(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(self.0.meta.svg_icon.as_deref().unwrap_or_default())
    }

    /// Services are not moved between volumes by the agent.
    async fn is_movable(&self) -> bool {
        false
    }

    async fn is_required(&self) -> bool {
        self.0.meta.is_required.unwrap_or(false)
    }

    /// False when the clan turns it off on this machine (`enableService` turns it on).
    async fn is_enabled(&self) -> bool {
        self.0.enabled
    }

    async fn is_installed(&self) -> bool {
        true
    }

    async fn is_system_service(&self) -> bool {
        self.0.meta.is_system_service.unwrap_or(false)
    }

    async fn can_be_backed_up(&self) -> bool {
        self.0.can_be_backed_up()
    }

    async fn backup_description(&self) -> String {
        self.0
            .meta
            .backup_description
            .clone()
            .unwrap_or_else(|| "No backup description found!".into())
    }

    async fn status(&self, ctx: &Context<'_>) -> ServiceStatusEnum {
        if !self.0.enabled {
            return ServiceStatusEnum::Off;
        }
        let (a, units) = (agent(ctx).clone(), self.0.units.clone());
        blocking(move || a.status(&units)).await.into()
    }

    async fn url(&self) -> Option<String> {
        None
    }

    async fn license(&self) -> Vec<LicenseType> {
        self.0
            .meta
            .license
            .iter()
            .map(|l| LicenseType {
                deprecated: l.deprecated,
                free: l.free,
                full_name: l.full_name.clone(),
                redistributable: l.redistributable,
                short_name: l.short_name.clone(),
                spdx_id: l.spdx_id.clone(),
                url: l.url.clone(),
            })
            .collect()
    }

    async fn homepage(&self) -> Option<String> {
        self.0.meta.homepage.clone()
    }

    async fn source_page(&self) -> Option<String> {
        self.0.meta.source_page.clone()
    }

    async fn support_level(&self) -> SupportLevelEnum {
        match self.0.meta.support_level.as_deref() {
            Some("normal") => SupportLevelEnum::Normal,
            Some("experimental") => SupportLevelEnum::Experimental,
            Some("deprecated") => SupportLevelEnum::Deprecated,
            Some("community") => SupportLevelEnum::Community,
            _ => SupportLevelEnum::Unknown,
        }
    }

    /// None: the clan does not manage DNS records.
    async fn dns_records(&self) -> Option<Vec<DnsRecord>> {
        Some(Vec::new())
    }

    async fn storage_usage(&self, ctx: &Context<'_>) -> ServiceStorageUsage {
        self.storage_usage_of(ctx).await
    }

    async fn configuration(&self) -> Option<Vec<ConfigItem>> {
        if self.0.settings.is_empty() {
            return None;
        }
        Some(
            self.0
                .settings
                .iter()
                .map(|s| match &s.kind {
                    SettingKind::String { regex } => ConfigItem::String(StringConfigItem {
                        field_id: s.field_id.clone(),
                        description: s.description.clone(),
                        widget: s.widget.clone(),
                        kind: "string".into(),
                        value: text(&s.value),
                        default_value: text(&s.default),
                        regex: regex.clone(),
                    }),
                    SettingKind::Bool => ConfigItem::Bool(BoolConfigItem {
                        field_id: s.field_id.clone(),
                        description: s.description.clone(),
                        widget: s.widget.clone(),
                        kind: "bool".into(),
                        value: s.value.as_bool().unwrap_or(false),
                        default_value: s.default.as_bool().unwrap_or(false),
                    }),
                    SettingKind::Enum { options } => ConfigItem::Enum(EnumConfigItem {
                        field_id: s.field_id.clone(),
                        description: s.description.clone(),
                        widget: s.widget.clone(),
                        kind: "enum".into(),
                        value: text(&s.value),
                        default_value: text(&s.default),
                        options: options.clone(),
                    }),
                })
                .collect(),
        )
    }

    /// This service's backups (SelfPrivacy leaves this null; here it is filled).
    async fn backup_snapshots(&self, ctx: &Context<'_>) -> Result<Option<Vec<SnapshotInfo>>> {
        let all = super::backup::snapshot_infos(ctx).await?;
        Ok(Some(
            all.into_iter()
                .filter(|s| s.service.0.id == self.0.id)
                .collect(),
        ))
    }
}

/// How much a service stores, and on which volume.
pub struct ServiceStorageUsage {
    pub used_space: String,
    pub volume: Option<String>,
    pub title: String,
    pub service: Service,
}

#[Object]
impl ServiceStorageUsage {
    pub async fn used_space(&self) -> &str {
        &self.used_space
    }

    pub async fn volume(&self, ctx: &Context<'_>) -> Option<StorageVolume> {
        let (a, name) = (agent(ctx).clone(), self.volume.clone()?);
        blocking(move || volume_named(&a, &name)).await
    }

    pub async fn title(&self) -> &str {
        &self.title
    }

    pub async fn service(&self) -> Option<Service> {
        Some(self.service.clone())
    }
}

pub struct Services;

/// Every service, by display name.
pub fn all(ctx: &Context<'_>) -> Vec<Service> {
    let mut all: Vec<Service> = agent(ctx)
        .machine()
        .services
        .iter()
        .cloned()
        .map(|s| Service(Arc::new(s)))
        .collect();
    all.sort_by(|a, b| a.0.display_name().cmp(b.0.display_name()));
    all
}

#[Object]
impl Services {
    async fn all_services(&self, ctx: &Context<'_>) -> Vec<Service> {
        all(ctx)
    }
}

#[derive(SimpleObject)]
pub struct ServiceMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub service: Option<Service>,
}

impl ServiceMutationReturn {
    fn from(r: GenericMutationReturn, service: Option<Service>) -> Self {
        Self {
            success: r.success,
            message: r.message,
            code: r.code,
            service,
        }
    }
}

#[derive(SimpleObject)]
pub struct ServiceJobMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub job: Option<ApiJob>,
    pub service: Option<Service>,
}

#[derive(InputObject)]
pub struct SetServiceConfigurationInput {
    pub service_id: String,
    pub configuration: Json<Value>,
}

#[derive(InputObject)]
pub struct MoveServiceInput {
    pub service_id: String,
    pub location: String,
}

pub struct ServicesMutations;

fn not_found() -> ServiceMutationReturn {
    ServiceMutationReturn::from(GenericMutationReturn::with(404, "Service not found."), None)
}

/// A change of a service's configuration in the machine's clan (404 for an
/// unknown service); the service as served after it.
async fn change(
    ctx: &Context<'_>,
    id: &str,
    topic: &str,
    what: String,
    plan: impl FnOnce(
        &MachineService,
        &clan_core::Clan,
        &clan_core::ResolvedMachine,
    ) -> Result<Vec<clan_ops::inventory::Edit>, Refusal>
    + Send
    + 'static,
) -> ServiceMutationReturn {
    let Some(service) = agent(ctx).service(id) else {
        return not_found();
    };
    let r = change_config(ctx, topic, what, move |clan, m| plan(&service, clan, m)).await;
    let service = agent(ctx).service(id).map(|s| Service(Arc::new(s)));
    ServiceMutationReturn::from(r, service)
}

/// Runs `systemctl verb` on a service's units.
async fn control(ctx: &Context<'_>, id: &str, verb: &'static str) -> ServiceMutationReturn {
    let Some(s) = agent(ctx).service(id) else {
        return not_found();
    };
    let (a, units) = (agent(ctx).clone(), s.units.clone());
    let done = blocking(move || {
        let done = system::systemctl(verb, &units);
        a.units_changed();
        done
    })
    .await;
    let service = Some(Service(Arc::new(s)));
    match done {
        Ok(()) => {
            let message = match verb {
                "stop" => "Service stopped.",
                "start" => "Service started.",
                _ => "Service restarted.",
            };
            ServiceMutationReturn::from(GenericMutationReturn::ok(message), service)
        }
        Err(e) => ServiceMutationReturn::from(GenericMutationReturn::with(500, e), service),
    }
}

#[Object]
impl ServicesMutations {
    pub async fn enable_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> ServiceMutationReturn {
        let what = format!("services: enable {service_id}");
        change(ctx, &service_id, "which services run", what, |s, _, m| {
            held::enable(s, m.name.as_str(), true)
        })
        .await
    }

    pub async fn disable_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> ServiceMutationReturn {
        let what = format!("services: disable {service_id}");
        change(ctx, &service_id, "which services run", what, |s, _, m| {
            held::enable(s, m.name.as_str(), false)
        })
        .await
    }

    pub async fn stop_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> ServiceMutationReturn {
        control(ctx, &service_id, "stop").await
    }

    pub async fn start_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> ServiceMutationReturn {
        control(ctx, &service_id, "start").await
    }

    pub async fn restart_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> ServiceMutationReturn {
        control(ctx, &service_id, "restart").await
    }

    pub async fn set_service_configuration(
        &self,
        ctx: &Context<'_>,
        input: SetServiceConfigurationInput,
    ) -> ServiceMutationReturn {
        let what = format!("services: configure {}", input.service_id);
        let values = input.configuration.0;
        change(
            ctx,
            &input.service_id,
            "a service's settings",
            what,
            move |s, clan, m| held::configure(clan, s, m.name.as_str(), &values),
        )
        .await
    }

    /// Services stay where their configuration puts their folders.
    pub async fn move_service(
        &self,
        ctx: &Context<'_>,
        input: MoveServiceInput,
    ) -> ServiceJobMutationReturn {
        let service = agent(ctx).service(&input.service_id);
        let (code, message) = match &service {
            None => (404, "Service not found.".to_string()),
            Some(s) => (400, format!("{} is not movable.", s.display_name())),
        };
        ServiceJobMutationReturn {
            success: false,
            message,
            code,
            job: None,
            service: service.map(|s| Service(Arc::new(s))),
        }
    }
}
