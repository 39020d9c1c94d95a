//! Erasure, legal holds and retention of audit payloads: personal data can go, the log stays.
//!
//! A data subject is `tenant:user`. Erasing one destroys their payload key (crypto-shredding):
//! every payload about them becomes unreadable at once, while leaves and tree nodes, which hold
//! only each payload's hash, keep every proof valid. A legal hold blocks erasure and retention.
//! Each of these acts is itself an audit event.

use crate::audit::{self, AuditRecord};
use crate::{Store, StoreError, TenantStore, ts};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::Row;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasure {
    /// The key is gone; this many payloads became unreadable.
    Erased { payloads: u64 },
    /// Refused: the subject is under legal hold, for this reason.
    UnderLegalHold { reason: String },
    /// Refused: the subject's records include events of a class the law requires keeping (SOX
    /// change evidence, say), and the newest of them is still inside its retention period.
    RetainedByLaw {
        class: String,
        basis: String,
        until: DateTime<Utc>,
    },
    /// Nothing was ever recorded about this subject.
    UnknownSubject,
}

/// How long payloads are kept, by event class (the part of the action before the first dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub default_days: u32,
    pub by_class: BTreeMap<String, u32>,
    /// Classes whose records the law requires keeping for their whole retention period, with
    /// the legal basis (`change` → "SOX 404 change evidence"): erasing a subject who appears in
    /// one is refused, naming the basis and the date it lapses (GDPR Art. 17(3)(b)).
    pub kept_by_law: BTreeMap<String, String>,
}

impl Retention {
    /// How many days the class's payloads are kept.
    pub fn days_for(&self, class: &str) -> u32 {
        self.by_class
            .get(class)
            .copied()
            .unwrap_or(self.default_days)
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            default_days: 7 * 365,
            by_class: BTreeMap::new(),
            kept_by_law: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    pub payloads_deleted: u64,
    pub keys_deleted: u64,
}

fn record(
    actor: &str,
    action: &str,
    subject: &str,
    now: DateTime<Utc>,
    details: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        occurred_at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject_type: "data_subject",
        subject_id: subject.to_owned(),
        outcome: "success",
        correlation_id: None,
        details,
    }
}

