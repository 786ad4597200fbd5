//! Audit logs: `GET /api/v1/audit/logs` lists the caller's own security-relevant events, newest
//! first, paginated and filtered by action and time; never another user's.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_status_error, assert_validation, spawn_app};
use crate::reviews::{caller_key, complete_calls, served};

const LOGS: &str = "/api/v1/audit/logs";

/// Every entry of the caller (all pages).
async fn all_entries(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1..=20 {
        let (status, body) = app
            .get(&format!("{LOGS}?limit=100&page={page}{query}"), Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "audit logs: {body}");
        let data = body["data"].as_array().expect("data").clone();
        let done = data.len() < 100;
        out.extend(data);
        if done {
            break;
        }
    }
    out
}

fn actions(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["action"].as_str().expect("action").to_string())
        .collect()
}

fn assert_entry_shape(entry: &Value) {
    let mut keys: Vec<&str> = entry
        .as_object()
        .unwrap_or_else(|| panic!("entry: {entry}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "action",
            "createdAt",
            "details",
            "id",
            "ip",
            "targetId",
            "targetType"
        ],
        "entry keys in {entry}"
    );
    assert_eq!(entry["ip"], json!("127.0.0.1"), "{entry}");
    assert!(entry["details"].is_object(), "{entry}");
    chrono::DateTime::parse_from_rfc3339(entry["createdAt"].as_str().expect("createdAt"))
        .expect("createdAt is RFC 3339");
}

fn reset_token(mail: &str) -> String {
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find("Reset token: ").expect("reset token in mail") + 13;
    unfolded[start..].chars().take(64).collect()
}

