//! Single sign-on's decisions: which account a provider's identity becomes, and which tenant and
//! roles its groups give it.
//!
//! The identity provider says who someone is (a subject, a preferred user name) and which groups
//! they belong to; Steward's tenants say what each group means to them ([`GroupName`] → roles,
//! per tenant). [`resolve`] joins the two: the roles are the union over the person's groups, in
//! the one tenant those groups reach (or the one they chose at sign-in when they reach several).
//! Nothing here remembers anything: the roles are decided again at every sign-in and for every
//! bearer token, so a person removed from a group loses the role once their session or token ends.

use crate::names::{TenantId, UserName};
use crate::role::{Role, Roles};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A group as the identity provider names it (`ml-cab`, `/risk/cab`, an Azure AD object id).
/// Providers' names are not slugs, so any text of 1–256 characters without control characters
/// and without surrounding spaces is a group name; it is compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(input: &str) -> Result<GroupName, String> {
        if input.is_empty() {
            return Err("must not be empty".into());
        }
        if input.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if input.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if input.trim() != input {
            return Err("must not start or end with spaces".into());
        }
        Ok(GroupName(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = String;
    fn try_from(value: String) -> Result<GroupName, String> {
        GroupName::parse(&value)
    }
}

impl From<GroupName> for String {
    fn from(value: GroupName) -> String {
        value.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The account name an identity signs in as: the first of `preferred_username`, `client_id`
/// (a workload's token) and `sub` that yields a name. Provider names are lowercased and every
/// character a Steward name may not hold becomes `-` (`Alice.Smith@bank.example` →
/// `alice.smith-bank.example`); the account stays bound to the provider's subject, so two
/// identities that read alike never share an account (see [`SignInRefused::OtherIdentity`]).
pub fn account_name(candidates: &[Option<&str>]) -> Result<UserName, SignInRefused> {
    candidates
        .iter()
        .flatten()
        .find_map(|candidate| normalise(candidate))
        .ok_or(SignInRefused::NoUsableName)
}

fn normalise(candidate: &str) -> Option<UserName> {
    let mapped: String = candidate
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let cut: String = trimmed.chars().take(64).collect();
    UserName::parse(&cut).ok()
}

/// What a tenant's mapping gives one of the person's groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupGrant {
    pub tenant: TenantId,
    pub group: GroupName,
    pub roles: Roles,
}

/// The tenant and roles a person's groups give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub tenant: TenantId,
    pub roles: Roles,
    /// The groups that gave them, for the record.
    pub groups: Vec<GroupName>,
}

/// Why a person cannot sign in (each is answered with what to do about it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefused {
    #[error(
        "your groups at the identity provider give you no role in Steward: ask a Steward admin to map one of your groups to a role (`steward tenant groups set GROUP --roles ROLE`)"
    )]
    NoRole,
    #[error(
        "your groups give you roles in several tenants ({}): choose one by signing in at /auth/login?tenant=NAME",
        .0.iter().map(TenantId::as_str).collect::<Vec<_>>().join(", ")
    )]
    ChooseTenant(Vec<TenantId>),
    #[error(
        "your groups give you no role in tenant {chosen}{}",
        if .reachable.is_empty() { String::new() } else {
            format!(": they reach {}", .reachable.iter().map(TenantId::as_str).collect::<Vec<_>>().join(", "))
        }
    )]
    NotInTenant {
        chosen: TenantId,
        reachable: Vec<TenantId>,
    },
    #[error(
        "your groups give you auditor together with {}, but auditor is read-only and cannot be combined with other roles: ask a Steward admin to fix the group mapping",
        .0.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
    )]
    AuditorCombined(Vec<Role>),
    #[error(
        "the identity provider gave no name Steward can use (preferred_username, client_id or sub)"
    )]
    NoUsableName,
    #[error(
        "the account name {0} belongs to an account that does not sign in through the identity provider: ask a Steward admin"
    )]
    LocalAccount(UserName),
    #[error(
        "the account name {0} is bound to another identity at the provider: ask a Steward admin"
    )]
    OtherIdentity(UserName),
    #[error("the account {0} is disabled: ask a Steward admin to enable it")]
    Disabled(UserName),
}

/// The tenant and roles `grants` (every mapping row matching one of the person's groups, in any
/// tenant) give, in `chosen` when the person named a tenant. A person reaching several tenants
/// must choose one; roles are the union of their groups' roles in that tenant.
pub fn resolve(
    grants: &[GroupGrant],
    chosen: Option<&TenantId>,
) -> Result<Resolved, SignInRefused> {
    let mut by_tenant: BTreeMap<&TenantId, (BTreeSet<Role>, Vec<GroupName>)> = BTreeMap::new();
    for grant in grants {
        let entry = by_tenant.entry(&grant.tenant).or_default();
        entry.0.extend(grant.roles.iter());
        entry.1.push(grant.group.clone());
    }
    let reachable: Vec<TenantId> = by_tenant.keys().map(|t| (*t).clone()).collect();
    let tenant = match chosen {
        Some(chosen) if by_tenant.contains_key(chosen) => chosen.clone(),
        Some(chosen) => {
            return Err(SignInRefused::NotInTenant {
                chosen: chosen.clone(),
                reachable,
            });
        }
        None => match reachable.as_slice() {
            [] => return Err(SignInRefused::NoRole),
            [only] => only.clone(),
            _ => return Err(SignInRefused::ChooseTenant(reachable)),
        },
    };
    let (roles, mut groups) = by_tenant.remove(&tenant).unwrap_or_default();
    groups.sort();
    groups.dedup();
    let roles: Vec<Role> = roles.into_iter().collect();
    let combined: Vec<Role> = roles
        .iter()
        .copied()
        .filter(|r| *r != Role::Auditor)
        .collect();
    let roles = Roles::new(roles).map_err(|_| SignInRefused::AuditorCombined(combined))?;
    Ok(Resolved {
        tenant,
        roles,
        groups,
    })
}

