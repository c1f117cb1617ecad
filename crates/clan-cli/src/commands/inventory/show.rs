//! `clan inventory show [MACHINE] [--json]`

use clap::Args;
use serde_json::Value;

use clan_core::ResolvedMachine;

use crate::cli::Global;
use crate::error::Result;
use crate::output;

#[derive(Debug, Args)]
pub struct Opts {
    /// One machine; default: all
    pub machine: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Global, o: Opts) -> Result {
    let selected: Vec<String> = o.machine.iter().cloned().collect();
    let fleet = super::super::fleet_of(g, &selected)?;
    if o.json {
        match &o.machine {
            Some(m) => output::json(fleet.machine(m)?),
            None => output::json(&fleet.all),
        }
        return Ok(());
    }
    for (i, m) in fleet.all.values().enumerate() {
        if i > 0 {
            println!();
        }
        print_machine(m);
    }
    Ok(())
}

fn print_machine(m: &ResolvedMachine) {
    println!("{} ({})", m.name, m.machine_class);
    if let Some(d) = &m.description {
        println!("  description: {d}");
    }
    println!("  tags: {}", m.tags.join(", "));
    println!(
        "  target: {}",
        m.deploy.target_host.as_deref().unwrap_or("(default)")
    );
    if !m.instances.is_empty() {
        println!("  instances:");
        for a in &m.instances {
            println!(
                "    {} ({}): role {}  {}",
                a.instance,
                a.module,
                a.role,
                compact(&a.settings)
            );
        }
    }
    let core = &m.clan_core;
    if !core.state.is_empty() {
        println!("  state:");
        for (name, s) in &core.state {
            let mut parts = Vec::new();
            if !s.folders.is_empty() {
                parts.push(format!("folders {}", s.folders.join(", ")));
            }
            if !s.postgres_databases.is_empty() {
                parts.push(format!("databases {}", s.postgres_databases.join(", ")));
            }
            if !s.services.is_empty() {
                parts.push(format!("services {}", s.services.join(", ")));
            }
            println!("    {name}: {}", parts.join("; "));
        }
    }
    if !core.vars.generators.is_empty() {
        println!("  vars generators:");
        for (name, gen_decl) in &core.vars.generators {
            let files: Vec<String> = gen_decl
                .files
                .iter()
                .map(|(f, d)| {
                    if d.secret {
                        format!("{f} (secret)")
                    } else {
                        f.clone()
                    }
                })
                .collect();
            println!("    {name}: {}", files.join(", "));
        }
    }
    if !core.backups.providers.is_empty() {
        println!("  backup providers:");
        for (name, p) in &core.backups.providers {
            println!("    {name} ({})", p.kind());
        }
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
