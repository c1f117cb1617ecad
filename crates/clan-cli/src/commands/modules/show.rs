//! `clan modules show NAME [--json]`

use clap::Args;
use serde_json::{Map, Value, json};

use clan_core::names::did_you_mean;

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    /// The module's name
    pub name: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let clan = super::super::open_clan(g)?;
    let Some(module) = clan
        .registry
        .lookup(&o.name, None)
        .or_else(|| clan.registry.lookup(&o.name, Some("self")))
    else {
        let names: Vec<&str> = clan.registry.all().map(|m| m.name.as_str()).collect();
        let hint = did_you_mean(&o.name, names.iter().copied());
        return Err(CliError::Usage(format!(
            "no module '{}'.{} Available: {}",
            o.name,
            if hint.is_empty() {
                String::new()
            } else {
                format!(" Did you mean {}?", hint.join(", "))
            },
            names.join(", ")
        )));
    };
    let mut roles = Map::new();
    for (name, role) in &module.roles {
        let schema = module
            .role_schema(name)
            .map_err(|source| clan_core::Error::Schema {
                module: module.name.clone(),
                role: name.clone(),
                source,
            })?;
        roles.insert(
            name.clone(),
            json!({ "description": role.description, "settings": schema }),
        );
    }
    let doc = json!({ "name": module.name, "builtin": module.is_builtin(), "manifest": module.manifest, "roles": roles });
    if o.json {
        output::json(&doc);
        return Ok(());
    }
    println!(
        "{} ({})",
        module.name,
        if module.is_builtin() {
            "built-in"
        } else {
            "clan module"
        }
    );
    println!("  {}", module.manifest.description);
    println!("  categories: {}", module.manifest.categories.join(", "));
    if !module.manifest.readme.is_empty() {
        println!("\n  {}", module.manifest.readme);
    }
    for (name, role) in roles {
        println!(
            "\nrole {name}: {}",
            role["description"].as_str().unwrap_or("")
        );
        let schema = &role["settings"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (opt, s) in schema["properties"].as_object().into_iter().flatten() {
            let default = s
                .get("default")
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            let req = if required.contains(&opt.as_str()) {
                " (required)"
            } else {
                ""
            };
            println!(
                "  {opt}{req}{default}: {}",
                s.get("description").and_then(Value::as_str).unwrap_or("")
            );
        }
    }
    Ok(())
}
