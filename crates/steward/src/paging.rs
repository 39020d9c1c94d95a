//! Lists from the command line. Every list endpoint answers one page, `{"items", "next_cursor"}`;
//! every list command takes `--limit N` (one page of N) and `--all` (follow the cursors to the end
//! of the list), prints the page's items, and — in text — ends with a line saying how to get the
//! rest when the server said there is more. `--output json` prints the page as the server
//! answered it; with `--all`, one page holding every item and `next_cursor: null`.

use crate::client::Client;
use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

/// The most items one page holds (the server's maximum).
pub const MAX_LIMIT: u32 = 500;

/// `--limit` and `--all`, on every list command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ListArgs {
    /// At most this many items, 1 to 500 [default: the server's, 100]; with --all, the size of
    /// each page fetched [default: 500].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_LIMIT as i64))]
    pub limit: Option<u32>,
    /// Every item: follow the server's cursors to the end of the list.
    #[arg(long)]
    pub all: bool,
}

/// The list at `path` (with its own `query` filters) as `args` asks: one page, or with `--all`
/// one page holding every item.
pub async fn fetch(
    client: &Client,
    path: &str,
    query: &[(&str, String)],
    args: &ListArgs,
) -> anyhow::Result<Value> {
    let limit = args
        .limit
        .or(args.all.then_some(MAX_LIMIT))
        .map(|l| l.to_string());
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut asked: Vec<(&str, String)> = query.to_vec();
        if let Some(limit) = &limit {
            asked.push(("limit", limit.clone()));
        }
        if let Some(cursor) = &cursor {
            asked.push(("cursor", cursor.clone()));
        }
        let page = client
            .call_with_query(Method::GET, path, &asked, None)
            .await?;
        if !args.all {
            return Ok(page);
        }
        let next = next_cursor(&page)?;
        items.extend(
            page.get("items")
                .and_then(Value::as_array)
                .with_context(|| format!("the server's answer to {path} is not a page of items"))?
                .iter()
                .cloned(),
        );
        match next {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            Some(_) => anyhow::bail!("the server gave the same cursor twice for {path}"),
            None => return Ok(json!({"items": items, "next_cursor": null})),
        }
    }
}

/// Calls `each` with every item of the list at `path`, fetching pages of 500 as it goes (for
/// commands that stream a whole list, like `audit export`).
pub async fn each_item(
    client: &Client,
    path: &str,
    query: &[(&str, String)],
    mut each: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut cursor: Option<String> = None;
    loop {
        let mut asked: Vec<(&str, String)> = query.to_vec();
        asked.push(("limit", MAX_LIMIT.to_string()));
        if let Some(cursor) = &cursor {
            asked.push(("cursor", cursor.clone()));
        }
        let mut page = client
            .call_with_query(Method::GET, path, &asked, None)
            .await?;
        let next = next_cursor(&page)?;
        let Some(Value::Array(items)) = page.get_mut("items").map(Value::take) else {
            anyhow::bail!("the server's answer to {path} is not a page of items");
        };
        for item in items {
            each(item)?;
        }
        match next {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            Some(_) => anyhow::bail!("the server gave the same cursor twice for {path}"),
            None => return Ok(()),
        }
    }
}

fn next_cursor(page: &Value) -> anyhow::Result<Option<String>> {
    match page.get("next_cursor") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c)) => Ok(Some(c.clone())),
        Some(other) => anyhow::bail!("the server's next_cursor is not a string: {other}"),
    }
}

/// The text of a page: `items` rendered (`render` gets the items array), then — when the
/// server has more — a last line saying how to get the rest.
pub fn text(page: &Value, args: &ListArgs, render: impl FnOnce(&Value) -> String) -> String {
    let empty = Value::Array(Vec::new());
    let mut out = render(page.get("items").unwrap_or(&empty));
    if page.get("next_cursor").is_some_and(|c| !c.is_null()) {
        out.push_str(&more_hint(args));
    }
    out
}

/// The last line of a page that is not the whole list.
fn more_hint(args: &ListArgs) -> String {
    if args.limit.unwrap_or(0) < MAX_LIMIT {
        format!("… more: run again with --all, or --limit {MAX_LIMIT}\n")
    } else {
        "… more: run again with --all\n".to_owned()
    }
}

/// Prints a page: as the server answered with `--output json`, else [`text`].
pub fn print(
    json: bool,
    page: &Value,
    args: &ListArgs,
    render: impl FnOnce(&Value) -> String,
) -> anyhow::Result<()> {
    crate::output::emit(json, page, |page| text(page, args, render))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(limit: Option<u32>) -> ListArgs {
        ListArgs { limit, all: false }
    }

    #[test]
    fn a_last_page_has_no_hint() {
        let page = json!({"items": ["a"], "next_cursor": null});
        assert_eq!(text(&page, &args(None), |_| "a\n".into()), "a\n");
    }

    #[test]
    fn a_page_with_more_says_how_to_get_the_rest() {
        let page = json!({"items": ["a"], "next_cursor": "xyz"});
        let out = text(&page, &args(Some(1)), |items| {
            format!("{}\n", items.as_array().map_or(0, Vec::len))
        });
        assert_eq!(out.lines().next(), Some("1"));
        let last = out.lines().last().unwrap_or_default();
        assert!(
            last.contains("--all") && last.contains("--limit 500"),
            "{last}"
        );
        let out = text(&page, &args(Some(500)), |_| String::new());
        assert!(
            !out.contains("--limit"),
            "already at the largest page: {out}"
        );
    }
}
