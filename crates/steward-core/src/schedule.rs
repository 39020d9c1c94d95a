//! The change calendar: maintenance windows, freezes, and conflicts between changes.
//!
//! A [`CalendarWindow`] is written the way people think of it — local wall-clock times in an IANA
//! time zone, optionally repeating by an RFC 5545 RRULE — and expanded into UTC
//! [`Occurrence`]s only when a question is asked. Expanding in local time is what keeps "every
//! weekday 09:00–17:00 Europe/London" at 09:00 local on both sides of a DST change, and a freeze
//! that spans the change keeps its wall-clock end.
//!
//! [`check`] answers, for one change window: which freezes it falls into, which of its targets
//! have maintenance windows it is outside of, and which other active changes touch the same
//! target (or a target and its parent) at an overlapping time. The answer feeds refusals in
//! [`crate::change`] and the `schedule` part of the policy input.

use crate::names::{ChangeId, TargetName, UserName, WindowName};
use crate::state::ChangeState;
use crate::submission::{FieldError, Window};
use crate::target::{Environment, Target, text_enum};
use crate::time::resolve_local;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// Whether changes belong in the window or must stay out of it.
    WindowKind {
        Maintenance => "maintenance",
        Freeze => "freeze",
    }
);

/// What a window applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    Everywhere,
    Environment(Environment),
    /// A target, and every target whose parent it is.
    Target(TargetName),
}

impl Scope {
    /// Whether the window covers `target`: a target scope covers the target and its children.
    pub fn covers(&self, target: &Target) -> bool {
        match self {
            Scope::Everywhere => true,
            Scope::Environment(env) => target.environment == *env,
            Scope::Target(name) => &target.name == name || target.parent.as_ref() == Some(name),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Everywhere => f.write_str("everywhere"),
            Scope::Environment(env) => write!(f, "environment:{env}"),
            Scope::Target(name) => write!(f, "target:{name}"),
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "must be 'everywhere', 'environment:<name>' or 'target:<name>'";
        match s.split_once(':') {
            None if s == "everywhere" => Ok(Scope::Everywhere),
            Some(("environment", env)) => Ok(Scope::Environment(env.parse()?)),
            Some(("target", name)) => TargetName::parse(name)
                .map(Scope::Target)
                .map_err(|e| format!("target name {e}")),
            _ => Err(format!("'{s}' {usage}")),
        }
    }
}

impl TryFrom<String> for Scope {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        value.parse()
    }
}

impl From<Scope> for String {
    fn from(value: Scope) -> String {
        value.to_string()
    }
}

/// A maintenance window or a freeze, one-off or recurring, in local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarWindow {
    pub name: WindowName,
    pub kind: WindowKind,
    pub scope: Scope,
    /// IANA zone the local times are in: `Europe/London`, `Asia/Kolkata`, `UTC`.
    pub timezone: String,
    /// First occurrence's start and end, local wall-clock time.
    pub starts: NaiveDateTime,
    pub ends: NaiveDateTime,
    /// RFC 5545 recurrence rule without the `RRULE:` prefix: `FREQ=WEEKLY;BYDAY=FR`.
    pub rrule: Option<String>,
    pub reason: String,
    pub created_by: UserName,
    pub created_at: DateTime<Utc>,
}

/// One occurrence of a window, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Most occurrences one question expands per window; a daily window over ten years fits.
const MAX_OCCURRENCES: u16 = 4000;

/// Whether two half-open intervals overlap.
pub fn overlaps(a_start: DateTime<Utc>, a_end: DateTime<Utc>, b: &Window) -> bool {
    a_start < b.end && b.start < a_end
}

fn zone(name: &str) -> Result<chrono_tz::Tz, String> {
    crate::time::parse_zone(name).map_err(|e| e.to_string())
}

