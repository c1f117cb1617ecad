//! A NixOS machine's system, as Nix text clan writes next to the glue:
//! `clan.core`'s options as a NixOS module (from the declarations clan validates
//! with, so both agree), the resolved configuration as NixOS settings, and the
//! expression that builds `system.build.toplevel` with the clan's nixpkgs.

use std::fmt::Write;

use serde_json::Value;

use crate::ResolvedMachine;
use crate::machine::{KeyRef, clan_core_options};
use crate::options::{DefaultValue, Group, OptionNode, OptionType};

/// Where `machines update` puts a generator's deployed files on a machine.
pub const VARS_DIR: &str = "/var/lib/clan/secrets/vars";

/// A Nix string literal.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON as a Nix value.
pub fn value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value).collect();
            format!("[ {} ]", items.join(" "))
        }
        Value::Object(map) => {
            let mut out = String::from("{ ");
            for (k, v) in map {
                let _ = write!(out, "{} = {}; ", string(k), value(v));
            }
            out.push('}');
            out
        }
    }
}

/// An option type as a NixOS type expression; `depth` numbers the names of
/// nested submodules (`n1`, `n2`, …) so that inner ones can use outer names.
fn ty(t: &OptionType, at: &[String], depth: usize) -> String {
    let t_ = |t: &OptionType| ty(t, at, depth);
    match t {
        OptionType::Bool => "lib.types.bool".into(),
        OptionType::Str => "lib.types.str".into(),
        OptionType::Lines => "lib.types.lines".into(),
        OptionType::Path => "lib.types.path".into(),
        OptionType::Int => "lib.types.int".into(),
        OptionType::IntPositive => "lib.types.ints.positive".into(),
        OptionType::IntUnsigned => "lib.types.ints.unsigned".into(),
        OptionType::IntBetween { min, max } => format!("(lib.types.ints.between {min} {max})"),
        OptionType::Port => "lib.types.port".into(),
        OptionType::Float => "lib.types.float".into(),
        OptionType::Number => "lib.types.number".into(),
        OptionType::NumberBetween { min, max } => {
            format!("(lib.types.numbers.between {min} {max})")
        }
        OptionType::Enum(values) => {
            format!("(lib.types.enum {})", value(&Value::Array(values.clone())))
        }
        OptionType::StrMatching { pattern } => {
            format!("(lib.types.strMatching {})", string(pattern))
        }
        OptionType::ListOf { elem, non_empty } => {
            let list = if *non_empty {
                "nonEmptyListOf"
            } else {
                "listOf"
            };
            format!("(lib.types.{list} {})", t_(elem))
        }
        OptionType::AttrsOf { elem, .. } => {
            let mut inner = at.to_vec();
            inner.push("*".into());
            format!("(lib.types.attrsOf {})", ty(elem, &inner, depth))
        }
        OptionType::NullOr(t) => format!("(lib.types.nullOr {})", t_(t)),
        OptionType::Submodule(g) => {
            let n = depth + 1;
            format!(
                "(lib.types.submodule ({{ name, ... }}: let n{n} = name; in {{ options = {}; }}))",
                group(g, at, n)
            )
        }
        OptionType::OneOf(ts) => {
            let ts: Vec<String> = ts.iter().map(t_).collect();
            format!("(lib.types.oneOf [ {} ])", ts.join(" "))
        }
        OptionType::Anything | OptionType::NotJson(_) => "lib.types.anything".into(),
        OptionType::Attrs => "lib.types.attrs".into(),
    }
}

fn group(g: &Group, at: &[String], depth: usize) -> String {
    let mut out = String::from("{ ");
    for (name, node) in g {
        let mut path = at.to_vec();
        path.push(name.clone());
        match node {
            OptionNode::Group(inner) => {
                let _ = write!(out, "{} = {}; ", string(name), group(inner, &path, depth));
            }
            OptionNode::Option(o) => {
                let mut attrs = format!("type = {};", ty(&o.ty, &path, depth));
                if let DefaultValue::Json(v) = &o.default {
                    let _ = write!(attrs, " default = {};", value(v));
                }
                if let Some(d) = &o.description {
                    let _ = write!(attrs, " description = {};", string(d));
                }
                let _ = write!(out, "{} = lib.mkOption {{ {attrs} }}; ", string(name));
            }
        }
    }
    // A generator's files say where they are deployed.
    if at == ["vars", "generators", "*", "files", "*"] {
        out.push_str(&format!(
            "\"path\" = lib.mkOption {{ type = lib.types.str; readOnly = true; \
             default = \"{VARS_DIR}/${{n1}}/${{n2}}\"; description = \"Where the file is on the machine\"; }}; "
        ));
    }
    out.push('}');
    out
}

