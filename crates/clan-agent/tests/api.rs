//! The agent's API over real HTTP and WebSocket on loopback, serving a machine of a
//! real clan: what the SelfPrivacy app sees and does.

mod common;
use common::*;

use serde_json::{Value, json};

const NOT_AUTHENTICATED: &str = "You must be authenticated to access this resource.";

#[test]
fn the_version_is_public_and_everything_else_needs_a_token() {
    let agent = start("");
    let (status, body) = agent.post(None, "{ api { version __typename } }", json!({}));
    assert_eq!(status, 200);
    assert_eq!(body["data"]["api"]["version"], "3.8.4");
    assert_eq!(body["data"]["api"]["__typename"], "Api");
    let v: Value = reqwest::blocking::get(format!("{}/api/version", agent.url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(v["version"], "3.8.4");
    assert!(v["clan"].is_string(), "{v}");
    // Another language asked for: the answer is English, and says so.
    let german = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", agent.url))
        .header("Accept-Language", "de-DE,de;q=0.9")
        .json(&json!({ "query": "{ system { busy } }" }))
        .send()
        .unwrap();
    assert_eq!(german.status().as_u16(), 200);
    assert_eq!(german.headers()["content-language"], "en");
    let body: Value = german.json().unwrap();
    assert_eq!(body["errors"][0]["message"], NOT_AUTHENTICATED);
    assert_eq!(
        reqwest::blocking::get(format!("{}/health", agent.url))
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    agent.token();
    for token in [None, Some("wrong"), Some("")] {
        for (query, path) in [
            (
                "{ api { version devices { name } } }",
                json!(["api", "devices"]),
            ),
            ("{ system { busy } }", json!(["system"])),
            ("{ services { allServices { id } } }", json!(["services"])),
            (
                "mutation { backup { forceSnapshotsReload { code } } }",
                json!(["backup"]),
            ),
            (
                "mutation { refreshDeviceApiToken { token } }",
                json!(["refreshDeviceApiToken"]),
            ),
        ] {
            let (status, body) = agent.post(token, query, json!({}));
            assert_eq!(status, 200, "{token:?} {query}");
            assert_eq!(body["data"], Value::Null, "{token:?} {query}: {body}");
            assert_eq!(body["errors"][0]["message"], NOT_AUTHENTICATED);
            assert_eq!(body["errors"][0]["path"], path, "{query}");
        }
    }
}

#[test]
fn services_come_from_the_machines_instances_and_states() {
    let agent = start("");
    let token = agent.token();
    let d = agent.data(
        &token,
        "{ services { allServices { __typename id displayName description svgIcon isEnabled isSystemService
             canBeBackedUp backupDescription status supportLevel homepage url
             license { shortName fullName spdxId free }
             storageUsage { __typename title usedSpace volume { name } service { id } }
             configuration { __typename fieldId description type widget
               ... on StringConfigItem { stringValue: value stringDefault: defaultValue regex }
               ... on BoolConfigItem { boolValue: value boolDefault: defaultValue }
               ... on EnumConfigItem { enumValue: value options } } } } }",
        json!({}),
    );
    let all = d["services"]["allServices"].as_array().unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
    // By display name (as SelfPrivacy sorts: capitals first); the restic instance
    // contributes no state but is a service of the machine too.
    assert_eq!(ids, ["diary", "restic", "docs", "web"], "{d}");
    let diary = &all[0];
    assert_eq!(diary["__typename"], "Service");
    assert_eq!(diary["displayName"], "Journal");
    assert_eq!(diary["description"], "A journal to write in");
    assert_eq!(diary["supportLevel"], "COMMUNITY");
    assert_eq!(diary["homepage"], "https://journal.example.org");
    assert_eq!(diary["url"], Value::Null);
    assert_eq!(diary["backupDescription"], "Every entry.");
    assert_eq!(diary["canBeBackedUp"], true);
    assert_eq!(
        diary["license"],
        json!([{"shortName": "mit", "fullName": "MIT License", "spdxId": "MIT", "free": true}])
    );
    use base64::Engine;
    let icon = base64::engine::general_purpose::STANDARD
        .decode(diary["svgIcon"].as_str().unwrap())
        .unwrap();
    assert_eq!(icon, b"<svg xmlns='http://www.w3.org/2000/svg'/>");
    // No unit: inactive, as SelfPrivacy shows a service without units.
    assert_eq!(diary["status"], "INACTIVE");
    // Its size is its folder's: two files.
    let bytes = "Dear diary, today I wrote an agent.\n".len() + "An idea.\n".len();
    assert_eq!(diary["storageUsage"]["usedSpace"], bytes.to_string());
    assert_eq!(diary["storageUsage"]["title"], "Journal");
    assert_eq!(diary["storageUsage"]["service"]["id"], "diary");
    assert!(
        diary["storageUsage"]["volume"]["name"].is_string(),
        "{diary}"
    );
    // Settings as config items: title first (weight 1), then by name; the machine's
    // values, the option's defaults; `dir` is a string too.
    let config = diary["configuration"].as_array().unwrap();
    let fields: Vec<&str> = config
        .iter()
        .map(|c| c["fieldId"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "dir", "public", "theme"], "{diary}");
    assert_eq!(config[0]["__typename"], "StringConfigItem");
    assert_eq!(config[0]["stringValue"], "My journal");
    assert_eq!(config[0]["regex"], "^[A-Za-z ]+$");
    assert_eq!(config[2]["__typename"], "BoolConfigItem");
    assert_eq!(
        (
            config[2]["boolValue"].clone(),
            config[2]["boolDefault"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(config[2]["widget"], "switch");
    assert_eq!(config[3]["__typename"], "EnumConfigItem");
    assert_eq!(config[3]["options"], json!(["light", "dark"]));
    // A state of its own is a service named after it; a unit that does not exist is OFF.
    let docs = &all[2];
    assert_eq!(docs["displayName"], "docs");
    assert_eq!(docs["configuration"], Value::Null);
    assert_eq!(
        docs["storageUsage"]["usedSpace"],
        "Hello World!\n".len().to_string()
    );
    assert_eq!(all[3]["status"], "OFF");
    assert_eq!(all[1]["canBeBackedUp"], false, "restic holds no state");
    assert_eq!(all[1]["isSystemService"], true);
}

#[test]
fn a_service_is_backed_up_and_restored_exactly_through_jobs() {
    let agent = start("");
    let token = agent.token();
    let start_backup = "mutation($id: String!) { backup { startBackup(serviceId: $id) {
        __typename success code message job { uid typeId name status } } } }";
    let r =
        agent.data(&token, start_backup, json!({"id": "diary"}))["backup"]["startBackup"].clone();
    assert_eq!(
        (r["success"].clone(), r["code"].clone()),
        (json!(true), json!(200)),
        "{r}"
    );
    assert_eq!(r["__typename"], "GenericJobMutationReturn");
    assert_eq!(r["job"]["typeId"], "services.diary.backup");
    assert_eq!(r["job"]["name"], "Backup Journal");
    let job = wait_job(&agent, &token, r["job"]["uid"].as_str().unwrap());
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert_eq!(job["progress"], 100);
    assert!(
        job["result"]
            .as_str()
            .unwrap()
            .starts_with("Backup finished (restic: m-restic-"),
        "{job}"
    );

    let snaps = agent.data(
        &token,
        "{ backup { allSnapshots { id createdAt reason service { id displayName } } } }",
        json!({}),
    );
    let snaps = snaps["backup"]["allSnapshots"].as_array().unwrap().clone();
    // The backup holds the journal's state only.
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(
        snaps[0]["service"],
        json!({"id": "diary", "displayName": "Journal"})
    );
    assert_eq!(snaps[0]["reason"], "EXPLICIT");
    let id = snaps[0]["id"].as_str().unwrap().to_string();
    assert!(
        id.starts_with("restic/m-restic-") && id.ends_with("/diary"),
        "{id}"
    );

    // Damage the journal: change, delete, add.
    let journal = agent.root.join("journal");
    let before = tree(&journal);
    std::fs::write(journal.join("2026-11-30.md"), "overwritten\n").unwrap();
    std::fs::remove_file(journal.join("drafts/idea.md")).unwrap();
    std::fs::write(journal.join("stray.md"), "not in the backup\n").unwrap();

    let restore = "mutation($id: String!) { backup { restoreBackup(snapshotId: $id) { success code message job { uid typeId } } } }";
    let r = agent.data(&token, restore, json!({"id": id}))["backup"]["restoreBackup"].clone();
    assert_eq!(r["code"], 200, "{r}");
    assert_eq!(r["job"]["typeId"], "services.diary.restore");
    let job = wait_job(&agent, &token, r["job"]["uid"].as_str().unwrap());
    assert_eq!(job["status"], "FINISHED", "{job}");
    assert_eq!(
        tree(&journal),
        before,
        "the journal is exactly as backed up"
    );
    // The data before the restore is kept: a pre-restore backup, shown as such.
    assert!(
        job["result"]
            .as_str()
            .unwrap()
            .contains("the data before is in backup m-restic-"),
        "{job}"
    );
    let snaps = agent.data(
        &token,
        "{ backup { allSnapshots { reason service { id } } } }",
        json!({}),
    );
    let reasons: Vec<&str> = snaps["backup"]["allSnapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["EXPLICIT", "PRE_RESTORE"]);
    // The docs were not touched: not part of the service.
    assert_eq!(
        std::fs::read_to_string(agent.root.join("docs/welcome.md")).unwrap(),
        "Hello World!\n"
    );
    // The safety backup holds the journal only: it can be forgotten.
    let snaps = agent.data(
        &token,
        "{ backup { allSnapshots { id reason } } }",
        json!({}),
    );
    let safety = snaps["backup"]["allSnapshots"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let forget =
        "mutation($id: String!) { backup { forgetSnapshot(snapshotId: $id) { code message } } }";
    let d = agent.data(&token, forget, json!({"id": safety}));
    assert_eq!(d["backup"]["forgetSnapshot"]["code"], 200, "{d}");
    let snaps = agent.data(&token, "{ backup { allSnapshots { reason } } }", json!({}));
    assert_eq!(
        snaps["backup"]["allSnapshots"],
        json!([{"reason": "EXPLICIT"}])
    );
}

#[test]
fn a_backup_that_holds_other_services_too_is_not_forgotten_for_one() {
    let agent = start("");
    let token = agent.token();
    let r = agent.data(
        &token,
        "mutation { backup { totalBackup { code job { uid typeId } } } }",
        json!({}),
    );
    assert_eq!(
        r["backup"]["totalBackup"]["job"]["typeId"],
        "backups.total_backup"
    );
    let job = wait_job(
        &agent,
        &token,
        r["backup"]["totalBackup"]["job"]["uid"].as_str().unwrap(),
    );
    assert_eq!(job["status"], "FINISHED", "{job}");
    let snaps = agent.data(
        &token,
        "{ backup { allSnapshots { id service { id } } } }",
        json!({}),
    );
    let snaps = snaps["backup"]["allSnapshots"].as_array().unwrap().clone();
    let services: Vec<&str> = snaps
        .iter()
        .map(|s| s["service"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        ["docs", "diary", "web"],
        "one backup, a snapshot per service"
    );
    let forget =
        "mutation($id: String!) { backup { forgetSnapshot(snapshotId: $id) { code message } } }";
    let d = agent.data(&token, forget, json!({"id": snaps[1]["id"]}));
    assert_eq!(d["backup"]["forgetSnapshot"]["code"], 409, "{d}");
    assert!(
        d["backup"]["forgetSnapshot"]["message"]
            .as_str()
            .unwrap()
            .contains("docs, web"),
        "{d}"
    );
    let after = agent.data(&token, "{ backup { allSnapshots { id } } }", json!({}));
    assert_eq!(after["backup"]["allSnapshots"].as_array().unwrap().len(), 3);
}

#[test]
fn unknown_services_and_snapshots_get_selfprivacys_codes() {
    let agent = start("");
    let token = agent.token();
    let d = agent.data(
        &token,
        r#"mutation { backup {
        startBackup(serviceId: "nope") { success code job { uid } }
        restoreBackup(snapshotId: "restic/nope/diary") { success code }
        forgetSnapshot(snapshotId: "nope") { success code } } }"#,
        json!({}),
    );
    assert_eq!(
        d["backup"]["startBackup"],
        json!({"success": false, "code": 300, "job": null})
    );
    assert_eq!(
        d["backup"]["restoreBackup"],
        json!({"success": false, "code": 404})
    );
    assert_eq!(
        d["backup"]["forgetSnapshot"],
        json!({"success": false, "code": 404})
    );
    let d = agent.data(
        &token,
        r#"mutation { services { stopService(serviceId: "nope") { code service { id } } } }"#,
        json!({}),
    );
    assert_eq!(
        d["services"]["stopService"],
        json!({"code": 404, "service": null})
    );
    let d = agent.data(
        &token,
        r#"mutation { backup { startBackup(serviceId: "restic") { code message } } }"#,
        json!({}),
    );
    assert_eq!(d["backup"]["startBackup"]["code"], 400, "{d}");
}

#[test]
fn configuration_changes_point_to_the_clan_repository() {
    let agent = start_installed("");
    let token = agent.token();
    let d = agent.data(
        &token,
        r#"mutation {
        services { enableService(serviceId: "diary") { success code message service { id } } }
        system { changeTimezone(timezone: "Europe/Berlin") { success code message timezone } }
        users { createUser(user: { username: "alice" }) { success code user { username } } }
        backup { setAutobackupPeriod(period: 60) { code configuration { provider } } } }"#,
        json!({}),
    );
    let enable = &d["services"]["enableService"];
    assert_eq!(
        (enable["success"].clone(), enable["code"].clone()),
        (json!(false), json!(409))
    );
    assert!(
        enable["message"]
            .as_str()
            .unwrap()
            .contains("clan machines update m"),
        "{enable}"
    );
    assert_eq!(enable["service"]["id"], "diary");
    assert_eq!(d["system"]["changeTimezone"]["code"], 409);
    assert_eq!(d["users"]["createUser"]["code"], 409);
    assert_eq!(d["backup"]["setAutobackupPeriod"]["code"], 409);
    assert_eq!(
        d["backup"]["setAutobackupPeriod"]["configuration"]["provider"],
        "FILE"
    );
}

