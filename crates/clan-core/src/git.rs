//! Committing what clan changes in the clan's git repository.

use std::path::Path;

use crate::process::{Cmd, CommandError};

#[derive(Debug, thiserror::Error)]
#[error("git: {0}")]
pub struct GitError(#[from] CommandError);

/// `git` in `dir`, with an identity when the user has none configured (so that a
/// fresh machine can still commit), and without reading the user's hooks' input.
fn git(dir: &Path) -> Cmd {
    let mut cmd = Cmd::new("git").arg("-C").arg(dir);
    let has_identity = Cmd::new("git")
        .arg("-C")
        .arg(dir)
        .args(["config", "user.email"])
        .run()
        .is_ok();
    if !has_identity {
        cmd = cmd.args(["-c", "user.name=clan", "-c", "user.email=clan@localhost"]);
    }
    cmd
}

pub fn is_repo(dir: &Path) -> bool {
    Cmd::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--git-dir"])
        .run()
        .is_ok()
}

pub fn init(dir: &Path) -> Result<(), GitError> {
    Cmd::new("git")
        .args(["init", "--quiet", "--initial-branch=main"])
        .arg(dir)
        .run()?;
    Ok(())
}

pub fn commit_all(dir: &Path, message: &str) -> Result<(), GitError> {
    git(dir).args(["add", "--all"]).run()?;
    git(dir)
        .args(["commit", "--quiet", "--no-verify", "-m", message])
        .run()?;
    Ok(())
}

/// Commits the given paths (added, changed or removed) if the clan is a git repo
/// and they changed. Returns whether a commit was made.
pub fn commit_paths(dir: &Path, paths: &[&Path], message: &str) -> Result<bool, GitError> {
    if !is_repo(dir) {
        return Ok(false);
    }
    git(dir).args(["add", "--all", "--"]).args(paths).run()?;
    match git(dir)
        .args(["diff", "--cached", "--quiet", "--"])
        .args(paths)
        .run()
    {
        Ok(_) => return Ok(false),
        Err(CommandError::Failed { code: 1, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    git(dir)
        .args(["commit", "--quiet", "--no-verify", "-m", message, "--"])
        .args(paths)
        .run()?;
    Ok(true)
}