impl CalendarWindow {
    /// Checks a window as submitted, naming every bad field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Err(e) = zone(&self.timezone) {
            errors.push(FieldError::new("timezone", e));
        }
        if self.ends <= self.starts {
            errors.push(FieldError::new("ends", "must be after starts"));
        }
        if self.reason.trim().is_empty() {
            errors.push(FieldError::new(
                "reason",
                "must say why (shown to requesters)",
            ));
        }
        if let Some(rule) = &self.rrule {
            if errors.is_empty()
                && let Err(e) = self.rule_set()
            {
                errors.push(FieldError::new("rrule", e));
            }
            let upper = rule.to_ascii_uppercase();
            if upper.contains("FREQ=SECONDLY") || upper.contains("FREQ=MINUTELY") {
                errors.push(FieldError::new(
                    "rrule",
                    "windows repeat at most hourly: use FREQ=HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The recurrence over *floating* local time: expanded as if the local wall clock were UTC,
    /// so no occurrence is moved or dropped by a DST gap before [`resolve_local`] places it in the zone.
    fn rule_set(&self) -> Result<rrule::RRuleSet, String> {
        let rule = self.rrule.as_deref().unwrap_or_default();
        let rule = rule.strip_prefix("RRULE:").unwrap_or(rule);
        let text = format!(
            "DTSTART:{}Z\nRRULE:{}",
            self.starts.format("%Y%m%dT%H%M%S"),
            rule
        );
        text.parse::<rrule::RRuleSet>()
            .map_err(|e| format!("is not a valid RFC 5545 recurrence rule: {e}"))
    }

    /// Occurrences that overlap `[from, to)`, in order.
    pub fn occurrences(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Occurrence> {
        let Ok(tz) = zone(&self.timezone) else {
            return Vec::new();
        };
        let length = self.ends - self.starts;
        let occurrence = |local_start: NaiveDateTime| Occurrence {
            start: resolve_local(tz, local_start, false),
            end: resolve_local(tz, local_start + length, true),
        };
        let starts: Vec<NaiveDateTime> = match &self.rrule {
            None => vec![self.starts],
            Some(_) => {
                let Ok(set) = self.rule_set() else {
                    return Vec::new();
                };
                // Bounds in floating local time. An occurrence that began before `from` may still
                // be running; a day either side covers every zone offset.
                let floating = |t: DateTime<Utc>| {
                    Utc.from_utc_datetime(&t.with_timezone(&tz).naive_local())
                        .with_timezone(&rrule::Tz::UTC)
                };
                set.after(floating(from - length - Duration::days(1)))
                    .before(floating(to + Duration::days(1)))
                    .all(MAX_OCCURRENCES)
                    .dates
                    .into_iter()
                    .map(|d| d.naive_utc())
                    .collect()
            }
        };
        starts
            .into_iter()
            .map(occurrence)
            .filter(|o| o.start < to && from < o.end)
            .collect()
    }
}

/// A freeze a change window falls into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeHit {
    pub name: WindowName,
    pub reason: String,
    pub scope: Scope,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Another active change, with what it touches, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledChange {
    pub id: ChangeId,
    pub state: ChangeState,
    pub window: Window,
    /// Each target with its parent.
    pub targets: Vec<(TargetName, Option<TargetName>)>,
}

/// Another change that touches the same target, or a parent or child of one, at the same time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHit {
    pub change: ChangeId,
    pub state: ChangeState,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// How they meet: `fraud-scoring`, or `fraud-scoring runs on gpu-a`.
    pub via: Vec<String>,
    /// Whether approving (or scheduling) this change needs an acknowledgement of that one: it
    /// was raised first, or it is already approved, scheduled or running.
    pub needs_acknowledgement: bool,
}

/// What the calendar says about one change window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleCheck {
    pub window: Option<Window>,
    pub freezes: Vec<FreezeHit>,
    /// Targets that have maintenance windows, none of which holds the whole change window.
    pub outside_maintenance: Vec<TargetName>,
    pub conflicts: Vec<ConflictHit>,
}

impl ScheduleCheck {
    /// `quarter-end (target:ledger, 2026-12-28T00:00:00Z – 2027-01-04T00:00:00Z): reason`
    pub fn freeze_names(&self) -> String {
        self.freezes
            .iter()
            .map(|f| {
                format!(
                    "{} ({}, {} – {}): {}",
                    f.name,
                    f.scope,
                    f.start.format("%Y-%m-%dT%H:%M:%SZ"),
                    f.end.format("%Y-%m-%dT%H:%M:%SZ"),
                    f.reason
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// How two changes' targets meet, if they do: the same target, or one's target is the other's
/// target's parent.
fn meeting(ours: &[Target], theirs: &[(TargetName, Option<TargetName>)]) -> Vec<String> {
    let mut via = Vec::new();
    for t in ours {
        for (name, parent) in theirs {
            if &t.name == name {
                via.push(t.name.to_string());
            } else if t.parent.as_ref() == Some(name) {
                via.push(format!("{} runs on {name}", t.name));
            } else if parent.as_ref() == Some(&t.name) {
                via.push(format!("{name} runs on {}", t.name));
            }
        }
    }
    via.sort();
    via.dedup();
    via
}

/// Checks one change window against the calendar and the other active changes.
pub fn check(
    id: &ChangeId,
    window: Option<&Window>,
    targets: &[Target],
    calendar: &[CalendarWindow],
    others: &[ScheduledChange],
) -> ScheduleCheck {
    let Some(window) = window else {
        return ScheduleCheck::default();
    };
    let mut freezes = Vec::new();
    for w in calendar.iter().filter(|w| w.kind == WindowKind::Freeze) {
        if !targets.iter().any(|t| w.scope.covers(t)) {
            continue;
        }
        for o in w.occurrences(window.start, window.end) {
            freezes.push(FreezeHit {
                name: w.name.clone(),
                reason: w.reason.clone(),
                scope: w.scope.clone(),
                start: o.start,
                end: o.end,
            });
        }
    }
    let mut outside_maintenance = Vec::new();
    for t in targets {
        let mut applicable = calendar
            .iter()
            .filter(|w| w.kind == WindowKind::Maintenance && w.scope.covers(t))
            .peekable();
        if applicable.peek().is_none() {
            continue;
        }
        let inside = applicable.any(|w| {
            w.occurrences(window.start, window.end)
                .iter()
                .any(|o| o.start <= window.start && window.end <= o.end)
        });
        if !inside {
            outside_maintenance.push(t.name.clone());
        }
    }
    let conflicts = others
        .iter()
        .filter(|o| &o.id != id && overlaps(o.window.start, o.window.end, window))
        .filter_map(|o| {
            let via = meeting(targets, &o.targets);
            (!via.is_empty()).then(|| ConflictHit {
                change: o.id.clone(),
                state: o.state,
                start: o.window.start,
                end: o.window.end,
                via,
                needs_acknowledgement: id == &ChangeId::UNASSIGNED
                    || o.id.number() < id.number()
                    || matches!(
                        o.state,
                        ChangeState::Approved | ChangeState::Scheduled | ChangeState::Implementing
                    ),
            })
        })
        .collect();
    ScheduleCheck {
        window: Some(window.clone()),
        freezes,
        outside_maintenance,
        conflicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Level, TargetKind};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }
    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").expect("local time")
    }
    fn window(
        kind: WindowKind,
        scope: &str,
        tz: &str,
        from: &str,
        to: &str,
        rrule: Option<&str>,
    ) -> CalendarWindow {
        CalendarWindow {
            name: WindowName::parse("w").expect("name"),
            kind,
            scope: scope.parse().expect("scope"),
            timezone: tz.into(),
            starts: local(from),
            ends: local(to),
            rrule: rrule.map(str::to_owned),
            reason: "because".into(),
            created_by: UserName::parse("cora").expect("name"),
            created_at: utc("2026-01-01T00:00:00Z"),
        }
    }
    fn target(name: &str, parent: Option<&str>) -> Target {
        Target {
            name: TargetName::parse(name).expect("name"),
            kind: TargetKind::ModelDeployment,
            owner: UserName::parse("mia").expect("name"),
            environment: Environment::Production,
            criticality: Level::Low,
            regulated: vec![],
            parent: parent.map(|p| TargetName::parse(p).expect("name")),
        }
    }
    fn change_window(start: &str, end: &str) -> Window {
        Window {
            start: utc(start),
            end: utc(end),
        }
    }

    #[test]
    fn a_recurring_freeze_keeps_its_local_hours_across_a_dst_change() {
        // Every day 09:00-17:00 London time: 09:00 UTC in winter, 08:00 UTC in summer.
        let freeze = window(
            WindowKind::Freeze,
            "everywhere",
            "Europe/London",
            "2026-01-05T09:00",
            "2026-01-05T17:00",
            Some("FREQ=DAILY"),
        );
        let targets = [target("fraud", None)];
        let id = ChangeId::UNASSIGNED;
        // 08:30 UTC on 2026-03-27 is 08:30 GMT: before the freeze.
        let winter = check(
            &id,
            Some(&change_window(
                "2026-03-27T08:30:00Z",
                "2026-03-27T08:55:00Z",
            )),
            &targets,
            std::slice::from_ref(&freeze),
            &[],
        );
        assert!(winter.freezes.is_empty(), "{winter:?}");
        // The clocks go forward on 2026-03-29: 08:30 UTC on the 30th is 09:30 BST, inside it.
        let summer = check(
            &id,
            Some(&change_window(
                "2026-03-30T08:30:00Z",
                "2026-03-30T08:55:00Z",
            )),
            &targets,
            std::slice::from_ref(&freeze),
            &[],
        );
        assert_eq!(summer.freezes.len(), 1);
        assert_eq!(summer.freezes[0].start, utc("2026-03-30T08:00:00Z"));
        assert_eq!(summer.freezes[0].end, utc("2026-03-30T16:00:00Z"));
        // And back in autumn (clocks go back 2026-10-25).
        let autumn = freeze.occurrences(utc("2026-10-26T00:00:00Z"), utc("2026-10-27T00:00:00Z"));
        assert_eq!(
            autumn,
            [Occurrence {
                start: utc("2026-10-26T09:00:00Z"),
                end: utc("2026-10-26T17:00:00Z")
            }]
        );
    }

    #[test]
    fn a_freeze_spanning_the_clock_change_keeps_its_wall_clock_end() {
        // Saturday 20:00 to Sunday 08:00 local, the night the clocks go forward: 11 real hours.
        let freeze = window(
            WindowKind::Freeze,
            "everywhere",
            "Europe/London",
            "2026-03-28T20:00",
            "2026-03-29T08:00",
            None,
        );
        let o = freeze.occurrences(utc("2026-03-01T00:00:00Z"), utc("2026-04-01T00:00:00Z"));
        assert_eq!(
            o,
            [Occurrence {
                start: utc("2026-03-28T20:00:00Z"),
                end: utc("2026-03-29T07:00:00Z")
            }]
        );
    }

    #[test]
    fn scopes_cover_targets_children_and_environments() {
        let deployment = target("fraud", Some("gpu-a"));
        assert!(
            "target:gpu-a"
                .parse::<Scope>()
                .expect("scope")
                .covers(&deployment)
        );
        assert!(
            "target:fraud"
                .parse::<Scope>()
                .expect("scope")
                .covers(&deployment)
        );
        assert!(
            !"target:gpu-b"
                .parse::<Scope>()
                .expect("scope")
                .covers(&deployment)
        );
        assert!(
            "environment:production"
                .parse::<Scope>()
                .expect("scope")
                .covers(&deployment)
        );
        assert!(
            !"environment:staging"
                .parse::<Scope>()
                .expect("scope")
                .covers(&deployment)
        );
        let err = "cluster:x".parse::<Scope>().expect_err("bad scope");
        assert!(err.contains("target:<name>"), "{err}");
    }

    #[test]
    fn maintenance_windows_must_hold_the_whole_change() {
        let maintenance = window(
            WindowKind::Maintenance,
            "target:fraud",
            "Asia/Kolkata",
            "2026-01-03T01:00",
            "2026-01-03T05:00",
            Some("FREQ=WEEKLY;BYDAY=SA"),
        );
        let targets = [target("fraud", None), target("other", None)];
        let id = ChangeId::UNASSIGNED;
        // Saturday 2026-12-05 02:00-03:00 IST = 20:30-21:30 UTC on the Friday.
        let inside = check(
            &id,
            Some(&change_window(
                "2026-12-04T20:30:00Z",
                "2026-12-04T21:30:00Z",
            )),
            &targets,
            std::slice::from_ref(&maintenance),
            &[],
        );
        assert!(inside.outside_maintenance.is_empty(), "{inside:?}");
        let straddling = check(
            &id,
            Some(&change_window(
                "2026-12-04T23:00:00Z",
                "2026-12-05T00:30:00Z",
            )),
            &targets,
            &[maintenance],
            &[],
        );
        assert_eq!(
            straddling.outside_maintenance,
            [TargetName::parse("fraud").expect("name")]
        );
    }

    #[test]
    fn conflicts_are_same_target_or_parent_and_overlapping() {
        let ours = [target("fraud", Some("gpu-a"))];
        let other =
            |n: u64, t: &str, parent: Option<&str>, start: &str, end: &str| ScheduledChange {
                id: ChangeId::from_number(n),
                state: ChangeState::Approved,
                window: change_window(start, end),
                targets: vec![(
                    TargetName::parse(t).expect("name"),
                    parent.map(|p| TargetName::parse(p).expect("name")),
                )],
            };
        let mut others = [
            other(
                1,
                "gpu-a",
                None,
                "2026-12-01T22:30:00Z",
                "2026-12-01T23:30:00Z",
            ),
            other(
                2,
                "fraud",
                Some("gpu-a"),
                "2026-12-02T22:00:00Z",
                "2026-12-02T23:00:00Z",
            ),
            other(
                3,
                "churn",
                Some("gpu-a"),
                "2026-12-01T22:00:00Z",
                "2026-12-01T23:00:00Z",
            ),
            other(
                9,
                "fraud",
                Some("gpu-a"),
                "2026-12-01T22:59:00Z",
                "2026-12-01T23:10:00Z",
            ),
        ];
        // Raised later and still waiting: the later change acknowledges, not this one.
        others[3].state = ChangeState::PendingApproval;
        let hits = check(
            &ChangeId::from_number(5),
            Some(&change_window(
                "2026-12-01T22:00:00Z",
                "2026-12-01T23:00:00Z",
            )),
            &ours,
            &[],
            &others,
        )
        .conflicts;
        let summary: Vec<(String, Vec<String>, bool)> = hits
            .iter()
            .map(|h| (h.change.to_string(), h.via.clone(), h.needs_acknowledgement))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "CHG-1".to_owned(),
                    vec!["fraud runs on gpu-a".to_owned()],
                    true
                ),
                ("CHG-9".to_owned(), vec!["fraud".to_owned()], false),
            ],
            "siblings on one cluster and non-overlapping windows are not conflicts"
        );
    }

    #[test]
    fn windows_never_shrink_in_a_dst_fold_and_start_after_a_gap() {
        // Clocks go back at 02:00 BST on 2026-10-25: 01:00-01:59 happens twice.
        let fold = window(
            WindowKind::Freeze,
            "everywhere",
            "Europe/London",
            "2026-10-25T00:30",
            "2026-10-25T01:30",
            None,
        );
        let o = fold.occurrences(utc("2026-10-24T00:00:00Z"), utc("2026-10-26T00:00:00Z"));
        // 00:30 BST = 23:30 UTC; the end is the second 01:30, in GMT.
        assert_eq!(
            o,
            [Occurrence {
                start: utc("2026-10-24T23:30:00Z"),
                end: utc("2026-10-25T01:30:00Z")
            }]
        );
        // Clocks go forward at 01:00 GMT on 2026-03-29: 01:30 does not exist that day.
        let gap = window(
            WindowKind::Freeze,
            "everywhere",
            "Europe/London",
            "2026-03-27T01:30",
            "2026-03-27T03:00",
            Some("FREQ=DAILY"),
        );
        let days = gap.occurrences(utc("2026-03-27T00:00:00Z"), utc("2026-03-31T00:00:00Z"));
        assert_eq!(
            days.len(),
            4,
            "one occurrence a day, the gap day included: {days:?}"
        );
        // That day's window still ends at 03:00 BST = 02:00 UTC.
        // That day it starts when the clocks jump (02:00 BST = 01:00 UTC) and still ends at
        // 03:00 BST = 02:00 UTC.
        assert!(
            days.contains(&Occurrence {
                start: utc("2026-03-29T01:00:00Z"),
                end: utc("2026-03-29T02:00:00Z")
            }),
            "{days:?}"
        );
    }

    #[test]
    fn bad_windows_name_their_fields() {
        let mut w = window(
            WindowKind::Freeze,
            "everywhere",
            "Mars/Olympus",
            "2026-01-05T09:00",
            "2026-01-05T08:00",
            Some("FREQ=MINUTELY"),
        );
        w.reason = " ".into();
        let errors = w.validate().expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["timezone", "ends", "reason", "rrule"]);
        let w = window(
            WindowKind::Freeze,
            "everywhere",
            "UTC",
            "2026-01-05T09:00",
            "2026-01-05T10:00",
            Some("FREQ=FORTNIGHTLY"),
        );
        let errors = w.validate().expect_err("invalid");
        assert_eq!(errors[0].field, "rrule");
    }
}
