//! AgentConn kinds: one actor per connected or reachable agent, one kind per delivery channel.
//! Each speaks its wire format and turns it into the same internal messages: `Deliver` a tool
//! call (answered later through a oneshot) and `ListTools`.

pub mod mcp_http;
pub mod ws_envelope;

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

/// A live connection of an agent, as the Registry hands it out.
#[derive(Clone)]
pub enum ConnHandle {
    Envelope {
        conn_id: u64,
        addr: Addr<ws_envelope::EnvelopeConn>,
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
            ConnHandle::Http { .. } => 0,
        }
    }

    /// Hands a call to the agent; the receiver resolves with its answer.
    pub async fn deliver(
        &self,
        call_id: String,
        tool: String,
        arguments: Value,
    ) -> Result<oneshot::Receiver<Result<AgentReply, ConnError>>, ConnError> {
        let (tx, rx) = oneshot::channel();
        match self {
            ConnHandle::Envelope { addr, .. } => {
                addr.send(ws_envelope::Deliver {
                    call_id,
                    tool,
                    arguments,
                    reply: tx,
                })
                .await??;
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
            ConnHandle::Http { .. } => {}
        }
    }
}
