//! HTTP and hybrid agents: MCP JSON-RPC to a real HTTP server (bare JSON-RPC, and a
//! Streamable-HTTP server that wants `initialize` and a session, answering as SSE), billing,
//! errors, and the safe outbound client's refusals.

use crate::helpers::{TestApp, spawn_app_with};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actors::outbound::{Outbound, OutboundError};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::{
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

#[derive(Default)]
struct Counters {
    requests: AtomicUsize,
    initializes: AtomicUsize,
}

fn tool_result(params: &Value) -> Result<Value, Value> {
    let name = params["name"].as_str().unwrap_or("");
    let message = params["arguments"]["message"].as_str().unwrap_or("");
    match name {
        "echo" => {
            Ok(json!({ "content": [{ "type": "text", "text": format!("Echo: {message}") }] }))
        }
        "iserror" => {
            Ok(json!({ "content": [{ "type": "text", "text": "tool broke" }], "isError": true }))
        }
        _ => Err(json!({ "code": -32602, "message": format!("Unknown tool: {name}") })),
    }
}

fn answer(req: &Value) -> Value {
    let id = req["id"].clone();
    match req["method"].as_str() {
        Some("tools/list") => json!({ "jsonrpc": "2.0", "id": id, "result": { "tools": [
            { "name": "echo", "description": "Echo a message",
              "inputSchema": { "type": "object", "properties": { "message": { "type": "string" } } } }
        ] } }),
        Some("tools/call") => match tool_result(&req["params"]) {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(error) => json!({ "jsonrpc": "2.0", "id": id, "error": error }),
        },
        _ => {
            json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": "Method not found" } })
        }
    }
}

/// A bare JSON-RPC endpoint, as the marketplace document shows.
async fn bare(body: web::Json<Value>, counters: web::Data<Counters>) -> HttpResponse {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(answer(&body))
}

/// A Streamable-HTTP endpoint of the older revisions: needs both Accept types, `initialize`
/// first, then `Mcp-Session-Id` on every request; answers as SSE.
async fn session(
    req: HttpRequest,
    body: web::Json<Value>,
    counters: web::Data<Counters>,
) -> HttpResponse {
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let accept = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return HttpResponse::NotAcceptable().finish();
    }
    if body["method"] == "initialize" {
        counters.initializes.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Ok()
            .insert_header(("mcp-session-id", "session-1"))
            .json(json!({
                "jsonrpc": "2.0", "id": body["id"],
                "result": { "protocolVersion": "2025-03-26", "capabilities": { "tools": {} },
                            "serverInfo": { "name": "mock", "version": "1" } }
            }));
    }
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok());
    if session != Some("session-1") {
        return HttpResponse::BadRequest().body("Bad Request: Missing session ID");
    }
    if body.get("id").is_none() {
        return HttpResponse::Accepted().finish();
    }
    let sse = format!(
        "event: message\ndata: {}\n\nevent: message\ndata: {}\n\n",
        json!({ "jsonrpc": "2.0", "method": "notifications/message", "params": {} }),
        answer(&body)
    );
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .body(sse)
}

async fn redirect() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("location", "http://127.0.0.1:1/"))
        .finish()
}

/// Starts the mock MCP servers; returns the base URL and the counters.
fn start_mock() -> (String, Arc<Counters>) {
    let counters = web::Data::new(Counters::default());
    let shared = counters.clone().into_inner();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(counters.clone())
            .route("/bare", web::post().to(bare))
            .route("/session", web::post().to(session))
            .route("/redirect", web::post().to(redirect))
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
        s.allow_private_urls = true;
        s.rate_limit_per_min = 0;
        s.call_timeout_secs = 5;
    })
    .await
}

async fn balance(app: &TestApp, key: &str) -> (i64, i64) {
    let (_, b) = app.get("/api/v1/billing/balance", Some(key)).await;
    (
        b["balance"].as_i64().unwrap(),
        b["reserved"].as_i64().unwrap(),
    )
}

async fn call(app: &TestApp, key: &str, target: &str, tool: &str) -> (StatusCode, Value) {
    app.post_json(
        "/api/v1/mcp/call",
        &json!({ "targetAgentId": target, "toolName": tool, "arguments": { "message": "Hello!" } }),
        Some(key),
    )
    .await
}

