//! Rate limiting: per API key, per user (JWT), per IP; headers on every response; 429 with
//! `Retry-After` and code `RATE_LIMITED`.

use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, assert_coded, into_json, spawn_app, spawn_app_with};

const LIMIT: u32 = 5;

fn header_u64(resp: &reqwest::Response, name: &str) -> u64 {
    let value = resp
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}: {:?}", resp.headers()));
    value
        .to_str()
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not an integer: {value:?}"))
}

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    app.request(Method::GET, path, token).send().await.unwrap()
}

/// Uses up a fresh bucket of `LIMIT` requests, checking the headers, then expects a 429.
async fn exhaust(app: &TestApp, path: &str, token: Option<&str>, already_used: u32) {
    for used in already_used + 1..=LIMIT {
        let resp = get(app, path, token).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "request {used} of {LIMIT} to {path}"
        );
        assert_eq!(header_u64(&resp, "X-RateLimit-Limit"), u64::from(LIMIT));
        assert_eq!(
            header_u64(&resp, "X-RateLimit-Remaining"),
            u64::from(LIMIT - used),
            "request {used}"
        );
        let reset = header_u64(&resp, "X-RateLimit-Reset");
        assert!(reset > 0, "X-RateLimit-Reset {reset}");
    }
    let resp = get(app, path, token).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = header_u64(&resp, "Retry-After");
    assert!(retry <= 60, "Retry-After {retry}");
    assert_eq!(header_u64(&resp, "X-RateLimit-Remaining"), 0);
    let (status, body) = into_json(resp).await;
    assert_coded(status, &body, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
}

#[actix_web::test]
async fn per_user_limit_does_not_affect_other_users() {
    let app = spawn_app_with(|s| s.rate_limit_per_min = LIMIT).await;
    let (alice, _) = app.register_user("alice").await;
    let (bob, _) = app.register_user("bob").await;
    exhaust(&app, "/api/v1/auth/me", Some(&alice), 0).await;
    // Still limited on another endpoint.
    let resp = get(&app, "/api/v1/billing/balance", Some(&alice)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // Bob has his own bucket.
    let resp = get(&app, "/api/v1/auth/me", Some(&bob)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header_u64(&resp, "X-RateLimit-Remaining"),
        u64::from(LIMIT - 1)
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn per_api_key_limit() {
    let app = spawn_app_with(|s| s.rate_limit_per_min = LIMIT).await;
    let (alice, _) = app.register_user("alice").await;
    let (bob, _) = app.register_user("bob").await;
    let (_, alice_key) = app
        .create_ws_agent(&alice, "Alice Agent", "alice-agent")
        .await;
    let (_, bob_key) = app.create_ws_agent(&bob, "Bob Agent", "bob-agent").await;
    // A key's very first request may be charged to the caller's address (the hub need not
    // verify a key before choosing a bucket); once known, the key has its own bucket.
    for key in [&alice_key, &bob_key] {
        let resp = get(&app, "/api/v1/billing/balance", Some(key)).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = get(&app, "/api/v1/billing/balance", Some(&alice_key)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let remaining = header_u64(&resp, "X-RateLimit-Remaining");
    assert!(
        remaining == u64::from(LIMIT - 1) || remaining == u64::from(LIMIT - 2),
        "a key's second request leaves {remaining}"
    );
    let used = LIMIT - u32::try_from(remaining).unwrap();
    exhaust(&app, "/api/v1/billing/balance", Some(&alice_key), used).await;
    // Bob's key and Alice's own JWT have their own buckets.
    let resp = get(&app, "/api/v1/billing/balance", Some(&bob_key)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "another key has its own bucket"
    );
    let resp = get(&app, "/api/v1/billing/balance", Some(&alice)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the owner's JWT is not the key's bucket"
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn per_ip_limit_for_anonymous_requests() {
    let app = spawn_app_with(|s| s.rate_limit_per_min = LIMIT).await;
    // Registration is anonymous: one request of this IP's bucket.
    let (token, _) = app.register_user("carol").await;
    exhaust(&app, "/api/v1/agents", None, 1).await;
    let resp = get(&app, "/api/v1/billing/status", None).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // A logged-in user is counted per user, not per IP.
    let resp = get(&app, "/api/v1/agents", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn zero_disables_rate_limiting() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("unlimited").await;
    for i in 0..150 {
        let resp = get(&app, "/api/v1/auth/me", Some(&token)).await;
        assert_eq!(resp.status(), StatusCode::OK, "request {i}");
    }
    app.assert_ledger_balanced().await;
}
