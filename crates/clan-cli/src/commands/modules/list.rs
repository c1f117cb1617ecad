//! `clan modules list [--json]`

use clap::Args;
use serde_json::json;

use crate::cli::Global;
use crate::error::Result;
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let clan = super::super::open_clan(g)?;
    let modules: Vec<_> = clan.registry.all().collect();
    if o.json {
        let list: Vec<_> = modules
            .iter()
            .map(|m| json!({
                "name": m.name, "builtin": m.is_builtin(), "description": m.manifest.description,
                "categories": m.manifest.categories, "roles": m.roles.keys().collect::<Vec<_>>(),
            }))
            .collect();
        output::json(&list);
    } else {
        let rows: Vec<Vec<String>> = modules
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    if m.is_builtin() {
                        "built-in".into()
                    } else {
                        "clan".into()
                    },
                    m.roles.keys().cloned().collect::<Vec<_>>().join(","),
                    m.manifest.description.clone(),
                ]
            })
            .collect();
        output::table(&["NAME", "SOURCE", "ROLES", "DESCRIPTION"], &rows);
    }
    Ok(())
}
