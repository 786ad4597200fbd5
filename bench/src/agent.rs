//! A simulated agent: the marketplace document's reverse WebSocket, answering every
//! `tool_call_request` at once with the echo result (and `ping` with `pong`); and the same agent
//! reconnecting with jittered backoff, for the idle and reconnect-storm scenario (S1).

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// Connects an envelope agent to `ws_url` with its key; returns once the hub said
/// `agent_connected` (or, for a hub that does not say it, once the socket is open).
pub async fn start(ws_url: &str, key: &str) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let ws = connect(ws_url, key).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(serve(
        ws,
        Some(Box::new(move || {
            let _ = ready_tx.send(());
        })),
    ));
    let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
    Ok(handle)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(ws_url: &str, key: &str) -> anyhow::Result<Ws> {
    let mut req = ws_url.into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

/// Answers the hub until the socket closes.
async fn serve(ws: Ws, mut ready: Option<Box<dyn FnOnce() + Send>>) {
    let (mut tx, mut rx) = ws.split();
    while let Some(Ok(msg)) = rx.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let reply = match frame["type"].as_str() {
            Some("agent_connected") => {
                if let Some(r) = ready.take() {
                    r();
                }
                continue;
            }
            Some("ping") => {
                json!({ "type": "pong", "requestId": frame["requestId"], "timestamp": "", "payload": {} })
            }
            Some("tool_call_request") => {
                let message = frame["payload"]["arguments"]["message"]
                    .as_str()
                    .unwrap_or("");
                json!({
                    "type": "tool_call_response",
                    "requestId": frame["requestId"],
                    "timestamp": "",
                    "payload": { "result": { "content": [{ "type": "text", "text": format!("Echo: {message}") }] } }
                })
            }
            Some("tools_list_request") => json!({
                "type": "tools_list_response",
                "requestId": frame["requestId"],
                "timestamp": "",
                "payload": { "tools": [{ "name": "echo", "description": "echo", "inputSchema": { "type": "object" } }] }
            }),
            _ => continue,
        };
        if tx.send(Message::text(reply.to_string())).await.is_err() {
            return;
        }
    }
}

/// Counters shared by a fleet of reconnecting agents.
#[derive(Default)]
pub struct Fleet {
    /// Agents connected: the hub said `agent_connected` on their WebSocket.
    pub connected: AtomicUsize,
    /// Connection attempts that failed (refused, rejected or timed out).
    pub failures: AtomicUsize,
    /// Failed attempts by reason.
    pub reasons: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
}

impl Fleet {
    fn failed(&self, reason: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut r = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        *r.entry(reason).or_default() += 1;
    }

    /// The reasons of failed attempts, most frequent first.
    pub fn reasons(&self) -> String {
        let r = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = r.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        v.iter()
            .map(|(k, n)| format!("{n} × {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a reconnecting agent waits between attempts.
#[derive(Clone, Copy)]
pub enum Backoff {
    /// The marketplace document's schedule (1 s, 2 s, 4 s, … up to 30 s) with jitter: a uniform
    /// wait between half and all of `min(cap, base * 2^(attempt - 1))`.
    Jittered { base: Duration, cap: Duration },
    /// A fixed short wait (the probe agent, which must be among the first back).
    Fixed(Duration),
}

/// An agent that reconnects forever: each connection attempt holds a permit of `gate` (so the
/// initial connection rate can be bounded), times out after `timeout`, and failures and closed
/// sockets are followed by `backoff`.
pub fn start_reconnecting(
    ws_url: String,
    key: String,
    gate: Arc<Semaphore>,
    fleet: Arc<Fleet>,
    backoff: Backoff,
    timeout: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut attempt: u32 = 0;
        loop {
            let conn = {
                let _permit = gate.acquire().await;
                tokio::time::timeout(timeout, connect(&ws_url, &key)).await
            };
            match conn {
                Ok(Ok(ws)) => {
                    attempt = 0;
                    // Counted once the hub said `agent_connected` (it is then registered).
                    let counted = Arc::new(AtomicBool::new(false));
                    let (f, c) = (fleet.clone(), counted.clone());
                    serve(
                        ws,
                        Some(Box::new(move || {
                            c.store(true, Ordering::SeqCst);
                            f.connected.fetch_add(1, Ordering::SeqCst);
                        })),
                    )
                    .await;
                    if counted.load(Ordering::SeqCst) {
                        fleet.connected.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                Ok(Err(e)) => {
                    let e = e.to_string();
                    // Keep the kind, not the details (ports, addresses).
                    let kind = e.split([':', '(']).next().unwrap_or(&e).trim().to_string();
                    fleet.failed(kind);
                }
                Err(_) => fleet.failed(format!("no answer within {timeout:?}")),
            }
            attempt = attempt.saturating_add(1);
            let wait = match backoff {
                Backoff::Fixed(d) => d,
                Backoff::Jittered { base, cap } => {
                    let ceiling = base
                        .saturating_mul(1u32 << (attempt - 1).min(16))
                        .min(cap)
                        .as_secs_f64();
                    let unit = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as f64 / 1e6;
                    Duration::from_secs_f64(ceiling * (0.5 + 0.5 * unit))
                }
            };
            tokio::time::sleep(wait).await;
        }
    })
}
