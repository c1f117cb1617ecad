//! `backup`: the machine's backups per service, backups and restores as jobs.
//!
//! A snapshot of the API is one service's part of one backup: id
//! `<provider>/<backup>/<service>`. Both restore strategies are clan's exact restore
//! (into scratch directories, swapped in, a safety backup first). Every configured
//! provider shows as `FILE` (the schema has no kind for borg, local snapshots or
//! commands; MEMORY is SelfPrivacy's test double, BACKBLAZE its cloud).

use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use clan_backup::{BackupInfo, Reason, RestoreOptions};
use clan_core::modules::ServiceMeta;
use clan_core::providers::ProviderConfig;
use clan_core::services::MachineService;

use super::jobs::GenericJobMutationReturn;
use super::services::{Service, all};
use super::{DateTime, GenericMutationReturn, agent, blocking, change_config, managed_elsewhere};
use crate::jobs::Outcome;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum BackupProvider {
    Backblaze,
    None,
    Memory,
    File,
}

#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum BackupReason {
    Explicit,
    Auto,
    PreRestore,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RestoreStrategy {
    Inplace,
    DownloadVerifyOverwrite,
}

#[derive(SimpleObject, Clone)]
pub struct AutobackupQuotas {
    pub last: i32,
    pub daily: i32,
    pub weekly: i32,
    pub monthly: i32,
    pub yearly: i32,
}

#[derive(InputObject)]
pub struct AutobackupQuotasInput {
    pub last: i32,
    pub daily: i32,
    pub weekly: i32,
    pub monthly: i32,
    pub yearly: i32,
}

#[derive(SimpleObject, Clone)]
pub struct BackupConfiguration {
    pub provider: BackupProvider,
    pub encryption_key: String,
    pub is_initialized: bool,
    pub autobackup_period: Option<i32>,
    pub autobackup_quotas: AutobackupQuotas,
    pub location_name: Option<String>,
    pub location_id: Option<String>,
}

#[derive(SimpleObject, Clone)]
pub struct SnapshotInfo {
    pub id: String,
    pub service: Service,
    pub created_at: DateTime,
    pub reason: BackupReason,
}

/// The configuration as SelfPrivacy's app sees it: the machine's first provider.
fn configuration(ctx: &Context<'_>) -> BackupConfiguration {
    let m = agent(ctx).machine();
    let first = m.clan_core.backups.providers.iter().next();
    let quotas = match first {
        Some((_, p)) if !p.keep().is_empty() => {
            let k = p.keep();
            let q = |n: u32| n as i32;
            AutobackupQuotas {
                last: q(k.last),
                daily: q(k.daily),
                weekly: q(k.weekly),
                monthly: q(k.monthly),
                yearly: q(k.yearly),
            }
        }
        // No retention: everything is kept (SelfPrivacy's -1).
        _ => AutobackupQuotas {
            last: -1,
            daily: -1,
            weekly: -1,
            monthly: -1,
            yearly: -1,
        },
    };
    BackupConfiguration {
        provider: if first.is_some() {
            BackupProvider::File
        } else {
            BackupProvider::None
        },
        // The repository password of a restic provider, so that its owner can keep it
        // (SelfPrivacy shows its own for the same reason).
        encryption_key: first
            .and_then(|(_, p)| match p {
                ProviderConfig::Restic(r) => std::fs::read_to_string(&r.password_file).ok(),
                _ => None,
            })
            .map(|k| k.trim_end().to_string())
            .unwrap_or_default(),
        is_initialized: first.is_some(),
        autobackup_period: first
            .and_then(|(_, p)| p.start_at())
            .and_then(crate::system::period_minutes),
        autobackup_quotas: quotas,
        location_name: first.map(|(name, p)| format!("{} ({name})", p.kind())),
        location_id: first.map(|(name, _)| name.clone()),
    }
}

