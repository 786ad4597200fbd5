//! AgentConn kinds: one actor per connected or reachable agent, one kind per delivery channel.
//! Each speaks its wire format and turns it into the same internal messages: `Deliver` a tool
//! call (answered later through a oneshot) and `ListTools`.

pub mod mcp_http;
pub mod push;
pub mod ws_envelope;
pub mod ws_plain;

use actix::{Addr, MailboxError};
use serde_json::Value;
use std::{sync::Arc, time::Duration};
use tokio::sync::oneshot;

/// What an agent answered to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentReply {
    /// The MCP result object (`{content: [...]}`).
    Result(Value),
    /// The agent reported an error.
    Error(String),
}

/// Why a connection could not take or finish a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    #[error("the agent disconnected")]
    Disconnected,
    #[error("the agent has too many calls in flight")]
    Busy,
}

impl From<MailboxError> for ConnError {
    fn from(_: MailboxError) -> Self {
        ConnError::Disconnected
    }
}

/// A call handed to an in-process agent ([`ConnHandle::Local`]).
#[derive(Debug)]
pub struct LocalCall {
    pub task: entities::tasks::Model,
    pub reply: oneshot::Sender<Result<AgentReply, ConnError>>,
}

/// A live connection of an agent, as the Registry hands it out.
#[derive(Clone)]
pub enum ConnHandle {
    Envelope {
        conn_id: u64,
        addr: Addr<ws_envelope::EnvelopeConn>,
    },
    /// A plain task stream (`/ws`).
    Plain {
        conn_id: u64,
        addr: Addr<ws_plain::PlainConn>,
    },
    /// A webhook that takes tasks by POST (push delivery).
    Push {
        client: Arc<mcp_http::McpHttp>,
        endpoint: String,
        timeout: Duration,
    },
    /// An agent inside the hub's process (embedding, the engine's simulation): calls arrive
    /// as [`LocalCall`]s on a channel; dropping the receiver or a call's reply is a
    /// disconnection.
    Local {
        conn_id: u64,
        calls: tokio::sync::mpsc::UnboundedSender<LocalCall>,
    },
    /// An MCP endpoint reached over HTTP: no live connection, each call is a request.
    Http {
        client: Arc<mcp_http::McpHttp>,
        endpoint: String,
        timeout: Duration,
    },
}

impl ConnHandle {
    pub fn conn_id(&self) -> u64 {
        match self {
            ConnHandle::Envelope { conn_id, .. } => *conn_id,
            ConnHandle::Plain { conn_id, .. } => *conn_id,
            ConnHandle::Local { conn_id, .. } => *conn_id,
            ConnHandle::Http { .. } | ConnHandle::Push { .. } => 0,
        }
    }

    /// Hands a call to the agent; the receiver resolves with its answer.
    pub async fn deliver(
        &self,
        task: &entities::tasks::Model,
    ) -> Result<oneshot::Receiver<Result<AgentReply, ConnError>>, ConnError> {
        let (tx, rx) = oneshot::channel();
        let call_id = task.id.to_string();
        let tool = task.tool_name.clone();
        let arguments = task.arguments.clone();
        match self {
            ConnHandle::Plain { addr, .. } => {
                addr.send(ws_plain::Deliver {
                    frame: task_frame(task, true),
                    task_id: call_id,
                    reply: tx,
                })
                .await??;
            }
            ConnHandle::Push {
                client,
                endpoint,
                timeout,
            } => {
                let work = push::deliver(
                    client.clone(),
                    endpoint.clone(),
                    task_frame(task, false),
                    task.id,
                    task.job_id,
                    *timeout,
                );
                actix::spawn(async move {
                    let _ = tx.send(Ok(work.await));
                });
            }
            ConnHandle::Envelope { addr, .. } => {
                addr.send(ws_envelope::Deliver {
                    call_id,
                    tool,
                    arguments,
                    reply: tx,
                })
                .await??;
            }
            ConnHandle::Local { calls, .. } => {
                calls
                    .send(LocalCall {
                        task: task.clone(),
                        reply: tx,
                    })
                    .map_err(|_| ConnError::Disconnected)?;
            }
            ConnHandle::Http {
                client,
                endpoint,
                timeout,
            } => {
                let work = client
                    .clone()
                    .call_tool(endpoint.clone(), tool, arguments, *timeout);
                actix::spawn(async move {
                    let _ = tx.send(work.await);
                });
            }
        }
        Ok(rx)
    }

    /// Asks the agent for its tools; the receiver resolves with the `tools` array.
    pub async fn list_tools(
        &self,
    ) -> Result<oneshot::Receiver<Result<Value, ConnError>>, ConnError> {
        let (tx, rx) = oneshot::channel();
        match self {
            ConnHandle::Plain { .. } | ConnHandle::Push { .. } => {
                let _ = tx.send(Ok(Value::Array(vec![task_tool()])));
            }
            ConnHandle::Local { .. } => {
                let _ = tx.send(Ok(Value::Array(Vec::new())));
            }
            ConnHandle::Envelope { addr, .. } => {
                addr.send(ws_envelope::ListTools { reply: tx }).await??;
            }
            ConnHandle::Http {
                client,
                endpoint,
                timeout,
            } => {
                let (client, endpoint, timeout) = (client.clone(), endpoint.clone(), *timeout);
                actix::spawn(async move {
                    let tools = client.list_tools(&endpoint, timeout).await;
                    let _ = tx.send(tools.map_err(|_| ConnError::Disconnected));
                });
            }
        }
        Ok(rx)
    }

    /// Closes the connection because a newer one replaced it.
    pub fn replace(&self) {
        match self {
            ConnHandle::Envelope { addr, .. } => addr.do_send(ws_envelope::Replaced),
            ConnHandle::Plain { addr, .. } => addr.do_send(ws_envelope::Replaced),
            ConnHandle::Http { .. } | ConnHandle::Push { .. } | ConnHandle::Local { .. } => {}
        }
    }
}

/// The frame a plain-mode agent receives: `{id, task, files, buyer, jobId}` (`id` only on the
/// stream; a push body has no id, its `Idempotency-Key` header carries it).
pub fn task_frame(task: &entities::tasks::Model, with_id: bool) -> Value {
    let mut frame = serde_json::json!({
        "task": task.arguments.get("task").cloned().unwrap_or(Value::String(String::new())),
        "files": task.arguments.get("files").cloned().unwrap_or_else(|| serde_json::json!([])),
        "buyer": task.buyer,
        "jobId": task.job_id,
    });
    if with_id {
        frame["id"] = Value::String(task.id.to_string());
    }
    frame
}

/// The one implicit tool of plain-mode agents.
pub fn task_tool() -> Value {
    serde_json::json!({
        "name": "task",
        "description": "Send the agent a task: plain text, optionally with files; returns its answer.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "task": { "type": "string", "description": "What to do" },
                "files": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": { "type": "string" },
                            "mimeType": { "type": "string" },
                            "content": { "type": "string", "description": "base64" },
                            "url": { "type": "string" }
                        },
                        "required": ["name"]
                    }
                }
            },
            "required": ["task"]
        }
    })
}
