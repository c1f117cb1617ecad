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

#[test]
fn with_a_certificate_the_agent_serves_https_only() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("clan.nix"),
        r#"{ meta.name = "t"; inventory.machines.m = { }; }"#,
    )
    .unwrap();
    let (ca, cert, key) = certificates(tmp.path());
    let port = free_port();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_clan"))
            .args([
                "agent",
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--machine",
                "m",
            ])
            .arg("--data-dir")
            .arg(tmp.path().join("agent"))
            .arg("--tls-certificate")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .current_dir(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut server);
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let body: serde_json::Value = client
        .post(format!("https://127.0.0.1:{port}/graphql"))
        .json(&serde_json::json!({"query": "{ api { version } }"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["data"]["api"]["version"], "3.8.4");
    // Plain HTTP gets no answer from a TLS server.
    let plain = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/health"))
        .timeout(std::time::Duration::from_secs(15))
        .send();
    assert!(plain.is_err(), "{plain:?}");
}

#[test]
fn a_key_that_is_not_one_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("clan.nix"),
        r#"{ meta.name = "t"; inventory.machines.m = { }; }"#,
    )
    .unwrap();
    std::fs::write(tmp.path().join("cert.pem"), "not a certificate\n").unwrap();
    std::fs::write(tmp.path().join("key.pem"), "not a key\n").unwrap();
    let err = clan_in(
        tmp.path(),
        &[
            "agent",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--machine",
            "m",
            "--data-dir",
            "agent",
            "--tls-certificate",
            "cert.pem",
            "--tls-key",
            "key.pem",
        ],
    )
    .fails();
    assert!(
        err.contains("TLS with cert.pem") && err.contains("no certificate"),
        "{err}"
    );
}

/// A test CA and a certificate for 127.0.0.1 it signed (with its key): the CA's
/// certificate, the certificate, the key.
fn certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-subj",
                "/CN=test CA",
                "-days",
                "1",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=agent",
                "-keyout",
                "key.pem",
                "-out",
                "agent.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "agent.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext",
        "-out",
        "cert.pem",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}
