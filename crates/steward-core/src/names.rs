//! Newtypes for the names people type: users, targets, tenants, change ids.
//!
//! Each parses its input once (`UserName::parse`) so that an invalid name cannot exist past the
//! edge of the system. Names are lowercase slugs because they appear in CLI arguments, URLs and
//! audit records, where case and whitespace ambiguity would make two names look alike.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error(
        "may contain only lowercase letters, digits, '-', '_' and '.', and must start with a letter or digit"
    )]
    BadCharacters,
}

fn parse_slug(input: &str, max: usize) -> Result<String, NameError> {
    if input.is_empty() {
        return Err(NameError::Empty);
    }
    if input.chars().count() > max {
        return Err(NameError::TooLong { max });
    }
    let mut chars = input.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = input
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if first_ok && rest_ok {
        Ok(input.to_owned())
    } else {
        Err(NameError::BadCharacters)
    }
}

macro_rules! slug_newtype {
    ($(#[$meta:meta])* $name:ident, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(input: &str) -> Result<Self, NameError> {
                parse_slug(input, $max).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_newtype!(
    /// A user's login name, unique within a tenant.
    UserName,
    64
);
slug_newtype!(
    /// The name of a resource a change can touch, unique within a tenant.
    TargetName,
    128
);
slug_newtype!(
    /// A maintenance window or freeze, unique within a tenant: `quarter-end-freeze`.
    WindowName,
    64
);
slug_newtype!(
    /// A tenant (business unit). Every record belongs to exactly one.
    TenantId,
    64
);

impl TenantId {
    /// The tenant every installation starts with.
    pub fn default_tenant() -> Self {
        Self("default".to_owned())
    }
}

/// A change's human-friendly identifier, `CHG-<n>`, numbered per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChangeId(u64);

impl ChangeId {
    /// The id of a change not yet saved; numbers start at 1.
    pub const UNASSIGNED: ChangeId = ChangeId(0);

    pub fn from_number(number: u64) -> Self {
        Self(number)
    }
    pub fn number(&self) -> u64 {
        self.0
    }
    /// Accepts `CHG-12`, `chg-12` or a bare `12`.
    pub fn parse(input: &str) -> Option<Self> {
        let digits = input
            .strip_prefix("CHG-")
            .or_else(|| input.strip_prefix("chg-"))
            .unwrap_or(input);
        digits.parse::<u64>().ok().filter(|n| *n > 0).map(Self)
    }
}

impl TryFrom<String> for ChangeId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value).ok_or_else(|| format!("'{value}' is not a change id like CHG-12"))
    }
}
impl From<ChangeId> for String {
    fn from(value: ChangeId) -> String {
        value.to_string()
    }
}
impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CHG-{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_and_refuse() {
        let check =
            |input: &str, ok: bool| assert_eq!(UserName::parse(input).is_ok(), ok, "{input}");
        check("alice", true);
        check("ml-eng.7_x", true);
        check("", false);
        check("Alice", false);
        check("-alice", false);
        check("a b", false);
        check(&"a".repeat(65), false);
    }

    #[test]
    fn change_ids_round_trip() {
        assert_eq!(ChangeId::parse("CHG-12"), Some(ChangeId(12)));
        assert_eq!(ChangeId::parse("12"), Some(ChangeId(12)));
        assert_eq!(ChangeId::parse("CHG-0"), None);
        assert_eq!(ChangeId::parse("CHG-x"), None);
        assert_eq!(ChangeId(7).to_string(), "CHG-7");
    }
}
