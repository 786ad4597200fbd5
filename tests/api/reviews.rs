//! Reviews: list, mine, submit/update, delete, and every rule (a completed call first, one per
//! user and agent, no self-review, rating 1–5, comment ≤ 2,000 characters). Also home of the
//! helpers the reputation and leaderboard tests share: served agents and completed calls.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::engine_ws::{
    AgentOpts, MockAgent, assert_completed, assert_refunded, echo_call, mcp_call, ws_agent,
    ws_agent_with,
};
use crate::helpers::{TestApp, assert_status_error, assert_validation, spawn_app};

// ------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------

/// A connected WebSocket agent that answers every call with the echo.
pub struct Served {
    pub id: String,
    pub agent: MockAgent,
}

/// Registers a websocket agent (`price`, `visibility`) for `owner` and connects it with
/// automatic echo answers.
pub async fn served_with(
    app: &TestApp,
    owner: &str,
    slug: &str,
    price: i64,
    visibility: &str,
) -> Served {
    let (id, key) = ws_agent_with(app, owner, slug, price, visibility).await;
    let agent = MockAgent::connect_opts(
        app,
        &key,
        AgentOpts {
            auto_echo: true,
            ..AgentOpts::default()
        },
    )
    .await;
    Served { id, agent }
}

pub async fn served(app: &TestApp, owner: &str, slug: &str, price: i64) -> Served {
    served_with(app, owner, slug, price, "public").await
}

/// A free caller agent of `token`'s user; returns its API key.
pub async fn caller_key(app: &TestApp, token: &str, slug: &str) -> String {
    ws_agent(app, token, slug, 0).await.1
}

/// Makes `n` completed calls of `target` (priced `price`) with `key`.
pub async fn complete_calls(app: &TestApp, key: &str, target: &str, price: i64, n: usize) {
    for i in 0..n {
        let message = format!("call {i}");
        let (status, body) = mcp_call(app, key, &echo_call(target, &message, None)).await;
        assert_completed(status, &body, &message, price);
    }
}

/// The reputation score of the marketplace document, computed independently of the server:
/// success 30, volume 15, earnings 10, uptime 15, reviews 30, rounded to one decimal.
pub fn expected_score(
    total_calls: i64,
    completed: i64,
    tokens: i64,
    uptime_ratio: f64,
    ratings: &[i64],
) -> f64 {
    let success = if total_calls == 0 {
        0.0
    } else {
        completed as f64 / total_calls as f64 * 30.0
    };
    let volume = (completed as f64 / 100.0).min(1.0) * 15.0;
    let earnings = (tokens as f64 / 50_000.0).min(1.0) * 10.0;
    let uptime = uptime_ratio * 15.0;
    let reviews = if ratings.is_empty() {
        0.0
    } else {
        ratings.iter().sum::<i64>() as f64 / ratings.len() as f64 / 5.0 * 30.0
    };
    ((success + volume + earnings + uptime + reviews) * 10.0).round() / 10.0
}

/// `round(score / 10) / 2`: half stars.
pub fn expected_stars(score: f64) -> f64 {
    (score / 10.0).round() / 2.0
}

pub fn assert_close(actual: &Value, expected: f64, what: &str) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
    assert!(
        (a - expected).abs() < 1e-6,
        "{what}: expected {expected}, got {a}"
    );
}

/// The agent detail (with `token` for private agents).
pub async fn agent_detail(app: &TestApp, id: &str, token: Option<&str>) -> Value {
    let (status, body) = app.get(&format!("/api/v1/agents/{id}"), token).await;
    assert_eq!(status, StatusCode::OK, "agent detail: {body}");
    body
}

/// The agent's `reputationCache.uptimeRatio` (an input of the score the test cannot fix).
pub async fn uptime_ratio(app: &TestApp, id: &str) -> f64 {
    agent_detail(app, id, None).await["reputationCache"]["uptimeRatio"]
        .as_f64()
        .expect("uptimeRatio")
}

