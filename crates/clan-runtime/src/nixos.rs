//! NixOS machines, on the machine: the system profile's generations, and
//! activations that undo themselves when the admin cannot confirm them.
//!
//! An activation runs in a process of its own (a transient systemd unit, so that
//! neither the SSH session ending nor `switch-to-configuration` restarting sshd
//! stops it), steered by files in [`DIR`]:
//!
//! ```text
//! <id>.json      what to activate and how far it is (written atomically)
//! <id>.pending   exists while the activation waits for the admin's confirmation
//! <id>.log       what the activation printed
//! lock           held by the running activation
//! ```
//!
//! At every step the system profile names a generation that was activated
//! before or is being activated now: the new generation is added (`nix-env
//! --set`), then switched to; when the switch fails, or no confirmation removes
//! `<id>.pending` within the timeout (the new configuration cut the machine off),
//! the previous generation is switched to again and the new one deleted. A killed
//! activation leaves `<id>.json` in a non-final phase; the next request finds the
//! lock free and marks it failed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use clan_core::process::Cmd;

pub const PROFILE: &str = "/nix/var/nix/profiles/system";
pub const DIR: &str = "/var/lib/clan/activation";
const CURRENT_SYSTEM: &str = "/run/current-system";

type Result<T> = std::result::Result<T, String>;

/// One generation of the system profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Generation {
    pub number: u32,
    /// When it was made (local time of the machine, as nix-env lists it).
    pub date: String,
    pub current: bool,
    /// The system it activates.
    pub path: Option<String>,
}

/// What to activate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// A system in the store (copied there before): a new generation.
    System(String),
    /// A generation of the profile (`machines rollback`).
    Generation(u32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub target: Target,
    /// Seconds the admin has to confirm over a new connection; `None`: no
    /// confirmation, no automatic rollback (`--no-rollback`).
    pub confirm_timeout: Option<u64>,
}

/// How far an activation is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// Waiting for its process, or switching.
    Activating,
    /// Switched; rolled back unless confirmed before `deadline` (Unix seconds).
    AwaitingConfirmation { deadline: i64 },
    /// Switched and kept (confirmed, or no confirmation asked for).
    Active,
    /// The switch failed; the previous generation is active again (if any).
    Failed {
        error: String,
        rolled_back_to: Option<u32>,
    },
    /// No confirmation came in time: the previous generation is active again.
    RolledBack { to: Option<u32> },
}

impl Phase {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Active | Self::Failed { .. } | Self::RolledBack { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub id: String,
    pub spec: Spec,
    /// nix-env, as the request found it (the activation's unit has another PATH).
    pub nix_env: String,
    /// The generation active before.
    pub previous: Option<u32>,
    /// The generation this activation switched to.
    pub generation: Option<u32>,
    pub phase: Phase,
    /// The activation's process, once it runs.
    pub pid: Option<u32>,
    /// When the request was made (Unix seconds).
    pub requested: i64,
}

/// What an activation request found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Started {
    /// The system is the active one already: nothing was done.
    Unchanged { generation: Option<u32> },
    /// An activation runs as `id`.
    Started { id: String },
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn status_file(id: &str) -> PathBuf {
    Path::new(DIR).join(format!("{id}.json"))
}

fn pending_file(id: &str) -> PathBuf {
    Path::new(DIR).join(format!("{id}.pending"))
}

fn log_file(id: &str) -> PathBuf {
    Path::new(DIR).join(format!("{id}.log"))
}

/// Activation ids: made here, checked when they come back from the admin.
fn valid_id(id: &str) -> Result<()> {
    if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(())
    } else {
        Err(format!("'{id}' is not an activation id"))
    }
}

pub fn read_status(id: &str) -> Result<Status> {
    valid_id(id)?;
    let path = status_file(id);
    let text = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn write_status(s: &Status) -> Result<()> {
    crate::apply::write_file(
        &status_file(&s.id),
        &serde_json::to_vec_pretty(s).expect("serialisable"),
        0o600,
    )
}

fn run(cmd: Cmd) -> Result<String> {
    cmd.run()
        .map(|o| o.stdout_string())
        .map_err(|e| e.to_string())
}

/// A program on the PATH, or where NixOS and Nix installations keep it.
fn find_program(name: &str) -> Result<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain([
            "/run/current-system/sw/bin",
            "/nix/var/nix/profiles/default/bin",
        ])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .ok_or_else(|| format!("{name} is not installed here (is this a NixOS machine?)"))
}

/// The generation a profile link names (`system-12-link` → 12).
fn generation_of(link: &Path) -> Option<u32> {
    let target = std::fs::read_link(link).ok()?;
    let name = target.file_name()?.to_str()?;
    name.strip_prefix("system-")?
        .strip_suffix("-link")?
        .parse()
        .ok()
}

fn current_generation() -> Option<u32> {
    generation_of(Path::new(PROFILE))
}

fn generation_link(n: u32) -> PathBuf {
    Path::new(PROFILE).with_file_name(format!("system-{n}-link"))
}

