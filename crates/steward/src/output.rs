//! Text rendering of API answers for people. `--output json` bypasses this entirely.

use anyhow::Context;
use serde_json::Value;
use std::fmt::Write;

/// Writes to standard output. A closed pipe (`steward change list | head`) ends quietly instead
/// of panicking the way `print!` does.
pub fn write(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// Prints an API answer: its JSON unchanged with `--output json`, else `text` of it.
pub fn emit(json: bool, value: &Value, text: impl FnOnce(&Value) -> String) -> anyhow::Result<()> {
    if json {
        write(&format!("{}\n", serde_json::to_string_pretty(value)?))
    } else {
        write(&text(value))
    }
}

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

/// A deployment report as recorded: when, what, and whether the gate allowed it.
pub fn deployment_line(change: &str, v: &Value) -> String {
    let target = v
        .get("target")
        .and_then(Value::as_str)
        .map(|t| format!(" to {t}"))
        .unwrap_or_default();
    let head = format!(
        "recorded: {change} deployment {}{target} in {} at {}",
        s(v, "/status"),
        s(v, "/environment"),
        s(v, "/at")
    );
    if v["allowed"] == true {
        format!("{head}\n")
    } else {
        format!(
            "{head}\nwarning: the gate did not allow this deployment: {}\n",
            s(v, "/reason")
        )
    }
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
    window_override_line(&mut out, v);
    out
}

/// The emergency window override, when there is one, or the agreements that wait for it.
fn window_override_line(out: &mut String, v: &Value) {
    if let Some(o) = v.get("window_override").filter(|o| !o.is_null()) {
        let agreed: Vec<&str> = o
            .get("agreements")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("by").and_then(Value::as_str))
            .collect();
        let _ = writeln!(
            out,
            "  window overridden by {} at {}: may start until {}",
            if agreed.is_empty() {
                s(o, "/by").to_owned()
            } else {
                agreed.join(" and ")
            },
            s(o, "/at"),
            s(o, "/until"),
        );
        for a in o
            .get("agreements")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .map_or_else(|| vec![o], |a| a.iter().collect())
        {
            let _ = writeln!(out, "    {}: {}", s(a, "/by"), s(a, "/reason"));
        }
    }
    for a in v
        .get("window_override_agreements")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  window override agreed by {} at {} ({}); it opens when every approver agrees",
            s(a, "/by"),
            s(a, "/at"),
            s(a, "/reason")
        );
    }
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
        let overdue = if c.get("overdue").and_then(Value::as_bool) == Some(true) {
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
            c.get("risk_score")
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
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
    window_override_line(&mut out, v);
    let started = v.get("implementation_started_at").and_then(Value::as_str);
    let ended = v.get("implementation_ended_at").and_then(Value::as_str);
    if started.is_some() || ended.is_some() {
        // The start may be a pipeline's deployment rather than the person who recorded it.
        let deployed_by = v
            .get("deployments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|d| d.get("at").and_then(Value::as_str) == started)
            .and_then(|d| d.get("by").and_then(Value::as_str));
        let implementer = v.get("implementer").and_then(Value::as_str);
        let who = match (deployed_by, implementer) {
            (Some(pipeline), Some(person)) => {
                format!(" by {pipeline}'s deployment (recorded by {person})")
            }
            (Some(pipeline), None) => format!(" by {pipeline}'s deployment"),
            (None, Some(person)) => format!(" by {person}"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "  implemented: started {}{who}{}",
            started.unwrap_or("(not recorded)"),
            ended.map(|e| format!(", ended {e}")).unwrap_or_default()
        );
    }
    for d in v
        .get("deployments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  deployment:  {} {} {} by {}{}",
            s(d, "/at"),
            s(d, "/status"),
            s(d, "/environment"),
            s(d, "/by"),
            if d["allowed"] == true {
                String::new()
            } else {
                format!(" — NOT ALLOWED: {}", s(d, "/reason"))
            }
        );
    }
    if let Some(p) = v.get("pipeline").filter(|p| !p.is_null()) {
        let _ = writeln!(
            out,
            "  pipeline:    commit {} run {}{}",
            s(p, "/commit"),
            s(p, "/run"),
            p.get("artifact_digest")
                .and_then(Value::as_str)
                .map(|d| format!(" artifact {d}"))
                .unwrap_or_default()
        );
    }
    if let Some(b) = v.get("backup").filter(|b| !b.is_null()) {
        let verified = match b.get("verified_at").and_then(Value::as_str) {
            Some(at) => format!("restore verified {at}"),
            None => "never restored".into(),
        };
        let _ = writeln!(out, "  backup:      {} ({verified})", s(b, "/reference"));
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
    execution_lines(&mut out, v);
    for link in v
        .get("incidents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  incident:    {} suspects this change (score {}{})",
            s(link, "/incident"),
            link.get("score").map(|x| x.to_string()).unwrap_or_default(),
            if link.get("strong").and_then(Value::as_bool) == Some(true) {
                ", strong"
            } else {
                ""
            }
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
    if let Some(schedule) = v.get("schedule").filter(|s| !s.is_null()) {
        schedule_lines(&mut out, schedule);
    }
    for o in v
        .get("obligations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let state = match o.get("fulfilled").filter(|f| !f.is_null()) {
            Some(f) => format!("fulfilled by {} at {}", s(f, "/by"), s(f, "/at")),
            None => "OWED".into(),
        };
        let _ = writeln!(
            out,
            "  owes:        {} ({state}; imposed by {})",
            s(o, "/name"),
            s(o, "/rule")
        );
    }
    for f in v
        .get("freeze_overrides")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  overrides freeze {} ({} → {}) with the CISO's approval",
            s(f, "/name"),
            s(f, "/start"),
            s(f, "/end")
        );
    }
    for receipt in v
        .get("policy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  policy at {} ({}), policy set {}:",
            s(receipt, "/stage"),
            s(receipt, "/evaluated_at"),
            s(receipt, "/policy_set")
        );
        rule_lines(
            &mut out,
            receipt.get("rules").unwrap_or(&Value::Null),
            "    ",
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

/// Freezes, maintenance windows and conflicts for a change's window.
fn schedule_lines(out: &mut String, schedule: &Value) {
    for f in schedule
        .get("freezes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  IN FREEZE:   {} ({}, {} → {}): {}",
            s(f, "/name"),
            s(f, "/scope"),
            s(f, "/start"),
            s(f, "/end"),
            s(f, "/reason")
        );
    }
    let outside = list(schedule, "/outside_maintenance");
    if outside != "-" {
        let _ = writeln!(out, "  outside the maintenance windows of {outside}");
    }
    for c in schedule
        .get("conflicts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let earlier = c.get("earlier").and_then(Value::as_bool) == Some(true);
        let _ = writeln!(
            out,
            "  CONFLICT:    {} ({}, {} → {}) via {}{}",
            s(c, "/change"),
            s(c, "/state"),
            s(c, "/start"),
            s(c, "/end"),
            list(c, "/via"),
            if earlier {
                " — raised first: approving this one needs --acknowledge-conflict"
            } else {
                ""
            }
        );
    }
}

/// Each rule's verdict with its messages, added approvals, obligations and inputs.
pub fn rule_lines(out: &mut String, rules: &Value, indent: &str) {
    for r in rules.as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{indent}{:<5} {:<30} {}",
            s(r, "/verdict").to_uppercase(),
            s(r, "/rule"),
            r.get("title").and_then(Value::as_str).unwrap_or("")
        );
        for (key, label) in [("deny", "denies"), ("warn", "warns")] {
            for m in r.get(key).and_then(Value::as_array).into_iter().flatten() {
                let _ = writeln!(out, "{indent}      {label}: {}", m.as_str().unwrap_or("?"));
            }
        }
        for a in r
            .get("approvals")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                out,
                "{indent}      needs a {}: {}",
                s(a, "/role"),
                s(a, "/reason")
            );
        }
        let owes = list(r, "/obligations");
        if owes != "-" {
            let _ = writeln!(out, "{indent}      owes: {owes}");
        }
        if let Some(inputs) = r
            .get("inputs")
            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
        {
            let _ = writeln!(out, "{indent}      looked at: {inputs}");
        }
    }
}

