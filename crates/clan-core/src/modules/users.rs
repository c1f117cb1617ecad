//! `users`: a user account on every machine of the role, with a password that is
//! prompted (or generated) once and kept as a secret var.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Builtin, InstanceContext, License, ServiceModule, builtin_service, manifest, role};
use crate::options::build::*;

pub struct Users;

impl Builtin for Users {
    fn module(&self) -> ServiceModule {
        ServiceModule {
            name: "users".into(),
            manifest: manifest(
                "users",
                "A user account with a managed password and SSH keys",
                &["System"],
                "The password is kept as the secret var user-password-<user>/user-password; \
                 `clan vars get MACHINE user-password-<user>/user-password` shows it.",
            ).with_service(builtin_service("User accounts", 'U', License::spdx("MIT", "MIT License"), "https://clan.lol", "Accounts are configuration; their passwords are vars.")),
            roles: BTreeMap::from([(
                "default".into(),
                role(
                    "Machines that get the user",
                    group([
                        ("user", opt(matching("[a-z_][a-z0-9_-]*[$]?")).desc("The user's login name").node()),
                        ("prompt", opt(bool()).default(true).desc("Ask for the password (empty: generate one) instead of generating it").node()),
                        ("regularUser", opt(bool()).default(true).desc("A normal (login) user with a home directory").node()),
                        ("groups", opt(list_of(str())).default(json!([])).desc("Extra groups").node()),
                        ("share", opt(bool()).default(false).desc("One password for this user on every machine").node()),
                        (
                            "openssh",
                            nested([(
                                "authorizedKeys",
                                nested([("keys", opt(list_of(str())).default(json!([])).desc("SSH public keys allowed to log in").node())]),
                            )]),
                        ),
                    ]),
                ),
            )]),
            origin: super::Origin::Builtin,
        }
    }

    fn per_instance(&self, ctx: &InstanceContext<'_>) -> Value {
        let s = ctx.settings;
        let user = s["user"].as_str().unwrap_or("user");
        let generator = format!("user-password-{user}");
        let prompt = s["prompt"].as_bool().unwrap_or(true);
        let source = if prompt {
            "if [ -s \"$prompts/user-password\" ]; then tr -d '\\n' < \"$prompts/user-password\" > \"$out/user-password\"\n\
             else xkcdpass --numwords 4 --delimiter - --count 1 | tr -d '\\n' > \"$out/user-password\"; fi\n"
        } else {
            "xkcdpass --numwords 4 --delimiter - --count 1 | tr -d '\\n' > \"$out/user-password\"\n"
        };
        let mut generator_decl = json!({
            "share": s["share"],
            "files": {
                "user-password": { "deploy": false },
                "user-password-hash": { "neededFor": "users" },
            },
            "runtimeInputs": ["xkcdpass", "mkpasswd"],
            "script": format!("{source}mkpasswd -s -m sha-512 < \"$out/user-password\" | tr -d '\\n' > \"$out/user-password-hash\"\n"),
        });
        if prompt {
            generator_decl["prompts"] = json!({ "user-password": {
                "description": format!("Password of user '{user}' (leave empty to generate one)"),
                "type": "hidden",
            } });
        }
        json!({ "clan": { "core": {
            "vars": { "generators": { &generator: generator_decl } },
            "users": { user: {
                "regularUser": s["regularUser"],
                "groups": s["groups"],
                "authorizedKeys": s["openssh"]["authorizedKeys"]["keys"],
                "passwordHash": { "generator": generator, "file": "user-password-hash" },
            } },
        } } })
    }
}
