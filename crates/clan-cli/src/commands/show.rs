//! `clan show`

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
    let clan = super::open_clan(g)?;
    let meta = &clan.inventory.meta;
    if o.json {
        output::json(&json!({
            "name": meta.name, "domain": meta.domain, "description": meta.description,
            "machines": clan.inventory.machines.len(), "instances": clan.inventory.instances.len(),
            "directory": clan.dir.root(),
        }));
    } else {
        println!("Name: {}", meta.name);
        println!(
            "Description: {}",
            meta.description.as_deref().unwrap_or("-")
        );
        println!("Domain: {}", meta.domain);
        println!("Machines: {}", clan.inventory.machines.len());
        println!("Instances: {}", clan.inventory.instances.len());
    }
    Ok(())
}