/// `steward policy eval`: the verdict, then each rule.
pub fn evaluation(v: &Value) -> String {
    let mut out = String::new();
    let denied = v.get("denied").and_then(Value::as_bool) == Some(true);
    let _ = writeln!(
        out,
        "{} — a {} change, risk {}, policy set {}",
        if denied {
            "WOULD BE DENIED"
        } else {
            "would be allowed"
        },
        s(v, "/type"),
        v.get("risk_score")
            .map(|x| x.to_string())
            .unwrap_or_default(),
        s(v, "/policy_set")
    );
    for a in v
        .get("required_approvals")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "  approval: {}", a.as_str().unwrap_or("?"));
    }
    if let Some(schedule) = v.get("schedule") {
        schedule_lines(&mut out, schedule);
    }
    rule_lines(&mut out, v.get("rules").unwrap_or(&Value::Null), "  ");
    out
}

pub fn window_line(v: &Value) -> String {
    let next = match v.get("next").filter(|n| !n.is_null()) {
        Some(n) => format!("next {} → {}", s(n, "/start"), s(n, "/end")),
        None => "no further occurrences".into(),
    };
    format!(
        "{:<24} {:<11} {:<28} {} {}–{} {}{}  ({next}): {}\n",
        s(v, "/name"),
        s(v, "/kind"),
        s(v, "/scope"),
        s(v, "/timezone"),
        s(v, "/starts"),
        s(v, "/ends"),
        if v.get("rrule").is_some_and(|r| !r.is_null()) {
            "RRULE:"
        } else {
            ""
        },
        v.get("rrule").and_then(Value::as_str).unwrap_or("once"),
        s(v, "/reason")
    )
}

