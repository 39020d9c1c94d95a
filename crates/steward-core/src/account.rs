//! Accounts with a lifecycle: whether an account may act (`active` or `disabled`), when a token
//! stops working (its expiry, as people write it), and when an account change would lock a
//! tenant out. (Which open approval slots a disabled person leaves is
//! [`crate::approval::slots_open_to`].)
//!
//! The rules are here so that the store (which applies them inside its transaction) and the
//! server (which explains them) say the same thing: an account that is disabled, or a token that
//! expired or was revoked, never authenticates; a tenant never locks itself out (the last active
//! admin keeps the role and the account).

use crate::names::UserName;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether an account may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    /// Off-boarded (or suspended): its tokens are refused on the next request.
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Result<AccountStatus, String> {
        match text {
            "active" => Ok(AccountStatus::Active),
            "disabled" => Ok(AccountStatus::Disabled),
            other => Err(format!("'{other}' is not an account status")),
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token does not authenticate. Each is answered as a 401 saying so, so a pipeline's
/// operator knows whether to ask for the account back or for a new token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error(
        "account disabled: an admin disabled this account (`steward user enable NAME` restores it)"
    )]
    AccountDisabled,
    #[error(
        "token expired: ask an admin for a new one, or rotate before expiry (`steward token rotate`)"
    )]
    Expired,
    #[error("token revoked: it was replaced by `steward token rotate`; use the new token")]
    Rotated,
    #[error("token revoked: an admin revoked this account's tokens; ask an admin for a new one")]
    Revoked,
}

/// Why a token was revoked, as kept with its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// Replaced by its holder (`token rotate`).
    Rotated,
    /// Revoked by an admin (`token revoke --user`).
    Revoked,
}

impl Revocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::Rotated => "rotated",
            Revocation::Revoked => "revoked",
        }
    }
}

/// What is known about a presented token and its account; [`check_token`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFacts {
    pub status: AccountStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: Option<Revocation>,
}

/// Whether a token authenticates now. A disabled account is named first: it is what an admin
/// changes, and what the holder should ask about.
pub fn check_token(facts: &TokenFacts, now: DateTime<Utc>) -> Result<(), TokenRefused> {
    if facts.status == AccountStatus::Disabled {
        return Err(TokenRefused::AccountDisabled);
    }
    match facts.revoked {
        Some(Revocation::Rotated) => return Err(TokenRefused::Rotated),
        Some(Revocation::Revoked) => return Err(TokenRefused::Revoked),
        None => {}
    }
    match facts.expires_at {
        Some(at) if at <= now => Err(TokenRefused::Expired),
        _ => Ok(()),
    }
}

/// When a token that is used now should have its account's `last_used_at` written: never more
/// than once a minute, so a busy pipeline's requests are reads.
pub fn last_use_is_stale(last_used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_used_at.is_none_or(|at| now - at >= Duration::minutes(1))
}

/// A token's expiry as written: a duration from now (`90d`, `12h`, `30m`, `2w`) or an RFC 3339
/// instant (`2027-03-31T00:00:00Z`). It must lie in the future.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let at = if let Some(duration) = parse_duration(text) {
        now.checked_add_signed(duration?)
            .ok_or_else(|| format!("'{text}' is too far in the future"))?
    } else {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                format!(
                    "'{text}' is not an expiry: write a duration (90d, 12h, 30m, 2w) or an RFC 3339 time (2027-03-31T00:00:00Z)"
                )
            })?
    };
    if at <= now {
        return Err(format!(
            "'{text}' has already passed: an expiry must lie in the future"
        ));
    }
    Ok(at)
}

/// `<n><unit>` with unit m, h, d or w; `None` when the text is not of that shape.
fn parse_duration(text: &str) -> Option<Result<Duration, String>> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let per_unit: i64 = match unit {
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => return None,
    };
    Some(
        digits
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .and_then(|n| n.checked_mul(per_unit))
            .and_then(Duration::try_seconds)
            .ok_or_else(|| format!("'{text}' is not a usable duration: give a positive number")),
    )
}

/// Why an account change would lock a tenant out (or make no sense).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockoutRefused {
    #[error("you cannot disable your own account: ask another admin")]
    SelfDisable,
    #[error(
        "{user} is the last active admin of this tenant: make another account admin first, so the tenant is not locked out"
    )]
    LastAdmin { user: UserName },
    #[error(
        "you cannot revoke your own tokens (you would lock yourself out): use `steward token rotate`"
    )]
    OwnTokens,
}

