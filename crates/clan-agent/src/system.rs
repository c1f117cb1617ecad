//! What the agent reads from and does to the machine: systemd units, the journal,
//! block devices, folder sizes. Every program runs through `clan_core::process`.

use std::path::Path;

use clan_core::process::Cmd;
use serde_json::Value;

/// A unit's state as SelfPrivacy names it (`ServiceStatusEnum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnitStatus {
    // Ordered from best to worst: a service's status is its worst unit's.
    Active,
    Inactive,
    Deactivating,
    Activating,
    Reloading,
    Failed,
    Off,
}

/// systemd runs here (else every unit is OFF and none is started or stopped).
pub fn systemd_running() -> bool {
    clan_backup::services::systemd_running()
}

/// The state of each of `units`, in order, from one `systemctl show` (OFF for all
/// where systemd does not run or cannot be asked).
pub fn statuses(units: &[String]) -> Vec<UnitStatus> {
    if units.is_empty() {
        return Vec::new();
    }
    let off = || vec![UnitStatus::Off; units.len()];
    if !systemd_running() {
        return off();
    }
    match Cmd::new("systemctl")
        .args(["show", "--property=LoadState,ActiveState", "--"])
        .args(units)
        .run()
    {
        Ok(out) => parse_show(&out.stdout_string(), units.len()),
        Err(_) => off(),
    }
}

/// `systemctl show` of several units: blocks of `Key=value` lines, in order.
fn parse_show(text: &str, units: usize) -> Vec<UnitStatus> {
    let mut out: Vec<UnitStatus> = text
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let get = |k: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                    .unwrap_or("")
            };
            if get("LoadState") != "loaded" {
                return UnitStatus::Off;
            }
            match get("ActiveState") {
                "active" => UnitStatus::Active,
                "reloading" => UnitStatus::Reloading,
                "inactive" => UnitStatus::Inactive,
                "failed" => UnitStatus::Failed,
                "activating" => UnitStatus::Activating,
                "deactivating" => UnitStatus::Deactivating,
                _ => UnitStatus::Off,
            }
        })
        .collect();
    out.resize(units, UnitStatus::Off);
    out
}

/// `systemctl start|stop|restart` of units; the error says what systemctl said.
pub fn systemctl(verb: &str, units: &[String]) -> Result<(), String> {
    if units.is_empty() {
        return Ok(());
    }
    if !systemd_running() {
        return Err("systemd is not running on this machine".into());
    }
    Cmd::new("systemctl")
        .args([verb, "--"])
        .args(units)
        .run()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Bytes of the regular files under `path`, links not followed; 0 when absent.
pub fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| tree_size(&e.path()))
        .sum()
}

/// One journal entry as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub message: String,
    /// Microseconds since the epoch.
    pub realtime_us: i64,
    pub priority: Option<i32>,
    pub unit: Option<String>,
    pub slice: Option<String>,
    pub cursor: String,
}

/// Where a page of the journal starts.
pub enum Page<'a> {
    Newest,
    /// Entries older than this cursor.
    Before(&'a str),
    /// Entries newer than this cursor.
    After(&'a str),
}

/// A page of the journal in time order (SelfPrivacy's `logs.paginated`).
pub fn journal(
    limit: usize,
    page: Page<'_>,
    unit: Option<&str>,
    slice: Option<&str>,
) -> Result<Vec<LogEntry>, String> {
    let mut filters = Vec::new();
    if let Some(u) = unit {
        filters.push(format!("_SYSTEMD_UNIT={u}"));
    }
    if let Some(s) = slice {
        filters.push(format!("_SYSTEMD_SLICE={s}"));
    }
    let journalctl = || Cmd::new("journalctl").args(["--output=json", "--no-pager", "--quiet"]);
    let cmd = match page {
        Page::Newest => journalctl().arg(format!("--lines={limit}")).args(&filters),
        // The cursor's own entry comes first; one more is read and dropped.
        Page::Before(c) => journalctl()
            .args(["--reverse", "--cursor", c])
            .arg(format!("--lines={}", limit + 1))
            .args(&filters),
        // journalctl has no "first N after": the page is cut by `head`, which
        // stops journalctl (SIGPIPE) instead of reading the rest of the journal.
        Page::After(c) => Cmd::new("sh")
            .args([
                "-c",
                "c=$1; n=$2; shift 2; journalctl --output=json --no-pager --quiet --after-cursor \"$c\" \"$@\" | head -n \"$n\"",
                "sh",
                c,
                &limit.to_string(),
            ])
            .args(&filters),
    };
    let out = cmd.run().map_err(|e| e.to_string())?;
    let mut entries: Vec<LogEntry> = out
        .stdout_string()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| entry(&v))
        .collect();
    match page {
        Page::Newest => {}
        Page::Before(c) => {
            entries.retain(|e| e.cursor != c);
            entries.truncate(limit);
            entries.reverse();
        }
        Page::After(_) => entries.truncate(limit),
    }
    Ok(entries)
}

