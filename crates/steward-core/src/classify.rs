//! Classification: Standard, Normal or Emergency, with the reason recorded.

use crate::catalog::CatalogItem;
use crate::submission::ChangeRequest;
use crate::target::Target;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeType {
    Standard,
    Normal,
    Emergency,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Standard => "standard",
            ChangeType::Normal => "normal",
            ChangeType::Emergency => "emergency",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Standard, Self::Normal, Self::Emergency]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ChangeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    #[serde(rename = "type")]
    pub change_type: ChangeType,
    pub reason: String,
}

/// Decides the change type. `catalog_item` is the template the request named, already looked up
/// (the caller refuses a name that does not exist).
pub fn classify(
    request: &ChangeRequest,
    catalog_item: Option<&CatalogItem>,
    targets: &[Target],
) -> Classification {
    if request.emergency {
        return Classification {
            change_type: ChangeType::Emergency,
            reason: "requested as an emergency with a justification".into(),
        };
    }
    match catalog_item {
        Some(item) => {
            let unmet = item.unmet_conditions(request, targets);
            if unmet.is_empty() {
                Classification {
                    change_type: ChangeType::Standard,
                    reason: format!("matches pre-approved catalog item '{}'", item.name),
                }
            } else {
                Classification {
                    change_type: ChangeType::Normal,
                    reason: format!(
                        "names catalog item '{}' but does not meet it: {}",
                        item.name,
                        unmet.join("; ")
                    ),
                }
            }
        }
        None => Classification {
            change_type: ChangeType::Normal,
            reason: "no catalog item and not an emergency".into(),
        },
    }
}
