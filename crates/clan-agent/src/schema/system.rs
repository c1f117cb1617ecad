//! `system`: the machine's identity and settings, and its mutations. Settings live
//! in the clan repository: the clan the machine holds (see `held`), where a rebuild
//! applies them, else elsewhere, and changing them here is refused with what to
//! run there.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};

use super::jobs::GenericJobMutationReturn;
use super::{DateTime, GenericMutationReturn, agent, blocking, managed_elsewhere, unsupported};

pub struct System;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
    Success,
}

#[derive(SimpleObject)]
pub struct Alert {
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub timestamp: Option<DateTime>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DnsProvider {
    Cloudflare,
    Digitalocean,
    Desec,
    Porkbun,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ServerProvider {
    Hetzner,
    Digitalocean,
    Other,
}

#[derive(SimpleObject, Clone)]
pub struct DnsRecord {
    pub record_type: String,
    pub name: String,
    pub content: String,
    pub ttl: i32,
    pub priority: Option<i32>,
    pub display_name: String,
}

pub struct SystemDomainInfo;

#[Object]
impl SystemDomainInfo {
    async fn domain(&self, ctx: &Context<'_>) -> String {
        agent(ctx).machine().domain.clone()
    }

    async fn hostname(&self, ctx: &Context<'_>) -> String {
        agent(ctx).machine().name.to_string()
    }

    /// The clan does not manage DNS: there is no provider to name, and the schema
    /// has no value for "none", so this is an error rather than an invented one.
    async fn provider(&self) -> Result<DnsProvider> {
        Err("this machine's DNS records are not managed by clan, so it has no DNS provider".into())
    }

    /// None: the clan does not manage DNS records.
    async fn required_dns_records(&self) -> Vec<DnsRecord> {
        Vec::new()
    }
}

#[derive(SimpleObject)]
pub struct AutoUpgradeOptions {
    pub enable: bool,
    pub allow_reboot: bool,
}

pub struct SshSettings;

#[Object]
impl SshSettings {
    /// Whether the machine runs clan's SSH server (an `sshd` instance).
    async fn enable(&self, ctx: &Context<'_>) -> bool {
        agent(ctx)
            .machine()
            .instances
            .iter()
            .any(|a| a.module == "sshd")
    }

    #[graphql(deprecation = "Always false: logging in over SSH takes a key.")]
    async fn password_authentication(&self) -> bool {
        false
    }

    async fn root_ssh_keys(&self, ctx: &Context<'_>) -> Vec<String> {
        agent(ctx)
            .machine()
            .clan_core
            .sshd
            .authorized_keys
            .values()
            .cloned()
            .collect()
    }
}

pub struct SystemSettings;

#[Object]
impl SystemSettings {
    /// Linux machines are updated by `clan machines update`, never by themselves.
    async fn auto_upgrade(&self) -> AutoUpgradeOptions {
        AutoUpgradeOptions {
            enable: false,
            allow_reboot: false,
        }
    }

    async fn ssh(&self) -> SshSettings {
        SshSettings
    }

    async fn timezone(&self) -> String {
        blocking(crate::system::timezone).await
    }
}

#[derive(SimpleObject)]
pub struct SystemInfo {
    pub system_version: String,
    /// SelfPrivacy's field for its runtime's version: here the agent's.
    pub python_version: String,
    pub using_binds: bool,
}

#[derive(SimpleObject, Clone)]
pub struct UpdateChannel {
    pub id: String,
    pub update_url: String,
    pub name: String,
    pub description: String,
}

#[derive(SimpleObject)]
pub struct SystemUpdatesInfo {
    pub current_channel: UpdateChannel,
    pub channels: Vec<UpdateChannel>,
}

#[derive(SimpleObject)]
pub struct SystemProviderInfo {
    pub provider: ServerProvider,
    pub id: String,
}

#[Object]
impl System {
    async fn status(&self) -> Alert {
        Alert {
            severity: Severity::Info,
            title: "clan agent".into(),
            message: "The agent is running.".into(),
            timestamp: None,
        }
    }

    async fn domain_info(&self) -> SystemDomainInfo {
        SystemDomainInfo
    }

    async fn settings(&self) -> SystemSettings {
        SystemSettings
    }

    async fn info(&self) -> SystemInfo {
        SystemInfo {
            system_version: blocking(crate::system::uname).await,
            python_version: format!("clan {}", env!("CARGO_PKG_VERSION")),
            using_binds: false,
        }
    }

    /// The one channel there is: the clan repository the machine is updated from.
    async fn updates(&self) -> SystemUpdatesInfo {
        let channel = UpdateChannel {
            id: "clan".into(),
            update_url: String::new(),
            name: "Clan repository".into(),
            description:
                "This machine is updated from its clan repository with `clan machines update`."
                    .into(),
        };
        SystemUpdatesInfo {
            current_channel: channel.clone(),
            channels: vec![channel],
        }
    }

    /// As SelfPrivacy: the provider is not known to the machine, its id never.
    async fn provider(&self) -> SystemProviderInfo {
        SystemProviderInfo {
            provider: ServerProvider::Other,
            id: "UNKNOWN".into(),
        }
    }

    async fn busy(&self, ctx: &Context<'_>) -> Result<bool> {
        let jobs = agent(ctx).jobs.clone();
        Ok(blocking(move || jobs.list())
            .await?
            .iter()
            .any(|j| j.status == "RUNNING"))
    }
}

#[derive(SimpleObject)]
pub struct TimezoneMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub timezone: Option<String>,
}

#[derive(SimpleObject)]
pub struct AutoUpgradeSettingsMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub enable_auto_upgrade: bool,
    pub allow_reboot: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "SSHSettingsMutationReturn")]
