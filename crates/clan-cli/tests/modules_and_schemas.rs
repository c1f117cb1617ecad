//! Points 5–7: service modules (built-in and the clan's own), option schemas, and
//! settings validation.

mod common;
use common::*;
use serde_json::json;

const USER_MODULE: &str = r#"{ lib, ... }: {
  _class = "clan.service";
  manifest.name = "app";
  manifest.description = "A demo app";
  roles.default = {
    description = "Runs the app";
    interface = { lib, ... }: {
      options.dataDir = lib.mkOption { type = lib.types.str; default = "/var/lib/app"; description = "Data"; };
      options.port = lib.mkOption { type = lib.types.port; };
      options.name = lib.mkOption { type = lib.types.strMatching "[a-z0-9]+"; default = "app"; };
    };
    perInstance = { instanceName, settings, machine, roles, ... }: {
      nixosModule = { config, ... }: {
        clan.core.state.${instanceName} = {
          folders = [ settings.dataDir ];
          services = [ "app.service" ];
          postgresDatabases = [ "app" ];
        };
        app.port = settings.port;
        app.peers = builtins.attrNames roles.default.machines;
      };
    };
  };
}"#;

#[test]
fn a_user_module_contributes_through_per_instance() {
    let clan = clan_with(&[
        ("modules/app/default.nix", USER_MODULE),
        (
            "inventory.json",
            r#"{"meta": {"name": "t"}, "machines": {"a": {}, "b": {}},
                "instances": {"web": {"module": {"name": "app", "input": "self"}, "roles": {"default": {
                  "machines": {"a": {}, "b": {"settings": {"dataDir": "/srv/app"}}}, "settings": {"port": 8080}}}}}}"#,
        ),
    ]);
    let b = clan_in(clan.path(), &["inventory", "show", "b", "--json"])
        .ok()
        .json();
    assert_eq!(
        b["clanCore"]["state"]["web"]["folders"],
        json!(["/srv/app"])
    );
    assert_eq!(
        b["clanCore"]["state"]["web"]["services"],
        json!(["app.service"])
    );
    assert_eq!(
        b["other"]["app"],
        json!({"port": 8080, "peers": ["a", "b"]})
    );

    let list = clan_in(clan.path(), &["modules", "list", "--json"])
        .ok()
        .json();
    let app = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "app")
        .unwrap();
    assert_eq!(app["builtin"], false);
    let shown = clan_in(clan.path(), &["modules", "show", "app", "--json"])
        .ok()
        .json();
    let schema = &shown["roles"]["default"]["settings"];
    assert_eq!(schema["required"], json!(["port"]));
    assert_eq!(schema["properties"]["name"]["pattern"], "^(?:[a-z0-9]+)$");
}

#[test]
fn invalid_settings_name_instance_role_layer_path_and_rule() {
    let clan = clan_with(&[
        ("modules/app/default.nix", USER_MODULE),
        (
            "clan.nix",
            r#"{ meta.name = "t"; inventory.machines.a = { tags = [ "web" ]; };
                 inventory.instances.web = { module.name = "app"; roles.default.tags.web.settings.name = "my/machine";
                                             roles.default.settings.port = 80; }; }"#,
        ),
    ]);
    let err = clan_in(clan.path(), &["machines", "list"]).ok();
    drop(err); // listing needs no settings
    let err = clan_in(clan.path(), &["inventory", "show"]).fails();
    assert!(
        err.contains("settings of instance 'web', role 'default' for machine 'a' are invalid"),
        "{err}"
    );
    assert!(
        err.contains("at 'name': \"my/machine\" does not match \"^(?:[a-z0-9]+)$\""),
        "{err}"
    );
    assert!(
        err.contains(
            "(set in clan.nix: instances.web.roles.default.tags.web.settings (tag 'web'))"
        ),
        "{err}"
    );

    let clan = clan_with(&[
        ("modules/app/default.nix", USER_MODULE),
        (
            "inventory.json",
            r#"{"meta": {"name": "t"}, "machines": {"a": {}}, "instances": {"web": {"module": {"name": "app"}, "roles": {"default": {"machines": {"a": {"settings": {"port": 70000, "colour": 1}}}}}}}}"#,
        ),
    ]);
    let err = clan_in(clan.path(), &["inventory", "show"]).fails();
    assert!(
        err.contains("at 'port': 70000 is greater than the maximum of 65535"),
        "{err}"
    );
    assert!(err.contains("colour") && err.contains("(set in inventory.json: instances.web.roles.default.machines.a.settings (machine 'a'))"), "{err}");

    let clan = clan_with(&[
        ("modules/app/default.nix", USER_MODULE),
        (
            "inventory.json",
            r#"{"meta": {"name": "t"}, "machines": {"a": {}}, "instances": {"web": {"module": {"name": "app"}, "roles": {"default": {"machines": {"a": {}}}}}}}"#,
        ),
    ]);
    let err = clan_in(clan.path(), &["inventory", "show"]).fails();
    assert!(err.contains("\"port\" is a required property"), "{err}");
}