impl TenantStore<'_> {
    fn subject(&self, user: &str) -> String {
        format!("{}:{user}", self.tenant)
    }

    /// Destroys a subject's payload key, unless a legal hold is in force or the subject appears
    /// in records a retention class keeps by law.
    pub async fn erase_subject(
        &self,
        actor: &str,
        user: &str,
        basis: &str,
        retention: &Retention,
        now: DateTime<Utc>,
    ) -> Result<Erasure, StoreError> {
        let subject = self.subject(user);
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query("SELECT legal_hold FROM audit_subject_keys WHERE subject = $1")
            .bind(subject.clone())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(Erasure::UnknownSubject);
        };
        for (class, law) in &retention.kept_by_law {
            let newest: Option<String> = sqlx::query(
                "SELECT MAX(e.occurred_at) AS newest FROM audit_payloads p \
                 JOIN audit_events e ON e.seq = p.seq WHERE p.subject = $1 AND e.action LIKE $2",
            )
            .bind(subject.clone())
            .bind(format!("{class}.%"))
            .fetch_one(&mut *tx)
            .await?
            .try_get("newest")?;
            let Some(newest) = newest.as_deref().map(crate::parse_ts).transpose()? else {
                continue;
            };
            let until = newest + Duration::days(i64::from(retention.days_for(class)));
            if until > now {
                tx.rollback().await?;
                return Ok(Erasure::RetainedByLaw {
                    class: class.clone(),
                    basis: law.clone(),
                    until,
                });
            }
        }
        // The hold is re-checked by the UPDATE itself, so a hold placed concurrently still wins.
        let erased = sqlx::query(
            "UPDATE audit_subject_keys SET key = NULL, erased_at = $1 WHERE subject = $2 AND legal_hold IS NULL",
        )
        .bind(ts(now))
        .bind(subject.clone())
        .execute(&mut *tx)
        .await?;
        if erased.rows_affected() == 0 {
            let reason: Option<String> = row.try_get("legal_hold")?;
            tx.rollback().await?;
            return Ok(Erasure::UnderLegalHold {
                reason: reason.unwrap_or_else(|| "placed while erasing".into()),
            });
        }
        let payloads: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM audit_payloads WHERE subject = $1",
        )
        .bind(subject.clone())
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let details = json!({ "subject": subject, "basis": basis, "payloads": payloads });
        audit::append(
            &mut tx,
            &self.tenant,
            &[record(
                actor,
                "audit.subject_erased",
                &subject,
                now,
                details,
            )],
        )
        .await?;
        tx.commit().await?;
        Ok(Erasure::Erased {
            payloads: payloads.max(0) as u64,
        })
    }

    /// Places (`Some(reason)`) or lifts (`None`) a legal hold on a subject. `false`, with
    /// nothing written, when the subject is unknown in this tenant: no account of that name and
    /// nothing recorded about them (a name from another tenant is unknown here).
    pub async fn set_legal_hold(
        &self,
        actor: &str,
        user: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let subject = self.subject(user);
        let mut tx = self.store.begin_write().await?;
        let known = sqlx::query(
            "SELECT 1 AS known FROM audit_subject_keys WHERE subject = $1 \
             UNION SELECT 1 AS known FROM users WHERE tenant_id = $2 AND name = $3",
        )
        .bind(subject.clone())
        .bind(self.tenant.clone())
        .bind(user.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        if known.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO audit_subject_keys (subject, key, legal_hold, created_at) VALUES ($1, NULL, $2, $3) \
             ON CONFLICT (subject) DO UPDATE SET legal_hold = excluded.legal_hold",
        )
        .bind(subject.clone())
        .bind(reason.map(str::to_owned))
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let (action, details) = match reason {
            Some(reason) => (
                "audit.legal_hold_placed",
                json!({ "subject": subject, "reason": reason }),
            ),
            None => ("audit.legal_hold_lifted", json!({ "subject": subject })),
        };
        audit::append(
            &mut tx,
            &self.tenant,
            &[record(actor, action, &subject, now, details)],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl Store {
    /// Deletes payloads past their class's retention (never leaves or tree nodes), skipping
    /// subjects under legal hold, then the rows of erased subjects with nothing left. Recorded as
    /// an event.
    pub async fn apply_retention(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
    ) -> Result<RetentionOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut outcome = RetentionOutcome::default();
        let held = "p.subject NOT IN (SELECT subject FROM audit_subject_keys WHERE legal_hold IS NOT NULL)";
        let mut classes: Vec<(Option<&String>, u32)> = retention
            .by_class
            .iter()
            .map(|(c, d)| (Some(c), *d))
            .collect();
        classes.push((None, retention.default_days));
        for (class, days) in classes {
            let cutoff = ts(now - Duration::days(i64::from(days)));
            let (condition, binds): (String, Vec<String>) = match class {
                Some(class) => ("e.action LIKE $2".into(), vec![format!("{class}.%")]),
                None => {
                    let others: Vec<String> = (0..retention.by_class.len())
                        .map(|i| format!("e.action NOT LIKE ${}", i + 2))
                        .collect();
                    let binds = retention
                        .by_class
                        .keys()
                        .map(|c| format!("{c}.%"))
                        .collect();
                    (
                        if others.is_empty() {
                            "1 = 1".into()
                        } else {
                            others.join(" AND ")
                        },
                        binds,
                    )
                }
            };
            let sql = format!(
                "DELETE FROM audit_payloads WHERE seq IN (SELECT p.seq FROM audit_payloads p \
                 JOIN audit_events e ON e.seq = p.seq WHERE e.occurred_at < $1 AND {condition} AND {held})"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(cutoff);
            for b in binds {
                query = query.bind(b);
            }
            outcome.payloads_deleted += query.execute(&mut *tx).await?.rows_affected();
        }
        // A live key also seals its subject's text in the records (changes, incidents, models),
        // which outlive their payloads: only rows whose key is already gone (erased) and that
        // have nothing left are removed. A person's text goes with erasure, not payload expiry.
        outcome.keys_deleted = sqlx::query(
            "DELETE FROM audit_subject_keys WHERE legal_hold IS NULL AND key IS NULL \
             AND subject NOT IN (SELECT DISTINCT subject FROM audit_payloads)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if outcome.payloads_deleted > 0 || outcome.keys_deleted > 0 {
            let details = json!({
                "payloads_deleted": outcome.payloads_deleted,
                "keys_deleted": outcome.keys_deleted,
                "default_days": retention.default_days,
                "by_class": retention.by_class,
            });
            let event = AuditRecord {
                occurred_at: now,
                actor: "system".into(),
                action: "audit.retention_applied".into(),
                subject_type: "audit_log",
                subject_id: "payloads".into(),
                outcome: "success",
                correlation_id: None,
                details,
            };
            audit::append(&mut tx, "default", &[event]).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}
