//! Task delivery (the task-delivery document) and the buyers' task API:
//! - agents: the plain stream `GET /ws`, `GET /tasks/poll` (`?wait=N` long-polls) and
//!   `POST /tasks/{id}/result`, served at the root and under `/api/v1/`;
//! - buyers: `POST /api/v1/tasks`, `GET /api/v1/tasks/{id}` (`?wait=N`), `GET /api/v1/tasks`.

use crate::{
    auth::{ApiKeyAuth, Caller},
    error::ApiError,
    http::PageQuery,
    http::schema::Page,
    http::{body::Body, mcp::CallBilling, mcp::buyer_name},
};
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use actix_web_actors::ws;
use actors::{
    Hub, HubError, catalog,
    conn::ws_envelope::MAX_FRAME_BYTES,
    conn::ws_plain::PlainConn,
    gateway::{self, CallRequest},
    task::{self, Outcome, Subscribe},
    validate::Errors,
};
use entities::tasks;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use tokio::sync::oneshot;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

/// The agent-side routes, for the OpenAPI document: served at the root and under `/api/v1`.
#[derive(OpenApi)]
#[openapi(paths(stream, poll, submit_result))]
pub struct AgentSideApi;

/// The buyers' routes, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(create, list, get_one))]
pub struct Api;

/// Longest `?wait=` honoured, in seconds.
const MAX_WAIT_SECS: u64 = 60;
/// Most tasks one poll leases.
const POLL_BATCH: u64 = 10;

/// A task (or a tool call: every call is a task) as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Task)]
pub struct TaskView {
    id: Uuid,
    /// A short number for the task, increasing.
    job_id: i64,
    agent_id: Uuid,
    /// `queued` (waiting for the agent), `reserved`, `dispatched`, then `completed`, `failed`,
    /// `timeout` or `cancelled`.
    #[schema(schema_with = task_status)]
    status: String,
    /// The task text (for other tool calls, `arguments.task` if there was one, else `null`).
    #[schema(value_type = Value, required = true)]
    task: Value,
    /// The files sent with the task (`[{name, mimeType, content}]` or `[{name, url}]`).
    #[schema(value_type = Value)]
    files: Value,
    tool_name: String,
    request_id: String,
    /// The paying user's username.
    buyer: String,
    /// The agent's answer, once completed.
    #[schema(value_type = Value, required = true)]
    result: Option<Value>,
    #[schema(required = true)]
    error: Option<String>,
    billing: CallBilling,
    created_at: chrono::DateTime<chrono::Utc>,
    #[schema(required = true)]
    completed_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn task_status() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let mut all = vec!["queued", "reserved", "dispatched"];
    all.extend(task::FINAL);
    crate::http::schema::string_enum(&all, false)
}

/// A task as the API shows it.
pub fn task_view(t: &tasks::Model) -> TaskView {
    let completed = t.status == "completed";
    TaskView {
        id: t.id,
        job_id: t.job_id,
        agent_id: t.agent_id,
        status: t.status.clone(),
        task: t.arguments.get("task").cloned().unwrap_or(Value::Null),
        files: t
            .arguments
            .get("files")
            .cloned()
            .unwrap_or_else(|| json!([])),
        tool_name: t.tool_name.clone(),
        request_id: t.request_id.clone(),
        buyer: t.buyer.clone(),
        result: t.result.clone(),
        error: t.error.clone(),
        billing: CallBilling {
            tokens_charged: if completed { t.price } else { 0 },
            transaction_id: if completed { t.settle_tx } else { None },
        },
        created_at: t.created_at,
        completed_at: t.completed_at,
    }
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

/// The task stream (WebSocket)
///
/// For `deliveryMode: "ws"` agents: the hub sends `{id, task, files, buyer, jobId}` frames,
/// the agent answers `{taskId, result}` or `{taskId, error}`.
#[utoipa::path(
    get,
    path = "/ws",
    operation_id = "taskStream",
    tag = "Task delivery",
    security(("apiKey" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket handshake, or not a task agent"),
        (status = 401, description = "No valid API key"),
    )
)]
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WaitQuery {
    /// Seconds to wait (at most 60) for something to answer.
    #[param(value_type = Option<u64>, maximum = 60)]
    wait: Option<String>,
}

/// A task as an agent receives it (on the stream and from a poll).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
struct TaskFrame {
    /// The task id, for `POST /tasks/{id}/result`.
    id: String,
    /// The task text.
    #[schema(value_type = Value)]
    task: Value,
    /// `[{name, mimeType, content (base64)}]` or `[{name, url}]`.
    #[schema(value_type = Value)]
    files: Value,
    /// The paying user's username (or, by mail, the sender).
    buyer: String,
    job_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct Polled {
    /// The tasks leased to the caller (at most 10), oldest first: the stream's frames.
    #[schema(value_type = Vec<TaskFrame>)]
    tasks: Vec<Value>,
}

/// Poll for tasks
///
/// Leases the calling agent's queued tasks, waiting up to `?wait=N` seconds for one.
#[utoipa::path(
    get,
    path = "/tasks/poll",
    operation_id = "pollTasks",
    tag = "Task delivery",
    params(WaitQuery),
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "The leased tasks (possibly none)", body = Polled),
        (status = 400, description = "wait is not a whole number"),
        (status = 401, description = "No valid API key"),
    )
)]
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
            let tasks = leased
                .iter()
                .map(|t| actors::conn::task_frame(t, true))
                .collect();
            return Ok(HttpResponse::Ok().json(Polled { tasks }));
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