/// The system's generations, oldest first.
pub fn generations() -> Result<Vec<Generation>> {
    let nix_env = find_program("nix-env")?;
    if std::fs::symlink_metadata(PROFILE).is_err() {
        return Ok(Vec::new());
    }
    let out = run(Cmd::new(nix_env).args(["-p", PROFILE, "--list-generations"]))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let number: u32 = words.next()?.parse().ok()?;
            let date = [words.next()?, words.next()?].join(" ");
            let current = words.next() == Some("(current)");
            let path = std::fs::read_link(generation_link(number))
                .ok()
                .map(|p| p.display().to_string());
            Some(Generation {
                number,
                date,
                current,
                path,
            })
        })
        .collect())
}

/// Takes the activation lock, or says which activation holds it.
fn try_lock() -> Result<File> {
    std::fs::create_dir_all(DIR).map_err(|e| format!("creating {DIR}: {e}"))?;
    let path = Path::new(DIR).join("lock");
    let file = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err("another activation is running on this machine; try again when it ended".into())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(format!("locking {}: {e}", path.display())),
    }
}

/// Activations not finished: a live one refuses a new request; one whose process
/// died (the lock is free) is marked failed.
fn settle_unfinished() -> Result<()> {
    let Ok(read) = std::fs::read_dir(DIR) else {
        return Ok(());
    };
    for e in read.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        let Ok(mut s) = read_status(id) else {
            continue;
        };
        if s.phase.is_final() {
            continue;
        }
        // Its process has not taken over yet.
        if s.pid.is_none() && now() - s.requested < 60 {
            return Err(format!(
                "activation {id} is starting on this machine; try again in a minute"
            ));
        }
        s.phase = Phase::Failed {
            error: "the activation's process ended before it finished".into(),
            rolled_back_to: None,
        };
        write_status(&s)?;
    }
    Ok(())
}

/// The admin's request: starts an activation of `spec` in a process of its own,
/// unless the system is the active one already.
pub fn start(spec: Spec) -> Result<Started> {
    let nix_env = find_program("nix-env")?;
    let current = current_generation();
    let toplevel = match &spec.target {
        Target::System(path) => {
            let switch = Path::new(path).join("bin/switch-to-configuration");
            if !path.starts_with("/nix/store/") || !switch.is_file() {
                return Err(format!(
                    "{path} is not a system to activate (no bin/switch-to-configuration in the store)"
                ));
            }
            path.clone()
        }
        Target::Generation(n) => std::fs::read_link(generation_link(*n))
            .map_err(|_| format!("the system profile has no generation {n}"))?
            .display()
            .to_string(),
    };
    let active = std::fs::canonicalize(CURRENT_SYSTEM).ok();
    let in_profile = std::fs::canonicalize(PROFILE).ok();
    let wanted = std::fs::canonicalize(&toplevel).ok();
    if wanted.is_some() && active == wanted && in_profile == wanted {
        return Ok(Started::Unchanged {
            generation: current,
        });
    }
    let lock = try_lock()?;
    settle_unfinished()?;
    let id = format!(
        "{}-{:08x}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S"),
        rand_u32()
    );
    write_status(&Status {
        id: id.clone(),
        spec,
        nix_env,
        previous: current,
        generation: None,
        phase: Phase::Activating,
        pid: None,
        requested: now(),
    })?;
    drop(lock);
    spawn_activation(&id)?;
    Ok(Started::Started { id })
}

/// Random bits for ids (std's hasher keys are random per process).
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id()) as u32
}

/// `clan __runtime --activate ID` in a transient systemd unit (or, without
/// systemd, a process of its own session) that outlives the SSH session.
fn spawn_activation(id: &str) -> Result<()> {
    let me = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let log = log_file(id);
    if Path::new("/run/systemd/system").is_dir() {
        run(Cmd::new("systemd-run")
            .arg(format!("--unit=clan-activate-{id}"))
            .args(["--collect", "--quiet", "--service-type=exec"])
            .arg(format!(
                "--property=StandardOutput=append:{}",
                log.display()
            ))
            .arg(format!("--property=StandardError=append:{}", log.display()))
            .arg("--")
            .arg(&me)
            .args(["__runtime", "--activate", id]))?;
        return Ok(());
    }
    use std::os::unix::process::CommandExt;
    let out = File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    std::process::Command::new(me)
        .args(["__runtime", "--activate", id])
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the activation: {e}"))?;
    Ok(())
}

