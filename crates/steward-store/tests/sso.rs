//! Single sign-on's records at the storage level, on SQLite and PostgreSQL: a sign-in under way
//! is taken once, sessions end on time and read the account as it is now, sign-ins provision and
//! sync accounts bound to their identity (one account per identity, whatever name it brings;
//! never taking admin from the last active admin), disabling or revoking ends sessions, every
//! use records the last use, and a group is mapped in one tenant only.

use chrono::{DateTime, Duration, TimeZone, Utc};
use steward_core::sso::{GroupName, SignInRefused};
use steward_core::{Roles, TenantId, UserName};
use steward_store::sso::{NewSession, PendingLogin, SessionCheck, SsoAccount};
use steward_store::{PayloadKek, Store, StoreError};

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

fn session(hash: &str) -> NewSession {
    NewSession {
        token_hash: hash.into(),
        expires_at: now() + Duration::hours(1),
    }
}

fn name(text: &str) -> UserName {
    UserName::parse(text).expect("name")
}

async fn an_identity_keeps_one_account_whatever_name_it_brings(backend: Backend) {
    let (_db, store) = store(backend).await;
    let default = store.tenant(&TenantId::default_tenant());
    let first = account("erin", "https://idp#e1", "requester");
    store
        .sign_in(&first, Some(&session("s-1")), now())
        .await
        .expect("store")
        .expect("signed in");
    // The provider renames her (or a JWT without preferred_username is named by its sub):
    // the same account, under its name, with the roles the groups give now.
    let renamed = account("erin-smith", "https://idp#e1", "manager");
    for session in [Some(session("s-2")), None] {
        let principal = store
            .sign_in(&renamed, session.as_ref(), now())
            .await
            .expect("store")
            .expect("signed in");
        assert_eq!(principal.name.as_str(), "erin");
        assert_eq!(principal.roles, roles("manager"));
    }
    assert!(
        default
            .account(&name("erin-smith"))
            .await
            .expect("read")
            .is_none(),
        "no second account for one identity"
    );
    let signed_in = default
        .audit_events_for("user", "erin")
        .await
        .expect("events")
        .into_iter()
        .rfind(|e| e.action == "user.signed_in")
        .expect("signed in");
    assert_eq!(signed_in.details["provider_name"], "erin-smith");
    // Disabled, she stays out under any name.
    default
        .create_user("admin", &name("ada"), &roles("admin"), "h-ada")
        .await
        .expect("an admin");
    default
        .disable_user(&name("ada"), &name("erin"), now())
        .await
        .expect("store")
        .expect("disabled");
    for alias in ["erin", "erin-smith", "e1"] {
        let again = account(alias, "https://idp#e1", "requester");
        for session in [Some(session("s-3")), None] {
            assert_eq!(
                store
                    .sign_in(&again, session.as_ref(), now())
                    .await
                    .expect("store"),
                Err(SignInRefused::Disabled(name("erin"))),
                "{alias}"
            );
        }
    }
    assert!(default.account(&name("e1")).await.expect("read").is_none());
    // The same identity may hold an account in another tenant (reached by other groups).
    create_tenant(&store, "risk").await;
    let elsewhere = SsoAccount {
        tenant: TenantId::parse("risk").expect("tenant"),
        ..account("erin", "https://idp#e1", "requester")
    };
    store
        .sign_in(&elsewhere, None, now())
        .await
        .expect("store")
        .expect("an account in risk");
}

async fn create_tenant(store: &Store, tenant: &str) {
    store
        .create_tenant(&steward_store::NewTenant {
            id: &TenantId::parse(tenant).expect("tenant"),
            created_by: &name("admin"),
            admin: &name("boss"),
            admin_roles: &roles("admin"),
            token_hash: &format!("hash-of-{tenant}"),
            catalog: &steward_core::catalog::CatalogItem::shipped(),
            tenant_actor: "steward",
            now: now(),
        })
        .await
        .expect("tenant");
}

async fn groups_never_take_admin_from_the_last_active_admin(backend: Backend) {
    let (_db, store) = store(backend).await;
    let default = store.tenant(&TenantId::default_tenant());
    let ada = account("ada", "https://idp#ada", "admin");
    store
        .sign_in(&ada, Some(&session("s-1")), now())
        .await
        .expect("store")
        .expect("signed in");
    // Her groups no longer give admin, and she is the tenant's only active admin: she keeps it
    // beside the roles her groups give, and the record says why.
    let demoted = account("ada", "https://idp#ada", "requester");
    for session in [Some(session("s-2")), None] {
        let principal = store
            .sign_in(&demoted, session.as_ref(), now())
            .await
            .expect("store")
            .expect("signed in");
        assert_eq!(principal.roles, roles("requester,admin"));
    }
    let synced: Vec<serde_json::Value> = default
        .audit_events_for("user", "ada")
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.action == "user.roles_synced")
        .map(|e| e.details)
        .collect();
    assert_eq!(synced.len(), 1, "{synced:?}");
    assert_eq!(
        synced[0]["after"]["roles"],
        serde_json::json!(["requester", "admin"])
    );
    assert_eq!(
        synced[0]["mapped"]["roles"],
        serde_json::json!(["requester"])
    );
    assert!(
        synced[0]["admin_kept"]
            .as_str()
            .is_some_and(|why| why.contains("last active admin")),
        "{synced:?}"
    );
    // With another active admin, the groups decide.
    default
        .create_user("admin", &name("bob"), &roles("admin"), "h-bob")
        .await
        .expect("another admin");
    let principal = store
        .sign_in(&demoted, None, now())
        .await
        .expect("store")
        .expect("signed in");
    assert_eq!(principal.roles, roles("requester"));
    let stored = default
        .account(&name("ada"))
        .await
        .expect("read")
        .expect("ada");
    assert_eq!(stored.roles, roles("requester"));
}