pub struct SshSettingsMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub enable: bool,
    pub password_authentication: bool,
}

#[derive(InputObject)]
pub struct AutoUpgradeSettingsInput {
    #[graphql(default)]
    pub enable_auto_upgrade: Option<bool>,
    #[graphql(default)]
    pub allow_reboot: Option<bool>,
}

#[derive(InputObject)]
#[graphql(name = "SSHSettingsInput")]
pub struct SshSettingsInput {
    pub enable: bool,
    #[graphql(default)]
    pub password_authentication: Option<bool>,
}

#[derive(InputObject)]
pub struct SetDnsProviderInput {
    pub provider: DnsProvider,
    pub token: String,
    #[graphql(default)]
    pub token_id: Option<String>,
    #[graphql(default)]
    pub url: Option<String>,
    #[graphql(default)]
    pub tenant: Option<String>,
    #[graphql(default)]
    pub secondary_token: Option<String>,
}

pub struct SystemMutations;

/// An IANA zone name (no `..`, no empty parts): checked before it names a file.
fn is_zone_name(tz: &str) -> bool {
    let mut parts = tz.split('/');
    parts
        .next()
        .is_some_and(|p| p.starts_with(|c: char| c.is_ascii_alphabetic()))
        && tz.split('/').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        })
}

const REBUILD_JOB: &str = "system.nixos.rebuild";

#[Object]
impl SystemMutations {
    pub async fn change_timezone(
        &self,
        ctx: &Context<'_>,
        timezone: String,
    ) -> TimezoneMutationReturn {
        let a = agent(ctx).clone();
        let r = match (super::caller(ctx), a.held()) {
            (Ok(device), Some(held)) => {
                let known = is_zone_name(&timezone)
                    && std::path::Path::new("/usr/share/zoneinfo")
                        .join(&timezone)
                        .is_file();
                if known {
                    let (device, tz) = (device.to_string(), timezone.clone());
                    let set = blocking(move || {
                        held.set_option(&device, "clan.core.timezone", &tz.into())
                    });
                    match set.await {
                        Ok(()) => GenericMutationReturn::ok(super::APPLY_HINT),
                        Err(r) => GenericMutationReturn::with(r.code, r.message),
                    }
                } else {
                    GenericMutationReturn::with(400, "Invalid timezone")
                }
            }
            _ => managed_elsewhere(ctx, "the time zone"),
        };
        TimezoneMutationReturn {
            timezone: r.success.then_some(timezone),
            success: r.success,
            message: r.message,
            code: r.code,
        }
    }

