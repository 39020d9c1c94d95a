//! `steward tenant …`: the installation's tenants (business units), for installation admins.
//! `tenant create` prints the new tenant's first admin token once, as `user create` prints a
//! user's (`--output json`: `.token`).

mod groups;

use crate::client::Client;
use crate::output::emit as print;
use crate::paging::{self, ListArgs};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its first admin account (installation admins) and print that
    /// account's API token.
    Create {
        /// The tenant's name: lowercase letters, digits, '-', '_' and '.'.
        name: String,
        /// The name of the tenant's first admin account.
        #[arg(long)]
        admin: String,
    },
    /// List the installation's tenants, by name (installation admins).
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Recovery (installation admins): approve a waiting privileged operation of a tenant that
    /// has no second active admin (its only admin cannot approve its own request).
    Approve {
        /// The tenant.
        name: String,
        /// The operation, e.g. OP-7 (its admin sees it with `steward admin pending`).
        id: String,
    },
    /// Your tenant's mapping of identity-provider groups to roles (single sign-on).
    Groups {
        #[command(subcommand)]
        command: groups::GroupsCommand,
    },
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("-")
}

fn tenant_line(v: &Value) -> String {
    format!(
        "{:<24} created {}  by {}\n",
        s(v, "/name"),
        s(v, "/created_at"),
        s(v, "/created_by")
    )
}

fn created(v: &Value) -> String {
    format!(
        "created tenant {} with its admin {}\ntoken: {}\n(shown once; hand it to {} and keep it secret: it is stored only as a hash)\n",
        s(v, "/name"),
        s(v, "/admin"),
        s(v, "/token"),
        s(v, "/admin"),
    )
}

pub async fn run(client: &Client, json: bool, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { name, admin } => {
            let body = json!({ "name": name, "admin": admin });
            let tenant = client
                .call(Method::POST, "/api/v1/tenants", Some(&body))
                .await?;
            print(json, &tenant, created)
        }
        TenantCommand::Approve { name, id } => {
            let path = format!("/api/v1/tenants/{name}/pending/{id}/approve");
            let op = client.call(Method::POST, &path, None).await?;
            print(json, &op, |v| {
                format!(
                    "{} of tenant {name} approved: {} (in effect now)\n",
                    s(v, "/id"),
                    s(v, "/summary")
                )
            })
        }
        TenantCommand::Groups { command } => groups::run(client, json, command).await,
        TenantCommand::List { list } => {
            let page = paging::fetch(client, "/api/v1/tenants", &[], &list).await?;
            paging::print(json, &page, &list, |items| {
                crate::output::lines(items, tenant_line)
            })
        }
    }
}