/// The roles a sign-in stores for an account whose groups now give `mapped`, and whether it kept
/// `admin` the groups no longer give. The groups decide, except that they may not take `admin`
/// from the tenant's last active admin (`active_admins`: the tenant's active admins before the
/// sign-in; the same rule as `steward user roles`, [`crate::account::keeps_an_admin`]): a tenant
/// must not lock itself out through its provider's groups. Such an account keeps `admin` beside
/// the roles its groups give, or, when those cannot be held with `admin` (auditor), keeps the
/// roles it has.
pub fn synced_roles(
    name: &UserName,
    current: &Roles,
    mapped: &Roles,
    active_admins: &[UserName],
) -> (Roles, bool) {
    let stays_admin = mapped.contains(Role::Admin);
    if crate::account::keeps_an_admin(name, stays_admin, active_admins).is_ok() {
        return (mapped.clone(), false);
    }
    let with_admin = mapped.iter().chain([Role::Admin]).collect();
    (
        Roles::new(with_admin).unwrap_or_else(|_| current.clone()),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).expect("tenant")
    }

    fn grant(t: &str, group: &str, roles: &str) -> GroupGrant {
        GroupGrant {
            tenant: tenant(t),
            group: GroupName::parse(group).expect("group"),
            roles: Roles::parse_list(roles).expect("roles"),
        }
    }

    #[test]
    fn roles_are_the_union_of_the_groups_in_the_one_tenant_they_reach() {
        let grants = [
            grant("risk", "ml-cab", "cab_member"),
            grant("risk", "ml-eng", "requester"),
        ];
        let resolved = resolve(&grants, None).expect("one tenant");
        assert_eq!(resolved.tenant, tenant("risk"));
        assert_eq!(resolved.roles.to_list(), "requester,cab_member");
        assert_eq!(resolved.groups.len(), 2);
    }

    #[test]
    fn several_tenants_need_a_choice_and_the_choice_must_be_reachable() {
        let grants = [
            grant("risk", "ml-cab", "cab_member"),
            grant("retail", "ml-eng", "requester"),
        ];
        let err = resolve(&grants, None).expect_err("ambiguous");
        assert_eq!(
            err,
            SignInRefused::ChooseTenant(vec![tenant("retail"), tenant("risk")])
        );
        assert!(err.to_string().contains("retail, risk"), "{err}");
        let chosen = resolve(&grants, Some(&tenant("retail"))).expect("chosen");
        assert_eq!(chosen.roles.to_list(), "requester");
        let err = resolve(&grants, Some(&tenant("cards"))).expect_err("not reachable");
        assert!(err.to_string().contains("no role in tenant cards"), "{err}");
    }

    #[test]
    fn no_mapped_group_is_no_role_and_auditor_stays_alone() {
        assert_eq!(resolve(&[], None), Err(SignInRefused::NoRole));
        let grants = [
            grant("risk", "audit", "auditor"),
            grant("risk", "ml-eng", "requester"),
        ];
        assert_eq!(
            resolve(&grants, None),
            Err(SignInRefused::AuditorCombined(vec![Role::Requester]))
        );
    }

    #[test]
    fn groups_never_take_admin_from_the_last_active_admin() {
        let (ada, bob) = (
            UserName::parse("ada").expect("name"),
            UserName::parse("bob").expect("name"),
        );
        let roles = |list: &str| Roles::parse_list(list).expect("roles");
        let admin = roles("admin");
        // The last active admin keeps admin beside what the groups now give.
        assert_eq!(
            synced_roles(
                &ada,
                &admin,
                &roles("requester"),
                std::slice::from_ref(&ada)
            ),
            (roles("requester,admin"), true)
        );
        // ...or keeps its roles when the groups give a role admin cannot join.
        assert_eq!(
            synced_roles(&ada, &admin, &roles("auditor"), std::slice::from_ref(&ada)),
            (admin.clone(), true)
        );
        // With another active admin, or for someone who is not one, the groups decide.
        assert_eq!(
            synced_roles(
                &ada,
                &admin,
                &roles("requester"),
                &[ada.clone(), bob.clone()]
            ),
            (roles("requester"), false)
        );
        assert_eq!(
            synced_roles(
                &bob,
                &roles("manager"),
                &roles("requester"),
                std::slice::from_ref(&ada)
            ),
            (roles("requester"), false)
        );
    }

    #[test]
    fn provider_names_become_account_names() {
        let check = |candidates: &[Option<&str>], expected: Option<&str>| {
            assert_eq!(
                account_name(candidates).ok().as_ref().map(UserName::as_str),
                expected,
                "{candidates:?}"
            );
        };
        check(&[Some("alice")], Some("alice"));
        check(
            &[Some("Alice.Smith@Bank.example")],
            Some("alice.smith-bank.example"),
        );
        check(
            &[None, Some("ci-deployer"), Some("sub")],
            Some("ci-deployer"),
        );
        check(&[Some("@@@"), None, Some("4f1c")], Some("4f1c"));
        check(&[Some("")], None);
    }

    #[test]
    fn group_names_are_provider_text() {
        assert!(GroupName::parse("/risk/ML CAB").is_ok());
        assert!(GroupName::parse("").is_err());
        assert!(GroupName::parse(" padded").is_err());
        assert!(GroupName::parse("tab\there").is_err());
        assert!(GroupName::parse(&"g".repeat(257)).is_err());
    }
}
