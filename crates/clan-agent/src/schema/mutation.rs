//! The mutation root: SelfPrivacy's namespaces, and its older flat mutations
//! (deprecated there too), which do what their namespaced versions do.

use async_graphql::{Context, Object, Result};

use super::api::{
    ApiKeyMutationReturn, ApiMutations, DeviceApiTokenMutationReturn, RecoveryKeyLimitsInput,
    UseNewDeviceKeyInput, UseRecoveryKeyInput,
};
use super::backup::BackupMutations;
use super::jobs::{GenericJobMutationReturn, JobMutations};
use super::services::{
    MoveServiceInput, ServiceJobMutationReturn, ServiceMutationReturn, ServicesMutations,
};
use super::storage::{MigrateToBindsInput, StorageMutations};
use super::system::{
    AutoUpgradeSettingsInput, AutoUpgradeSettingsMutationReturn, SshSettingsInput, SystemMutations,
    TimezoneMutationReturn,
};
use super::users::{
    EmailPasswordsMetadataMutations, SshMutationInput, UserMutationInput, UserMutationReturn,
    UsersMutations,
};
use super::{GenericMutationReturn, caller};

pub struct Mutation;

/// The flat form of a job mutation: its job is dropped.
fn flat(r: GenericJobMutationReturn) -> GenericMutationReturn {
    GenericMutationReturn {
        success: r.success,
        message: r.message,
        code: r.code,
    }
}

