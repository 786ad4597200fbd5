//! HTTP agents built with the official MCP SDKs, called through `POST /api/v1/mcp/call` with
//! billing checked: the Python SDK (`mcp` on PyPI, tests/py/mcp_server.py) and the TypeScript
//! SDK (`@modelcontextprotocol/sdk` on npm, tests/js/mcp_server.js), each in its default
//! stateful Streamable HTTP mode (`initialize`, `Mcp-Session-Id`, answers as SSE) and in its
//! stateless JSON mode; a session the server forgot (it restarted) is re-initialised. Then the
//! outbound guards the SDK agents rely on: host names that resolve to loopback are refused
//! without private URLs, and endless answers are cut off by size and by the deadline.
//!
//! The servers run from tests/py/.venv and tests/js/node_modules, which `scripts/test` installs;
//! a missing one fails the test, it is never skipped.

use crate::helpers::{TestApp, assert_validation, spawn_app_with};
use actix_web::{App, HttpResponse, HttpServer, web};
use actors::outbound::{DEFAULT_MAX_BYTES, Outbound, OutboundError};
use futures_util::stream;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::{
    net::{IpAddr, TcpListener},
    path::Path,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

// ---------------------------------------------------------------------------------------------
// The SDK servers

#[derive(Debug, Clone, Copy)]
enum Sdk {
    Python,
    Node,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The SDK's default: `initialize` opens a session, answers are SSE.
    Stateful,
    /// No session, JSON answers.
    Stateless,
}

/// One request the server answered, as it logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: Option<String>,
    session: bool,
    status: u16,
}

/// An SDK-built MCP server on `http://127.0.0.1:<port>/mcp`; killed when dropped.
struct SdkServer {
    sdk: Sdk,
    port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    child: tokio::process::Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl SdkServer {
    async fn start(sdk: Sdk, mode: Mode) -> Self {
        Self::start_on(sdk, mode, free_port()).await
    }

    async fn start_on(sdk: Sdk, mode: Mode, port: u16) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cmd = match sdk {
            Sdk::Python => {
                let mut cmd = tokio::process::Command::new(crate::mail_support::python());
                cmd.arg(root.join("tests/py/mcp_server.py"));
                cmd
            }
            Sdk::Node => {
                let sdk_dir = root.join("tests/js/node_modules/@modelcontextprotocol/sdk");
                assert!(
                    sdk_dir.exists(),
                    "{} is missing: run `cd tests/js && npm ci` (scripts/test does)",
                    sdk_dir.display()
                );
                let mut cmd = tokio::process::Command::new("node");
                cmd.arg(root.join("tests/js/mcp_server.js"));
                cmd
            }
        };
        let mode_arg = match mode {
            Mode::Stateful => "stateful",
            Mode::Stateless => "stateless",
        };
        let mut child = cmd
            .arg(port.to_string())
            .arg(mode_arg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start the {sdk:?} MCP server (is it installed?): {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        if !matches!(&ready, Ok(Ok(Some(line))) if line == "READY") {
            let _ = child.start_kill();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), err.read_to_string(&mut stderr))
                        .await;
            }
            panic!("the {sdk:?} MCP server did not start ({ready:?}); stderr:\n{stderr}");
        }
        // Its stderr (the SDKs' request logs) is drained so it can never block the server.
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                sink.lock().unwrap().push(Seen {
                    method: v["method"].as_str().map(str::to_string),
                    session: v["session"] == json!(true),
                    status: v["status"].as_u64().unwrap_or(0) as u16,
                });
            }
        });
        Self {
            sdk,
            port,
            log,
            child,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The requests answered so far. The server logs a request after answering it, so this
    /// waits (at most 5 s) until `at_least` are there, and a little for stragglers.
    async fn seen(&self, at_least: usize) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.log.lock().unwrap().len() < at_least && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.log.lock().unwrap().clone()
    }

    /// Kills the server (SIGKILL) and waits for it: everything it knew is gone.
    async fn kill(mut self) {
        self.child.kill().await.expect("kill the MCP server");
    }
}

fn count(seen: &[Seen], method: &str) -> usize {
    seen.iter()
        .filter(|s| s.method.as_deref() == Some(method))
        .count()
}

// ---------------------------------------------------------------------------------------------
// The hub side

async fn app(call_timeout_secs: u64) -> TestApp {
    spawn_app_with(|s| {
        s.allow_private_urls = true;
        s.rate_limit_per_min = 0;
        s.call_timeout_secs = call_timeout_secs;
    })
    .await
}