/// A service for states that no service of the machine has any more.
fn orphan(state: &str) -> Service {
    Service(Arc::new(MachineService {
        id: state.to_string(),
        instance: None,
        module: None,
        roles: Vec::new(),
        enabled: false,
        meta: ServiceMeta {
            display_name: Some(format!("{state} (Orphaned)")),
            can_be_backed_up: Some(false),
            support_level: Some("unknown".into()),
            ..ServiceMeta::default()
        },
        states: Vec::new(),
        units: Vec::new(),
        settings: Vec::new(),
    }))
}

/// The services' parts of each backup, oldest first.
fn infos(services: &[Service], backups: &[BackupInfo]) -> Vec<SnapshotInfo> {
    let mut out = Vec::new();
    for b in backups {
        let mut seen: Vec<String> = Vec::new();
        for state in &b.backup.states {
            let service = services
                .iter()
                .find(|s| s.0.states.contains(state))
                .cloned()
                .unwrap_or_else(|| orphan(state));
            if seen.contains(&service.0.id) {
                continue;
            }
            seen.push(service.0.id.clone());
            out.push(SnapshotInfo {
                id: format!("{}/{}/{}", b.provider, b.backup.name, service.0.id),
                created_at: DateTime(b.backup.time.clone()),
                reason: match b.backup.reason.as_deref() {
                    Some("auto") => BackupReason::Auto,
                    Some("pre-restore") => BackupReason::PreRestore,
                    _ => BackupReason::Explicit,
                },
                service,
            });
        }
    }
    out.sort_by(|a, b| a.created_at.0.cmp(&b.created_at.0));
    out
}

/// Every service's part of every backup (providers that cannot be read are
/// reported as errors beside the rest).
pub async fn snapshot_infos(ctx: &Context<'_>) -> Result<Vec<SnapshotInfo>> {
    let a = agent(ctx).clone();
    let (backups, errors) = blocking(move || a.snapshots()).await;
    for e in errors {
        ctx.add_error(async_graphql::ServerError::new(e, None));
    }
    Ok(infos(&all(ctx), &backups))
}

pub struct Backup;

#[Object]
impl Backup {
    async fn configuration(&self, ctx: &Context<'_>) -> BackupConfiguration {
        configuration(ctx)
    }

    async fn all_snapshots(&self, ctx: &Context<'_>) -> Result<Vec<SnapshotInfo>> {
        snapshot_infos(ctx).await
    }

    /// The services' parts of the newest backup.
    async fn last_slice(&self, ctx: &Context<'_>) -> Result<Vec<SnapshotInfo>> {
        let all = snapshot_infos(ctx).await?;
        let backup_of = |s: &SnapshotInfo| s.id.rsplit_once('/').map(|(b, _)| b.to_string());
        let newest = all.last().and_then(backup_of);
        Ok(all.into_iter().filter(|s| backup_of(s) == newest).collect())
    }
}

#[derive(SimpleObject)]
pub struct GenericBackupConfigReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub configuration: Option<BackupConfiguration>,
}

#[derive(InputObject)]
pub struct InitializeRepositoryInput {
    pub provider: BackupProvider,
    pub location_id: String,
    pub location_name: String,
    pub login: String,
    pub password: String,
    #[graphql(default)]
    pub local_secret: Option<String>,
}

fn config_refused(ctx: &Context<'_>, what: &str) -> GenericBackupConfigReturn {
    config_return(ctx, managed_elsewhere(ctx, what))
}

fn config_return(ctx: &Context<'_>, r: GenericMutationReturn) -> GenericBackupConfigReturn {
    GenericBackupConfigReturn {
        success: r.success,
        message: r.message,
        code: r.code,
        configuration: Some(configuration(ctx)),
    }
}

fn job_refused(code: i32, message: impl Into<String>) -> GenericJobMutationReturn {
    GenericJobMutationReturn::without_job(GenericMutationReturn::with(code, message))
}