#[Object]
impl Mutation {
    #[graphql(deprecation = "Use `api.get_new_recovery_api_key` instead")]
    async fn get_new_recovery_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] limits: Option<RecoveryKeyLimitsInput>,
    ) -> Result<ApiKeyMutationReturn> {
        Ok(ApiMutations.get_new_recovery_api_key(ctx, limits).await?)
    }

    #[graphql(deprecation = "Use `api.use_recovery_api_key` instead")]
    async fn use_recovery_api_key(
        &self,
        ctx: &Context<'_>,
        input: UseRecoveryKeyInput,
    ) -> Result<DeviceApiTokenMutationReturn> {
        Ok(ApiMutations.use_recovery_api_key(ctx, input).await?)
    }

    #[graphql(deprecation = "Use `api.refresh_device_api_token` instead")]
    async fn refresh_device_api_token(
        &self,
        ctx: &Context<'_>,
    ) -> Result<DeviceApiTokenMutationReturn> {
        Ok(ApiMutations.refresh_device_api_token(ctx).await?)
    }

    #[graphql(deprecation = "Use `api.delete_device_api_token` instead")]
    async fn delete_device_api_token(
        &self,
        ctx: &Context<'_>,
        device: String,
    ) -> Result<GenericMutationReturn> {
        Ok(ApiMutations.delete_device_api_token(ctx, device).await?)
    }

    #[graphql(deprecation = "Use `api.get_new_device_api_key` instead")]
    async fn get_new_device_api_key(&self, ctx: &Context<'_>) -> Result<ApiKeyMutationReturn> {
        Ok(ApiMutations.get_new_device_api_key(ctx).await?)
    }

    #[graphql(deprecation = "Use `api.invalidate_new_device_api_key` instead")]
    async fn invalidate_new_device_api_key(
        &self,
        ctx: &Context<'_>,
    ) -> Result<GenericMutationReturn> {
        Ok(ApiMutations.invalidate_new_device_api_key(ctx).await?)
    }

    #[graphql(deprecation = "Use `api.authorize_with_new_device_api_key` instead")]
    async fn authorize_with_new_device_api_key(
        &self,
        ctx: &Context<'_>,
        input: UseNewDeviceKeyInput,
    ) -> Result<DeviceApiTokenMutationReturn> {
        Ok(ApiMutations
            .authorize_with_new_device_api_key(ctx, input)
            .await?)
    }

    #[graphql(deprecation = "Use `system.change_timezone` instead")]
    async fn change_timezone(
        &self,
        ctx: &Context<'_>,
        timezone: String,
    ) -> Result<TimezoneMutationReturn> {
        caller(ctx)?;
        Ok(SystemMutations.change_timezone(ctx, timezone).await?)
    }

    #[graphql(deprecation = "Use `system.change_auto_upgrade_settings` instead")]
    async fn change_auto_upgrade_settings(
        &self,
        ctx: &Context<'_>,
        settings: AutoUpgradeSettingsInput,
    ) -> Result<AutoUpgradeSettingsMutationReturn> {
        caller(ctx)?;
        Ok(SystemMutations
            .change_auto_upgrade_settings(ctx, settings)
            .await?)
    }

    #[graphql(deprecation = "Use `system.run_system_rebuild` instead")]
    async fn run_system_rebuild(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(flat(SystemMutations.run_system_rebuild(ctx).await?))
    }

    #[graphql(deprecation = "Use `system.run_system_rollback` instead")]
    async fn run_system_rollback(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(SystemMutations.run_system_rollback(ctx).await?)
    }

    #[graphql(deprecation = "Use `system.run_system_upgrade` instead")]
    async fn run_system_upgrade(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(flat(SystemMutations.run_system_upgrade(ctx).await?))
    }

    #[graphql(deprecation = "Use `system.reboot_system` instead")]
    async fn reboot_system(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(SystemMutations.reboot_system(ctx).await?)
    }

    #[graphql(deprecation = "Use `system.pull_repository_changes` instead")]
    async fn pull_repository_changes(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(SystemMutations.pull_repository_changes(ctx).await?)
    }

    #[graphql(deprecation = "Use `system.change_ssh_settings` instead")]
    async fn set_ssh_settings(
        &self,
        ctx: &Context<'_>,
        settings: SshSettingsInput,
    ) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        let r = SystemMutations.change_ssh_settings(ctx, settings).await?;
        Ok(GenericMutationReturn {
            success: r.success,
            message: r.message,
            code: r.code,
        })
    }

    #[graphql(deprecation = "Use `users.create_user` instead")]
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        user: UserMutationInput,
    ) -> Result<UserMutationReturn> {
        caller(ctx)?;
        Ok(UsersMutations.create_user(ctx, user).await?)
    }

    #[graphql(deprecation = "Use `users.delete_user` instead")]
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(UsersMutations.delete_user(ctx, username).await?)
    }

    #[graphql(deprecation = "Use `users.update_user` instead")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        user: UserMutationInput,
    ) -> Result<UserMutationReturn> {
        caller(ctx)?;
        Ok(UsersMutations.update_user(ctx, user).await?)
    }

    #[graphql(deprecation = "Use `users.add_ssh_key` instead")]
    async fn add_ssh_key(
        &self,
        ctx: &Context<'_>,
        ssh_input: SshMutationInput,
    ) -> Result<UserMutationReturn> {
        caller(ctx)?;
        Ok(UsersMutations.add_ssh_key(ctx, ssh_input).await?)
    }

    #[graphql(deprecation = "Use `users.remove_ssh_key` instead")]
    async fn remove_ssh_key(
        &self,
        ctx: &Context<'_>,
        ssh_input: SshMutationInput,
    ) -> Result<UserMutationReturn> {
        caller(ctx)?;
        Ok(UsersMutations.remove_ssh_key(ctx, ssh_input).await?)
    }

    #[graphql(deprecation = "Use `storage.resize_volume` instead")]
    async fn resize_volume(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(StorageMutations.resize_volume(ctx, name).await?)
    }

    #[graphql(deprecation = "Use `storage.mount_volume` instead")]
    async fn mount_volume(&self, ctx: &Context<'_>, name: String) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(StorageMutations.mount_volume(ctx, name).await?)
    }

    #[graphql(deprecation = "Use `storage.unmount_volume` instead")]
    async fn unmount_volume(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(StorageMutations.unmount_volume(ctx, name).await?)
    }

    #[graphql(deprecation = "Use `storage.migrate_to_binds` instead")]
    async fn migrate_to_binds(
        &self,
        ctx: &Context<'_>,
        input: MigrateToBindsInput,
    ) -> Result<GenericJobMutationReturn> {
        caller(ctx)?;
        Ok(StorageMutations.migrate_to_binds(ctx, input).await?)
    }

    #[graphql(deprecation = "Use `services.enable_service` instead")]
    async fn enable_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        Ok(ServicesMutations.enable_service(ctx, service_id).await?)
    }

    #[graphql(deprecation = "Use `services.disable_service` instead")]
    async fn disable_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        Ok(ServicesMutations.disable_service(ctx, service_id).await?)
    }

    #[graphql(deprecation = "Use `services.stop_service` instead")]
    async fn stop_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        Ok(ServicesMutations.stop_service(ctx, service_id).await?)
    }

    #[graphql(deprecation = "Use `services.start_service` instead")]
    async fn start_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        Ok(ServicesMutations.start_service(ctx, service_id).await?)
    }

    #[graphql(deprecation = "Use `services.restart_service` instead")]
    async fn restart_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        Ok(ServicesMutations.restart_service(ctx, service_id).await?)
    }

    #[graphql(deprecation = "Use `services.move_service` instead")]
    async fn move_service(
        &self,
        ctx: &Context<'_>,
        input: MoveServiceInput,
    ) -> Result<ServiceJobMutationReturn> {
        caller(ctx)?;
        Ok(ServicesMutations.move_service(ctx, input).await?)
    }

    #[graphql(deprecation = "Use `jobs.remove_job` instead")]
    async fn remove_job(&self, ctx: &Context<'_>, job_id: String) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(JobMutations.remove_job(ctx, job_id).await?)
    }

    /// Public: some of its mutations need no token (using a key).
    async fn api(&self) -> ApiMutations {
        ApiMutations
    }

    async fn system(&self, ctx: &Context<'_>) -> Result<SystemMutations> {
        caller(ctx)?;
        Ok(SystemMutations)
    }

    async fn users(&self, ctx: &Context<'_>) -> Result<UsersMutations> {
        caller(ctx)?;
        Ok(UsersMutations)
    }

    async fn storage(&self, ctx: &Context<'_>) -> Result<StorageMutations> {
        caller(ctx)?;
        Ok(StorageMutations)
    }

    async fn email_password_metadata_mutations(
        &self,
        ctx: &Context<'_>,
    ) -> Result<EmailPasswordsMetadataMutations> {
        caller(ctx)?;
        Ok(EmailPasswordsMetadataMutations)
    }

    async fn services(&self, ctx: &Context<'_>) -> Result<ServicesMutations> {
        caller(ctx)?;
        Ok(ServicesMutations)
    }

    async fn jobs(&self, ctx: &Context<'_>) -> Result<JobMutations> {
        caller(ctx)?;
        Ok(JobMutations)
    }

    async fn backup(&self, ctx: &Context<'_>) -> Result<BackupMutations> {
        caller(ctx)?;
        Ok(BackupMutations)
    }

    async fn test_mutation(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(GenericMutationReturn::ok("Test mutation worked"))
    }
}
