//! Bundles the frontend (../../ui: React, react-jsonschema-form, esbuild) into
//! OUT_DIR/ui, which the server embeds: a `clan` binary needs nothing else at run
//! time. Needs node and npm when the frontend changed (`npm ci` the first time).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
    for watched in ["src", "build.mjs", "package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", ui.join(watched).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("ui");
    if !ui.join("node_modules/.bin/esbuild").exists() {
        run(
            &ui,
            "npm",
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        );
    }
    run(
        &ui,
        "node",
        &["build.mjs", out.to_str().expect("a UTF-8 path")],
    );
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).current_dir(dir).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "building the web UI: `{program} {}` in {} failed ({s})",
            args.join(" "),
            dir.display()
        ),
        Err(e) => panic!(
            "building the web UI needs {program} ({e}): install node and npm (Debian: apt-get install nodejs npm)"
        ),
    }
}