fn entry(v: &Value) -> Option<LogEntry> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    // Binary messages come as arrays of bytes.
    let message = match v.get("MESSAGE")? {
        Value::String(s) => s.clone(),
        Value::Array(bytes) => String::from_utf8_lossy(
            &bytes
                .iter()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect::<Vec<_>>(),
        )
        .into_owned(),
        _ => return None,
    };
    if message.is_empty() {
        return None;
    }
    Some(LogEntry {
        message,
        realtime_us: text("__REALTIME_TIMESTAMP")?.parse().ok()?,
        priority: text("PRIORITY").and_then(|p| p.parse().ok()),
        unit: text("_SYSTEMD_UNIT"),
        slice: text("_SYSTEMD_SLICE"),
        cursor: text("__CURSOR")?,
    })
}

/// A mounted filesystem on a block device (or the root filesystem when it is not
/// on one, as in a container).
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    pub mountpoints: Vec<String>,
    pub fstype: String,
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub kind: String,
}

impl Volume {
    pub fn is_root(&self) -> bool {
        self.mountpoints.iter().any(|m| m == "/")
    }
}

/// The machine's volumes, from `lsblk`; the root filesystem from `df` when lsblk
/// does not list it.
pub fn volumes() -> Vec<Volume> {
    let mut out = Cmd::new("lsblk")
        .args([
            "--json",
            "--bytes",
            "--output",
            "NAME,FSAVAIL,FSSIZE,FSTYPE,FSUSED,MOUNTPOINTS,SIZE,MODEL,SERIAL,TYPE",
        ])
        .run()
        .ok()
        .and_then(|o| serde_json::from_str::<Value>(&o.stdout_string()).ok())
        .map(|v| parse_lsblk(&v))
        .unwrap_or_default();
    if !out.iter().any(Volume::is_root)
        && let Some(root) = root_from_df()
    {
        out.insert(0, root);
    }
    out
}