/// An owner with an `http` agent at `endpoint` priced `price` per call, and a caller with a
/// WebSocket agent whose key pays. Returns (agent id, owner JWT, owner's agent key, caller JWT,
/// caller key).
async fn http_agent(
    app: &TestApp,
    endpoint: &str,
    price: i64,
) -> (String, String, String, String, String) {
    let (owner, _) = app.register_user("owner").await;
    let (caller, _) = app.register_user("caller").await;
    let (agent, agent_key) = app
        .create_agent(
            &owner,
            &json!({ "name": "Sdk Agent", "slug": "sdk-agent", "connectionMode": "http",
                "mcpEndpoint": endpoint, "pricing": { "model": "per-call", "pricePerCall": price } }),
        )
        .await;
    let (_, caller_key) = app.create_ws_agent(&caller, "Caller", "caller-agent").await;
    (
        agent["id"].as_str().unwrap().to_string(),
        owner,
        agent_key,
        caller,
        caller_key,
    )
}

async fn call(app: &TestApp, key: &str, target: &str, tool: &str) -> (StatusCode, Value) {
    app.post_json(
        "/api/v1/mcp/call",
        &json!({ "targetAgentId": target, "toolName": tool,
            "arguments": { "message": "Hello!" }, "maxCost": 100 }),
        Some(key),
    )
    .await
}

async fn balance(app: &TestApp, key: &str) -> (i64, i64) {
    let (status, b) = app.get("/api/v1/billing/balance", Some(key)).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    (
        b["balance"].as_i64().unwrap(),
        b["reserved"].as_i64().unwrap(),
    )
}

/// The (type, amount) of the settled movements of `jwt`'s account that name `agent_id`.
async fn movements(app: &TestApp, jwt: &str, agent_id: &str) -> Vec<(String, i64)> {
    let (status, list) = app
        .get("/api/v1/billing/transactions?limit=100", Some(jwt))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut out: Vec<(String, i64)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["agentId"] == json!(agent_id))
        .map(|t| {
            (
                t["type"].as_str().unwrap().to_string(),
                t["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn assert_completed(status: StatusCode, body: &Value, price: i64) {
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    assert_eq!(body["result"]["content"][0]["type"], "text", "{body}");
    assert_eq!(
        body["result"]["content"][0]["text"], "Echo: Hello!",
        "{body}"
    );
    assert_eq!(body["billing"]["tokensCharged"], price, "{body}");
    assert!(body["billing"]["transactionId"].is_string(), "{body}");
}

fn assert_failed_refunded(status: StatusCode, body: &Value, message: &str) {
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["billing"]["tokensCharged"], 0, "{body}");
    assert_eq!(body["billing"]["transactionId"], Value::Null, "{body}");
    let got = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        got.contains(message),
        "error should mention {message:?}: {body}"
    );
}

/// The tools are listed live; `echo` completes and is paid (caller charged, owner credited);
/// `fail` (the SDK's isError result) fails with nothing charged; a second `echo` completes
/// again. Returns the requests the server saw.
async fn paid_and_failed_calls(sdk: Sdk, mode: Mode) -> Vec<Seen> {
    let server = SdkServer::start(sdk, mode).await;
    let app = app(20).await;
    let price = 5;
    let (id, owner, agent_key, caller, caller_key) =
        http_agent(&app, &server.endpoint(), price).await;

    let (status, tools) = app.get(&format!("/api/v1/agents/{id}/tools"), None).await;
    assert_eq!(status, StatusCode::OK, "{tools}");
    assert_eq!(tools["source"], "live", "{tools}");
    let mut names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools array: {tools}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["echo", "fail"], "{tools}");
    let echo = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "echo")
        .unwrap();
    assert_eq!(
        echo["inputSchema"]["properties"]["message"]["type"], "string",
        "{tools}"
    );

    let (status, body) = call(&app, &caller_key, &id, "echo").await;
    assert_completed(status, &body, price);
    assert_eq!(balance(&app, &caller_key).await, (10000 - price, 0));
    assert_eq!(balance(&app, &agent_key).await, (10000 + price, 0));

    let (status, body) = call(&app, &caller_key, &id, "fail").await;
    assert_failed_refunded(status, &body, "tool broke");
    assert_eq!(balance(&app, &caller_key).await, (10000 - price, 0));
    assert_eq!(balance(&app, &agent_key).await, (10000 + price, 0));

    let (status, body) = call(&app, &caller_key, &id, "echo").await;
    assert_completed(status, &body, price);
    assert_eq!(balance(&app, &caller_key).await, (10000 - 2 * price, 0));
    assert_eq!(balance(&app, &agent_key).await, (10000 + 2 * price, 0));

    // The ledger shows the two paid calls, and nothing for the failed one.
    let charge = ("charge".to_string(), -price);
    let earning = ("earning".to_string(), price);
    assert_eq!(
        movements(&app, &caller, &id).await,
        [charge.clone(), charge]
    );
    assert_eq!(
        movements(&app, &owner, &id).await,
        [earning.clone(), earning]
    );
    let (_, agent_view) = app.get(&format!("/api/v1/agents/{id}"), None).await;
    assert_eq!(agent_view["stats"]["totalCalls"], 3, "{agent_view}");
    assert_eq!(agent_view["stats"]["completedCalls"], 2, "{agent_view}");
    assert_eq!(agent_view["stats"]["failedCalls"], 1, "{agent_view}");
    app.assert_ledger_balanced().await;

    // tools/list and the three calls reached the server (plus, when stateful, the handshake).
    let seen = server.seen(4).await;
    assert_eq!(
        count(&seen, "tools/list"),
        1 + count_refused(&seen, "tools/list")
    );
    assert_eq!(
        count(&seen, "tools/call"),
        3 + count_refused(&seen, "tools/call")
    );
    match mode {
        Mode::Stateful => {
            // One handshake, whose session every answered call then carried.
            assert_eq!(count(&seen, "initialize"), 1, "{:?}: {seen:?}", server.sdk);
            assert!(
                seen.iter()
                    .filter(|s| s.status == 200 && s.method.as_deref() != Some("initialize"))
                    .all(|s| s.session),
                "{seen:?}"
            );
        }
        Mode::Stateless => {
            // Nothing refused, so no handshake and no session.
            assert_eq!(count(&seen, "initialize"), 0, "{seen:?}");
            assert!(
                seen.iter().all(|s| !s.session && s.status == 200),
                "{seen:?}"
            );
        }
    }
    seen
}

