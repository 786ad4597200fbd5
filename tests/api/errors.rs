//! Every error, including the ones actix produces itself, answers the JSON error body.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_status_error, into_json, spawn_app, spawn_app_with};

#[actix_web::test]
async fn unknown_routes_are_404_json() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/nope",
        "/nope",
        "/api/v2/agents",
        "/api/v1/auth/nope",
    ] {
        let (status, body) = app.get(path, None).await;
        assert_status_error(status, &body, StatusCode::NOT_FOUND);
    }
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn wrong_method_is_405_json() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::DELETE, "/api/v1/auth/register"),
        (Method::GET, "/api/v1/auth/login"),
        (Method::PUT, "/api/v1/agents"),
        (Method::POST, "/api/v1/billing/balance"),
    ] {
        let resp = app
            .request(method.clone(), path, None)
            .send()
            .await
            .unwrap();
        let (status, body) = into_json(resp).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert_status_error(status, &body, StatusCode::METHOD_NOT_ALLOWED);
    }
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn wrong_content_type_is_415_json() {
    let app = spawn_app().await;
    let body =
        json!({ "email": "ct@example.com", "username": "ctuser", "password": "secure-password" });
    let resp = app
        .request(Method::POST, "/api/v1/auth/register", None)
        .header("Content-Type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (status, resp) = into_json(resp).await;
    assert_status_error(status, &resp, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        app.ledger_report().await.granted,
        0,
        "nothing was registered"
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn body_too_large_is_413_json() {
    let app = spawn_app_with(|s| s.max_body_bytes = 4096).await;
    let (token, _) = app.register_user("big").await;
    let body = json!({ "name": "Big", "description": "x".repeat(10_000) });
    let (status, resp) = app.post_json("/api/v1/agents", &body, Some(&token)).await;
    assert_status_error(status, &resp, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, mine) = app.get("/api/v1/agents/my", Some(&token)).await;
    assert_eq!(mine["total"], json!(0), "{mine}");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn malformed_json_is_400_json() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("malformed").await;
    for (path, token, raw) in [
        (
            "/api/v1/auth/register",
            None,
            "{\"email\": \"m@example.com\", ",
        ),
        ("/api/v1/auth/register", None, "not json at all"),
        ("/api/v1/auth/register", None, "[1, 2, 3]"),
        ("/api/v1/auth/login", None, "{"),
        ("/api/v1/agents", Some(token.as_str()), "{\"name\": }"),
        ("/api/v1/agents", Some(token.as_str()), ""),
    ] {
        let resp = app
            .request(Method::POST, path, token)
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let (status, body) = into_json(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {raw:?}: {body}");
        assert_status_error(status, &body, StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        app.ledger_report().await.granted,
        10000,
        "only the helper's account exists"
    );
    let (_, mine) = app.get("/api/v1/agents/my", Some(&token)).await;
    assert_eq!(mine["total"], json!(0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn unauthorized_body_shape() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/auth/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["statusCode"], json!(401));
    assert_eq!(body["error"], json!("Unauthorized"));
    assert!(body["message"].is_string());
    app.assert_ledger_balanced().await;
}
