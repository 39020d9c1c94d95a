//! The account lifecycle at the storage level, on SQLite and PostgreSQL: what a token's hash
//! opens (and why it does not), last use written at most once a minute, and two admins disabling
//! each other at the same moment never leaving a tenant without an active admin.

use chrono::{DateTime, Duration, TimeZone, Utc};
use steward_core::account::{AccountStatus, LockoutRefused, TokenRefused};
use steward_core::{Roles, TenantId, UserName};
use steward_store::{AccountRefusal, PayloadKek, Store, TokenCheck};

mod support;
use support::{Backend, Db, fresh};

async fn store(backend: Backend) -> (Db, Store) {
    let db = fresh(backend).await;
    let store = Store::connect(&db.url, PayloadKek::from_bytes([7; 32]))
        .await
        .expect("the store opens");
    (db, store)
}

fn name(n: &str) -> UserName {
    UserName::parse(n).expect("name")
}

fn roles(list: &str) -> Roles {
    Roles::parse_list(list).expect("roles")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .expect("time")
}

fn refused(check: TokenCheck) -> Option<TokenRefused> {
    match check {
        TokenCheck::Refused(why) => Some(why),
        _ => None,
    }
}

async fn a_token_opens_its_account_until_it_may_not(backend: Backend) {
    let (_db, store) = store(backend).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    tenant
        .create_user("admin", &name("admin"), &roles("admin"), "h-admin")
        .await
        .expect("admin");
    tenant
        .create_user_expiring(
            "admin",
            &name("ci"),
            &roles("pipeline"),
            "h-ci",
            Some(now() + Duration::hours(1)),
        )
        .await
        .expect("ci");
    assert_eq!(
        store.authenticate("h-none", now()).await.expect("read"),
        TokenCheck::Unknown
    );
    match store.authenticate("h-ci", now()).await.expect("read") {
        TokenCheck::Valid(p) => assert_eq!(p.name, name("ci")),
        other => panic!("{other:?}"),
    }
    let used = |store: Store| async move {
        store
            .tenant(&TenantId::default_tenant())
            .account(&name("ci"))
            .await
            .expect("read")
            .expect("ci")
            .last_used_at
    };
    assert_eq!(used(store.clone()).await, Some(now()));
    store
        .authenticate("h-ci", now() + Duration::seconds(30))
        .await
        .expect("read");
    assert_eq!(
        used(store.clone()).await,
        Some(now()),
        "not within a minute"
    );
    // Expired at its time, not a microsecond later.
    assert_eq!(
        refused(
            store
                .authenticate("h-ci", now() + Duration::hours(1))
                .await
                .expect("read")
        ),
        Some(TokenRefused::Expired)
    );
    // Rotated: the old hash is refused as rotated, the new one opens.
    let admin = name("admin");
    tenant
        .rotate_token(&admin, "h-admin", "h-admin-2", None, now())
        .await
        .expect("write")
        .expect("rotated");
    assert_eq!(
        refused(store.authenticate("h-admin", now()).await.expect("read")),
        Some(TokenRefused::Rotated)
    );
    assert_eq!(
        tenant
            .rotate_token(&admin, "h-admin", "h-admin-3", None, now())
            .await
            .expect("write"),
        Err(AccountRefusal::TokenGone),
        "one token is never rotated into two"
    );
    assert!(matches!(
        store.authenticate("h-admin-2", now()).await.expect("read"),
        TokenCheck::Valid(_)
    ));
    // Disabled, then revoked: a disabled account is named first.
    let disabled = tenant
        .disable_user(&admin, &name("ci"), now())
        .await
        .expect("write")
        .expect("disabled");
    assert_eq!(disabled.account.status, AccountStatus::Disabled);
    assert_eq!(
        refused(store.authenticate("h-ci", now()).await.expect("read")),
        Some(TokenRefused::AccountDisabled)
    );
    tenant
        .enable_user("admin", &name("ci"), None, now())
        .await
        .expect("write")
        .expect("enabled");
    assert_eq!(
        tenant
            .revoke_tokens(&admin, &name("ci"), now())
            .await
            .expect("write"),
        Ok(1)
    );
    assert_eq!(
        refused(store.authenticate("h-ci", now()).await.expect("read")),
        Some(TokenRefused::Revoked)
    );
    store.close().await;
}

async fn two_admins_disabling_each_other_leave_one(backend: Backend) {
    let (_db, store) = store(backend).await;
    let tenant = store.tenant(&TenantId::default_tenant());
    for (n, hash) in [("ada", "h-ada"), ("bob", "h-bob")] {
        tenant
            .create_user("system", &name(n), &roles("admin"), hash)
            .await
            .expect("an admin");
    }
    for _ in 0..5 {
        let (ada, bob) = (name("ada"), name("bob"));
        let (a, b) = tokio::join!(
            tenant.disable_user(&ada, &bob, now()),
            tenant.disable_user(&bob, &ada, now())
        );
        let outcomes = [a.expect("write"), b.expect("write")];
        let done = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(done, 1, "{outcomes:?}");
        assert!(
            outcomes.iter().any(|o| matches!(
                o,
                Err(AccountRefusal::Lockout(LockoutRefused::LastAdmin { .. }))
            )),
            "{outcomes:?}"
        );
        let page = tenant.list_users(None, 10).await.expect("list");
        let active = page
            .iter()
            .filter(|a| a.status == AccountStatus::Active)
            .count();
        assert_eq!(active, 1, "{page:?}");
        // Whoever was disabled comes back for the next round.
        for account in page.iter().filter(|a| a.status == AccountStatus::Disabled) {
            tenant
                .enable_user("system", &account.name, None, now())
                .await
                .expect("write")
                .expect("enabled");
        }
    }
    store.close().await;
}

both_backends!(
    a_token_opens_its_account_until_it_may_not,
    two_admins_disabling_each_other_leave_one
);