fn count_refused(seen: &[Seen], method: &str) -> usize {
    seen.iter()
        .filter(|s| s.method.as_deref() == Some(method) && s.status >= 400)
        .count()
}

#[actix_web::test]
async fn python_sdk_stateful_agent_is_called_and_paid() {
    let seen = paid_and_failed_calls(Sdk::Python, Mode::Stateful).await;
    // The SDK refused the first request, which had no session.
    assert_eq!(
        seen[0],
        Seen {
            method: Some("tools/list".into()),
            session: false,
            status: 400
        },
        "{seen:?}"
    );
}

#[actix_web::test]
async fn python_sdk_stateless_json_agent_is_called_and_paid() {
    paid_and_failed_calls(Sdk::Python, Mode::Stateless).await;
}

#[actix_web::test]
async fn node_sdk_stateful_agent_is_called_and_paid() {
    let seen = paid_and_failed_calls(Sdk::Node, Mode::Stateful).await;
    assert_eq!(
        seen[0],
        Seen {
            method: Some("tools/list".into()),
            session: false,
            status: 400
        },
        "{seen:?}"
    );
}

#[actix_web::test]
async fn node_sdk_stateless_json_agent_is_called_and_paid() {
    paid_and_failed_calls(Sdk::Node, Mode::Stateless).await;
}

/// The server restarts between two calls (same port, sessions forgotten): the hub's next call
/// carries the old session, is refused, and is retried after one new handshake.
async fn forgotten_session_is_reinitialised(sdk: Sdk) {
    let first = SdkServer::start(sdk, Mode::Stateful).await;
    let port = first.port;
    let app = app(20).await;
    let price = 4;
    let (id, _, agent_key, _, caller_key) = http_agent(&app, &first.endpoint(), price).await;

    let (status, body) = call(&app, &caller_key, &id, "echo").await;
    assert_completed(status, &body, price);
    let before = first.seen(1).await;
    assert_eq!(count(&before, "initialize"), 1, "{before:?}");
    first.kill().await;

    let second = SdkServer::start_on(sdk, Mode::Stateful, port).await;
    let (status, body) = call(&app, &caller_key, &id, "echo").await;
    assert_completed(status, &body, price);
    let (status, body) = call(&app, &caller_key, &id, "echo").await;
    assert_completed(status, &body, price);
    assert_eq!(balance(&app, &caller_key).await, (10000 - 3 * price, 0));
    assert_eq!(balance(&app, &agent_key).await, (10000 + 3 * price, 0));

    let seen = second.seen(4).await;
    // First the old session, which this server never issued: refused (the Python SDK answers
    // 404 as the specification says, the TypeScript SDK's example 400).
    assert_eq!(seen[0].method.as_deref(), Some("tools/call"), "{seen:?}");
    assert!(seen[0].session, "{seen:?}");
    assert!(
        seen[0].status == 404 || seen[0].status == 400,
        "{sdk:?}: {seen:?}"
    );
    // Then one handshake, and both calls answered in the new session.
    assert_eq!(count(&seen, "initialize"), 1, "{seen:?}");
    let answered: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method.as_deref() == Some("tools/call") && s.status == 200)
        .collect();
    assert_eq!(answered.len(), 2, "{seen:?}");
    assert!(answered.iter().all(|s| s.session), "{seen:?}");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn python_sdk_session_lost_in_a_restart_is_reinitialised() {
    forgotten_session_is_reinitialised(Sdk::Python).await;
}