/// The plan and its execution journal: each step's status, the checks, the rollback.
fn execution_lines(out: &mut String, v: &Value) {
    let steps = v.get("steps").and_then(Value::as_array);
    let Some(steps) = steps.filter(|s| !s.is_empty()) else {
        return;
    };
    let journal = v.pointer("/execution/steps").and_then(Value::as_array);
    let _ = writeln!(
        out,
        "  steps:{}",
        if v.get("irreversible").and_then(Value::as_bool) == Some(true) {
            "       (irreversible)"
        } else {
            ""
        }
    );
    for (i, step) in steps.iter().enumerate() {
        let status = journal
            .and_then(|j| j.get(i))
            .map(|r| s(r, "/status"))
            .unwrap_or("not started");
        let _ = writeln!(
            out,
            "    {:<2} {:<20} {:<14} {}",
            i + 1,
            s(step, "/name"),
            s(step, "/kind"),
            status
        );
    }
    for check in v
        .pointer("/execution/verification/checks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "  check:       {} {} — {}",
            s(check, "/check"),
            s(check, "/status"),
            s(check, "/detail")
        );
    }
    if let Some(until) = v
        .pointer("/execution/verification/until")
        .and_then(Value::as_str)
    {
        let passed = v
            .pointer("/execution/verification/passed_at")
            .and_then(Value::as_str);
        let _ = writeln!(
            out,
            "  verified:    {}",
            match passed {
                Some(at) => format!("passed at {at}"),
                None => format!("in progress until {until}"),
            }
        );
    }
    if let Some(r) = v.pointer("/execution/rollback").filter(|r| !r.is_null()) {
        let _ = writeln!(
            out,
            "  rollback:    {} by {}: {}",
            s(r, "/trigger"),
            s(r, "/by"),
            s(r, "/reason")
        );
    }
}

pub fn notification_lines(v: &Value) -> String {
    let mut out = String::new();
    let items = v.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        out.push_str("no notifications\n");
    }
    for n in &items {
        let _ = writeln!(out, "{}  {}", s(n, "/created_at"), s(n, "/subject"));
        let _ = writeln!(out, "    {}", s(n, "/body"));
    }
    out
}
