//! The one way clan runs an external program: an argument vector (never a shell
//! string), captured output, and exit codes mapped to typed errors. Secrets go on
//! stdin, never into `args`.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("`{program}` was not found on PATH")]
    NotFound { program: String },
    #[error("`{command}` failed with exit code {code}{}", stderr_suffix(.stderr))]
    Failed {
        command: String,
        code: i32,
        stderr: String,
        stdout: String,
    },
    #[error("`{command}` was killed by signal {signal}")]
    Killed { command: String, signal: i32 },
    #[error("could not run `{command}`: {source}")]
    Io {
        command: String,
        source: std::io::Error,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim_end();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(":\n{trimmed}")
    }
}

/// Captured result of a successful run.
#[derive(Debug)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_string(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A command to run: program, arguments, environment, working directory, stdin.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    die_with_parent: bool,
    view: Option<View>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            die_with_parent: false,
            view: None,
        }
    }

    /// The program gets SIGKILL when clan dies (`setpriv --pdeathsig`), so that a
    /// killed clan leaves no `pg_restore` or script running on without its lock.
    pub fn die_with_parent(mut self) -> Self {
        self.die_with_parent = true;
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().into()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().into(), value.as_ref().into()));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Runs the program in a private view of the filesystem (see [`View`]), at its
    /// root. Needs root (CAP_SYS_ADMIN); local runs only.
    pub fn in_view(mut self, view: View) -> Self {
        self.view = Some(view);
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// The command as a person would type it, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command as one line for a POSIX shell, every word quoted:
    /// `cd DIR && env K=V PROGRAM ARGS...`. For running it on another machine, where
    /// this line is that machine's command line: the environment must not carry
    /// secrets (they go on stdin).
    pub fn to_shell(&self) -> String {
        debug_assert!(self.view.is_none(), "a view is for local runs");
        let quote = |s: &OsString| shell_quote(&s.to_string_lossy());
        let mut words: Vec<String> = Vec::new();
        if !self.env.is_empty() {
            words.push("env".into());
            for (k, v) in &self.env {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                words.push(quote(&kv));
            }
        }
        words.push(quote(&self.program));
        words.extend(self.args.iter().map(quote));
        let line = words.join(" ");
        match &self.cwd {
            Some(dir) => format!("cd {} && {line}", shell_quote(&dir.to_string_lossy())),
            None => line,
        }
    }

    /// What this command reads on stdin.
    pub fn stdin_data(&self) -> Option<&[u8]> {
        self.stdin.as_deref()
    }

    pub fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    pub fn run(&self) -> Result<Output, CommandError> {
        self.run_with(&mut |_| {})
    }

    /// Runs the command and hands each line of its stdout to `on_line` as it comes
    /// (for programs that stream progress); the output is also captured whole.
    /// stdin is written from its own thread, so a program may read and write at once.
    pub fn run_with(&self, on_line: &mut dyn FnMut(&str)) -> Result<Output, CommandError> {
        use std::io::{BufRead, Read};
        let mut command = if self.die_with_parent {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL", "--"]).arg(&self.program);
            c
        } else {
            Command::new(&self.program)
        };
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        // The directories of the view stay open until the program has started.
        let _trees = match &self.view {
            Some(view) => view
                .prepare(&mut command)
                .map_err(|source| CommandError::Io {
                    command: self.display(),
                    source,
                })?,
            None => Vec::new(),
        };
        let io_error = |source| CommandError::Io {
            command: self.display(),
            source,
        };
        let mut child = command.spawn().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                CommandError::NotFound {
                    program: self.program_name(),
                }
            } else {
                io_error(source)
            }
        })?;
        let (stdout, stderr) = std::thread::scope(|scope| {
            if let (Some(data), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
                // A program that exits without reading its input is judged by its exit code.
                scope.spawn(move || {
                    let _ = pipe.write_all(data);
                });
            }
            let mut err_pipe = child.stderr.take().expect("stderr is piped");
            let stderr = scope.spawn(move || {
                let mut buf = Vec::new();
                let _ = err_pipe.read_to_end(&mut buf);
                buf
            });
            let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
            let mut stdout = Vec::new();
            let mut line = Vec::new();
            loop {
                line.clear();
                match out.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        on_line(String::from_utf8_lossy(&line).trim_end_matches('\n'));
                        stdout.extend_from_slice(&line);
                    }
                }
            }
            (stdout, stderr.join().unwrap_or_default())
        });
        let status = child.wait().map_err(io_error)?;
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        match status.code() {
            Some(0) => Ok(Output { stdout, stderr }),
            Some(code) => Err(CommandError::Failed {
                command: self.display(),
                code,
                stderr,
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
            }),
            None => {
                use std::os::unix::process::ExitStatusExt;
                Err(CommandError::Killed {
                    command: self.display(),
                    signal: status.signal().unwrap_or(0),
                })
            }
        }
    }
}

