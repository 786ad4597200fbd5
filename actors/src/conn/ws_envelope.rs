//! The reverse-WebSocket agent (`GET /api/v1/agents/ws`) speaking the marketplace envelope:
//! `{type, requestId, timestamp, payload}` with `agent_connected`, `ping`/`pong`,
//! `tools_list_request`/`_response` and `tool_call_request`/`_response`.
//!
//! What stays true:
//! - one connection per agent: a newer one replaces this one, which closes with 1000
//!   "replaced by new connection";
//! - the hub pings every `heartbeat` and closes a connection whose pong is later than
//!   `pong_timeout` (an agent that stops reading stops answering pings too);
//! - at most `MAX_IN_FLIGHT` calls wait on one connection; more are refused as busy;
//! - when the connection ends, every call waiting on it is answered `Disconnected` at once.

use crate::{
    Hub,
    conn::{AgentReply, ConnError, ConnHandle},
};
use actix::prelude::*;
use actix_web_actors::ws;
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Calls that may wait on one connection at once.
pub const MAX_IN_FLIGHT: usize = 256;
/// Largest frame accepted from an agent.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

enum Pending {
    Call(oneshot::Sender<Result<AgentReply, ConnError>>),
    Tools(oneshot::Sender<Result<Value, ConnError>>),
}

pub struct EnvelopeConn {
    hub: Arc<Hub>,
    agent_id: Uuid,
    conn_id: u64,
    heartbeat: Duration,
    pong_timeout: Duration,
    /// Calls and tool listings sent to the agent, by the `requestId` we gave them.
    pending: HashMap<String, Pending>,
    /// The ping we are waiting a pong for, and when it was sent.
    awaiting_pong: Option<(String, Instant)>,
}

impl EnvelopeConn {
    pub fn new(hub: Arc<Hub>, agent_id: Uuid) -> Self {
        let conn_id = hub.registry.next_conn_id();
        Self {
            heartbeat: hub.config.heartbeat,
            pong_timeout: hub.config.pong_timeout,
            hub,
            agent_id,
            conn_id,
            pending: HashMap::new(),
            awaiting_pong: None,
        }
    }

    fn now() -> String {
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    fn send(ctx: &mut ws::WebsocketContext<Self>, value: &Value) {
        ctx.text(value.to_string());
    }

    fn heartbeat(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        // One ping at a time: while a pong is outstanding no new ping replaces it, so the
        // deadline holds whatever the ratio of heartbeat to pong timeout.
        if let Some((_, since)) = &self.awaiting_pong {
            if since.elapsed() >= self.pong_timeout {
                self.close_dead(ctx);
            }
            return;
        }
        let id = Uuid::new_v4().to_string();
        Self::send(
            ctx,
            &json!({ "type": "ping", "requestId": id, "timestamp": Self::now() }),
        );
        self.awaiting_pong = Some((id.clone(), Instant::now()));
        ctx.run_later(self.pong_timeout, move |act, ctx| {
            if act
                .awaiting_pong
                .as_ref()
                .is_some_and(|(awaited, _)| *awaited == id)
            {
                act.close_dead(ctx);
            }
        });
    }

    fn close_dead(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        tracing::info!(agent_id = %self.agent_id, "no pong in time: closing");
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Policy,
            description: Some("pong timeout".into()),
        }));
        ctx.stop();
    }

    fn request_tools(&mut self, ctx: &mut ws::WebsocketContext<Self>, reply: Pending) {
        let id = Uuid::new_v4().to_string();
        Self::send(
            ctx,
            &json!({ "type": "tools_list_request", "requestId": id, "timestamp": Self::now() }),
        );
        self.pending.insert(id, reply);
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            Self::send(
                ctx,
                &json!({"type": "error", "timestamp": Self::now(),
                "payload": {"message": "frames must be JSON envelopes"}}),
            );
            return;
        };
        let kind = msg.get("type").and_then(Value::as_str).unwrap_or("");
        let request_id = msg
            .get("requestId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
        match kind {
            "pong" => {
                if self
                    .awaiting_pong
                    .as_ref()
                    .is_some_and(|(awaited, _)| *awaited == request_id || request_id.is_empty())
                {
                    self.awaiting_pong = None;
                }
            }
            "ping" => Self::send(
                ctx,
                &json!({"type": "pong", "requestId": request_id, "timestamp": Self::now(), "payload": {}}),
            ),
            "tool_call_response" => match self.pending.remove(&request_id) {
                Some(Pending::Call(tx)) => {
                    let _ = tx.send(Ok(reply_of(&payload)));
                }
                Some(other) => {
                    self.pending.insert(request_id, other);
                }
                None => Self::send(
                    ctx,
                    &json!({"type": "error", "requestId": request_id,
                    "timestamp": Self::now(),
                    "payload": {"message": "no call in flight has this requestId"}}),
                ),
            },
            "tools_list_response" => match self.pending.remove(&request_id) {
                Some(Pending::Tools(tx)) => {
                    let tools = payload.get("tools").cloned().unwrap_or_else(|| json!([]));
                    self.remember_tools(tools.clone());
                    let _ = tx.send(Ok(tools));
                }
                Some(other) => {
                    self.pending.insert(request_id, other);
                }
                None => {
                    // An unsolicited listing is still news: remember it.
                    if let Some(tools) = payload.get("tools") {
                        self.remember_tools(tools.clone());
                    }
                }
            },
            other => Self::send(
                ctx,
                &json!({"type": "error", "requestId": request_id,
                "timestamp": Self::now(),
                "payload": {"message": format!("unknown message type {other:?}")}}),
            ),
        }
    }

    /// Stores the last known tools of the agent (for `GET /agents/{id}/tools` while offline).
    fn remember_tools(&self, tools: Value) {
        if !tools.is_array() {
            return;
        }
        let hub = self.hub.clone();
        let agent_id = self.agent_id;
        actix::spawn(async move {
            if let Err(err) = crate::catalog::store_tools(&hub, agent_id, tools).await {
                tracing::warn!(%agent_id, error = %err, "cannot store tools");
            }
        });
    }
}