#[actix_web::test]
async fn node_sdk_session_lost_in_a_restart_is_reinitialised() {
    forgotten_session_is_reinitialised(Sdk::Node).await;
}

// ---------------------------------------------------------------------------------------------
// Outbound guards

/// A local HTTP server counting requests: `/ok` answers JSON-RPC, `/endless` streams SSE
/// comments forever as fast as it can, `/huge` declares a body over the limit, `/drip` sends
/// a few bytes every 100 ms forever.
fn start_mock() -> (u16, Arc<AtomicUsize>) {
    let hits = web::Data::new(AtomicUsize::new(0));
    let shared = hits.clone().into_inner();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    fn endless() -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> {
        let chunk = web::Bytes::from(": keep-alive\n\n".repeat(4096));
        stream::repeat_with(move || Ok(chunk.clone()))
    }
    let server = HttpServer::new(move || {
        App::new()
            .app_data(hits.clone())
            .wrap_fn(|req, srv| {
                if let Some(hits) = req.app_data::<web::Data<AtomicUsize>>() {
                    hits.fetch_add(1, Ordering::SeqCst);
                }
                actix_web::dev::Service::call(srv, req)
            })
            .route(
                "/ok",
                web::post().to(|| async {
                    HttpResponse::Ok().json(json!({ "jsonrpc": "2.0", "id": 1, "result": {} }))
                }),
            )
            .route(
                "/endless",
                web::post().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/event-stream")
                        .streaming(endless())
                }),
            )
            .route(
                "/huge",
                web::post().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .no_chunking(DEFAULT_MAX_BYTES as u64 * 2)
                        .streaming(endless())
                }),
            )
            .route(
                "/drip",
                web::post().to(|| async {
                    let drip = stream::unfold((), |()| async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((
                            Ok::<_, actix_web::Error>(web::Bytes::from_static(b": ping\n\n")),
                            (),
                        ))
                    });
                    HttpResponse::Ok()
                        .content_type("text/event-stream")
                        .streaming(drip)
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .disable_signals()
    .run();
    actix_web::rt::spawn(server);
    (port, shared)
}

/// Host names this machine's /etc/hosts maps to a loopback address, and `localhost`.
fn loopback_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if ip.is_loopback() {
            names.extend(fields.map(str::to_string));
        }
    }
    names.sort();
    names.dedup();
    names
}

