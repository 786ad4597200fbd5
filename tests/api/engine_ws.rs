//! The agent's reverse WebSocket (`/api/v1/agents/ws`): handshake, tools, heartbeat, pong
//! timeout, single connection, presence. Also home of the scripted WebSocket agent
//! (`MockAgent`) and the call helpers the other `engine_*` files share.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use crate::helpers::{TestApp, WsStream, spawn_app, spawn_app_with};

// ------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------

/// The tools every mock agent declares unless told otherwise.
pub fn echo_tools() -> Value {
    json!([{
        "name": "echo",
        "description": "Echo a message",
        "inputSchema": {
            "type": "object",
            "properties": { "message": { "type": "string" } },
            "required": ["message"]
        }
    }])
}

/// The result an echo agent answers for `arguments`.
pub fn echo_result(arguments: &Value) -> Value {
    let message = arguments["message"].as_str().unwrap_or("");
    json!({ "content": [{ "type": "text", "text": format!("Echo: {message}") }] })
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// Opens a WebSocket on `path` with `Authorization: Bearer <key>`; the HTTP status on refusal.
pub async fn ws_connect(port: u16, path: &str, key: &str) -> Result<WsStream, u16> {
    let url = format!("ws://127.0.0.1:{port}{path}");
    let mut req = url.into_client_request().expect("ws request");
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {key}").parse().expect("header value"),
    );
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("ws connect {path}: unexpected error {e}"),
    }
}

/// The next text frame as JSON (control frames skipped); panics on close or after `within`.
pub async fn next_json(ws: &mut WsStream, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no frame within {within:?}"))
            .expect("socket ended")
            .expect("socket error");
        match msg {
            Message::Text(text) => {
                return serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}"));
            }
            Message::Close(frame) => panic!("socket closed: {frame:?}"),
            _ => {}
        }
    }
}

pub async fn send_json(ws: &mut WsStream, value: &Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send frame");
}

/// `{"model":"per-call","pricePerCall":price}`, or free for 0.
pub fn pricing(price: i64) -> Value {
    if price == 0 {
        json!({ "model": "free" })
    } else {
        json!({ "model": "per-call", "pricePerCall": price })
    }
}

/// Registers a public websocket agent with `price`; returns (id, apiKey).
pub async fn ws_agent(app: &TestApp, token: &str, slug: &str, price: i64) -> (String, String) {
    ws_agent_with(app, token, slug, price, "public").await
}

pub async fn ws_agent_with(
    app: &TestApp,
    token: &str,
    slug: &str,
    price: i64,
    visibility: &str,
) -> (String, String) {
    let (agent, key) = app
        .create_agent(
            token,
            &json!({
                "name": format!("Agent {slug}"),
                "slug": slug,
                "description": format!("Test agent {slug}"),
                "connectionMode": "websocket",
                "pricing": pricing(price),
                "visibility": visibility,
            }),
        )
        .await;
    let id = agent["id"].as_str().expect("agent id").to_string();
    (id, key)
}

/// `{balance, reserved}` for a JWT or API key.
pub async fn balance(app: &TestApp, credential: &str) -> (i64, i64) {
    let (status, body) = app.get("/api/v1/billing/balance", Some(credential)).await;
    assert_eq!(status, StatusCode::OK, "balance: {body}");
    (
        body["balance"]
            .as_i64()
            .unwrap_or_else(|| panic!("balance in {body}")),
        body["reserved"]
            .as_i64()
            .unwrap_or_else(|| panic!("reserved in {body}")),
    )
}

/// Every row of GET /billing/transactions (JWT), all pages.
pub async fn transactions(app: &TestApp, token: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    for page in 1..=50 {
        let (status, body) = app
            .get(
                &format!("/api/v1/billing/transactions?page={page}&limit=100"),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "transactions: {body}");
        let data = body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("data in {body}"))
            .clone();
        let done = data.len() < 100;
        rows.extend(data);
        if done {
            break;
        }
    }
    rows
}

/// The transaction rows of `kind` (`grant`, `charge`, `earning`).
pub async fn rows_of(app: &TestApp, token: &str, kind: &str) -> Vec<Value> {
    transactions(app, token)
        .await
        .into_iter()
        .filter(|r| r["type"] == json!(kind))
        .collect()
}

