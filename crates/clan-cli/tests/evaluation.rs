//! Point 3: evaluation with real Nix, and a clan without Nix.

mod common;
use common::*;
use serde_json::json;

#[test]
fn machine_modules_see_config_lib_and_conditions() {
    let clan = clan_with(&[(
        "clan.nix",
        r#"{ lib, ... }: {
          meta.name = "t";
          inventory.machines.m = { machineClass = "linux"; };
          machines.m = { config, lib, ... }: {
            imports = [ ({ ... }: { clan.core.state.extra.folders = [ "/srv/extra" ]; }) ];
            config = lib.mkMerge [
              { my.enable = true; }
              (lib.mkIf config.my.enable { clan.core.state.app.folders = [ "/var/lib/app" ]; })
              (lib.mkIf false { clan.core.state.never.folders = [ "/nope" ]; })
              { services.x.path = ./clan.nix; services.x.f = x: x; }
            ];
          };
        }"#,
    )]);
    let m = clan_in(clan.path(), &["inventory", "show", "m", "--json"])
        .ok()
        .json();
    assert_eq!(m["machineClass"], "linux");
    assert_eq!(m["tags"], json!(["all", "linux"]));
    let state = &m["clanCore"]["state"];
    assert_eq!(state["app"]["folders"], json!(["/var/lib/app"]));
    assert_eq!(state["extra"]["folders"], json!(["/srv/extra"]));
    assert!(state.get("never").is_none());
    // Paths stay paths (not copied into the store); functions become markers.
    assert_eq!(
        m["other"]["services"]["x"]["path"],
        json!(format!("{}/clan.nix", clan.path().display()))
    );
    assert_eq!(
        m["other"]["services"]["x"]["f"],
        json!({"_type": "function"})
    );
}

