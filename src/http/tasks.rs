//! Task delivery (the task-delivery document) and the buyers' task API:
//! - agents: the plain stream `GET /ws`, `GET /tasks/poll` (`?wait=N` long-polls) and
//!   `POST /tasks/{id}/result`, served at the root and under `/api/v1/`;
//! - buyers: `POST /api/v1/tasks`, `GET /api/v1/tasks/{id}` (`?wait=N`), `GET /api/v1/tasks`.

use crate::{
    auth::{ApiKeyAuth, Caller},
    error::ApiError,
    http::PageQuery,
    http::{body::Body, mcp::buyer_name},
};
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use actix_web_actors::ws;
use actors::{
    Hub, HubError, catalog,
    conn::ws_envelope::MAX_FRAME_BYTES,
    conn::ws_plain::PlainConn,
    gateway::{self, CallRequest},
    task::{self, Outcome, Resolve, Subscribe},
    validate::{Errors, Paged},
};
use entities::tasks;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Longest `?wait=` honoured, in seconds.
const MAX_WAIT_SECS: u64 = 60;
/// Most tasks one poll leases.
const POLL_BATCH: u64 = 10;

/// A task as the API shows it.
pub fn task_view(t: &tasks::Model) -> Value {
    let completed = t.status == "completed";
    json!({
        "id": t.id,
        "jobId": t.job_id,
        "agentId": t.agent_id,
        "status": t.status,
        "task": t.arguments.get("task").cloned().unwrap_or(Value::Null),
        "files": t.arguments.get("files").cloned().unwrap_or_else(|| json!([])),
        "toolName": t.tool_name,
        "requestId": t.request_id,
        "buyer": t.buyer,
        "result": t.result,
        "error": t.error,
        "billing": {
            "tokensCharged": if completed { t.price } else { 0 },
            "transactionId": if completed { t.settle_tx } else { None },
        },
        "createdAt": t.created_at,
        "completedAt": t.completed_at,
    })
}

fn parse_wait(raw: &Option<String>) -> Result<Duration, ApiError> {
    match raw.as_deref() {
        None | Some("") => Ok(Duration::ZERO),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(|n| Duration::from_secs(n.min(MAX_WAIT_SECS)))
            .map_err(|_| {
                ApiError::invalid(vec![actors::FieldError::new(
                    "wait",
                    "must be a whole number of seconds",
                )])
            }),
    }
}

/// The plain task stream of a `deliveryMode: "ws"` agent.
async fn stream(
    req: HttpRequest,
    payload: web::Payload,
    auth: ApiKeyAuth,
    hub: web::Data<Hub>,
) -> Result<HttpResponse, actix_web::Error> {
    let agent = catalog::find_owned(&hub, &auth.agent_id.to_string(), auth.owner_id)
        .await
        .map_err(ApiError::from)?;
    if agent.delivery_mode.is_none() {
        return Err(ApiError::bad_request(
            "This stream is for task agents (deliveryMode); MCP agents connect to /api/v1/agents/ws",
        )
        .into());
    }
    ws::WsResponseBuilder::new(
        PlainConn::new(hub.into_inner(), auth.agent_id),
        &req,
        payload,
    )
    .frame_size(MAX_FRAME_BYTES)
    .start()
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    wait: Option<String>,
}

/// Leases the agent's queued tasks, waiting up to `?wait=N` seconds for one.
async fn poll(
    auth: ApiKeyAuth,
    hub: web::Data<Hub>,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse, ApiError> {
    let wait = parse_wait(&query.wait)?;
    let until = tokio::time::Instant::now() + wait;
    loop {
        let notify = hub.registry.poller(auth.agent_id);
        let notified = notify.notified();
        let leased = lease(&hub, auth.agent_id).await?;
        if !leased.is_empty() || tokio::time::Instant::now() >= until {
            let frames: Vec<Value> = leased
                .iter()
                .map(|t| actors::conn::task_frame(t, true))
                .collect();
            return Ok(HttpResponse::Ok().json(json!({ "tasks": frames })));
        }
        let _ = tokio::time::timeout_at(until, notified).await;
    }
}

async fn lease(hub: &Hub, agent_id: Uuid) -> Result<Vec<tasks::Model>, ApiError> {
    let queued = tasks::Entity::find()
        .filter(tasks::Column::AgentId.eq(agent_id))
        .filter(tasks::Column::Status.eq("queued"))
        .order_by_asc(tasks::Column::JobId)
        .limit(POLL_BATCH)
        .all(&hub.db)
        .await
        .map_err(HubError::from)?;
    let mut leased = Vec::new();
    for t in queued {
        if task::mark_dispatched(hub, t.id).await {
            leased.push(t);
        }
    }
    Ok(leased)
}

#[derive(Debug, Deserialize)]
struct ResultIn {
    result: Option<Value>,
    error: Option<Value>,
}

/// An agent's answer to a task it leased (or received).
async fn submit_result(
    auth: ApiKeyAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    Body(input): Body<ResultIn>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::from(HubError::not_found("Task"));
    let id = Uuid::parse_str(&path).map_err(|_| not_found())?;
    let t = tasks::Entity::find_by_id(id)
        .one(&hub.db)
        .await
        .map_err(HubError::from)?;
    let t = t
        .filter(|t| t.agent_id == auth.agent_id)
        .ok_or_else(not_found)?;
    if task::FINAL.contains(&t.status.as_str()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Task is already {}", t.status),
        )
        .with_code("TASK_SETTLED"));
    }
    let outcome = match (input.result, input.error) {
        (_, Some(err)) if !err.is_null() => Outcome::Failed(match err {
            Value::String(s) => s,
            other => other
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| other.to_string(), str::to_string),
        }),
        (Some(result), _) => Outcome::Completed(result),
        _ => {
            return Err(ApiError::invalid(vec![actors::FieldError::new(
                "result",
                "send {\"result\": ...} or {\"error\": ...}",
            )]));
        }
    };
    let settled = match hub.registry.task(id) {
        Some(actor) => {
            let (tx, rx) = oneshot::channel();
            actor.do_send(Subscribe { reply: tx });
            actor.do_send(Resolve { outcome });
            match rx.await {
                Ok(result) => result?,
                Err(_) => reread(&hub, id).await?,
            }
        }
        None => task::settle(&hub, id, outcome).await?,
    };
    if settled.status == "timeout" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "Task timed out before the result came",
        )
        .with_code("TASK_SETTLED"));
    }
    Ok(HttpResponse::Ok().json(task_view(&settled)))
}