/// Whether this process may make mount namespaces (root with CAP_SYS_ADMIN; not,
/// for example, in a container without it). Tried once, on a thread of its own
/// whose namespace ends with it.
pub fn private_mounts_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        rustix::process::geteuid().is_root()
            && std::thread::spawn(|| {
                // SAFETY: only this short-lived thread changes namespace.
                #[allow(unsafe_code)]
                unsafe {
                    rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS).is_ok()
                }
            })
            .join()
            .unwrap_or(false)
    })
}

/// A private view of the filesystem for one program: in a mount namespace of its
/// own, directories clan opened safely appear at fixed places under `root` (a
/// directory of root's). Programs that build absolute paths from their working
/// directory's name (borg extract) or that are given paths to read (borg create)
/// then never resolve them through directories that other users can change, even
/// when those users swap a folder or a parent for a link while the program runs.
/// Nothing mounted in the view is seen outside it.
#[derive(Debug, Clone)]
pub struct View {
    /// Where the view appears; the program's working directory.
    pub root: PathBuf,
    /// Each directory (typically `/proc/<pid>/fd/<n>`, with its mounts) and its
    /// place relative to `root`; an empty place is `root` itself, and then the
    /// only one. Otherwise `root` holds a private tmpfs with the places' parents.
    pub dirs: Vec<(PathBuf, PathBuf)>,
}

impl View {
    #[allow(unsafe_code)] // `pre_exec` is the only way to act between fork and exec.
    fn prepare(&self, command: &mut Command) -> std::io::Result<Vec<rustix::fd::OwnedFd>> {
        use rustix::fd::{AsRawFd, BorrowedFd};
        use rustix::mount::{
            MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, mount, mount_change,
            move_mount, open_tree,
        };
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::process::CommandExt;
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
        let whole_root =
            matches!(self.dirs.as_slice(), [(_, place)] if place.as_os_str().is_empty());
        let mut trees = Vec::new();
        let mut targets = Vec::new();
        let mut parents = std::collections::BTreeSet::new();
        for (dir, place) in &self.dirs {
            // A detached copy of the directory's mounts, taken here, where the
            // descriptor path means the directory clan opened.
            trees.push(open_tree(
                rustix::fs::CWD,
                dir.as_path(),
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_RECURSIVE,
            )?);
            targets.push(c(&self.root.join(place))?);
            if !whole_root {
                parents.extend(place.ancestors().filter(|a| !a.as_os_str().is_empty()));
            }
        }
        let made: Vec<CString> = parents
            .iter()
            .map(|p| c(&self.root.join(p)))
            .collect::<std::io::Result<_>>()?;
        let raw: Vec<i32> = trees.iter().map(|t| t.as_raw_fd()).collect();
        let root = c(&self.root)?;
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe work is allowed: it makes system calls on strings and
        // descriptors made before the fork and allocates nothing. The descriptors
        // stay open in the parent until the child has started.
        unsafe {
            command.pre_exec(move || {
                rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)?;
                // Nothing mounted here reaches the machine's own namespace.
                mount_change(
                    c"/",
                    MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
                )?;
                if !whole_root {
                    mount(
                        c"tmpfs",
                        root.as_c_str(),
                        c"tmpfs",
                        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                        c"mode=0700",
                    )?;
                    for d in &made {
                        rustix::fs::mkdir(d.as_c_str(), rustix::fs::Mode::from_raw_mode(0o700))?;
                    }
                }
                for (fd, target) in raw.iter().zip(&targets) {
                    move_mount(
                        BorrowedFd::borrow_raw(*fd),
                        c"",
                        rustix::fs::CWD,
                        target.as_c_str(),
                        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
                    )?;
                }
                rustix::process::chdir(root.as_c_str())?;
                Ok(())
            });
        }
        Ok(trees)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_become_typed_errors() {
        let out = Cmd::new("sh").args(["-c", "printf hi"]).run().unwrap();
        assert_eq!(out.stdout_string(), "hi");
        match Cmd::new("sh").args(["-c", "echo oops >&2; exit 3"]).run() {
            Err(CommandError::Failed { code, stderr, .. }) => {
                assert_eq!(code, 3);
                assert_eq!(stderr, "oops\n");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Cmd::new("no-such-program-here").run(),
            Err(CommandError::NotFound { .. })
        ));
    }

