//! `clan agent`: a token made on the command line opens the API of an agent served
//! by the same binary for a machine of the clan (real process, real HTTP on
//! loopback); without a machine to serve it says what to do.

mod common;
use common::*;

use std::process::{Command, Stdio};

use clan_lab::{Server, free_port, wait_listening};

#[test]
fn a_token_from_the_command_line_opens_the_served_api() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("clan.nix"),
        r#"{ meta.name = "t"; inventory.machines.m = { }; machines.m.clan.core.state.notes.folders = [ "/srv/notes" ]; }"#,
    )
    .unwrap();
    let data = tmp.path().join("agent");
    let data_arg = data.to_str().unwrap();
    let run = clan_in(
        tmp.path(),
        &[
            "agent",
            "token",
            "create",
            "--device",
            "admin laptop",
            "--data-dir",
            data_arg,
        ],
    )
    .ok();
    let token = run.stdout().trim().to_string();
    assert_eq!(token.len(), 43, "{}", run.stdout());
    assert!(run.stderr().contains("admin_laptop"), "{}", run.stderr());

    let port = free_port();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_clan"))
            .args(["agent", "serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", data_arg, "--machine", "m"])
            .current_dir(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut server);
    let ask = |token: Option<&str>| -> serde_json::Value {
        let mut req = reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{port}/graphql"))
            .json(&serde_json::json!({"query": "{ api { devices { name isCaller } } services { allServices { id } } }"}));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req.send().unwrap().json().unwrap()
    };
    let body = ask(Some(&token));
    assert_eq!(
        body["data"]["api"]["devices"],
        serde_json::json!([{"name": "admin_laptop", "isCaller": true}]),
        "{body}"
    );
    assert_eq!(
        body["data"]["services"]["allServices"],
        serde_json::json!([{"id": "notes"}]),
        "{body}"
    );
    let body = ask(None);
    assert_eq!(body["data"], serde_json::Value::Null, "{body}");
    // The agent keeps only the token's hash.
    let db = std::fs::read(data.join("agent.sqlite")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(&token));
}

#[test]
fn without_a_machine_to_serve_the_agent_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("agent");
    // --machine, but no clan here.
    let err = clan_in(
        tmp.path(),
        &[
            "agent",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--machine",
            "m",
        ],
    )
    .fails();
    assert!(
        err.contains("no clan found") && err.contains("clan init"),
        "{err}"
    );
}
