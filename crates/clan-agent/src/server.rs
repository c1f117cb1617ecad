//! The agent's HTTP side: `POST/GET /graphql`, `GET /api/version`, `GET /health`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;

use crate::schema::{AgentSchema, Caller};
use crate::store::Store;
use crate::{API_VERSION, AgentError, NOT_AUTHENTICATED};

/// Where the agent listens and keeps its data.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
}

#[derive(Clone)]
struct App {
    store: Arc<Store>,
    schema: AgentSchema,
}

/// The token of `Authorization: Bearer <token>` (a bare token too, as SelfPrivacy).
fn token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    Some(value.strip_prefix("Bearer ").unwrap_or(value).trim())
}

async fn graphql(
    State(app): State<App>,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> GraphQLResponse {
    let device = token(&headers).and_then(|t| app.store.device_of(t).ok().flatten());
    let mut resp = app
        .schema
        .execute(req.into_inner().data(Caller(device)))
        .await;
    // Every root field is non-null, so a field refused for want of a token makes
    // `data` null, as the app expects (async-graphql leaves the rest of `data`).
    if resp.errors.iter().any(|e| e.message == NOT_AUTHENTICATED) {
        resp.data = async_graphql::Value::Null;
    }
    resp.into()
}

async fn version() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "version": API_VERSION,
        "clan": env!("CARGO_PKG_VERSION"),
    }))
}

async fn health() -> &'static str {
    "ok\n"
}

/// The agent's routes over `store`.
pub fn router(store: Arc<Store>) -> Router {
    let schema = crate::schema::build(store.clone());
    Router::new()
        .route("/graphql", get(graphql).post(graphql))
        .route("/api/version", get(version))
        .route("/health", get(health))
        .with_state(App { store, schema })
}

/// Serves on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, store: Arc<Store>) -> std::io::Result<()> {
    axum::serve(listener, router(store)).await
}

/// Runs the agent in the foreground until Ctrl-C or SIGTERM.
pub fn run(config: &Config) -> Result<(), AgentError> {
    let store = Arc::new(Store::open(&config.data_dir)?);
    let io = |context: String| move |source| AgentError::Io { context, source };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the agent's runtime".into()))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(io(format!("listening on {}", config.listen)))?;
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        axum::serve(listener, router(store))
            .with_graceful_shutdown(stop)
            .await
            .map_err(io("serving".into()))
    })
}
