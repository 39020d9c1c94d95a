//! `steward tenant groups …`: the tenant's mapping of identity-provider groups to roles, which
//! decides the roles of people who sign in through single sign-on (and of bearer JWTs). Listing
//! is open to readers of the tenant; setting and deleting are for its admins.

use crate::client::Client;
use crate::output::emit as print;
use crate::paging::{self, ListArgs};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Map a provider group to roles in your tenant (admin): its members hold them from their
    /// next sign-in on. Replaces the group's roles if it had some.
    Set {
        /// The group exactly as the identity provider names it in the `groups` claim.
        group: String,
        /// The roles its members get, comma-separated (e.g. cab_member or requester,manager).
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
    },
    /// List your tenant's group-to-role mapping, by group.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Remove a group's mapping in your tenant (admin): its members lose its roles at their next
    /// sign-in.
    Delete {
        /// The group exactly as the identity provider names it.
        group: String,
    },
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("-")
}

fn roles(v: &Value) -> String {
    v.pointer("/roles")
        .and_then(Value::as_array)
        .map(|roles| {
            roles
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_else(|| "-".into())
}

fn mapping_line(v: &Value) -> String {
    format!(
        "{:<32} {:<32} set by {} at {}\n",
        s(v, "/group"),
        roles(v),
        s(v, "/created_by"),
        s(v, "/created_at")
    )
}

/// A group name as one path segment: every byte but the unreserved ones percent-encoded, so
/// `/risk/ML CAB` stays one segment.
fn segment(group: &str) -> String {
    group
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub async fn run(client: &Client, json: bool, command: GroupsCommand) -> anyhow::Result<()> {
    match command {
        GroupsCommand::Set { group, roles } => {
            let body = json!({ "roles": roles });
            let path = format!("/api/v1/groups/{}", segment(&group));
            let answer = client.call(Method::PUT, &path, Some(&body)).await?;
            print(json, &answer, |v| {
                crate::admin::waiting_line(v).unwrap_or_else(|| {
                    format!(
                        "group {} gives {} in this tenant\n",
                        s(v, "/group"),
                        self::roles(v)
                    )
                })
            })
        }
        GroupsCommand::List { list } => {
            let page = paging::fetch(client, "/api/v1/groups", &[], &list).await?;
            paging::print(json, &page, &list, |items| {
                crate::output::lines(items, mapping_line)
            })
        }
        GroupsCommand::Delete { group } => {
            let path = format!("/api/v1/groups/{}", segment(&group));
            let answer = client.call(Method::DELETE, &path, None).await?;
            print(json, &answer, |v| {
                format!(
                    "removed the mapping of group {} (it gave {})\n",
                    s(v, "/group"),
                    roles(v)
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_names_stay_one_path_segment() {
        assert_eq!(super::segment("ml-cab"), "ml-cab");
        assert_eq!(super::segment("/risk/ML CAB"), "%2Frisk%2FML%20CAB");
    }
}