/// The `payload` of a `tool_call_response` as an outcome: `{result}` or `{error: {message}}`.
pub(crate) fn reply_of(payload: &Value) -> AgentReply {
    if let Some(err) = payload.get("error").filter(|e| !e.is_null()) {
        let message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| err.as_str().map(str::to_string))
            .unwrap_or_else(|| err.to_string());
        return AgentReply::Error(message);
    }
    match payload.get("result") {
        Some(result) if result.get("isError").and_then(Value::as_bool) == Some(true) => {
            AgentReply::Error(
                text_of(result).unwrap_or_else(|| "the tool reported an error".into()),
            )
        }
        Some(result) => AgentReply::Result(result.clone()),
        None => AgentReply::Error("tool_call_response had neither result nor error".into()),
    }
}

/// The text of an MCP result's first text content, if any.
fn text_of(result: &Value) -> Option<String> {
    result
        .get("content")?
        .as_array()?
        .iter()
        .find_map(|c| c.get("text").and_then(Value::as_str).map(str::to_string))
}

impl Actor for EnvelopeConn {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAX_IN_FLIGHT + 16);
        let handle = ConnHandle::Envelope {
            conn_id: self.conn_id,
            addr: ctx.address(),
        };
        // Presence is set here, synchronously, so `isOnline` is true before the agent reads
        // `agent_connected`; an older connection of the same agent is told to close.
        if let Some(old) = self.hub.registry.attach(self.agent_id, handle) {
            old.replace();
        }
        Self::send(
            ctx,
            &json!({"type": "agent_connected", "agentId": self.agent_id, "timestamp": Self::now()}),
        );
        ctx.run_interval(self.heartbeat, |act, ctx| act.heartbeat(ctx));
        let (tx, _rx) = oneshot::channel();
        self.request_tools(ctx, Pending::Tools(tx));
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.hub.registry.detach(self.agent_id, self.conn_id);
        for (_, pending) in self.pending.drain() {
            match pending {
                Pending::Call(tx) => {
                    let _ = tx.send(Err(ConnError::Disconnected));
                }
                Pending::Tools(tx) => {
                    let _ = tx.send(Err(ConnError::Disconnected));
                }
            }
        }
        Running::Stop
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for EnvelopeConn {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Binary(_)) => Self::send(
                ctx,
                &json!({"type": "error",
                "timestamp": Self::now(), "payload": {"message": "binary frames are not supported"}}),
            ),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Continuation(_)) | Ok(ws::Message::Nop) => {}
            Err(err) => {
                tracing::info!(agent_id = %self.agent_id, error = %err, "websocket protocol error");
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Size,
                    description: Some(err.to_string()),
                }));
                ctx.stop();
            }
        }
    }
}

/// Send a tool call to the agent.
#[derive(Message)]
#[rtype(result = "Result<(), ConnError>")]
pub struct Deliver {
    /// The `requestId` the agent sees; its answer must carry it back.
    pub call_id: String,
    pub tool: String,
    pub arguments: Value,
    pub reply: oneshot::Sender<Result<AgentReply, ConnError>>,
}

impl Handler<Deliver> for EnvelopeConn {
    type Result = Result<(), ConnError>;

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) -> Self::Result {
        if self.pending.len() >= MAX_IN_FLIGHT {
            return Err(ConnError::Busy);
        }
        Self::send(
            ctx,
            &json!({
                "type": "tool_call_request",
                "requestId": msg.call_id,
                "timestamp": Self::now(),
                "payload": { "params": { "name": msg.tool, "arguments": msg.arguments } },
            }),
        );
        self.pending.insert(msg.call_id, Pending::Call(msg.reply));
        Ok(())
    }
}

/// Ask the agent for its tools.
#[derive(Message)]
#[rtype(result = "Result<(), ConnError>")]
pub struct ListTools {
    pub reply: oneshot::Sender<Result<Value, ConnError>>,
}

impl Handler<ListTools> for EnvelopeConn {
    type Result = Result<(), ConnError>;

    fn handle(&mut self, msg: ListTools, ctx: &mut Self::Context) -> Self::Result {
        if self.pending.len() >= MAX_IN_FLIGHT {
            return Err(ConnError::Busy);
        }
        self.request_tools(ctx, Pending::Tools(msg.reply));
        Ok(())
    }
}

/// A newer connection of the same agent took over: close with 1000.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Replaced;

impl Handler<Replaced> for EnvelopeConn {
    type Result = ();

    fn handle(&mut self, _: Replaced, ctx: &mut Self::Context) {
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Normal,
            description: Some("replaced by new connection".into()),
        }));
        ctx.stop();
    }
}
