//! Health checks with a 1 s interval: an HTTP agent whose endpoint goes down and comes back,
//! WebSocket presence, hybrid preference, retention of 7 days, and rounds that never pile up.
//! Uptime and score are recomputed here from the `health_checks` table and the document's
//! formula.

use crate::helpers::{TestApp, ids, spawn_app_with};
use actix_web::{App, HttpResponse, HttpServer, web};
use entities::{agents, health_checks};
use reqwest::StatusCode;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use serde_json::{Value, json};
use std::{
    net::TcpListener,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use uuid::Uuid;

/// How long a test waits for a check to show up (several 1 s rounds).
const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Mock {
    /// While set, every request gets a 500.
    down: AtomicBool,
    requests: AtomicUsize,
    hanging: AtomicUsize,
}

async fn mcp(body: web::Json<Value>, mock: web::Data<Mock>) -> HttpResponse {
    mock.requests.fetch_add(1, Ordering::SeqCst);
    if mock.down.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().body("down");
    }
    let id = body["id"].clone();
    let answer = match body["method"].as_str() {
        Some("tools/list") => json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [
            { "name": "echo", "description": "Echo a message",
              "inputSchema": { "type": "object", "properties": { "message": { "type": "string" } } } }
        ] } }),
        Some("tools/call") => {
            let message = body["params"]["arguments"]["message"]
                .as_str()
                .unwrap_or("");
            json!({ "jsonrpc": "2.0", "id": id,
                    "result": { "content": [{ "type": "text", "text": format!("Echo: {message}") }] } })
        }
        _ => json!({ "jsonrpc": "2.0", "id": id,
                     "error": { "code": -32601, "message": "Method not found" } }),
    };
    HttpResponse::Ok().json(answer)
}

/// Never answers within the test.
async fn hang(mock: web::Data<Mock>) -> HttpResponse {
    mock.hanging.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(120)).await;
    HttpResponse::Ok().finish()
}

/// Starts the mock MCP server; returns its base URL and its shared state.
fn start_mock() -> (String, Arc<Mock>) {
    let state = web::Data::new(Mock::default());
    let shared = state.clone().into_inner();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/mcp", web::post().to(mcp))
            .route("/hang", web::post().to(hang))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .disable_signals()
    .run();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}"), shared)
}

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.health_interval_secs = 1;
        s.allow_private_urls = true;
        s.call_timeout_secs = 5;
    })
    .await
}

