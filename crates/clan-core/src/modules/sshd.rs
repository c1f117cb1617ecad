//! `sshd`: an SSH server with host keys that persist (generated once, kept as vars)
//! and the admins' keys authorized for root.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Builtin, InstanceContext, License, ServiceModule, builtin_service, manifest, role};
use crate::options::build::*;

pub struct Sshd;

impl Builtin for Sshd {
    fn module(&self) -> ServiceModule {
        ServiceModule {
            name: "sshd".into(),
            manifest: manifest(
                "sshd",
                "OpenSSH server with persistent host keys and authorized admin keys",
                &["System", "Network"],
                "Host keys are generated once per machine (var openssh/ssh.id_ed25519) so they survive reinstalls.",
            ).with_service(builtin_service("SSH server", 'S', License::spdx("SSH-OpenSSH", "SSH OpenSSH license"), "https://www.openssh.com", "The machine's SSH host keys are vars; nothing to back up.")),
            roles: BTreeMap::from([
                (
                    "server".into(),
                    role(
                        "Runs the SSH server",
                        group([
                            (
                                "authorizedKeys",
                                opt(attrs_of(str()))
                                    .default(json!({}))
                                    .desc("Name -> public key, allowed to log in as root")
                                    .node(),
                            ),
                            (
                                "hostKeys",
                                nested([(
                                    "rsa",
                                    nested([(
                                        "enable",
                                        opt(bool())
                                            .default(false)
                                            .desc("Also generate an RSA host key")
                                            .node(),
                                    )]),
                                )]),
                            ),
                        ]),
                    ),
                ),
                (
                    "client".into(),
                    role("Trusts the servers' host keys", group([])),
                ),
            ]),
            origin: super::Origin::Builtin,
        }
    }

    fn per_instance(&self, ctx: &InstanceContext<'_>) -> Value {
        if ctx.role != "server" {
            return json!({});
        }
        let mut files = json!({ "ssh.id_ed25519": {}, "ssh.id_ed25519.pub": { "secret": false } });
        let mut script =
            String::from("ssh-keygen -t ed25519 -N '' -C '' -q -f \"$out/ssh.id_ed25519\"\n");
        if ctx.settings["hostKeys"]["rsa"]["enable"] == json!(true) {
            files["ssh.id_rsa"] = json!({});
            files["ssh.id_rsa.pub"] = json!({ "secret": false });
            script.push_str("ssh-keygen -t rsa -b 4096 -N '' -C '' -q -f \"$out/ssh.id_rsa\"\n");
        }
        json!({ "clan": { "core": {
            "vars": { "generators": { "openssh": { "files": files, "runtimeInputs": ["ssh-keygen"], "script": script } } },
            "sshd": { "authorizedKeys": ctx.settings["authorizedKeys"], "hostKeys": { "generator": "openssh" } },
        } } })
    }
}