pub async fn mcp_call(app: &TestApp, key: &str, body: &Value) -> (StatusCode, Value) {
    app.post_json("/api/v1/mcp/call", body, Some(key)).await
}

/// A `/mcp/call` body for the echo tool.
pub fn echo_call(target: &str, message: &str, request_id: Option<&str>) -> Value {
    let mut body = json!({
        "targetAgentId": target,
        "toolName": "echo",
        "arguments": { "message": message },
    });
    if let Some(rid) = request_id {
        body["requestId"] = json!(rid);
    }
    body
}

/// Checks a completed `/mcp/call` answer for an echo of `message` priced `price`.
pub fn assert_completed(status: StatusCode, body: &Value, message: &str, price: i64) {
    assert_eq!(status, StatusCode::OK, "call: {body}");
    assert_eq!(body["status"], json!("completed"), "status in {body}");
    assert_eq!(
        body["result"],
        echo_result(&json!({ "message": message })),
        "result in {body}"
    );
    assert_eq!(
        body["billing"]["tokensCharged"],
        json!(price),
        "tokensCharged in {body}"
    );
    if price == 0 {
        assert_eq!(
            body["billing"]["transactionId"],
            Value::Null,
            "transactionId of a free call in {body}"
        );
    } else {
        let tx = body["billing"]["transactionId"]
            .as_str()
            .unwrap_or_else(|| panic!("transactionId in {body}"));
        uuid::Uuid::parse_str(tx).unwrap_or_else(|_| panic!("transactionId not a uuid: {body}"));
    }
    assert!(body["durationMs"].is_u64(), "durationMs in {body}");
    assert!(
        body["requestId"].as_str().is_some_and(|s| !s.is_empty()),
        "requestId in {body}"
    );
}

/// Checks a refunded outcome (`failed` 502 or `timeout` 504).
pub fn assert_refunded(status: StatusCode, body: &Value, expected: StatusCode, outcome: &str) {
    assert_eq!(status, expected, "call: {body}");
    assert_eq!(body["status"], json!(outcome), "status in {body}");
    assert_eq!(
        body["billing"],
        json!({ "tokensCharged": 0, "transactionId": null }),
        "billing in {body}"
    );
    assert!(body["durationMs"].is_u64(), "durationMs in {body}");
    assert!(
        body["requestId"].as_str().is_some_and(|s| !s.is_empty()),
        "requestId in {body}"
    );
}

/// The agent detail's `isOnline` (with `token` for private agents).
pub async fn is_online(app: &TestApp, id: &str, token: Option<&str>) -> bool {
    let (status, body) = app.get(&format!("/api/v1/agents/{id}"), token).await;
    assert_eq!(status, StatusCode::OK, "agent detail: {body}");
    body["isOnline"]
        .as_bool()
        .unwrap_or_else(|| panic!("isOnline in {body}"))
}

