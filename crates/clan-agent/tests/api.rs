//! The agent's API over real HTTP on loopback, with its real SQLite store: what the
//! SelfPrivacy app sees before and after it authenticates.

use std::sync::Arc;

use clan_agent::store::Store;
use serde_json::{Value, json};

/// An agent on a free loopback port, serving until the test ends.
struct Agent {
    url: String,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

fn start() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = store.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            clan_agent::server::serve(listener, served).await.unwrap();
        });
    });
    Agent {
        url,
        store,
        _dir: dir,
    }
}

fn query(agent: &Agent, token: Option<&str>, q: &str) -> (u16, Value) {
    let mut req = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", agent.url))
        .json(&json!({ "query": q }));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap())
}

#[test]
fn the_version_is_public_and_what_the_app_accepts() {
    let agent = start();
    let (status, body) = query(&agent, None, "{ api { version __typename } }");
    assert_eq!(status, 200);
    assert_eq!(body["data"]["api"]["version"], "3.8.4");
    assert_eq!(body["data"]["api"]["__typename"], "Api");
    let v: Value = reqwest::blocking::get(format!("{}/api/version", agent.url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["version"], "3.8.4");
    assert!(v["clan"].is_string(), "{v}");
    let health = reqwest::blocking::get(format!("{}/health", agent.url)).unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn fields_that_need_a_token_answer_as_selfprivacy_does_without_one() {
    let agent = start();
    agent.store.create_token("phone").unwrap();
    for token in [None, Some("wrong"), Some("")] {
        let (status, body) = query(&agent, token, "{ api { version devices { name } } }");
        assert_eq!(status, 200, "{token:?}");
        assert_eq!(body["data"], Value::Null, "{token:?}: {body}");
        assert_eq!(
            body["errors"][0]["message"],
            "You must be authenticated to access this resource."
        );
        assert_eq!(body["errors"][0]["path"], json!(["api", "devices"]));
    }
}

#[test]
fn with_its_token_a_device_sees_the_devices_and_itself_as_the_caller() {
    let agent = start();
    let (phone, token) = agent.store.create_token("phone").unwrap();
    agent.store.create_token("laptop").unwrap();
    let (status, body) = query(
        &agent,
        Some(&token),
        "{ api { devices { name isCaller creationDate __typename } recoveryKey { exists valid usesLeft } } }",
    );
    assert_eq!(status, 200);
    let devices = body["data"]["api"]["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{body}");
    let me = devices
        .iter()
        .find(|d| d["name"] == phone.as_str())
        .unwrap();
    assert_eq!(me["isCaller"], true);
    assert_eq!(me["__typename"], "ApiDevice");
    assert!(
        me["creationDate"].as_str().unwrap().contains('T'),
        "ISO 8601: {me}"
    );
    let other = devices.iter().find(|d| d["name"] == "laptop").unwrap();
    assert_eq!(other["isCaller"], false);
    assert_eq!(
        body["data"]["api"]["recoveryKey"],
        json!({"exists": false, "valid": false, "usesLeft": null})
    );
    // GET with the query in the URL works too.
    let got: Value = reqwest::blocking::get(format!(
        "{}/graphql?query=%7B%20api%20%7B%20version%20%7D%20%7D",
        agent.url
    ))
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(got["data"]["api"]["version"], "3.8.4");
}