#[test]
fn the_backup_configuration_is_the_machines() {
    let agent = start("");
    let token = agent.token();
    let d = agent.data(
        &token,
        "{ backup { configuration { provider encryptionKey isInitialized autobackupPeriod
        autobackupQuotas { last daily weekly monthly yearly } locationName locationId } } }",
        json!({}),
    );
    let c = &d["backup"]["configuration"];
    assert_eq!(c["provider"], "FILE");
    assert_eq!(c["encryptionKey"], "agent test password");
    assert_eq!(c["isInitialized"], true);
    assert_eq!(c["locationId"], "restic");
    // The restic module's defaults: daily at 01:00; 7 daily, 4 weekly, 6 monthly.
    assert_eq!(c["autobackupPeriod"], 1440, "{c}");
    assert_eq!(
        c["autobackupQuotas"],
        json!({"last": 0, "daily": 7, "weekly": 4, "monthly": 6, "yearly": 0})
    );
}

#[test]
fn device_keys_recovery_keys_refresh_and_delete() {
    let agent = start("");
    let token = agent.token();
    // A new-device key: 12 words, once.
    let d = agent.data(
        &token,
        "mutation { api { getNewDeviceApiKey { success code key } } }",
        json!({}),
    );
    let key = d["api"]["getNewDeviceApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key.split(' ').count(), 12);
    let authorize = "mutation($key: String!, $name: String!) { api { authorizeWithNewDeviceApiKey(input: {key: $key, deviceName: $name}) { success code token } } }";
    let (_, body) = agent.post(None, authorize, json!({"key": key, "name": "new phone"}));
    let new_token = body["data"]["api"]["authorizeWithNewDeviceApiKey"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, again) = agent.post(None, authorize, json!({"key": key, "name": "thief"}));
    assert_eq!(
        again["data"]["api"]["authorizeWithNewDeviceApiKey"]["code"],
        404
    );
    let devices = agent.data(
        &new_token,
        "{ api { devices { name isCaller } } }",
        json!({}),
    );
    assert!(
        devices["api"]["devices"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "new_phone", "isCaller": true})),
        "{devices}"
    );

    // A recovery key: 18 words, limited uses, then invalid.
    let d = agent.data(
        &token,
        "mutation { api { getNewRecoveryApiKey(limits: {uses: 1}) { code key } } }",
        json!({}),
    );
    let recovery = d["api"]["getNewRecoveryApiKey"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(recovery.split(' ').count(), 18);
    let use_key = "mutation($key: String!) { api { useRecoveryApiKey(input: {key: $key, deviceName: \"lost\"}) { code token } } }";
    let (_, used) = agent.post(None, use_key, json!({"key": recovery}));
    assert_eq!(
        used["data"]["api"]["useRecoveryApiKey"]["code"], 200,
        "{used}"
    );
    let (_, twice) = agent.post(None, use_key, json!({"key": recovery}));
    assert_eq!(
        twice["data"]["api"]["useRecoveryApiKey"],
        json!({"code": 404, "token": null})
    );
    let status = agent.data(
        &token,
        "{ api { recoveryKey { exists valid usesLeft } } }",
        json!({}),
    );
    assert_eq!(
        status["api"]["recoveryKey"],
        json!({"exists": true, "valid": false, "usesLeft": 0})
    );
    // Limits in the past or without uses are refused.
    let d = agent.data(
        &token,
        r#"mutation { api {
        past: getNewRecoveryApiKey(limits: {expirationDate: "2020-01-01T00:00:00"}) { code key }
        none: getNewRecoveryApiKey(limits: {uses: 0}) { code key } } }"#,
        json!({}),
    );
    assert_eq!(d["api"]["past"], json!({"code": 400, "key": null}));
    assert_eq!(d["api"]["none"], json!({"code": 400, "key": null}));

    // Refreshing: the old token stops working, the new one works, the device stays.
    let d = agent.data(
        &new_token,
        "mutation { api { refreshDeviceApiToken { code token } } }",
        json!({}),
    );
    let refreshed = d["api"]["refreshDeviceApiToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, old) = agent.post(Some(&new_token), "{ api { devices { name } } }", json!({}));
    assert_eq!(old["data"], Value::Null);
    agent.data(&refreshed, "{ api { devices { name } } }", json!({}));
    // Deleting: not oneself; an unknown device is 404; another device is gone.
    let d = agent.data(
        &refreshed,
        r#"mutation { api {
        me: deleteDeviceApiToken(device: "new_phone") { code }
        unknown: deleteDeviceApiToken(device: "nobody") { code }
        other: deleteDeviceApiToken(device: "lost") { code } } }"#,
        json!({}),
    );
    assert_eq!(
        d["api"],
        json!({"me": {"code": 400}, "unknown": {"code": 404}, "other": {"code": 200}})
    );
}

