//! `clan vars ...`

pub mod check;
pub mod fix;
pub mod generate;
pub mod get;
pub mod keygen;
pub mod list;
pub mod set;
pub mod upload;

use crate::cli::Global;
use crate::error::Result;

pub use clan_ops::Fleet;

/// Every machine of the clan resolved, `names` selected (all when empty).
pub fn fleet(g: &Global, names: &[String]) -> Result<Fleet> {
    Fleet::load(
        super::clan_dir(g)?,
        names,
        crate::render::reporter().as_ref(),
    )
}
