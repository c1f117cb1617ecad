//! `sshd`: an SSH server with host keys that persist (generated once, kept as vars)
//! and the admins' keys authorized for root.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Builtin, InstanceContext, License, ServiceModule, builtin_service, manifest, role};
use crate::options::OptionNode;
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
                                "generateRootKey",
                                opt(bool())
                                    .default(false)
                                    .desc("Clan's option to generate a root key pair")
                                    .unsupported("root's SSH keys are the admins' keys (authorizedKeys)")
                                    .node(),
                            ),
                            ("certificate", certificate(true)),
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
                    role(
                        "Trusts the servers' host keys",
                        group([("certificate", certificate(false))]),
                    ),
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

/// Clan's CA-signed host certificates (`certificate.enable`, on by default there;
/// `searchDomains`), which clan does not issue: it pins the host keys from the
/// clan's vars instead. Accepted when they ask for nothing.
fn certificate(server: bool) -> OptionNode {
    const WHY: &str = "CA-signed SSH host certificates; clan pins each machine's host keys from \
                       its vars instead, so no prompt to trust them either";
    let search = (
        "searchDomains",
        opt(list_of(str()))
            .default(json!([]))
            .desc("Clan's extra certificate domains")
            .unsupported(WHY)
            .node(),
    );
    if !server {
        return nested([search]);
    }
    nested([
        (
            "enable",
            opt(bool())
                .default(false)
                .desc("Clan's CA-signed host certificates")
                .unsupported(WHY)
                .node(),
        ),
        search,
    ])
}
