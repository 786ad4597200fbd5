//! HTTP agents: MCP JSON-RPC 2.0 (`tools/list`, `tools/call`) POSTed to the agent's
//! `mcpEndpoint` through the safe outbound client.
//!
//! Works with bare JSON-RPC endpoints (the document's examples) and with servers built on the
//! official MCP SDKs, which speak the Streamable HTTP transport: every POST carries
//! `Accept: application/json, text/event-stream`, answers may be JSON or an SSE stream, and
//! older protocol revisions want an `initialize` handshake whose `Mcp-Session-Id` is sent
//! back. What each endpoint needed is remembered: a call first goes out the way that worked
//! last time; a refusal (4xx) of an endpoint without a session, or 404 of an expired session,
//! triggers one (re-)initialisation and one retry.

use crate::{
    conn::{AgentReply, ConnError},
    outbound::{Outbound, OutboundError},
};
use dashmap::DashMap;
use reqwest::{
    Method,
    header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue},
};
use serde_json::{Value, json};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// The protocol revision we offer in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// What an endpoint needs, as learned.
#[derive(Debug, Clone)]
enum Mode {
    /// Initialised; calls carry this session id (if any) and the negotiated version.
    Initialised {
        session: Option<String>,
        version: String,
    },
}

/// The MCP-over-HTTP client of the hub.
pub struct McpHttp {
    outbound: Outbound,
    modes: DashMap<String, Mode>,
    next_id: AtomicU64,
}

/// Why an HTTP MCP request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcError {
    /// The endpoint could not be reached or answered nonsense.
    Transport(String),
    /// The endpoint answered with a JSON-RPC error.
    Rpc(String),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Transport(m) => write!(f, "the agent's endpoint failed: {m}"),
            RpcError::Rpc(m) => f.write_str(m),
        }
    }
}

impl From<OutboundError> for RpcError {
    fn from(e: OutboundError) -> Self {
        RpcError::Transport(e.to_string())
    }
}

impl McpHttp {
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        Ok(Self {
            outbound: Outbound::new(allow_private).map_err(|e| anyhow::anyhow!(e))?,
            modes: DashMap::new(),
            next_id: AtomicU64::new(1),
        })
    }

    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn headers(mode: Option<&Mode>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(Mode::Initialised { session, version }) = mode {
            if let Some(s) = session
                .as_deref()
                .and_then(|s| HeaderValue::from_str(s).ok())
            {
                h.insert(SESSION_HEADER, s);
            }
            if let Ok(v) = HeaderValue::from_str(version) {
                h.insert(VERSION_HEADER, v);
            }
        }
        h
    }

    /// One JSON-RPC request; returns the HTTP status, headers and the matching response.
    async fn post(
        &self,
        endpoint: &str,
        mode: Option<&Mode>,
        body: &Value,
        timeout: Duration,
    ) -> Result<(reqwest::StatusCode, HeaderMap, Option<Value>), RpcError> {
        let answer = self
            .outbound
            .send(
                Method::POST,
                endpoint,
                Self::headers(mode),
                Some(body.to_string().into_bytes()),
                timeout,
            )
            .await?;
        if !answer.status.is_success() {
            return Ok((answer.status, answer.headers, None));
        }
        let id = body.get("id").cloned();
        let is_sse = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let message =
            if id.is_none() {
                None
            } else if is_sse {
                Some(find_in_sse(&answer.body, id.as_ref()).ok_or_else(|| {
                    RpcError::Transport("the event stream ended without an answer".into())
                })?)
            } else {
                Some(serde_json::from_slice::<Value>(&answer.body).map_err(|e| {
                    RpcError::Transport(format!("the answer is not JSON-RPC ({e})"))
                })?)
            };
        Ok((answer.status, answer.headers, message))
    }

    /// The `initialize` handshake (and the `initialized` notification).
    async fn initialise(&self, endpoint: &str, timeout: Duration) -> Result<Mode, RpcError> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id(),
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "agenthub", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let (status, headers, message) = self.post(endpoint, None, &body, timeout).await?;
        let message = message.ok_or_else(|| {
            RpcError::Transport(format!("initialize answered HTTP {}", status.as_u16()))
        })?;
        let result = rpc_result(message)?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(PROTOCOL_VERSION)
            .to_string();
        let session = headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mode = Mode::Initialised { session, version };
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let _ = self.post(endpoint, Some(&mode), &note, timeout).await;
        self.modes.insert(endpoint.to_string(), mode.clone());
        Ok(mode)
    }

    /// A JSON-RPC request with the endpoint's remembered needs, initialising when refused.
    pub async fn request(
        &self,
        endpoint: &str,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut mode = self.modes.get(endpoint).map(|m| m.clone());
        for attempt in 0..2 {
            let body =
                json!({ "jsonrpc": "2.0", "id": self.id(), "method": method, "params": params });
            let (status, _, message) = self.post(endpoint, mode.as_ref(), &body, left()).await?;
            if let Some(message) = message {
                return rpc_result(message);
            }
            let retry = attempt == 0 && status.is_client_error() && status.as_u16() != 413;
            if !retry {
                return Err(RpcError::Transport(format!("HTTP {}", status.as_u16())));
            }
            // Refused: this endpoint wants the handshake (or its session expired).
            self.modes.remove(endpoint);
            mode = Some(self.initialise(endpoint, left()).await?);
        }
        Err(RpcError::Transport("the endpoint refused the call".into()))
    }

    /// `tools/call`, as the engine's reply.
    pub async fn call_tool(
        self: Arc<Self>,
        endpoint: String,
        tool: String,
        arguments: Value,
        timeout: Duration,
    ) -> Result<AgentReply, ConnError> {
        let params = json!({ "name": tool, "arguments": arguments });
        Ok(
            match self.request(&endpoint, "tools/call", params, timeout).await {
                Ok(result) => super::ws_envelope::reply_of(&json!({ "result": result })),
                Err(err) => AgentReply::Error(err.to_string()),
            },
        )
    }

    /// `tools/list`: the `tools` array.
    pub async fn list_tools(&self, endpoint: &str, timeout: Duration) -> Result<Value, RpcError> {
        let result = self
            .request(endpoint, "tools/list", json!({}), timeout)
            .await?;
        Ok(result.get("tools").cloned().unwrap_or_else(|| json!([])))
    }
}

/// The `result` of a JSON-RPC response, or its error's message.
fn rpc_result(message: Value) -> Result<Value, RpcError> {
    if let Some(err) = message.get("error").filter(|e| !e.is_null()) {
        let text = err
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("JSON-RPC error");
        return Err(RpcError::Rpc(text.to_string()));
    }
    message
        .get("result")
        .cloned()
        .ok_or_else(|| RpcError::Transport("the answer has neither result nor error".into()))
}

/// The JSON-RPC response with this id in an SSE body.
fn find_in_sse(body: &[u8], id: Option<&Value>) -> Option<Value> {
    let text = String::from_utf8_lossy(body);
    let text = text.replace("\r\n", "\n");
    for event in text.split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&data.join("\n"))
            && v.get("id") == id
            && (v.get("result").is_some() || v.get("error").is_some())
        {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_answer_among_sse_events() {
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                     event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":true}}\r\n\r\n";
        let found = find_in_sse(body, Some(&json!(7))).unwrap();
        assert_eq!(found["result"]["ok"], true);
        assert!(find_in_sse(body, Some(&json!(8))).is_none());
    }
}