#[test]
fn invalid_machine_state_names_the_machine_module() {
    let clan = clan_with(&[(
        "clan.nix",
        r#"{ meta.name = "t"; inventory.machines.a = {}; machines.a = { ... }: { clan.core.state."bad name".folders = [ "relative/path" ]; }; }"#,
    )]);
    let err = clan_in(clan.path(), &["inventory", "show", "a"]).fails();
    assert!(
        err.contains("the configuration of machine 'a' is invalid"),
        "{err}"
    );
    assert!(
        err.contains("bad name") && err.contains("relative/path"),
        "{err}"
    );
    assert!(err.contains("clan.nix: machines.a"), "{err}");
}

#[test]
fn builtin_modules_show_their_roles_and_schemas() {
    let clan = clan_with(&[("inventory.json", r#"{"meta": {"name": "t"}}"#)]);
    let list = clan_in(clan.path(), &["modules", "list"]).ok().stdout();
    for m in ["borgbackup", "hello-world", "sshd", "users"] {
        assert!(list.contains(m), "{list}");
    }
    let bb = clan_in(clan.path(), &["modules", "show", "borgbackup", "--json"])
        .ok()
        .json();
    let server = &bb["roles"]["server"]["settings"];
    assert_eq!(
        server["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        server["properties"]["directory"]["default"],
        "/var/lib/borgbackup"
    );
    assert_eq!(
        server["properties"]["address"]["oneOf"][0],
        json!({"type": "null"})
    );
    let client = &bb["roles"]["client"]["settings"]["properties"];
    assert_eq!(client["startAt"]["default"], "*-*-* 01:00:00");
    assert_eq!(client["exclude"]["items"], json!({"type": "string"}));
    let hw = clan_in(clan.path(), &["modules", "show", "hello-world", "--json"])
        .ok()
        .json();
    let roles: Vec<&String> = hw["roles"].as_object().unwrap().keys().collect();
    assert_eq!(roles, ["evening", "greeter", "listener", "morning"]);
    let err = clan_in(clan.path(), &["modules", "show", "borgbakup"]).fails();
    assert!(err.contains("Did you mean borgbackup?"), "{err}");
}

#[test]
fn selfprivacy_module_schema_keeps_meta_as_x_ui() {
    let file = fixture("selfprivacy/service.nix");
    let dir = file.parent().unwrap().to_path_buf();
    let s = clan_in(
        &dir,
        &[
            "schema",
            "module",
            file.to_str().unwrap(),
            "--option",
            "selfprivacy.modules.service_id",
        ],
    )
    .ok()
    .json();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let p = &s["properties"];
    assert_eq!(
        p["enable"],
        json!({"type": "boolean", "description": "Enable the service", "default": false, "x-ui": {"type": "enable"}})
    );
    assert_eq!(
        p["subdomain"]["pattern"],
        "^(?:[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9])$"
    );
    assert_eq!(p["subdomain"]["x-ui"]["widget"], "subdomain");
    assert_eq!(
        p["subdomain"]["x-ui"]["regex"],
        "[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]"
    );
    assert_eq!(p["defaultTheme"]["enum"].as_array().unwrap().len(), 6);
    assert_eq!(p["defaultTheme"]["x-ui"]["weight"], 6);
    assert_eq!(p["motd"]["x-ui"]["allowEmpty"], true);
    assert_eq!(p["maxUsers"]["minimum"], 1);
    assert_eq!(p["maxUsers"]["maximum"], 1000);
    assert_eq!(p["maxUsers"]["x-ui"]["maxValue"], 1000);
    assert_eq!(s["required"], json!(["location"]));
    assert_eq!(s["additionalProperties"], false);

    let file = fixture("selfprivacy/syncplay.nix");
    let whole = clan_in(&dir, &["schema", "module", file.to_str().unwrap()])
        .ok()
        .json();
    let sync =
        &whole["properties"]["selfprivacy"]["properties"]["modules"]["properties"]["syncplay"];
    assert_eq!(
        sync["properties"]["motd"]["default"],
        "Welcome to Syncplay!"
    );
    assert_eq!(
        sync["properties"]["enableChat"]["x-ui"],
        json!({"type": "bool", "weight": 1})
    );
}

#[test]
fn every_nix_type_has_its_schema_and_non_json_types_are_errors() {
    let module = r#"{ lib, ... }: with lib; {
      options = {
        b = mkOption { type = types.bool; default = true; };
        s = mkOption { type = types.str; };
        l = mkOption { type = types.lines; default = ""; };
        i = mkOption { type = types.int; default = 1; };
        pos = mkOption { type = types.ints.positive; default = 1; };
        u = mkOption { type = types.ints.unsigned; default = 0; };
        btw = mkOption { type = types.ints.between 2 4; default = 3; };
        p = mkOption { type = types.port; default = 22; };
        f = mkOption { type = types.float; default = 1.5; };
        n = mkOption { type = types.number; default = 2; };
        e = mkOption { type = types.enum [ "a" "b" ]; default = "a"; };
        m = mkOption { type = types.strMatching "x+"; default = "x"; };
        lo = mkOption { type = types.listOf types.int; default = [ ]; };
        ao = mkOption { type = types.attrsOf types.bool; default = { }; };
        no = mkOption { type = types.nullOr types.str; default = null; };
        sub = mkOption { type = types.submodule { options.x = mkOption { type = types.int; }; options.y = mkOption { type = types.int; default = 0; }; }; };
        ei = mkOption { type = types.either types.str types.int; default = 1; };
        oo = mkOption { type = types.oneOf [ types.str types.int types.bool ]; default = 1; };
        pa = mkOption { type = types.path; default = "/x"; };
        an = mkOption { type = types.anything; default = { a = 1; }; };
        at = mkOption { type = types.attrs; default = { }; };
        en = mkEnableOption "the thing";
        fd = mkOption { type = types.str; default = "x"; defaultText = literalExpression "config.x"; };
      };
    }"#;
    let dir = clan_with(&[
        ("m.nix", module),
        (
            "bad.nix",
            "{ lib, ... }: { options.svc.pkg = lib.mkOption { type = lib.types.package; }; }",
        ),
    ]);
    let s = clan_in(dir.path(), &["schema", "module", "m.nix"])
        .ok()
        .json();
    let p = &s["properties"];
    let expect = [
        ("b", json!({"type": "boolean", "default": true})),
        ("s", json!({"type": "string"})),
        ("l", json!({"type": "string", "default": ""})),
        ("i", json!({"type": "integer", "default": 1})),
        (
            "pos",
            json!({"type": "integer", "minimum": 1, "default": 1}),
        ),
        ("u", json!({"type": "integer", "minimum": 0, "default": 0})),
        (
            "btw",
            json!({"type": "integer", "minimum": 2, "maximum": 4, "default": 3}),
        ),
        (
            "p",
            json!({"type": "integer", "minimum": 0, "maximum": 65535, "default": 22}),
        ),
        ("f", json!({"type": "number", "default": 1.5})),
        ("n", json!({"type": "number", "default": 2})),
        ("e", json!({"enum": ["a", "b"], "default": "a"})),
        (
            "m",
            json!({"type": "string", "pattern": "^(?:x+)$", "default": "x"}),
        ),
        (
            "lo",
            json!({"type": "array", "items": {"type": "integer"}, "default": []}),
        ),
        (
            "ao",
            json!({"type": "object", "additionalProperties": {"type": "boolean"}, "default": {}}),
        ),
        (
            "no",
            json!({"oneOf": [{"type": "null"}, {"type": "string"}], "default": null}),
        ),
        (
            "sub",
            json!({"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer", "default": 0}}, "required": ["x"], "additionalProperties": false}),
        ),
        (
            "ei",
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}], "default": 1}),
        ),
        (
            "oo",
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}], "default": 1}),
        ),
        ("pa", json!({"type": "string", "default": "/x"})),
        ("an", json!({"default": {"a": 1}})),
        ("at", json!({"type": "object", "default": {}})),
        (
            "en",
            json!({"type": "boolean", "default": false, "description": "Whether to enable the thing."}),
        ),
        ("fd", json!({"type": "string"})),
    ];
    for (name, schema) in expect {
        assert_eq!(p[name], schema, "option {name}");
    }
    assert_eq!(s["required"], json!(["s", "sub"]));

    let err = clan_in(dir.path(), &["schema", "module", "bad.nix"]).fails();
    assert!(
        err.contains("option 'svc.pkg' has type 'package', which has no JSON form"),
        "{err}"
    );
}

