//! Configuration changes through the API on a machine that holds its clan: each
//! is an edit of the clan's inventory.json, validated (a refusal writes nothing),
//! committed naming the device, and served after it. Applying them (a rebuild) is
//! tested in the lab (crates/clan-cli/tests/lab.rs): here it would change this
//! machine.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

/// A test agent whose clan is a git repository with an admin whose key the agent
/// uses (in the directory returned beside).
fn held() -> (TestAgent, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.txt");
    let id = clan_vars::keys::ensure_admin_identity(&key).unwrap();
    let agent = start_held(&key);
    let dir = agent.root.join("clan");
    clan_vars::store::Store::new(&dir)
        .add_admin("tester", &id.to_public())
        .unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "the test clan"]);
    (agent, keys)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn inventory(agent: &TestAgent) -> Value {
    serde_json::from_slice(&std::fs::read(agent.root.join("clan/inventory.json")).unwrap()).unwrap()
}

fn last_commit(agent: &TestAgent) -> String {
    git(&agent.root.join("clan"), &["log", "-1", "--format=%s"])
        .trim()
        .to_string()
}

fn commits(agent: &TestAgent) -> usize {
    git(&agent.root.join("clan"), &["rev-list", "--count", "HEAD"])
        .trim()
        .parse()
        .unwrap()
}

/// A mutation's `success`, `code`, `message` (at `path` in `data`).
fn outcome(d: &Value, path: &[&str]) -> (bool, i64, String) {
    let r = path.iter().fold(d, |v, k| &v[*k]);
    (
        r["success"].as_bool().unwrap(),
        r["code"].as_i64().unwrap(),
        r["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn turning_a_service_off_and_on_edits_and_commits_the_clan() {
    let (agent, _keys) = held();
    let token = agent.token();
    let toggle = |verb: &str, id: &str| {
        agent.data(
            &token,
            &format!(
                r#"mutation {{ services {{ {verb}(serviceId: "{id}") {{ success code message service {{ id isEnabled status }} }} }} }}"#
            ),
            json!({}),
        )["services"][verb]
            .clone()
    };

    let off = toggle("disableService", "diary");
    assert_eq!(
        (off["success"].clone(), off["code"].clone()),
        (json!(true), json!(200)),
        "{off}"
    );
    assert_eq!(
        off["service"],
        json!({"id": "diary", "isEnabled": false, "status": "OFF"})
    );
    assert_eq!(
        inventory(&agent)["instances"]["diary"]["roles"]["default"]["machines"]["m"]["enabled"],
        false
    );
    assert_eq!(
        last_commit(&agent),
        "services: disable diary (agent, device 'test_device')"
    );
    // Off, its state is no service's: the journal is not backed up with it.
    let listed = agent.data(
        &token,
        "{ services { allServices { id isEnabled canBeBackedUp } } }",
        json!({}),
    );
    let diary = listed["services"]["allServices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "diary")
        .unwrap()
        .clone();
    assert_eq!(
        diary,
        json!({"id": "diary", "isEnabled": false, "canBeBackedUp": false})
    );

    let on = toggle("enableService", "diary");
    assert_eq!(on["service"]["isEnabled"], true, "{on}");
    let entry = &inventory(&agent)["instances"]["diary"]["roles"]["default"]["machines"]["m"];
    assert!(entry.get("enabled").is_none(), "{entry}");
    assert_eq!(
        last_commit(&agent),
        "services: enable diary (agent, device 'test_device')"
    );

    // A state of the machine is not a service that turns off; the agent itself
    // cannot be turned off through itself; unknown services are 404.
    let before = (inventory(&agent), commits(&agent));
    assert_eq!(toggle("disableService", "docs")["code"], 400);
    assert_eq!(toggle("disableService", "nope")["code"], 404);
    assert_eq!((inventory(&agent), commits(&agent)), before);
}

#[test]
fn settings_are_checked_against_the_modules_schema_and_nothing_is_written_when_wrong() {
    let (agent, _keys) = held();
    let token = agent.token();
    let set = |config: Value| {
        agent.data(
            &token,
            r#"mutation($c: JSON!) { services { setServiceConfiguration(input: { serviceId: "diary", configuration: $c }) {
                success code message service { configuration { fieldId ... on StringConfigItem { value } ... on BoolConfigItem { boolValue: value } } } } } }"#,
            json!({ "c": config }),
        )["services"]["setServiceConfiguration"]
            .clone()
    };
    let done = set(json!({"title": "Our journal", "theme": "dark"}));
    assert_eq!(done["code"], 200, "{done}");
    let items = done["service"]["configuration"].as_array().unwrap();
    let item = |id: &str| items.iter().find(|i| i["fieldId"] == id).unwrap().clone();
    assert_eq!(item("title")["value"], "Our journal");
    let settings =
        &inventory(&agent)["instances"]["diary"]["roles"]["default"]["machines"]["m"]["settings"];
    assert_eq!(settings, &json!({"title": "Our journal", "theme": "dark"}));
    assert_eq!(
        last_commit(&agent),
        "services: configure diary (agent, device 'test_device')"
    );

    let before = (inventory(&agent), commits(&agent));
    // The wrong type, an unknown field: 400 with the reason, nothing written.
    let wrong = set(json!({"public": "yes"}));
    assert_eq!(
        (wrong["success"].clone(), wrong["code"].clone()),
        (json!(false), json!(400)),
        "{wrong}"
    );
    assert!(
        wrong["message"].as_str().unwrap().contains("public"),
        "{wrong}"
    );
    let unknown = set(json!({"colour": "red"}));
    assert_eq!(unknown["code"], 400);
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("has no setting 'colour'"),
        "{unknown}"
    );
    let not_an_option = set(json!({"theme": "purple"}));
    assert_eq!(not_an_option["code"], 400, "{not_an_option}");
    // clan.nix sets `public` for this machine: the conflict is named, not resolved.
    let conflict = set(json!({"public": false}));
    assert_eq!(conflict["code"], 400, "{conflict}");
    assert!(
        conflict["message"]
            .as_str()
            .unwrap()
            .contains("defined twice"),
        "{conflict}"
    );
    assert_eq!((inventory(&agent), commits(&agent)), before);
}

