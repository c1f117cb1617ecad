//! HTTP: the token and its cookie, the embedded frontend, the API's routes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use clan_core::ClanDir;

use crate::api;
use crate::assets;
use crate::jobs::Jobs;

/// The cookie the token is exchanged for.
const COOKIE: &str = "clan_ui";
/// The header every request that changes something carries.
pub const CSRF_HEADER: &str = "x-clan-ui";

/// What `clan ui` serves.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: ClanDir,
    /// The access token (in the printed URL, then a cookie).
    pub token: String,
    /// The admin's age key, which vars generation and updates use (the CLI's:
    /// `CLAN_AGE_KEY_FILE` or `~/.config/clan/age/key.txt`).
    pub admin_key_file: std::path::PathBuf,
}

impl Config {
    /// A config with a new random token.
    pub fn new(dir: ClanDir) -> Self {
        use base64::Engine;
        let bytes: [u8; 24] = rand::random();
        Self {
            dir,
            token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
            admin_key_file: clan_vars::keys::admin_key_file(),
        }
    }
}

/// Shared by every request.
pub struct App {
    pub config: Config,
    pub jobs: Arc<Jobs>,
    pub cache: api::ClanCache,
}

pub type Shared = Arc<App>;

pub fn router(config: Config) -> Router {
    let app = Arc::new(App {
        cache: api::ClanCache::default(),
        jobs: Arc::new(Jobs::default()),
        config,
    });
    let api = Router::new()
        .route("/clan", get(api::clan))
        .route("/problems", get(api::problems))
        .route("/reachability", get(api::reachability))
        .route("/modules", get(api::modules))
        .route("/instances", get(api::instances).post(api::create_instance))
        .route(
            "/instances/{instance}/roles/{role}/settings",
            put(api::set_settings),
        )
        .route(
            "/instances/{instance}/roles/{role}/members",
            put(api::set_members),
        )
        .route("/machines", post(api::create_machine))
        .route(
            "/machines/{machine}",
            get(api::machine).delete(api::delete_machine),
        )
        .route(
            "/machines/{machine}/backups",
            get(api::backups).post(api::back_up),
        )
        .route("/machines/{machine}/restore", post(api::restore))
        .route("/machines/{machine}/health", get(api::health))
        .route("/machines/{machine}/drill", post(api::drill))
        .route("/machines/{machine}/vars", post(api::generate_vars))
        .route("/machines/{machine}/update", post(api::update))
        .route("/jobs/{job}", get(api::job))
        .route("/jobs/{job}/events", get(api::job_events));
    Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", assets::APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", assets::APP_CSS) }),
        )
        .nest("/api", api)
        .layer(middleware::from_fn_with_state(app.clone(), access))
        .with_state(app)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The page; with `?token=` (the printed URL) the cookie is set and the token
/// leaves the address bar.
async fn index(State(app): State<Shared>, Query(q): Query<TokenQuery>) -> Response {
    if let Some(t) = q.token {
        if !same(&t, &app.config.token) {
            return unauthorized(false);
        }
        let cookie = format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/");
        let mut r = Redirect::to("/").into_response();
        r.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("a header value"),
        );
        return r;
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        assets::INDEX_HTML,
    )
        .into_response()
}

/// Every request but the token's own exchange needs the cookie; requests that
/// change something need the CSRF header too.
async fn access(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let exchanging = request.uri().path() == "/"
        && request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("token=")));
    let api = request.uri().path().starts_with("/api/");
    if !exchanging && !has_cookie(request.headers(), &app.config.token) {
        return unauthorized(api);
    }
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes && !request.headers().contains_key(CSRF_HEADER) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({ "error": format!("requests that change something need the {CSRF_HEADER} header") })),
        )
            .into_response();
    }
    next.run(request).await
}

fn has_cookie(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")))
        .any(|t| same(t, token))
}

/// Compares in time that does not depend on where the strings differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn unauthorized(api: bool) -> Response {
    let message = "Open the address `clan ui` printed: it carries the access token.";
    if api {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!doctype html><title>clan</title><p>{message}</p>"),
    )
        .into_response()
}

/// Serves until Ctrl-C. `ready` gets the address bound (port 0 picks one).
pub fn run(
    config: Config,
    listen: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        ready(listener.local_addr()?);
        axum::serve(listener, router(config))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
