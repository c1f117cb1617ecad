//! The agent's HTTP side: `POST/GET /graphql`, WebSocket `/graphql`
//! (`graphql-transport-ws` and `graphql-ws`), `GET /api/version`, `GET /health`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::agent::{Agent, Source};
use crate::schema::{AgentSchema, Caller};
use crate::store::Store;
use crate::{API_VERSION, AgentError, NOT_AUTHENTICATED};

/// Where the agent keeps its data and which machine it serves.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub source: Source,
    /// A token to accept for `device` (the `agent/token` var), registered on start.
    pub initial_token: Option<(String, String)>,
}

#[derive(Clone)]
struct App {
    agent: Arc<Agent>,
    schema: AgentSchema,
}

/// The token of an `Authorization` value: `Bearer <token>`, or the bare token (as
/// SelfPrivacy takes it).
fn bearer(value: &str) -> &str {
    value.strip_prefix("Bearer ").unwrap_or(value).trim()
}

fn header_token(headers: &HeaderMap) -> Option<&str> {
    Some(bearer(headers.get("authorization")?.to_str().ok()?))
}

impl App {
    /// The device of a token (a database error counts as no device).
    fn device(&self, token: Option<&str>) -> Option<String> {
        self.agent.store.device_of(token?).ok().flatten()
    }
}

async fn graphql(
    State(app): State<App>,
    headers: HeaderMap,
    req: GraphQLRequest,
) -> GraphQLResponse {
    let device = {
        let (app, token) = (app.clone(), header_token(&headers).map(str::to_string));
        tokio::task::spawn_blocking(move || app.device(token.as_deref()))
            .await
            .ok()
            .flatten()
    };
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

#[derive(serde::Deserialize)]
struct WsParams {
    token: Option<String>,
}

/// GET /graphql: a WebSocket for subscriptions when the client asks to upgrade,
/// else a query in the URL.
async fn graphql_get(
    State(app): State<App>,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    protocol: Result<GraphQLProtocol, axum::http::StatusCode>,
    req: GraphQLRequest,
) -> Response {
    let (Ok(upgrade), Ok(protocol)) = (upgrade, protocol) else {
        return graphql(State(app), headers, req).await.into_response();
    };
    // The token: the handshake's header, else `?token=`, else `connection_init`'s
    // payload {"Authorization": "Bearer …"} (SelfPrivacy takes all three).
    let early = header_token(&headers)
        .map(str::to_string)
        .or(params.token.as_deref().map(|t| bearer(t).to_string()));
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            let schema = app.schema.clone();
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let from_payload = payload
                        .get("Authorization")
                        .and_then(|v| v.as_str())
                        .map(|v| bearer(v).to_string());
                    let token = early.or(from_payload);
                    let device = tokio::task::spawn_blocking(move || app.device(token.as_deref()))
                        .await
                        .ok()
                        .flatten();
                    let mut data = Data::default();
                    data.insert(Caller(device));
                    Ok(data)
                })
                .serve()
        })
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

/// The agent's routes.
pub fn router(agent: Arc<Agent>) -> Router {
    let schema = crate::schema::build(agent.clone());
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql))
        .route("/api/version", get(version))
        .route("/health", get(health))
        .with_state(App { agent, schema })
        .layer(axum::middleware::map_response(english))
}

/// Messages are in English whatever the client's Accept-Language (SelfPrivacy
/// translates some of its own; the app shows what it gets).
async fn english(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut().insert(
        axum::http::header::CONTENT_LANGUAGE,
        axum::http::HeaderValue::from_static("en"),
    );
    r
}

/// Serves on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, agent: Arc<Agent>) -> std::io::Result<()> {
    axum::serve(listener, router(agent)).await
}

/// Opens the store, registers the initial token, loads the machine.
pub fn open(config: &Config) -> Result<Arc<Agent>, AgentError> {
    let store = Arc::new(Store::open(&config.data_dir)?);
    if let Some((device, token)) = &config.initial_token {
        store.register_token(device, token)?;
    }
    Agent::new(store, config.source.clone())
}

/// A certificate chain and its key (PEM files), to serve HTTPS.
#[derive(Debug, Clone)]
pub struct Tls {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// Serves `agent` on `listen` (HTTPS with `tls`) in the foreground until Ctrl-C or
/// SIGTERM, then waits for running jobs to end.
pub fn run(agent: Arc<Agent>, listen: SocketAddr, tls: Option<&Tls>) -> Result<(), AgentError> {
    let acceptor = tls
        .map(|t| crate::tls::acceptor(&t.certificate, &t.key))
        .transpose()?;
    let io = |context: String| move |source| AgentError::Io { context, source };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the agent's runtime".into()))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(io(format!("listening on {listen}")))?;
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        tracing::info!(
            "serving machine '{}' on {}://{listen}",
            agent.machine().name,
            if acceptor.is_some() { "https" } else { "http" }
        );
        let jobs = agent.jobs.clone();
        let app = router(agent);
        let served = match acceptor {
            Some(acceptor) => {
                let listener = crate::tls::TlsListener::new(listener, acceptor)
                    .map_err(io(format!("listening on {listen}")))?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            }
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            }
        };
        let _ = tokio::task::spawn_blocking(move || jobs.wait_idle()).await;
        served.map_err(io("serving".into()))
    })
}
