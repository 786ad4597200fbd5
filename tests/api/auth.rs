//! Accounts: register, login, profile, change password, password reset, API key regeneration.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, assert_no_problems, assert_status_error, assert_validation, is_lower_hex, jwt_claims,
    spawn_app, spawn_app_with, validation_problem,
};

fn assert_user_shape(user: &Value, email: &str, username: &str, display_name: &str) {
    let id = user["id"]
        .as_str()
        .unwrap_or_else(|| panic!("user id in {user}"));
    uuid::Uuid::parse_str(id).expect("user id is a UUID");
    assert_eq!(user["email"], json!(email), "{user}");
    assert_eq!(user["username"], json!(username), "{user}");
    assert_eq!(user["displayName"], json!(display_name), "{user}");
    let created = user["createdAt"].as_str().expect("createdAt");
    chrono::DateTime::parse_from_rfc3339(created).expect("createdAt is RFC 3339");
    for secret in ["password", "passwordHash", "password_hash"] {
        assert!(user.get(secret).is_none(), "user leaks {secret}: {user}");
    }
}

#[actix_web::test]
async fn getting_started_register_example_works_as_written() {
    let app = spawn_app().await;
    // Step 1 of "Getting Started", as written.
    let (status, body) = app
        .post_json(
            "/api/v1/auth/register",
            &json!({
                "email": "you@example.com",
                "username": "myagent",
                "password": "secure-password",
                "displayName": "My Agent"
            }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_user_shape(&body["user"], "you@example.com", "myagent", "My Agent");
    assert_eq!(body["bonus"], json!({ "tokensGranted": 10000 }));
    let token = body["accessToken"].as_str().expect("accessToken");
    assert!(token.starts_with("eyJ"), "{token}");

    // The JWT lasts exactly 7 days.
    let claims = jwt_claims(token);
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert_eq!(exp - iat, 7 * 24 * 3600, "{claims}");
    let now = chrono::Utc::now().timestamp();
    assert!((iat - now).abs() < 120, "iat {iat} is not now ({now})");

    // 10,000 start tokens.
    let (status, balance) = app.get("/api/v1/billing/balance", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance, json!({ "balance": 10000, "reserved": 0 }));

    // The token is the user's.
    let (status, me) = app.get("/api/v1/auth/me", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], body["user"]["id"]);
    assert_user_shape(&me, "you@example.com", "myagent", "My Agent");

    let report = app.ledger_report().await;
    assert_eq!(report.granted, 10000);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn display_name_defaults_to_username() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json(
            "/api/v1/auth/register",
            &json!({ "email": "plain@example.com", "username": "plain_user-1", "password": "12345678" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_user_shape(
        &body["user"],
        "plain@example.com",
        "plain_user-1",
        "plain_user-1",
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn register_boundary_lengths_are_accepted() {
    let app = spawn_app().await;
    let cases = [
        ("abc".to_string(), "a".repeat(8), "x".repeat(100)),
        ("u".repeat(32), "p".repeat(128), "D".to_string()),
    ];
    for (i, (username, password, display)) in cases.iter().enumerate() {
        let email = format!("edge{i}@example.com");
        let (status, body) = app
            .post_json(
                "/api/v1/auth/register",
                &json!({ "email": email, "username": username, "password": password, "displayName": display }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{username}: {body}");
        assert_user_shape(&body["user"], &email, username, display);
    }
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn register_rejects_invalid_input_and_creates_nothing() {
    let app = spawn_app().await;
    let ok =
        json!({ "email": "ok@example.com", "username": "okuser", "password": "secure-password" });
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (without("email"), "email"),
        (without("username"), "username"),
        (without("password"), "password"),
        (with("email", json!("not-an-email")), "email"),
        (with("email", json!("a@b@example.com")), "email"),
        (with("email", json!("")), "email"),
        (with("email", json!("someone@mailinator.com")), "email"),
        (with("email", json!("someone@guerrillamail.com")), "email"),
        (with("email", json!("someone@10minutemail.com")), "email"),
        (with("email", json!(5)), "email"),
        (with("username", json!("ab")), "username"),
        (with("username", json!("u".repeat(33))), "username"),
        (with("username", json!("bad name")), "username"),
        (with("username", json!("bad!name")), "username"),
        (with("username", json!("björn")), "username"),
        (with("username", json!(12345)), "username"),
        (with("password", json!("1234567")), "password"),
        (with("password", json!("p".repeat(129))), "password"),
        (with("password", json!(12345678)), "password"),
        (with("displayName", json!("d".repeat(101))), "displayName"),
        (with("displayName", json!(["x"])), "displayName"),
    ];
    let mut problems = Vec::new();
    for (body, field) in &cases {
        let (status, resp) = app.post_json("/api/v1/auth/register", body, None).await;
        if let Some(p) = validation_problem(status, &resp, field) {
            problems.push(format!("{body}: {p}"));
        }
    }
    assert_no_problems(&problems);

    // Nothing was created: no grant, and the valid registration still works with these names.
    assert_eq!(app.ledger_report().await.granted, 0);
    let (status, resp) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": "ok@example.com", "password": "secure-password" }),
            None,
        )
        .await;
    assert_status_error(status, &resp, StatusCode::UNAUTHORIZED);
    let (status, resp) = app.post_json("/api/v1/auth/register", &ok, None).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(app.ledger_report().await.granted, 10000);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn duplicate_email_or_username_is_409_case_insensitively() {
    let app = spawn_app().await;
    let (_, first) = app
        .register("taken@example.com", "TakenName", PASSWORD)
        .await;
    let cases = [
        json!({ "email": "taken@example.com", "username": "other1", "password": PASSWORD }),
        json!({ "email": "TAKEN@Example.com", "username": "other2", "password": PASSWORD }),
        json!({ "email": "fresh1@example.com", "username": "TakenName", "password": PASSWORD }),
        json!({ "email": "fresh2@example.com", "username": "takenname", "password": PASSWORD }),
        json!({ "email": "fresh3@example.com", "username": "TAKENNAME", "password": PASSWORD }),
    ];
    for body in &cases {
        let (status, resp) = app.post_json("/api/v1/auth/register", body, None).await;
        assert_status_error(status, &resp, StatusCode::CONFLICT);
    }
    // Only the first account exists and only it was granted tokens.
    assert_eq!(app.ledger_report().await.granted, 10000);
    let (status, resp) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": "fresh1@example.com", "password": PASSWORD }),
            None,
        )
        .await;
    assert_status_error(status, &resp, StatusCode::UNAUTHORIZED);
    let (status, resp) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "username": "TakenName", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["user"]["id"], first["id"]);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn login_by_email_or_username() {
    let app = spawn_app().await;
    let (_, user) = app
        .register("login@example.com", "loginuser", PASSWORD)
        .await;

    for body in [
        json!({ "email": "login@example.com", "password": PASSWORD }),
        json!({ "username": "loginuser", "password": PASSWORD }),
    ] {
        let (status, resp) = app.post_json("/api/v1/auth/login", &body, None).await;
        assert_eq!(status, StatusCode::OK, "{body}: {resp}");
        assert_user_shape(&resp["user"], "login@example.com", "loginuser", "loginuser");
        assert_eq!(resp["user"]["id"], user["id"]);
        let token = resp["accessToken"].as_str().expect("accessToken");
        let claims = jwt_claims(token);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            604_800
        );
        let (status, me) = app.get("/api/v1/auth/me", Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["id"], user["id"]);
    }
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn login_failures() {
    let app = spawn_app().await;
    app.register("login@example.com", "loginuser", PASSWORD)
        .await;
    for body in [
        json!({ "email": "login@example.com", "password": "wrong-password" }),
        json!({ "username": "loginuser", "password": "wrong-password" }),
        json!({ "email": "nobody@example.com", "password": PASSWORD }),
        json!({ "username": "nobody", "password": PASSWORD }),
    ] {
        let (status, resp) = app.post_json("/api/v1/auth/login", &body, None).await;
        assert_status_error(status, &resp, StatusCode::UNAUTHORIZED);
        assert!(resp.get("accessToken").is_none(), "{resp}");
    }
    let (status, resp) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": "login@example.com" }),
            None,
        )
        .await;
    assert_validation(status, &resp, "password");
    let (status, resp) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": "login@example.com", "password": 5 }),
            None,
        )
        .await;
    assert_validation(status, &resp, "password");
    let (status, resp) = app
        .post_json("/api/v1/auth/login", &json!({ "password": PASSWORD }), None)
        .await;
    assert_status_error(status, &resp, StatusCode::BAD_REQUEST);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn me_requires_a_valid_jwt() {
    let app = spawn_app().await;
    let (token, user) = app.register_user("meuser").await;
    let (_, key) = app.create_ws_agent(&token, "Me Agent", "me-agent").await;

    let (status, me) = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me, user, "GET /auth/me is the bare user object");

    // No token, garbage, a tampered signature, another scheme, an API key: 401.
    let (status, body) = app.get("/api/v1/auth/me", None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/v1/auth/me", Some("garbage")).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, body) = app.get("/api/v1/auth/me", Some(&tampered)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let resp = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("Authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::helpers::into_json(resp).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/v1/auth/me", Some(&key)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn change_password() {
    let app = spawn_app().await;
    let (token, _) = app.register("pw@example.com", "pwuser", PASSWORD).await;
    let (_, key) = app.create_ws_agent(&token, "Pw Agent", "pw-agent").await;
    let path = "/api/v1/auth/change-password";

    // Wrong current password: 401, nothing changes.
    let (status, body) = app
        .post_json(
            path,
            &json!({ "currentPassword": "not-my-password", "newPassword": "brand-new-pass" }),
            Some(&token),
        )
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    // Bad input: 400 naming the field.
    let (status, body) = app
        .post_json(
            path,
            &json!({ "currentPassword": PASSWORD, "newPassword": "short" }),
            Some(&token),
        )
        .await;
    assert_validation(status, &body, "newPassword");
    let (status, body) = app
        .post_json(
            path,
            &json!({ "currentPassword": PASSWORD, "newPassword": "n".repeat(129) }),
            Some(&token),
        )
        .await;
    assert_validation(status, &body, "newPassword");
    let (status, body) = app
        .post_json(path, &json!({ "currentPassword": PASSWORD }), Some(&token))
        .await;
    assert_validation(status, &body, "newPassword");
    // No JWT, or an API key: 401.
    let ok = json!({ "currentPassword": PASSWORD, "newPassword": "brand-new-pass" });
    let (status, body) = app.post_json(path, &ok, None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.post_json(path, &ok, Some(&key)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    // The old password still works after all of these.
    let (status, body) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": "pw@example.com", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = app.post_json(path, &ok, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );

    let (status, body) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": "pw@example.com", "password": PASSWORD }),
            None,
        )
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": "pw@example.com", "password": "brand-new-pass" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.assert_ledger_balanced().await;
}

/// Finds `Reset token: <64 hex>` in a mail (undoing quoted-printable soft line breaks).
fn reset_token(mail: &str) -> String {
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded
        .find("Reset token: ")
        .unwrap_or_else(|| panic!("no reset token in mail:\n{mail}"))
        + "Reset token: ".len();
    let token: String = unfolded[start..].chars().take(64).collect();
    assert_eq!(token.len(), 64, "short token in mail:\n{mail}");
    assert!(
        is_lower_hex(&token.to_lowercase()),
        "token is not hex: {token}"
    );
    token
}

#[actix_web::test]
async fn password_reset_flow() {
    let app = spawn_app().await;
    app.register("reset@example.com", "resetuser", PASSWORD)
        .await;
    let request = "/api/v1/auth/reset-password/request";
    let confirm = "/api/v1/auth/reset-password/confirm";

    // Unknown address first: the same answer, and no mail.
    let (status_unknown, body_unknown) = app
        .post_json(request, &json!({ "email": "nobody@example.com" }), None)
        .await;
    let (status_known, body_known) = app
        .post_json(request, &json!({ "email": "reset@example.com" }), None)
        .await;
    assert_eq!(status_known, StatusCode::OK, "{body_known}");
    assert!(
        body_known["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body_known}"
    );
    assert_eq!(status_unknown, status_known);
    assert_eq!(
        body_unknown, body_known,
        "the answer must not reveal whether the account exists"
    );

    let mails = app.wait_for_outbox(1).await;
    assert_eq!(
        mails.len(),
        1,
        "exactly one mail (none for the unknown address): {mails:?}"
    );
    assert!(
        mails[0].contains("reset@example.com"),
        "mail is addressed to the user:\n{}",
        mails[0]
    );
    let token = reset_token(&mails[0]);

    // Bad input.
    let (status, body) = app
        .post_json(request, &json!({ "email": "not-an-email" }), None)
        .await;
    assert_validation(status, &body, "email");
    let (status, body) = app.post_json(request, &json!({}), None).await;
    assert_validation(status, &body, "email");
    let (status, body) = app
        .post_json(confirm, &json!({ "newPassword": "reset-new-pass" }), None)
        .await;
    assert_validation(status, &body, "token");
    let (status, body) = app
        .post_json(confirm, &json!({ "token": token }), None)
        .await;
    assert_validation(status, &body, "newPassword");
    let (status, body) = app
        .post_json(
            confirm,
            &json!({ "token": "0".repeat(64), "newPassword": "reset-new-pass" }),
            None,
        )
        .await;
    assert_status_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .post_json(
            confirm,
            &json!({ "token": "junk", "newPassword": "reset-new-pass" }),
            None,
        )
        .await;
    assert_status_error(status, &body, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .post_json(
            confirm,
            &json!({ "token": token, "newPassword": "short" }),
            None,
        )
        .await;
    assert_validation(status, &body, "newPassword");

    // The old password still works until the reset is confirmed.
    let login = |password: &str| json!({ "email": "reset@example.com", "password": password });
    let (status, _) = app
        .post_json("/api/v1/auth/login", &login(PASSWORD), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .post_json(
            confirm,
            &json!({ "token": token, "newPassword": "reset-new-pass" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Single use.
    let (status, body) = app
        .post_json(
            confirm,
            &json!({ "token": token, "newPassword": "another-new-pass" }),
            None,
        )
        .await;
    assert_status_error(status, &body, StatusCode::BAD_REQUEST);

    let (status, body) = app
        .post_json("/api/v1/auth/login", &login(PASSWORD), None)
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post_json("/api/v1/auth/login", &login("another-new-pass"), None)
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post_json("/api/v1/auth/login", &login("reset-new-pass"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.assert_ledger_balanced().await;
}

fn assert_key_shape(api_key: &str, masked: &str) {
    assert!(api_key.starts_with("amp_"), "{api_key}");
    let hex = &api_key[4..];
    assert_eq!(hex.len(), 48, "{api_key}");
    assert!(is_lower_hex(hex), "{api_key}");
    assert_eq!(masked, format!("amp_****{}", &api_key[api_key.len() - 4..]));
}

#[actix_web::test]
async fn regenerate_api_key_with_one_agent() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("keyuser").await;
    let (agent, old_key) = app.create_ws_agent(&token, "Key Agent", "key-agent").await;
    let (status, _) = app.get("/api/v1/billing/balance", Some(&old_key)).await;
    assert_eq!(status, StatusCode::OK);

    // JWT only.
    let (status, body) = app
        .post_json(
            "/api/v1/auth/regenerate-api-key",
            &json!({}),
            Some(&old_key),
        )
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post_json("/api/v1/auth/regenerate-api-key", &json!({}), None)
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/v1/billing/balance", Some(&old_key)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a refused regeneration leaves the key working"
    );

    let (status, body) = app
        .post_json("/api/v1/auth/regenerate-api-key", &json!({}), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["agentId"], agent["id"]);
    let new_key = body["apiKey"].as_str().expect("apiKey").to_string();
    assert_key_shape(&new_key, body["maskedKey"].as_str().expect("maskedKey"));
    assert_ne!(new_key, old_key);

    let (status, body) = app.get("/api/v1/billing/balance", Some(&old_key)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/v1/billing/balance", Some(&new_key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "balance": 10000, "reserved": 0 }));

    // Explicit agentId works too, and again invalidates the previous key.
    let (status, body) = app
        .post_json(
            "/api/v1/auth/regenerate-api-key",
            &json!({ "agentId": agent["id"] }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let third = body["apiKey"].as_str().unwrap().to_string();
    let (status, _) = app.get("/api/v1/billing/balance", Some(&new_key)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/v1/billing/balance", Some(&third)).await;
    assert_eq!(status, StatusCode::OK);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn regenerate_api_key_with_several_agents_needs_agent_id() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("multikey").await;
    let (a, key_a) = app.create_ws_agent(&token, "Agent A", "agent-a").await;
    let (_b, key_b) = app.create_ws_agent(&token, "Agent B", "agent-b").await;
    let (other_token, _) = app.register_user("otherkey").await;
    let (other_agent, other_key) = app
        .create_ws_agent(&other_token, "Other Agent", "other-agent")
        .await;

    let (status, body) = app
        .post_json("/api/v1/auth/regenerate-api-key", &json!({}), Some(&token))
        .await;
    assert_validation(status, &body, "agentId");
    let (status, body) = app
        .post_json(
            "/api/v1/auth/regenerate-api-key",
            &json!({ "agentId": "not-a-uuid" }),
            Some(&token),
        )
        .await;
    // Not a UUID: either a validation error naming agentId or simply no such agent.
    if status == StatusCode::NOT_FOUND {
        assert_status_error(status, &body, StatusCode::NOT_FOUND);
    } else {
        assert_validation(status, &body, "agentId");
    }
    let (status, body) = app
        .post_json(
            "/api/v1/auth/regenerate-api-key",
            &json!({ "agentId": uuid::Uuid::new_v4() }),
            Some(&token),
        )
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    // Someone else's agent: refused, and their key keeps working.
    let (status, body) = app
        .post_json(
            "/api/v1/auth/regenerate-api-key",
            &json!({ "agentId": other_agent["id"] }),
            Some(&token),
        )
        .await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
        "someone else's agent: {status} {body}"
    );
    assert_status_error(status, &body, status);
    let (status, _) = app.get("/api/v1/billing/balance", Some(&other_key)).await;
    assert_eq!(status, StatusCode::OK);
    // Nothing changed for either key.
    for key in [&key_a, &key_b] {
        let (status, _) = app.get("/api/v1/billing/balance", Some(key)).await;
        assert_eq!(status, StatusCode::OK);
    }

    let (status, body) = app
        .post_json(
            "/api/v1/auth/regenerate-api-key",
            &json!({ "agentId": a["id"] }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["agentId"], a["id"]);
    let new_a = body["apiKey"].as_str().unwrap().to_string();
    assert_key_shape(&new_a, body["maskedKey"].as_str().unwrap());
    let (status, _) = app.get("/api/v1/billing/balance", Some(&key_a)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/api/v1/billing/balance", Some(&new_a)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get("/api/v1/billing/balance", Some(&key_b)).await;
    assert_eq!(status, StatusCode::OK, "agent B's key is untouched");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn expired_or_foreign_jwts_are_401() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let secret = "test-secret-of-at-least-thirty-two-bytes!";
    let app = spawn_app_with(|s| s.jwt_secret = Some(secret.into())).await;
    let (token, user) = app.register_user("jwtuser").await;
    let claims = jwt_claims(&token);
    let now = chrono::Utc::now().timestamp();
    let sign = |iat: i64, exp: i64, key: &str| {
        let mut c = claims.clone();
        c["iat"] = json!(iat);
        c["exp"] = json!(exp);
        encode(
            &Header::default(),
            &c,
            &EncodingKey::from_secret(key.as_bytes()),
        )
        .unwrap()
    };
    // Control: the same claims, freshly signed with the hub's secret, are accepted.
    let (status, me) = app
        .get("/api/v1/auth/me", Some(&sign(now, now + 3600, secret)))
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], user["id"]);
    // Expired (well past any leeway).
    let (status, body) = app
        .get(
            "/api/v1/auth/me",
            Some(&sign(now - 8 * 86400, now - 86400, secret)),
        )
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    // Signed with another secret.
    let (status, body) = app
        .get(
            "/api/v1/auth/me",
            Some(&sign(
                now,
                now + 3600,
                "some-other-secret-of-32-bytes-or-more",
            )),
        )
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    app.assert_ledger_balanced().await;
}
