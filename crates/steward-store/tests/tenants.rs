//! Tenants at the storage level, on SQLite and PostgreSQL: creating one (its admin, catalog and
//! the events of both tenants in one transaction), a tenant's own policy modules, and reading the
//! log's leaves as one tenant sees them (the others' entries withheld, their hashes kept).

use chrono::Utc;
use steward_core::catalog::CatalogItem;
use steward_core::{Roles, TenantId, UserName};
use steward_store::{
    LeafFilter, LeafOrder, LeafScope, ModuleWrite, NewTenant, PayloadKek, Store, StoreError,
};

mod support;
use support::{Backend, Db, fresh};

async fn store(backend: Backend) -> (Db, Store) {
    let db = fresh(backend).await;
    let store = Store::connect(&db.url, PayloadKek::from_bytes([7; 32]))
        .await
        .expect("the store opens");
    (db, store)
}

fn id(name: &str) -> TenantId {
    TenantId::parse(name).expect("tenant")
}

async fn create(store: &Store, name: &str) -> Result<(), StoreError> {
    let admin = UserName::parse("boss").expect("name");
    let by = UserName::parse("admin").expect("name");
    let roles = Roles::parse_list("admin").expect("roles");
    store
        .create_tenant(&NewTenant {
            id: &id(name),
            created_by: &by,
            admin: &admin,
            admin_roles: &roles,
            token_hash: &format!("hash-of-{name}"),
            catalog: &CatalogItem::shipped(),
            tenant_actor: "steward",
            now: Utc::now(),
        })
        .await
}

async fn a_tenant_is_created_once_with_its_admin_catalog_and_events(backend: Backend) {
    let (_db, store) = store(backend).await;
    create(&store, "risk").await.expect("created");
    assert!(matches!(
        create(&store, "risk").await,
        Err(StoreError::Duplicate(_))
    ));
    let risk = store.tenant(&id("risk"));
    let boss = UserName::parse("boss").expect("name");
    assert!(risk.user_roles(&boss).await.expect("roles").is_some());
    assert!(
        store
            .tenant(&TenantId::default_tenant())
            .user_roles(&boss)
            .await
            .expect("roles")
            .is_none()
    );
    let catalog = risk.list_catalog(None, 100).await.expect("catalog");
    assert_eq!(catalog.len(), CatalogItem::shipped().len());
    let tenants = store.list_tenants(None, 100).await.expect("tenants");
    let names: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(names, ["default", "risk"]);
    assert_eq!(tenants[1].created_by.as_deref(), Some("admin"));
    assert_eq!(tenants[0].created_by, None);
    let created = store
        .tenant(&TenantId::default_tenant())
        .audit_events_for("tenant", "risk")
        .await
        .expect("events");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].details["admin"], "boss");
    let own = risk.audit_events_for("user", "boss").await.expect("events");
    assert_eq!(
        (own[0].action.as_str(), own[0].actor.as_str()),
        ("user.created", "steward")
    );
    assert_eq!(own[0].correlation_id.as_deref(), Some("tenant:risk"));
    store.close().await;
}

async fn a_tenant_sees_its_own_leaves_and_only_the_hashes_of_the_others(backend: Backend) {
    let (_db, store) = store(backend).await;
    create(&store, "risk").await.expect("created");
    let all = store
        .audit_leaves(0, 1000, LeafScope::Everything)
        .await
        .expect("leaves");
    let seen = store
        .audit_leaves(0, 1000, LeafScope::Tenant("risk"))
        .await
        .expect("leaves");
    assert_eq!(all.len(), seen.len());
    let mut shown = 0;
    for (full, limited) in all.iter().zip(&seen) {
        assert_eq!(full.leaf_hash, limited.leaf_hash, "every hash stays");
        let entry = full.entry.as_deref().expect("every entry, unlimited");
        if entry.contains("\"tenant\":\"risk\"") {
            assert_eq!(limited.entry.as_deref(), Some(entry));
            shown += 1;
        } else {
            assert_eq!(limited.entry, None, "{entry}");
        }
    }
    assert!(shown > 0 && shown < all.len());
    // An event id of another tenant is not found by a reader limited to this one.
    let other = store
        .tenant(&TenantId::default_tenant())
        .audit_events_for("tenant", "risk")
        .await
        .expect("events")[0]
        .event_id
        .clone();
    assert!(
        store
            .audit_index_of(&other, LeafScope::Tenant("risk"))
            .await
            .expect("index")
            .is_none()
    );
    assert!(
        store
            .audit_index_of(&other, LeafScope::Everything)
            .await
            .expect("index")
            .is_some()
    );
    store.close().await;
}

async fn read(
    store: &Store,
    order: LeafOrder,
    limit: u64,
    scope: LeafScope<'_>,
    filter: LeafFilter,
) -> Vec<steward_store::AuditLeaf> {
    store
        .audit_leaves_where(order, limit, scope, &filter)
        .await
        .expect("leaves")
}

