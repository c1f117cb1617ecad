//! An agent on a free loopback port serving machine `m` of a real clan in a temp
//! directory (real Nix evaluation, real SQLite, real restic engine backups to a local
//! repository), and clients for it: HTTP and WebSocket.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clan_agent::agent::{Agent, Source};
use clan_agent::store::Store;
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

/// A clan service module of the clan's own: a journal whose folder is a state.
const JOURNAL_MODULE: &str = r#"{ lib, ... }: {
  _class = "clan.service";
  manifest = {
    name = "journal";
    description = "A journal to write in";
    displayName = "Journal";
    svgIcon = "<svg xmlns='http://www.w3.org/2000/svg'/>";
    license = [ { shortName = "mit"; fullName = "MIT License"; spdxId = "MIT"; free = true; redistributable = true; } ];
    homepage = "https://journal.example.org";
    supportLevel = "community";
    backupDescription = "Every entry.";
  };
  roles.default = {
    description = "Keeps the journal";
    interface = { lib, ... }: {
      options.dir = lib.mkOption { type = lib.types.str; description = "Where entries live"; };
      options.title = lib.mkOption { type = lib.types.str; default = "My journal"; description = "Title"; } // { meta = { type = "string"; weight = 1; regex = "^[A-Za-z ]+$"; }; };
      options.public = lib.mkOption { type = lib.types.bool; default = false; description = "Readable by anyone"; };
      options.theme = lib.mkOption { type = lib.types.enum [ "light" "dark" ]; default = "light"; description = "Colours"; };
    };
    perInstance = { settings, ... }: {
      nixosModule = { ... }: {
        clan.core.state.journal.folders = [ settings.dir ];
      };
    };
  };
}"#;

pub struct TestAgent {
    pub url: String,
    pub port: u16,
    pub store: Arc<Store>,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

/// Writes the clan: machine `m` runs the `diary` journal instance (folder
/// `journal/`), a `docs` state of its own (folder `docs/`), a `web` state whose
/// unit does not exist, and restic backups to `repo/`. `extra` is more Nix for `m`.
pub fn clan(root: &Path, extra: &str) -> PathBuf {
    let dir = root.join("clan");
    std::fs::create_dir_all(dir.join("modules/journal")).unwrap();
    std::fs::write(dir.join("modules/journal/default.nix"), JOURNAL_MODULE).unwrap();
    for (path, body) in [
        (
            "journal/2026-11-30.md",
            "Dear diary, today I wrote an agent.\n",
        ),
        ("journal/drafts/idea.md", "An idea.\n"),
        ("docs/welcome.md", "Hello World!\n"),
        ("pw", "agent test password\n"),
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let r = root.display();
    std::fs::write(
        dir.join("clan.nix"),
        format!(
            r#"{{
              meta.name = "t";
              meta.domain = "example.org";
              inventory.machines.m = {{ deploy.targetHost = "root@localhost"; }};
              inventory.instances = {{
                diary = {{ module = {{ name = "journal"; input = "self"; }}; roles.default.machines.m.settings = {{ dir = "{r}/journal"; public = true; }}; }};
                restic = {{ roles.client.machines.m.settings = {{ repository = "{r}/repo"; passwordFile = "{r}/pw"; }}; }};
              }};
              machines.m = {{ ... }}: {{
                clan.core.state.docs.folders = [ "{r}/docs" ];
                clan.core.state.web = {{ folders = [ "{r}/web" ]; services = [ "clan-test-absent.service" ]; }};
                clan.core.backups.stagingDirectory = "{r}/staging";
                {extra}
              }};
            }}"#
        ),
    )
    .unwrap();
    dir
}

/// Starts an agent for machine `m` of [`clan`] with `extra`, serving the clan
/// directory (which it then holds: configuration changes go there).
pub fn start(extra: &str) -> TestAgent {
    start_with(extra, false, None)
}

/// [`start`] with the clan's admin key at `admin_key`.
pub fn start_held(admin_key: &Path) -> TestAgent {
    start_with("", false, Some(admin_key))
}

