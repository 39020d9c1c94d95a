//! Single sign-on's records at the storage level, on SQLite and PostgreSQL: a sign-in under way
//! is taken once, sessions end on time and read the account as it is now, sign-ins provision and
//! sync accounts bound to their identity, and the group mapping is per tenant.

use chrono::{DateTime, Duration, TimeZone, Utc};
use steward_core::sso::{GroupName, SignInRefused};
use steward_core::{Roles, TenantId, UserName};
use steward_store::sso::{NewSession, PendingLogin, SessionCheck, SsoAccount};
use steward_store::{PayloadKek, Store};

mod support;
use support::{Backend, Db, fresh};

async fn store(backend: Backend) -> (Db, Store) {
    let db = fresh(backend).await;
    let store = Store::connect(&db.url, PayloadKek::from_bytes([7; 32]))
        .await
        .expect("the store opens");
    (db, store)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .expect("time")
}

fn roles(list: &str) -> Roles {
    Roles::parse_list(list).expect("roles")
}

fn group(name: &str) -> GroupName {
    GroupName::parse(name).expect("group")
}

fn account(name: &str, identity: &str, list: &str) -> SsoAccount {
    SsoAccount {
        tenant: TenantId::default_tenant(),
        name: UserName::parse(name).expect("name"),
        identity: identity.into(),
        roles: roles(list),
        groups: vec![group("ml-cab")],
    }
}

async fn a_sign_in_under_way_is_taken_once(backend: Backend) {
    let (_db, store) = store(backend).await;
    let login = PendingLogin {
        browser_hash: "browser".into(),
        nonce: "nonce".into(),
        pkce_verifier: "verifier".into(),
        tenant: Some(TenantId::parse("risk").expect("tenant")),
        return_to: "/portal".into(),
        expires_at: now() + Duration::minutes(10),
    };
    store
        .begin_login("state-1", &login, now())
        .await
        .expect("begin");
    let taken = store.take_login("state-1", now()).await.expect("take");
    assert_eq!(taken.as_ref(), Some(&login));
    assert_eq!(
        store.take_login("state-1", now()).await.expect("again"),
        None
    );
    // One that expired is not handed out (and is gone).
    store
        .begin_login("state-2", &login, now())
        .await
        .expect("begin");
    let late = now() + Duration::minutes(11);
    assert_eq!(store.take_login("state-2", late).await.expect("late"), None);
}

async fn sign_ins_provision_sync_and_refuse(backend: Backend) {
    let (_db, store) = store(backend).await;
    let alice = account("alice", "https://idp#a1", "cab_member");
    let session = NewSession {
        token_hash: "session-1".into(),
        expires_at: now() + Duration::hours(1),
    };
    let principal = store
        .sign_in(&alice, Some(&session), now())
        .await
        .expect("store")
        .expect("signed in");
    assert_eq!(principal.roles, roles("cab_member"));
    // The session reads the account as it is now, until it ends.
    match store
        .principal_for_session("session-1", now())
        .await
        .expect("session")
    {
        SessionCheck::Valid(p) => assert_eq!(p.name.as_str(), "alice"),
        other => panic!("{other:?}"),
    }
    let ended = now() + Duration::hours(1);
    assert_eq!(
        store
            .principal_for_session("session-1", ended)
            .await
            .expect("session"),
        SessionCheck::Unknown
    );
    // Other roles from the mapping: synced, with an event saying before and after.
    let fewer = account("alice", "https://idp#a1", "requester");
    store
        .sign_in(&fewer, None, now())
        .await
        .expect("store")
        .expect("signed in");
    let events = store
        .tenant(&TenantId::default_tenant())
        .audit_events_for("user", "alice")
        .await
        .expect("events");
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["user.created", "user.signed_in", "user.roles_synced"]
    );
    assert_eq!(
        events[2].details["before"]["roles"],
        serde_json::json!(["cab_member"])
    );
    // Another identity under the same name, and a local account's name, are refused.
    let impostor = account("alice", "https://idp#other", "requester");
    assert_eq!(
        store.sign_in(&impostor, None, now()).await.expect("store"),
        Err(SignInRefused::OtherIdentity(
            UserName::parse("alice").expect("name")
        ))
    );
    store
        .tenant(&TenantId::default_tenant())
        .create_user(
            "admin",
            &UserName::parse("mia").expect("name"),
            &roles("manager"),
            "h-mia",
        )
        .await
        .expect("local account");
    let mia = account("mia", "https://idp#m1", "requester");
    assert!(matches!(
        store.sign_in(&mia, None, now()).await.expect("store"),
        Err(SignInRefused::LocalAccount(_))
    ));
    // Signing out ends the session once.
    let second = NewSession {
        token_hash: "session-2".into(),
        expires_at: now() + Duration::hours(1),
    };
    store
        .sign_in(&fewer, Some(&second), now())
        .await
        .expect("store")
        .expect("signed in");
    assert!(store.end_session("session-2", now()).await.expect("end"));
    assert!(!store.end_session("session-2", now()).await.expect("again"));
}

async fn the_mapping_is_per_tenant(backend: Backend) {
    let (_db, store) = store(backend).await;
    let default = store.tenant(&TenantId::default_tenant());
    assert_eq!(
        default
            .set_group_roles("admin", &group("ml-cab"), &roles("cab_member"))
            .await
            .expect("set"),
        None
    );
    assert_eq!(
        default
            .set_group_roles("admin", &group("ml-cab"), &roles("cab_member,requester"))
            .await
            .expect("replace"),
        Some(roles("cab_member"))
    );
    default
        .set_group_roles("admin", &group("/risk/ML eng"), &roles("requester"))
        .await
        .expect("set");
    let listed = default.group_roles(None, 10).await.expect("list");
    let names: Vec<&str> = listed.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["/risk/ML eng", "ml-cab"]);
    let grants = store
        .group_grants(&[group("ml-cab"), group("unmapped")])
        .await
        .expect("grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].roles, roles("requester,cab_member"));
    assert_eq!(
        default
            .delete_group_roles("admin", &group("ml-cab"))
            .await
            .expect("delete"),
        Some(roles("requester,cab_member"))
    );
    assert_eq!(
        default
            .delete_group_roles("admin", &group("ml-cab"))
            .await
            .expect("delete again"),
        None
    );
    let events = default
        .audit_events_for("group", "ml-cab")
        .await
        .expect("events");
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["group_roles.set", "group_roles.set", "group_roles.deleted"]
    );
}

both_backends!(
    a_sign_in_under_way_is_taken_once,
    sign_ins_provision_sync_and_refuse,
    the_mapping_is_per_tenant,
);
