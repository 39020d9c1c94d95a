//! `steward user …` and `steward token …`: accounts and their lifecycle (create, list, disable,
//! enable, roles) and API tokens (rotate one's own, revoke or issue an account's).
//!
//! A token's `--expires` is a duration from now (`90d`, `12h`, `30m`, `2w`), sent as written so
//! the server's clock decides, or a time (RFC 3339, a date, a local time in `--tz`), sent as an
//! RFC 3339 instant like every other time flag.

use crate::client::Client;
use crate::output::{self, emit};
use crate::{paging, times};
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create an account (admin only) and print its API token. An account with a privileged role
    /// (admin, ciso, vp_engineering, cab_member, compliance_officer, auditor) exists only once a
    /// second admin approves it (`steward admin approve OP-N`); its token works from then.
    Create {
        name: String,
        /// Comma-separated: requester, manager, cab_member, ciso, vp_engineering, compliance_officer, auditor, admin, pipeline, monitor.
        #[arg(long = "role", required = true)]
        roles: String,
        /// When its token stops working: 90d, 12h, 30m, 2w, or a time (RFC 3339, a date, a local time in --tz). Never, if absent.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List accounts, by name: status, roles, created, last used.
    List {
        #[command(flatten)]
        list: paging::ListArgs,
    },
    /// Disable an account (admin only): its tokens stop working at once, and the owners of
    /// changes awaiting its approval are told.
    Disable { name: String },
    /// Enable a disabled account again (admin only).
    Enable { name: String },
    /// Set an account's roles (admin only), replacing the ones it has. Granting a privileged
    /// role waits for a second admin (`steward admin approve OP-N`).
    Roles {
        name: String,
        /// The roles it holds from now on, comma-separated.
        #[arg(long = "set", required = true)]
        roles: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Replace your own token by a new one and print it: the old one stops working at once.
    Rotate {
        /// When the new token stops working: 90d, 12h, 30m, 2w, or a time. Never, if absent.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Revoke every token of an account (admin only): none works again.
    Revoke {
        /// The account whose tokens are revoked.
        #[arg(long)]
        user: String,
    },
    /// Issue a new token for an account (admin only) and print it.
    Issue {
        /// The account the token is for.
        #[arg(long)]
        user: String,
        /// When the token stops working: 90d, 12h, 30m, 2w, or a time. Never, if absent.
        #[arg(long)]
        expires: Option<String>,
    },
}

/// `--expires` as the API takes it: a duration as written, a time as an RFC 3339 instant.
fn expires(text: Option<String>, tz: &str) -> anyhow::Result<Option<String>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let trimmed = text.trim();
    let is_duration = trimmed.len() > 1
        && trimmed.ends_with(['m', 'h', 'd', 'w'])
        && trimmed[..trimmed.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_digit());
    if is_duration {
        Ok(Some(trimmed.to_owned()))
    } else {
        times::instant("--expires", trimmed, times::zone(tz)?).map(Some)
    }
}

fn roles_list(roles: &str) -> Vec<&str> {
    roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .collect()
}

pub async fn run_user(
    client: &Client,
    json: bool,
    tz: &str,
    command: UserCommand,
) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            name,
            roles,
            expires: written,
        } => {
            let body = json!({ "name": name, "roles": roles_list(&roles),
                               "expires": expires(written, tz)? });
            let user = client
                .call(Method::POST, "/api/v1/users", Some(&body))
                .await?;
            emit(json, &user, |v| {
                crate::admin::waiting_line(v).unwrap_or_else(|| {
                    let mut text = output::created_user(v);
                    if v.get("token_expires_at").is_some_and(Value::is_string) {
                        text.push_str(&format!("expires: {}\n", when(v, "/token_expires_at")));
                    }
                    text
                })
            })
        }
        UserCommand::List { list } => {
            let users = paging::fetch(client, "/api/v1/users", &[], &list).await?;
            paging::print(json, &users, &list, user_table)
        }
        UserCommand::Disable { name } => {
            let path = format!("/api/v1/users/{name}/disable");
            let answer = client.call(Method::POST, &path, None).await?;
            emit(json, &answer, disabled)
        }
        UserCommand::Enable { name } => {
            let path = format!("/api/v1/users/{name}/enable");
            let user = client.call(Method::POST, &path, None).await?;
            emit(json, &user, |v| format!("enabled {}\n", s(v, "/name")))
        }
        UserCommand::Roles { name, roles } => {
            let path = format!("/api/v1/users/{name}/roles");
            let body = json!({ "roles": roles_list(&roles) });
            let user = client.call(Method::PUT, &path, Some(&body)).await?;
            emit(json, &user, |v| {
                crate::admin::waiting_line(v).unwrap_or_else(|| {
                    format!("{} now holds {}\n", s(v, "/name"), list(v, "/roles"))
                })
            })
        }
    }
}

