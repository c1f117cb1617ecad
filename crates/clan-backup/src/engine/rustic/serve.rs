//! `rclone:` repositories (clan's SFTP repositories) through one `rclone serve
//! restic` per engine, on loopback, started on first use and stopped with the engine.
//! rustic_core then talks REST to it, and so do clan's lock files (lock.rs): its own
//! rclone backend starts a server per open and cannot address `locks/`. The server
//! takes a random user and password from its environment (never the command line),
//! so that other local users cannot use the port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// What rclone prints once it serves, followed by the URL.
const SERVING: &str = "Serving restic REST API on ";

pub struct Served {
    child: Child,
    /// `http://user:password@127.0.0.1:port/`
    pub url: String,
}

impl Served {
    /// Starts `rclone serve restic` for `remote` (what follows `rclone:`).
    pub fn start(remote: &str) -> Result<Served, String> {
        let word = || {
            (0..16)
                .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
                .collect::<String>()
        };
        let (user, password) = (word(), word());
        let mut child = Command::new("rclone")
            .args(["serve", "restic", "--addr", "127.0.0.1:0", remote])
            .env("RCLONE_USER", &user)
            .env("RCLONE_PASS", &password)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting rclone: {e}"))?;
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut said = String::new();
        let address = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!(
                    "rclone exited before it could serve the repository ({status}): {}",
                    said.trim()
                ));
            }
            match line.find(SERVING) {
                Some(at) => {
                    break line[at + SERVING.len()..]
                        .trim()
                        .trim_matches(['[', ']'])
                        .to_string();
                }
                None => said.push_str(&line),
            }
        };
        let Some(host) = address.strip_prefix("http://") else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("rclone serves on {address}, not on http://"));
        };
        // Whatever rclone says later is read so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in stderr.lines().map_while(Result::ok) {});
        let host = host.trim_end_matches('/');
        Ok(Served {
            child,
            url: format!("http://{user}:{password}@{host}/"),
        })
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
