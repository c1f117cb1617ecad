//! `[user@]host[:port]`, as machines' `deploy.targetHost` gives it.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
#[error("'{input}' is not a target of the form [user@]host[:port] ({reason})")]
pub struct TargetError {
    pub input: String,
    pub reason: &'static str,
}

impl Target {
    /// Where a machine is reached when it sets no target: `root@<machine>.<domain>`.
    pub fn default_for(machine: &str, domain: &str) -> Self {
        Self {
            user: Some("root".into()),
            host: format!("{machine}.{domain}"),
            port: None,
        }
    }

    /// `user@host` (or `host`), as ssh takes it; the port goes in `-p`.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(input: &str) -> Result<Self, TargetError> {
        let fail = |reason| TargetError {
            input: input.to_string(),
            reason,
        };
        let (user, rest) = match input.rsplit_once('@') {
            Some((u, r)) => (Some(u.to_string()), r),
            None => (None, input),
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(fail("a '[' without ']'"))?;
            match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None if after.is_empty() => (host, None),
                None => return Err(fail("text after ']'")),
            }
        } else if rest.matches(':').count() > 1 {
            (rest, None) // a bare IPv6 address
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let port = port
            .map(|p| p.parse::<u16>().ok().filter(|p| *p > 0))
            .map(|p| p.ok_or(fail("the port is not a number from 1 to 65535")))
            .transpose()?;
        // ssh takes a leading '-' as an option: never let a name become one.
        let bad = |s: &str| {
            s.is_empty()
                || s.starts_with('-')
                || s.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if bad(host) {
            return Err(fail("the host is empty, starts with '-' or has spaces"));
        }
        if user.as_deref().is_some_and(bad) {
            return Err(fail("the user is empty, starts with '-' or has spaces"));
        }
        Ok(Self {
            user,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(p)) => write!(f, "[{}]:{p}", self.host),
            (false, Some(p)) => write!(f, "{}:{p}", self.host),
            (_, None) => write!(f, "{}", self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        s.parse().unwrap()
    }

    #[test]
    fn parses_user_host_and_port() {
        assert_eq!(
            t("root@10.0.0.2:2222"),
            Target {
                user: Some("root".into()),
                host: "10.0.0.2".into(),
                port: Some(2222)
            }
        );
        assert_eq!(t("backup.example.org").user, None);
        assert_eq!(t("admin@[fd00::1]:22").host, "fd00::1");
        assert_eq!(t("fd00::1").port, None);
        assert_eq!(t("[fd00::1]").host, "fd00::1");
        for s in ["root@10.0.0.2:2222", "h", "admin@[fd00::1]:22", "u@h"] {
            assert_eq!(t(s).to_string(), s, "round trip");
        }
        assert_eq!(t("u@h:22").destination(), "u@h");
        assert_eq!(
            Target::default_for("alice-laptop", "home.arpa").to_string(),
            "root@alice-laptop.home.arpa"
        );
    }

    #[test]
    fn refuses_what_ssh_would_misread() {
        for s in [
            "",
            "-oProxyCommand=x",
            "root@-h",
            "h:0",
            "h:99999",
            "h:x",
            "a b",
            "@h",
            "[::1",
        ] {
            let e = s.parse::<Target>().unwrap_err();
            assert!(e.to_string().contains("[user@]host[:port]"), "{s}: {e}");
        }
    }
}