fn reviews_path(agent: &str) -> String {
    format!("/api/v1/agents/{agent}/reviews")
}

async fn post_review(app: &TestApp, token: &str, agent: &str, body: Value) -> (StatusCode, Value) {
    app.post_json(&reviews_path(agent), &body, Some(token))
        .await
}

/// A reviewer who completed one paid call (price 5) of a served agent owned by someone else.
struct Setup {
    owner: String,
    reviewer: String,
    reviewer_id: String,
    reviewer_key: String,
    target: Served,
}

async fn setup(app: &TestApp) -> Setup {
    let (owner, _) = app.register_user("owner").await;
    let (reviewer, user) = app.register_user("reviewer").await;
    let target = served(app, &owner, "reviewed-agent", 5).await;
    let reviewer_key = caller_key(app, &reviewer, "reviewer-caller").await;
    complete_calls(app, &reviewer_key, &target.id, 5, 1).await;
    Setup {
        owner,
        reviewer,
        reviewer_id: user["id"].as_str().expect("user id").to_string(),
        reviewer_key,
        target,
    }
}

fn assert_review_shape(review: &Value) {
    let mut keys: Vec<&str> = review
        .as_object()
        .unwrap_or_else(|| panic!("review is not an object: {review}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "agentId",
            "comment",
            "createdAt",
            "id",
            "rating",
            "updatedAt",
            "userId",
            "username"
        ],
        "review keys in {review}"
    );
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

#[actix_web::test]
async fn review_after_a_completed_call_is_listed_and_counted() {
    let app = spawn_app().await;
    let s = setup(&app).await;

    let (status, review) = post_review(
        &app,
        &s.reviewer,
        &s.target.id,
        json!({ "rating": 4, "comment": "Fast and correct" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "create review: {review}");
    assert_review_shape(&review);
    assert_eq!(review["rating"], json!(4));
    assert_eq!(review["comment"], json!("Fast and correct"));
    assert_eq!(review["agentId"], json!(s.target.id));
    assert_eq!(review["userId"], json!(s.reviewer_id));
    assert_eq!(review["username"], json!("reviewer"));

    // Listed without authentication, as the document says.
    let (status, list) = app.get(&reviews_path(&s.target.id), None).await;
    assert_eq!(status, StatusCode::OK, "list: {list}");
    assert_eq!(list["total"], json!(1));
    assert_eq!(list["page"], json!(1));
    assert_eq!(list["limit"], json!(20));
    assert_eq!(list["data"][0], review);

    let (status, mine) = app
        .get(
            &format!("{}/mine", reviews_path(&s.target.id)),
            Some(&s.reviewer),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "mine: {mine}");
    assert_eq!(mine, review);

    // The agent's reputation counts the review: one completed call of 5 tokens, rating 4.
    let detail = agent_detail(&app, &s.target.id, None).await;
    let cache = &detail["reputationCache"];
    assert_eq!(cache["reviewCount"], json!(1), "{detail}");
    assert_eq!(cache["isNew"], json!(false));
    let uptime = uptime_ratio(&app, &s.target.id).await;
    let score = expected_score(1, 1, 5, uptime, &[4]);
    assert_close(&cache["score"], score, "score");
    assert_close(&cache["stars"], expected_stars(score), "stars");

    s.target.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn review_without_a_completed_call_is_403() {
    let app = spawn_app().await;
    let s = setup(&app).await;
    let (stranger, _) = app.register_user("stranger").await;
    let (status, body) = post_review(&app, &stranger, &s.target.id, json!({ "rating": 5 })).await;
    assert_status_error(status, &body, StatusCode::FORBIDDEN);

    // A call the agent fails is not a completed call either.
    let (owner2, _) = app.register_user("owner2").await;
    let (failing_id, failing_key) = ws_agent(&app, &owner2, "failing-agent", 3).await;
    let mut failing = MockAgent::connect(&app, &failing_key).await;
    let call_body = echo_call(&failing_id, "boom", None);
    let ((status, body), ()) = tokio::join!(mcp_call(&app, &s.reviewer_key, &call_body), async {
        let call = failing.next_call().await;
        failing.answer_error(&call, "broken");
    });
    assert_refunded(status, &body, StatusCode::BAD_GATEWAY, "failed");
    let (status, body) = post_review(&app, &s.reviewer, &failing_id, json!({ "rating": 1 })).await;
    assert_status_error(status, &body, StatusCode::FORBIDDEN);

    // Without a JWT: 401.
    let (status, body) = app
        .post_json(&reviews_path(&s.target.id), &json!({ "rating": 5 }), None)
        .await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);

    // Nothing was recorded.
    let (_, list) = app.get(&reviews_path(&s.target.id), None).await;
    assert_eq!(list["total"], json!(0), "{list}");
    let (_, list) = app.get(&reviews_path(&failing_id), None).await;
    assert_eq!(list["total"], json!(0), "{list}");

    failing.disconnect().await;
    s.target.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn self_review_is_403_even_after_a_completed_call() {
    let app = spawn_app().await;
    let s = setup(&app).await;
    let owner_key = caller_key(&app, &s.owner, "owner-caller").await;
    complete_calls(&app, &owner_key, &s.target.id, 5, 1).await;
    let (status, body) = post_review(&app, &s.owner, &s.target.id, json!({ "rating": 5 })).await;
    assert_status_error(status, &body, StatusCode::FORBIDDEN);
    let detail = agent_detail(&app, &s.target.id, None).await;
    assert_eq!(detail["reputationCache"]["reviewCount"], json!(0));

    s.target.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn invalid_ratings_and_long_comments_are_400() {
    let app = spawn_app().await;
    let s = setup(&app).await;
    for rating in [
        json!(0),
        json!(6),
        json!("x"),
        json!(3.5),
        json!(-1),
        Value::Null,
    ] {
        let (status, body) =
            post_review(&app, &s.reviewer, &s.target.id, json!({ "rating": rating })).await;
        assert_validation(status, &body, "rating");
    }
    let (status, body) = post_review(&app, &s.reviewer, &s.target.id, json!({})).await;
    assert_validation(status, &body, "rating");
    let (status, body) = post_review(
        &app,
        &s.reviewer,
        &s.target.id,
        json!({ "rating": 3, "comment": "a".repeat(2001) }),
    )
    .await;
    assert_validation(status, &body, "comment");
    let (_, list) = app.get(&reviews_path(&s.target.id), None).await;
    assert_eq!(list["total"], json!(0), "{list}");

    // 2,000 characters (multi-byte) is the limit, and accepted.
    let comment = "é".repeat(2000);
    let (status, body) = post_review(
        &app,
        &s.reviewer,
        &s.target.id,
        json!({ "rating": 3, "comment": comment }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["comment"], json!(comment));

    s.target.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn second_submission_updates_the_one_review() {
    let app = spawn_app().await;
    let s = setup(&app).await;
    let (status, first) = post_review(
        &app,
        &s.reviewer,
        &s.target.id,
        json!({ "rating": 2, "comment": "meh" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) =
        post_review(&app, &s.reviewer, &s.target.id, json!({ "rating": 5 })).await;
    assert_eq!(status, StatusCode::OK, "update: {second}");
    assert_eq!(second["id"], first["id"], "same review");
    assert_eq!(second["rating"], json!(5));
    assert_eq!(second["comment"], Value::Null);
    assert_eq!(second["createdAt"], first["createdAt"]);

    let (_, list) = app.get(&reviews_path(&s.target.id), None).await;
    assert_eq!(list["total"], json!(1), "{list}");
    assert_eq!(list["data"][0]["rating"], json!(5));

    // A second reviewer: the average of 5 and 1 feeds the score.
    let (other, _) = app.register_user("other").await;
    let other_key = caller_key(&app, &other, "other-caller").await;
    complete_calls(&app, &other_key, &s.target.id, 5, 2).await;
    let (status, body) = post_review(&app, &other, &s.target.id, json!({ "rating": 1 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, list) = app.get(&reviews_path(&s.target.id), None).await;
    assert_eq!(list["total"], json!(2), "{list}");
    assert_eq!(list["data"][0]["username"], json!("other"), "newest first");

    let cache = agent_detail(&app, &s.target.id, None).await["reputationCache"].clone();
    assert_eq!(cache["reviewCount"], json!(2));
    let uptime = uptime_ratio(&app, &s.target.id).await;
    let score = expected_score(3, 3, 15, uptime, &[5, 1]);
    assert_close(&cache["score"], score, "score");

    s.target.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn delete_removes_the_review_then_404() {
    let app = spawn_app().await;
    let s = setup(&app).await;
    let mine = format!("{}/mine", reviews_path(&s.target.id));
    let (status, body) = app.get(&mine, Some(&s.reviewer)).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .delete(&reviews_path(&s.target.id), Some(&s.reviewer))
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);

    let (status, body) = post_review(&app, &s.reviewer, &s.target.id, json!({ "rating": 3 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .delete(&reviews_path(&s.target.id), Some(&s.reviewer))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null);

    let (status, body) = app.get(&mine, Some(&s.reviewer)).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .delete(&reviews_path(&s.target.id), Some(&s.reviewer))
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (_, list) = app.get(&reviews_path(&s.target.id), None).await;
    assert_eq!(list["total"], json!(0), "{list}");

    let cache = agent_detail(&app, &s.target.id, None).await["reputationCache"].clone();
    assert_eq!(cache["reviewCount"], json!(0));
    let uptime = uptime_ratio(&app, &s.target.id).await;
    assert_close(
        &cache["score"],
        expected_score(1, 1, 5, uptime, &[]),
        "score",
    );

    // A new review may follow a deleted one.
    let (status, body) = post_review(&app, &s.reviewer, &s.target.id, json!({ "rating": 4 })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    s.target.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn private_agent_reviews_are_404_to_others() {
    let app = spawn_app().await;
    let (owner, _) = app.register_user("owner").await;
    let (stranger, _) = app.register_user("stranger").await;
    let private = served_with(&app, &owner, "secret-agent", 0, "private").await;
    let path = reviews_path(&private.id);
    for token in [None, Some(stranger.as_str())] {
        let (status, body) = app.get(&path, token).await;
        assert_status_error(status, &body, StatusCode::NOT_FOUND);
    }
    let (status, body) = post_review(&app, &stranger, &private.id, json!({ "rating": 5 })).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get(&path, Some(&owner)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], json!(0));

    // Unknown agents and bad page sizes.
    let (status, body) = app
        .get(&reviews_path(&uuid::Uuid::new_v4().to_string()), None)
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get(&format!("{path}?limit=101"), Some(&owner)).await;
    assert_validation(status, &body, "limit");

    private.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn free_calls_count_for_reviews_and_lists_paginate() {
    let app = spawn_app().await;
    let (owner, _) = app.register_user("owner").await;
    let target = served(&app, &owner, "free-agent", 0).await;
    for i in 0..3 {
        let (token, _) = app.register_user(&format!("user{i}")).await;
        let key = caller_key(&app, &token, &format!("caller-{i}")).await;
        complete_calls(&app, &key, &target.id, 0, 1).await;
        let (status, body) =
            post_review(&app, &token, &target.id, json!({ "rating": i + 3 })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let path = reviews_path(&target.id);
    let (_, page1) = app.get(&format!("{path}?limit=2"), None).await;
    let (_, page2) = app.get(&format!("{path}?limit=2&page=2"), None).await;
    assert_eq!(page1["total"], json!(3));
    assert_eq!(page1["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(page2["data"].as_array().map(Vec::len), Some(1));
    let names: Vec<Value> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["data"].as_array().unwrap())
        .map(|r| r["username"].clone())
        .collect();
    assert_eq!(names, [json!("user2"), json!("user1"), json!("user0")]);

    target.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}
