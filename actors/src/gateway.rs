//! The gateway: one tool call from a caller to an agent, whichever edge it came from
//! (`POST /mcp/call`, `/mcp/ws`, test calls, `POST /tasks` and email).
//!
//! Order of checks, so that nothing is charged for a call that cannot run: the target exists
//! and is visible to the payer (private agents: same owner only), is active, its price is
//! within `maxCost`, the `requestId` is not a conflicting retry, the agent is connected; only
//! then is the price reserved and the call handed over.
//!
//! Idempotency (`(payer, requestId)`, fingerprinted by target, tool and arguments): a retry
//! while the first attempt runs waits for the same outcome; after completion it gets the stored
//! answer without a new charge; after a refunded failure it is a new attempt; with a different
//! target, tool or arguments it is `IDEMPOTENCY_CONFLICT`.

use crate::{
    Hub, catalog,
    error::{HubError, HubResult},
    task::{self, NewTask, OpenError, Subscribe, TaskActor},
    validate::Errors,
};
use actix::Actor;
use entities::{idempotency_keys, tasks};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::{sync::Arc, time::Duration};
use tokio::sync::oneshot;
use uuid::Uuid;

/// One call as an edge received it.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub payer_id: Uuid,
    pub caller_agent_id: Option<Uuid>,
    pub buyer: String,
    pub target: Option<String>,
    pub tool_name: Option<String>,
    pub arguments: Option<Value>,
    pub request_id: Option<String>,
    pub max_cost: Option<i64>,
    /// `mcp`, `ws`, `test`, ...
    pub source: &'static str,
    /// Test calls run unbilled.
    pub billed: bool,
    /// Wait for the outcome (`/mcp/call`), or answer once the task is queued (`POST /tasks`).
    pub wait: bool,
}

/// Largest total size of the files of one task, decoded.
pub const MAX_FILES_BYTES: usize = 1024 * 1024;
/// Largest task text.
pub const MAX_TASK_CHARS: usize = 100_000;

/// Checks the arguments of the implicit `task` tool: `{task: string, files: [...]}` where a
/// file is `{name, mimeType, content}` (base64) or `{name, url}`.
pub fn check_task_arguments(arguments: &Value) -> HubResult<()> {
    let mut errors = Errors::new();
    match arguments.get("task") {
        Some(Value::String(t)) if !t.trim().is_empty() => {
            if t.chars().count() > MAX_TASK_CHARS {
                errors.add(
                    "task",
                    format!("must be at most {MAX_TASK_CHARS} characters"),
                );
            }
        }
        Some(Value::String(_)) | None | Some(Value::Null) => errors.add("task", "is required"),
        Some(_) => errors.add("task", "must be a string"),
    }
    let mut total = 0usize;
    match arguments.get("files") {
        None | Some(Value::Null) => {}
        Some(Value::Array(files)) => {
            if files.len() > 20 {
                errors.add("files", "at most 20 files");
            }
            for (i, f) in files.iter().enumerate() {
                let field = format!("files[{i}]");
                if f.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(|n| n.is_empty())
                {
                    errors.add(&format!("{field}.name"), "is required");
                }
                match (
                    f.get("content").and_then(Value::as_str),
                    f.get("url").and_then(Value::as_str),
                ) {
                    (Some(content), _) => {
                        let clean = content.trim_end_matches('=');
                        if !clean
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
                        {
                            errors.add(&format!("{field}.content"), "must be base64");
                        }
                        total += clean.len() * 3 / 4;
                    }
                    (None, Some(url)) => {
                        if url::Url::parse(url)
                            .map(|u| matches!(u.scheme(), "https" | "http"))
                            .unwrap_or(false)
                        {
                        } else {
                            errors.add(&format!("{field}.url"), "must be an http(s) URL");
                        }
                    }
                    (None, None) => errors.add(&field, "needs content (base64) or url"),
                }
            }
        }
        Some(_) => errors.add("files", "must be a list"),
    }
    errors.finish()?;
    if total > MAX_FILES_BYTES {
        return Err(coded(
            413,
            "PAYLOAD_TOO_LARGE",
            format!("Files may total at most {MAX_FILES_BYTES} bytes; these are about {total}"),
        ));
    }
    Ok(())
}

fn coded(status: u16, code: &'static str, message: impl Into<String>) -> HubError {
    HubError::Coded {
        status,
        code,
        message: message.into(),
    }
}

