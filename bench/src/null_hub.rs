//! The null hub: the same stack and the same wire formats as agenthub (actix-web in, the
//! envelope WebSocket to the agent, the `/mcp/call` body out), with keys in a map and no
//! database, no ledger, no persistence. Its figures are what agenthub's auth, ledger and
//! durability cost on top of the transport.

use actix::prelude::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_web_actors::ws;
use dashmap::DashMap;
use serde_json::{Value, json};
use std::{sync::Arc, time::Instant};
use tokio::sync::oneshot;

#[derive(Default)]
pub struct State {
    /// API key -> agent id.
    pub keys: DashMap<String, String>,
    conns: DashMap<String, Addr<Conn>>,
    pending: DashMap<String, oneshot::Sender<Value>>,
}

pub struct Conn {
    state: Arc<State>,
    agent: String,
}

impl Actor for Conn {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.state.conns.insert(self.agent.clone(), ctx.address());
        ctx.text(
            json!({ "type": "agent_connected", "requestId": "", "timestamp": "", "payload": {} })
                .to_string(),
        );
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.state.conns.remove(&self.agent);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Send(String);

impl Handler<Send> for Conn {
    type Result = ();
    fn handle(&mut self, msg: Send, ctx: &mut Self::Context) {
        ctx.text(msg.0);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Conn {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) => {
                if let Ok(frame) = serde_json::from_str::<Value>(&text)
                    && let Some(id) = frame["requestId"].as_str()
                    && let Some((_, tx)) = self.state.pending.remove(id)
                {
                    let _ = tx.send(frame["payload"].clone());
                }
            }
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Close(_)) | Err(_) => ctx.stop(),
            _ => {}
        }
    }
}

fn bearer(req: &HttpRequest) -> String {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

async fn agent_ws(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<State>,
) -> actix_web::Result<HttpResponse> {
    let Some(agent) = state.keys.get(&bearer(&req)).map(|a| a.clone()) else {
        return Ok(HttpResponse::Unauthorized().finish());
    };
    ws::start(
        Conn {
            state: state.into_inner(),
            agent,
        },
        &req,
        body,
    )
}

async fn call(req: HttpRequest, body: web::Json<Value>, state: web::Data<State>) -> HttpResponse {
    let started = Instant::now();
    if !state.keys.contains_key(&bearer(&req)) {
        return HttpResponse::Unauthorized().finish();
    }
    let target = body["targetAgentId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(conn) = state.conns.get(&target).map(|c| c.clone()) else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    let id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = oneshot::channel();
    state.pending.insert(id.clone(), tx);
    conn.do_send(Send(
        json!({ "type": "tool_call_request", "requestId": id, "timestamp": "",
                "payload": { "toolName": body["toolName"], "arguments": body["arguments"] } })
        .to_string(),
    ));
    match rx.await {
        Ok(payload) => HttpResponse::Ok().json(json!({
            "requestId": id,
            "status": "completed",
            "result": payload["result"],
            "billing": { "tokensCharged": 0, "transactionId": null },
            "durationMs": started.elapsed().as_millis() as u64,
        })),
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

/// Starts the null hub on a free port; returns its port.
pub fn start(state: Arc<State>) -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/api/v1/agents/ws", web::get().to(agent_ws))
            .route("/api/v1/mcp/call", web::post().to(call))
    })
    .listen(listener)?
    .disable_signals()
    .run();
    actix_web::rt::spawn(server);
    Ok(port)
}
