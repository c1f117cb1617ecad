//! `api`: the version, devices and keys (SelfPrivacy's auth model).

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};

use super::{DateTime, GenericMutationReturn, agent, blocking, caller};
use crate::API_VERSION;
use crate::auth::{self, NEW_DEVICE_BYTES, NEW_DEVICE_MINUTES, RECOVERY_BYTES};
use crate::store::{KeyKind, KeyStatus};

pub struct Api;

#[Object]
impl Api {
    async fn version(&self) -> &str {
        API_VERSION
    }

    async fn recovery_key(&self, ctx: &Context<'_>) -> Result<ApiRecoveryKeyStatus> {
        caller(ctx)?;
        let store = agent(ctx).store.clone();
        let key = blocking(move || store.key(KeyKind::Recovery)).await?;
        Ok(match key {
            None => ApiRecoveryKeyStatus {
                exists: false,
                valid: false,
                creation_date: None,
                expiration_date: None,
                uses_left: None,
            },
            Some(k) => ApiRecoveryKeyStatus {
                exists: true,
                valid: k.valid(jiff::Timestamp::now()),
                creation_date: Some(DateTime::utc(k.created_at)),
                expiration_date: k.expires_at.map(DateTime::utc),
                uses_left: k.uses_left.map(|u| u as i32),
            },
        })
    }

    async fn devices(&self, ctx: &Context<'_>) -> Result<Vec<ApiDevice>> {
        let me = caller(ctx)?.to_string();
        let store = agent(ctx).store.clone();
        Ok(blocking(move || store.devices())
            .await?
            .into_iter()
            .map(|d| ApiDevice {
                is_caller: d.name == me,
                name: d.name,
                creation_date: DateTime(d.created_at),
            })
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct ApiDevice {
    pub name: String,
    pub creation_date: DateTime,
    pub is_caller: bool,
}

#[derive(SimpleObject)]
pub struct ApiRecoveryKeyStatus {
    pub exists: bool,
    pub valid: bool,
    pub creation_date: Option<DateTime>,
    pub expiration_date: Option<DateTime>,
    pub uses_left: Option<i32>,
}

#[derive(SimpleObject)]
pub struct ApiKeyMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub key: Option<String>,
}

#[derive(SimpleObject)]
pub struct DeviceApiTokenMutationReturn {
    pub success: bool,
    pub message: String,
    pub code: i32,
    pub token: Option<String>,
}

impl ApiKeyMutationReturn {
    fn failed(code: i32, message: &str) -> Self {
        Self {
            success: false,
            message: message.into(),
            code,
            key: None,
        }
    }
}

impl DeviceApiTokenMutationReturn {
    fn issued(token: Option<String>) -> Self {
        match token {
            Some(token) => Self {
                success: true,
                message: "Token generated".into(),
                code: 200,
                token: Some(token),
            },
            None => Self {
                success: false,
                message: "Recovery key is not found or no longer valid.".into(),
                code: 404,
                token: None,
            },
        }
    }
}

#[derive(InputObject)]
pub struct RecoveryKeyLimitsInput {
    #[graphql(default)]
    pub expiration_date: Option<DateTime>,
    #[graphql(default)]
    pub uses: Option<i32>,
}

#[derive(InputObject)]
pub struct UseRecoveryKeyInput {
    pub key: String,
    pub device_name: String,
}

#[derive(InputObject)]
pub struct UseNewDeviceKeyInput {
    pub key: String,
    pub device_name: String,
}

pub struct ApiMutations;

/// Uses a key of `kind` for a new device; None when it is not the valid key.
async fn use_key(
    ctx: &Context<'_>,
    kind: KeyKind,
    words: String,
    device: String,
) -> Result<Option<String>> {
    let store = agent(ctx).store.clone();
    let Some(entropy) = auth::entropy_of(&words) else {
        return Ok(None);
    };
    Ok(
        blocking(move || store.use_key(kind, &entropy, &device, jiff::Timestamp::now()))
            .await?
            .map(|(_, token)| token),
    )
}

#[Object]
impl ApiMutations {
    pub async fn get_new_recovery_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] limits: Option<RecoveryKeyLimitsInput>,
    ) -> Result<ApiKeyMutationReturn> {
        caller(ctx)?;
        let now = jiff::Timestamp::now();
        let (expires_at, uses) = match limits {
            Some(l) => (
                match l.expiration_date {
                    Some(d) => Some(
                        d.timestamp()
                            .ok_or("expirationDate is not a date and time")?,
                    ),
                    None => None,
                },
                l.uses,
            ),
            None => (None, None),
        };
        if expires_at.is_some_and(|e| e <= now) {
            return Ok(ApiKeyMutationReturn::failed(
                400,
                "Expiration date cannot be in the past.",
            ));
        }
        if uses.is_some_and(|u| u <= 0) {
            return Ok(ApiKeyMutationReturn::failed(
                400,
                "Uses must be greater than 0.",
            ));
        }
        let (words, entropy) = auth::new_key(RECOVERY_BYTES);
        let store = agent(ctx).store.clone();
        let status = KeyStatus {
            created_at: now,
            expires_at,
            uses_left: uses.map(i64::from),
        };
        blocking(move || store.set_key(KeyKind::Recovery, &entropy, &status)).await?;
        Ok(ApiKeyMutationReturn {
            success: true,
            message: "Recovery key generated".into(),
            code: 200,
            key: Some(words),
        })
    }