/// Backs up `states` to every provider; the result names the backups made.
fn back_up(
    agent: &crate::agent::Agent,
    states: &[String],
    reporter: &dyn clan_core::event::Reporter,
) -> Outcome {
    let mut backups = agent.backups();
    backups.machine = backups
        .machine
        .only_states(states)
        .map_err(|e| e.to_string())?;
    let results = backups
        .create(None, Reason::Explicit, reporter)
        .map_err(|e| e.to_string())?;
    agent.snapshots_changed();
    let mut made = Vec::new();
    let mut failed = Vec::new();
    for (provider, r) in results {
        match r {
            Ok(b) => made.push(format!("{provider}: {}", b.backup.name)),
            Err(e) => failed.push(format!("{provider}: {e}")),
        }
    }
    if failed.is_empty() {
        Ok(format!("Backup finished ({})", made.join(", ")))
    } else {
        Err(format!(
            "Backup failed for {}{}",
            failed.join("; "),
            if made.is_empty() {
                String::new()
            } else {
                format!(" (made: {})", made.join(", "))
            }
        ))
    }
}

pub struct BackupMutations;

#[Object]
impl BackupMutations {
    async fn initialize_repository(
        &self,
        ctx: &Context<'_>,
        repository: InitializeRepositoryInput,
    ) -> GenericBackupConfigReturn {
        let _ = repository;
        config_refused(ctx, "where backups go")
    }

    async fn remove_repository(&self, ctx: &Context<'_>) -> GenericBackupConfigReturn {
        config_refused(ctx, "where backups go")
    }

