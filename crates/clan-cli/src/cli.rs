//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

/// Declarative self-hosting: describe your machines, their services and the data
/// they must not lose in one git repository; deploy, generate secrets, back up and
/// restore.
#[derive(Debug, Parser)]
#[command(name = "clan", version, max_term_width = 100, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The clan directory. Default: $CLAN_DIR, else the nearest parent of the current
    /// directory holding clan.nix or inventory.json
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new clan: clan.nix, inventory.json, machines/, modules/, a git repository
    Init(commands::init::Opts),
    /// Show or set a machine's options (inventory.json or machines/<m>/configuration.json)
    Config(commands::config::Opts),
    /// Show the clan's name, domain and description
    Show(commands::show::Opts),
    /// List, create and delete machines
    #[command(subcommand, visible_alias = "m")]
    Machines(MachinesCommand),
    /// Back up and restore machines' state
    #[command(subcommand, visible_alias = "b")]
    Backups(BackupsCommand),
    /// Generated and prompted values; secrets encrypted with age in the clan
    #[command(subcommand, visible_alias = "va")]
    Vars(VarsCommand),
    /// Show the resolved configuration of machines
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// List and inspect service modules and their roles' settings
    #[command(subcommand)]
    Modules(ModulesCommand),
    /// JSON Schemas of option declarations
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// The machine agent: SelfPrivacy's API on this machine
    #[command(subcommand)]
    Agent(AgentCommand),
    /// The whole clan in a browser (serves a web UI on this machine)
    Ui(commands::ui::Opts),
    /// Print shell completions
    Completions(commands::completions::Opts),
    /// The machine runtime (run by the admin's clan over SSH, and by backup timers)
    #[command(name = "__runtime", hide = true)]
    Runtime(commands::runtime::Opts),
}

#[derive(Debug, Subcommand)]
pub enum MachinesCommand {
    /// List the machines (sorted by name)
    List(commands::machines::list::Opts),
    /// Add a machine to inventory.json and commit
    Create(commands::machines::create::Opts),
    /// Remove a machine from inventory.json, with its directory and vars, and commit
    Delete(commands::machines::delete::Opts),
    /// Bring machines to their configuration over SSH: Linux machines get runtime,
    /// secrets, users, borg repositories and backup timers; NixOS machines a system
    /// built, copied, activated and confirmed (rolled back by itself otherwise)
    Update(commands::machines::update::Opts),
    /// The system generations of NixOS machines
    Generations(commands::machines::generations::Opts),
    /// Activate a NixOS machine's previous generation (confirmed like an update)
    Rollback(commands::machines::rollback::Opts),
}

#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// Back up all states of a machine, to every provider (or one)
    Create(commands::backups::create::Opts),
    /// List a machine's backups, newest last
    List(commands::backups::list::Opts),
    /// Restore a backup: safety backup, stop services, exact restore, start services
    Restore(commands::backups::restore::Opts),
    /// Verify the repositories
    Check(commands::backups::check::Opts),
    /// Remove old backups (never the newest)
    Prune(commands::backups::prune::Opts),
    /// Remove one backup
    Forget(commands::backups::forget::Opts),
    /// Prove the newest backups restore: restore each state into a scratch directory and check it
    Drill(commands::backups::drill::Opts),
    /// Per machine, provider and state: last backup, last failure, last drill, and a verdict
    Status(commands::backups::status::Opts),
}

#[derive(Debug, Subcommand)]
pub enum VarsCommand {
    /// Create your admin age key (if missing) and register its public key in the clan
    Keygen(commands::vars::keygen::Opts),
    /// Run the generators that are missing or outdated (and what depends on them)
    Generate(commands::vars::generate::Opts),
    /// List a machine's vars (secrets shown as ********)
    List(commands::vars::list::Opts),
    /// Print one var
    Get(commands::vars::get::Opts),
    /// Set one var from stdin, or typed on the terminal (hidden and confirmed for secrets)
    Set(commands::vars::set::Opts),
    /// Exit 1 and list what is missing, outdated or not encrypted to its current readers
    Check(commands::vars::check::Opts),
    /// Re-encrypt secrets to their current readers (after adding an admin or a machine)
    Fix(commands::vars::fix::Opts),
    /// Write a machine's key and decrypted deployable secrets into a directory
    Upload(commands::vars::upload::Opts),
}

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// The resolved configuration: class, tags, instances and roles with their final
    /// settings, state, vars generators, backup providers
    Show(commands::inventory::show::Opts),
}

#[derive(Debug, Subcommand)]
pub enum ModulesCommand {
    /// List the service modules: built-in and the clan's own
    List(commands::modules::list::Opts),
    /// Show a module's manifest, roles and their settings schemas
    Show(commands::modules::show::Opts),
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Print the JSON Schema of a NixOS-style module file's options
    Module(commands::schema::module::Opts),
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Serve the API in the foreground
    Serve(commands::agent::serve::Opts),
    /// Device tokens
    #[command(subcommand)]
    Token(AgentTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentTokenCommand {
    /// Create a token for a new device and print it
    Create(commands::agent::token::Opts),
}