pub async fn run_token(
    client: &Client,
    json: bool,
    tz: &str,
    command: TokenCommand,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Rotate { expires: written } => {
            let body = json!({ "expires": expires(written, tz)? });
            let token = client
                .call(Method::POST, "/api/v1/tokens/rotate", Some(&body))
                .await?;
            emit(json, &token, |v| {
                new_token(v, "rotated: the token you called with no longer works")
            })
        }
        TokenCommand::Revoke { user } => {
            let path = format!("/api/v1/users/{user}/tokens/revoke");
            let answer = client.call(Method::POST, &path, None).await?;
            emit(json, &answer, |v| {
                let n = v.get("revoked").and_then(Value::as_u64).unwrap_or(0);
                format!(
                    "revoked {n} token{} of {}: none works again (steward token issue --user {} makes a new one)\n",
                    if n == 1 { "" } else { "s" },
                    s(v, "/user"),
                    s(v, "/user")
                )
            })
        }
        TokenCommand::Issue {
            user,
            expires: written,
        } => {
            let path = format!("/api/v1/users/{user}/tokens");
            let body = json!({ "expires": expires(written, tz)? });
            let token = client.call(Method::POST, &path, Some(&body)).await?;
            emit(json, &token, |v| {
                crate::admin::waiting_line(v).unwrap_or_else(|| new_token(v, "issued"))
            })
        }
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("-")
}

fn list(v: &Value, pointer: &str) -> String {
    let items: Vec<&str> = v
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

/// A time as the table shows it: to the minute, UTC; `never` when absent.
fn when(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer).and_then(Value::as_str) {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.format("%Y-%m-%d %H:%MZ").to_string())
            .unwrap_or_else(|_| t.to_owned()),
        None => "never".into(),
    }
}

/// `user list`: one account a line, with a header.
fn user_table(items: &Value) -> String {
    let Some(items) = items.as_array().filter(|i| !i.is_empty()) else {
        return "no accounts\n".into();
    };
    let mut out = format!(
        "{:<24} {:<9} {:<18} {:<18} {}\n",
        "NAME", "STATUS", "CREATED", "LAST USED", "ROLES"
    );
    for v in items {
        out.push_str(&format!(
            "{:<24} {:<9} {:<18} {:<18} {}\n",
            s(v, "/name"),
            s(v, "/status"),
            when(v, "/created_at"),
            when(v, "/last_used_at"),
            list(v, "/roles"),
        ));
    }
    out
}

/// `user disable`: the account, and each change reported to its owner.
fn disabled(v: &Value) -> String {
    let name = s(v, "/user/name");
    let mut out = format!("disabled {name}: its tokens no longer work\n");
    let reported = v
        .get("reported")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if reported.is_empty() {
        out.push_str("no change awaiting approval was waiting on them\n");
    }
    for r in &reported {
        out.push_str(&format!(
            "reported {} to {}: open slot{} {}\n",
            s(r, "/change"),
            s(r, "/notified"),
            if r["slots"].as_array().is_some_and(|a| a.len() > 1) {
                "s"
            } else {
                ""
            },
            list(r, "/slots").replace(',', ", "),
        ));
    }
    out
}

/// A new token, shown once.
fn new_token(v: &Value, what: &str) -> String {
    let expires = match v.get("expires_at").and_then(Value::as_str) {
        Some(_) => when(v, "/expires_at"),
        None => "never".into(),
    };
    format!(
        "{what} (account {})\ntoken: {}\nexpires: {expires}\n(shown once; keep it secret: it is stored only as a hash)\n",
        s(v, "/user"),
        s(v, "/token"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_pass_durations_and_read_times_in_the_zone() {
        assert_eq!(expires(None, "UTC").expect("none"), None);
        assert_eq!(
            expires(Some("90d".into()), "UTC").expect("duration"),
            Some("90d".into())
        );
        assert_eq!(
            expires(Some("2027-01-31".into()), "Europe/London").expect("date"),
            Some("2027-01-31T00:00:00Z".into())
        );
        assert_eq!(
            expires(Some("2027-07-01 09:00".into()), "Europe/London").expect("local"),
            Some("2027-07-01T08:00:00Z".into())
        );
        let error = expires(Some("soon".into()), "UTC").expect_err("refused");
        assert!(error.to_string().starts_with("--expires"), "{error}");
    }

    #[test]
    fn the_user_table_shows_status_created_and_last_use() {
        let items = json!([
            {"name": "mia", "roles": ["manager"], "status": "disabled",
             "created_at": "2026-11-02T10:00:00.123Z", "last_used_at": null, "disabled_at": "2026-12-01T00:00:00Z"},
            {"name": "rita", "roles": ["requester", "auditor"], "status": "active",
             "created_at": "2026-11-01T09:30:00Z", "last_used_at": "2026-12-01T08:15:42Z"}
        ]);
        let table = user_table(&items);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("NAME"), "{table}");
        assert!(
            lines[1].contains("disabled")
                && lines[1].contains("2026-11-02 10:00Z")
                && lines[1].contains("never"),
            "{table}"
        );
        assert!(
            lines[2].contains("active")
                && lines[2].contains("2026-12-01 08:15Z")
                && lines[2].ends_with("requester,auditor"),
            "{table}"
        );
    }
}
