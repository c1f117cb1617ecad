//! Fault injection for tests: with `CLAN_TEST_FAULT_AT=N` (or `N:INT`, `N:TERM`)
//! the process sends itself SIGKILL (or that signal) when it reaches its N-th
//! fault point. Fault points sit between the steps whose on-disk invariants
//! ARCHITECTURE.md lists, so tests can stop a restore at every one of them.
//! Without the variable a fault point costs one atomic increment.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::process::{Signal, getpid, kill_process};

static COUNT: AtomicU64 = AtomicU64::new(0);

fn target() -> Option<(u64, Signal)> {
    static AT: OnceLock<Option<(u64, Signal)>> = OnceLock::new();
    *AT.get_or_init(|| {
        let v = std::env::var("CLAN_TEST_FAULT_AT").ok()?;
        let (n, sig) = v.split_once(':').unwrap_or((&v, "KILL"));
        let sig = match sig {
            "INT" => Signal::INT,
            "TERM" => Signal::TERM,
            _ => Signal::KILL,
        };
        Some((n.parse().ok()?, sig))
    })
}

pub fn point() {
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some((at, sig)) = target()
        && at == n
    {
        let _ = kill_process(getpid(), sig);
    }
}
