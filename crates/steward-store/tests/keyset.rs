//! Keyset pages at the storage level, on SQLite and PostgreSQL: walking a list page by page — each
//! page the rows after the last key of the one before — returns every row once, in the order one
//! whole query gives, whatever the engine's collation makes of `-`, `_` and `.` in names, and with
//! ties on the first part of a two-part key (scans started at the same instant).
//!
//! PostgreSQL tests create their own database on the server named by `STEWARD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and fail when it is not there.

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use steward_core::{Roles, TenantId, UserName};
use steward_store::{PayloadKek, Store};

mod support;
use support::{Backend, Db, fresh};

/// A store over a fresh database (the test's own directory keeps SQLite's file alive).
async fn store(backend: Backend) -> (Db, Store) {
    let db = fresh(backend).await;
    let store = Store::connect(&db.url, PayloadKek::from_bytes([7; 32]))
        .await
        .expect("the store opens");
    (db, store)
}

/// Names whose order differs between byte order and a linguistic collation.
const NAMES: &[&str] = &[
    "a-c", "ab", "a_b", "a.b", "abc", "a-b", "b", "a0", "zz", "a-b-c", "a--b", "m_1", "m.1", "m-1",
];

async fn pages_of_names_visit_each_once_in_the_query_order(backend: Backend) {
    let (_db, store) = store(backend).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    let roles = Roles::parse_list("requester").expect("roles");
    for (i, name) in NAMES.iter().enumerate() {
        let name = UserName::parse(name).expect("a user name");
        tenant
            .create_user("admin", &name, &roles, &format!("hash-{i}"))
            .await
            .expect("created");
    }
    let whole: Vec<String> = tenant
        .list_users(None, 1000)
        .await
        .expect("listed")
        .into_iter()
        .map(|account| account.name.to_string())
        .collect();
    assert_eq!(whole.len(), NAMES.len());
    for size in [1, 2, 3, 5] {
        let mut walked: Vec<String> = Vec::new();
        loop {
            let page = tenant
                .list_users(walked.last().map(String::as_str), size)
                .await
                .expect("a page");
            let done = page.len() < size as usize;
            walked.extend(page.into_iter().map(|account| account.name.to_string()));
            if done {
                break;
            }
            assert!(
                walked.len() <= NAMES.len(),
                "a page repeats rows: {walked:?}"
            );
        }
        assert_eq!(walked, whole, "pages of {size}");
    }
    store.close().await;
}

async fn pages_of_scans_break_ties_on_the_id(backend: Backend) {
    let (_db, store) = store(backend).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    let noon = Utc
        .with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .expect("time");
    // Five scans at the same instant, one before and one after.
    let mut started = vec![
        ("s-early", noon - Duration::hours(1)),
        ("s-late", noon + Duration::hours(1)),
    ];
    for id in ["s-3", "s-1", "s-5", "s-2", "s-4"] {
        started.push((id, noon));
    }
    for (id, at) in &started {
        tenant
            .insert_scan(id, *at, &json!({"id": id}), json!({}), "steward")
            .await
            .expect("kept");
    }
    let whole: Vec<String> = tenant
        .scans_before(None, 1000)
        .await
        .expect("listed")
        .into_iter()
        .map(|((_, id), _)| id)
        .collect();
    assert_eq!(
        whole,
        ["s-late", "s-5", "s-4", "s-3", "s-2", "s-1", "s-early"],
        "newest first, ties by id"
    );
    for size in [1, 2, 3] {
        let mut walked: Vec<String> = Vec::new();
        let mut last: Option<(String, String)> = None;
        loop {
            let page = tenant
                .scans_before(
                    last.as_ref().map(|(at, id)| (at.as_str(), id.as_str())),
                    size,
                )
                .await
                .expect("a page");
            let done = page.len() < size as usize;
            last = page.last().map(|(key, _)| key.clone()).or(last);
            walked.extend(page.into_iter().map(|((_, id), _)| id));
            if done {
                break;
            }
            assert!(
                walked.len() <= started.len(),
                "a page repeats rows: {walked:?}"
            );
        }
        assert_eq!(walked, whole, "pages of {size}");
    }
    store.close().await;
}

both_backends!(
    pages_of_names_visit_each_once_in_the_query_order,
    pages_of_scans_break_ties_on_the_id,
);
