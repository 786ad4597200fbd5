//! Task delivery (shared/api/task-delivery-api.md): the document's JavaScript example run under
//! Node with the npm `ws` package, its curl examples, push to a real local HTTP server, the
//! plain stream's rules, polling leases, the buyers' task API, `/mcp/call` with the implicit
//! tool `task`, files and their limits. Every test ends with the ledger check.

use crate::helpers::{
    TestApp, WsStream, assert_coded, assert_status_error, assert_validation, spawn_app_with,
};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use agenthub::config::Settings;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::{
    collections::BTreeSet,
    net::TcpListener,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const START: i64 = 10_000;

async fn app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.allow_private_urls = true;
        s.rate_limit_per_min = 0;
        s.call_timeout_secs = 20;
        tweak(s);
    })
    .await
}

async fn app() -> TestApp {
    app_with(|_| {}).await
}

fn pricing(price: i64) -> Value {
    if price == 0 {
        json!({ "model": "free" })
    } else {
        json!({ "model": "per-call", "pricePerCall": price })
    }
}

/// Registers a plain-mode agent; returns (id, API token).
async fn plain_agent(
    app: &TestApp,
    owner: &str,
    slug: &str,
    mode: &str,
    price: i64,
    endpoint: Option<&str>,
) -> (String, String) {
    let mut body = json!({ "name": format!("Agent {slug}"), "slug": slug,
        "description": "Takes tasks", "deliveryMode": mode, "pricing": pricing(price) });
    if let Some(endpoint) = endpoint {
        body["endpoint"] = json!(endpoint);
    }
    let (agent, key) = app.create_agent(owner, &body).await;
    assert_eq!(agent["deliveryMode"], json!(mode), "{agent}");
    (agent["id"].as_str().expect("id").to_string(), key)
}

async fn balance(app: &TestApp, token: &str) -> (i64, i64) {
    let (status, b) = app.get("/api/v1/billing/balance", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    (
        b["balance"].as_i64().expect("balance"),
        b["reserved"].as_i64().expect("reserved"),
    )
}

/// `POST /api/v1/tasks` with `{agent, task}` plus `extra` fields.
async fn create_task(
    app: &TestApp,
    buyer: &str,
    agent: &str,
    task: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({ "agent": agent, "task": task });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
    app.post_json("/api/v1/tasks", &body, Some(buyer)).await
}

/// Creates a task and asserts the 201 and the task view's shape; returns the view.
async fn created(app: &TestApp, buyer: &str, agent: &str, task: &str) -> Value {
    let (status, body) = create_task(app, buyer, agent, task, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_task_view(&body);
    assert_eq!(body["task"], json!(task), "{body}");
    assert!(
        body["status"] == json!("queued") || body["status"] == json!("dispatched"),
        "{body}"
    );
    body
}

fn assert_task_view(t: &Value) {
    for key in [
        "id",
        "jobId",
        "agentId",
        "status",
        "task",
        "files",
        "result",
        "error",
        "billing",
        "createdAt",
        "completedAt",
    ] {
        assert!(t.get(key).is_some(), "task view without {key}: {t}");
    }
    assert!(t["id"].is_string() && t["jobId"].is_i64(), "{t}");
    assert!(t["billing"].get("tokensCharged").is_some(), "{t}");
    assert!(t["billing"].get("transactionId").is_some(), "{t}");
}

/// `GET /api/v1/tasks/{id}?wait=N` until the task is final (bounded).
async fn wait_final(app: &TestApp, buyer: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, t) = app
            .get(&format!("/api/v1/tasks/{id}?wait=10"), Some(buyer))
            .await;
        assert_eq!(status, StatusCode::OK, "{t}");
        assert_task_view(&t);
        if ["completed", "failed", "timeout", "cancelled"]
            .contains(&t["status"].as_str().unwrap_or(""))
        {
            return t;
        }
        assert!(Instant::now() < deadline, "task {id} never settled: {t}");
    }
}

/// A body for a failure message, cut to a readable length.
fn short(v: &Value) -> String {
    v.to_string().chars().take(500).collect()
}

/// 413 with code PAYLOAD_TOO_LARGE, without printing a megabyte of echoed input.
fn assert_too_large(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{}", short(body));
    assert_eq!(body["code"], json!("PAYLOAD_TOO_LARGE"), "{}", short(body));
    assert_eq!(body["statusCode"], json!(413), "{}", short(body));
    assert_eq!(body["error"], json!("Payload Too Large"), "{}", short(body));
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Checks a frame a plain agent receives: exactly `{id, task, files, buyer, jobId}`.
fn assert_frame(frame: &Value, view: &Value, task: &str, buyer: &str) {
    assert_eq!(
        keys(frame),
        set(&["id", "task", "files", "buyer", "jobId"]),
        "{frame}"
    );
    assert_eq!(frame["id"], view["id"], "{frame}");
    assert_eq!(frame["jobId"], view["jobId"], "{frame}");
    assert_eq!(frame["task"], json!(task), "{frame}");
    assert_eq!(frame["buyer"], json!(buyer), "{frame}");
    assert!(frame["files"].is_array(), "{frame}");
}

// ---------------------------------------------------------------------------------------------
// The plain stream from Rust

/// Opens the plain task stream at `path` (`/ws` or `/api/v1/ws`) with the agent's token.
async fn connect_plain(app: &TestApp, path: &str, token: &str) -> WsStream {
    let mut req = format!("ws://127.0.0.1:{}{path}", app.port)
        .into_client_request()
        .expect("ws request");
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("plain ws connect");
    ws
}

/// The next message other than ping/pong (at most 10 s).
async fn next_message(ws: &mut WsStream) -> Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("no frame within 10 s")
            .expect("stream ended")
            .expect("ws error");
        if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            return msg;
        }
    }
}

