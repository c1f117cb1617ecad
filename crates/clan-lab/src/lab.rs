//! The lab: real Debian machines on this host, for tests and for trying clan by
//! hand. Each machine is a network namespace on a private bridge (10.231.0.0/24,
//! the host is 10.231.0.1) running a systemd-nspawn container booted with real
//! systemd, sshd, PostgreSQL and borg, from an overlay over a template that is
//! debootstrapped once and cached (`$CLAN_LAB_CACHE`, default /var/cache/clan-lab).
//!
//! Needs root. One lab at a time (a lock); everything it made is torn down when
//! the `Lab` is dropped, also when a test fails, and leftovers of a killed run are
//! removed before the next one starts. Only processes the lab started are ended,
//! by their PIDs.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BRIDGE: &str = "clanlab0";
const HOST_IP: &str = "10.231.0.1";
const RECIPE: &str = include_str!("../template.sh");
/// Where a running lab keeps its machines, keys and PIDs.
pub const RUN_DIR: &str = "/var/tmp/clan-lab";

/// Whether lab tests can run here; prints why not when they cannot.
pub fn available(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if !root {
        eprintln!(
            "skipping {test}: lab tests need root (they create network namespaces and containers)"
        );
    }
    root
}

fn sh(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("lab: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "lab: {cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn quiet(cmd: &mut Command) {
    let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// The cached template, built first if missing (about a minute, once).
pub fn template() -> PathBuf {
    let cache = std::env::var_os("CLAN_LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/clan-lab"));
    std::fs::create_dir_all(&cache).expect("lab cache directory");
    // The recipe's hash names the template: a changed recipe builds a new one.
    let hash = RECIPE.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    let dir = cache.join(format!("template-{hash:016x}"));
    let lock = File::create(cache.join("lock")).expect("lab cache lock");
    lock.lock().expect("lab cache lock");
    if !dir.join("etc/os-release").exists() {
        let building = cache.join(format!("building-{hash:016x}"));
        if building.exists() {
            std::fs::remove_dir_all(&building).expect("removing a half-built template");
        }
        let recipe = cache.join("template.sh");
        std::fs::write(&recipe, RECIPE).expect("writing the recipe");
        let log = cache.join("template.log");
        let status = Command::new("sh")
            .arg(&recipe)
            .arg(&building)
            .stdout(File::create(&log).expect("template log"))
            .stderr(File::create(&log).expect("template log"))
            .status()
            .expect("running the template recipe");
        assert!(
            status.success(),
            "lab: building the template failed; see {}",
            log.display()
        );
        std::fs::rename(&building, &dir).expect("moving the template into the cache");
    }
    dir
}

/// One machine of the lab.
#[derive(Debug)]
pub struct Machine {
    pub name: String,
    pub ip: String,
    index: usize,
    dir: PathBuf,
    nspawn: Option<Child>,
}

impl Machine {
    fn netns(&self) -> String {
        format!("clanlab-{}", self.index)
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    pub dir: PathBuf,
    pub machines: Vec<Machine>,
    /// The private key that logs in as root on every machine.
    pub key: PathBuf,
    /// An ssh config for the lab's machines (key, known hosts): `ssh -F` it, or give
    /// it to clan as `CLAN_SSH_CONFIG`.
    pub ssh_config: PathBuf,
    _lock: File,
}

impl Lab {
    /// Starts machines `(name, address)`; addresses in 10.231.0.2-254.
    pub fn start(machines: &[(&str, &str)]) -> Lab {
        let template = template();
        std::fs::create_dir_all("/run/lock").expect("/run/lock");
        let lock = File::create("/run/lock/clan-lab.lock").expect("lab lock");
        lock.lock().expect("lab lock");
        cleanup_leftovers();
        let dir = PathBuf::from(RUN_DIR);
        std::fs::create_dir_all(&dir).expect("lab directory");
        let key = dir.join("id_lab");
        sh(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "clan-lab", "-f"])
            .arg(&key));
        let mut lab = Lab {
            dir: dir.clone(),
            machines: machines
                .iter()
                .enumerate()
                .map(|(index, (name, ip))| Machine {
                    name: name.to_string(),
                    ip: ip.to_string(),
                    index,
                    dir: dir.join(name),
                    nspawn: None,
                })
                .collect(),
            ssh_config: dir.join("ssh_config"),
            key,
            _lock: lock,
        };
        lab.network();
        let hosts: String = std::iter::once(format!("127.0.0.1 localhost\n{HOST_IP} labhost\n"))
            .chain(
                lab.machines
                    .iter()
                    .map(|m| format!("{} {}\n", m.ip, m.name)),
            )
            .collect();
        let public_key = std::fs::read_to_string(lab.key.with_extension("pub")).expect("lab key");
        for i in 0..lab.machines.len() {
            lab.prepare(i, &template, &hosts, &public_key);
            lab.boot(i);
        }
        let mut known_hosts = String::new();
        for m in &lab.machines {
            let host_key =
                std::fs::read_to_string(m.root().join("etc/ssh/ssh_host_ed25519_key.pub"))
                    .expect("host key");
            let mut f = host_key.split_whitespace();
            known_hosts.push_str(&format!(
                "{} {} {}\n",
                m.ip,
                f.next().unwrap_or_default(),
                f.next().unwrap_or_default()
            ));
        }
        std::fs::write(dir.join("known_hosts"), known_hosts).expect("known_hosts");
        let config = format!(
            "Host 10.231.0.*\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
            lab.key.display(),
            dir.join("known_hosts").display()
        );
        std::fs::write(&lab.ssh_config, config).expect("ssh config");
        for m in &lab.machines {
            lab.wait_running(m);
        }
        lab
    }

    fn network(&self) {
        sh(Command::new("ip").args(["link", "add", BRIDGE, "type", "bridge"]));
        sh(Command::new("ip").args(["addr", "add", &format!("{HOST_IP}/24"), "dev", BRIDGE]));
        sh(Command::new("ip").args(["link", "set", BRIDGE, "up"]));
        for m in &self.machines {
            let ns = m.netns();
            let veth = format!("clanlabv{}", m.index);
            record("netns", &ns);
            sh(Command::new("ip").args(["netns", "add", &ns]));
            sh(Command::new("ip").args([
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]));
            sh(Command::new("ip").args(["link", "set", &veth, "master", BRIDGE, "up"]));
            let ipn = |args: &[&str]| {
                sh(Command::new("ip").args(["-n", &ns]).args(args));
            };
            ipn(&["addr", "add", &format!("{}/24", m.ip), "dev", "eth0"]);
            ipn(&["link", "set", "eth0", "up"]);
            ipn(&["link", "set", "lo", "up"]);
            ipn(&["route", "add", "default", "via", HOST_IP]);
        }
    }

    fn prepare(&self, i: usize, template: &Path, hosts: &str, public_key: &str) {
        let m = &self.machines[i];
        let root = m.root();
        for d in ["upper", "work", "root"] {
            std::fs::create_dir_all(m.dir.join(d)).expect("machine directories");
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            template.display(),
            m.dir.join("upper").display(),
            m.dir.join("work").display()
        );
        sh(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&root));
        record("mount", &root.display().to_string());
        let write = |rel: &str, text: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let path = root.join(rel);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("mode");
        };
        write("etc/hostname", &format!("{}\n", m.name), 0o644);
        write("etc/hosts", hosts, 0o644);
        // Each clone its own identity: machine-id and SSH host keys.
        let id = sh(Command::new("systemd-id128").arg("new"));
        write(
            "etc/machine-id",
            &String::from_utf8_lossy(&id.stdout),
            0o444,
        );
        sh(Command::new("ssh-keygen").arg("-A").arg("-f").arg(&root));
        write("root/.ssh/authorized_keys", public_key, 0o600);
    }

    fn boot(&mut self, i: usize) {
        let m = &self.machines[i];
        // Each container in its own cgroup: started from the root cgroup they would
        // all share one tree, and their units would collide.
        let cgroup = format!("clan-lab-{}", m.name);
        let mut enter = String::new();
        for h in ["systemd", "unified"] {
            let d = Path::new("/sys/fs/cgroup").join(h);
            if d.is_dir() {
                std::fs::create_dir_all(d.join(&cgroup)).expect("cgroup");
                record("cgroup", &d.join(&cgroup).display().to_string());
                enter.push_str(&format!(
                    "echo $$ > {}/cgroup.procs; ",
                    d.join(&cgroup).display()
                ));
            }
        }
        let log = File::create(m.dir.join("boot.log")).expect("boot log");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("{enter}exec \"$@\""))
            .arg("sh")
            .args(["systemd-nspawn", "--register=no", "--keep-unit", "-q", "-b"])
            .arg("-D")
            .arg(m.root())
            .args(["-M", &m.name, "--hostname", &m.name, "--console=passive"])
            .arg(format!("--network-namespace-path=/run/netns/{}", m.netns()))
            // Its own network namespace: a machine may take its link down (an
            // activation that cuts it off) without touching the host's.
            .arg("--capability=CAP_NET_ADMIN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting systemd-nspawn");
        record("pid", &child.id().to_string());
        self.machines[i].nspawn = Some(child);
    }

    fn wait_running(&self, m: &Machine) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = self.ssh_status(&m.name, "systemctl is-system-running --wait");
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lab: {} did not boot (state {state:?}: {}); see {}",
                m.name,
                String::from_utf8_lossy(&out.stderr),
                m.dir.join("boot.log").display()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn machine(&self, name: &str) -> &Machine {
        self.machines
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no lab machine {name}"))
    }

    pub fn ip(&self, name: &str) -> &str {
        &self.machine(name).ip
    }

    /// `ssh -F <lab config> root@<machine>` as a command, to add a remote command to.
    pub fn ssh_command(&self, name: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(&self.ssh_config)
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
            .arg(format!("root@{}", self.ip(name)));
        c
    }

    /// Runs a shell script on the machine; its exit status and output, whatever they are.
    pub fn ssh_status(&self, name: &str, script: &str) -> Output {
        self.ssh_command(name)
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .expect("running ssh")
    }

    /// Runs a shell script on the machine as root; panics if it fails.
    /// Accepts `key` (`kind base64`) as machine `name`'s host key too, in the lab's
    /// known_hosts (after clan gave the machine the key from its vars).
    pub fn trust_host_key(&self, name: &str, key: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("known_hosts"))
            .expect("known_hosts");
        writeln!(f, "{} {}", self.ip(name), key.trim()).expect("known_hosts");
    }

    pub fn ssh(&self, name: &str, script: &str) -> String {
        let out = self.ssh_status(name, script);
        assert!(
            out.status.success(),
            "on {name}: `{script}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Powers the machine off (and waits until it is down).
    pub fn stop(&mut self, name: &str) {
        let i = self
            .machines
            .iter()
            .position(|m| m.name == name)
            .expect("lab machine");
        if let Some(child) = self.machines[i].nspawn.take() {
            stop_child(child);
        }
    }
}

/// Appends to the record of what the lab made, for cleaning up after a killed run.
fn record(kind: &str, what: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(RUN_DIR).join("made"))
        .expect("lab record");
    writeln!(f, "{kind} {what}").expect("lab record");
}

