//! `agent`: the machine agent (`clan agent serve` as `clan-agent.service`), which
//! serves SelfPrivacy's API for the machine, with its first device token as a var.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Builtin, InstanceContext, License, ServiceModule, builtin_service, manifest, role};
use crate::options::build::*;

/// The generator of the first device token (`clan vars get MACHINE agent/token`).
pub const GENERATOR: &str = "agent";

pub struct Agent;

impl Builtin for Agent {
    fn module(&self) -> ServiceModule {
        ServiceModule {
            name: "agent".into(),
            manifest: manifest(
                "agent",
                "The machine agent: an API for the SelfPrivacy app and other frontends",
                &["System"],
                "Each server machine runs clan-agent.service. Its first device token is the \
                 secret var agent/token: `clan vars get MACHINE agent/token`.",
            )
            .with_service(builtin_service(
                "Machine agent",
                'A',
                License::spdx("MIT", "MIT License"),
                "https://clan.lol",
                "Its devices and jobs; they are made again when lost.",
            )),
            roles: BTreeMap::from([(
                "server".into(),
                role(
                    "Runs the agent",
                    group([
                        (
                            "listen",
                            opt(str())
                                .default("127.0.0.1:5050")
                                .desc("Address and port the agent listens on")
                                .node(),
                        ),
                        (
                            "tlsCertificate",
                            opt(null_or(str()))
                                .default(Value::Null)
                                .desc("PEM certificate chain: serve HTTPS (with tlsKey)")
                                .node(),
                        ),
                        (
                            "tlsKey",
                            opt(null_or(str()))
                                .default(Value::Null)
                                .desc("PEM private key of tlsCertificate")
                                .node(),
                        ),
                        (
                            "logLevel",
                            opt(enum_of(&["error", "warn", "info", "debug"]))
                                .default("info")
                                .desc("What the agent writes to the journal")
                                .node(),
                        ),
                    ]),
                ),
            )]),
            origin: super::Origin::Builtin,
        }
    }

    fn per_instance(&self, ctx: &InstanceContext<'_>) -> Value {
        let s = ctx.settings;
        json!({ "clan": { "core": {
            "vars": { "generators": { GENERATOR: {
                "files": { "token": {} },
                "runtimeInputs": ["head", "base64", "tr"],
                // 32 random bytes, base64url without padding (43 characters).
                "script": "head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' > \"$out/token\"\n",
            } } },
            "agent": {
                "listen": s["listen"],
                "tlsCertificate": s["tlsCertificate"],
                "tlsKey": s["tlsKey"],
                "logLevel": s["logLevel"],
            },
        } } })
    }
}