#[test]
fn users_and_their_keys_are_instances_of_the_users_module() {
    let (agent, keys) = held();
    let token = agent.token();
    let d = agent.data(
        &token,
        r#"mutation { users { createUser(user: { username: "alice", password: "correct horse", directmemberof: ["audio"] }) {
            success code message user { username directmemberof } } } }"#,
        json!({}),
    );
    let (ok, code, message) = outcome(&d, &["users", "createUser"]);
    assert!(ok && code == 200, "{code} {message}");
    assert_eq!(d["users"]["createUser"]["user"]["username"], "alice");
    let instance = &inventory(&agent)["instances"]["user-alice"];
    assert_eq!(instance["module"]["name"], "users");
    assert_eq!(
        instance["roles"]["default"]["settings"],
        json!({"user": "alice"})
    );
    assert_eq!(
        instance["roles"]["default"]["machines"]["m"]["settings"],
        json!({"groups": ["audio"]})
    );
    // The password given is the user's var, encrypted for the admins.
    let fleet = clan_ops::Fleet::load(
        clan_core::ClanDir::open(&agent.root.join("clan"), "test").unwrap(),
        &[],
        &clan_core::event::Silent,
    )
    .unwrap();
    let admin = clan_vars::keys::read_identity(&keys.path().join("key.txt")).unwrap();
    let decl = &fleet.machine("m").unwrap().clan_core.vars.generators["user-password-alice"];
    let password = fleet
        .store()
        .read_secret(
            &clan_vars::generate::scope("m", decl),
            "user-password-alice",
            "user-password",
            &admin,
        )
        .unwrap();
    assert_eq!(password, b"correct horse");

    // Keys: added, refused when malformed or twice, removed.
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm4Vh9pTQ0n7F1pUK0s0m5mO2yPoCqXk2bQ8mC0oAbC alice@phone";
    let ssh = |verb: &str, user: &str, k: &str| {
        agent.data(
            &token,
            &format!(r#"mutation($k: String!) {{ users {{ {verb}(sshInput: {{ username: "{user}", sshKey: $k }}) {{ success code message user {{ sshKeys }} }} }} }}"#),
            json!({ "k": k }),
        )["users"][verb]
            .clone()
    };
    let added = ssh("addSshKey", "alice", key);
    assert_eq!(added["code"], 200, "{added}");
    assert_eq!(added["user"]["sshKeys"], json!([key]));
    assert_eq!(ssh("addSshKey", "alice", key)["code"], 409);
    assert_eq!(ssh("addSshKey", "alice", "hello")["code"], 400);
    assert_eq!(ssh("addSshKey", "bob", key)["code"], 404);
    let removed = ssh("removeSshKey", "alice", key);
    assert_eq!(removed["user"]["sshKeys"], json!([]), "{removed}");

    // Groups change; a second user of that name is refused; deleting removes
    // the instance (the machine was its only member).
    let d = agent.data(
        &token,
        r#"mutation { users {
            updateUser(user: { username: "alice", directmemberof: ["audio", "video"] }) { code user { directmemberof } }
            again: createUser(user: { username: "alice", password: "x" }) { code } } }"#,
        json!({}),
    );
    assert_eq!(
        d["users"]["updateUser"]["user"]["directmemberof"],
        json!(["audio", "video"]),
        "{d}"
    );
    assert_eq!(d["users"]["again"]["code"], 409);
    let d = agent.data(
        &token,
        r#"mutation { users { deleteUser(username: "alice") { code } } }"#,
        json!({}),
    );
    assert_eq!(d["users"]["deleteUser"]["code"], 200);
    assert!(inventory(&agent)["instances"].get("user-alice").is_none());
    assert_eq!(
        last_commit(&agent),
        "users: delete alice (agent, device 'test_device')"
    );
    let d = agent.data(
        &token,
        r#"mutation { users { deleteUser(username: "alice") { code } } }"#,
        json!({}),
    );
    assert_eq!(d["users"]["deleteUser"]["code"], 404);
}

