//! Roles a person or service account holds, and the set of them a principal carries.
//!
//! Roles say what someone may do in general; whether they may act on a particular change is
//! decided by the approval rules in [`crate::approval`] (segregation of duties lives there).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Requester,
    Manager,
    CabMember,
    Ciso,
    VpEngineering,
    ComplianceOfficer,
    /// Read-only: sees everything in its tenant, changes nothing.
    Auditor,
    Admin,
    /// A CI/CD service account: asks the deployment gate, records pipeline changes.
    Pipeline,
    /// A monitoring service account (Alertmanager, anything that pages PagerDuty): sends alert
    /// signals and metric samples.
    Monitor,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Requester,
        Role::Manager,
        Role::CabMember,
        Role::Ciso,
        Role::VpEngineering,
        Role::ComplianceOfficer,
        Role::Auditor,
        Role::Admin,
        Role::Pipeline,
        Role::Monitor,
    ];

    /// A service account's role: it asks and records, and never approves or implements.
    pub fn is_service_account(self) -> bool {
        matches!(self, Role::Pipeline | Role::Monitor)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Requester => "requester",
            Role::Manager => "manager",
            Role::CabMember => "cab_member",
            Role::Ciso => "ciso",
            Role::VpEngineering => "vp_engineering",
            Role::ComplianceOfficer => "compliance_officer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Pipeline => "pipeline",
            Role::Monitor => "monitor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role '{s}' (known roles: {})", known.join(", "))
            })
    }
}

/// A non-empty, de-duplicated, sorted set of roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles(Vec<Role>);

impl Roles {
    pub fn new(mut roles: Vec<Role>) -> Result<Self, String> {
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            return Err("at least one role is required".to_owned());
        }
        if roles.len() > 1 && roles.contains(&Role::Auditor) {
            return Err(
                "auditor is a read-only role and cannot be combined with other roles".to_owned(),
            );
        }
        Ok(Self(roles))
    }

    /// Parses `requester,manager`.
    pub fn parse_list(input: &str) -> Result<Self, String> {
        let roles = input
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Role::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(roles)
    }

    /// Whether the set holds a service role (pipeline, monitor) beside a person's role. Steward
    /// refuses to make such an account: a person's credentials would push the evidence
    /// (metrics, signals, deployments) their own changes are judged by, and a service token
    /// would act as a person.
    pub fn mixes_service_and_person(&self) -> bool {
        let service = self.0.iter().filter(|r| r.is_service_account()).count();
        service > 0 && service < self.0.len()
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    /// `requester,manager`, the form the store keeps.
    pub fn to_list(&self) -> String {
        self.0
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_list_sorts_dedups_and_names_unknown_roles() {
        let roles = Roles::parse_list("manager, requester,manager").expect("valid");
        assert_eq!(roles.to_list(), "requester,manager");
        let err = Roles::parse_list("manager,boss").expect_err("unknown role");
        assert!(err.contains("unknown role 'boss'"), "{err}");
        assert!(Roles::parse_list("").is_err());
        let err = Roles::parse_list("auditor,requester").expect_err("auditors stay read-only");
        assert!(err.contains("read-only"), "{err}");
    }
}