    #[test]
    fn a_shell_line_runs_the_same_command() {
        let cmd = Cmd::new("sh")
            .args([
                "-c",
                r#"printf '%s|' "$0" "$1" "$X"; pwd"#,
                "it's",
                "$HOME `x` \\ \"q\"",
            ])
            .env("X", "a b;c")
            .cwd("/tmp");
        let out = Cmd::new("sh").args(["-c", &cmd.to_shell()]).run().unwrap();
        assert_eq!(out.stdout_string(), "it's|$HOME `x` \\ \"q\"|a b;c|/tmp\n");
    }

    #[test]
    #[ignore = "needs root (a mount namespace); ./test.sh runs it as root"]
    fn a_view_shows_open_directories_at_their_places_and_nowhere_else() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, root) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("view"),
        );
        for d in [&a, &b, &root] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(a.join("f"), "in a").unwrap();
        std::fs::write(b.join("f"), "in b").unwrap();
        // Reached through open descriptors, as clan passes them.
        let (fa, fb) = (
            std::fs::File::open(&a).unwrap(),
            std::fs::File::open(&b).unwrap(),
        );
        use std::os::fd::AsRawFd;
        let by_fd =
            |f: &std::fs::File| format!("/proc/{}/fd/{}", std::process::id(), f.as_raw_fd());
        // One directory as the whole view: the program writes into it.
        let out = Cmd::new("sh")
            .args(["-c", "pwd; cat f; echo made > g"])
            .in_view(View {
                root: root.clone(),
                dirs: vec![(by_fd(&fa).into(), "".into())],
            })
            .run()
            .unwrap();
        assert_eq!(out.stdout_string(), format!("{}\nin a", root.display()));
        assert_eq!(std::fs::read_to_string(a.join("g")).unwrap(), "made\n");
        // Several at nested places, read by relative paths.
        let out = Cmd::new("sh")
            .args(["-c", "cat x/y/f; cat z/f; ls -a x"])
            .in_view(View {
                root: root.clone(),
                dirs: vec![
                    (by_fd(&fa).into(), "x/y".into()),
                    (by_fd(&fb).into(), "z".into()),
                ],
            })
            .run()
            .unwrap();
        assert_eq!(out.stdout_string(), "in ain b.\n..\ny\n");
        // The mounts lived in the program's namespace only.
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn stdin_is_fed_to_the_program() {
        let out = Cmd::new("cat").stdin("secret").run().unwrap();
        assert_eq!(out.stdout, b"secret");
    }

    #[test]
    fn large_input_and_output_at_once_and_lines_as_they_come() {
        // More than a pipe holds in both directions: writing stdin must not wait
        // for the program to be read.
        let data: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let mut lines = 0;
        let out = Cmd::new("cat")
            .stdin(data.clone())
            .run_with(&mut |l| {
                assert_eq!(l, lines.to_string());
                lines += 1;
            })
            .unwrap();
        assert_eq!(out.stdout, data);
        assert_eq!(lines, 200_000);
    }
}

/// Quotes `s` as one word for a POSIX shell (and for shlex-style splitters such as
/// borg's BORG_PASSCOMMAND). The only place clan builds shell words.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod quote_tests {
    use super::shell_quote;

    #[test]
    fn quoting_survives_a_real_shell() {
        for s in [
            "plain/path",
            "with space",
            "it's",
            "$(rm -rf /)",
            "",
            "a\nb",
        ] {
            let out = super::Cmd::new("sh")
                .args(["-c", &format!("printf %s {}", shell_quote(s))])
                .run()
                .unwrap();
            assert_eq!(out.stdout_string(), s);
        }
    }
}