/// Refuses an account change that leaves the tenant without an active admin: `user` is the
/// account changed, `stays_admin` whether it is still an active admin afterwards, and
/// `active_admins` the tenant's active admins before the change.
pub fn keeps_an_admin(
    user: &UserName,
    stays_admin: bool,
    active_admins: &[UserName],
) -> Result<(), LockoutRefused> {
    if stays_admin || !active_admins.contains(user) || active_admins.iter().any(|a| a != user) {
        Ok(())
    } else {
        Err(LockoutRefused::LastAdmin { user: user.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .single()
            .expect("time")
    }

    fn name(n: &str) -> UserName {
        UserName::parse(n).expect("name")
    }

    #[test]
    fn expiries_are_durations_or_instants_in_the_future() {
        let check = |text: &str, expected: Result<&str, &str>| {
            let got = parse_expiry(text, now()).map(|t| t.to_rfc3339());
            match expected {
                Ok(at) => assert_eq!(got, Ok(at.to_owned()), "{text}"),
                Err(says) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(says)),
                    "{text}: {got:?}"
                ),
            }
        };
        check("90d", Ok("2027-03-01T12:00:00+00:00"));
        check("12h", Ok("2026-12-02T00:00:00+00:00"));
        check("30m", Ok("2026-12-01T12:30:00+00:00"));
        check("2w", Ok("2026-12-15T12:00:00+00:00"));
        check("2027-01-01T00:00:00Z", Ok("2027-01-01T00:00:00+00:00"));
        check("2027-01-01T01:00:00+01:00", Ok("2027-01-01T00:00:00+00:00"));
        check("0d", Err("positive number"));
        check("2026-01-01T00:00:00Z", Err("already passed"));
        check("soon", Err("is not an expiry"));
        check("90y", Err("is not an expiry"));
        check("d", Err("is not an expiry"));
        check("99999999999999w", Err("positive number"));
    }

    #[test]
    fn a_disabled_account_a_revoked_or_an_expired_token_is_refused() {
        let active = TokenFacts {
            status: AccountStatus::Active,
            expires_at: None,
            revoked: None,
        };
        assert_eq!(check_token(&active, now()), Ok(()));
        let check = |facts: TokenFacts| check_token(&facts, now());
        assert_eq!(
            check(TokenFacts {
                status: AccountStatus::Disabled,
                revoked: Some(Revocation::Rotated),
                ..active
            }),
            Err(TokenRefused::AccountDisabled)
        );
        assert_eq!(
            check(TokenFacts {
                revoked: Some(Revocation::Rotated),
                ..active
            }),
            Err(TokenRefused::Rotated)
        );
        assert_eq!(
            check(TokenFacts {
                revoked: Some(Revocation::Revoked),
                ..active
            }),
            Err(TokenRefused::Revoked)
        );
        assert_eq!(
            check(TokenFacts {
                expires_at: Some(now()),
                ..active
            }),
            Err(TokenRefused::Expired)
        );
        assert_eq!(
            check(TokenFacts {
                expires_at: Some(now() + Duration::seconds(1)),
                ..active
            }),
            Ok(())
        );
        for refusal in [
            TokenRefused::AccountDisabled,
            TokenRefused::Expired,
            TokenRefused::Rotated,
            TokenRefused::Revoked,
        ] {
            let says = refusal.to_string();
            assert!(
                ["account disabled", "token expired", "token revoked"]
                    .iter()
                    .any(|s| says.starts_with(s)),
                "{says}"
            );
        }
    }

    #[test]
    fn last_use_is_written_at_most_once_a_minute() {
        assert!(last_use_is_stale(None, now()));
        assert!(!last_use_is_stale(
            Some(now() - Duration::seconds(59)),
            now()
        ));
        assert!(last_use_is_stale(
            Some(now() - Duration::seconds(60)),
            now()
        ));
    }

    #[test]
    fn the_last_active_admin_stays() {
        let (ada, bob) = (name("ada"), name("bob"));
        assert_eq!(
            keeps_an_admin(&ada, false, std::slice::from_ref(&ada)),
            Err(LockoutRefused::LastAdmin { user: ada.clone() })
        );
        assert_eq!(
            keeps_an_admin(&ada, true, std::slice::from_ref(&ada)),
            Ok(())
        );
        assert_eq!(
            keeps_an_admin(&ada, false, &[ada.clone(), bob.clone()]),
            Ok(())
        );
        // Changing someone who is not an active admin never locks anyone out.
        assert_eq!(
            keeps_an_admin(&bob, false, std::slice::from_ref(&ada)),
            Ok(())
        );
        assert_eq!(keeps_an_admin(&bob, false, &[]), Ok(()));
    }

    #[test]
    fn statuses_round_trip() {
        for status in [AccountStatus::Active, AccountStatus::Disabled] {
            assert_eq!(AccountStatus::parse(status.as_str()), Ok(status));
        }
        assert!(AccountStatus::parse("gone").is_err());
    }
}
