//! `steward admin`: dual control. Privileged operations (role grants, catalog items, tenant
//! policy modules, group mappings) wait for a second admin: `admin pending` lists them,
//! `admin approve ID` applies one, `admin reject ID` refuses (or withdraws) one.

use crate::client::Client;
use crate::{output, paging};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Privileged operations waiting for a second admin (newest first).
    Pending {
        /// pending (the default), approved, rejected or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[command(flatten)]
        list: paging::ListArgs,
    },
    /// Show one privileged operation: what approving it would do.
    Show {
        /// The operation, e.g. OP-7.
        id: String,
    },
    /// Approve a privileged operation another admin requested: it takes effect now.
    Approve {
        /// The operation, e.g. OP-7.
        id: String,
    },
    /// Reject a privileged operation (or withdraw your own request): it never takes effect.
    Reject {
        /// The operation, e.g. OP-7.
        id: String,
        /// Why, for the requester and the record.
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn run(client: &Client, json: bool, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Pending { status, list } => {
            let page = paging::fetch(
                client,
                "/api/v1/admin/pending",
                &[("status", status)],
                &list,
            )
            .await?;
            paging::print(json, &page, &list, |v| output::lines(v, pending_line))
        }
        AdminCommand::Show { id } => {
            let op = client
                .call(Method::GET, &format!("/api/v1/admin/pending/{id}"), None)
                .await?;
            output::emit(json, &op, show)
        }
        AdminCommand::Approve { id } => {
            let op = client
                .call(
                    Method::POST,
                    &format!("/api/v1/admin/pending/{id}/approve"),
                    None,
                )
                .await?;
            output::emit(json, &op, |v| {
                format!(
                    "{} approved: {} (in effect now)\n",
                    s(v, "id"),
                    s(v, "summary")
                )
            })
        }
        AdminCommand::Reject { id, reason } => {
            let op = client
                .call(
                    Method::POST,
                    &format!("/api/v1/admin/pending/{id}/reject"),
                    Some(&json!({ "reason": reason })),
                )
                .await?;
            output::emit(json, &op, |v| {
                format!(
                    "{} rejected: {} (never takes effect)\n",
                    s(v, "id"),
                    s(v, "summary")
                )
            })
        }
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

fn pending_line(v: &Value) -> String {
    format!(
        "{:<8} {:<9} {:<20} {} (requested by {})\n",
        s(v, "id"),
        s(v, "status"),
        s(v, "requested_at").get(..19).unwrap_or("-"),
        s(v, "summary"),
        s(v, "requested_by")
    )
}

fn show(v: &Value) -> String {
    let mut text = format!(
        "{} {}\n{}\nrequested by {} at {}\n",
        s(v, "id"),
        s(v, "status"),
        s(v, "summary"),
        s(v, "requested_by"),
        s(v, "requested_at")
    );
    if let Some(by) = v.get("decided_by").and_then(Value::as_str) {
        text.push_str(&format!("decided by {by} at {}\n", s(v, "decided_at")));
    }
    if let Some(reason) = v.get("reason").and_then(Value::as_str) {
        text.push_str(&format!("reason: {reason}\n"));
    }
    if let Some(op) = v.get("operation") {
        text.push_str(&format!(
            "what approving does:\n{}\n",
            serde_json::to_string_pretty(op).unwrap_or_default()
        ));
    }
    text
}

/// What a privileged request's answer says when it waits for a second admin (202): the
/// operation, or an account or token whose operation is `pending_approval` — with the token,
/// shown once, that works from the moment it is approved. `None` when it took effect.
pub fn waiting_line(v: &Value) -> Option<String> {
    if let Some(id) = v.get("pending_approval").and_then(Value::as_str) {
        let who = v
            .get("name")
            .or_else(|| v.get("user"))
            .and_then(Value::as_str)
            .unwrap_or("-");
        let summary = v
            .pointer("/operation/summary")
            .and_then(Value::as_str)
            .unwrap_or("-");
        return Some(format!(
            "{id} waits for a second admin: {summary} (steward admin approve {id})\n\
             token for {who}: {}\n(shown once; it works once {id} is approved)\n",
            s(v, "token")
        ));
    }
    let id = v.get("id").and_then(Value::as_str)?;
    id.starts_with("OP-").then(|| {
        format!(
            "{id} waits for a second admin: {} (steward admin approve {id})\n",
            s(v, "summary")
        )
    })
}
