//! The targets, windows and catalog pages: each form writes what the API then reads, is shown
//! only to those who may use it, and a forged post meets the API's permission.

use super::{element, signed_in, waiting_operation};
use crate::both_backends;
use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, TestDb, cast};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;

async fn the_targets_windows_and_catalog_forms_write_what_the_api_reads(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn(&db).await;
    let c = cast(&app).await;
    let admin = signed_in(&app, ADMIN_TOKEN).await;

    let targets = admin.get("/admin/targets").await;
    assert_eq!(targets.status, StatusCode::OK, "{}", targets.body);
    assert!(element(&targets, "target-fraud-scoring").contains("mia"));
    let registered = admin
        .post(
            "/admin/targets",
            &[
                ("csrf", &targets.csrf()),
                ("name", "gpu-cluster"),
                ("kind", "compute_cluster"),
                ("owner", "mia"),
                ("environment", "production"),
                ("criticality", "high"),
                ("regulated", "pii"),
                ("regulated", "financial"),
                ("parent", ""),
            ],
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::SEE_OTHER,
        "{}",
        registered.body
    );
    let page = admin.get(registered.header(LOCATION)).await;
    assert!(element(&page, "notice").contains("gpu-cluster is registered"));
    let row = element(&page, "target-gpu-cluster");
    assert!(
        row.contains("pii, financial") && row.contains("production"),
        "{row}"
    );
    let (status, target) = app.get("/api/v1/targets/gpu-cluster", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{target}");
    assert_eq!(target["regulated"], json!(["pii", "financial"]));
    assert_eq!(target["criticality"], "high");
    // A bad field is the API's 422, naming it.
    let bad = admin
        .post(
            "/admin/targets",
            &[
                ("csrf", &targets.csrf()),
                ("name", "orphan"),
                ("kind", "compute_cluster"),
                ("owner", "rita"),
                ("environment", "production"),
                ("criticality", "high"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(
        element(&bad, "problem").contains("owner: user")
            && element(&bad, "problem").contains("is not a manager"),
        "{}",
        bad.body
    );

    let windows = admin.get("/admin/windows").await;
    assert_eq!(windows.status, StatusCode::OK, "{}", windows.body);
    let created = admin
        .post(
            "/admin/windows",
            &[
                ("csrf", &windows.csrf()),
                ("name", "quarter-end"),
                ("kind", "freeze"),
                ("scope", "environment:production"),
                ("timezone", "Europe/London"),
                ("starts", "2030-03-28T18:00"),
                ("ends", "2030-04-01T06:00"),
                ("rrule", "FREQ=YEARLY"),
                ("reason", "quarter-end close"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let page = admin.get(created.header(LOCATION)).await;
    assert!(element(&page, "notice").contains("the freeze quarter-end is in the calendar"));
    let row = element(&page, "window-quarter-end");
    assert!(
        row.contains("FREQ=YEARLY")
            && row.contains("2030-03-28T18:00")
            && row.contains("Europe/London"),
        "{row}"
    );
    let (status, window) = app.get("/api/v1/windows/quarter-end", ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{window}");
    assert_eq!(window["kind"], "freeze");
    assert_eq!(window["rrule"], "FREQ=YEARLY");
    assert_eq!(window["scope"], "environment:production");

    // A catalog item waits for a second admin: named on the page, absent from the catalog.
    let catalog = admin.get("/admin/catalog").await;
    assert_eq!(catalog.status, StatusCode::OK, "{}", catalog.body);
    let asked = admin
        .post(
            "/admin/catalog",
            &[
                ("csrf", &catalog.csrf()),
                ("name", "feature-flag-flip"),
                ("description", "flip a feature flag"),
                ("categories", "config, flags"),
                ("environments", "staging"),
                ("max_impact", "low"),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER, "{}", asked.body);
    let page = admin.get(asked.header(LOCATION)).await;
    let op = waiting_operation(&page);
    assert!(!page.body.contains(r#"id="item-feature-flag-flip""#));
    let (_, waiting) = app
        .get(&format!("/api/v1/admin/pending/{op}"), ADMIN_TOKEN)
        .await;
    assert_eq!(waiting["kind"], "put_catalog_item");
    assert_eq!(
        waiting["operation"]["item"]["categories"],
        json!(["config", "flags"])
    );
    app.approve_operation(&op).await;
    let page = admin.get("/admin/catalog").await;
    assert!(page.body.contains(r#"id="item-feature-flag-flip""#));

    // Each form only for those who may use it, and a forged post refused by the same check.
    let manager = signed_in(&app, &c.mia).await;
    let theirs = manager.get("/admin/windows").await;
    assert!(element(&theirs, "window-quarter-end").contains("freeze"));
    assert!(!theirs.body.contains(r#"id="create-window""#));
    let forged = manager
        .post(
            "/admin/windows",
            &[
                ("csrf", &theirs.csrf()),
                ("name", "sneaky"),
                ("kind", "maintenance"),
                ("scope", "everywhere"),
                ("timezone", "UTC"),
                ("starts", "2030-01-01T00:00"),
                ("ends", "2030-01-01T01:00"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(
        manager
            .get("/admin/targets")
            .await
            .body
            .contains(r#"id="create-target""#)
    );
    let requester = signed_in(&app, &c.rita).await;
    let theirs = requester.get("/admin/targets").await;
    assert!(!theirs.body.contains(r#"id="create-target""#));
    assert!(
        !requester
            .get("/admin/catalog")
            .await
            .body
            .contains(r#"id="catalog-item""#)
    );
    app.stop().await;
}

both_backends!(the_targets_windows_and_catalog_forms_write_what_the_api_reads);
