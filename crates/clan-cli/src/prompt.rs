//! Asking people for values on the terminal. Hidden input never echoes and is
//! asked twice; every question goes to the terminal, never to stdout.

use std::io::{BufRead, IsTerminal, Read, Write};

/// How many times a mismatching confirmation is asked again.
const TRIES: usize = 3;

pub fn on_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// A hidden value, typed twice.
pub fn hidden_confirmed(label: &str) -> std::io::Result<Vec<u8>> {
    for _ in 0..TRIES {
        let first = rpassword::prompt_password(format!("{label}: "))?;
        let second = rpassword::prompt_password(format!("{label} (again): "))?;
        if first == second {
            return Ok(first.into_bytes());
        }
        say("The two entries differ; try again.")?;
    }
    Err(std::io::Error::other(format!(
        "the two entries differed {TRIES} times"
    )))
}

/// One visible line, without its newline.
pub fn line(label: &str) -> std::io::Result<Vec<u8>> {
    say_inline(&format!("{label}: "))?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
}

/// Several lines: visible ones up to end of input (Ctrl-D); hidden ones up to an
/// empty line.
pub fn multiline(label: &str, hidden: bool) -> std::io::Result<Vec<u8>> {
    if !hidden {
        say(&format!("{label} (end with Ctrl-D on an empty line):"))?;
        let mut value = Vec::new();
        std::io::stdin().lock().read_to_end(&mut value)?;
        return Ok(value);
    }
    say(&format!(
        "{label} (hidden; one line at a time, end with an empty line):"
    ))?;
    let mut value = String::new();
    loop {
        let l = rpassword::prompt_password("> ")?;
        if l.is_empty() {
            return Ok(value.into_bytes());
        }
        value.push_str(&l);
        value.push('\n');
    }
}

fn say(text: &str) -> std::io::Result<()> {
    say_inline(&format!("{text}\n"))
}

/// Writes to the terminal itself (stderr when there is none), so that stdout stays
/// clean for what a command prints.
fn say_inline(text: &str) -> std::io::Result<()> {
    match std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        Ok(mut tty) => tty.write_all(text.as_bytes()),
        Err(_) => std::io::stderr().write_all(text.as_bytes()),
    }
}
