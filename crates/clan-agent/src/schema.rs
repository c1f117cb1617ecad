//! SelfPrivacy's GraphQL schema, as far as the agent serves it: the same type and
//! field names, nullability and conventions as the reference SDL. Fields that need
//! a token fail with SelfPrivacy's message; since the root fields are non-null,
//! `data` is then null, as the app expects.

use std::sync::Arc;

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, InputValueError, InputValueResult, Object, Result,
    Scalar, ScalarType, Schema, SimpleObject, Value,
};

use crate::store::Store;
use crate::{API_VERSION, NOT_AUTHENTICATED};

/// SelfPrivacy's `DateTime` scalar: ISO 8601 text.
#[derive(Debug, Clone, PartialEq)]
pub struct DateTime(pub String);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(DateTime(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// The device whose token came with the request, if any.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<String>);

fn caller<'a>(ctx: &'a Context<'_>) -> Result<&'a str> {
    ctx.data::<Caller>()
        .ok()
        .and_then(|c| c.0.as_deref())
        .ok_or_else(|| NOT_AUTHENTICATED.into())
}

pub struct Query;

#[Object]
impl Query {
    async fn api(&self) -> Api {
        Api
    }
}

pub struct Api;

#[Object]
impl Api {
    async fn version(&self) -> &str {
        API_VERSION
    }

    async fn devices(&self, ctx: &Context<'_>) -> Result<Vec<ApiDevice>> {
        let me = caller(ctx)?;
        let store = ctx.data::<Arc<Store>>()?;
        Ok(store
            .devices()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|d| ApiDevice {
                is_caller: d.name == me,
                name: d.name,
                creation_date: DateTime(d.created_at),
            })
            .collect())
    }

    /// No recovery key exists yet (the agent does not issue them yet).
    async fn recovery_key(&self, ctx: &Context<'_>) -> Result<ApiRecoveryKeyStatus> {
        caller(ctx)?;
        Ok(ApiRecoveryKeyStatus {
            exists: false,
            valid: false,
            creation_date: None,
            expiration_date: None,
            uses_left: None,
        })
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

pub type AgentSchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub fn build(store: Arc<Store>) -> AgentSchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(store)
        .finish()
}