#[actix_web::test]
async fn bare_json_rpc_agent_is_called_and_paid() {
    let (base, counters) = start_mock();
    let app = app().await;
    let (owner, _) = app.register_user("owner").await;
    let (caller, _) = app.register_user("caller").await;
    let (agent, agent_key) = app
        .create_agent(&owner, &json!({ "name": "Bare", "slug": "bare", "connectionMode": "http",
            "mcpEndpoint": format!("{base}/bare"), "pricing": { "model": "per-call", "pricePerCall": 3 } }))
        .await;
    let (_, caller_key) = app.create_ws_agent(&caller, "Caller", "caller-agent").await;
    let id = agent["id"].as_str().unwrap();

    let (status, body) = call(&app, &caller_key, id, "echo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["result"]["content"][0]["text"], "Echo: Hello!");
    assert_eq!(body["billing"]["tokensCharged"], 3);
    assert_eq!(balance(&app, &caller_key).await, (9997, 0));
    assert_eq!(balance(&app, &agent_key).await, (10003, 0));

    // A JSON-RPC error and an isError result are failed, refunded calls.
    let (status, body) = call(&app, &caller_key, id, "nope").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["error"]["message"], "Unknown tool: nope");
    let (status, body) = call(&app, &caller_key, id, "iserror").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"]["message"], "tool broke");
    assert_eq!(balance(&app, &caller_key).await, (9997, 0));

    let (status, tools) = app.get(&format!("/api/v1/agents/{id}/tools"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tools["tools"][0]["name"], "echo");
    assert_eq!(counters.requests.load(Ordering::SeqCst), 4);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn streamable_http_session_is_initialised_once_and_sse_answers_are_read() {
    let (base, counters) = start_mock();
    let app = app().await;
    let (owner, _) = app.register_user("owner").await;
    let (caller, _) = app.register_user("caller").await;
    let (agent, _) = app
        .create_agent(&owner, &json!({ "name": "Sdk", "slug": "sdk", "connectionMode": "http",
            "mcpEndpoint": format!("{base}/session"), "pricing": { "model": "per-call", "pricePerCall": 2 } }))
        .await;
    let (_, caller_key) = app.create_ws_agent(&caller, "Caller", "caller-agent").await;
    let id = agent["id"].as_str().unwrap();
    for _ in 0..3 {
        let (status, body) = call(&app, &caller_key, id, "echo").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["result"]["content"][0]["text"], "Echo: Hello!");
    }
    assert_eq!(counters.initializes.load(Ordering::SeqCst), 1);
    assert_eq!(balance(&app, &caller_key).await, (9994, 0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn unreachable_endpoint_fails_and_refunds() {
    let app = app().await;
    let (owner, _) = app.register_user("owner").await;
    let (caller, _) = app.register_user("caller").await;
    let (agent, _) = app
        .create_agent(&owner, &json!({ "name": "Gone", "slug": "gone", "connectionMode": "http",
            "mcpEndpoint": "http://127.0.0.1:1/mcp", "pricing": { "model": "per-call", "pricePerCall": 4 } }))
        .await;
    let (_, caller_key) = app.create_ws_agent(&caller, "Caller", "caller-agent").await;
    let (status, body) = call(&app, &caller_key, agent["id"].as_str().unwrap(), "echo").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["billing"]["tokensCharged"], 0);
    assert_eq!(balance(&app, &caller_key).await, (10000, 0));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn hybrid_agent_uses_the_websocket_when_connected_else_http() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (base, counters) = start_mock();
    let app = app().await;
    let (owner, _) = app.register_user("owner").await;
    let (caller, _) = app.register_user("caller").await;
    let (agent, key) = app
        .create_agent(
            &owner,
            &json!({ "name": "Hybrid", "slug": "hybrid", "connectionMode": "hybrid",
            "mcpEndpoint": format!("{base}/bare") }),
        )
        .await;
    let (_, caller_key) = app.create_ws_agent(&caller, "Caller", "caller-agent").await;
    let id = agent["id"].as_str().unwrap().to_string();

    // Offline: HTTP.
    let (status, body) = call(&app, &caller_key, &id, "echo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(counters.requests.load(Ordering::SeqCst), 1);

    // Connected: the WebSocket answers, HTTP sees nothing more.
    let mut ws = app.connect_agent(&key).await;
    let agent_task = actix_web::rt::spawn(async move {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            let m: Value = serde_json::from_str(&text).unwrap();
            let reply = match m["type"].as_str() {
                Some("tool_call_request") => {
                    json!({ "type": "tool_call_response", "requestId": m["requestId"],
                    "timestamp": "t", "payload": { "result": { "content": [{ "type": "text", "text": "via ws" }] } } })
                }
                Some("tools_list_request") => {
                    json!({ "type": "tools_list_response", "requestId": m["requestId"],
                    "timestamp": "t", "payload": { "tools": [] } })
                }
                Some("ping") => {
                    json!({ "type": "pong", "requestId": m["requestId"], "timestamp": "t", "payload": {} })
                }
                _ => continue,
            };
            ws.send(Message::Text(reply.to_string().into()))
                .await
                .unwrap();
        }
    });
    let (status, body) = call(&app, &caller_key, &id, "echo").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "via ws");
    assert_eq!(counters.requests.load(Ordering::SeqCst), 1);
    agent_task.abort();
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn outbound_client_refuses_private_addresses_and_redirects() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (base, counters) = start_mock();
    let strict = Outbound::new(false).unwrap();
    let port = base.rsplit(':').next().unwrap();
    for url in [
        format!("{base}/bare"),
        format!("http://localhost:{port}/bare"),
        format!("http://[::1]:{port}/bare"),
        format!("https://127.0.0.1:{port}/bare"),
        format!("https://[::ffff:127.0.0.1]:{port}/bare"),
        format!("https://2130706433:{port}/bare"),
        "https://10.1.2.3/".to_string(),
        "https://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let res = strict
            .send(
                Method::POST,
                &url,
                Default::default(),
                Some(b"{}".to_vec()),
                Duration::from_secs(2),
            )
            .await;
        assert!(
            matches!(res, Err(OutboundError::Refused(_))),
            "{url}: {res:?}"
        );
    }
    assert_eq!(
        counters.requests.load(Ordering::SeqCst),
        0,
        "no request reached loopback"
    );

    let lax = Outbound::new(true).unwrap();
    let res = lax
        .send(
            Method::POST,
            &format!("{base}/redirect"),
            Default::default(),
            None,
            Duration::from_secs(2),
        )
        .await;
    assert!(matches!(res, Err(OutboundError::Redirect)), "{res:?}");
}

/// Names that resolve to forbidden addresses: the client connects only to the addresses its
/// resolver kept, so a name pointing at loopback, a private network or the metadata service
/// never gets a single TCP connection, and a name with one public and one private address is
/// only ever dialled at the public one. The lookup table stands in for DNS (there is none here).
#[actix_web::test]
async fn names_resolving_to_forbidden_addresses_get_no_connection() {
    use actors::outbound::Lookup;
    use std::net::IpAddr;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    let accept = tokio::spawn(async move {
        while let Ok((_conn, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    let table: Lookup = Arc::new(|host: String| {
        Box::pin(async move {
            let ips: Vec<IpAddr> = match host.as_str() {
                "loopback.example" => vec!["127.0.0.1".parse().unwrap()],
                "loopback6.example" => vec!["::1".parse().unwrap()],
                "mapped.example" => vec!["::ffff:127.0.0.1".parse().unwrap()],
                "private.example" => {
                    vec!["10.0.0.7".parse().unwrap(), "192.168.1.1".parse().unwrap()]
                }
                "metadata.example" => vec!["169.254.169.254".parse().unwrap()],
                "cgnat.example" => vec!["100.64.0.1".parse().unwrap()],
                "ula.example" => vec!["fd00::1".parse().unwrap()],
                _ => vec![],
            };
            Ok(ips)
        })
    });
    let strict = Outbound::with_lookup(false, table.clone()).unwrap();
    for host in [
        "loopback.example",
        "loopback6.example",
        "mapped.example",
        "private.example",
        "metadata.example",
        "cgnat.example",
        "ula.example",
    ] {
        let url = format!("https://{host}:{port}/mcp");
        let res = strict
            .send(
                Method::POST,
                &url,
                Default::default(),
                Some(b"{}".to_vec()),
                Duration::from_secs(3),
            )
            .await;
        match res {
            Err(OutboundError::Request(why)) => {
                assert!(why.contains("no public address"), "{host}: {why}")
            }
            other => panic!("{host}: expected a refusal, got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a forbidden address was dialled"
    );

    // The same table with private addresses allowed does dial loopback: the listener is real.
    let lax = Outbound::with_lookup(true, table).unwrap();
    let _ = lax
        .send(
            Method::POST,
            &format!("http://localhost:{port}/mcp"),
            Default::default(),
            None,
            Duration::from_millis(500),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        connections.load(Ordering::SeqCst) >= 1,
        "the control request never connected"
    );
    accept.abort();
}