fn parse_lsblk(v: &Value) -> Vec<Volume> {
    fn walk(devices: &[Value], inherited_model: Option<&str>, out: &mut Vec<Volume>) {
        for d in devices {
            let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
            let number = |k: &str| {
                d.get(k)
                    .and_then(|n| n.as_u64().or_else(|| n.as_str()?.parse().ok()))
            };
            let model = text("model").or(inherited_model.map(str::to_string));
            let mountpoints: Vec<String> = d
                .get("mountpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            let kind = text("type").unwrap_or_default();
            if let (false, Some(fstype), Some(total)) = (
                mountpoints.is_empty() || kind == "rom",
                text("fstype"),
                number("fssize").or(number("size")),
            ) {
                let used = number("fsused").unwrap_or(0);
                out.push(Volume {
                    name: text("name").unwrap_or_default(),
                    mountpoints,
                    fstype,
                    total,
                    used,
                    free: number("fsavail").unwrap_or(total.saturating_sub(used)),
                    model: model.clone(),
                    serial: text("serial"),
                    kind,
                });
            }
            if let Some(children) = d.get("children").and_then(Value::as_array) {
                walk(children, model.as_deref(), out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(devices) = v.get("blockdevices").and_then(Value::as_array) {
        walk(devices, None, &mut out);
    }
    out
}

fn root_from_df() -> Option<Volume> {
    let out = Cmd::new("df")
        .args([
            "--block-size=1",
            "--output=source,fstype,size,used,avail",
            "/",
        ])
        .run()
        .ok()?;
    let text = out.stdout_string();
    let fields: Vec<&str> = text.lines().nth(1)?.split_whitespace().collect();
    let [source, fstype, size, used, avail] = fields[..] else {
        return None;
    };
    Some(Volume {
        name: source.rsplit('/').next().unwrap_or(source).to_string(),
        mountpoints: vec!["/".into()],
        fstype: fstype.into(),
        total: size.parse().ok()?,
        used: used.parse().ok()?,
        free: avail.parse().ok()?,
        model: None,
        serial: None,
        kind: "part".into(),
    })
}

/// The volume a path lives on: the one with the longest mount point above it.
pub fn volume_of<'a>(volumes: &'a [Volume], path: &str) -> Option<&'a Volume> {
    volumes
        .iter()
        .flat_map(|v| v.mountpoints.iter().map(move |m| (m, v)))
        .filter(|(m, _)| {
            path == m.as_str() || m.as_str() == "/" || path.starts_with(&format!("{m}/"))
        })
        .max_by_key(|(m, _)| m.len())
        .map(|(_, v)| v)
}

/// Minutes between two runs of a systemd calendar event (`daily` → 1440), from
/// its next two elapses as `systemd-analyze` computes them.
pub fn period_minutes(calendar: &str) -> Option<i32> {
    let out = Cmd::new("systemd-analyze")
        .args(["calendar", "--iterations=2", "--", calendar])
        .env("TZ", "UTC")
        .run()
        .ok()?;
    let times: Vec<jiff::civil::DateTime> = out
        .stdout_string()
        .lines()
        .filter_map(|l| {
            let (key, value) = l.split_once(": ")?;
            let key = key.trim();
            (key == "Next elapse" || key.starts_with("Iter. #")).then_some(value)?;
            // "Tue 2026-12-01 00:00:00 UTC"
            let words: Vec<&str> = value.split_whitespace().collect();
            format!("{}T{}", words.get(1)?, words.get(2)?).parse().ok()
        })
        .collect();
    let [a, b, ..] = times[..] else {
        return None;
    };
    let minutes = a.duration_until(b).as_secs() / 60;
    i32::try_from(minutes).ok()
}

/// `uname -a`.
pub fn uname() -> String {
    Cmd::new("uname")
        .arg("-a")
        .run()
        .map(|o| o.stdout_string().trim().to_string())
        .unwrap_or_default()
}

/// The machine's time zone: /etc/timezone, else where /etc/localtime points, else UTC.
pub fn timezone() -> String {
    if let Ok(tz) = std::fs::read_to_string("/etc/timezone")
        && !tz.trim().is_empty()
    {
        return tz.trim().to_string();
    }
    std::fs::read_link("/etc/localtime")
        .ok()
        .and_then(|p| {
            let p = p.to_string_lossy().into_owned();
            p.split_once("zoneinfo/").map(|(_, z)| z.to_string())
        })
        .unwrap_or_else(|| "Etc/UTC".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unit_states_come_in_order_and_a_service_is_its_worst() {
        use UnitStatus::*;
        let show = "LoadState=loaded\nActiveState=active\n\nLoadState=loaded\nActiveState=failed\n";
        assert_eq!(parse_show(show, 2), [Active, Failed]);
        assert_eq!(parse_show(show, 2).into_iter().max(), Some(Failed));
        let show =
            "LoadState=loaded\nActiveState=active\n\nLoadState=not-found\nActiveState=inactive\n";
        assert_eq!(parse_show(show, 2), [Active, Off]);
        // A unit systemctl said nothing about is OFF.
        let one = "LoadState=loaded\nActiveState=active\n";
        assert_eq!(parse_show(one, 2), [Active, Off]);
    }

    #[test]
    fn mounted_filesystems_are_volumes_and_paths_find_theirs() {
        let v = json!({"blockdevices": [
            {"name": "sda", "type": "disk", "model": "QEMU HARDDISK", "serial": "s1", "size": 100,
             "mountpoints": [null], "children": [
                {"name": "sda1", "type": "part", "fstype": "ext4", "fssize": 90, "fsused": 30,
                 "fsavail": 55, "size": 95, "mountpoints": ["/"]},
                {"name": "sda2", "type": "part", "fstype": "swap", "size": 5, "mountpoints": [null]}]},
            {"name": "sdb", "type": "disk", "fstype": "ext4", "fssize": "200", "fsused": "10",
             "fsavail": "190", "mountpoints": ["/srv/data"]},
            {"name": "sr0", "type": "rom", "fstype": "iso9660", "size": 1, "mountpoints": ["/media"]}
        ]});
        let vols = parse_lsblk(&v);
        let names: Vec<&str> = vols.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["sda1", "sdb"]);
        assert_eq!(vols[0].model.as_deref(), Some("QEMU HARDDISK"));
        assert_eq!((vols[1].total, vols[1].used, vols[1].free), (200, 10, 190));
        assert_eq!(volume_of(&vols, "/srv/data/app").unwrap().name, "sdb");
        assert_eq!(volume_of(&vols, "/srv/database").unwrap().name, "sda1");
    }

    #[test]
    fn journal_entries_keep_cursor_time_and_text() {
        let e = entry(
            &json!({"MESSAGE": [104, 105], "__REALTIME_TIMESTAMP": "1700000000000001",
                              "__CURSOR": "s=1", "PRIORITY": "6", "_SYSTEMD_UNIT": "a.service"}),
        )
        .unwrap();
        assert_eq!(e.message, "hi");
        assert_eq!(
            (e.realtime_us, e.priority),
            (1_700_000_000_000_001, Some(6))
        );
        assert!(
            entry(&json!({"MESSAGE": "", "__REALTIME_TIMESTAMP": "1", "__CURSOR": "c"})).is_none()
        );
    }
}