async fn next_json(ws: &mut WsStream) -> Value {
    let msg = next_message(ws).await;
    let text = msg.to_text().expect("a text frame");
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// The next JSON text frame within `wait`, or None (ping/pong skipped).
async fn try_next_json(ws: &mut WsStream, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next()).await.ok()??.ok()?;
        match msg {
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Text(t) => return serde_json::from_str(&t).ok(),
            _ => return None,
        }
    }
}

async fn send(ws: &mut WsStream, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// Waits until the hub has attached the agent's stream (bounded): its tools answer live.
async fn wait_online(app: &TestApp, agent: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, t) = app
            .get(&format!("/api/v1/agents/{agent}/tools"), None)
            .await;
        if t["source"] == json!("live") {
            return;
        }
        assert!(Instant::now() < deadline, "agent never came online: {t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The document's JavaScript example under Node

struct NodeAgent {
    child: tokio::process::Child,
}

impl NodeAgent {
    /// `node tests/js/ws_agent.js` with the URL and token from the environment; waits for its
    /// "connected" line.
    async fn start(url: &str, token: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/ws_agent.js");
        let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/node_modules/ws");
        assert!(
            std::path::Path::new(modules).exists(),
            "tests/js/node_modules/ws is missing: run `cd tests/js && npm ci` (scripts/test does)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .env("AGENTHUB_WS_URL", url)
            .env("AGENTHUB_TOKEN", token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node (is Node.js installed?)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the Node agent did not connect within 20 s")
            .expect("read node stdout");
        assert_eq!(line.as_deref(), Some("connected"), "node said {line:?}");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child }
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[actix_web::test]
async fn the_documents_javascript_example_completes_a_paid_task() {
    let app = app().await;
    let (owner, _) = app.register_user("jsowner").await;
    let (buyer, _) = app.register_user("jsbuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "js-agent", "ws", 5, None).await;

    let _node = NodeAgent::start(&format!("ws://127.0.0.1:{}/ws", app.port), &token).await;
    wait_online(&app, &agent).await;

    let view = created(&app, &buyer, "js-agent", "Review this code").await;
    assert_eq!(view["agentId"], json!(agent));
    let done = wait_final(&app, &buyer, view["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], "processed: Review this code", "{done}");
    assert_eq!(done["billing"]["tokensCharged"], 5, "{done}");
    assert!(done["billing"]["transactionId"].is_string(), "{done}");
    assert!(done["completedAt"].is_string(), "{done}");
    assert_eq!(balance(&app, &buyer).await, (START - 5, 0));
    assert_eq!(balance(&app, &owner).await, (START + 5, 0));

    // The same agent through /mcp/call with the implicit tool `task`, files included.
    let (_, caller_key) = app.create_ws_agent(&buyer, "Caller", "js-caller").await;
    let (status, body) = app
        .post_json(
            "/api/v1/mcp/call",
            &json!({ "targetAgentId": agent, "toolName": "task",
                     "arguments": { "task": "again", "files": [
                         { "name": "a.txt", "mimeType": "text/plain", "content": "aGVsbG8=" } ] } }),
            Some(&caller_key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(
        body["result"],
        json!({ "content": [{ "type": "text", "text": "processed: again" }] })
    );
    assert_eq!(balance(&app, &buyer).await, (START - 10, 0));
    app.assert_ledger_balanced().await;
}

// ---------------------------------------------------------------------------------------------
// 2. The curl examples, as written

#[actix_web::test]
async fn the_documents_curl_examples_poll_and_submit_a_result() {
    let app = app().await;
    let (owner, _) = app.register_user("pollowner").await;
    let (buyer, _) = app.register_user("pollbuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "poller", "poll", 4, None).await;

    let view = created(&app, &buyer, &agent, "Summarise this").await;
    assert_eq!(view["status"], "queued", "{view}");
    assert_eq!(balance(&app, &buyer).await, (START - 4, 4));

    // curl https://agentbazaar.dev/tasks/poll -H "Authorization: Bearer YOUR_API_TOKEN"
    let resp = app
        .client
        .get(app.url("/tasks/poll"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let polled: Value = resp.json().await.unwrap();
    assert_eq!(keys(&polled), set(&["tasks"]), "{polled}");
    let tasks = polled["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{polled}");
    assert_frame(&tasks[0], &view, "Summarise this", "pollbuyer");
    assert_eq!(tasks[0]["files"], json!([]));
    let task_id = tasks[0]["id"].as_str().unwrap().to_string();

    // Leased: a second poll (either path) does not hand it out again.
    let (status, again) = app.get("/api/v1/tasks/poll", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, json!({ "tasks": [] }));
    let (_, t) = app
        .get(&format!("/api/v1/tasks/{task_id}"), Some(&buyer))
        .await;
    assert_eq!(t["status"], "dispatched", "{t}");

    // curl -X POST https://agentbazaar.dev/tasks/TASK_ID/result -H "Authorization: Bearer ..."
    //   -H "Content-Type: application/json" -d '{"result": "Your task output here"}'
    let resp = app
        .client
        .post(app.url(&format!("/tasks/{task_id}/result")))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(r#"{"result": "Your task output here"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let settled: Value = resp.json().await.unwrap();
    assert_task_view(&settled);
    assert_eq!(settled["id"], json!(task_id));
    assert_eq!(settled["status"], "completed", "{settled}");
    assert_eq!(settled["result"], "Your task output here");
    assert_eq!(settled["billing"]["tokensCharged"], 4);

    let done = wait_final(&app, &buyer, &task_id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"], "Your task output here");
    assert_eq!(balance(&app, &buyer).await, (START - 4, 0));
    assert_eq!(balance(&app, &owner).await, (START + 4, 0));

    // A second result (either path, result or error) is rejected; nothing is paid twice.
    for (path, body) in [
        (
            format!("/tasks/{task_id}/result"),
            json!({ "result": "again" }),
        ),
        (
            format!("/api/v1/tasks/{task_id}/result"),
            json!({ "error": "late" }),
        ),
    ] {
        let (status, body) = app.post_json(&path, &body, Some(&token)).await;
        assert_coded(status, &body, StatusCode::CONFLICT, "TASK_SETTLED");
    }
    assert_eq!(balance(&app, &buyer).await, (START - 4, 0));
    assert_eq!(balance(&app, &owner).await, (START + 4, 0));
    let done = wait_final(&app, &buyer, &task_id).await;
    assert_eq!(done["result"], "Your task output here");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn a_task_answered_as_queued_is_pollable_at_once() {
    let app = app().await;
    let (owner, _) = app.register_user("atonceowner").await;
    let (buyer, _) = app.register_user("atoncebuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "at-once", "poll", 0, None).await;

    // The 201 says `queued`; a plain poll (no wait) right after it must hand the task out.
    let mut missed = Vec::new();
    for i in 0..20 {
        let view = created(&app, &buyer, &agent, &format!("task {i}")).await;
        assert_eq!(view["status"], "queued", "{view}");
        let (status, polled) = app.get("/tasks/poll", Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{polled}");
        let mut tasks = polled["tasks"].as_array().cloned().unwrap_or_default();
        if tasks.is_empty() {
            missed.push(i);
            let (_, late) = app.get("/tasks/poll?wait=5", Some(&token)).await;
            tasks = late["tasks"].as_array().cloned().unwrap_or_default();
        }
        assert_eq!(tasks.len(), 1, "task {i}: {tasks:?}");
        let id = tasks[0]["id"].as_str().unwrap();
        let (status, _) = app
            .post_json(
                &format!("/tasks/{id}/result"),
                &json!({ "result": "ok" }),
                Some(&token),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    app.assert_ledger_balanced().await;
    assert!(
        missed.is_empty(),
        "GET /tasks/poll right after a 201 `queued` returned no task for {} of 20 tasks ({missed:?})",
        missed.len()
    );
}

#[actix_web::test]
async fn polling_long_polls_fails_with_error_and_guards_foreign_tasks() {
    let app = app().await;
    let (owner, _) = app.register_user("lpowner").await;
    let (buyer, _) = app.register_user("lpbuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "long-poller", "poll", 3, None).await;
    let (_, other_token) = plain_agent(&app, &owner, "other-poller", "poll", 0, None).await;

    // Nothing queued: `?wait=N` answers as soon as a task is created, well before N.
    let client = app.client.clone();
    let url = app.url("/tasks/poll?wait=20");
    let t2 = token.clone();
    let started = Instant::now();
    let pending =
        tokio::spawn(async move { client.get(url).bearer_auth(t2).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "the long poll answered at once");
    let view = created(&app, &buyer, &agent, "wake up").await;
    let resp = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the long poll did not answer when a task was created")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    let polled: Value = resp.json().await.unwrap();
    let tasks = polled["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{polled}");
    assert_frame(&tasks[0], &view, "wake up", "lpbuyer");
    let id = view["id"].as_str().unwrap();

    // An empty poll with a short wait answers an empty list.
    let (status, empty) = app.get("/tasks/poll?wait=1", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, json!({ "tasks": [] }));

    // Another agent cannot answer (or see) this task; unknown ids are 404 too.
    let (status, body) = app
        .post_json(
            &format!("/tasks/{id}/result"),
            &json!({ "result": "mine!" }),
            Some(&other_token),
        )
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post_json(
            &format!("/tasks/{}/result", uuid::Uuid::new_v4()),
            &json!({ "result": "x" }),
            Some(&token),
        )
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    // The buyer's JWT is no agent token.
    let (status, _) = app
        .post_json(
            &format!("/tasks/{id}/result"),
            &json!({ "result": "x" }),
            Some(&buyer),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The agent reports an error: failed, refunded.
    let (status, failed) = app
        .post_json(
            &format!("/tasks/{id}/result"),
            &json!({ "error": "cannot do that" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["billing"]["tokensCharged"], 0);
    let done = wait_final(&app, &buyer, id).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["error"].to_string().contains("cannot do that"),
        "{done}"
    );
    assert_eq!(balance(&app, &buyer).await, (START, 0));
    assert_eq!(balance(&app, &owner).await, (START, 0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn a_leased_task_unanswered_past_its_deadline_times_out_and_is_refunded() {
    let app = app_with(|s| s.call_timeout_secs = 2).await;
    let (owner, _) = app.register_user("leaseowner").await;
    let (buyer, _) = app.register_user("leasebuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "slow-poller", "poll", 6, None).await;

    let view = created(&app, &buyer, &agent, "never answered").await;
    let (_, polled) = app.get("/tasks/poll?wait=5", Some(&token)).await;
    assert_eq!(polled["tasks"].as_array().unwrap().len(), 1, "{polled}");
    assert_eq!(balance(&app, &buyer).await, (START - 6, 6));

    let id = view["id"].as_str().unwrap();
    let done = wait_final(&app, &buyer, id).await;
    assert_eq!(done["status"], "timeout", "{done}");
    assert_eq!(done["billing"]["tokensCharged"], 0);
    assert_eq!(balance(&app, &buyer).await, (START, 0));

    // The late answer settles nothing.
    let (status, body) = app
        .post_json(
            &format!("/tasks/{id}/result"),
            &json!({ "result": "too late" }),
            Some(&token),
        )
        .await;
    assert_coded(status, &body, StatusCode::CONFLICT, "TASK_SETTLED");
    assert_eq!(balance(&app, &buyer).await, (START, 0));
    assert_eq!(balance(&app, &owner).await, (START, 0));
    // Nor is it handed out again.
    let (_, polled) = app.get("/tasks/poll", Some(&token)).await;
    assert_eq!(polled, json!({ "tasks": [] }));
    app.assert_ledger_balanced().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Push to a real local HTTP server

/// One request a webhook received: (path, headers, JSON body).
type Request = (String, Vec<(String, String)>, Value);

#[derive(Default)]
struct Received {
    requests: Mutex<Vec<Request>>,
}

impl Received {
    fn all(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

async fn webhook(req: HttpRequest, body: web::Bytes, seen: web::Data<Received>) -> HttpResponse {
    let path = req.path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::String(format!("{body:?}")));
    seen.requests
        .lock()
        .unwrap()
        .push((path.clone(), headers, json.clone()));
    match path.as_str() {
        "/ok/" => HttpResponse::Ok().json(json!({
            "result": format!("## Security Review\n\n{}: no critical issues", json["task"].as_str().unwrap_or("")),
        })),
        "/fail/" => HttpResponse::InternalServerError().body("boom"),
        "/reject/" => HttpResponse::BadRequest().body("not for me"),
        "/garbage/" => HttpResponse::Ok().content_type("text/html").body("<html>hi</html>"),
        "/noresult/" => HttpResponse::Ok().json(json!({ "answer": 42 })),
        "/slow/" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            HttpResponse::Ok().json(json!({ "result": "too slow" }))
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

/// Starts the webhook server; returns its base URL (`http://127.0.0.1:<port>`).
fn start_webhooks() -> (String, Arc<Received>) {
    let seen = web::Data::new(Received::default());
    let shared = seen.clone().into_inner();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(seen.clone())
            .default_service(web::post().to(webhook))
    })
    .workers(2)
    .listen(listener)
    .unwrap()
    .disable_signals()
    .run();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}"), shared)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[actix_web::test]
async fn push_delivers_to_a_real_endpoint_and_settles_each_answer() {
    let (base, seen) = start_webhooks();
    let app = app().await;
    let (owner, _) = app.register_user("pushowner").await;
    let (buyer, _) = app.register_user("pushbuyer").await;
    let ok = format!("{base}/ok/");
    let (ok_id, _) = plain_agent(&app, &owner, "push-ok", "push", 5, Some(&ok)).await;

    let files = json!([
        { "name": "main.rs", "mimeType": "text/x-rust", "content": "Zm4gbWFpbigpIHt9" },
        { "name": "spec.pdf", "url": "https://example.com/spec.pdf" }
    ]);
    let (status, view) = create_task(
        &app,
        &buyer,
        "push-ok",
        "Review this code for security issues",
        json!({ "files": files }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_task_view(&view);
    assert_eq!(view["files"], files);
    let done = wait_final(&app, &buyer, view["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["result"],
        "## Security Review\n\nReview this code for security issues: no critical issues"
    );
    assert_eq!(done["billing"]["tokensCharged"], 5);
    assert_eq!(balance(&app, &buyer).await, (START - 5, 0));
    assert_eq!(balance(&app, &owner).await, (START + 5, 0));

    let requests = seen.all();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (path, headers, body) = &requests[0];
    assert_eq!(path, "/ok/");
    assert_eq!(
        keys(body),
        set(&["task", "files", "buyer", "jobId"]),
        "{body}"
    );
    assert_eq!(body["task"], "Review this code for security issues");
    assert_eq!(body["files"], files);
    assert_eq!(body["buyer"], "pushbuyer");
    assert_eq!(body["jobId"], view["jobId"]);
    assert_eq!(header(headers, "idempotency-key"), view["id"].as_str());
    assert_eq!(
        header(headers, "x-agenthub-job-id"),
        Some(view["jobId"].as_i64().unwrap().to_string().as_str())
    );
    assert!(
        header(headers, "content-type").is_some_and(|c| c.starts_with("application/json")),
        "{headers:?}"
    );

    // The same agent through /mcp/call: the result as MCP text content.
    let (_, caller_key) = app.create_ws_agent(&buyer, "Caller", "push-caller").await;
    let (status, body) = app
        .post_json(
            "/api/v1/mcp/call",
            &json!({ "targetAgentId": ok_id, "toolName": "task", "arguments": { "task": "Look" } }),
            Some(&caller_key),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"],
        json!({ "content": [{ "type": "text", "text": "## Security Review\n\nLook: no critical issues" }] })
    );
    assert_eq!(body["billing"]["tokensCharged"], 5);
    assert_eq!(balance(&app, &buyer).await, (START - 10, 0));
    // Another tool is a validation error naming toolName.
    let (status, body) = app
        .post_json(
            "/api/v1/mcp/call",
            &json!({ "targetAgentId": ok_id, "toolName": "echo", "arguments": { "task": "x" } }),
            Some(&caller_key),
        )
        .await;
    assert_validation(status, &body, "toolName");

    // 500, 400, 200 with garbage, 200 without `result`: failed and refunded.
    for route in ["fail", "reject", "garbage", "noresult"] {
        let slug = format!("push-{route}");
        let endpoint = format!("{base}/{route}/");
        plain_agent(&app, &owner, &slug, "push", 5, Some(&endpoint)).await;
        let view = created(&app, &buyer, &slug, "doomed").await;
        let done = wait_final(&app, &buyer, view["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "failed", "{route}: {done}");
        assert!(done["error"].is_string(), "{route}: {done}");
        assert_eq!(done["billing"]["tokensCharged"], 0, "{route}");
        assert_eq!(balance(&app, &buyer).await, (START - 10, 0), "{route}");
        assert_eq!(balance(&app, &owner).await, (START + 10, 0), "{route}");
        // Delivered once: an answered request is not retried.
        let hits = seen
            .all()
            .iter()
            .filter(|r| r.0 == format!("/{route}/"))
            .count();
        assert_eq!(hits, 1, "{route} got {hits} requests");
    }
    assert_eq!(balance(&app, &buyer).await, (START - 10, 0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn push_slower_than_the_push_deadline_fails_and_is_refunded() {
    let (base, seen) = start_webhooks();
    let app = app_with(|s| {
        s.push_timeout_secs = 1;
        s.call_timeout_secs = 20;
    })
    .await;
    let (owner, _) = app.register_user("slowowner").await;
    let (buyer, _) = app.register_user("slowbuyer").await;
    let slow = format!("{base}/slow/");
    plain_agent(&app, &owner, "push-slow", "push", 5, Some(&slow)).await;

    let started = Instant::now();
    let view = created(&app, &buyer, "push-slow", "take your time").await;
    let done = wait_final(&app, &buyer, view["id"].as_str().unwrap()).await;
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "the push deadline (1 s) was not kept: {:?}",
        started.elapsed()
    );
    assert!(
        ["failed", "timeout"].contains(&done["status"].as_str().unwrap()),
        "{done}"
    );
    assert_eq!(done["status"], "failed", "push past its deadline: {done}");
    assert_eq!(done["billing"]["tokensCharged"], 0);
    assert_eq!(balance(&app, &buyer).await, (START, 0));
    assert_eq!(balance(&app, &owner).await, (START, 0));
    assert!(!seen.all().is_empty());
    // The endpoint's late 200 changes nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, t) = app
        .get(
            &format!("/api/v1/tasks/{}", view["id"].as_str().unwrap()),
            Some(&buyer),
        )
        .await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(balance(&app, &owner).await, (START, 0));
    app.assert_ledger_balanced().await;
}

// ---------------------------------------------------------------------------------------------
// 4. The plain stream's rules

#[actix_web::test]
async fn a_ws_agent_gets_tasks_queued_while_it_was_away() {
    let app = app().await;
    let (owner, _) = app.register_user("wsowner").await;
    let (buyer, _) = app.register_user("wsbuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "ws-agent", "ws", 3, None).await;

    let first = created(&app, &buyer, &agent, "first").await;
    let second = created(&app, &buyer, "ws-agent", "second").await;
    assert_eq!(first["status"], "queued", "{first}");
    assert_eq!(second["status"], "queued", "{second}");
    assert!(second["jobId"].as_i64() > first["jobId"].as_i64());
    assert_eq!(balance(&app, &buyer).await, (START - 6, 6));

    let mut ws = connect_plain(&app, "/api/v1/ws", &token).await;
    let a = next_json(&mut ws).await;
    let b = next_json(&mut ws).await;
    // Both come, in either order (each task actor hands its own over).
    let (f1, f2) = if a["id"] == first["id"] {
        (a, b)
    } else {
        (b, a)
    };
    assert_frame(&f1, &first, "first", "wsbuyer");
    assert_frame(&f2, &second, "second", "wsbuyer");

    // Unknown and malformed task ids get an error frame back and change nothing.
    let bogus = uuid::Uuid::new_v4().to_string();
    send(&mut ws, json!({ "taskId": bogus, "result": "who?" })).await;
    let err = next_json(&mut ws).await;
    assert!(err["error"].is_string(), "{err}");
    assert_eq!(err["taskId"], json!(bogus), "{err}");

    send(&mut ws, json!({ "taskId": f1["id"], "result": "one" })).await;
    send(
        &mut ws,
        json!({ "taskId": f2["id"], "error": "two failed" }),
    )
    .await;
    let done1 = wait_final(&app, &buyer, f1["id"].as_str().unwrap()).await;
    let done2 = wait_final(&app, &buyer, f2["id"].as_str().unwrap()).await;
    assert_eq!(done1["status"], "completed", "{done1}");
    assert_eq!(done1["result"], "one");
    assert_eq!(done2["status"], "failed", "{done2}");
    assert!(done2["error"].to_string().contains("two failed"), "{done2}");

    // A second answer for a settled task: error frame, no second payment.
    send(&mut ws, json!({ "taskId": f1["id"], "result": "again" })).await;
    let err = next_json(&mut ws).await;
    assert!(err["error"].is_string(), "{err}");
    assert_eq!(err["taskId"], f1["id"], "{err}");
    assert_eq!(balance(&app, &buyer).await, (START - 3, 0));
    assert_eq!(balance(&app, &owner).await, (START + 3, 0));
    let done1 = wait_final(&app, &buyer, f1["id"].as_str().unwrap()).await;
    assert_eq!(done1["result"], "one");

    // Connected now: a new task is dispatched at once.
    let live = created(&app, &buyer, &agent, "live").await;
    assert_eq!(live["status"], "dispatched", "{live}");
    let f3 = next_json(&mut ws).await;
    assert_frame(&f3, &live, "live", "wsbuyer");
    send(
        &mut ws,
        json!({ "taskId": f3["id"], "result": { "any": "json" } }),
    )
    .await;
    let done3 = wait_final(&app, &buyer, f3["id"].as_str().unwrap()).await;
    assert_eq!(done3["result"], json!({ "any": "json" }));
    assert_eq!(balance(&app, &buyer).await, (START - 6, 0));
    ws.close(None).await.ok();
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn a_foreign_answer_changes_nothing_and_a_second_stream_replaces_the_first() {
    let app = app_with(|s| s.heartbeat_secs = 1).await;
    let (owner, _) = app.register_user("repowner").await;
    let (buyer, _) = app.register_user("repbuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "rep-agent", "ws", 2, None).await;
    let (_, other_token) = plain_agent(&app, &owner, "rep-other", "ws", 0, None).await;

    let mut ws = connect_plain(&app, "/ws", &token).await;
    wait_online(&app, &agent).await;
    let view = created(&app, &buyer, &agent, "mine").await;
    let frame = next_json(&mut ws).await;
    assert_frame(&frame, &view, "mine", "repbuyer");

    // Another agent answering this task: error frame, the task stays open.
    let mut other = connect_plain(&app, "/ws", &other_token).await;
    send(
        &mut other,
        json!({ "taskId": frame["id"], "result": "stolen" }),
    )
    .await;
    let err = next_json(&mut other).await;
    assert!(err["error"].is_string(), "{err}");
    assert_eq!(err["taskId"], frame["id"]);
    let (_, t) = app
        .get(
            &format!("/api/v1/tasks/{}", view["id"].as_str().unwrap()),
            Some(&buyer),
        )
        .await;
    assert_eq!(t["status"], "dispatched", "{t}");

    // Heartbeat: WebSocket ping control frames (tungstenite answers them by itself).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("no ping within 10 s")
            .unwrap()
            .unwrap();
        match msg {
            Message::Ping(_) => break,
            Message::Pong(_) => {}
            other => panic!("only pings expected on an idle stream, got {other:?}"),
        }
    }

    // The owner of the task answers it; the foreign answer changed nothing.
    send(&mut ws, json!({ "taskId": frame["id"], "result": "done" })).await;
    let done = wait_final(&app, &buyer, view["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], "done");
    assert_eq!(balance(&app, &buyer).await, (START - 2, 0));
    assert_eq!(balance(&app, &owner).await, (START + 2, 0));

    // A second connection replaces the first (1000, "replaced by new connection") and takes
    // the next task.
    let mut second = connect_plain(&app, "/api/v1/ws", &token).await;
    let close = loop {
        match next_message(&mut ws).await {
            Message::Close(frame) => break frame,
            Message::Text(t) => panic!("unexpected text on the replaced stream: {t}"),
            _ => {}
        }
    };
    let close = close.expect("a close frame with a reason");
    assert_eq!(u16::from(close.code), 1000);
    assert_eq!(close.reason.as_str(), "replaced by new connection");
    let next = created(&app, &buyer, &agent, "next").await;
    let frame = next_json(&mut second).await;
    assert_frame(&frame, &next, "next", "repbuyer");
    send(
        &mut second,
        json!({ "taskId": frame["id"], "result": "second" }),
    )
    .await;
    let done = wait_final(&app, &buyer, next["id"].as_str().unwrap()).await;
    assert_eq!(done["result"], "second", "{done}");
    assert_eq!(balance(&app, &buyer).await, (START - 4, 0));
    second.close(None).await.ok();
    other.close(None).await.ok();
    app.assert_ledger_balanced().await;
}

/// Waits until the hub no longer holds a stream of `agent` (bounded).
async fn wait_offline(app: &TestApp, agent: &str) {
    let id = uuid::Uuid::parse_str(agent).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.hub.registry.conn(id).is_some() {
        assert!(Instant::now() < deadline, "the agent never went offline");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_task_in_flight_on_a_lost_stream_comes_again_on_the_next() {
    let app = app().await;
    let (owner, _) = app.register_user("lostowner").await;
    let (buyer, _) = app.register_user("lostbuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "lost-agent", "ws", 3, None).await;

    // The stream drops with the task unanswered: it goes back to the queue and comes again
    // when the agent reconnects.
    let mut ws = connect_plain(&app, "/ws", &token).await;
    wait_online(&app, &agent).await;
    let view = created(&app, &buyer, &agent, "dropped").await;
    let frame = next_json(&mut ws).await;
    assert_frame(&frame, &view, "dropped", "lostbuyer");
    ws.close(None).await.ok();
    drop(ws);
    wait_offline(&app, &agent).await;
    let mut ws = connect_plain(&app, "/ws", &token).await;
    let again = next_json(&mut ws).await;
    assert_frame(&again, &view, "dropped", "lostbuyer");
    send(
        &mut ws,
        json!({ "taskId": again["id"], "result": "finally" }),
    )
    .await;
    let done = wait_final(&app, &buyer, view["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"], "finally");
    assert_eq!(balance(&app, &buyer).await, (START - 3, 0));

    // Replaced with the task unanswered: the replacing stream gets it.
    let view = created(&app, &buyer, &agent, "replaced").await;
    let frame = next_json(&mut ws).await;
    assert_frame(&frame, &view, "replaced", "lostbuyer");
    let mut second = connect_plain(&app, "/ws", &token).await;
    let again = try_next_json(&mut second, Duration::from_secs(10)).await;
    let Some(again) = again else {
        let (_, t) = app
            .get(
                &format!("/api/v1/tasks/{}", view["id"].as_str().unwrap()),
                Some(&buyer),
            )
            .await;
        panic!(
            "a task in flight on a replaced stream was not delivered to the replacing stream \
             within 10 s; the task: {t}"
        );
    };
    assert_frame(&again, &view, "replaced", "lostbuyer");
    send(
        &mut second,
        json!({ "taskId": again["id"], "result": "again" }),
    )
    .await;
    let done = wait_final(&app, &buyer, view["id"].as_str().unwrap()).await;
    assert_eq!(done["result"], "again", "{done}");
    assert_eq!(balance(&app, &buyer).await, (START - 6, 0));
    assert_eq!(balance(&app, &owner).await, (START + 6, 0));
    second.close(None).await.ok();
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn mcp_call_with_the_task_tool_reaches_ws_and_poll_agents() {
    let app = app().await;
    let (owner, _) = app.register_user("mcpowner").await;
    let (buyer, _) = app.register_user("mcpbuyer").await;
    let (_, caller_key) = app.create_ws_agent(&buyer, "Caller", "mcp-caller").await;
    let (ws_id, ws_token) = plain_agent(&app, &owner, "mcp-ws", "ws", 2, None).await;
    let (poll_id, poll_token) = plain_agent(&app, &owner, "mcp-poll", "poll", 0, None).await;

    // ws: the agent answers from its stream.
    let mut ws = connect_plain(&app, "/ws", &ws_token).await;
    wait_online(&app, &ws_id).await;
    let call = |target: String, task: &'static str| {
        let client = app.client.clone();
        let url = app.url("/api/v1/mcp/call");
        let key = caller_key.clone();
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({ "targetAgentId": target, "toolName": "task",
                               "arguments": { "task": task } }))
                .send()
                .await
                .unwrap();
            crate::helpers::into_json(resp).await
        })
    };
    let pending = call(ws_id.clone(), "via mcp");
    let frame = next_json(&mut ws).await;
    assert_eq!(frame["task"], "via mcp");
    assert_eq!(frame["buyer"], "mcpbuyer");
    send(
        &mut ws,
        json!({ "taskId": frame["id"], "result": "ws answer" }),
    )
    .await;
    let (status, body) = pending.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(
        body["result"],
        json!({ "content": [{ "type": "text", "text": "ws answer" }] })
    );
    assert_eq!(body["billing"]["tokensCharged"], 2);

    // poll (free): the call waits until the poller answers.
    let pending = call(poll_id.clone(), "via mcp too");
    let (_, polled) = app.get("/tasks/poll?wait=10", Some(&poll_token)).await;
    let tasks = polled["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{polled}");
    assert_eq!(tasks[0]["task"], "via mcp too");
    let id = tasks[0]["id"].as_str().unwrap();
    let (status, _) = app
        .post_json(
            &format!("/tasks/{id}/result"),
            &json!({ "result": "poll answer" }),
            Some(&poll_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = pending.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["result"],
        json!({ "content": [{ "type": "text", "text": "poll answer" }] })
    );
    assert_eq!(body["billing"]["tokensCharged"], 0);

    // Another tool name: 400 naming toolName; missing task: 400 naming task.
    for target in [&ws_id, &poll_id] {
        let (status, body) = app
            .post_json(
                "/api/v1/mcp/call",
                &json!({ "targetAgentId": target, "toolName": "echo", "arguments": { "task": "x" } }),
                Some(&caller_key),
            )
            .await;
        assert_validation(status, &body, "toolName");
        let (status, body) = app
            .post_json(
                "/api/v1/mcp/call",
                &json!({ "targetAgentId": target, "toolName": "task", "arguments": {} }),
                Some(&caller_key),
            )
            .await;
        assert_validation(status, &body, "task");
    }
    assert_eq!(balance(&app, &buyer).await, (START - 2, 0));
    assert_eq!(balance(&app, &owner).await, (START + 2, 0));

    // The tools list: one tool, `task`, for every mode, connected or not.
    let (push_id, _) = plain_agent(
        &app,
        &owner,
        "mcp-push",
        "push",
        0,
        Some("http://127.0.0.1:9/"),
    )
    .await;
    let mut problems = Vec::new();
    let mut check_tools = async |label: &str, id: &str| {
        let (status, tools) = app.get(&format!("/api/v1/agents/{id}/tools"), None).await;
        let list = tools["tools"].as_array().cloned().unwrap_or_default();
        if status != StatusCode::OK
            || list.len() != 1
            || list[0]["name"] != json!("task")
            || !list[0]["inputSchema"].is_object()
        {
            problems.push(format!(
                "GET /api/v1/agents/{{id}}/tools of the {label} agent: expected one tool `task`, got {status} {tools}"
            ));
        }
    };
    check_tools("connected ws", &ws_id).await;
    check_tools("poll", &poll_id).await;
    check_tools("push", &push_id).await;
    ws.close(None).await.ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .hub
        .registry
        .conn(uuid::Uuid::parse_str(&ws_id).unwrap())
        .is_some()
    {
        assert!(Instant::now() < deadline, "the ws agent never went offline");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check_tools("offline ws", &ws_id).await;
    crate::helpers::assert_no_problems(&problems);
    app.assert_ledger_balanced().await;
}

// ---------------------------------------------------------------------------------------------
// 5. The buyers' API: validation, files, maxCost, requestId, lists and privacy

#[actix_web::test]
async fn buyers_task_api_validates_bills_and_keeps_tasks_private() {
    let app = app().await;
    let (owner, _) = app.register_user("apiowner").await;
    let (buyer, _) = app.register_user("apibuyer").await;
    let (stranger, _) = app.register_user("stranger").await;
    let (agent, token) = plain_agent(&app, &owner, "api-agent", "poll", 7, None).await;
    let (free, free_token) = plain_agent(&app, &owner, "free-agent", "poll", 0, None).await;

    // Missing task: 400 naming task; unknown agent 404; price above maxCost.
    let (status, body) = app
        .post_json("/api/v1/tasks", &json!({ "agent": agent }), Some(&buyer))
        .await;
    assert_validation(status, &body, "task");
    let (status, body) = create_task(&app, &buyer, "no-such-agent", "x", json!({})).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = create_task(&app, &buyer, &agent, "x", json!({ "maxCost": 6 })).await;
    assert_coded(status, &body, StatusCode::BAD_REQUEST, "PRICE_EXCEEDS_MAX");
    assert_eq!(balance(&app, &buyer).await, (START, 0));

    // Files over 1 MiB decoded: 413 PAYLOAD_TOO_LARGE (the body itself stays under 2 MiB):
    // 1,450,000 base64 characters decode to 1,087,500 bytes.
    let big = "A".repeat(1_450_000);
    let (status, body) = create_task(
        &app,
        &buyer,
        &agent,
        "big",
        json!({ "files": [{ "name": "big.bin", "mimeType": "application/octet-stream", "content": big }] }),
    )
    .await;
    assert_too_large(status, &body);
    let (_, caller_key) = app.create_ws_agent(&buyer, "Caller", "api-caller").await;
    let (status, body) = app
        .post_json(
            "/api/v1/mcp/call",
            &json!({ "targetAgentId": agent, "toolName": "task", "arguments": { "task": "big",
                     "files": [{ "name": "big.bin", "content": big.clone() }] } }),
            Some(&caller_key),
        )
        .await;
    assert_too_large(status, &body);
    assert_eq!(balance(&app, &buyer).await, (START, 0));
    // Just under the limit (1,390,000 characters, 1,042,500 bytes) is accepted.
    let fits = "A".repeat(1_390_000);
    let (status, body) = create_task(
        &app,
        &buyer,
        &free,
        "fits",
        json!({ "files": [{ "name": "fits.bin", "content": fits }] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{}", short(&body));
    let (_, polled) = app.get("/tasks/poll?wait=5", Some(&free_token)).await;
    let fits_id = polled["tasks"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        polled["tasks"][0]["files"][0]["content"]
            .as_str()
            .map(str::len),
        Some(1_390_000)
    );
    let (status, _) = app
        .post_json(
            &format!("/tasks/{fits_id}/result"),
            &json!({ "error": "too much to read" }),
            Some(&free_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(balance(&app, &buyer).await, (START, 0));

    // Both file forms reach the agent unchanged; requestId makes a retry the same task.
    let files = json!([
        { "name": "notes.txt", "mimeType": "text/plain", "content": "aGVsbG8gd29ybGQ=" },
        { "name": "data.csv", "url": "https://example.com/data.csv" }
    ]);
    let extra = json!({ "files": files, "maxCost": 7, "requestId": "rid-1" });
    let (status, view) = create_task(&app, &buyer, "api-agent", "with files", extra.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_task_view(&view);
    assert_eq!(view["files"], files);
    let (_, polled) = app.get("/tasks/poll?wait=5", Some(&token)).await;
    assert_eq!(polled["tasks"][0]["files"], files, "{polled}");
    let id = view["id"].as_str().unwrap().to_string();
    let (status, _) = app
        .post_json(
            &format!("/tasks/{id}/result"),
            &json!({ "result": "read both" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(balance(&app, &buyer).await, (START - 7, 0));
    let (status, retry) = create_task(&app, &buyer, "api-agent", "with files", extra).await;
    assert!(status.is_success(), "{status}: {retry}");
    assert_eq!(retry["id"], json!(id), "{retry}");
    assert_eq!(retry["status"], "completed", "{retry}");
    assert_eq!(balance(&app, &buyer).await, (START - 7, 0));
    let (status, body) = create_task(
        &app,
        &buyer,
        "api-agent",
        "different",
        json!({ "requestId": "rid-1" }),
    )
    .await;
    assert_coded(status, &body, StatusCode::CONFLICT, "IDEMPOTENCY_CONFLICT");

    // A free agent: completed, nothing moves.
    let fv = created(&app, &buyer, &free, "free work").await;
    let (_, polled) = app
        .get("/api/v1/tasks/poll?wait=5", Some(&free_token))
        .await;
    let fid = polled["tasks"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(fid, fv["id"].as_str().unwrap());
    let (_, settled) = app
        .post_json(
            &format!("/api/v1/tasks/{fid}/result"),
            &json!({ "result": "gratis" }),
            Some(&free_token),
        )
        .await;
    assert_eq!(settled["status"], "completed", "{settled}");
    assert_eq!(settled["billing"]["tokensCharged"], 0);
    assert_eq!(balance(&app, &buyer).await, (START - 7, 0));
    assert_eq!(balance(&app, &owner).await, (START + 7, 0));

    // Lists: the buyer's own tasks, paginated; nobody else sees them.
    let (status, list) = app.get("/api/v1/tasks", Some(&buyer)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        keys(&list),
        set(&["data", "page", "limit", "total"]),
        "{list}"
    );
    assert_eq!(list["total"], 3, "{list}");
    let listed: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&id.as_str()) && listed.contains(&fid.as_str()));
    let (_, page) = app.get("/api/v1/tasks?page=2&limit=1", Some(&buyer)).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["page"], 2);
    assert_eq!(page["limit"], 1);
    let (status, body) = app.get("/api/v1/tasks?limit=101", Some(&buyer)).await;
    assert_status_error(status, &body, StatusCode::BAD_REQUEST);
    let (_, theirs) = app.get("/api/v1/tasks", Some(&stranger)).await;
    assert_eq!(theirs["total"], 0, "{theirs}");
    let (status, body) = app
        .get(&format!("/api/v1/tasks/{id}"), Some(&stranger))
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app
        .get(&format!("/api/v1/tasks/{id}?wait=1"), Some(&stranger))
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&format!("/api/v1/tasks/{id}"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.assert_ledger_balanced().await;
}

/// Pollers answer tasks the moment `open` commits, sometimes before the task's actor has even
/// started: the caller must still learn the outcome at once, never at the deadline. (The race
/// needs release-build timing to show reliably: `agenthub-bench --scenarios s3` found it, with
/// calls held to the 60 s deadline; this test keeps the contract.)
#[actix_web::test]
async fn answers_racing_the_task_actor_reach_the_caller_at_once() {
    let app = app_with(|s| s.call_timeout_secs = 30).await;
    let (owner, _) = app.register_user("raceowner").await;
    let (buyer, _) = app.register_user("racebuyer").await;
    let (agent, token) = plain_agent(&app, &owner, "racer", "poll", 1, None).await;
    let (_, caller_key) = app.create_ws_agent(&buyer, "Caller", "race-caller").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let (client, base, token, stop) = (
                app.client.clone(),
                app.address.clone(),
                token.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let Ok(res) = client
                        .get(format!("{base}/tasks/poll?wait=1"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    else {
                        continue;
                    };
                    let body: Value = res.json().await.unwrap_or_default();
                    for t in body["tasks"].as_array().cloned().unwrap_or_default() {
                        let _ = client
                            .post(format!("{base}/tasks/{}/result", t["id"].as_str().unwrap()))
                            .bearer_auth(&token)
                            .json(&json!({ "result": "fast" }))
                            .send()
                            .await;
                    }
                }
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..48)
        .map(|i| {
            let (client, url, key, agent) = (
                app.client.clone(),
                app.url("/api/v1/mcp/call"),
                caller_key.clone(),
                agent.clone(),
            );
            tokio::spawn(async move {
                let t = std::time::Instant::now();
                let res = client
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({ "targetAgentId": agent, "toolName": "task",
                                   "arguments": { "task": format!("job {i}") } }))
                    .send()
                    .await
                    .unwrap();
                let body: Value = res.json().await.unwrap();
                (body, t.elapsed())
            })
        })
        .collect();
    for call in calls {
        let (body, took) = call.await.unwrap();
        assert_eq!(body["status"], "completed", "{body}");
        assert!(
            took < Duration::from_secs(10),
            "a call waited {took:?} (its deadline is 30 s): {body}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for p in pollers {
        let _ = p.await;
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(balance(&app, &buyer).await, (START - 48, 0));
    app.assert_ledger_balanced().await;
}