#[test]
fn machines_directory_and_configuration_nix_are_merged_in() {
    let clan = clan_with(&[
        ("inventory.json", r#"{"meta": {"name": "t"}}"#),
        ("clan.nix", "{ }"),
        (
            "machines/web/configuration.nix",
            "{ lib, ... }: { clan.core.state.www.folders = [ \"/srv/www\" ]; }",
        ),
    ]);
    let list = clan_in(clan.path(), &["machines", "list", "--json"])
        .ok()
        .json();
    assert_eq!(list[0]["name"], "web");
    let m = clan_in(clan.path(), &["inventory", "show", "web", "--json"])
        .ok()
        .json();
    assert_eq!(
        m["clanCore"]["state"]["www"]["folders"],
        json!(["/srv/www"])
    );
    assert!(
        m["sources"][0]
            .as_str()
            .unwrap()
            .ends_with("machines/web/configuration.nix")
    );
}

#[test]
fn nix_errors_show_nix_file_and_line() {
    let clan = clan_with(&[(
        "clan.nix",
        "{\n  meta.name = \"t\";\n  inventory.machines.a = { tags = [ \"x\" ] ; \n}\n",
    )]);
    let err = clan_in(clan.path(), &["machines", "list"]).fails();
    assert!(err.contains("Nix could not evaluate the clan"), "{err}");
    assert!(err.contains("clan.nix:4:2"), "{err}");
    assert!(!err.contains("clan-glue-"), "glue paths leak: {err}");
}

#[test]
fn a_throw_and_a_missing_import_show_the_message_and_the_users_file() {
    let clan = clan_with(&[(
        "clan.nix",
        "{\n  meta.name = \"t\";\n  inventory.machines.m = { machineClass = \"linux\"; };\n  \
         machines.m = { ... }: {\n    clan.core.state.x.folders = throw \"my own message\";\n  };\n}\n",
    )]);
    let err = clan_in(clan.path(), &["inventory", "show", "m"]).fails();
    assert!(err.contains("my own message"), "{err}");
    assert!(err.contains("clan.nix:5:"), "the place of the throw: {err}");
    assert!(
        !err.contains("--show-trace"),
        "an option clan does not take: {err}"
    );
    assert!(
        !err.contains("clan-glue-") && !err.contains("nixbld"),
        "{err}"
    );

    std::fs::write(
        clan.path().join("clan.nix"),
        "{\n  meta.name = \"t\";\n  inventory.machines.m = { };\n  \
         machines.m = { ... }: { imports = [ ./missing.nix ]; };\n}\n",
    )
    .unwrap();
    let err = clan_in(clan.path(), &["inventory", "show", "m"]).fails();
    assert!(
        err.contains("missing.nix") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn touching_pkgs_is_a_clear_error() {
    let clan = clan_with(&[(
        "clan.nix",
        r#"{ meta.name = "t"; inventory.machines.a = {}; machines.a = { pkgs, ... }: { environment.systemPackages = [ pkgs.curl ]; }; }"#,
    )]);
    let err = clan_in(clan.path(), &["inventory", "show", "a"]).fails();
    assert!(err.contains("`pkgs` is not available"), "{err}");
}

#[test]
fn unknown_top_level_attribute_is_named() {
    let clan = clan_with(&[("clan.nix", r#"{ meta.name = "t"; inventroy = {}; }"#)]);
    let err = clan_in(clan.path(), &["show"]).fails();
    assert!(
        err.contains("unknown top-level attribute 'inventroy'"),
        "{err}"
    );
}

/// A PATH with git but without Nix.
fn path_without_nix() -> (tempfile::TempDir, String) {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(which("git"), bin.path().join("git")).unwrap();
    let path = bin.path().display().to_string();
    (bin, path)
}

fn which(program: &str) -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|p| p.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not on PATH"))
}

#[test]
fn a_json_only_clan_works_without_nix() {
    let clan = clan_with(&[(
        "inventory.json",
        r#"{"meta": {"name": "json-only"}, "machines": {"a": {"tags": ["t"]}},
            "instances": {"borgbackup": {"roles": {"client": {"machines": {"a": {}}}}}}}"#,
    )]);
    let (_bin, path) = path_without_nix();
    let m = clan_env(
        clan.path(),
        &["inventory", "show", "a", "--json"],
        &[("PATH", &path)],
    )
    .ok()
    .json();
    assert_eq!(
        m["clanCore"]["backups"]["providers"]["borgbackup"]["type"],
        "borg"
    );
    clan_env(clan.path(), &["machines", "list"], &[("PATH", &path)]).ok();
}

#[test]
fn a_clan_nix_without_nix_says_how_to_install_it() {
    let clan = clan_with(&[("clan.nix", "{ meta.name = \"t\"; }")]);
    let (_bin, path) = path_without_nix();
    let err = clan_env(clan.path(), &["show"], &[("PATH", &path)]).fails();
    assert!(
        err.contains("clan.nix needs Nix") && err.contains("apt-get install nix-bin"),
        "{err}"
    );
}

#[test]
fn state_folders_must_be_absolute_without_dot_components_and_excludes_not_empty() {
    for (value, field) in [
        (r#"folders = [ "/srv/../etc" ]"#, "folders"),
        (r#"folders = [ "srv/app" ]"#, "folders"),
        (r#"folders = [ "/srv/app/" ]"#, "folders"),
        (r#"folders = [ "/srv/app" ]; exclude = [ "" ]"#, "exclude"),
    ] {
        let clan = clan_with(&[(
            "clan.nix",
            &format!(
                "{{ meta.name = \"t\"; inventory.machines.m = {{ machineClass = \"linux\"; }};\n\
                 machines.m = {{ ... }}: {{ clan.core.state.x = {{ {value}; }}; }}; }}\n"
            ),
        )]);
        let err = clan_in(clan.path(), &["inventory", "show", "m"]).fails();
        assert!(err.contains(&format!("state.x.{field}")), "{value}: {err}");
    }
}