/// Starts an agent for machine `m` as `machines update` installed it: its
/// configuration from a machine.json, its clan elsewhere.
pub fn start_installed(extra: &str) -> TestAgent {
    start_with(extra, true, None)
}

fn start_with(extra: &str, installed: bool, admin_key: Option<&Path>) -> TestAgent {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let clan_dir = clan(&root, extra);
    let store = Arc::new(Store::open(&root.join("agent")).unwrap());
    let mut source = Source::Clan {
        dir: clan_core::ClanDir::open(&clan_dir, "test").unwrap(),
        machine: "m".into(),
    };
    if installed {
        let path = root.join("machine.json");
        std::fs::write(&path, serde_json::to_vec(&source.load().unwrap()).unwrap()).unwrap();
        source = Source::Installed(path);
    }
    let agent = match admin_key {
        Some(key) => Agent::with_admin_key(store.clone(), source, key.to_path_buf()),
        None => Agent::new(store.clone(), source),
    }
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            clan_agent::server::serve(listener, agent).await.unwrap();
        });
    });
    TestAgent {
        url: format!("http://127.0.0.1:{port}"),
        port,
        store,
        root,
        _dir: dir,
    }
}

impl TestAgent {
    /// A token for a new device.
    pub fn token(&self) -> String {
        self.store.create_token("test device").unwrap().1
    }

    /// POST /graphql; returns the HTTP status and the body.
    pub fn post(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req = reqwest::blocking::Client::new()
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap())
    }

    /// The `data` of a query that must succeed.
    pub fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(Some(token), query, variables);
        assert_eq!(status, 200, "{body}");
        assert!(body["errors"].is_null(), "{query}: {body}");
        body["data"].clone()
    }

    /// A WebSocket speaking `protocol` (`graphql-transport-ws` or `graphql-ws`),
    /// initialised with `token` in `connection_init`'s payload.
    pub fn ws(&self, protocol: &str, token: Option<&str>) -> Ws {
        let mut req = format!("ws://127.0.0.1:{}/graphql", self.port)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (mut socket, resp) = tungstenite::connect(req).unwrap();
        assert_eq!(
            resp.headers()["sec-websocket-protocol"],
            protocol,
            "the server speaks the asked protocol"
        );
        if let MaybeTlsStream::Plain(s) = socket.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        }
        let payload = match token {
            Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        socket
            .send(Message::text(
                json!({"type": "connection_init", "payload": payload}).to_string(),
            ))
            .unwrap();
        let mut ws = Ws { socket };
        assert_eq!(ws.next()["type"], "connection_ack");
        ws
    }
}

pub struct Ws {
    pub socket: WebSocket<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// The next message (text frames as JSON); a read that times out fails the test.
    pub fn next(&mut self) -> Value {
        loop {
            match self.socket.read().expect("a message within the timeout") {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    pub fn send(&mut self, v: Value) {
        self.socket.send(Message::text(v.to_string())).unwrap();
    }
}

/// Waits (over a `jobUpdates` subscription) until job `uid` ends; returns it.
pub fn wait_job(agent: &TestAgent, token: &str, uid: &str) -> Value {
    let mut ws = agent.ws("graphql-transport-ws", Some(token));
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription { jobUpdates { uid status statusText progress error result } }"}}));
    // The job may have ended before the subscription began: ask once, then listen.
    let now = agent.data(
        token,
        "query($id: String!) { jobs { getJob(jobId: $id) { uid status statusText progress error result } } }",
        json!({"id": uid}),
    );
    let ended = |j: &Value| matches!(j["status"].as_str(), Some("FINISHED" | "ERROR"));
    let job = &now["jobs"]["getJob"];
    if ended(job) {
        return job.clone();
    }
    loop {
        let m = ws.next();
        assert_eq!(m["type"], "next", "{m}");
        let jobs = m["payload"]["data"]["jobUpdates"]
            .as_array()
            .unwrap()
            .clone();
        if let Some(j) = jobs.iter().find(|j| j["uid"] == uid)
            && ended(j)
        {
            return j.clone();
        }
    }
}

/// Every file under `dir` with its contents, sorted.
pub fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
