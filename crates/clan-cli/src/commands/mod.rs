//! One module per subcommand, each with its `Opts` and a `run`.

pub mod agent;
pub mod backups;
pub mod completions;
pub mod config;
pub mod init;
pub mod inventory;
pub mod machines;
pub mod modules;
pub mod runtime;
pub mod schema;
pub mod show;
pub mod ui;
pub mod vars;

use std::path::Path;

use clan_core::{Clan, ClanDir};

use crate::cli::{
    AgentCommand, AgentTokenCommand, BackupsCommand, Cli, Command, Global, InventoryCommand,
    MachinesCommand, ModulesCommand, SchemaCommand, VarsCommand,
};
use crate::error::Result;

pub fn run(cli: Cli) -> Result {
    let g = &cli.global;
    match cli.command {
        Command::Init(o) => init::run(o),
        Command::Config(o) => config::run(g, o),
        Command::Show(o) => show::run(g, o),
        Command::Machines(MachinesCommand::List(o)) => machines::list::run(g, o),
        Command::Machines(MachinesCommand::Create(o)) => machines::create::run(g, o),
        Command::Machines(MachinesCommand::Delete(o)) => machines::delete::run(g, o),
        Command::Machines(MachinesCommand::Update(o)) => machines::update::run(g, o),
        Command::Machines(MachinesCommand::Generations(o)) => machines::generations::run(g, o),
        Command::Machines(MachinesCommand::Rollback(o)) => machines::rollback::run(g, o),
        Command::Backups(BackupsCommand::Create(o)) => backups::create::run(g, o),
        Command::Backups(BackupsCommand::List(o)) => backups::list::run(g, o),
        Command::Backups(BackupsCommand::Restore(o)) => backups::restore::run(g, o),
        Command::Backups(BackupsCommand::Check(o)) => backups::check::run(g, o),
        Command::Backups(BackupsCommand::Drill(o)) => backups::drill::run(g, o),
        Command::Backups(BackupsCommand::Status(o)) => backups::status::run(g, o),
        Command::Backups(BackupsCommand::Forget(o)) => backups::forget::run(g, o),
        Command::Backups(BackupsCommand::Prune(o)) => backups::prune::run(g, o),
        Command::Vars(VarsCommand::Keygen(o)) => vars::keygen::run(g, o),
        Command::Vars(VarsCommand::Generate(o)) => vars::generate::run(g, o),
        Command::Vars(VarsCommand::List(o)) => vars::list::run(g, o),
        Command::Vars(VarsCommand::Get(o)) => vars::get::run(g, o),
        Command::Vars(VarsCommand::Set(o)) => vars::set::run(g, o),
        Command::Vars(VarsCommand::Check(o)) => vars::check::run(g, o),
        Command::Vars(VarsCommand::Fix(o)) => vars::fix::run(g, o),
        Command::Vars(VarsCommand::Upload(o)) => vars::upload::run(g, o),
        Command::Inventory(InventoryCommand::Show(o)) => inventory::show::run(g, o),
        Command::Modules(ModulesCommand::List(o)) => modules::list::run(g, o),
        Command::Modules(ModulesCommand::Show(o)) => modules::show::run(g, o),
        Command::Schema(SchemaCommand::Module(o)) => schema::module::run(o),
        Command::Agent(AgentCommand::Serve(o)) => agent::serve::run(g, o),
        Command::Agent(AgentCommand::Token(AgentTokenCommand::Create(o))) => {
            agent::token::create(o)
        }
        Command::Ui(o) => ui::run(g, o),
        Command::Completions(o) => completions::run(o),
        Command::Runtime(o) => runtime::run(o),
    }
}

/// The clan directory from `--dir`, `$CLAN_DIR` or the current directory's parents.
pub fn clan_dir(g: &Global) -> Result<ClanDir> {
    let env = std::env::var_os("CLAN_DIR").filter(|v| !v.is_empty());
    let cwd = std::env::current_dir()
        .map_err(|e| crate::error::CliError::Usage(format!("no current directory: {e}")))?;
    Ok(ClanDir::find(
        g.dir.as_deref(),
        env.as_deref().map(Path::new),
        &cwd,
    )?)
}

/// Opens the clan and prints its warnings.
pub fn open_clan(g: &Global) -> Result<Clan> {
    Ok(Clan::open(clan_dir(g)?)?)
}

/// The clan with only `names` resolved (all when empty), warnings rendered.
pub fn fleet_of(g: &Global, names: &[String]) -> Result<clan_ops::Fleet> {
    clan_ops::Fleet::load_only(clan_dir(g)?, names, crate::render::reporter().as_ref())
}
