//! `storage`: the machine's volumes and what each service stores on them.

use async_graphql::{Context, InputObject, Interface, Object};

use super::jobs::GenericJobMutationReturn;
use super::services::{ServiceStorageUsage, all};
use super::{GenericMutationReturn, agent, blocking, managed_elsewhere, unsupported};
use crate::agent::Agent;
use crate::system::Volume;

// The derive repeats `ty` once per field, which clippy takes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "used_space", ty = "&str"),
    field(name = "volume", ty = "Option<StorageVolume>"),
    field(name = "title", ty = "&str")
)]
pub enum StorageUsageInterface {
    Service(ServiceStorageUsage),
}

/// One volume; sizes are byte counts as decimal text (SelfPrivacy's form).
#[derive(Clone)]
pub struct StorageVolume(pub Volume);

pub fn volume_named(agent: &Agent, name: &str) -> Option<StorageVolume> {
    agent
        .volumes()
        .iter()
        .find(|v| v.name == name)
        .cloned()
        .map(StorageVolume)
}

#[Object]
impl StorageVolume {
    async fn total_space(&self) -> String {
        self.0.total.to_string()
    }

    async fn free_space(&self) -> String {
        self.0.free.to_string()
    }

    async fn used_space(&self) -> String {
        self.0.used.to_string()
    }

    async fn root(&self) -> bool {
        self.0.is_root()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }

    async fn serial(&self) -> Option<&str> {
        self.0.serial.as_deref()
    }

    #[graphql(name = "type")]
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The services whose folders are on this volume.
    async fn usages(&self, ctx: &Context<'_>) -> Vec<StorageUsageInterface> {
        let mut out = Vec::new();
        for s in all(ctx) {
            let usage = s.storage_usage_of(ctx).await;
            if usage.volume.as_deref() == Some(self.0.name.as_str()) {
                out.push(StorageUsageInterface::Service(usage));
            }
        }
        out
    }
}

pub struct Storage;

#[Object]
impl Storage {
    async fn volumes(&self, ctx: &Context<'_>) -> Vec<StorageVolume> {
        let a = agent(ctx).clone();
        blocking(move || a.volumes())
            .await
            .iter()
            .cloned()
            .map(StorageVolume)
            .collect()
    }
}

#[derive(InputObject)]
pub struct MigrateToBindsInput {
    pub email_block_device: String,
    pub bitwarden_block_device: String,
    pub gitea_block_device: String,
    pub nextcloud_block_device: String,
    pub pleroma_block_device: String,
}

pub struct StorageMutations;

#[Object]
impl StorageMutations {
    pub async fn resize_volume(&self, name: String) -> GenericMutationReturn {
        let _ = name;
        unsupported("Resizing volumes")
    }

    pub async fn mount_volume(&self, ctx: &Context<'_>, name: String) -> GenericMutationReturn {
        let _ = name;
        managed_elsewhere(ctx, "what is mounted")
    }

    pub async fn unmount_volume(&self, ctx: &Context<'_>, name: String) -> GenericMutationReturn {
        let _ = name;
        managed_elsewhere(ctx, "what is mounted")
    }

    #[graphql(deprecation = "Kept for older apps; not supported.")]
    pub async fn migrate_to_binds(&self, input: MigrateToBindsInput) -> GenericJobMutationReturn {
        let _ = input;
        GenericJobMutationReturn::without_job(unsupported("Migrating to bind mounts"))
    }
}