fn alive(pid: u32) -> bool {
    // A PID that ran systemd-nspawn for us; anything else by now is not ours.
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("systemd-nspawn"))
}

/// SIGTERM to systemd-nspawn (a clean poweroff inside), SIGKILL after 20 s.
fn stop_child(mut child: Child) {
    quiet(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Like `stop_child`, for a container a killed run left behind.
fn stop_pid(pid: u32) {
    quiet(Command::new("kill").args(["-TERM", &pid.to_string()]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        quiet(Command::new("kill").args(["-KILL", &pid.to_string()]));
    }
}

/// Removes what the record says a lab made: machines, mounts, cgroups,
/// namespaces, the bridge, the run directory.
fn cleanup_leftovers() {
    let made = std::fs::read_to_string(Path::new(RUN_DIR).join("made")).unwrap_or_default();
    let items: Vec<(&str, &str)> = made.lines().filter_map(|l| l.split_once(' ')).collect();
    for (_, pid) in items.iter().filter(|(k, _)| *k == "pid") {
        if let Ok(pid) = pid.parse::<u32>()
            && alive(pid)
        {
            stop_pid(pid);
        }
    }
    for (_, path) in items.iter().filter(|(k, _)| *k == "mount") {
        quiet(Command::new("umount").arg(path));
        quiet(Command::new("umount").arg("-l").arg(path));
    }
    for (_, path) in items.iter().filter(|(k, _)| *k == "cgroup") {
        quiet(
            Command::new("find").args([path, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"]),
        );
    }
    for (_, ns) in items.iter().filter(|(k, _)| *k == "netns") {
        quiet(Command::new("ip").args(["netns", "del", ns]));
    }
    quiet(Command::new("ip").args(["link", "del", BRIDGE]));
    if Path::new(RUN_DIR).exists() {
        std::fs::remove_dir_all(RUN_DIR).expect("removing the previous lab's directory");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for m in &mut self.machines {
            if let Some(child) = m.nspawn.take() {
                stop_child(child);
            }
        }
        cleanup_leftovers();
    }
}

/// The seed's backup guide (clan.nix) as a user adapts it to the lab: Linux
/// machines at the lab's addresses, the lab's key authorized for root.
pub fn guide_clan_nix(lab: &Lab) -> String {
    const GUIDE: &str = include_str!("../../clan-cli/tests/fixtures/backup-guide/clan.nix");
    let key = std::fs::read_to_string(lab.key.with_extension("pub")).expect("lab key");
    let target = |name: &str| {
        format!(
            "deploy.targetHost = \"root@{}\"; machineClass = \"linux\";",
            lab.ip(name)
        )
    };
    GUIDE
        .replace("deploy.targetHost = \"root@10.231.0.11\";", &target("alice-laptop"))
        .replace("deploy.targetHost = \"root@10.231.0.12\";", &target("backup-server"))
        .replace(
            "\"admin-machine-1\" = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly admin@example\";",
            &format!("\"admin-machine-1\" = \"{}\";", key.trim()),
        )
}

/// The guide's machines and their addresses (as in the guide).
pub const GUIDE_MACHINES: [(&str, &str); 2] = [
    ("alice-laptop", "10.231.0.11"),
    ("backup-server", "10.231.0.12"),
];