#[test]
fn a_user_module_per_machine_sees_all_its_instances() {
    let module = r#"{
      _class = "clan.service";
      manifest.name = "mesh";
      roles.peer.interface = { lib, ... }: { options.ip = lib.mkOption { type = lib.types.str; }; };
      perMachine = { machine, instances, ... }: {
        nixosModule = { mesh.instances = builtins.attrNames instances; mesh.roles = machine.roles; };
      };
    }"#;
    let clan = clan_with(&[
        ("modules/mesh/default.nix", module),
        (
            "inventory.json",
            r#"{"meta": {"name": "t"}, "machines": {"a": {}},
                "instances": {
                  "one": {"module": {"name": "mesh"}, "roles": {"peer": {"machines": {"a": {"settings": {"ip": "10.0.0.1"}}}}}},
                  "two": {"module": {"name": "mesh"}, "roles": {"peer": {"machines": {"a": {"settings": {"ip": "10.0.1.1"}}}}}}
                }}"#,
        ),
    ]);
    let a = clan_in(clan.path(), &["inventory", "show", "a", "--json"])
        .ok()
        .json();
    assert_eq!(
        a["other"]["mesh"],
        json!({"instances": ["one", "two"], "roles": ["peer"]})
    );
    assert!(
        a["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "module 'mesh' (perMachine)")
    );
}