    /// Public: a recovery key gives a new device a token.
    pub async fn use_recovery_api_key(
        &self,
        ctx: &Context<'_>,
        input: UseRecoveryKeyInput,
    ) -> Result<DeviceApiTokenMutationReturn> {
        let token = use_key(ctx, KeyKind::Recovery, input.key, input.device_name).await?;
        Ok(DeviceApiTokenMutationReturn::issued(token))
    }

    pub async fn refresh_device_api_token(
        &self,
        ctx: &Context<'_>,
    ) -> Result<DeviceApiTokenMutationReturn> {
        let me = caller(ctx)?.to_string();
        let store = agent(ctx).store.clone();
        Ok(match blocking(move || store.refresh_token(&me)).await? {
            Some(token) => DeviceApiTokenMutationReturn {
                success: true,
                message: "Token refreshed".into(),
                code: 200,
                token: Some(token),
            },
            None => DeviceApiTokenMutationReturn {
                success: false,
                message: "The caller's device is gone".into(),
                code: 400,
                token: None,
            },
        })
    }

    pub async fn delete_device_api_token(
        &self,
        ctx: &Context<'_>,
        device: String,
    ) -> Result<GenericMutationReturn> {
        let me = caller(ctx)?;
        if device == me {
            return Ok(GenericMutationReturn::with(
                400,
                "Cannot delete caller's token",
            ));
        }
        let store = agent(ctx).store.clone();
        Ok(if blocking(move || store.delete_device(&device)).await? {
            GenericMutationReturn::ok("Token deleted")
        } else {
            GenericMutationReturn::with(404, "Token not found")
        })
    }

    pub async fn get_new_device_api_key(&self, ctx: &Context<'_>) -> Result<ApiKeyMutationReturn> {
        caller(ctx)?;
        let (words, entropy) = auth::new_key(NEW_DEVICE_BYTES);
        let now = jiff::Timestamp::now();
        let status = KeyStatus {
            created_at: now,
            expires_at: Some(now + jiff::SignedDuration::from_mins(NEW_DEVICE_MINUTES)),
            uses_left: None,
        };
        let store = agent(ctx).store.clone();
        blocking(move || store.set_key(KeyKind::NewDevice, &entropy, &status)).await?;
        Ok(ApiKeyMutationReturn {
            success: true,
            message: "Device key generated".into(),
            code: 200,
            key: Some(words),
        })
    }

    pub async fn invalidate_new_device_api_key(
        &self,
        ctx: &Context<'_>,
    ) -> Result<GenericMutationReturn> {
        caller(ctx)?;
        let store = agent(ctx).store.clone();
        blocking(move || store.delete_key(KeyKind::NewDevice)).await?;
        Ok(GenericMutationReturn::ok("New device key deleted"))
    }

    /// Public: the pending new-device key gives a new device a token, once.
    pub async fn authorize_with_new_device_api_key(
        &self,
        ctx: &Context<'_>,
        input: UseNewDeviceKeyInput,
    ) -> Result<DeviceApiTokenMutationReturn> {
        let token = use_key(ctx, KeyKind::NewDevice, input.key, input.device_name).await?;
        Ok(match token {
            Some(_) => DeviceApiTokenMutationReturn::issued(token),
            None => DeviceApiTokenMutationReturn {
                success: false,
                message: "Token not found".into(),
                code: 404,
                token: None,
            },
        })
    }
}
