//! Concurrency and the ledger: concurrent registrations, and concurrent reservations against
//! one wallet that must never overdraw it.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};

#[actix_web::test]
async fn concurrent_registrations_are_all_granted() {
    let app = spawn_app().await;
    let requests = (0..20).map(|i| {
        let body = json!({ "email": format!("user{i}@example.com"), "username": format!("user{i}"), "password": PASSWORD });
        let app = &app;
        async move { app.post_json("/api/v1/auth/register", &body, None).await }
    });
    let results = futures_util::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        assert_eq!(body["bonus"]["tokensGranted"], json!(10000));
        ids.insert(body["user"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 20);
    for (_, body) in &results {
        let token = body["accessToken"].as_str().unwrap();
        let (_, balance) = app.get("/api/v1/billing/balance", Some(token)).await;
        assert_eq!(balance, json!({ "balance": 10000, "reserved": 0 }));
    }
    let report = app.ledger_report().await;
    assert_eq!(report.granted, 20 * 10000);
    assert_eq!(report.user_balances, 20 * 10000);
    assert_eq!(report.user_reserved, 0);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn concurrent_duplicate_registrations_create_one_account() {
    let app = spawn_app().await;
    let requests = (0..10).map(|i| {
        let body = json!({ "email": format!("dup{i}@example.com"), "username": "samename", "password": PASSWORD });
        let app = &app;
        async move { app.post_json("/api/v1/auth/register", &body, None).await }
    });
    let results = futures_util::future::join_all(requests).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let conflicts = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 9), "{results:?}");
    assert_eq!(app.ledger_report().await.granted, 10000);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn concurrent_reservations_never_overdraw() {
    let app = spawn_app().await;
    let (token, user) = app.register_user("spender").await;
    let user_id = uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap();
    let hub = app.hub.clone();

    let attempts = (0..50).map(|_| {
        let hub = hub.clone();
        async move {
            let txn = actors::db::begin_write(&hub.db).await.expect("begin");
            let result = actors::ledger::reserve(
                &hub.env,
                &txn,
                user_id,
                300,
                &actors::ledger::Memo::default(),
            )
            .await;
            match result {
                Ok(id) => {
                    txn.commit().await.expect("commit");
                    Ok(id)
                }
                Err(err) => {
                    txn.rollback().await.expect("rollback");
                    Err(err)
                }
            }
        }
    });
    let handles: Vec<_> = attempts.map(actix_web::rt::spawn).collect();
    let mut ok = 0;
    let mut insufficient = 0;
    for handle in handles {
        match handle.await.expect("task panicked") {
            Ok(_) => ok += 1,
            Err(actors::HubError::Coded {
                code: "INSUFFICIENT_TOKENS",
                status,
                ..
            }) => {
                assert_eq!(status, 402);
                insufficient += 1;
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!((ok, insufficient), (33, 17));

    let (status, balance) = app.get("/api/v1/billing/balance", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(balance, json!({ "balance": 100, "reserved": 9900 }));
    let report = app.ledger_report().await;
    assert_eq!(report.granted, 10000);
    assert_eq!(report.user_balances, 100);
    assert_eq!(report.user_reserved, 9900);
    assert!(report.is_balanced(), "{:?}", report.problems);

    // Releasing everything restores the wallet.
    let txn = actors::db::begin_write(&hub.db).await.unwrap();
    actors::ledger::release(
        &hub.env,
        &txn,
        user_id,
        9900,
        &actors::ledger::Memo::default(),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    let (_, balance) = app.get("/api/v1/billing/balance", Some(&token)).await;
    assert_eq!(balance, json!({ "balance": 10000, "reserved": 0 }));
    app.assert_ledger_balanced().await;
}