/// The fingerprint of what a `requestId` names.
fn fingerprint(agent_id: Uuid, tool: &str, arguments: &Value) -> String {
    let mut h = Sha256::new();
    h.update(agent_id.as_bytes());
    h.update([0]);
    h.update(tool.as_bytes());
    h.update([0]);
    h.update(arguments.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Runs a call to its final state and returns the settled task.
pub async fn call(hub: &Arc<Hub>, req: CallRequest) -> HubResult<tasks::Model> {
    let mut errors = Errors::new();
    errors.required("targetAgentId", &req.target);
    errors.required("toolName", &req.tool_name);
    let tool = req.tool_name.clone().unwrap_or_default();
    if req.tool_name.is_some() {
        errors.len("toolName", &tool, 1, 200);
    }
    let arguments = req
        .arguments
        .clone()
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !arguments.is_object() {
        errors.add("arguments", "must be an object");
    }
    if req.max_cost.is_some_and(|m| m < 0) {
        errors.add("maxCost", "must not be negative");
    }
    if let Some(id) = &req.request_id {
        errors.len("requestId", id, 1, 200);
    }
    errors.finish()?;
    let target = req.target.clone().unwrap_or_default();
    let agent_id = Uuid::parse_str(&target).map_err(|_| HubError::not_found("Agent"))?;
    let agent = catalog::find_visible(hub, &agent_id.to_string(), Some(req.payer_id)).await?;
    if agent.status != "active" {
        return Err(coded(
            503,
            "AGENT_UNAVAILABLE",
            format!(
                "Agent {} is {} and takes no calls",
                agent.slug, agent.status
            ),
        ));
    }
    let plain = agent.delivery_mode.is_some();
    if plain {
        if tool != "task" {
            return Err(HubError::invalid_field(
                "toolName",
                "this agent takes tasks: its only tool is \"task\"",
            ));
        }
        check_task_arguments(&arguments)?;
    }
    let price = if req.billed { agent.price_per_call } else { 0 };
    if let Some(max) = req.max_cost
        && price > max
    {
        return Err(coded(
            400,
            "PRICE_EXCEEDS_MAX",
            format!("This call costs {price} tokens, more than maxCost {max}"),
        ));
    }
    let fp = fingerprint(agent.id, &tool, &arguments);
    let request_id = req
        .request_id
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());

    for _ in 0..3 {
        let mut retry_of = None;
        if req.request_id.is_some() {
            match previous_attempt(hub, req.payer_id, &request_id, &fp).await? {
                Previous::None => {}
                Previous::Final(task) if task.status == "completed" => return Ok(*task),
                Previous::Final(task) => retry_of = Some(task.id),
                Previous::Running(rx) if req.wait => {
                    return wait(hub, rx, req.payer_id, &request_id).await;
                }
                Previous::Running(_) => return current(hub, req.payer_id, &request_id).await,
            }
        }
        // Plain-mode agents queue what they cannot take now; envelope agents must be there.
        let conn = route(hub, &agent);
        if conn.is_none() && !plain {
            return Err(coded(
                503,
                "AGENT_OFFLINE",
                format!("Agent {} is not connected", agent.slug),
            ));
        }
        let deadline = hub.config.call_timeout;
        let new = NewTask {
            payer_id: req.payer_id,
            caller_agent_id: req.caller_agent_id,
            agent: agent.clone(),
            source: req.source,
            buyer: req.buyer.clone(),
            tool_name: tool.clone(),
            arguments: arguments.clone(),
            request_id: request_id.clone(),
            fingerprint: fp.clone(),
            price,
            deadline,
            retry_of,
            queued: conn.is_none(),
        };
        let task = match crate::wallet::open(hub, new).await {
            Ok(task) => task,
            Err(OpenError::Raced) => continue,
            Err(OpenError::Hub(err)) => return Err(err),
        };
        let (tx, rx) = oneshot::channel();
        let queued = conn.is_none();
        let addr = TaskActor::new(hub.clone(), task.clone(), conn, deadline).start();
        // Findable at once (an answer may come before the actor has run `started`).
        hub.registry.remember_task(task.id, addr.clone());
        hub.registry.track(
            req.payer_id,
            request_id.clone(),
            crate::registry::InFlight {
                fingerprint: fp.clone(),
                task_id: task.id,
                addr: addr.clone(),
            },
        );
        if !req.wait {
            let mut task = task;
            task.status = if queued { "queued" } else { "dispatched" }.into();
            return Ok(task);
        }
        addr.do_send(Subscribe { reply: tx });
        return wait(hub, rx, req.payer_id, &request_id).await;
    }
    Err(coded(
        409,
        "IDEMPOTENCY_CONFLICT",
        "Concurrent retries of this requestId; retry",
    ))
}

/// The channel a call to this agent takes now: its WebSocket for websocket agents, its MCP
/// endpoint for http agents, and for hybrid agents the WebSocket when connected, else HTTP.
pub fn route(hub: &Hub, agent: &entities::agents::Model) -> Option<crate::conn::ConnHandle> {
    let http = || {
        agent
            .mcp_endpoint
            .clone()
            .map(|endpoint| crate::conn::ConnHandle::Http {
                client: hub.mcp.clone(),
                endpoint,
                timeout: hub.config.call_timeout,
            })
    };
    if let Some(mode) = agent.delivery_mode.as_deref() {
        return match mode {
            "push" => agent
                .endpoint
                .clone()
                .map(|endpoint| crate::conn::ConnHandle::Push {
                    client: hub.mcp.clone(),
                    endpoint,
                    timeout: hub.config.push_timeout,
                }),
            "ws" => hub.registry.conn(agent.id),
            _ => None,
        };
    }
    match agent.connection_mode.as_deref() {
        Some("http") => http(),
        Some("hybrid") => hub.registry.conn(agent.id).or_else(http),
        _ => hub.registry.conn(agent.id),
    }
}

enum Previous {
    None,
    Final(Box<tasks::Model>),
    Running(oneshot::Receiver<HubResult<tasks::Model>>),
}

async fn previous_attempt(
    hub: &Arc<Hub>,
    payer: Uuid,
    request_id: &str,
    fp: &str,
) -> HubResult<Previous> {
    let conflict = || {
        coded(
            409,
            "IDEMPOTENCY_CONFLICT",
            "This requestId was already used with a different target, tool or arguments",
        )
    };
    if let Some(running) = hub.registry.in_flight(payer, request_id) {
        if running.fingerprint != fp {
            return Err(conflict());
        }
        let (tx, rx) = oneshot::channel();
        if running.addr.try_send(Subscribe { reply: tx }).is_ok() {
            return Ok(Previous::Running(rx));
        }
    }
    let Some(key) = idempotency_keys::Entity::find()
        .filter(idempotency_keys::Column::PayerId.eq(payer))
        .filter(idempotency_keys::Column::RequestId.eq(request_id))
        .one(&hub.db)
        .await?
    else {
        return Ok(Previous::None);
    };
    if key.fingerprint != fp {
        return Err(conflict());
    }
    let task = tasks::Entity::find_by_id(key.task_id)
        .one(&hub.db)
        .await?
        .ok_or_else(|| HubError::not_found("Task"))?;
    if task::FINAL.contains(&task.status.as_str()) {
        return Ok(Previous::Final(Box::new(task)));
    }
    // Open but not in this process's registry (settling right now, or another node): poll the
    // row until it is final.
    let (tx, rx) = oneshot::channel();
    let hub = hub.clone();
    actix::spawn(async move {
        let until = tokio::time::Instant::now() + hub.config.call_timeout + Duration::from_secs(5);
        while tokio::time::Instant::now() < until {
            if let Ok(Some(t)) = tasks::Entity::find_by_id(task.id).one(&hub.db).await
                && task::FINAL.contains(&t.status.as_str())
            {
                let _ = tx.send(Ok(t));
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    Ok(Previous::Running(rx))
}

/// The task a `requestId` names now, as stored.
async fn current(hub: &Arc<Hub>, payer: Uuid, request_id: &str) -> HubResult<tasks::Model> {
    let key = idempotency_keys::Entity::find()
        .filter(idempotency_keys::Column::PayerId.eq(payer))
        .filter(idempotency_keys::Column::RequestId.eq(request_id))
        .one(&hub.db)
        .await?
        .ok_or_else(|| HubError::not_found("Task"))?;
    tasks::Entity::find_by_id(key.task_id)
        .one(&hub.db)
        .await?
        .ok_or_else(|| HubError::not_found("Task"))
}

/// Waits for a task's final state; if the actor went away without answering, reads it back.
async fn wait(
    hub: &Arc<Hub>,
    rx: oneshot::Receiver<HubResult<tasks::Model>>,
    payer: Uuid,
    request_id: &str,
) -> HubResult<tasks::Model> {
    match rx.await {
        Ok(result) => result,
        Err(_) => current(hub, payer, request_id).await,
    }
}
