//! `init`: a new clan in a directory.

use std::path::Path;

use clan_core::ClanDir;

use crate::error::Result;

/// Creates a clan in `dir` (made if missing) named `name`, else after the
/// directory (characters a clan name cannot hold become '-').
pub fn init(dir: &Path, name: Option<&str>, domain: &str) -> Result<(ClanDir, String)> {
    let name = match name {
        Some(n) => n.to_string(),
        None => std::path::absolute(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map(|n| {
                n.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| "my-clan".into()),
    };
    let clan = ClanDir::init(dir, &name, domain)?;
    Ok((clan, name))
}