#[actix_web::test]
async fn every_action_is_recorded_for_its_user_only() {
    let app = spawn_app().await;
    let (token, user) = app.register_user("alice").await;
    let user_id = user["id"].as_str().unwrap().to_string();
    // Someone else's activity, interleaved.
    let (bob, _) = app.register_user("bob").await;
    let (bob_agent, _) = app
        .create_agent(&bob, &json!({ "name": "Bob Agent", "slug": "bob-agent" }))
        .await;

    let login = |password: &str| json!({ "email": "alice@example.com", "password": password });
    let (status, _) = app
        .post_json("/api/v1/auth/login", &login(PASSWORD), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post_json("/api/v1/auth/login", &login("wrong-password"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app
        .post_json(
            "/api/v1/auth/change-password",
            &json!({ "currentPassword": PASSWORD, "newPassword": "second-password" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .post_json(
            "/api/v1/auth/reset-password/request",
            &json!({ "email": "alice@example.com" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mail = app.wait_for_outbox(1).await.remove(0);
    let (status, body) = app
        .post_json(
            "/api/v1/auth/reset-password/confirm",
            &json!({ "token": reset_token(&mail), "newPassword": "third-password" }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (agent, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Alice Agent", "slug": "alice-agent" }),
        )
        .await;
    let agent_id = agent["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/agents/{agent_id}");
    let (status, body) = app
        .patch(&path, &json!({ "description": "changed" }), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .patch(
            &format!("{path}/status"),
            &json!({ "status": "maintenance" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post_json(
            "/api/v1/auth/regenerate-api-key",
            &json!({ "agentId": agent_id }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.delete(&path, Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // A review, its update and its deletion.
    let target = served(&app, &bob, "bob-served", 2).await;
    let key = caller_key(&app, &token, "alice-caller").await;
    complete_calls(&app, &key, &target.id, 2, 1).await;
    let reviews = format!("/api/v1/agents/{}/reviews", target.id);
    let (status, review) = app
        .post_json(&reviews, &json!({ "rating": 4 }), Some(&token))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{review}");
    let (status, _) = app
        .post_json(&reviews, &json!({ "rating": 5 }), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.delete(&reviews, Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let entries = all_entries(&app, &token, "").await;
    let mut got = actions(&entries);
    got.reverse(); // oldest first
    let expected_in_order = [
        "user.register",
        "user.login",
        "user.login_failed",
        "user.password_change",
        "user.password_reset_request",
        "user.password_reset",
        "agent.create",
        "agent.update",
        "agent.status",
        "agent.key_regenerate",
        "agent.delete",
        "agent.create",
        "review.create",
        "review.update",
        "review.delete",
    ];
    assert_eq!(got, expected_in_order, "alice's actions");
    for entry in &entries {
        assert_entry_shape(entry);
    }
    let created: Vec<&str> = entries
        .iter()
        .map(|e| e["createdAt"].as_str().unwrap())
        .collect();
    let parsed: Vec<_> = created
        .iter()
        .map(|c| chrono::DateTime::parse_from_rfc3339(c).unwrap())
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Targets and details.
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == json!(action))
            .unwrap_or_else(|| panic!("{action} in {entries:?}"))
            .clone()
    };
    let status_entry = find("agent.status");
    assert_eq!(status_entry["targetType"], json!("agent"));
    assert_eq!(status_entry["targetId"], json!(agent_id));
    assert_eq!(status_entry["details"]["status"], json!("maintenance"));
    let review_entry = find("review.create");
    assert_eq!(review_entry["targetType"], json!("review"));
    assert_eq!(review_entry["targetId"], review["id"]);
    assert_eq!(review_entry["details"]["agentId"], json!(target.id));
    assert_eq!(review_entry["details"]["rating"], json!(4));

    // Nothing of bob's shows up for alice, and nothing of alice's for bob.
    let bob_id = bob_agent["id"].as_str().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["targetId"] != json!(bob_id) && e["targetId"] != json!(target.id)),
        "bob's entries leaked: {entries:?}"
    );
    let bob_entries = all_entries(&app, &bob, "").await;
    assert_eq!(
        actions(&bob_entries),
        ["agent.create", "agent.create", "user.register"],
        "bob's actions"
    );
    assert!(
        bob_entries
            .iter()
            .all(|e| e["targetId"] != json!(agent_id) && e["targetId"] != json!(user_id)),
        "alice's entries leaked: {bob_entries:?}"
    );

    target.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn filters_by_action_and_time_and_paginates() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("carol").await;
    let login = json!({ "username": "carol", "password": PASSWORD });
    for _ in 0..3 {
        let (status, _) = app.post_json("/api/v1/auth/login", &login, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let logins = all_entries(&app, &token, "&action=user.login").await;
    assert_eq!(actions(&logins), ["user.login"; 3]);
    let none = all_entries(&app, &token, "&action=user.log").await;
    assert!(none.is_empty(), "action is exact: {none:?}");

    // Time window: everything lies between the first entry and now.
    let all = all_entries(&app, &token, "").await;
    assert_eq!(all.len(), 4);
    let oldest = all[3]["createdAt"].as_str().unwrap().to_string();
    let newest = all[0]["createdAt"].as_str().unwrap().to_string();
    let enc = |s: &str| s.replace('+', "%2B");
    let from_newest = all_entries(&app, &token, &format!("&from={}", enc(&newest))).await;
    assert_eq!(from_newest, all[..1].to_vec());
    let to_oldest = all_entries(&app, &token, &format!("&to={}", enc(&oldest))).await;
    assert_eq!(actions(&to_oldest), ["user.register"]);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let later = all_entries(&app, &token, &format!("&from={}", enc(&future))).await;
    assert!(later.is_empty());
    let past = "2000-01-01T00:00:00Z";
    let earlier = all_entries(&app, &token, &format!("&to={past}")).await;
    assert!(earlier.is_empty());
    // Another offset names the same instant.
    let window = all_entries(
        &app,
        &token,
        &format!("&from=2000-01-01T02:00:00%2B02:00&to={}", enc(&future)),
    )
    .await;
    assert_eq!(window.len(), 4);

    // Pagination.
    let (status, page) = app
        .get(&format!("{LOGS}?limit=3&page=2"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], json!(4));
    assert_eq!(page["page"], json!(2));
    assert_eq!(page["limit"], json!(3));
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["data"][0], all[3]);

    // Bad input.
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("limit=101", "limit"),
        ("page=0", "page"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
    ] {
        let (status, body) = app.get(&format!("{LOGS}?{query}"), Some(&token)).await;
        assert_validation(status, &body, field);
    }
    let (status, body) = app.get(LOGS, None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    app.assert_ledger_balanced().await;
}
