//! `hello-world`: an example with two roles, to learn how instances, roles and
//! settings fit together.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Builtin, InstanceContext, License, ServiceMeta, ServiceModule, manifest, role};
use crate::options::build::*;

pub struct HelloWorld;

impl Builtin for HelloWorld {
    fn module(&self) -> ServiceModule {
        ServiceModule {
            name: "hello-world".into(),
            manifest: manifest(
                "hello-world",
                "An example service: greeters greet every listener of the instance",
                &["Utility"],
                "Each greeter machine gets a file /etc/hello-world/<instance> that greets the listeners by name.",
            ).with_service(ServiceMeta { display_name: Some("Hello world".into()), svg_icon: Some(super::letter_icon('H', "#6a8f3a")), license: vec![License::spdx("MIT", "MIT License")], support_level: Some("experimental".into()), backup_description: Some("Nothing: the greeting is configuration.".into()), ..ServiceMeta::default() }),
            roles: BTreeMap::from([
                // Clan's example roles: /etc/hello says "<greeting> World!".
                ("morning".into(), role("A morning greeting machine", greeting("Good morning"))),
                ("evening".into(), role("An evening greeting machine", greeting("Good evening"))),
                (
                    "greeter".into(),
                    role(
                        "Greets the listeners",
                        group([(
                            "greeting",
                            opt(str())
                                .default("Hello")
                                .desc("The word to greet with")
                                .node(),
                        )]),
                    ),
                ),
                (
                    "listener".into(),
                    role(
                        "Is greeted",
                        group([(
                            "name",
                            opt(null_or(str()))
                                .default(Value::Null)
                                .desc("Name to be greeted by; the machine's name when null")
                                .node(),
                        )]),
                    ),
                ),
            ]),
            origin: super::Origin::Builtin,
        }
    }

    fn per_instance(&self, ctx: &InstanceContext<'_>) -> Value {
        if matches!(ctx.role, "morning" | "evening") {
            let greeting = ctx.settings["greeting"].as_str().unwrap_or("Hello");
            return json!({ "environment": { "etc": { "hello": { "text": format!("{greeting} World!") } } } });
        }
        if ctx.role != "greeter" {
            return json!({});
        }
        let greeting = ctx.settings["greeting"].as_str().unwrap_or("Hello");
        let names: Vec<String> = ctx
            .members("listener")
            .map(|(machine, s)| s["name"].as_str().unwrap_or(machine).to_string())
            .collect();
        let text = names
            .iter()
            .map(|n| format!("{greeting}, {n}!\n"))
            .collect::<String>();
        json!({ "environment": { "etc": { format!("hello-world/{}", ctx.instance_name): { "text": text } } } })
    }
}

fn greeting(default: &str) -> crate::options::Group {
    group([(
        "greeting",
        opt(str())
            .default(default)
            .desc("The greeting to use")
            .node(),
    )])
}