#[actix_web::test]
async fn host_names_resolving_to_loopback_are_refused_without_private_urls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (port, hits) = start_mock();
    let names = loopback_names();

    // The control: with private URLs allowed, `localhost` does reach the mock.
    let lax = Outbound::new(true).unwrap();
    let answer = lax
        .send(
            Method::POST,
            &format!("http://localhost:{port}/ok"),
            Default::default(),
            Some(b"{}".to_vec()),
            Duration::from_secs(10),
        )
        .await
        .expect("localhost reaches the mock when private URLs are allowed");
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(hits.swap(0, Ordering::SeqCst), 1);

    // Without: every such name is refused, by the URL rules or by the resolver (which keeps
    // only public addresses), and nothing reaches the mock.
    let strict = Outbound::new(false).unwrap();
    for name in &names {
        for scheme in ["http", "https"] {
            let url = format!("{scheme}://{name}:{port}/ok");
            let res = strict
                .send(
                    Method::POST,
                    &url,
                    Default::default(),
                    Some(b"{}".to_vec()),
                    Duration::from_secs(10),
                )
                .await;
            let refused = match &res {
                Err(OutboundError::Refused(_)) => true,
                Err(OutboundError::Request(m)) => m.contains("no public address"),
                _ => false,
            };
            assert!(refused, "{url}: {res:?}");
        }
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a request reached loopback");

    // Through the hub: registration refuses what the URL rules can see (names without a dot);
    // `localhost` ("allowed for development") and names it cannot judge as written are
    // registered, but calling them fails and refunds. Either way nothing reaches loopback.
    let app = spawn_app_with(|s| {
        s.allow_private_urls = false;
        s.call_timeout_secs = 10;
    })
    .await;
    let (owner, _) = app.register_user("owner").await;
    let (caller, _) = app.register_user("caller").await;
    let (_, caller_key) = app.create_ws_agent(&caller, "Caller", "caller-agent").await;
    for (i, name) in names.iter().enumerate() {
        let (status, body) = app
            .post_json(
                "/api/v1/agents",
                &json!({ "name": "Loop", "slug": format!("loop-{i}"), "connectionMode": "http",
                    "mcpEndpoint": format!("https://{name}:{port}/ok"),
                    "pricing": { "model": "per-call", "pricePerCall": 3 } }),
                Some(&owner),
            )
            .await;
        if status == StatusCode::CREATED {
            let id = body["agent"]["id"].as_str().unwrap();
            let (status, body) = call(&app, &caller_key, id, "echo").await;
            // `localhost` is refused as written, other names once resolved.
            let message = if *name == "localhost" {
                "must not point to a private or local address"
            } else {
                "no public address"
            };
            assert_failed_refunded(status, &body, message);
        } else {
            assert_validation(status, &body, "mcpEndpoint");
        }
    }
    assert_eq!(balance(&app, &caller_key).await, (10000, 0));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a request reached loopback");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn outbound_client_cuts_off_oversized_and_endless_answers() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (port, _) = start_mock();
    let client = Outbound::new(true).unwrap();
    for path in ["endless", "huge"] {
        let started = Instant::now();
        let res = client
            .send(
                Method::POST,
                &format!("http://127.0.0.1:{port}/{path}"),
                Default::default(),
                Some(b"{}".to_vec()),
                Duration::from_secs(60),
            )
            .await;
        assert!(
            matches!(res, Err(OutboundError::TooLarge(n)) if n == DEFAULT_MAX_BYTES),
            "{path}: {res:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{path}: cut off only after {:?}",
            started.elapsed()
        );
    }
    // A stream that never grows large enough ends at the deadline.
    let started = Instant::now();
    let res = client
        .send(
            Method::POST,
            &format!("http://127.0.0.1:{port}/drip"),
            Default::default(),
            Some(b"{}".to_vec()),
            Duration::from_secs(1),
        )
        .await;
    assert!(
        matches!(&res, Err(OutboundError::Request(m)) if m.contains("timed out")),
        "{res:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[actix_web::test]
async fn endless_answers_fail_the_call_and_refund() {
    let (port, _) = start_mock();
    let app = app(3).await;
    let (owner, _) = app.register_user("owner").await;
    let (caller, _) = app.register_user("caller").await;
    let mut agents = Vec::new();
    for path in ["endless", "drip"] {
        let (agent, _) = app
            .create_agent(
                &owner,
                &json!({ "name": path, "slug": format!("{path}-agent"), "connectionMode": "http",
                    "mcpEndpoint": format!("http://127.0.0.1:{port}/{path}"),
                    "pricing": { "model": "per-call", "pricePerCall": 7 } }),
            )
            .await;
        agents.push(agent["id"].as_str().unwrap().to_string());
    }
    let (_, caller_key) = app.create_ws_agent(&caller, "Caller", "caller-agent").await;

    // Too large: cut off at the size limit (the deadline would say "timed out").
    let (status, body) = call(&app, &caller_key, &agents[0], "echo").await;
    assert_failed_refunded(status, &body, "larger than");

    // Endless but small: cut off at the deadline; failed or timed out, refunded either way.
    let started = Instant::now();
    let (status, body) = call(&app, &caller_key, &agents[1], "echo").await;
    let took = started.elapsed();
    assert!(
        matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
        ),
        "{status}: {body}"
    );
    assert!(
        body["status"] == "failed" || body["status"] == "timeout",
        "{body}"
    );
    assert_eq!(body["billing"]["tokensCharged"], 0, "{body}");
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(15),
        "{took:?}: {body}"
    );

    assert_eq!(balance(&app, &caller_key).await, (10000, 0));
    app.assert_ledger_balanced().await;
}
