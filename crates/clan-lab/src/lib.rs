//! Test support: real servers that a test starts on loopback, uses, and stops
//! (by the PID it started) when their handle is dropped, also when the test fails.

pub mod lab;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process a test started; killed by its PID when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port on loopback that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local address")
        .port()
}

/// Waits until `server` accepts connections on `port` (fails if it exits first).
pub fn wait_listening(port: u16, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            server.0.try_wait().expect("wait").is_none(),
            "the server exited"
        );
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An ed25519 key pair without passphrase at `path` and `path.pub`.
pub fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(ok.success(), "ssh-keygen failed");
}

/// An OpenSSH server on 127.0.0.1 that accepts `client_key` for root, and a
/// known_hosts file that holds its host key.
pub struct Sshd {
    _server: Server,
    pub port: u16,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
}

impl Sshd {
    /// Starts one with its keys and configuration under `root`.
    pub fn start(root: &Path) -> Self {
        let (host_key, client_key) = (root.join("host_key"), root.join("client_key"));
        keygen(&host_key);
        keygen(&client_key);
        std::fs::copy(root.join("client_key.pub"), root.join("authorized_keys"))
            .expect("authorized_keys");
        let port = free_port();
        let config = root.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PidFile {pid}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 Subsystem sftp internal-sftp\n",
                hk = host_key.display(),
                ak = root.join("authorized_keys").display(),
                pid = root.join("sshd.pid").display()
            ),
        )
        .expect("sshd_config");
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let mut server = Server(
            Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sshd starts"),
        );
        wait_listening(port, &mut server);
        let host_pub = std::fs::read_to_string(root.join("host_key.pub")).expect("host key");
        let known_hosts = root.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}"))
            .expect("known_hosts");
        Self {
            _server: server,
            port,
            client_key,
            known_hosts,
        }
    }
}
