//! The plain task stream (`GET /ws`, `/api/v1/ws`) of the task-delivery document: the agent
//! receives `{id, task, files, buyer, jobId}` and answers `{taskId, result}` or
//! `{taskId, error}`.
//!
//! What stays true:
//! - the stream carries only task frames and the agent's answers; the heartbeat is WebSocket
//!   ping/pong control frames, which every client library answers by itself; a connection
//!   silent past `heartbeat + pong_timeout` is closed;
//! - one connection per agent (the older closes with 1000 "replaced by new connection");
//! - tasks queued while the agent was away are delivered when it connects; tasks in flight on a
//!   connection that drops go back to the queue;
//! - an answer for an unknown or foreign task gets `{error, taskId}` back and changes nothing.

use crate::{
    Hub,
    conn::{AgentReply, ConnError, ConnHandle},
    task::Attach,
};
use actix::prelude::*;
use actix_web_actors::ws;
use entities::tasks;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const MAX_IN_FLIGHT: usize = 256;

pub struct PlainConn {
    hub: Arc<Hub>,
    agent_id: Uuid,
    conn_id: u64,
    heartbeat: Duration,
    pong_timeout: Duration,
    pending: HashMap<String, oneshot::Sender<Result<AgentReply, ConnError>>>,
    last_seen: Instant,
}

impl PlainConn {
    pub fn new(hub: Arc<Hub>, agent_id: Uuid) -> Self {
        let conn_id = hub.registry.next_conn_id();
        Self {
            heartbeat: hub.config.heartbeat,
            pong_timeout: hub.config.pong_timeout,
            hub,
            agent_id,
            conn_id,
            pending: HashMap::new(),
            last_seen: Instant::now(),
        }
    }

    fn error(ctx: &mut ws::WebsocketContext<Self>, task_id: &Value, message: &str) {
        ctx.text(json!({ "error": message, "taskId": task_id }).to_string());
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            Self::error(
                ctx,
                &Value::Null,
                "frames must be JSON: {taskId, result} or {taskId, error}",
            );
            return;
        };
        let task_id = msg.get("taskId").cloned().unwrap_or(Value::Null);
        let key = match &task_id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let Some(reply) = self.pending.remove(&key) else {
            Self::error(
                ctx,
                &task_id,
                "no task of this agent in flight has this taskId",
            );
            return;
        };
        let answer = match (msg.get("result"), msg.get("error")) {
            (_, Some(err)) if !err.is_null() => AgentReply::Error(
                err.as_str()
                    .map(str::to_string)
                    .or_else(|| {
                        err.get("message")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| err.to_string()),
            ),
            (Some(result), _) => AgentReply::Result(result.clone()),
            _ => AgentReply::Error("the answer had neither result nor error".into()),
        };
        let _ = reply.send(Ok(answer));
    }
}

impl Actor for PlainConn {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAX_IN_FLIGHT + 16);
        let handle = ConnHandle::Plain {
            conn_id: self.conn_id,
            addr: ctx.address(),
        };
        if let Some(old) = self.hub.registry.attach(self.agent_id, handle.clone()) {
            old.replace();
        }
        ctx.run_interval(self.heartbeat, |act, ctx| {
            if act.last_seen.elapsed() > act.heartbeat + act.pong_timeout {
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Policy,
                    description: Some("pong timeout".into()),
                }));
                ctx.stop();
                return;
            }
            ctx.ping(b"agenthub");
        });
        // Hand over what waited while the agent was away, oldest first. `dispatched` tasks are
        // offered too: one that was in flight on the stream this one replaces may not be back
        // to `queued` yet (its actor writes that through the writer), and its actor takes the
        // offer only if its stream is gone or superseded.
        let hub = self.hub.clone();
        let agent_id = self.agent_id;
        actix::spawn(async move {
            let queued = tasks::Entity::find()
                .filter(tasks::Column::AgentId.eq(agent_id))
                .filter(tasks::Column::Status.is_in(["queued", "reserved", "dispatched"]))
                .order_by_asc(tasks::Column::JobId)
                .all(&hub.db)
                .await
                .unwrap_or_default();
            for task in queued {
                if let Some(actor) = hub.registry.task(task.id) {
                    actor.do_send(Attach {
                        conn: handle.clone(),
                    });
                }
            }
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.hub.registry.detach(self.agent_id, self.conn_id);
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(ConnError::Disconnected));
        }
        Running::Stop
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for PlainConn {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_seen = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(err) => {
                ctx.close(Some(ws::CloseReason {
                    code: ws::CloseCode::Size,
                    description: Some(err.to_string()),
                }));
                ctx.stop();
            }
        }
    }
}

/// Send a task to the agent.
#[derive(Message)]
#[rtype(result = "Result<(), ConnError>")]
pub struct Deliver {
    pub frame: Value,
    pub task_id: String,
    pub reply: oneshot::Sender<Result<AgentReply, ConnError>>,
}

impl Handler<Deliver> for PlainConn {
    type Result = Result<(), ConnError>;

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) -> Self::Result {
        if self.pending.len() >= MAX_IN_FLIGHT {
            return Err(ConnError::Busy);
        }
        ctx.text(msg.frame.to_string());
        self.pending.insert(msg.task_id, msg.reply);
        Ok(())
    }
}

impl Handler<super::ws_envelope::Replaced> for PlainConn {
    type Result = ();

    fn handle(&mut self, _: super::ws_envelope::Replaced, ctx: &mut Self::Context) {
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Normal,
            description: Some("replaced by new connection".into()),
        }));
        ctx.stop();
    }
}