/// The indexes of `leaves`.
fn indexes(leaves: &[steward_store::AuditLeaf]) -> Vec<u64> {
    leaves.iter().map(|l| l.index).collect()
}

async fn leaves_read_newest_first_and_filters_match_only_what_the_scope_shows(backend: Backend) {
    let (_db, store) = store(backend).await;
    create(&store, "risk").await.expect("created");
    let all = store
        .audit_leaves(0, 1000, LeafScope::Everything)
        .await
        .expect("leaves");
    let newest = read(
        &store,
        LeafOrder::Newest { before: None },
        1000,
        LeafScope::Everything,
        LeafFilter::default(),
    )
    .await;
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(newest, reversed);
    let below = read(
        &store,
        LeafOrder::Newest { before: Some(3) },
        2,
        LeafScope::Everything,
        LeafFilter::default(),
    )
    .await;
    assert_eq!(indexes(&below), [2, 1]);
    // Unfiltered, a tenant's reader gets every leaf in place, the others withheld.
    let limited = read(
        &store,
        LeafOrder::Newest { before: None },
        1000,
        LeafScope::Tenant("risk"),
        LeafFilter::default(),
    )
    .await;
    assert_eq!(indexes(&limited), indexes(&newest));
    assert!(limited.iter().any(|l| l.entry.is_none()));

    let has = |leaf: &steward_store::AuditLeaf, field: &str, value: &str| {
        leaf.entry
            .as_deref()
            .is_some_and(|e| e.contains(&format!("\"{field}\":\"{value}\"")))
    };
    // The server's events in tenant risk, and only those.
    let steward = LeafFilter {
        actor: Some("steward".into()),
        ..LeafFilter::default()
    };
    let risk_steward = read(
        &store,
        LeafOrder::Oldest { from: 0 },
        1000,
        LeafScope::Tenant("risk"),
        steward.clone(),
    )
    .await;
    let expected: Vec<u64> = all
        .iter()
        .filter(|l| has(l, "actor", "steward") && has(l, "tenant", "risk"))
        .map(|l| l.index)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(indexes(&risk_steward), expected);
    assert!(risk_steward.iter().all(|l| l.leaf_hash.is_some()));
    let everywhere = read(
        &store,
        LeafOrder::Oldest { from: 0 },
        1000,
        LeafScope::Everything,
        steward,
    )
    .await;
    assert!(everywhere.iter().all(|l| has(l, "actor", "steward")));
    assert!(everywhere.len() >= risk_steward.len());
    // The tenant's creation is the installation's event: never matched for tenant risk.
    let creation = LeafFilter {
        subject_type: Some("tenant".into()),
        subject_id: Some("risk".into()),
        action: Some("tenant.created".into()),
        ..LeafFilter::default()
    };
    let found = read(
        &store,
        LeafOrder::Newest { before: None },
        1000,
        LeafScope::Everything,
        creation.clone(),
    )
    .await;
    assert_eq!(found.len(), 1);
    assert!(has(&found[0], "tenant", "default"));
    let hidden = read(
        &store,
        LeafOrder::Newest { before: None },
        1000,
        LeafScope::Tenant("risk"),
        creation,
    )
    .await;
    assert!(hidden.is_empty(), "{hidden:?}");
    store.close().await;
}

async fn policy_modules_are_the_tenants_own_and_every_write_is_audited(backend: Backend) {
    let (_db, store) = store(backend).await;
    create(&store, "risk").await.expect("created");
    let risk = store.tenant(&id("risk"));
    let now = Utc::now();
    let put = |source: &'static str| risk.put_policy_module("boss", "board", source, now);
    assert_eq!(put("package a").await.expect("put"), ModuleWrite::Created);
    assert_eq!(put("package a").await.expect("put"), ModuleWrite::Unchanged);
    assert_eq!(put("package b").await.expect("put"), ModuleWrite::Replaced);
    let digests = risk.policy_module_digests().await.expect("digests");
    assert_eq!(digests.len(), 1);
    assert_eq!(
        risk.policy_modules().await.expect("modules")[0].source,
        "package b"
    );
    let default = store.tenant(&TenantId::default_tenant());
    assert!(default.policy_modules().await.expect("modules").is_empty());
    assert!(
        !default
            .delete_policy_module("admin", "board", now)
            .await
            .expect("delete")
    );
    assert!(
        risk.delete_policy_module("boss", "board", now)
            .await
            .expect("delete")
    );
    let actions: Vec<String> = risk
        .audit_events_for("policy_module", "board")
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "policy.module_created",
            "policy.module_replaced",
            "policy.module_deleted"
        ]
    );
    store.close().await;
}

both_backends!(
    a_tenant_is_created_once_with_its_admin_catalog_and_events,
    a_tenant_sees_its_own_leaves_and_only_the_hashes_of_the_others,
    leaves_read_newest_first_and_filters_match_only_what_the_scope_shows,
    policy_modules_are_the_tenants_own_and_every_write_is_audited,
);