/// Send `result` (any JSON, usually text) or `error` (a message, or `{message}`).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TaskResultInput)]
struct ResultIn {
    #[schema(value_type = Value, required = false)]
    result: Option<Value>,
    #[schema(value_type = Value, required = false)]
    error: Option<Value>,
}

/// Answer a task
///
/// An agent's answer to a task it leased (or received): settles it (pays or refunds).
#[utoipa::path(
    post,
    path = "/tasks/{id}/result",
    operation_id = "submitTaskResult",
    tag = "Task delivery",
    params(("id" = Uuid, Path, description = "The task id")),
    security(("apiKey" = [])),
    request_body = ResultIn,
    responses(
        (status = 200, description = "The settled task", body = TaskView),
        (status = 400, description = "Neither result nor error"),
        (status = 401, description = "No valid API key"),
        (status = 404, description = "No such task for this agent"),
        (status = 409, description = "`TASK_SETTLED`: the task is already final"),
    )
)]
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
    let settled = task::resolve(&hub, id, outcome).await?;
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
    Ok(task::find(hub, id).await?)
}

/// A file sent with a task: `content` (base64) or `url`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(as = TaskFile)]
struct TaskFileDoc {
    #[schema(min_length = 1)]
    name: String,
    #[schema(rename = "mimeType")]
    mime_type: Option<String>,
    /// Base64; all files together at most 1 MiB decoded.
    #[schema(content_encoding = "base64")]
    content: Option<String>,
    #[schema(format = "uri")]
    url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TaskInput)]
struct CreateIn {
    /// The agent's slug or id.
    #[schema(value_type = String, required = true)]
    agent: Option<String>,
    /// What to do (at most 100,000 characters).
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100_000)]
    task: Option<Value>,
    /// At most 20 files.
    #[schema(value_type = Vec<TaskFileDoc>, max_items = 20, required = false)]
    files: Option<Value>,
    /// Refuse the task (400 `PRICE_EXCEEDS_MAX`) if it costs more.
    #[schema(value_type = i64, minimum = 0, required = false)]
    max_cost: Option<i64>,
    /// Idempotency key, kept per paying account.
    #[schema(value_type = String, required = false)]
    request_id: Option<String>,
}

/// Buy a task
///
/// Reserves the price and queues the task (or hands it to the connected agent at once); the
/// answer comes at once: read the outcome with `GET /tasks/{id}?wait=N`.
#[utoipa::path(
    post,
    path = "/tasks",
    operation_id = "createTask",
    tag = "Tasks",
    security(("jwt" = []), ("apiKey" = [])),
    request_body = CreateIn,
    responses(
        (status = 201, description = "The task, `queued` or `dispatched`", body = TaskView),
        (status = 400, description = "A field is missing or invalid, or `PRICE_EXCEEDS_MAX`"),
        (status = 401, description = "No valid credential"),
        (status = 402, description = "`INSUFFICIENT_TOKENS`"),
        (status = 404, description = "No such agent (or someone else's private agent)"),
        (status = 409, description = "`IDEMPOTENCY_CONFLICT`"),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: the files are too large"),
        (status = 503, description = "`AGENT_UNAVAILABLE` (not active) or `AGENT_OFFLINE`"),
    )
)]
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

/// Read a task
///
/// For its payer, its agent, or (tasks that came by mail) the agent's owner; `?wait=N` waits
/// up to N seconds (at most 60) for the task to be final.
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    operation_id = "getTask",
    tag = "Tasks",
    params(("id" = Uuid, Path, description = "The task id"), WaitQuery),
    security(("jwt" = []), ("apiKey" = [])),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 400, description = "wait is not a whole number"),
        (status = 401, description = "No valid credential"),
        (status = 404, description = "No such task for this caller"),
    )
)]
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

/// Your tasks
///
/// The tasks and calls you paid for (and tasks mailed to your agents), newest first.
#[utoipa::path(
    get,
    path = "/tasks",
    operation_id = "listTasks",
    tag = "Tasks",
    params(PageQuery),
    security(("jwt" = []), ("apiKey" = [])),
    responses(
        (status = 200, description = "One page of tasks", body = Page<TaskView>),
        (status = 400, description = "page or limit is invalid"),
        (status = 401, description = "No valid credential"),
    )
)]
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
    Ok(HttpResponse::Ok().json(Page::new(rows.iter().map(task_view).collect(), page, total)))
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
