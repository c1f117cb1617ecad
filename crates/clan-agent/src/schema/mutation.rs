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
    #[graphql(deprecation = "Moved to `api.getNewRecoveryApiKey`")]
    async fn get_new_recovery_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] limits: Option<RecoveryKeyLimitsInput>,
    ) -> Result<ApiKeyMutationReturn> {
        ApiMutations.get_new_recovery_api_key(ctx, limits).await
    }

    #[graphql(deprecation = "Moved to `api.useRecoveryApiKey`")]
    async fn use_recovery_api_key(
        &self,
        ctx: &Context<'_>,
        input: UseRecoveryKeyInput,
    ) -> Result<DeviceApiTokenMutationReturn> {
        ApiMutations.use_recovery_api_key(ctx, input).await
    }

    #[graphql(deprecation = "Moved to `api.refreshDeviceApiToken`")]
    async fn refresh_device_api_token(
        &self,
        ctx: &Context<'_>,
    ) -> Result<DeviceApiTokenMutationReturn> {
        ApiMutations.refresh_device_api_token(ctx).await
    }

    #[graphql(deprecation = "Moved to `api.deleteDeviceApiToken`")]
    async fn delete_device_api_token(
        &self,
        ctx: &Context<'_>,
        device: String,
    ) -> Result<GenericMutationReturn> {
        ApiMutations.delete_device_api_token(ctx, device).await
    }

    #[graphql(deprecation = "Moved to `api.getNewDeviceApiKey`")]
    async fn get_new_device_api_key(&self, ctx: &Context<'_>) -> Result<ApiKeyMutationReturn> {
        ApiMutations.get_new_device_api_key(ctx).await
    }

    #[graphql(deprecation = "Moved to `api.invalidateNewDeviceApiKey`")]
    async fn invalidate_new_device_api_key(
        &self,
        ctx: &Context<'_>,
    ) -> Result<GenericMutationReturn> {
        ApiMutations.invalidate_new_device_api_key(ctx).await
    }

    #[graphql(deprecation = "Moved to `api.authorizeWithNewDeviceApiKey`")]
    async fn authorize_with_new_device_api_key(
        &self,
        ctx: &Context<'_>,
        input: UseNewDeviceKeyInput,
    ) -> Result<DeviceApiTokenMutationReturn> {
        ApiMutations
            .authorize_with_new_device_api_key(ctx, input)
            .await
    }

    #[graphql(deprecation = "Moved to `system.changeTimezone`")]
    async fn change_timezone(
        &self,
        ctx: &Context<'_>,
        timezone: String,
    ) -> Result<TimezoneMutationReturn> {
        caller(ctx)?;
        SystemMutations.change_timezone(ctx, timezone).await
    }

    #[graphql(deprecation = "Moved to `system.changeAutoUpgradeSettings`")]
    async fn change_auto_upgrade_settings(
        &self,
        ctx: &Context<'_>,
        settings: AutoUpgradeSettingsInput,
    ) -> Result<AutoUpgradeSettingsMutationReturn> {
        caller(ctx)?;
        SystemMutations
            .change_auto_upgrade_settings(ctx, settings)
            .await
    }

    #[graphql(deprecation = "Moved to `system.runSystemRebuild`")]
    async fn run_system_rebuild(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(flat(SystemMutations.run_system_rebuild(ctx).await?))
    }

    #[graphql(deprecation = "Moved to `system.runSystemRollback`")]
    async fn run_system_rollback(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        SystemMutations.run_system_rollback(ctx).await
    }

    #[graphql(deprecation = "Moved to `system.runSystemUpgrade`")]
    async fn run_system_upgrade(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        Ok(flat(SystemMutations.run_system_upgrade(ctx).await?))
    }

    #[graphql(deprecation = "Moved to `system.rebootSystem`")]
    async fn reboot_system(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        SystemMutations.reboot_system(ctx).await
    }

    #[graphql(deprecation = "Moved to `system.pullRepositoryChanges`")]
    async fn pull_repository_changes(&self, ctx: &Context<'_>) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        SystemMutations.pull_repository_changes(ctx).await
    }

    #[graphql(deprecation = "Moved to `system.changeSshSettings`")]
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

    #[graphql(deprecation = "Moved to `users.createUser`")]
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        user: UserMutationInput,
    ) -> Result<UserMutationReturn> {
        caller(ctx)?;
        UsersMutations.create_user(ctx, user).await
    }

    #[graphql(deprecation = "Moved to `users.deleteUser`")]
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        UsersMutations.delete_user(ctx, username).await
    }

    #[graphql(deprecation = "Moved to `users.updateUser`")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        user: UserMutationInput,
    ) -> Result<UserMutationReturn> {
        caller(ctx)?;
        UsersMutations.update_user(ctx, user).await
    }

    #[graphql(deprecation = "Moved to `users.addSshKey`")]
    async fn add_ssh_key(
        &self,
        ctx: &Context<'_>,
        ssh_input: SshMutationInput,
    ) -> Result<UserMutationReturn> {
        caller(ctx)?;
        UsersMutations.add_ssh_key(ctx, ssh_input).await
    }

    #[graphql(deprecation = "Moved to `users.removeSshKey`")]
    async fn remove_ssh_key(
        &self,
        ctx: &Context<'_>,
        ssh_input: SshMutationInput,
    ) -> Result<UserMutationReturn> {
        caller(ctx)?;
        UsersMutations.remove_ssh_key(ctx, ssh_input).await
    }

    #[graphql(deprecation = "Moved to `storage.resizeVolume`")]
    async fn resize_volume(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        StorageMutations.resize_volume(ctx, name).await
    }

    #[graphql(deprecation = "Moved to `storage.mountVolume`")]
    async fn mount_volume(&self, ctx: &Context<'_>, name: String) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        StorageMutations.mount_volume(ctx, name).await
    }

    #[graphql(deprecation = "Moved to `storage.unmountVolume`")]
    async fn unmount_volume(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        StorageMutations.unmount_volume(ctx, name).await
    }

    #[graphql(deprecation = "Moved to `storage.migrateToBinds`")]
    async fn migrate_to_binds(
        &self,
        ctx: &Context<'_>,
        input: MigrateToBindsInput,
    ) -> Result<GenericJobMutationReturn> {
        caller(ctx)?;
        StorageMutations.migrate_to_binds(ctx, input).await
    }

    #[graphql(deprecation = "Moved to `services.enableService`")]
    async fn enable_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        ServicesMutations.enable_service(ctx, service_id).await
    }

    #[graphql(deprecation = "Moved to `services.disableService`")]
    async fn disable_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        ServicesMutations.disable_service(ctx, service_id).await
    }

    #[graphql(deprecation = "Moved to `services.stopService`")]
    async fn stop_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        ServicesMutations.stop_service(ctx, service_id).await
    }

    #[graphql(deprecation = "Moved to `services.startService`")]
    async fn start_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        ServicesMutations.start_service(ctx, service_id).await
    }

    #[graphql(deprecation = "Moved to `services.restartService`")]
    async fn restart_service(
        &self,
        ctx: &Context<'_>,
        service_id: String,
    ) -> Result<ServiceMutationReturn> {
        caller(ctx)?;
        ServicesMutations.restart_service(ctx, service_id).await
    }

    #[graphql(deprecation = "Moved to `services.moveService`")]
    async fn move_service(
        &self,
        ctx: &Context<'_>,
        input: MoveServiceInput,
    ) -> Result<ServiceJobMutationReturn> {
        caller(ctx)?;
        ServicesMutations.move_service(ctx, input).await
    }

    #[graphql(deprecation = "Moved to `jobs.removeJob`")]
    async fn remove_job(&self, ctx: &Context<'_>, job_id: String) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        JobMutations.remove_job(ctx, job_id).await
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