async fn disabling_or_revoking_ends_the_sessions(backend: Backend) {
    let (_db, store) = store(backend).await;
    let default = store.tenant(&TenantId::default_tenant());
    default
        .create_user("admin", &name("ada"), &roles("admin"), "h-ada")
        .await
        .expect("an admin");
    let fay = account("fay", "https://idp#f1", "requester");
    store
        .sign_in(&fay, Some(&session("s-1")), now())
        .await
        .expect("store")
        .expect("signed in");
    let disabled = default
        .disable_user(&name("ada"), &name("fay"), now())
        .await
        .expect("store")
        .expect("disabled");
    assert_eq!(disabled.account.name.as_str(), "fay");
    default
        .enable_user("ada", &name("fay"), None, now())
        .await
        .expect("store")
        .expect("enabled");
    assert_eq!(
        store
            .principal_for_session("s-1", now())
            .await
            .expect("session"),
        SessionCheck::Unknown,
        "the session ended with the disable; enabling does not bring it back"
    );
    store
        .sign_in(&fay, Some(&session("s-2")), now())
        .await
        .expect("store")
        .expect("signed in");
    assert_eq!(
        default
            .revoke_tokens(&name("ada"), &name("fay"), now())
            .await
            .expect("store"),
        Ok(0)
    );
    assert_eq!(
        store
            .principal_for_session("s-2", now())
            .await
            .expect("session"),
        SessionCheck::Unknown
    );
    let events = default
        .audit_events_for("user", "fay")
        .await
        .expect("events");
    let ended: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.action == "user.disabled" || e.action == "token.revoked")
        .map(|e| &e.details["sessions_ended"])
        .collect();
    assert_eq!(ended, [&serde_json::json!(1), &serde_json::json!(1)]);
}

async fn sessions_and_bearer_sign_ins_record_the_last_use(backend: Backend) {
    let (_db, store) = store(backend).await;
    let default = store.tenant(&TenantId::default_tenant());
    let gil = account("gil", "https://idp#g1", "requester");
    let last_used = || async {
        default
            .account(&name("gil"))
            .await
            .expect("read")
            .expect("gil")
            .last_used_at
    };
    store
        .sign_in(&gil, Some(&session("s-1")), now())
        .await
        .expect("store")
        .expect("signed in");
    assert_eq!(last_used().await, Some(now()));
    // A session's use, at most once a minute.
    let later = now() + Duration::seconds(30);
    store
        .principal_for_session("s-1", later)
        .await
        .expect("session");
    assert_eq!(last_used().await, Some(now()), "not within the minute");
    let later = now() + Duration::minutes(2);
    store
        .principal_for_session("s-1", later)
        .await
        .expect("session");
    assert_eq!(last_used().await, Some(later));
    // A bearer JWT's (a sign-in without a session, the account as it should be).
    let latest = now() + Duration::minutes(4);
    store
        .sign_in(&gil, None, latest)
        .await
        .expect("store")
        .expect("signed in");
    assert_eq!(last_used().await, Some(latest));
}

async fn a_group_is_mapped_in_one_tenant_only(backend: Backend) {
    let (_db, store) = store(backend).await;
    create_tenant(&store, "risk").await;
    let default = store.tenant(&TenantId::default_tenant());
    let risk = store.tenant(&TenantId::parse("risk").expect("tenant"));
    default
        .set_group_roles("admin", &group("ml-pipelines"), &roles("pipeline"))
        .await
        .expect("mapped");
    match risk
        .set_group_roles("boss", &group("ml-pipelines"), &roles("requester"))
        .await
    {
        Err(StoreError::Refused(message)) => {
            assert!(message.contains("mapped in another tenant"), "{message}");
            assert!(!message.contains("default"), "names no tenant: {message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        risk.check_group_mappable(&group("ml-pipelines")).await,
        Err(StoreError::Refused(_))
    ));
    // The tenant that maps it may change it; another group is free; once unmapped, it is free.
    default
        .set_group_roles("admin", &group("ml-pipelines"), &roles("requester"))
        .await
        .expect("remapped");
    default
        .check_group_mappable(&group("ml-pipelines"))
        .await
        .expect("its own");
    risk.set_group_roles("boss", &group("risk-eng"), &roles("requester"))
        .await
        .expect("another group");
    default
        .delete_group_roles("admin", &group("ml-pipelines"))
        .await
        .expect("deleted");
    risk.set_group_roles("boss", &group("ml-pipelines"), &roles("requester"))
        .await
        .expect("free again");
    let grants = store
        .group_grants(&[group("ml-pipelines")])
        .await
        .expect("grants");
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].tenant.as_str(), "risk");
}

both_backends!(
    a_sign_in_under_way_is_taken_once,
    sign_ins_provision_sync_and_refuse,
    the_mapping_is_per_tenant,
    an_identity_keeps_one_account_whatever_name_it_brings,
    groups_never_take_admin_from_the_last_active_admin,
    disabling_or_revoking_ends_the_sessions,
    sessions_and_bearer_sign_ins_record_the_last_use,
    a_group_is_mapped_in_one_tenant_only,
);
