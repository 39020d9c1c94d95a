//! Targets: the resources a change can touch, and the facts about them that drive risk and routing.

use crate::names::{TargetName, UserName};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Lists the accepted spellings of an enum in one readable line, for error messages.
pub(crate) fn one_of<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> String {
    all.iter()
        .map(|v| as_str(*v))
        .collect::<Vec<_>>()
        .join(", ")
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    format!("'{s}' is not one of: {}", $crate::target::one_of($name::ALL, $name::as_str))
                })
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// What kind of resource a target is (PRODUCT.md §1, "targets").
    TargetKind {
        ComputeCluster => "compute_cluster",
        TrainingEnvironment => "training_environment",
        ModelDeployment => "model_deployment",
        DataSource => "data_source",
        AccessControl => "access_control",
    }
);

text_enum!(
    Environment {
        Production => "production",
        Staging => "staging",
        Development => "development",
    }
);

text_enum!(
    /// Used for target criticality, impact levels and rollback complexity alike.
    Level {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
);

text_enum!(
    /// Classes of regulated data a target processes.
    Regulated {
        Pii => "pii",
        Financial => "financial",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: TargetName,
    pub kind: TargetKind,
    /// The manager who approves normal, non-high-risk changes to this target.
    pub owner: UserName,
    pub environment: Environment,
    pub criticality: Level,
    pub regulated: Vec<Regulated>,
    /// The resource this one runs on or belongs to (a deployment's cluster), for conflict checks.
    pub parent: Option<TargetName>,
}

impl Target {
    pub fn has_regulated_data(&self) -> bool {
        !self.regulated.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_their_own_spelling_and_list_the_options_otherwise() {
        assert_eq!(
            "model_deployment".parse::<TargetKind>(),
            Ok(TargetKind::ModelDeployment)
        );
        let err = "prod"
            .parse::<Environment>()
            .expect_err("not an environment");
        assert_eq!(
            err,
            "'prod' is not one of: production, staging, development"
        );
    }
}