/// Polls the agent detail until `isOnline == expected` (at most 10 s).
pub async fn wait_online(app: &TestApp, id: &str, token: Option<&str>, expected: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if is_online(app, id, token).await == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "agent {id}: isOnline never became {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------------------------------
// The scripted agent
// ------------------------------------------------------------------------------------------

#[derive(Debug)]
pub enum Event {
    /// Any text frame the test must see (tool calls, errors, unknown types).
    Frame(Value),
    /// The socket ended: the close frame's code and reason, if any.
    Closed(Option<(u16, String)>),
}

enum Cmd {
    Send(Value),
    Close,
}

#[derive(Clone)]
pub struct AgentOpts {
    pub answer_pings: bool,
    /// Answer every `tool_call_request` at once with the echo result (still reported).
    pub auto_echo: bool,
    pub tools: Value,
}

impl Default for AgentOpts {
    fn default() -> Self {
        Self {
            answer_pings: true,
            auto_echo: false,
            tools: echo_tools(),
        }
    }
}

/// A WebSocket agent run by a background task: it answers `ping` and `tools_list_request` by
/// itself and reports everything else to the test, which scripts the answers to calls.
pub struct MockAgent {
    /// The `agent_connected` frame.
    pub connected: Value,
    events: mpsc::UnboundedReceiver<Event>,
    cmds: Option<mpsc::UnboundedSender<Cmd>>,
    pub pings: Arc<Mutex<Vec<Value>>>,
    pub tools_requests: Arc<Mutex<Vec<Value>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl MockAgent {
    pub async fn connect(app: &TestApp, key: &str) -> Self {
        Self::connect_with(app.port, key, AgentOpts::default()).await
    }

    pub async fn connect_opts(app: &TestApp, key: &str, opts: AgentOpts) -> Self {
        Self::connect_with(app.port, key, opts).await
    }

    pub async fn connect_with(port: u16, key: &str, opts: AgentOpts) -> Self {
        let mut ws = ws_connect(port, "/api/v1/agents/ws", key)
            .await
            .unwrap_or_else(|status| panic!("agent ws refused with {status}"));
        let connected = next_json(&mut ws, Duration::from_secs(10)).await;
        assert_eq!(
            connected["type"],
            json!("agent_connected"),
            "first frame: {connected}"
        );
        let (event_tx, events) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let pings = Arc::new(Mutex::new(Vec::new()));
        let tools_requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(run_agent(
            ws,
            opts,
            event_tx,
            cmd_rx,
            pings.clone(),
            tools_requests.clone(),
        ));
        Self {
            connected,
            events,
            cmds: Some(cmd_tx),
            pings,
            tools_requests,
            task: Some(task),
        }
    }

    /// The next event, or None after `within`.
    pub async fn next_event(&mut self, within: Duration) -> Option<Event> {
        tokio::time::timeout(within, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next `tool_call_request` (at most 10 s); anything else first is a failure.
    pub async fn next_call(&mut self) -> Value {
        match self.next_event(Duration::from_secs(10)).await {
            Some(Event::Frame(frame)) if frame["type"] == json!("tool_call_request") => frame,
            other => panic!("expected a tool_call_request, got {other:?}"),
        }
    }

    /// The next frame of any type (at most 10 s).
    pub async fn next_frame(&mut self) -> Value {
        match self.next_event(Duration::from_secs(10)).await {
            Some(Event::Frame(frame)) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Waits (at most 10 s) for the socket to end; returns the close code and reason.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        match self.next_event(Duration::from_secs(10)).await {
            Some(Event::Closed(close)) => close,
            other => panic!("expected the socket to close, got {other:?}"),
        }
    }

    /// Asserts nothing reaches the test during `window`.
    pub async fn expect_quiet(&mut self, window: Duration) {
        if let Some(event) = self.next_event(window).await {
            panic!("expected no frame, got {event:?}");
        }
    }

    pub fn send(&self, frame: Value) {
        self.cmds
            .as_ref()
            .expect("agent connected")
            .send(Cmd::Send(frame))
            .expect("agent task alive");
    }

    pub fn answer(&self, call: &Value, payload: Value) {
        self.send(json!({
            "type": "tool_call_response",
            "requestId": call["requestId"],
            "timestamp": now(),
            "payload": payload,
        }));
    }

    /// Answers a call with the echo of its arguments.
    pub fn answer_echo(&self, call: &Value) {
        self.answer(
            call,
            json!({ "result": echo_result(&call["payload"]["params"]["arguments"]) }),
        );
    }

    pub fn answer_error(&self, call: &Value, message: &str) {
        self.answer(call, json!({ "error": { "message": message } }));
    }

    /// Closes the socket (close frame) and waits for the background task to end.
    pub async fn disconnect(mut self) {
        if let Some(cmds) = self.cmds.take() {
            let _ = cmds.send(Cmd::Close);
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for MockAgent {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Checks a `tool_call_request` frame for the echo tool with `message`; returns its requestId.
pub fn assert_echo_request(call: &Value, message: &str) -> String {
    assert_eq!(call["type"], json!("tool_call_request"), "{call}");
    assert_eq!(call["payload"]["params"]["name"], json!("echo"), "{call}");
    assert_eq!(
        call["payload"]["params"]["arguments"],
        json!({ "message": message }),
        "{call}"
    );
    call["requestId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("requestId in {call}"))
        .to_string()
}

async fn run_agent(
    mut ws: WsStream,
    opts: AgentOpts,
    events: mpsc::UnboundedSender<Event>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    pings: Arc<Mutex<Vec<Value>>>,
    tools_requests: Arc<Mutex<Vec<Value>>>,
) {
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Send(frame)) => {
                    if ws.send(Message::text(frame.to_string())).await.is_err() {
                        let _ = events.send(Event::Closed(None));
                        return;
                    }
                }
                Some(Cmd::Close) | None => {
                    let _ = ws.close(None).await;
                    // Let the hub's close frame arrive before the stream is dropped.
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    return;
                }
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                        let _ = events.send(Event::Frame(Value::String(text.to_string())));
                        continue;
                    };
                    match frame["type"].as_str() {
                        Some("ping") => {
                            pings.lock().expect("lock").push(frame.clone());
                            if opts.answer_pings {
                                let pong = json!({
                                    "type": "pong",
                                    "requestId": frame["requestId"],
                                    "timestamp": now(),
                                    "payload": {},
                                });
                                let _ = ws.send(Message::text(pong.to_string())).await;
                            }
                        }
                        Some("tools_list_request") => {
                            tools_requests.lock().expect("lock").push(frame.clone());
                            let answer = json!({
                                "type": "tools_list_response",
                                "requestId": frame["requestId"],
                                "timestamp": now(),
                                "payload": { "tools": opts.tools },
                            });
                            let _ = ws.send(Message::text(answer.to_string())).await;
                        }
                        Some("tool_call_request") if opts.auto_echo => {
                            let answer = json!({
                                "type": "tool_call_response",
                                "requestId": frame["requestId"],
                                "timestamp": now(),
                                "payload": {
                                    "result": echo_result(&frame["payload"]["params"]["arguments"])
                                },
                            });
                            let _ = ws.send(Message::text(answer.to_string())).await;
                            let _ = events.send(Event::Frame(frame));
                        }
                        _ => {
                            let _ = events.send(Event::Frame(frame));
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    let _ = events.send(Event::Closed(close));
                    // Finish the closing handshake.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    let _ = events.send(Event::Closed(None));
                    return;
                }
            },
        }
    }
}

/// Polls until `f` holds (at most 10 s).
pub async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

#[actix_web::test]
async fn agent_connects_gets_agent_connected_then_tools_request() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (id, key) = ws_agent(&app, &token, "ws-hello", 0).await;
    assert!(!is_online(&app, &id, None).await, "offline before connect");

    let mut ws = ws_connect(app.port, "/api/v1/agents/ws", &key)
        .await
        .expect("upgrade accepted");
    let first = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(first["type"], json!("agent_connected"), "{first}");
    assert_eq!(first["agentId"], json!(id), "{first}");
    let ts = first["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("timestamp in {first}"));
    chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|_| panic!("timestamp {ts}"));

    let second = next_json(&mut ws, Duration::from_secs(10)).await;
    assert_eq!(second["type"], json!("tools_list_request"), "{second}");
    let rid = second["requestId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("requestId in {second}"))
        .to_string();
    assert!(second.get("timestamp").is_some(), "timestamp in {second}");
    send_json(
        &mut ws,
        &json!({
            "type": "tools_list_response",
            "requestId": rid,
            "timestamp": now(),
            "payload": { "tools": echo_tools() },
        }),
    )
    .await;

    wait_online(&app, &id, None, true).await;
    // A live tools read asks the agent again, over the same socket.
    let ((status, body), ()) = tokio::join!(
        async {
            app.get(&format!("/api/v1/agents/{id}/tools"), Some(&token))
                .await
        },
        async {
            let ask = next_json(&mut ws, Duration::from_secs(10)).await;
            assert_eq!(ask["type"], json!("tools_list_request"), "{ask}");
            assert_ne!(ask["requestId"], json!(rid), "a new requestId: {ask}");
            send_json(
                &mut ws,
                &json!({
                    "type": "tools_list_response",
                    "requestId": ask["requestId"],
                    "timestamp": now(),
                    "payload": { "tools": echo_tools() },
                }),
            )
            .await;
        }
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "agentId": id, "tools": echo_tools(), "source": "live" })
    );
    drop(ws);
    wait_online(&app, &id, None, false).await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn upgrade_refuses_http_agents_and_bad_keys() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (agent, http_key) = app
        .create_agent(
            &token,
            &json!({
                "name": "Http Agent",
                "slug": "http-agent",
                "connectionMode": "http",
                "mcpEndpoint": "https://my-agent.example.com/mcp",
            }),
        )
        .await;
    let http_id = agent["id"].as_str().expect("id").to_string();

    let status = ws_connect(app.port, "/api/v1/agents/ws", &http_key)
        .await
        .map(|_| ())
        .expect_err("an http agent is refused");
    assert_eq!(status, 400, "http agent upgrade");
    assert!(!is_online(&app, &http_id, None).await);

    let bogus = format!("amp_{}", "0".repeat(48));
    for key in [bogus.as_str(), "amp_short", "not-a-key"] {
        let status = ws_connect(app.port, "/api/v1/agents/ws", key)
            .await
            .map(|_| ())
            .expect_err("a bad key is refused");
        assert_eq!(status, 401, "bad key {key}");
    }

    // No Authorization header at all.
    let url = format!("ws://127.0.0.1:{}/api/v1/agents/ws", app.port);
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("anonymous agent socket accepted"),
    }
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn tools_are_live_while_connected_and_cached_after() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (id, key) = ws_agent(&app, &token, "ws-tools", 0).await;
    let tools = json!([
        { "name": "echo", "description": "Echo a message",
          "inputSchema": { "type": "object", "properties": { "message": { "type": "string" } } } },
        { "name": "upper", "description": "Upper-case a text",
          "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } } },
    ]);
    let agent = MockAgent::connect_opts(
        &app,
        &key,
        AgentOpts {
            tools: tools.clone(),
            ..AgentOpts::default()
        },
    )
    .await;
    assert_eq!(agent.connected["agentId"], json!(id));
    let requests = agent.tools_requests.clone();
    wait_until("the tools_list_request after connecting", || {
        !requests.lock().expect("lock").is_empty()
    })
    .await;
    let before = requests.lock().expect("lock").len();

    let (status, body) = app
        .get(&format!("/api/v1/agents/{id}/tools"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "agentId": id, "tools": tools, "source": "live" })
    );
    assert!(
        requests.lock().expect("lock").len() > before,
        "a live tools answer must come from a new tools_list_request"
    );
    for req in requests.lock().expect("lock").iter() {
        assert!(
            req["requestId"].as_str().is_some_and(|s| !s.is_empty()),
            "requestId in {req}"
        );
    }

    agent.disconnect().await;
    wait_online(&app, &id, None, false).await;
    let (status, body) = app
        .get(&format!("/api/v1/agents/{id}/tools"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "agentId": id, "tools": tools, "source": "cache" })
    );
    // Anonymous readers see the public agent's tools too.
    let (status, body) = app.get(&format!("/api/v1/agents/{id}/tools"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tools"], tools);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn presence_online_flag_and_online_filter() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (id, key) = ws_agent(&app, &token, "ws-presence", 0).await;
    let (other_id, _) = ws_agent(&app, &token, "ws-never", 0).await;

    let listed = |body: &Value, id: &str| {
        body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("data in {body}"))
            .iter()
            .any(|a| a["id"] == json!(id))
    };

    assert!(!is_online(&app, &id, None).await);
    let (status, body) = app.get("/api/v1/agents?online=true", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !listed(&body, &id),
        "offline agent listed as online: {body}"
    );

    let agent = MockAgent::connect(&app, &key).await;
    wait_online(&app, &id, None, true).await;
    let (status, body) = app.get("/api/v1/agents?online=true", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        listed(&body, &id),
        "online agent missing from online=true: {body}"
    );
    assert!(
        !listed(&body, &other_id),
        "offline agent in online=true: {body}"
    );
    let (status, body) = app.get("/api/v1/agents?online=false", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!listed(&body, &id), "online agent in online=false: {body}");
    assert!(
        listed(&body, &other_id),
        "offline agent missing from online=false: {body}"
    );
    let (_, body) = app.get("/api/v1/agents", None).await;
    assert!(listed(&body, &id) && listed(&body, &other_id), "{body}");

    agent.disconnect().await;
    wait_online(&app, &id, None, false).await;
    let (_, body) = app.get("/api/v1/agents?online=true", None).await;
    assert!(
        !listed(&body, &id),
        "disconnected agent still online: {body}"
    );
    let (_, body) = app.get("/api/v1/agents?online=false", None).await;
    assert!(listed(&body, &id), "disconnected agent not offline: {body}");

    // Reconnecting brings it back.
    let agent = MockAgent::connect(&app, &key).await;
    wait_online(&app, &id, None, true).await;
    drop(agent);
    wait_online(&app, &id, None, false).await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn heartbeat_pings_keep_an_answering_agent_online() {
    let app = spawn_app_with(|s| {
        s.heartbeat_secs = 1;
        s.pong_timeout_secs = 1;
    })
    .await;
    let (token, _) = app.register_user("owner").await;
    let (id, key) = ws_agent(&app, &token, "ws-beat", 0).await;
    let mut agent = MockAgent::connect(&app, &key).await;
    let pings = agent.pings.clone();
    wait_until("three pings", || pings.lock().expect("lock").len() >= 3).await;
    {
        let pings = pings.lock().expect("lock");
        let mut ids = std::collections::HashSet::new();
        for ping in pings.iter() {
            assert_eq!(ping["type"], json!("ping"), "{ping}");
            let rid = ping["requestId"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| panic!("requestId in {ping}"));
            assert!(
                ids.insert(rid.to_string()),
                "ping requestIds repeat: {ping}"
            );
        }
    }
    // Still connected: nothing was closed, still online.
    if let Some(event) = agent.next_event(Duration::from_millis(1)).await {
        panic!("unexpected event on a healthy socket: {event:?}");
    }
    assert!(is_online(&app, &id, None).await);
    agent.disconnect().await;
    wait_online(&app, &id, None, false).await;
    app.assert_ledger_balanced().await;
}

/// Heartbeat 1 s and pong timeout 1 s, as the brief asks for.
#[actix_web::test]
async fn silent_agent_is_closed_with_1008_pong_timeout() {
    let app = spawn_app_with(|s| {
        s.heartbeat_secs = 1;
        s.pong_timeout_secs = 1;
    })
    .await;
    let (token, _) = app.register_user("owner").await;
    let (id, key) = ws_agent(&app, &token, "ws-silent", 0).await;
    let mut agent = MockAgent::connect_opts(
        &app,
        &key,
        AgentOpts {
            answer_pings: false,
            ..AgentOpts::default()
        },
    )
    .await;
    wait_online(&app, &id, None, true).await;
    let close = match agent.next_event(Duration::from_secs(10)).await {
        Some(Event::Closed(close)) => close,
        other => panic!(
            "a silent agent (heartbeat 1 s, pong timeout 1 s) was not closed within 10 s \
             after {} unanswered pings; got {other:?}",
            agent.pings.lock().expect("lock").len()
        ),
    };
    assert_eq!(
        close,
        Some((1008, "pong timeout".to_string())),
        "close frame of a silent agent"
    );
    assert!(
        !agent.pings.lock().expect("lock").is_empty(),
        "closed before any ping"
    );
    wait_online(&app, &id, None, false).await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn silent_agent_is_closed_with_1008_pong_timeout_when_pong_timeout_is_shorter() {
    let app = spawn_app_with(|s| {
        s.heartbeat_secs = 2;
        s.pong_timeout_secs = 1;
    })
    .await;
    let (token, _) = app.register_user("owner").await;
    let (id, key) = ws_agent(&app, &token, "ws-silent-2", 0).await;
    let mut agent = MockAgent::connect_opts(
        &app,
        &key,
        AgentOpts {
            answer_pings: false,
            ..AgentOpts::default()
        },
    )
    .await;
    wait_online(&app, &id, None, true).await;
    let close = agent.closed().await;
    assert_eq!(
        close,
        Some((1008, "pong timeout".to_string())),
        "close frame of a silent agent"
    );
    assert!(
        !agent.pings.lock().expect("lock").is_empty(),
        "closed before any ping"
    );
    wait_online(&app, &id, None, false).await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn second_connection_replaces_the_first() {
    let app = spawn_app().await;
    let (owner, _) = app.register_user("owner").await;
    let (caller_token, _) = app.register_user("caller").await;
    let (id, key) = ws_agent(&app, &owner, "ws-single", 3).await;
    let (_, caller_key) = ws_agent(&app, &caller_token, "ws-caller", 0).await;

    let mut first = MockAgent::connect(&app, &key).await;
    wait_online(&app, &id, None, true).await;
    let mut second = MockAgent::connect(&app, &key).await;
    let close = first.closed().await;
    assert_eq!(
        close,
        Some((1000, "replaced by new connection".to_string())),
        "close frame of the replaced connection"
    );
    assert!(
        is_online(&app, &id, None).await,
        "online on the new connection"
    );

    let (resp, ()) = tokio::join!(
        async { mcp_call(&app, &caller_key, &echo_call(&id, "Hello!", None)).await },
        async {
            let call = second.next_call().await;
            assert_echo_request(&call, "Hello!");
            second.answer_echo(&call);
        }
    );
    assert_completed(resp.0, &resp.1, "Hello!", 3);
    assert!(
        first.next_event(Duration::from_millis(1)).await.is_none(),
        "the replaced connection saw more frames"
    );
    assert!(is_online(&app, &id, None).await);
    assert_eq!(balance(&app, &caller_token).await, (9997, 0));
    assert_eq!(balance(&app, &owner).await, (10003, 0));
    second.disconnect().await;
    wait_online(&app, &id, None, false).await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn answer_with_unknown_request_id_gets_an_error_frame_and_changes_nothing() {
    let app = spawn_app().await;
    let (owner, _) = app.register_user("owner").await;
    let (caller_token, _) = app.register_user("caller").await;
    let (id, key) = ws_agent(&app, &owner, "ws-stray", 4).await;
    let (_, caller_key) = ws_agent(&app, &caller_token, "ws-caller", 0).await;
    let mut agent = MockAgent::connect(&app, &key).await;

    agent.send(json!({
        "type": "tool_call_response",
        "requestId": "no-such-request",
        "timestamp": now(),
        "payload": { "result": { "content": [{ "type": "text", "text": "stray" }] } },
    }));
    let frame = agent.next_frame().await;
    assert_eq!(
        frame["type"],
        json!("error"),
        "answer to a stray response: {frame}"
    );
    assert_eq!(balance(&app, &caller_token).await, (10000, 0));
    assert_eq!(balance(&app, &owner).await, (10000, 0));
    assert!(rows_of(&app, &owner, "earning").await.is_empty());

    // The connection still works and the next call is billed exactly once.
    let (resp, ()) = tokio::join!(
        async { mcp_call(&app, &caller_key, &echo_call(&id, "after", None)).await },
        async {
            let call = agent.next_call().await;
            assert_echo_request(&call, "after");
            agent.answer_echo(&call);
        }
    );
    assert_completed(resp.0, &resp.1, "after", 4);
    assert_eq!(balance(&app, &caller_token).await, (9996, 0));
    assert_eq!(balance(&app, &owner).await, (10004, 0));
    agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

/// The Registry actor answers with the registry's counts: a connected agent is counted at once
/// and uncounted when its socket ends.
#[actix_web::test]
async fn the_registry_actor_counts_connected_agents() {
    use actors::registry::Snapshot;
    let app = spawn_app().await;
    let (token, _) = app.register_user("counted").await;
    let (_, key) = app
        .create_ws_agent(&token, "Counted", "counted-agent")
        .await;
    let before = app.registry.send(Snapshot).await.unwrap();
    assert_eq!(before.connected_agents, 0);
    let ws = app.connect_agent(&key).await;
    let during = app.registry.send(Snapshot).await.unwrap();
    assert_eq!(during.connected_agents, 1);
    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = app.registry.send(Snapshot).await.unwrap();
        if after.connected_agents == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still counted after the socket closed: {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.assert_ledger_balanced().await;
}