async fn agent(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/agents/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls the agent until `pred` holds (at most [`WAIT`]); returns the agent.
async fn wait_for(app: &TestApp, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = agent(app, id).await;
        if pred(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}; agent: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn healthy_is(agent: &Value, healthy: bool) -> bool {
    agent["healthChecks"]["healthy"] == json!(healthy)
}

async fn online_ids(app: &TestApp) -> Vec<String> {
    let (status, list) = app.get("/api/v1/agents?online=true&limit=100", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    ids(&list)
}

/// (all, healthy) rows of the agent in `health_checks`.
async fn table_counts(app: &TestApp, id: Uuid) -> (u64, u64) {
    let all = health_checks::Entity::find()
        .filter(health_checks::Column::AgentId.eq(id))
        .count(&app.hub.db)
        .await
        .unwrap();
    let healthy = health_checks::Entity::find()
        .filter(health_checks::Column::AgentId.eq(id))
        .filter(health_checks::Column::Healthy.eq(true))
        .count(&app.hub.db)
        .await
        .unwrap();
    (all, healthy)
}

async fn agent_row(app: &TestApp, id: Uuid) -> agents::Model {
    agents::Entity::find_by_id(id)
        .one(&app.hub.db)
        .await
        .unwrap()
        .expect("agent row")
}

/// Reads the table, the agent (API and row) and the table again until no check landed in
/// between; returns ((all, healthy), agent view, agent row).
async fn stable_snapshot(app: &TestApp, id: Uuid) -> ((u64, u64), Value, agents::Model) {
    let deadline = Instant::now() + WAIT;
    loop {
        let before = table_counts(app, id).await;
        let view = agent(app, &id.to_string()).await;
        let row = agent_row(app, id).await;
        let after = table_counts(app, id).await;
        if before == after {
            return (before, view, row);
        }
        assert!(Instant::now() < deadline, "checks never paused");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[actix_web::test]
async fn http_agent_goes_down_and_comes_back_and_uptime_and_score_follow() {
    let (base, mock) = start_mock();
    let app = app().await;
    let (owner, _) = app.register_user("owner").await;
    let (caller, _) = app.register_user("caller").await;
    let (created, _) = app
        .create_agent(
            &owner,
            &json!({ "name": "Checked", "slug": "checked", "connectionMode": "http",
                     "mcpEndpoint": format!("{base}/mcp"),
                     "pricing": { "model": "per-call", "pricePerCall": 7 } }),
        )
        .await;
    let (gone, _) = app
        .create_agent(
            &owner,
            &json!({ "name": "Gone", "slug": "gone", "connectionMode": "http",
                     "mcpEndpoint": "http://127.0.0.1:1/mcp" }),
        )
        .await;
    let (_, caller_key) = app.create_ws_agent(&caller, "Caller", "caller").await;
    let id = created["id"].as_str().unwrap().to_string();
    let uuid = Uuid::from_str(&id).unwrap();
    let gone_id = gone["id"].as_str().unwrap().to_string();
    assert_eq!(created["healthChecks"], Value::Null, "{created}");

    // One paid call, so the agent is not "New" and its stored score is set.
    let (status, body) = app
        .post_json(
            "/api/v1/mcp/call",
            &json!({ "targetAgentId": id, "toolName": "echo", "arguments": { "message": "hi" } }),
            Some(&caller_key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Up.
    let up = wait_for(&app, &id, "healthy", |a| healthy_is(a, true)).await;
    assert!(
        up["healthChecks"]["latencyMs"].as_i64().unwrap() >= 0,
        "{up}"
    );
    assert!(up["healthChecks"]["checkedAt"].is_string(), "{up}");
    assert_eq!(up["isOnline"], json!(true), "{up}");
    let down_agent = wait_for(&app, &gone_id, "unreachable is unhealthy", |a| {
        healthy_is(a, false)
    })
    .await;
    assert_eq!(down_agent["isOnline"], json!(false), "{down_agent}");
    let online = online_ids(&app).await;
    assert!(online.contains(&id), "{online:?}");
    assert!(!online.contains(&gone_id), "{online:?}");

    // Down: the endpoint answers 500.
    mock.down.store(true, Ordering::SeqCst);
    let down = wait_for(&app, &id, "unhealthy", |a| healthy_is(a, false)).await;
    assert_eq!(down["isOnline"], json!(false), "{down}");
    assert!(!online_ids(&app).await.contains(&id));
    let ((all, healthy), _, _) = stable_snapshot(&app, uuid).await;
    assert!(healthy >= 1 && healthy < all, "{healthy}/{all}");

    // Back up.
    mock.down.store(false, Ordering::SeqCst);
    let back = wait_for(&app, &id, "healthy again", |a| healthy_is(a, true)).await;
    assert_eq!(back["isOnline"], json!(true), "{back}");
    assert!(online_ids(&app).await.contains(&id));

    // Uptime and score, recomputed here from the table and the document's formula.
    let ((all, healthy), view, row) = stable_snapshot(&app, uuid).await;
    assert!(healthy >= 2 && healthy < all, "{healthy}/{all}");
    assert_eq!(
        (row.checks_total, row.checks_healthy),
        (all as i64, healthy as i64)
    );
    let uptime = healthy as f64 / all as f64;
    let cache = &view["reputationCache"];
    assert!(
        close(cache["uptimeRatio"].as_f64().unwrap(), uptime),
        "uptimeRatio {} != {healthy}/{all}",
        cache["uptimeRatio"]
    );
    let (total_calls, completed, earned) = (1.0, 1.0, 7.0);
    let raw = (completed / total_calls) * 30.0
        + f64::min(completed / 100.0, 1.0) * 15.0
        + f64::min(earned / 50_000.0, 1.0) * 10.0
        + uptime * 15.0
        + 0.0; // no reviews
    let score = (raw * 10.0).round() / 10.0;
    assert!(
        close(cache["score"].as_f64().unwrap(), score),
        "score {} != {score}; {view}",
        cache["score"]
    );
    assert_eq!(
        cache["stars"],
        json!((score / 10.0).round() / 2.0),
        "{view}"
    );
    assert_eq!(cache["isNew"], json!(false));
    let stored = row.reputation_score.expect("stored score");
    assert!(close(stored, score), "stored {stored} != {score}");
    // Discovery's minReputation reads the stored score.
    let (_, list) = app
        .get(
            &format!("/api/v1/agents?minReputation={}", score - 0.5),
            None,
        )
        .await;
    assert!(ids(&list).contains(&id), "{list}");
    // The reputation endpoint's uptime component agrees.
    let (status, rep) = app
        .get(&format!("/api/v1/agents/{id}/reputation"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    assert!(close(
        rep["components"]["uptime"].as_f64().unwrap(),
        (uptime * 15.0 * 100.0).round() / 100.0
    ));
    assert!(mock.requests.load(Ordering::SeqCst) >= 4);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn websocket_presence_and_hybrid_preference() {
    let app = app().await;
    let (owner, _) = app.register_user("owner").await;
    let (ws_agent, ws_key) = app.create_ws_agent(&owner, "Socket", "socket").await;
    let (offline, _) = app.create_ws_agent(&owner, "Offline", "offline").await;
    let (hybrid, hybrid_key) = app
        .create_agent(
            &owner,
            &json!({ "name": "Hybrid", "slug": "hybrid", "connectionMode": "hybrid",
                     "mcpEndpoint": "http://127.0.0.1:1/mcp" }),
        )
        .await;
    let ws_id = ws_agent["id"].as_str().unwrap().to_string();
    let offline_id = offline["id"].as_str().unwrap().to_string();
    let hybrid_id = hybrid["id"].as_str().unwrap().to_string();
    let _ws = app.connect_agent(&ws_key).await;
    let _hybrid_ws = app.connect_agent(&hybrid_key).await;

    let a = wait_for(&app, &ws_id, "connected is healthy", |a| {
        healthy_is(a, true)
    })
    .await;
    assert_eq!(a["healthChecks"]["latencyMs"], json!(0), "{a}");
    assert_eq!(a["isOnline"], json!(true));
    // Connected hybrid: presence wins over its unreachable endpoint.
    let h = wait_for(&app, &hybrid_id, "hybrid presence", |a| healthy_is(a, true)).await;
    assert_eq!(h["healthChecks"]["latencyMs"], json!(0), "{h}");
    let o = wait_for(&app, &offline_id, "offline is unhealthy", |a| {
        healthy_is(a, false)
    })
    .await;
    assert_eq!(o["healthChecks"]["latencyMs"], json!(0), "{o}");
    assert_eq!(o["isOnline"], json!(false));

    // Hybrid without its WebSocket: the HTTP check, which fails.
    drop(_hybrid_ws);
    let h = wait_for(&app, &hybrid_id, "hybrid falls back to HTTP", |a| {
        healthy_is(a, false)
    })
    .await;
    assert_eq!(h["isOnline"], json!(false), "{h}");
    let ((all, healthy), view, _) = stable_snapshot(&app, Uuid::from_str(&ws_id).unwrap()).await;
    assert_eq!(all, healthy);
    assert_eq!(view["reputationCache"]["uptimeRatio"], json!(1.0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn records_older_than_seven_days_are_removed_and_counters_follow() {
    let app = app().await;
    let (owner, _) = app.register_user("owner").await;
    let (ws_agent, ws_key) = app.create_ws_agent(&owner, "Socket", "socket").await;
    let (poller, _) = app
        .create_agent(
            &owner,
            &json!({ "name": "Poller", "slug": "poller", "deliveryMode": "poll" }),
        )
        .await;
    let ws_id = Uuid::from_str(ws_agent["id"].as_str().unwrap()).unwrap();
    let poll_id = Uuid::from_str(poller["id"].as_str().unwrap()).unwrap();
    let _ws = app.connect_agent(&ws_key).await;

    // Old records (8 days), counted as if they were retained; one agent is checked, the other
    // (poll delivery) never is.
    let old = app.hub.env.now() - chrono::Duration::days(8);
    for agent_id in [ws_id, poll_id] {
        health_checks::ActiveModel {
            id: Set(Uuid::new_v4()),
            agent_id: Set(agent_id),
            healthy: Set(false),
            latency_ms: Set(0),
            checked_at: Set(old),
        }
        .insert(&app.hub.db)
        .await
        .unwrap();
        let mut row = agent_row(&app, agent_id).await.into_active_model();
        row.checks_total = Set(1);
        row.checks_healthy = Set(0);
        row.update(&app.hub.db).await.unwrap();
    }

    let deadline = Instant::now() + WAIT;
    loop {
        let old_left = health_checks::Entity::find()
            .filter(health_checks::Column::CheckedAt.lt(old + chrono::Duration::days(1)))
            .count(&app.hub.db)
            .await
            .unwrap();
        let polled = agent_row(&app, poll_id).await;
        if old_left == 0 && polled.checks_total == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old records not removed: {old_left} left, poller counts {}",
            polled.checks_total
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let polled = agent_row(&app, poll_id).await;
    assert_eq!((polled.checks_total, polled.checks_healthy), (0, 0));
    assert_eq!(polled.last_check_at, None, "a poll agent is never checked");

    let ((all, healthy), view, row) = stable_snapshot(&app, ws_id).await;
    assert!(all >= 1);
    assert_eq!(
        (row.checks_total, row.checks_healthy),
        (all as i64, healthy as i64)
    );
    assert_eq!(all, healthy, "only the fresh, healthy checks remain");
    assert_eq!(view["reputationCache"]["uptimeRatio"], json!(1.0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn a_hanging_endpoint_does_not_pile_rounds_up() {
    let (base, mock) = start_mock();
    let app = app().await;
    let (owner, _) = app.register_user("owner").await;
    app.create_agent(
        &owner,
        &json!({ "name": "Hang", "slug": "hang", "connectionMode": "http",
                 "mcpEndpoint": format!("{base}/hang") }),
    )
    .await;

    // The first round starts about 1 s after start-up and waits on the endpoint for 10 s.
    let deadline = Instant::now() + WAIT;
    while mock.hanging.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the hanging endpoint was never checked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Three more ticks pass while that round runs: none starts another check.
    let window = Instant::now() + Duration::from_secs(3);
    while Instant::now() < window {
        assert_eq!(mock.hanging.load(Ordering::SeqCst), 1, "rounds piled up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.assert_ledger_balanced().await;
}