    pub async fn change_auto_upgrade_settings(
        &self,
        ctx: &Context<'_>,
        settings: AutoUpgradeSettingsInput,
    ) -> AutoUpgradeSettingsMutationReturn {
        let _ = (ctx, settings);
        let r = unsupported("Automatic upgrading (not part of clan's configuration of a machine)");
        AutoUpgradeSettingsMutationReturn {
            success: r.success,
            message: r.message,
            code: r.code,
            enable_auto_upgrade: false,
            allow_reboot: false,
        }
    }

    pub async fn change_ssh_settings(
        &self,
        ctx: &Context<'_>,
        settings: SshSettingsInput,
    ) -> Result<SshSettingsMutationReturn> {
        let _ = settings;
        let r = unsupported(
            "Switching the SSH server (module sshd runs it; its keys are users' settings)",
        );
        Ok(SshSettingsMutationReturn {
            success: r.success,
            message: r.message,
            code: r.code,
            enable: SshSettings.enable(ctx).await?,
            password_authentication: false,
        })
    }

    /// `clan machines update` of this machine from the clan it holds, as job
    /// `system.nixos.rebuild` (the app's name for it).
    pub async fn run_system_rebuild(&self, ctx: &Context<'_>) -> GenericJobMutationReturn {
        let a = agent(ctx).clone();
        let Some(held) = a.held() else {
            return GenericJobMutationReturn::without_job(managed_elsewhere(ctx, "the system"));
        };
        let refuse = |code, message: String| {
            GenericJobMutationReturn::without_job(GenericMutationReturn::with(code, message))
        };
        match a.jobs.running(REBUILD_JOB) {
            Ok(Some(_)) => return refuse(409, "A system rebuild is running already".into()),
            Ok(None) => {}
            Err(e) => return refuse(500, e.to_string()),
        }
        let started = a.jobs.start(
            REBUILD_JOB,
            "Rebuild system",
            "Applying the machine's clan to it",
            {
                let a = a.clone();
                move |reporter| {
                    let outcome = held.rebuild(reporter);
                    a.units_changed();
                    a.snapshots_changed();
                    outcome
                }
            },
        );
        match started {
            Ok(job) => GenericJobMutationReturn::started("Starting system rebuild", job),
            Err(e) => refuse(500, e.to_string()),
        }
    }

    pub async fn run_system_rollback(&self) -> GenericMutationReturn {
        unsupported("Rolling the system back")
    }

    pub async fn run_system_upgrade(&self, ctx: &Context<'_>) -> GenericJobMutationReturn {
        GenericJobMutationReturn::without_job(managed_elsewhere(ctx, "the system"))
    }

    pub async fn reboot_system(&self) -> GenericMutationReturn {
        if !crate::system::systemd_running() {
            return unsupported("Rebooting without systemd");
        }
        let reboot = || {
            clan_core::process::Cmd::new("systemctl")
                .arg("reboot")
                .run()
                .map_err(|e| e.to_string())
        };
        match blocking(reboot).await {
            Ok(_) => GenericMutationReturn::ok("System reboot has started"),
            Err(e) => GenericMutationReturn::with(500, e),
        }
    }

    pub async fn pull_repository_changes(&self) -> GenericMutationReturn {
        GenericMutationReturn::with(400, "There is no repository to pull changes from.")
    }

    pub async fn nix_collect_garbage(&self) -> GenericJobMutationReturn {
        GenericJobMutationReturn::without_job(unsupported("Collecting Nix garbage"))
    }

    pub async fn set_dns_provider(&self, input: SetDnsProviderInput) -> GenericMutationReturn {
        let _ = input;
        unsupported("Managing DNS records")
    }

    pub async fn set_update_channel(
        &self,
        ctx: &Context<'_>,
        channel_id: String,
    ) -> GenericMutationReturn {
        let _ = (ctx, channel_id);
        unsupported("An update channel (a machine runs what its clan's `machines update` installs)")
    }
}
