//! The MCP gateway: `POST /api/v1/mcp/call`, the caller WebSocket `GET /api/v1/mcp/ws`, and
//! the agent's reverse WebSocket `GET /api/v1/agents/ws`.

use crate::{auth::ApiKeyAuth, error::ApiError, http::body::Body};
use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, StreamHandler, WrapFuture};
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use actix_web_actors::ws;
use actors::{
    Hub, HubError, accounts,
    conn::ws_envelope::{EnvelopeConn, MAX_FRAME_BYTES},
    gateway::{self, CallRequest},
};
use entities::tasks;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallIn {
    pub target_agent_id: Option<String>,
    pub tool_name: Option<String>,
    pub arguments: Option<Value>,
    pub request_id: Option<String>,
    pub max_cost: Option<i64>,
}

/// The `/mcp/call` body of a settled task, and its status code.
pub fn call_body(task: &tasks::Model) -> (StatusCode, Value) {
    let completed = task.status == "completed";
    let status = match task.status.as_str() {
        "completed" => StatusCode::OK,
        "timeout" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    let mut body = json!({
        "requestId": task.request_id,
        "status": task.status,
        "billing": {
            "tokensCharged": if completed { task.price } else { 0 },
            "transactionId": if completed { task.settle_tx } else { None },
        },
        "durationMs": task.duration_ms.unwrap_or(0),
    });
    if completed {
        body["result"] = mcp_result(task);
    } else {
        body["error"] = json!({ "message": task.error.clone().unwrap_or_default() });
    }
    (status, body)
}

/// A task's result as an MCP tool result: plain-mode agents answer with any JSON (usually
/// text), which MCP callers receive as `{content: [{type: "text", text}]}`.
pub fn mcp_result(task: &tasks::Model) -> Value {
    let result = task.result.clone().unwrap_or(Value::Null);
    if task.tool_name == "task" && result.get("content").is_none() {
        let text = match result {
            Value::String(s) => s,
            other => other.to_string(),
        };
        return json!({ "content": [{ "type": "text", "text": text }] });
    }
    result
}

pub async fn buyer_name(hub: &Hub, user_id: uuid::Uuid) -> String {
    accounts::find(hub, user_id)
        .await
        .map(|u| u.username)
        .unwrap_or_default()
}

/// Runs one call for an API-key caller.
pub async fn run_call(
    hub: &Arc<Hub>,
    auth: ApiKeyAuth,
    input: CallIn,
    source: &'static str,
) -> Result<tasks::Model, HubError> {
    let request = CallRequest {
        payer_id: auth.owner_id,
        caller_agent_id: Some(auth.agent_id),
        buyer: buyer_name(hub, auth.owner_id).await,
        target: input.target_agent_id,
        tool_name: input.tool_name,
        arguments: input.arguments,
        request_id: input.request_id,
        max_cost: input.max_cost,
        source,
        billed: true,
        wait: true,
    };
    gateway::call(hub, request).await
}

async fn call(
    auth: ApiKeyAuth,
    hub: web::Data<Hub>,
    Body(input): Body<CallIn>,
) -> Result<HttpResponse, ApiError> {
    let task = run_call(&hub.into_inner(), auth, input, "mcp").await?;
    let (status, body) = call_body(&task);
    Ok(HttpResponse::build(status).json(body))
}

/// The reverse WebSocket of an envelope agent.
async fn agent_ws(
    req: HttpRequest,
    stream: web::Payload,
    auth: ApiKeyAuth,
    hub: web::Data<Hub>,
) -> Result<HttpResponse, actix_web::Error> {
    let agent = actors::catalog::find_owned(&hub, &auth.agent_id.to_string(), auth.owner_id)
        .await
        .map_err(ApiError::from)?;
    if !matches!(
        agent.connection_mode.as_deref(),
        Some("websocket" | "hybrid")
    ) {
        return Err(ApiError::bad_request(
            "Only websocket and hybrid agents connect here (plain task agents use /ws)",
        )
        .into());
    }
    ws::WsResponseBuilder::new(
        EnvelopeConn::new(hub.into_inner(), auth.agent_id),
        &req,
        stream,
    )
    .frame_size(MAX_FRAME_BYTES)
    .start()
}

/// Calls that may be in flight on one caller socket.
const CALLER_MAX_IN_FLIGHT: usize = 256;

/// A caller's WebSocket: many calls in flight, each answered when it settles.
struct CallerSession {
    hub: Arc<Hub>,
    auth: ApiKeyAuth,
    in_flight: usize,
}

impl Actor for CallerSession {
    type Context = ws::WebsocketContext<Self>;
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl CallerSession {
    fn reply(ctx: &mut ws::WebsocketContext<Self>, request_id: &Value, payload: Value) {
        ctx.text(
            json!({
                "type": "tool_call_response",
                "requestId": request_id,
                "timestamp": now(),
                "payload": payload,
            })
            .to_string(),
        );
    }

    fn error_payload(err: ApiError) -> Value {
        json!({ "error": { "statusCode": err.status.as_u16(), "code": err.code, "message": err.message } })
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            let err = ApiError::bad_request("Frames must be JSON");
            Self::reply(ctx, &Value::Null, Self::error_payload(err));
            return;
        };
        let request_id = msg.get("requestId").cloned().unwrap_or(Value::Null);
        match msg.get("type").and_then(Value::as_str) {
            Some("ping") => ctx.text(
                json!({"type": "pong", "requestId": request_id, "timestamp": now(), "payload": {}})
                    .to_string(),
            ),
            Some("pong") => {}
            Some("tool_call_request") => {
                if self.in_flight >= CALLER_MAX_IN_FLIGHT {
                    let err = ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many calls in flight on this socket",
                    )
                    .with_code("TOO_MANY_IN_FLIGHT");
                    Self::reply(ctx, &request_id, Self::error_payload(err));
                    return;
                }
                let payload = msg.get("payload").cloned().unwrap_or(Value::Null);
                let mut input: CallIn = match serde_json::from_value(payload) {
                    Ok(input) => input,
                    Err(e) => {
                        let err = ApiError::bad_request(format!("Invalid payload: {e}"));
                        Self::reply(ctx, &request_id, Self::error_payload(err));
                        return;
                    }
                };
                if input.request_id.is_none() {
                    input.request_id = request_id.as_str().map(str::to_string);
                }
                self.in_flight += 1;
                let hub = self.hub.clone();
                let auth = self.auth;
                let call = async move { run_call(&hub, auth, input, "ws").await }
                    .into_actor(self)
                    .map(move |result, act, ctx| {
                        act.in_flight -= 1;
                        let payload = match result {
                            Ok(task) => call_body(&task).1,
                            Err(err) => Self::error_payload(err.into()),
                        };
                        Self::reply(ctx, &request_id, payload);
                    });
                ctx.spawn(call);
            }
            other => {
                let err = ApiError::bad_request(format!("Unknown message type {other:?}"));
                Self::reply(ctx, &request_id, Self::error_payload(err));
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for CallerSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(_) => ctx.stop(),
        }
    }
}

async fn caller_ws(
    req: HttpRequest,
    stream: web::Payload,
    auth: ApiKeyAuth,
    hub: web::Data<Hub>,
) -> Result<HttpResponse, actix_web::Error> {
    let session = CallerSession {
        hub: hub.into_inner(),
        auth,
        in_flight: 0,
    };
    ws::WsResponseBuilder::new(session, &req, stream)
        .frame_size(MAX_FRAME_BYTES)
        .start()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/mcp/call").route(web::post().to(call)))
        .service(web::resource("/mcp/ws").route(web::get().to(caller_ws)))
        .service(web::resource("/agents/ws").route(web::get().to(agent_ws)));
}