/// The activation's own process.
pub fn activate(id: &str) -> Result<()> {
    let lock = File::options()
        .write(true)
        .open(Path::new(DIR).join("lock"))
        .map_err(|e| format!("opening the activation lock: {e}"))?;
    lock.lock().map_err(|e| format!("locking: {e}"))?;
    let mut s = read_status(id)?;
    if s.phase != Phase::Activating {
        return Err(format!("activation {id} is not waiting to run"));
    }
    s.pid = Some(std::process::id());
    write_status(&s)?;
    let nix_env = s.nix_env.clone();
    let profile = |args: &[&str]| run(Cmd::new(&nix_env).args(["-p", PROFILE]).args(args));
    let switched = match &s.spec.target {
        Target::System(path) => profile(&["--set", path]),
        Target::Generation(n) => profile(&["--switch-generation", &n.to_string()]),
    }
    .and_then(|_| {
        s.generation = current_generation();
        switch_to_configuration()
    });
    let created = matches!(s.spec.target, Target::System(_)) && s.generation != s.previous;
    if let Err(error) = switched {
        println!("activation failed: {error}");
        let rolled_back_to = roll_back(&s, created, &profile);
        s.phase = Phase::Failed {
            error,
            rolled_back_to,
        };
        return write_status(&s);
    }
    let Some(timeout) = s.spec.confirm_timeout else {
        s.phase = Phase::Active;
        return write_status(&s);
    };
    let pending = pending_file(id);
    File::create(&pending).map_err(|e| format!("creating {}: {e}", pending.display()))?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    s.phase = Phase::AwaitingConfirmation {
        deadline: now() + timeout as i64,
    };
    write_status(&s)?;
    println!(
        "activated generation {:?}; waiting {timeout} s for the admin's confirmation",
        s.generation
    );
    while Instant::now() < deadline {
        if !pending.exists() {
            s.phase = Phase::Active;
            println!("confirmed");
            return write_status(&s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(&pending);
    println!("no confirmation in {timeout} s: rolling back");
    s.phase = Phase::RolledBack {
        to: roll_back(&s, created, &profile),
    };
    write_status(&s)
}

/// The active system's `switch-to-configuration switch`, its output in the log.
fn switch_to_configuration() -> Result<()> {
    let switch = Path::new(PROFILE).join("bin/switch-to-configuration");
    let status = std::process::Command::new(&switch)
        .arg("switch")
        .env("NIXOS_INSTALL_BOOTLOADER", "0")
        .status()
        .map_err(|e| format!("running {}: {e}", switch.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("switch-to-configuration switch failed ({status})"))
    }
}

/// Back to the generation active before (when there was one): switched to and
/// activated again; a generation this activation created is deleted.
fn roll_back(
    s: &Status,
    created: bool,
    profile: &dyn Fn(&[&str]) -> Result<String>,
) -> Option<u32> {
    let previous = s.previous?;
    let back = profile(&["--switch-generation", &previous.to_string()])
        .and_then(|_| switch_to_configuration());
    if let Err(e) = back {
        println!("rolling back to generation {previous} failed: {e}");
        return None;
    }
    if created && let Some(new) = s.generation {
        let _ = profile(&["--delete-generations", &new.to_string()]);
    }
    println!("rolled back to generation {previous}");
    Some(previous)
}

/// Waits (up to `max`) until the activation is final or awaits confirmation.
pub fn wait(id: &str, max: Duration) -> Result<Status> {
    wait_until(id, max, |p| {
        p.is_final() || matches!(p, Phase::AwaitingConfirmation { .. })
    })
}

fn wait_until(id: &str, max: Duration, done: impl Fn(&Phase) -> bool) -> Result<Status> {
    let until = Instant::now() + max;
    loop {
        let s = read_status(id)?;
        if done(&s.phase) || Instant::now() >= until {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The admin's confirmation, over a new connection: the activation keeps its
/// generation.
pub fn confirm(id: &str) -> Result<Status> {
    let s = read_status(id)?;
    if !matches!(s.phase, Phase::AwaitingConfirmation { .. }) {
        return Ok(s);
    }
    match std::fs::remove_file(pending_file(id)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("confirming: {e}")),
    }
    wait_until(id, Duration::from_secs(10), Phase::is_final)
}

/// The last lines of an activation's log.
pub fn log_tail(id: &str, lines: usize) -> Vec<String> {
    let text = std::fs::read_to_string(log_file(id)).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_ids_from_the_admin_are_checked() {
        assert!(valid_id("20261201T070000-0a1b2c3d").is_ok());
        for bad in ["", "../etc/passwd", "a/b", "x y", &"a".repeat(65)] {
            assert!(valid_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generations_are_read_from_profile_links() {
        let tmp = tempfile::tempdir().unwrap();
        let link = tmp.path().join("system");
        std::os::unix::fs::symlink("system-12-link", &link).unwrap();
        assert_eq!(generation_of(&link), Some(12));
        std::os::unix::fs::symlink("elsewhere", tmp.path().join("other")).unwrap();
        assert_eq!(generation_of(&tmp.path().join("other")), None);
    }

    #[test]
    fn phases_say_whether_they_are_final() {
        assert!(!Phase::Activating.is_final());
        assert!(!Phase::AwaitingConfirmation { deadline: 0 }.is_final());
        assert!(Phase::RolledBack { to: Some(1) }.is_final());
        let json = serde_json::to_value(Phase::RolledBack { to: Some(3) }).unwrap();
        assert_eq!(json, serde_json::json!({"phase": "rolled-back", "to": 3}));
    }
}
