//! Validated names. A value of these types has passed its rule once, at the edge.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name '{name}': {rule}")]
pub struct NameError {
    pub kind: &'static str,
    pub name: String,
    pub rule: &'static str,
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $check:path, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            pub const RULE: &'static str = $rule;

            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                if $check(&name) {
                    Ok(Self(name))
                } else {
                    Err(NameError { kind: $kind, name, rule: $rule })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// A validated name reads as the string it is.
        impl std::ops::Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$ty> for &str {
            fn eq(&self, other: &$ty) -> bool {
                *self == other.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A hostname label: letters, digits and '-', not starting or ending with '-', at most 63.
fn is_hostname(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Letters, digits, '_' and '-' (and '.' where allowed), not empty.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

name_type!(
    /// A machine's name; also its hostname.
    MachineName,
    "machine",
    is_hostname,
    "use letters, digits and '-', at most 63 characters, not starting or ending with '-'"
);
name_type!(
    /// The name of a service instance (`inventory.instances.<name>`).
    InstanceName,
    "instance",
    is_identifier,
    "use letters, digits, '_' and '-'"
);
name_type!(
    /// The name of a state entry (`clan.core.state.<name>`).
    StateName,
    "state",
    is_identifier,
    "use letters, digits, '_' and '-'"
);

/// The closest candidates to a mistyped name, best first.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_follow_hostname_rules() {
        for ok in ["a", "alice-laptop", "web01", "A1"] {
            assert!(MachineName::new(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in ["", "-a", "a-", "a_b", "a.b", "my/machine", long.as_str()] {
            let err = MachineName::new(bad).unwrap_err();
            assert_eq!(err.name, bad);
            assert!(err.to_string().contains("invalid machine name"));
        }
    }

    #[test]
    fn suggestions_rank_close_names_first() {
        let names = ["alice-laptop", "backup-server", "bob"];
        assert_eq!(did_you_mean("alice-lapotp", names), vec!["alice-laptop"]);
        assert!(did_you_mean("zzz", names).is_empty());
    }
}