/// `clan.core`'s options as a NixOS module.
pub fn options_module() -> String {
    format!(
        "# clan.core's options for NixOS, generated by clan from the declarations it\n\
         # validates with.\n{{ lib, ... }}:\n{{\n  options.clan.core = {};\n}}\n",
        group(&clan_core_options(), &[], 0)
    )
}

/// The resolved configuration as NixOS settings: what `machines update` does on
/// other Linux machines (users, the admins' keys, SSH host keys, borg
/// repositories, backup and drill timers), said to NixOS. `runtime` is the clan
/// program on the machine. The configuration the runtime reads
/// (/etc/clan/machine.json, 0600) is not here: the store is readable by all.
pub fn settings_module(m: &ResolvedMachine, runtime: &str) -> String {
    let c = &m.clan_core;
    let mut s = String::new();
    let mut set = |path: &str, v: String| {
        let _ = writeln!(s, "  {path} = {v};");
    };
    set("networking.hostName", string(&m.name));
    if let Some(tz) = &c.timezone {
        set("time.timeZone", string(tz));
    }
    set("services.openssh.enable", "true".into());
    let admins: Vec<Value> = c
        .sshd
        .authorized_keys
        .values()
        .map(|k| Value::String(k.trim().into()))
        .collect();
    set(
        "users.users.root.openssh.authorizedKeys.keys",
        value(&Value::Array(admins)),
    );
    if let Some(h) = &c.sshd.host_keys {
        set(
            "services.openssh.hostKeys",
            format!(
                "[ {{ path = {}; type = \"ed25519\"; }} ]",
                string(&format!("{VARS_DIR}/{}/ssh.id_ed25519", h.generator))
            ),
        );
    }
    for (name, u) in &c.users {
        let user = |k: &str| format!("users.users.{}.{k}", string(name));
        if u.regular_user.unwrap_or(true) {
            set(&user("isNormalUser"), "true".into());
        } else {
            set(&user("isSystemUser"), "true".into());
            set(&user("group"), string(name));
            set(&format!("users.groups.{}", string(name)), "{ }".into());
        }
        let groups = u.groups.iter().map(|g| Value::String(g.clone())).collect();
        set(&user("extraGroups"), value(&Value::Array(groups)));
        let keys = u
            .authorized_keys
            .iter()
            .map(|k| Value::String(k.clone()))
            .collect();
        set(
            &user("openssh.authorizedKeys.keys"),
            value(&Value::Array(keys)),
        );
        if let Some(hash) = &u.password_hash {
            set(
                &user("hashedPasswordFile"),
                string(&format!("{VARS_DIR}/{}/{}", hash.generator, hash.file)),
            );
        }
    }
    if let Some(server) = &c.borgbackup.server {
        let mut keys = Vec::new();
        let mut dirs = Vec::new();
        for (client, b) in server.clients.iter().flatten() {
            let path = b
                .path
                .clone()
                .unwrap_or_else(|| format!("{}/{client}", server.directory));
            // Each client's repository directory, the borg user's alone.
            dirs.push(Value::String(format!("d {path} 0700 borg borg -")));
            let append = if b.append_only { " --append-only" } else { "" };
            if let Some(KeyRef::Key(k)) = &b.authorized_key {
                keys.push(Value::String(format!(
                    "command=\"borg serve{append} --restrict-to-path {path}\",restrict {}",
                    k.trim()
                )));
            }
            if let Some(KeyRef::Key(k)) = &b.admin_key {
                keys.push(Value::String(format!(
                    "command=\"borg serve --restrict-to-path {path}\",restrict {}",
                    k.trim()
                )));
            }
        }
        set("users.users.borg.isSystemUser", "true".into());
        set("users.users.borg.group", "\"borg\"".into());
        set("users.users.borg.home", string(&server.directory));
        set("users.users.borg.createHome", "true".into());
        set(
            "users.users.borg.openssh.authorizedKeys.keys",
            value(&Value::Array(keys)),
        );
        set("users.groups.borg", "{ }".into());
        set("systemd.tmpfiles.rules", value(&Value::Array(dirs)));
    }
    for (name, p) in &c.backups.providers {
        for (prefix, at, args, extra) in [
            ("clan-backup-", p.start_at(), "--timer", ""),
            (
                "clan-drill-",
                p.drill_at(),
                "--drill",
                " Nice = 19; IOSchedulingClass = \"idle\";",
            ),
        ] {
            let Some(at) = at else { continue };
            let unit = string(&format!("{prefix}{name}"));
            set(
                &format!("systemd.services.{unit}"),
                format!(
                    "{{ after = [ \"network-online.target\" ]; wants = [ \"network-online.target\" ]; \
                     serviceConfig = {{ Type = \"oneshot\"; ExecStart = {};{extra} }}; }}",
                    string(&format!("{runtime} __runtime {args} {name}"))
                ),
            );
            set(
                &format!("systemd.timers.{unit}"),
                format!(
                    "{{ wantedBy = [ \"timers.target\" ]; timerConfig = {{ OnCalendar = {}; Persistent = true; }}; }}",
                    string(at)
                ),
            );
        }
    }
    format!(
        "# Machine {}'s resolved configuration as NixOS settings, generated by clan.\n\
         {{ ... }}:\n{{\n{s}}}\n",
        m.name
    )
}

