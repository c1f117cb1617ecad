//! `localbackup`: hard-linked snapshot directories on attached storage (rsnapshot
//! style), one provider per target, named `<instance>-<target>`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Builtin, InstanceContext, License, ServiceModule, builtin_service, manifest, role};
use crate::options::build::*;

pub struct Localbackup;

impl Builtin for Localbackup {
    fn module(&self) -> ServiceModule {
        let target = submodule(group([
            (
                "directory",
                opt(matching("/.*")).desc("Where the snapshots live").node(),
            ),
            (
                "mountCommand",
                opt(null_or(lines()))
                    .default(Value::Null)
                    .desc("Run before using the directory (e.g. mount a disk)")
                    .node(),
            ),
            (
                "unmountCommand",
                opt(null_or(lines()))
                    .default(Value::Null)
                    .desc("Run after")
                    .node(),
            ),
        ]));
        ServiceModule {
            name: "localbackup".into(),
            manifest: manifest(
                "localbackup",
                "Snapshots of the machine's state on locally attached storage; unchanged files are hard links",
                &["System"],
                "Each target is a provider named <instance>-<target>.",
            ).with_service(builtin_service("Local backup", 'L', License::spdx("MIT", "MIT License"), "https://github.com/rsnapshot/rsnapshot", "Nothing of its own: it keeps the other services' backups.")),
            roles: BTreeMap::from([(
                "default".into(),
                role(
                    "Keeps snapshots of its own state",
                    group([
                        (
                            "targets",
                            opt(named_attrs_of("[a-zA-Z0-9._-]+", target))
                                .desc("Snapshot locations")
                                .node(),
                        ),
                        (
                            "snapshots",
                            opt(crate::options::OptionType::IntPositive)
                                .default(20)
                                .desc("How many snapshots to keep")
                                .node(),
                        ),
                    ]),
                ),
            )]),
            origin: super::Origin::Builtin,
        }
    }

    fn per_instance(&self, ctx: &InstanceContext<'_>) -> Value {
        let providers: Map<String, Value> = ctx.settings["targets"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, t)| {
                (
                    format!("{}-{name}", ctx.instance_name),
                    json!({
                        "type": "local",
                        "directory": t["directory"],
                        "mountCommand": t["mountCommand"],
                        "unmountCommand": t["unmountCommand"],
                        "snapshots": ctx.settings["snapshots"],
                    }),
                )
            })
            .collect();
        json!({ "clan": { "core": { "backups": { "providers": providers } } } })
    }
}