#[test]
fn subscriptions_speak_both_websocket_protocols_and_need_a_token() {
    let agent = start("");
    let token = agent.token();
    // graphql-ws (the older protocol): `start` and `data`.
    let mut ws = agent.ws("graphql-ws", Some(&token));
    ws.send(json!({"id": "1", "type": "start", "payload": {"query": "subscription { count }"}}));
    let first = ws.next();
    assert_eq!(first["type"], "data", "{first}");
    assert_eq!(first["payload"]["data"]["count"], 0);
    // Without a token: SelfPrivacy's message, no data.
    let mut ws = agent.ws("graphql-transport-ws", None);
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { jobUpdates { uid } }"}}));
    let refused = ws.next();
    let text = refused.to_string();
    assert!(text.contains(NOT_AUTHENTICATED), "{refused}");
    assert!(
        refused["payload"]["data"]["jobUpdates"].is_null(),
        "{refused}"
    );
}

#[test]
fn a_second_backup_of_a_running_service_is_refused_and_a_job_outlives_its_client() {
    // The docs' pre-backup script waits until the test opens the gate (a FIFO).
    let gate_dir = tempfile::tempdir().unwrap();
    let gate = gate_dir.path().join("gate");
    let made = std::process::Command::new("mkfifo")
        .arg(&gate)
        .status()
        .unwrap();
    assert!(made.success());
    let agent = start(&format!(
        r#"clan.core.state.docs.preBackupScript = "cat {} > /dev/null";"#,
        gate.display()
    ));
    let token = agent.token();
    let mut ws = agent.ws("graphql-transport-ws", Some(&token));
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { jobUpdates { uid status } }"}}));
    let start_backup = "mutation($id: String!) { backup { startBackup(serviceId: $id) { code message job { uid } } } }";
    let first =
        agent.data(&token, start_backup, json!({"id": "docs"}))["backup"]["startBackup"].clone();
    assert_eq!(first["code"], 200, "{first}");
    let uid = first["job"]["uid"].as_str().unwrap().to_string();
    // The subscription sees it run.
    loop {
        let m = ws.next();
        let jobs = m["payload"]["data"]["jobUpdates"]
            .as_array()
            .unwrap()
            .clone();
        if jobs
            .iter()
            .any(|j| j["uid"] == uid.as_str() && j["status"] == "RUNNING")
        {
            break;
        }
    }
    let second =
        agent.data(&token, start_backup, json!({"id": "docs"}))["backup"]["startBackup"].clone();
    assert_eq!(second["code"], 409, "{second}");
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .contains("services.docs.backup"),
        "{second}"
    );
    assert_eq!(second["job"], Value::Null);
    let total = agent.data(
        &token,
        "mutation { backup { totalBackup { code } } }",
        json!({}),
    );
    assert_eq!(total["backup"]["totalBackup"]["code"], 409);
    let busy = agent.data(&token, "{ system { busy } }", json!({}));
    assert_eq!(busy["system"]["busy"], true);
    // The subscriber goes away mid-job; the job goes on and is recorded.
    drop(ws);
    std::fs::write(&gate, b"open\n").unwrap();
    let job = wait_job(&agent, &token, &uid);
    assert_eq!(job["status"], "FINISHED", "{job}");
    let snaps = agent.data(
        &token,
        "{ backup { allSnapshots { service { id } } } }",
        json!({}),
    );
    assert_eq!(
        snaps["backup"]["allSnapshots"],
        json!([{"service": {"id": "docs"}}])
    );
    let busy = agent.data(&token, "{ system { busy } }", json!({}));
    assert_eq!(busy["system"]["busy"], false);
}