/// The expression that builds the machine's system: the machine's own modules
/// (from the glue, query `nixos`, with `args.json`), clan.core's options and the
/// resolved settings, evaluated by `<nixpkgs>/nixos`.
pub fn toplevel_expression(nixpkgs: &str) -> String {
    format!(
        "# Builds the system of one machine of the clan; written by clan.\n\
         {{ clanDir }}:\n\
         let\n  \
           glue = import ./eval.nix {{ inherit clanDir; query = \"nixos\"; argsFile = toString ./args.json; }};\n  \
           nixos = import ({nixpkgs} + \"/nixos\") {{\n    \
             system = builtins.currentSystem;\n    \
             configuration = {{ imports = glue.result ++ [ ./clan-core.nix ./settings.nix ]; }};\n  \
           }};\n\
         in\nnixos.config.system.build.toplevel\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated modules are Nix that parses (evaluating them is tested with
    /// the nixpkgs test double in clan-cli's tests/nixos.rs).
    #[test]
    fn the_generated_modules_parse() {
        if !crate::nix::Nix::available() {
            return;
        }
        let m: ResolvedMachine = serde_json::from_value(serde_json::json!({
            "name": "m", "description": null, "machineClass": "nixos", "tags": [],
            "deploy": {"targetHost": null, "buildHost": null}, "instances": [],
            "clanCore": {
                "state": {}, "vars": {"generators": {}},
                "backups": {"providers": {"b": {"type": "local", "directory": "/b\"${x}", "drillAt": "weekly"}},
                            "stagingDirectory": "/s"},
                "deployment": {"requireExplicitUpdate": false},
                "postgresql": {"runAs": null, "host": null, "port": null, "user": null},
                "users": {"a\"b": {"groups": ["g"], "authorizedKeys": ["k ${y}"]}},
                "sshd": {"authorizedKeys": {"x": "ssh-ed25519 AAAA"}, "hostKeys": {"generator": "openssh"}},
                "borgbackup": {"server": {"directory": "/srv/borg", "clients": {
                    "c": {"authorizedKey": "ssh-ed25519 BBBB", "appendOnly": true}}}},
            },
            "other": {}, "sources": [],
        }))
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("options.nix", options_module()),
            ("settings.nix", settings_module(&m, "/usr/local/bin/clan")),
            ("default.nix", toplevel_expression("<nixpkgs>")),
        ] {
            let path = tmp.path().join(name);
            std::fs::write(&path, &text).unwrap();
            let out = std::process::Command::new("nix-instantiate")
                .arg("--parse")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let settings = settings_module(&m, "/usr/local/bin/clan");
        assert!(
            settings.contains(r#"users.users."a\"b".extraGroups = [ "g" ];"#),
            "{settings}"
        );
        assert!(settings.contains(r#""k \${y}""#), "{settings}");
        assert!(
            settings.contains(
                r#""command=\"borg serve --append-only --restrict-to-path /srv/borg/c\",restrict ssh-ed25519 BBBB""#
            ),
            "{settings}"
        );
        assert!(
            settings.contains(r#"systemd.tmpfiles.rules = [ "d /srv/borg/c 0700 borg borg -" ];"#),
            "{settings}"
        );
    }

    #[test]
    fn strings_are_quoted_for_nix() {
        assert_eq!(string("a\"b\\c\n${x}$y"), r#""a\"b\\c\n\${x}$y""#);
        assert_eq!(
            value(&serde_json::json!({"k": [1, true, null, "s"]})),
            r#"{ "k" = [ 1 true null "s" ]; }"#
        );
    }
}
