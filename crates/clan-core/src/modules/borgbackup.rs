//! `borgbackup`: clients back their state up to every server of the instance, each
//! client into `<server directory>/<client name>`, over SSH with a key of its own.
//! That key may only add archives (`appendOnly`, the default): retention runs from
//! the admin's clan with a second key per client that never leaves the admin
//! (`borgbackup-admin`, not deployed), so a compromised client cannot destroy its
//! backups.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{
    Builtin, InstanceContext, License, ServiceModule, builtin_service, manifest, role, secret_path,
};
use crate::options::build::*;

pub struct Borgbackup;

pub const GENERATOR: &str = "borgbackup";
/// The client's second key, for the admin's clan only (never deployed).
pub const ADMIN_GENERATOR: &str = "borgbackup-admin";

impl Builtin for Borgbackup {
    fn module(&self) -> ServiceModule {
        let destination = submodule(group([
            (
                "name",
                opt(null_or(matching("[a-zA-Z0-9._-]+")))
                    .default(Value::Null)
                    .desc("Defaults to the attribute name")
                    .node(),
            ),
            (
                "repo",
                opt(str())
                    .desc("Borg repository, e.g. user@host:/path or ssh://user@host/path")
                    .node(),
            ),
            (
                "rsh",
                opt(null_or(str()))
                    .default(Value::Null)
                    .desc("SSH command borg uses; by default ssh with the client's generated key")
                    .node(),
            ),
        ]));
        ServiceModule {
            name: "borgbackup".into(),
            manifest: manifest(
                "borgbackup",
                "Encrypted, deduplicated backups of every machine's state to backup servers, with BorgBackup",
                &["System"],
                "Clients back up all their `clan.core.state` to each server of the instance (and to extra \
                 destinations). A machine can be both client and server.",
            ).with_service(builtin_service("BorgBackup", 'B', License::spdx("BSD-3-Clause", "BSD 3-clause \"New\" or \"Revised\" License"), "https://www.borgbackup.org", "The repositories this machine keeps for its clients.")),
            roles: BTreeMap::from([
                (
                    "client".into(),
                    role(
                        "Backs its state up to the servers",
                        group([
                            (
                                "destinations",
                                opt(attrs_of(destination))
                                    .default(json!({}))
                                    .desc("Extra destinations besides the instance's servers")
                                    .node(),
                            ),
                            (
                                "exclude",
                                opt(list_of(str()))
                                    .default(json!([]))
                                    .desc("Borg exclude patterns, e.g. *.bak")
                                    .node(),
                            ),
                            (
                                "startAt",
                                opt(str())
                                    .default("*-*-* 01:00:00")
                                    .desc("When to back up (systemd OnCalendar)")
                                    .node(),
                            ),
                        ]),
                    ),
                ),
                (
                    "server".into(),
                    role(
                        "Stores the clients' repositories",
                        group([
                            (
                                "address",
                                opt(null_or(str()))
                                    .default(Value::Null)
                                    .desc(
                                        "Address clients connect to; the machine's name when null",
                                    )
                                    .node(),
                            ),
                            (
                                "directory",
                                opt(matching("/.*"))
                                    .default("/var/lib/borgbackup")
                                    .desc("Where the repositories live")
                                    .node(),
                            ),
                            (
                                "appendOnly",
                                opt(bool())
                                    .default(true)
                                    .desc(
                                        "Clients' keys may only add archives; pruning runs from the \
                                         admin's clan (`clan backups prune`) with a key only the \
                                         admin holds",
                                    )
                                    .node(),
                            ),
                        ]),
                    ),
                ),
            ]),
            origin: super::Origin::Builtin,
        }
    }

    fn per_instance(&self, ctx: &InstanceContext<'_>) -> Value {
        match ctx.role {
            "client" => client(ctx),
            "server" => server(ctx),
            _ => json!({}),
        }
    }
}

fn client(ctx: &InstanceContext<'_>) -> Value {
    let key_path = secret_path(GENERATOR, "borgbackup.ssh");
    // Host keys: the provider pins the server's key when `machines update` recorded
    // it (`hostKey`), else trusts it on first use.
    let default_rsh = format!("ssh -i {key_path} -o IdentitiesOnly=yes");
    let mut destinations = Map::new();
    for (server, s) in ctx.members("server") {
        let host = s["address"].as_str().unwrap_or(server);
        let dir = s["directory"].as_str().unwrap_or("/var/lib/borgbackup");
        destinations.insert(
            server.clone(),
            json!({ "repo": format!("ssh://borg@{host}{dir}/{}", ctx.machine), "rsh": default_rsh,
                    "server": server, "appendOnly": s["appendOnly"].as_bool().unwrap_or(true) }),
        );
    }
    for (name, d) in ctx.settings["destinations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let name = d["name"].as_str().unwrap_or(name);
        destinations.insert(
            name.to_string(),
            json!({ "repo": d["repo"], "rsh": d["rsh"].as_str().unwrap_or(&default_rsh) }),
        );
    }
    json!({ "clan": { "core": {
        "backups": { "providers": { ctx.instance_name: {
            "type": "borg",
            "destinations": destinations,
            "exclude": ctx.settings["exclude"],
            "startAt": ctx.settings["startAt"],
            "passphraseFile": secret_path(GENERATOR, "borgbackup.repokey"),
        } } },
        "vars": { "generators": { GENERATOR: {
            "files": {
                "borgbackup.ssh.pub": { "secret": false },
                "borgbackup.ssh": {},
                "borgbackup.repokey": {},
            },
            "runtimeInputs": ["ssh-keygen", "xkcdpass"],
            "script": "ssh-keygen -t ed25519 -N '' -C '' -q -f \"$out/borgbackup.ssh\"\nxkcdpass -n 6 -d - > \"$out/borgbackup.repokey\"\n",
        },
        ADMIN_GENERATOR: {
            "files": {
                "borgbackup-admin.ssh.pub": { "secret": false },
                "borgbackup-admin.ssh": { "deploy": false },
            },
            "runtimeInputs": ["ssh-keygen"],
            "script": "ssh-keygen -t ed25519 -N '' -C '' -q -f \"$out/borgbackup-admin.ssh\"\n",
        } } },
    } } })
}

fn server(ctx: &InstanceContext<'_>) -> Value {
    let dir = ctx.settings["directory"]
        .as_str()
        .unwrap_or("/var/lib/borgbackup");
    let clients: Map<String, Value> = ctx
        .members("client")
        .map(|(client, _)| {
            (
                client.clone(),
                json!({
                    "path": format!("{dir}/{client}"),
                    "authorizedKey": { "machine": client, "generator": GENERATOR, "file": "borgbackup.ssh.pub" },
                    "adminKey": { "machine": client, "generator": ADMIN_GENERATOR, "file": "borgbackup-admin.ssh.pub" },
                    "appendOnly": ctx.settings["appendOnly"].as_bool().unwrap_or(true),
                }),
            )
        })
        .collect();
    json!({ "clan": { "core": { "borgbackup": { "server": { "directory": dir, "clients": clients } } } } })
}