#[test]
fn backup_period_and_quotas_set_the_providers_schedule_and_retention() {
    let (agent, _keys) = held();
    let token = agent.token();
    let d = agent.data(
        &token,
        r#"mutation { backup {
            setAutobackupPeriod(period: 360) { success code message }
            setAutobackupQuotas(quotas: { last: 3, daily: 7, weekly: 4, monthly: 12, yearly: 2 }) { success code message } } }"#,
        json!({}),
    );
    assert_eq!(
        outcome(&d, &["backup", "setAutobackupPeriod"]).1,
        200,
        "{d}"
    );
    assert_eq!(
        outcome(&d, &["backup", "setAutobackupQuotas"]).1,
        200,
        "{d}"
    );
    let settings =
        &inventory(&agent)["instances"]["restic"]["roles"]["client"]["machines"]["m"]["settings"];
    assert_eq!(settings["startAt"], "*-*-* 00/6:00:00");
    assert_eq!(
        settings["keep"],
        json!({"last": 3, "daily": 7, "weekly": 4, "monthly": 12, "yearly": 2})
    );
    let d = agent.data(
        &token,
        "{ backup { configuration { autobackupQuotas { daily monthly } } } }",
        json!({}),
    );
    assert_eq!(
        d["backup"]["configuration"]["autobackupQuotas"],
        json!({"daily": 7, "monthly": 12})
    );

    let before = (inventory(&agent), commits(&agent));
    let d = agent.data(
        &token,
        r#"mutation { backup {
            setAutobackupPeriod(period: 7) { code message }
            setAutobackupQuotas(quotas: { last: -1, daily: 7, weekly: 4, monthly: 12, yearly: 2 }) { code message } } }"#,
        json!({}),
    );
    assert_eq!(d["backup"]["setAutobackupPeriod"]["code"], 400);
    assert_eq!(d["backup"]["setAutobackupQuotas"]["code"], 400);
    assert_eq!((inventory(&agent), commits(&agent)), before);
}

#[test]
fn the_time_zone_is_an_option_of_the_machines_configuration() {
    let (agent, _keys) = held();
    let token = agent.token();
    let change = |tz: &str| {
        agent.data(
            &token,
            "mutation($tz: String!) { system { changeTimezone(timezone: $tz) { success code message timezone } } }",
            json!({ "tz": tz }),
        )["system"]["changeTimezone"]
            .clone()
    };
    let done = change("Europe/Berlin");
    assert_eq!(
        (done["code"].clone(), done["timezone"].clone()),
        (json!(200), json!("Europe/Berlin")),
        "{done}"
    );
    let layer: Value = serde_json::from_slice(
        &std::fs::read(agent.root.join("clan/machines/m/configuration.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(layer["clan"]["core"]["timezone"], "Europe/Berlin");
    assert_eq!(
        last_commit(&agent),
        "machines: set m clan.core.timezone (agent, device 'test_device')"
    );
    let before = commits(&agent);
    for bad in ["Mars/Olympus_Mons", "../../etc/passwd", ""] {
        let refused = change(bad);
        assert_eq!(
            (refused["code"].clone(), refused["timezone"].clone()),
            (json!(400), Value::Null),
            "{bad}: {refused}"
        );
    }
    assert_eq!(commits(&agent), before);
}