#[test]
fn an_installed_configuration_is_read_again_when_an_update_changes_it() {
    let dir = tempfile::tempdir().unwrap();
    let clan_dir = clan(dir.path(), "");
    let resolved = clan_agent::agent::Source::Clan {
        dir: clan_core::ClanDir::open(&clan_dir, "test").unwrap(),
        machine: "m".into(),
    }
    .load()
    .unwrap();
    let installed = dir.path().join("machine.json");
    std::fs::write(&installed, serde_json::to_vec(&resolved).unwrap()).unwrap();
    let store =
        std::sync::Arc::new(clan_agent::store::Store::open(&dir.path().join("agent")).unwrap());
    let agent = clan_agent::agent::Agent::new(
        store,
        clan_agent::agent::Source::Installed(installed.clone()),
    )
    .unwrap();
    let ids = |a: &clan_agent::agent::Agent| -> Vec<String> {
        a.machine().services.iter().map(|s| s.id.clone()).collect()
    };
    assert_eq!(ids(&agent), ["diary", "restic", "docs", "web"]);
    // An update drops the web state.
    let mut changed = resolved.clone();
    changed.services.retain(|s| s.id != "web");
    std::fs::write(&installed, serde_json::to_vec(&changed).unwrap()).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&installed)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(ids(&agent), ["diary", "restic", "docs"]);
    // A broken file leaves the last good configuration in use.
    std::fs::write(&installed, b"{ not json").unwrap();
    let later = later + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&installed)
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(ids(&agent), ["diary", "restic", "docs"]);
}