    async fn set_autobackup_period(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] period: Option<i32>,
    ) -> GenericBackupConfigReturn {
        let what = format!(
            "backups: every {} minutes",
            period.map_or("-".into(), |p| p.to_string())
        );
        let r = change_config(ctx, "when backups run", what, move |clan, m| {
            crate::held::autobackup_period(clan, m, period)
        })
        .await;
        config_return(ctx, r)
    }

    async fn set_autobackup_quotas(
        &self,
        ctx: &Context<'_>,
        quotas: AutobackupQuotasInput,
    ) -> GenericBackupConfigReturn {
        let q = &quotas;
        let keep = [
            ("last", q.last),
            ("daily", q.daily),
            ("weekly", q.weekly),
            ("monthly", q.monthly),
            ("yearly", q.yearly),
        ];
        let what = "backups: quotas".to_string();
        let r = change_config(ctx, "how many backups are kept", what, move |clan, m| {
            crate::held::autobackup_quotas(clan, m, keep)
        })
        .await;
        config_return(ctx, r)
    }

    /// A backup of one service's states, as job `services.<id>.backup`.
    async fn start_backup(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<GenericJobMutationReturn> {
        let a = agent(ctx).clone();
        let Some(service) = a.service(&service_id) else {
            // SelfPrivacy's code for this case.
            return Ok(job_refused(300, "Service not found"));
        };
        if !service.can_be_backed_up() {
            return Ok(job_refused(
                400,
                format!("{} cannot be backed up", service.display_name()),
            ));
        }
        let jobs = a.jobs.clone();
        let prefix = format!("services.{service_id}.");
        if let Some(other) = blocking(move || jobs.running(&prefix)).await? {
            return Ok(job_refused(
                409,
                format!(
                    "Cannot start a backup of {service_id}, another operation is running: {}",
                    other.type_id
                ),
            ));
        }
        let name = service.display_name().to_string();
        let job = a.jobs.start(
            &format!("services.{service_id}.backup"),
            &format!("Backup {name}"),
            &format!("Backing up {name}"),
            {
                let a = a.clone();
                move |reporter| back_up(&a, &service.states, reporter)
            },
        )?;
        Ok(GenericJobMutationReturn::started("Backup job queued", job))
    }

    /// A backup of every state, as job `backups.total_backup`.
    async fn total_backup(&self, ctx: &Context<'_>) -> Result<GenericJobMutationReturn> {
        let a = agent(ctx).clone();
        let jobs = a.jobs.clone();
        if let Some(other) = blocking(move || jobs.running("services.")).await? {
            return Ok(job_refused(
                409,
                format!(
                    "Cannot start a total backup, another operation is running: {}",
                    other.type_id
                ),
            ));
        }
        let states: Vec<String> = a
            .machine()
            .clan_core
            .state
            .keys()
            .map(|s| s.to_string())
            .collect();
        let job = a.jobs.start(
            "backups.total_backup",
            "Total backup",
            "Backing up all the enabled services",
            {
                let a = a.clone();
                move |reporter| back_up(&a, &states, reporter)
            },
        )?;
        Ok(GenericJobMutationReturn::started(
            "Total backup task queued",
            job,
        ))
    }

    async fn restore_all(&self) -> GenericJobMutationReturn {
        job_refused(
            400,
            "Restore services one at a time (restoreBackup); a whole machine is restored from \
             the clan with `clan backups restore MACHINE PROVIDER BACKUP`.",
        )
    }

    /// clan's exact restore of one service from one backup, as job
    /// `services.<id>.restore`; both strategies restore the same way.
    async fn restore_backup(
        &self,
        ctx: &Context<'_>,
        snapshot_id: String,
        #[graphql(default_with = "RestoreStrategy::DownloadVerifyOverwrite")]
        strategy: RestoreStrategy,
    ) -> Result<GenericJobMutationReturn> {
        let _ = strategy;
        let a = agent(ctx).clone();
        let known = snapshot_infos(ctx).await?;
        let Some(info) = known.into_iter().find(|s| s.id == snapshot_id) else {
            return Ok(job_refused(404, "Backup snapshot not found"));
        };
        let Some(service) = a.service(&info.service.0.id) else {
            return Ok(job_refused(
                404,
                format!("The service of snapshot {snapshot_id} is not on this machine any more"),
            ));
        };
        let jobs = a.jobs.clone();
        let id = service.id.clone();
        let prefix = format!("services.{id}.");
        if let Some(other) = blocking(move || jobs.running(&prefix)).await? {
            return Ok(job_refused(
                409,
                format!(
                    "Cannot restore {id}, another operation is running: {}",
                    other.type_id
                ),
            ));
        }
        let mut parts = snapshot_id.splitn(3, '/');
        let (provider, backup) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let name = service.display_name().to_string();
        let job = a.jobs.start(
            &format!("services.{id}.restore"),
            &format!("Restore {name}"),
            &format!("Restoring {name} from {backup}"),
            {
                let a = a.clone();
                move |reporter| {
                    let mut backups = a.backups();
                    backups.machine = backups
                        .machine
                        .only_states(&service.states)
                        .map_err(|e| e.to_string())?;
                    let report = backups
                        .restore(&provider, &backup, &RestoreOptions::default(), reporter)
                        .map_err(|e| e.to_string());
                    a.snapshots_changed();
                    a.units_changed();
                    let report = report?;
                    Ok(match report.safety_backup {
                        Some(s) => format!(
                            "Restored {}; the data before is in backup {s}",
                            report.states.join(", ")
                        ),
                        None => format!("Restored {}", report.states.join(", ")),
                    })
                }
            },
        )?;
        Ok(GenericJobMutationReturn::started(
            "Restore job created",
            job,
        ))
    }

    /// Removes a backup that holds this service only; one that holds other services
    /// too is refused (forgetting it would remove their data as well).
    async fn forget_snapshot(
        &self,
        ctx: &Context<'_>,
        snapshot_id: String,
    ) -> Result<GenericMutationReturn> {
        let known = snapshot_infos(ctx).await?;
        let Some((backup, _)) = snapshot_id.rsplit_once('/') else {
            return Ok(GenericMutationReturn::with(
                404,
                "Backup snapshot not found",
            ));
        };
        if !known.iter().any(|s| s.id == snapshot_id) {
            return Ok(GenericMutationReturn::with(
                404,
                "Backup snapshot not found",
            ));
        }
        let others: Vec<String> = known
            .iter()
            .filter(|s| s.id.starts_with(&format!("{backup}/")) && s.id != snapshot_id)
            .map(|s| s.service.0.display_name().to_string())
            .collect();
        if !others.is_empty() {
            return Ok(GenericMutationReturn::with(
                409,
                format!(
                    "This backup also holds {}; forgetting it would remove their data too.",
                    others.join(", ")
                ),
            ));
        }
        let (provider, name) = backup.split_once('/').expect("<provider>/<backup>");
        let (provider, name, a) = (provider.to_string(), name.to_string(), agent(ctx).clone());
        let done = blocking(move || {
            let done = a
                .backups()
                .forget(&provider, &name, &clan_core::event::Silent);
            a.snapshots_changed();
            done
        })
        .await;
        Ok(match done {
            Ok(()) => GenericMutationReturn::ok("Snapshot forgotten"),
            Err(e) => GenericMutationReturn::with(400, e.to_string()),
        })
    }

    /// Backups are listed from the repositories (kept a minute): the next read
    /// lists them again.
    async fn force_snapshots_reload(&self, ctx: &Context<'_>) -> GenericMutationReturn {
        agent(ctx).snapshots_changed();
        GenericMutationReturn::ok("Snapshots are listed again on the next read.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clan_backup::provider::Listed;

    fn service(id: &str, states: &[&str]) -> Service {
        Service(Arc::new(MachineService {
            id: id.into(),
            instance: Some(id.into()),
            module: None,
            roles: Vec::new(),
            enabled: true,
            meta: ServiceMeta::default(),
            states: states.iter().map(|s| s.to_string()).collect(),
            units: Vec::new(),
            settings: Vec::new(),
        }))
    }

    fn backup(
        provider: &str,
        name: &str,
        time: &str,
        states: &[&str],
        reason: Option<&str>,
    ) -> BackupInfo {
        BackupInfo {
            provider: provider.into(),
            backup: Listed {
                name: name.into(),
                time: time.into(),
                states: states.iter().map(|s| s.to_string()).collect(),
                reason: reason.map(str::to_string),
                size: None,
                missing: Vec::new(),
            },
        }
    }

    #[test]
    fn each_service_in_a_backup_is_one_snapshot_and_lost_states_are_orphans() {
        let services = [
            service("cloud", &["files", "db"]),
            service("notes", &["notes"]),
        ];
        let backups = [
            backup(
                "borg",
                "m-borg-2",
                "2026-11-30T02:00:00Z",
                &["notes"],
                Some("auto"),
            ),
            backup(
                "restic",
                "m-restic-1",
                "2026-11-30T01:00:00Z",
                &["db", "files", "notes", "gone"],
                None,
            ),
            backup(
                "restic",
                "m-restic-3",
                "2026-11-30T03:00:00Z",
                &["files"],
                Some("pre-restore"),
            ),
        ];
        let infos = infos(&services, &backups);
        let seen: Vec<(&str, &str, BackupReason)> = infos
            .iter()
            .map(|s| (s.id.as_str(), s.service.0.display_name(), s.reason))
            .collect();
        assert_eq!(
            seen,
            [
                // One per service, though the cloud's two states are both in it.
                ("restic/m-restic-1/cloud", "cloud", BackupReason::Explicit),
                ("restic/m-restic-1/notes", "notes", BackupReason::Explicit),
                (
                    "restic/m-restic-1/gone",
                    "gone (Orphaned)",
                    BackupReason::Explicit
                ),
                ("borg/m-borg-2/notes", "notes", BackupReason::Auto),
                ("restic/m-restic-3/cloud", "cloud", BackupReason::PreRestore),
            ]
        );
        let orphan = &infos[2].service.0;
        assert_eq!(orphan.meta.can_be_backed_up, Some(false));
    }
}
