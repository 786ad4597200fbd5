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
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(call, caller_ws, agent_ws))]
pub struct Api;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CallInput)]
pub struct CallIn {
    /// The agent's id or slug.
    #[schema(value_type = String, required = true)]
    pub target_agent_id: Option<String>,
    #[schema(value_type = String, required = true)]
    pub tool_name: Option<String>,
    /// The tool's arguments (an object).
    #[schema(value_type = Object, required = false)]
    pub arguments: Option<Value>,
    /// Idempotency key, kept per paying account (generated when omitted): a retry with the same
    /// key answers the first call's outcome and is not charged twice.
    #[schema(value_type = String, required = false)]
    pub request_id: Option<String>,
    /// Refuse the call (400 `PRICE_EXCEEDS_MAX`) if it costs more.
    #[schema(value_type = i64, minimum = 0, required = false)]
    pub max_cost: Option<i64>,
}

/// What a call cost.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallBilling {
    /// The price when the call completed, else 0 (failed and timed-out calls are refunded).
    pub tokens_charged: i64,
    /// The settling ledger transaction of a completed call.
    #[schema(required = true)]
    pub transaction_id: Option<uuid::Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallError {
    pub message: String,
}

/// The outcome of a call: `result` when `completed`, `error` when `failed` or `timeout`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallOutcome {
    pub request_id: String,
    #[schema(schema_with = call_status)]
    pub status: String,
    pub billing: CallBilling,
    pub duration_ms: i64,
    /// The MCP tool result (`{content: [{type: "text", text}], ...}`), as the agent answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CallError>,
}

fn call_status() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    crate::http::schema::string_enum(&actors::task::FINAL, false)
}

/// The `/mcp/call` body of a settled task, and its status code.
pub fn call_body(task: &tasks::Model) -> (StatusCode, CallOutcome) {
    let completed = task.status == "completed";
    let status = match task.status.as_str() {
        "completed" => StatusCode::OK,
        "timeout" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    let body = CallOutcome {
        request_id: task.request_id.clone(),
        status: task.status.clone(),
        billing: CallBilling {
            tokens_charged: if completed { task.price } else { 0 },
            transaction_id: if completed { task.settle_tx } else { None },
        },
        duration_ms: task.duration_ms.unwrap_or(0),
        result: completed.then(|| mcp_result(task)),
        error: (!completed).then(|| CallError {
            message: task.error.clone().unwrap_or_default(),
        }),
    };
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

/// Call an agent's tool
///
/// Reserves the price from the caller's wallet, delivers the call and waits for the answer:
/// the agent's owner is paid on success, the caller refunded on failure or timeout. A refused
/// call (any 4xx or 503) charges nothing.
#[utoipa::path(
    post,
    path = "/mcp/call",
    operation_id = "callTool",
    tag = "Calls",
    security(("apiKey" = [])),
    request_body = CallIn,
    responses(
        (status = 200, description = "The call completed (charged)", body = CallOutcome),
        (status = 400, description = "A field is missing or invalid, or `PRICE_EXCEEDS_MAX`"),
        (status = 401, description = "No valid API key"),
        (status = 402, description = "`INSUFFICIENT_TOKENS`"),
        (status = 404, description = "No such agent (or someone else's private agent)"),
        (status = 409, description = "`IDEMPOTENCY_CONFLICT`: the requestId was used for another call"),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: the files are too large"),
        (status = 502, description = "The agent failed (refunded)", body = CallOutcome),
        (status = 503, description = "`AGENT_UNAVAILABLE` (not active) or `AGENT_OFFLINE` (not connected)"),
        (status = 504, description = "The agent did not answer in time (refunded)", body = CallOutcome),
    )
)]
async fn call(
    auth: ApiKeyAuth,
    hub: web::Data<Hub>,
    Body(input): Body<CallIn>,
) -> Result<HttpResponse, ApiError> {
    let task = run_call(&hub.into_inner(), auth, input, "mcp").await?;
    let (status, body) = call_body(&task);
    Ok(HttpResponse::build(status).json(body))
}

/// The agent socket (WebSocket)
///
/// The reverse WebSocket of a `websocket` or `hybrid` agent: the hub sends
/// `tool_call_request` envelopes `{type, requestId, timestamp, payload}` and the agent answers
/// `tool_call_response`; `tools_list_request`/`tools_list_response` likewise.
#[utoipa::path(
    get,
    path = "/agents/ws",
    operation_id = "agentSocket",
    tag = "WebSockets",
    security(("apiKey" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket handshake, or not a websocket/hybrid agent"),
        (status = 401, description = "No valid API key"),
    )
)]
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
                            Ok(task) => {
                                serde_json::to_value(call_body(&task).1).unwrap_or(Value::Null)
                            }
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

/// The caller socket (WebSocket)
///
/// Many calls in flight on one socket: send `tool_call_request` frames
/// `{type, requestId, payload: {targetAgentId, toolName, arguments, maxCost?}}`, receive one
/// `tool_call_response` each (the `/mcp/call` body, or `{error}`), in any order.
#[utoipa::path(
    get,
    path = "/mcp/ws",
    operation_id = "callerSocket",
    tag = "WebSockets",
    security(("apiKey" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket handshake"),
        (status = 401, description = "No valid API key"),
    )
)]
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
