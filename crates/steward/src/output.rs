//! Text rendering of API answers for people. `--output json` bypasses this entirely.

use serde_json::Value;
use std::fmt::Write;

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("-")
}

fn list(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|joined| !joined.is_empty())
        .unwrap_or_else(|| "-".into())
}

pub fn lines(v: &Value, line: fn(&Value) -> String) -> String {
    v.as_array()
        .map(|items| items.iter().map(line).collect())
        .unwrap_or_default()
}

pub fn user_line(v: &Value) -> String {
    format!("{:<24} {}\n", s(v, "/name"), list(v, "/roles"))
}

pub fn created_user(v: &Value) -> String {
    format!(
        "created {} ({})\ntoken: {}\n(shown once; keep it secret: it is stored only as a hash)\n",
        s(v, "/name"),
        list(v, "/roles"),
        s(v, "/token")
    )
}

pub fn target_line(v: &Value) -> String {
    format!(
        "{:<28} {:<22} {:<12} owner={:<12} criticality={:<6} regulated={} parent={}\n",
        s(v, "/name"),
        s(v, "/kind"),
        s(v, "/environment"),
        s(v, "/owner"),
        s(v, "/criticality"),
        list(v, "/regulated"),
        s(v, "/parent")
    )
}

pub fn catalog_line(v: &Value) -> String {
    format!(
        "{:<24} max impact {:<6} {}\n",
        s(v, "/name"),
        s(v, "/max_impact"),
        s(v, "/description")
    )
}

fn score(v: &Value) -> String {
    v.pointer("/risk/score")
        .map(|s| s.to_string())
        .unwrap_or_else(|| "-".into())
}

fn waiting_on(v: &Value) -> String {
    let mut open: Vec<String> = v
        .pointer("/approvals/required")
        .and_then(Value::as_array)
        .map(|slots| {
            slots
                .iter()
                .filter(|slot| slot.get("filled_by").is_none_or(Value::is_null))
                .map(|slot| s(slot, "/who").to_owned())
                .collect()
        })
        .unwrap_or_default();
    open.sort();
    let mut counted: Vec<String> = Vec::new();
    for who in open.iter() {
        if counted
            .last()
            .is_some_and(|last| last.ends_with(who.as_str()))
        {
            continue;
        }
        let n = open.iter().filter(|w| *w == who).count();
        counted.push(if n > 1 {
            format!("{n} × {who}")
        } else {
            who.clone()
        });
    }
    counted.join(", ")
}

pub fn change_summary(v: &Value) -> String {
    let mut out = format!(
        "{} {} — {} change, risk {} ({}), state {}\n",
        s(v, "/id"),
        s(v, "/title"),
        s(v, "/type"),
        score(v),
        s(v, "/risk/level"),
        s(v, "/state")
    );
    let waiting = waiting_on(v);
    if s(v, "/state") == "pending_approval" && !waiting.is_empty() {
        let _ = writeln!(out, "waiting for: {waiting}");
    }
    out
}

pub fn change_table(v: &Value) -> String {
    let Some(items) = v.as_array() else {
        return String::new();
    };
    if items.is_empty() {
        return "no changes match\n".into();
    }
    let mut out = format!(
        "{:<9} {:<10} {:<17} {:>4}  {:<12} {:<24} {}\n",
        "ID", "TYPE", "STATE", "RISK", "REQUESTER", "TARGETS", "TITLE"
    );
    for c in items {
        let overdue = if c.pointer("/approvals/overdue").and_then(Value::as_bool) == Some(true) {
            " [OVERDUE]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<9} {:<10} {:<17} {:>4}  {:<12} {:<24} {}{overdue}",
            s(c, "/id"),
            s(c, "/type"),
            s(c, "/state"),
            score(c),
            s(c, "/requester"),
            list(c, "/targets"),
            s(c, "/title")
        );
    }
    out
}

pub fn change_details(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}", s(v, "/id"), s(v, "/title"));
    let _ = writeln!(
        out,
        "  type:        {} ({})",
        s(v, "/type"),
        s(v, "/classification_reason")
    );
    let _ = writeln!(out, "  state:       {}", s(v, "/state"));
    let _ = writeln!(out, "  requester:   {}", s(v, "/requester"));
    let _ = writeln!(
        out,
        "  environment: {}   targets: {}",
        s(v, "/environment"),
        list(v, "/targets")
    );
    let _ = writeln!(out, "  category:    {}", s(v, "/category"));
    if let Some(w) = v.get("window").filter(|w| !w.is_null()) {
        let _ = writeln!(out, "  window:      {} → {}", s(w, "/start"), s(w, "/end"));
    }
    let _ = writeln!(out, "  risk:        {} ({})", score(v), s(v, "/risk/level"));
    for f in v
        .pointer("/risk/factors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let points = f.get("points").map(|p| p.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "    {:<24} {:>3}  {}",
            s(f, "/name"),
            points,
            s(f, "/observed")
        );
    }
    let deadline = s(v, "/approvals/deadline");
    let overdue = v.pointer("/approvals/overdue").and_then(Value::as_bool) == Some(true);
    let _ = writeln!(
        out,
        "  approvals:   due {deadline}{}",
        if overdue { " — OVERDUE" } else { "" }
    );
    let required = v.pointer("/approvals/required").and_then(Value::as_array);
    if required.is_none_or(|r| r.is_empty()) {
        let _ = writeln!(out, "    none required");
    }
    for slot in required.into_iter().flatten() {
        let filled = match slot.get("filled_by").and_then(Value::as_str) {
            Some(by) => format!("filled by {by}"),
            None => "waiting".into(),
        };
        let _ = writeln!(
            out,
            "    {:<18} {:<20} {:<16} {}",
            s(slot, "/slot"),
            s(slot, "/who"),
            filled,
            s(slot, "/reason")
        );
    }
    for d in v
        .pointer("/approvals/given")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "    {} {} ({}): {}",
            s(d, "/by"),
            s(d, "/decision"),
            s(d, "/at"),
            s(d, "/comment")
        );
    }
    if let Some(history) = v.get("history").and_then(Value::as_array) {
        let _ = writeln!(out, "  history:");
        for h in history {
            let to = s(h, "/details/after/state");
            let _ = writeln!(
                out,
                "    {}  {:<12} {:<26} → {}",
                s(h, "/at"),
                s(h, "/actor"),
                s(h, "/action"),
                to
            );
        }
    }
    out
}
