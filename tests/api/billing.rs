//! Wallets: balance (JWT or API key), transactions (JWT), billing status, health.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_status_error, assert_validation, spawn_app};

#[actix_web::test]
async fn new_account_balance_by_jwt_and_api_key() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("payer").await;
    let (_, key) = app
        .create_ws_agent(&token, "Payer Agent", "payer-agent")
        .await;
    for credential in [&token, &key] {
        let (status, body) = app.get("/api/v1/billing/balance", Some(credential)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({ "balance": 10000, "reserved": 0 }));
    }
    let (status, body) = app.get("/api/v1/billing/balance", None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let bogus = format!("amp_{}", "0".repeat(48));
    let (status, body) = app.get("/api/v1/billing/balance", Some(&bogus)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/v1/billing/balance", Some("amp_short")).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn each_user_has_their_own_wallet() {
    let app = spawn_app().await;
    let (alice, alice_user) = app.register_user("alice").await;
    let (bob, bob_user) = app.register_user("bob").await;
    let (_, bob_key) = app.create_ws_agent(&bob, "Bob Agent", "bob-agent").await;
    assert_ne!(alice_user["id"], bob_user["id"]);
    for credential in [&alice, &bob, &bob_key] {
        let (status, body) = app.get("/api/v1/billing/balance", Some(credential)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({ "balance": 10000, "reserved": 0 }));
    }
    let report = app.ledger_report().await;
    assert_eq!(report.granted, 20000);
    assert_eq!(report.user_balances, 20000);
    assert_eq!(report.user_reserved, 0);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn transactions_show_the_start_grant() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("history").await;
    let (_, key) = app
        .create_ws_agent(&token, "History Agent", "history-agent")
        .await;

    let (status, body) = app.get("/api/v1/billing/transactions", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["page"], json!(1));
    assert_eq!(body["limit"], json!(20));
    assert_eq!(body["total"], json!(1));
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "{body}");
    let grant = &data[0];
    uuid::Uuid::parse_str(grant["id"].as_str().expect("id")).expect("transaction id is a UUID");
    assert_eq!(grant["type"], json!("grant"));
    assert_eq!(grant["amount"], json!(10000));
    assert_eq!(grant["balanceAfter"], json!(10000));
    assert_eq!(grant["agentId"], json!(null));
    assert_eq!(grant["requestId"], json!(null));
    let created =
        chrono::DateTime::parse_from_rfc3339(grant["createdAt"].as_str().expect("createdAt"))
            .unwrap();
    assert!((chrono::Utc::now() - created.to_utc()).num_seconds().abs() < 120);

    // Paging parameters.
    let (status, body) = app
        .get("/api/v1/billing/transactions?page=2&limit=1", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["total"], json!(1));
    assert_eq!(body["page"], json!(2));
    assert_eq!(body["limit"], json!(1));
    let (status, body) = app
        .get("/api/v1/billing/transactions?limit=101", Some(&token))
        .await;
    assert_validation(status, &body, "limit");

    // JWT only; and nobody sees another's history.
    let (status, body) = app.get("/api/v1/billing/transactions", Some(&key)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/v1/billing/transactions", None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (other, _) = app.register_user("other").await;
    let (_, body) = app.get("/api/v1/billing/transactions", Some(&other)).await;
    assert_eq!(
        body["total"],
        json!(1),
        "only the other user's own grant: {body}"
    );
    assert_ne!(body["data"][0]["id"], grant["id"]);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn billing_status_is_public() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/billing/status", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.is_object(), "{body}");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn health_reports_the_database() {
    let app = spawn_app().await;
    let (status, body) = app.get("/health", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], json!("ok"), "{body}");
    assert_eq!(body["database"], json!("up"), "{body}");
    app.assert_ledger_balanced().await;
}
