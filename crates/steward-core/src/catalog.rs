//! The standard-change catalog: pre-approved templates whose change authority is pre-delegated.
//!
//! A request that names a catalog item and meets every one of its conditions is a Standard change
//! and is approved without a person. The conditions are deliberately narrow: a template that could
//! match a production change to regulated data would be a hole in segregation of duties.

use crate::submission::ChangeRequest;
use crate::target::{Environment, Level, Target, TargetKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogItem {
    pub name: String,
    pub description: String,
    /// Categories the request must use; empty means any.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Target kinds the request may touch; empty means any.
    #[serde(default)]
    pub target_kinds: Vec<TargetKind>,
    /// Environments the request may run in; empty means any.
    #[serde(default)]
    pub environments: Vec<Environment>,
    /// The highest data, availability or compliance impact the template covers.
    pub max_impact: Level,
    /// Whether the template may touch a production target holding regulated data. Off in every
    /// shipped template; an admin must turn it on deliberately.
    #[serde(default)]
    pub allow_regulated_production: bool,
}

impl CatalogItem {
    /// Every condition of this template the request fails, in words a requester can act on.
    pub fn unmet_conditions(&self, request: &ChangeRequest, targets: &[Target]) -> Vec<String> {
        let mut unmet = Vec::new();
        if !self.categories.is_empty() && !self.categories.contains(&request.category) {
            unmet.push(format!(
                "category '{}' is not one of {}",
                request.category,
                self.categories.join(", ")
            ));
        }
        if !self.environments.is_empty() && !self.environments.contains(&request.environment) {
            unmet.push(format!(
                "environment '{}' is not covered by the template",
                request.environment
            ));
        }
        for target in targets {
            if !self.target_kinds.is_empty() && !self.target_kinds.contains(&target.kind) {
                unmet.push(format!(
                    "target '{}' is a {}, which the template does not cover",
                    target.name, target.kind
                ));
            }
            if target.environment == Environment::Production
                && target.has_regulated_data()
                && !self.allow_regulated_production
            {
                unmet.push(format!(
                    "target '{}' is a production target with regulated data",
                    target.name
                ));
            }
        }
        let impact = &request.impact;
        for (name, level) in [
            ("data", impact.data),
            ("availability", impact.availability),
            ("compliance", impact.compliance),
        ] {
            if level > self.max_impact {
                unmet.push(format!(
                    "{name} impact {level} is above the template's {}",
                    self.max_impact
                ));
            }
        }
        unmet
    }

    /// The three templates a new installation ships with.
    pub fn shipped() -> Vec<CatalogItem> {
        vec![
            CatalogItem {
                name: "certificate-renewal".into(),
                description: "Renew a TLS certificate before expiry, same issuer and key type"
                    .into(),
                categories: vec!["certificate-renewal".into()],
                target_kinds: vec![TargetKind::ComputeCluster, TargetKind::ModelDeployment],
                environments: vec![],
                max_impact: Level::Low,
                allow_regulated_production: false,
            },
            CatalogItem {
                name: "security-patch".into(),
                description: "Apply a vendor security patch to a cluster or training environment"
                    .into(),
                categories: vec!["security-patch".into()],
                target_kinds: vec![TargetKind::ComputeCluster, TargetKind::TrainingEnvironment],
                environments: vec![],
                max_impact: Level::Medium,
                allow_regulated_production: false,
            },
            CatalogItem {
                name: "log-retention".into(),
                description:
                    "Adjust log-retention configuration within the approved retention range".into(),
                categories: vec!["config".into(), "log-retention".into()],
                target_kinds: vec![],
                environments: vec![],
                max_impact: Level::Low,
                allow_regulated_production: false,
            },
        ]
    }
}
