//! SelfPrivacy's GraphQL schema over clan's model: the same type and field names,
//! nullability, enum values and defaults as the reference SDL (a test compares them),
//! and its conventions: a field that needs a token fails with SelfPrivacy's message
//! (every root field is non-null, so `data` is then null); mutations answer with
//! `success`, `message` and an HTTP-like `code` instead of failing.

mod api;
mod backup;
mod jobs;
mod logs;
mod monitoring;
mod mutation;
mod services;
mod storage;
mod system;
mod users;

use std::sync::Arc;

use async_graphql::{
    Context, InputValueError, InputValueResult, Interface, Object, Result, Scalar, ScalarType,
    Schema, SimpleObject, Value,
};

use crate::NOT_AUTHENTICATED;
use crate::agent::Agent;
use crate::held::Refusal;

pub use mutation::Mutation;

/// SelfPrivacy's `DateTime` scalar: ISO 8601 text.
#[derive(Debug, Clone, PartialEq)]
pub struct DateTime(pub String);

/// An ISO 8601 date and time.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s)
                if s.parse::<jiff::civil::DateTime>().is_ok()
                    || s.parse::<jiff::Timestamp>().is_ok() =>
            {
                Ok(DateTime(s))
            }
            Value::String(s) => Err(InputValueError::custom(format!(
                "{s:?} is not an ISO 8601 date and time"
            ))),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

impl DateTime {
    /// UTC with its zone, as SelfPrivacy shows aware times.
    pub fn utc(t: jiff::Timestamp) -> Self {
        DateTime(t.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string())
    }

    /// When it names a moment: with a zone, or naive taken as UTC (as SelfPrivacy).
    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        self.0.parse::<jiff::Timestamp>().ok().or_else(|| {
            let civil: jiff::civil::DateTime = self.0.parse().ok()?;
            civil
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp())
        })
    }
}

/// The device whose token came with the request, if any.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<String>);

/// The caller's device, or SelfPrivacy's refusal.
fn caller<'a>(ctx: &'a Context<'_>) -> Result<&'a str> {
    ctx.data::<Caller>()
        .ok()
        .and_then(|c| c.0.as_deref())
        .ok_or_else(|| NOT_AUTHENTICATED.into())
}

fn agent<'a>(ctx: &'a Context<'_>) -> &'a Arc<Agent> {
    ctx.data_unchecked::<Arc<Agent>>()
}

/// Runs blocking work (programs, the database, backups) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking work panicked")
}

/// What every mutation answers with.
// The derive repeats `ty` once per field, which clippy takes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "success", ty = "&bool"),
    field(name = "message", ty = "&String"),
    field(name = "code", ty = "&i32")
)]
pub enum MutationReturnInterface {
    Generic(GenericMutationReturn),
    ApiKey(api::ApiKeyMutationReturn),
    DeviceApiToken(api::DeviceApiTokenMutationReturn),
    Timezone(system::TimezoneMutationReturn),
    AutoUpgrade(system::AutoUpgradeSettingsMutationReturn),
    Ssh(system::SshSettingsMutationReturn),
    GenericJob(jobs::GenericJobMutationReturn),
    Service(services::ServiceMutationReturn),
    ServiceJob(services::ServiceJobMutationReturn),
    BackupConfig(backup::GenericBackupConfigReturn),
    User(users::UserMutationReturn),
    PasswordResetLink(users::PasswordResetLinkReturn),
}

#[derive(SimpleObject, Clone)]
pub struct GenericMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
}

impl GenericMutationReturn {
    pub fn ok(message: impl Into<String>) -> Self {
        Self::with(200, message)
    }

    pub fn with(code: i32, message: impl Into<String>) -> Self {
        Self {
            success: (200..300).contains(&code),
            message: message.into(),
            code,
        }
    }
}

/// A configuration change asked of a machine whose configuration lives in its clan
/// repository, elsewhere: refused, with what to run there.
fn managed_elsewhere(ctx: &Context<'_>, what: &str) -> GenericMutationReturn {
    let machine = agent(ctx).machine().name.to_string();
    GenericMutationReturn::with(
        409,
        format!(
            "This machine is managed from its clan repository, so {what} is changed there: edit \
             the clan (`clan config --machine {machine} …` or inventory.json), then run `clan \
             machines update {machine}`."
        ),
    )
}

/// A configuration change (`what`, as the commit names it; `topic` in a refusal):
/// made in the clan this machine holds, else refused as managed elsewhere.
async fn change_config(
    ctx: &Context<'_>,
    topic: &str,
    what: String,
    plan: impl FnOnce(
        &clan_core::Clan,
        &clan_core::ResolvedMachine,
    ) -> std::result::Result<Vec<clan_ops::inventory::Edit>, Refusal>
    + Send
    + 'static,
) -> GenericMutationReturn {
    let a = agent(ctx).clone();
    let (Ok(device), Some(held)) = (caller(ctx), a.held()) else {
        return managed_elsewhere(ctx, topic);
    };
    let device = device.to_string();
    match blocking(move || held.change(&device, &what, plan)).await {
        Ok(()) => GenericMutationReturn::ok(APPLY_HINT),
        Err(r) => GenericMutationReturn::with(r.code, r.message),
    }
}

/// What a saved configuration change still needs.
const APPLY_HINT: &str =
    "Saved in the machine's clan; a system rebuild (system.runSystemRebuild) applies it.";

/// An action this kind of machine does not have.
fn unsupported(what: &str) -> GenericMutationReturn {
    GenericMutationReturn::with(400, format!("{what} is not supported on this machine."))
}

pub struct Query;

#[Object]
impl Query {
    async fn api(&self) -> api::Api {
        api::Api
    }

    async fn system(&self, ctx: &Context<'_>) -> Result<system::System> {
        caller(ctx)?;
        Ok(system::System)
    }

    async fn logs(&self, ctx: &Context<'_>) -> Result<logs::Logs> {
        caller(ctx)?;
        Ok(logs::Logs)
    }

    async fn users(&self, ctx: &Context<'_>) -> Result<users::Users> {
        caller(ctx)?;
        Ok(users::Users)
    }

    async fn groups(&self, ctx: &Context<'_>) -> Result<users::Groups> {
        caller(ctx)?;
        Ok(users::Groups)
    }

    async fn storage(&self, ctx: &Context<'_>) -> Result<storage::Storage> {
        caller(ctx)?;
        Ok(storage::Storage)
    }

    async fn jobs(&self, ctx: &Context<'_>) -> Result<jobs::Job> {
        caller(ctx)?;
        Ok(jobs::Job)
    }

    async fn services(&self, ctx: &Context<'_>) -> Result<services::Services> {
        caller(ctx)?;
        Ok(services::Services)
    }

    async fn backup(&self, ctx: &Context<'_>) -> Result<backup::Backup> {
        caller(ctx)?;
        Ok(backup::Backup)
    }

    async fn monitoring(&self, ctx: &Context<'_>) -> Result<monitoring::Monitoring> {
        caller(ctx)?;
        Ok(monitoring::Monitoring)
    }
}

pub type AgentSchema = Schema<Query, Mutation, jobs::Subscription>;

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, jobs::Subscription> {
    Schema::build(Query, Mutation, jobs::Subscription)
        .register_output_type::<MutationReturnInterface>()
        .register_output_type::<services::ConfigItem>()
        .register_output_type::<storage::StorageUsageInterface>()
}

pub fn build(agent: Arc<Agent>) -> AgentSchema {
    builder().data(agent).finish()
}

/// The served schema as SDL.
pub fn sdl() -> String {
    builder().finish().sdl()
}