async fn reread(hub: &Hub, id: Uuid) -> Result<tasks::Model, ApiError> {
    tasks::Entity::find_by_id(id)
        .one(&hub.db)
        .await
        .map_err(HubError::from)?
        .ok_or_else(|| HubError::not_found("Task").into())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateIn {
    agent: Option<String>,
    task: Option<Value>,
    files: Option<Value>,
    max_cost: Option<i64>,
    request_id: Option<String>,
}

/// A buyer creates a task (JWT or API key); answered at once, 201.
async fn create(
    caller: Caller,
    hub: web::Data<Hub>,
    Body(input): Body<CreateIn>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Errors::new();
    errors.required("agent", &input.agent);
    errors.finish()?;
    let agent = catalog::find_visible(
        &hub,
        input.agent.as_deref().unwrap_or(""),
        Some(caller.user_id),
    )
    .await?;
    let mut arguments = json!({ "task": input.task.unwrap_or(Value::Null) });
    if let Some(files) = input.files {
        arguments["files"] = files;
    }
    let request = CallRequest {
        payer_id: caller.user_id,
        caller_agent_id: caller.agent_id,
        buyer: buyer_name(&hub, caller.user_id).await,
        target: Some(agent.id.to_string()),
        tool_name: Some("task".into()),
        arguments: Some(arguments),
        request_id: input.request_id,
        max_cost: input.max_cost,
        source: "task",
        billed: true,
        wait: false,
    };
    let t = gateway::call(&hub.into_inner(), request).await?;
    Ok(HttpResponse::Created().json(task_view(&t)))
}

/// Whether this caller may see the task: its payer, the agent it was sent to, or, for tasks
/// that came by email, the agent's owner.
fn may_see(t: &tasks::Model, caller: &Caller) -> bool {
    t.payer_id == caller.user_id
        || caller.agent_id == Some(t.agent_id)
        || (t.source == "email" && t.payee_id == caller.user_id)
}

async fn get_one(
    caller: Caller,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse, ApiError> {
    let wait = parse_wait(&query.wait)?;
    let id = Uuid::parse_str(&path).map_err(|_| ApiError::from(HubError::not_found("Task")))?;
    let hub = hub.into_inner();
    let t = find_task(&hub, id, &caller).await?;
    if task::FINAL.contains(&t.status.as_str()) || wait.is_zero() {
        return Ok(HttpResponse::Ok().json(task_view(&t)));
    }
    let t = wait_final(&hub, t, wait).await?;
    Ok(HttpResponse::Ok().json(task_view(&t)))
}

async fn find_task(hub: &Hub, id: Uuid, caller: &Caller) -> Result<tasks::Model, ApiError> {
    tasks::Entity::find_by_id(id)
        .one(&hub.db)
        .await
        .map_err(HubError::from)?
        .filter(|t| may_see(t, caller))
        .ok_or_else(|| HubError::not_found("Task").into())
}

async fn wait_final(
    hub: &Arc<Hub>,
    t: tasks::Model,
    wait: Duration,
) -> Result<tasks::Model, ApiError> {
    if let Some(actor) = hub.registry.task(t.id) {
        let (tx, rx) = oneshot::channel();
        actor.do_send(Subscribe { reply: tx });
        if let Ok(Ok(Ok(done))) = tokio::time::timeout(wait, rx).await {
            return Ok(done);
        }
    }
    reread(hub, t.id).await
}

async fn list(
    caller: Caller,
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let q = tasks::Entity::find()
        .filter(
            Condition::any()
                .add(tasks::Column::PayerId.eq(caller.user_id))
                .add(
                    Condition::all()
                        .add(tasks::Column::Source.eq("email"))
                        .add(tasks::Column::PayeeId.eq(caller.user_id)),
                ),
        )
        .filter(tasks::Column::Source.ne("test"))
        .order_by_desc(tasks::Column::JobId);
    let total = q.clone().count(&hub.db).await.map_err(HubError::from)?;
    let rows = q
        .offset(page.offset())
        .limit(page.limit)
        .all(&hub.db)
        .await
        .map_err(HubError::from)?;
    Ok(HttpResponse::Ok().json(Paged {
        data: rows.iter().map(task_view).collect(),
        page: page.page,
        limit: page.limit,
        total,
    }))
}

/// The agent-side routes, mounted at the root and under `/api/v1`.
pub fn configure_agent_side(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ws").route(web::get().to(stream)))
        .service(web::resource("/tasks/poll").route(web::get().to(poll)))
        .service(web::resource("/tasks/{id}/result").route(web::post().to(submit_result)));
}

/// The buyers' routes, under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    configure_agent_side(cfg);
    cfg.service(
        web::resource("/tasks")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(web::resource("/tasks/{id}").route(web::get().to(get_one)));
}
