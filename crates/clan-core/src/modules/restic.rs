//! `restic`: backups with clan's embedded engine (restic repository format) to a
//! repository of the client's choosing. The provider is named after the instance.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    Builtin, InstanceContext, License, ServiceModule, builtin_service, manifest, role, secret_path,
};
use crate::options::build::*;

pub struct Restic;

impl Builtin for Restic {
    fn module(&self) -> ServiceModule {
        let keep = || opt(int()).default(0).node();
        ServiceModule {
            name: "restic".into(),
            manifest: manifest(
                "restic",
                "Encrypted, deduplicated backups with clan's embedded engine; repositories stay readable by the restic CLI",
                &["System"],
                "Backs up every clan.core.state of the client. Without passwordFile, the repository password is a \
                 generated secret var (restic-<instance>/password).",
            ).with_service(builtin_service("Restic backups", 'R', License::spdx("BSD-2-Clause", "BSD 2-Clause \"Simplified\" License"), "https://restic.net", "Nothing of its own: it keeps the other services' backups.")),
            roles: BTreeMap::from([(
                "client".into(),
                role(
                    "Backs its state up to the repository",
                    group([
                        (
                            "repository",
                            opt(str()).desc("Repository location: a local path").node(),
                        ),
                        (
                            "passwordFile",
                            opt(null_or(matching("/.*")))
                                .default(Value::Null)
                                .desc("File with the repository password; null: a generated var")
                                .node(),
                        ),
                        (
                            "startAt",
                            opt(str())
                                .default("*-*-* 01:00:00")
                                .desc("When to back up (systemd OnCalendar)")
                                .node(),
                        ),
                        (
                            "keep",
                            nested([
                                ("last", keep()),
                                ("daily", opt(int()).default(7).node()),
                                ("weekly", opt(int()).default(4).node()),
                                ("monthly", opt(int()).default(6).node()),
                                ("yearly", keep()),
                            ]),
                        ),
                    ]),
                ),
            )]),
            origin: super::Origin::Builtin,
        }
    }

    fn per_instance(&self, ctx: &InstanceContext<'_>) -> Value {
        let s = ctx.settings;
        let generator = format!("restic-{}", ctx.instance_name);
        let (password_file, generators) = match s["passwordFile"].as_str() {
            Some(f) => (f.to_string(), json!({})),
            None => (
                secret_path(&generator, "password"),
                json!({ &generator: {
                    "files": { "password": {} },
                    "runtimeInputs": ["head", "base64"],
                    "script": "head -c 32 /dev/urandom | base64 | tr -d '\\n' > \"$out/password\"\n",
                } }),
            ),
        };
        json!({ "clan": { "core": {
            "backups": { "providers": { ctx.instance_name: {
                "type": "restic",
                "repository": s["repository"],
                "sshKeyFile": s["sshKeyFile"],
                "sshKnownHostsFile": s["sshKnownHostsFile"],
                "passwordFile": password_file,
                "startAt": s["startAt"],
                "keep": s["keep"],
            } } },
            "vars": { "generators": generators },
        } } })
    }
}
