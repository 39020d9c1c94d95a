//! Targets: the resources changes touch.

use crate::audit::{self, AuditRecord};
use crate::{StoreError, TenantStore, ts};
use chrono::Utc;
use serde_json::json;
use sqlx::{Any, Row};
use steward_core::TargetName;
use steward_core::UserName;
use steward_core::target::{Target, TargetKind};

fn corrupt(what: &str) -> impl Fn(String) -> StoreError + '_ {
    move |e| StoreError::corrupt(what, e)
}

fn from_row(row: &<Any as sqlx::Database>::Row) -> Result<Target, StoreError> {
    let text = |col: &str| row.try_get::<String, _>(col);
    let regulated = text("regulated")?;
    Ok(Target {
        name: TargetName::parse(&text("name")?).map_err(|e| StoreError::corrupt("target", e))?,
        kind: text("kind")?
            .parse::<TargetKind>()
            .map_err(corrupt("kind"))?,
        owner: UserName::parse(&text("owner")?).map_err(|e| StoreError::corrupt("owner", e))?,
        environment: text("environment")?
            .parse()
            .map_err(corrupt("environment"))?,
        criticality: text("criticality")?
            .parse()
            .map_err(corrupt("criticality"))?,
        regulated: regulated
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(corrupt("regulated")))
            .collect::<Result<_, _>>()?,
        parent: row
            .try_get::<Option<String>, _>("parent")?
            .map(|p| TargetName::parse(&p).map_err(|e| StoreError::corrupt("parent", e)))
            .transpose()?,
    })
}

const COLUMNS: &str = "name, kind, owner, environment, criticality, regulated, parent";

impl TenantStore<'_> {
    pub async fn create_target(&self, actor: &str, target: &Target) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.store.begin_write().await?;
        let regulated: Vec<&str> = target.regulated.iter().map(|r| r.as_str()).collect();
        sqlx::query(
            "INSERT INTO targets (tenant_id, name, kind, owner, environment, criticality, regulated, parent, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.tenant.clone())
        .bind(target.name.as_str().to_owned())
        .bind(target.kind.as_str())
        .bind(target.owner.as_str().to_owned())
        .bind(target.environment.as_str())
        .bind(target.criticality.as_str())
        .bind(regulated.join(","))
        .bind(target.parent.as_ref().map(|p| p.as_str().to_owned()))
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_insert(e, || format!("target '{}'", target.name)))?;
        let record = AuditRecord {
            occurred_at: now,
            actor: actor.to_owned(),
            action: "target.created".into(),
            subject_type: "target",
            subject_id: target.name.to_string(),
            outcome: "success",
            correlation_id: None,
            details: json!({ "after": target }),
        };
        audit::append(&mut tx, &self.tenant, &[record]).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_targets(&self) -> Result<Vec<Target>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM targets WHERE tenant_id = $1 ORDER BY name"
        )))
        .bind(self.tenant.clone())
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Targets named after `after` (from the first when `None`), by name, at most `limit`.
    pub async fn list_targets_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Target>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM targets WHERE tenant_id = $1 AND name > $2 ORDER BY name LIMIT $3"
        )))
        .bind(self.tenant.clone())
        .bind(after.unwrap_or("").to_owned())
        .bind(limit.max(1))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The targets among `names` that exist, in no particular order.
    pub async fn targets_named(&self, names: &[TargetName]) -> Result<Vec<Target>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..names.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM targets WHERE tenant_id = $1 AND name IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(self.tenant.clone());
        for name in names {
            query = query.bind(name.as_str().to_owned());
        }
        let rows = query.fetch_all(&self.store.pool).await?;
        rows.iter().map(from_row).collect()
    }
}
