//! The Task actor and the persistence of a call's life.
//!
//! `open` writes the task row, the idempotency key and the reservation in one transaction
//! before anything is sent to the agent. The actor then hands the call to the agent's
//! connection, owns the deadline, and on the first outcome (answer, error, disconnect or
//! timeout) calls `settle`, which moves the task to its final state and charges or releases
//! the reservation in one transaction, guarded so that a second outcome settles nothing.
//! `recover` settles, at start-up, every task a crash left unfinished.

use crate::{
    Env, Hub,
    conn::{AgentReply, ConnError, ConnHandle},
    db,
    error::{HubError, HubResult},
    later::{CallStats, MayHoldBack, TaskFinal},
    ledger::{self, Memo},
    reputation,
};
use actix::prelude::*;
use entities::{agents, idempotency_keys, tasks};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect, Set, sea_query::Expr,
};
use serde_json::Value;
use std::{sync::Arc, time::Duration};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const FINAL: [&str; 4] = ["completed", "failed", "timeout", "cancelled"];
const OPEN: [&str; 3] = ["reserved", "queued", "dispatched"];

/// What a new task is.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub payer_id: Uuid,
    pub caller_agent_id: Option<Uuid>,
    pub agent: agents::Model,
    pub source: &'static str,
    pub buyer: String,
    pub tool_name: String,
    pub arguments: Value,
    pub request_id: String,
    pub fingerprint: String,
    pub price: i64,
    pub deadline: Duration,
    /// The task an earlier, refunded attempt with the same `requestId` used.
    pub retry_of: Option<Uuid>,
    /// No connection can take it now: it starts `queued` (pollable at once).
    pub queued: bool,
}

/// Why `open` did not create a task.
pub enum OpenError {
    /// Another request with the same `(payer, requestId)` got there first.
    Raced,
    Hub(HubError),
}

impl From<HubError> for OpenError {
    fn from(e: HubError) -> Self {
        OpenError::Hub(e)
    }
}

impl From<sea_orm::DbErr> for OpenError {
    fn from(e: sea_orm::DbErr) -> Self {
        OpenError::Hub(e.into())
    }
}

/// The marker error of a `requestId` race inside a group transaction (it must roll the job
/// back like any failure; [`open`] turns it into [`OpenError::Raced`]).
const RACED: &str = "REQUEST_ID_RACED";

/// Creates the task, its idempotency key and its reservation, atomically, in the writer's
/// next group transaction. A task that already has its connection is stored `dispatched`
/// (the hand-over is persisted with the task), else `queued`.
pub async fn open(hub: &Hub, new: NewTask) -> Result<tasks::Model, OpenError> {
    let now = hub.env.now();
    let id = hub.env.new_id();
    let key_id = hub.env.new_id();
    let task = tasks::Model {
        id,
        job_id: hub.next_job_id(),
        payer_id: new.payer_id,
        caller_agent_id: new.caller_agent_id,
        agent_id: new.agent.id,
        payee_id: new.agent.owner_id,
        source: new.source.to_string(),
        buyer: new.buyer.clone(),
        tool_name: new.tool_name.clone(),
        arguments: scrub(new.arguments.clone()),
        request_id: new.request_id.clone(),
        price: new.price,
        status: if new.queued { "queued" } else { "dispatched" }.into(),
        result: None,
        error: None,
        reserve_tx: None,
        settle_tx: None,
        created_at: now,
        deadline_at: now + chrono::Duration::from_std(new.deadline).unwrap_or_default(),
        completed_at: None,
        duration_ms: None,
    };
    let env = hub.env.clone();
    let written = hub
        .writer
        .run(move |txn| {
            let (env, new, mut task) = (env.clone(), new.clone(), task.clone());
            Box::pin(async move {
                if new.price > 0 {
                    let memo = Memo {
                        task_id: Some(task.id),
                        agent_id: Some(new.agent.id),
                        request_id: Some(new.request_id.clone()),
                    };
                    task.reserve_tx =
                        Some(ledger::reserve(&env, txn, new.payer_id, new.price, &memo).await?);
                }
                let row = tasks::ActiveModel::from(task.clone());
                match txn.later() {
                    Some(later) => later.task(row),
                    None => {
                        tasks::Entity::insert(row).exec(txn).await?;
                    }
                }
                store_request_id(txn, &new, key_id, task.id, task.created_at).await?;
                Ok(task)
            })
        })
        .await;
    match written {
        Ok(task) => Ok(task),
        Err(HubError::Coded { code: RACED, .. }) => Err(OpenError::Raced),
        Err(err) => Err(err.into()),
    }
}

/// Points the `(payer, requestId)` key at the new task: a new key, or the key of the refunded
/// attempt this one retries. Another request that got there first is the [`RACED`] error.
async fn store_request_id<C: MayHoldBack>(
    conn: &C,
    new: &NewTask,
    key_id: Uuid,
    task_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> HubResult<()> {
    let raced = || HubError::Coded {
        status: 409,
        code: RACED,
        message: "another request with this requestId got there first".into(),
    };
    match new.retry_of {
        None => {
            let key = idempotency_keys::ActiveModel {
                id: Set(key_id),
                payer_id: Set(new.payer_id),
                request_id: Set(new.request_id.clone()),
                fingerprint: Set(new.fingerprint.clone()),
                task_id: Set(task_id),
                created_at: Set(now),
            };
            if let Some(later) = conn.later() {
                // A key another job inserted first fails the flush; the batch then runs job by
                // job, and this job, alone, inserts at once and gets RACED below.
                later.idempotency_key(key);
            } else if let Err(err) = idempotency_keys::Entity::insert(key).exec(conn).await {
                return Err(if db::is_unique_violation(&err) {
                    raced()
                } else {
                    err.into()
                });
            }
        }
        Some(previous) => {
            let moved = idempotency_keys::Entity::update_many()
                .col_expr(idempotency_keys::Column::TaskId, Expr::value(task_id))
                .filter(idempotency_keys::Column::PayerId.eq(new.payer_id))
                .filter(idempotency_keys::Column::RequestId.eq(&new.request_id))
                .filter(idempotency_keys::Column::TaskId.eq(previous))
                .exec(conn)
                .await?;
            if moved.rows_affected != 1 {
                return Err(raced());
            }
        }
    }
    Ok(())
}

/// The largest job id so far (at start-up; afterwards the hub counts in memory).
pub async fn max_job_id<C: ConnectionTrait>(conn: &C) -> HubResult<i64> {
    let max: Option<Option<i64>> = tasks::Entity::find()
        .select_only()
        .column_as(tasks::Column::JobId.max(), "max")
        .into_tuple()
        .one(conn)
        .await?;
    Ok(max.flatten().unwrap_or(0))
}

/// Replaces NUL characters, which PostgreSQL cannot store in text or JSON, in everything an
/// agent or a caller sent (results, errors, arguments), so that no answer can make a task
/// impossible to settle.
pub fn scrub(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(scrub_text(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(scrub).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (if k.contains('\0') { scrub_text(&k) } else { k }, scrub(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A text without NUL characters (each becomes U+FFFD).
pub fn scrub_text(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// The final outcome of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed(Value),
    Failed(String),
    Timeout,
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::Failed(_) => "failed",
            Outcome::Timeout => "timeout",
        }
    }
}

/// Moves an open task to its final state and settles its reservation, once, in the writer's
/// next group transaction. Returns the task as stored; if it was already final, nothing
/// changes and the stored task is returned.
pub async fn settle(hub: &Hub, task_id: Uuid, outcome: Outcome) -> HubResult<tasks::Model> {
    settle_with(hub, task_id, None, outcome).await
}

/// [`settle`] for a caller that holds the task as it was opened (its task actor): what a
/// settlement needs of it (payer, payee, price, start) never changes after the open, so the
/// row is not read again; the final-state update alone tells whether it was still open.
pub async fn settle_known(
    hub: &Hub,
    task: tasks::Model,
    outcome: Outcome,
) -> HubResult<tasks::Model> {
    settle_with(hub, task.id, Some(task), outcome).await
}

async fn settle_with(
    hub: &Hub,
    task_id: Uuid,
    known: Option<tasks::Model>,
    outcome: Outcome,
) -> HubResult<tasks::Model> {
    let env = hub.env.clone();
    let settled = hub
        .writer
        .run(move |txn| {
            let (env, known, outcome) = (env.clone(), known.clone(), outcome.clone());
            Box::pin(async move { settle_in(&env, txn, task_id, known, outcome).await })
        })
        .await;
    match settled {
        Ok(task) => Ok(task),
        // Whatever went wrong, a task some other writer settled is an answer.
        Err(err) => match find(hub, task_id).await {
            Ok(task) if FINAL.contains(&task.status.as_str()) => Ok(task),
            _ => Err(err),
        },
    }
}

/// [`settle`]'s writes, inside the caller's transaction.
async fn settle_in<C: MayHoldBack>(
    env: &Env,
    txn: &C,
    task_id: Uuid,
    known: Option<tasks::Model>,
    outcome: Outcome,
) -> HubResult<tasks::Model> {
    let now = env.now();
    let was_known = known.is_some();
    let task = match known {
        Some(task) => task,
        None => {
            // The row is locked for the rest of the transaction (PostgreSQL; SQLite's write
            // lock already serialises writers), so a second outcome racing this one in
            // another process waits here and then finds the task final, instead of trying
            // to move a reservation that is already gone.
            let task = tasks::Entity::find_by_id(task_id)
                .lock_exclusive()
                .one(txn)
                .await?
                .ok_or_else(|| HubError::not_found("Task"))?;
            if FINAL.contains(&task.status.as_str()) {
                return Ok(task);
            }
            task
        }
    };
    let memo = Memo {
        task_id: Some(task.id),
        agent_id: Some(task.agent_id),
        request_id: Some(task.request_id.clone()),
    };
    let completed = matches!(outcome, Outcome::Completed(_));
    let settle_tx = match (task.price > 0, completed) {
        (false, _) => None,
        (true, true) => {
            Some(ledger::charge(env, txn, task.payer_id, task.payee_id, task.price, &memo).await?)
        }
        (true, false) => Some(ledger::release(env, txn, task.payer_id, task.price, &memo).await?),
    };
    let duration_ms = (now - task.created_at).num_milliseconds().max(0);
    let mut settled = task.clone();
    settled.status = outcome.status().to_string();
    settled.settle_tx = settle_tx;
    settled.completed_at = Some(now);
    settled.duration_ms = Some(duration_ms);
    match outcome {
        Outcome::Completed(result) => settled.result = Some(scrub(result)),
        Outcome::Failed(message) => settled.error = Some(scrub_text(&message)),
        Outcome::Timeout => settled.error = Some("The agent did not answer in time".into()),
    }
    match (txn.later(), was_known) {
        // Written with the other settlements of the batch, by one statement that also
        // requires the task to be still open (else the batch runs job by job).
        (Some(later), true) => later.task_final(TaskFinal {
            id: task.id,
            status: settled.status.clone(),
            settle_tx: settled.settle_tx,
            completed_at: now,
            duration_ms,
            result: settled.result.clone(),
            error: settled.error.clone(),
        }),
        _ => {
            // Only what changed is written (the arguments may be large).
            let changes = tasks::ActiveModel {
                status: Set(settled.status.clone()),
                settle_tx: Set(settled.settle_tx),
                completed_at: Set(settled.completed_at),
                duration_ms: Set(settled.duration_ms),
                result: Set(settled.result.clone()),
                error: Set(settled.error.clone()),
                ..Default::default()
            };
            let updated = tasks::Entity::update_many()
                .set(changes)
                .filter(tasks::Column::Id.eq(task.id))
                .filter(tasks::Column::Status.is_in(OPEN))
                .exec(txn)
                .await?;
            if updated.rows_affected != 1 {
                // Already final (settled by another outcome, or between our read and our
                // write): the job fails, so the writer rolls our legs back, and
                // `settle_with` answers with the task as the other outcome left it.
                return Err(HubError::Internal(anyhow::anyhow!(
                    "task {task_id} was settled concurrently"
                )));
            }
        }
    }
    if task.source != "test" {
        let stats = CallStats::one(completed, duration_ms, task.price, now);
        match txn.later() {
            Some(later) => later.stats(task.agent_id, stats),
            None => add_call_stats(txn, task.agent_id, stats).await?,
        }
    }
    Ok(settled)
}

/// Writes the final states of settled tasks, up to 200 per statement (a group transaction's
/// flush, see [`crate::later::TaskFinal`]). Fails when a task appears twice or was not open
/// any more, so that the writer runs the batch job by job.
pub(crate) async fn write_finals<C: ConnectionTrait>(
    conn: &C,
    finals: Vec<TaskFinal>,
) -> Result<(), sea_orm::DbErr> {
    const COLUMNS: &str = "id, status, settle_tx, completed_at, duration_ms, result, error";
    const SET: &str = "status = v.status, settle_tx = v.settle_tx, \
        completed_at = v.completed_at, duration_ms = v.duration_ms, result = v.result, \
        error = v.error";
    let open = OPEN.map(|s| format!("'{s}'")).join(", ");
    let backend = conn.get_database_backend();
    for chunk in finals.chunks(200) {
        let wanted: std::collections::HashSet<Uuid> = chunk.iter().map(|f| f.id).collect();
        if wanted.len() != chunk.len() {
            return Err(sea_orm::DbErr::Custom(
                "a task was settled twice in one batch".into(),
            ));
        }
        let mut rows = Vec::with_capacity(chunk.len());
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 7);
        for (i, f) in chunk.iter().enumerate() {
            rows.push(match backend {
                DbBackend::Postgres => {
                    let n = i * 7;
                    format!(
                        "(${}::uuid, ${}::varchar, ${}::uuid, ${}::timestamptz, ${}::bigint, \
                         ${}::json, ${}::text)",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4,
                        n + 5,
                        n + 6,
                        n + 7
                    )
                }
                _ => "(?, ?, ?, ?, ?, ?, ?)".to_string(),
            });
            values.extend([
                f.id.into(),
                f.status.clone().into(),
                f.settle_tx.into(),
                f.completed_at.into(),
                f.duration_ms.into(),
                f.result.clone().into(),
                f.error.clone().into(),
            ]);
        }
        let rows = rows.join(", ");
        let sql = match backend {
            DbBackend::Postgres => format!(
                "UPDATE tasks AS t SET {SET} FROM (VALUES {rows}) AS v({COLUMNS}) \
                 WHERE t.id = v.id AND t.status IN ({open}) RETURNING t.id"
            ),
            _ => format!(
                "WITH v({COLUMNS}) AS (VALUES {rows}) UPDATE tasks SET {SET} FROM v \
                 WHERE tasks.id = v.id AND tasks.status IN ({open}) RETURNING id"
            ),
        };
        let updated = conn
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                backend, sql, values,
            ))
            .await?;
        let mut done = std::collections::HashSet::with_capacity(updated.len());
        for row in &updated {
            done.insert(row.try_get::<Uuid>("", "id")?);
        }
        if done != wanted {
            return Err(sea_orm::DbErr::Custom(format!(
                "{} of {} settled tasks were not open any more",
                wanted.len() - done.intersection(&wanted).count(),
                wanted.len()
            )));
        }
    }
    Ok(())
}

/// Adds settled calls to the agent's counters for reputation and leaderboards, and stores
/// its new reputation score (one call's, or a whole group transaction's for one agent).
pub(crate) async fn add_call_stats<C: ConnectionTrait>(
    conn: &C,
    agent_id: Uuid,
    stats: CallStats,
) -> HubResult<()> {
    let Some(agent) = agents::Entity::find_by_id(agent_id).one(conn).await? else {
        return Ok(()); // deleted meanwhile
    };
    let mut next = agent.clone();
    next.total_calls += stats.calls;
    next.completed_calls += stats.completed;
    next.failed_calls += stats.failed;
    next.total_latency_ms += stats.latency_ms;
    next.tokens_earned += stats.earned;
    let mut active = agent.into_active_model();
    active.total_calls = Set(next.total_calls);
    active.completed_calls = Set(next.completed_calls);
    active.failed_calls = Set(next.failed_calls);
    active.total_latency_ms = Set(next.total_latency_ms);
    active.tokens_earned = Set(next.tokens_earned);
    active.reputation_score = Set(reputation::stored_score(&reputation::Inputs::of(&next)));
    if let Some(at) = stats.at {
        active.updated_at = Set(at);
    }
    active.update(conn).await?;
    Ok(())
}

/// An agent's answer to a task it fetched (polling, or the plain stream's answer by id): the
/// task's actor settles it and tells whoever waits. An answer can come before the actor is
/// registered (a poller may lease the task the moment `open` commits); then it is settled
/// here, and the actor, if it has appeared meanwhile, is told to look again. Together with the
/// actor's own look when it starts, the caller learns the outcome at once either way.
pub async fn resolve(hub: &Hub, task_id: Uuid, outcome: Outcome) -> HubResult<tasks::Model> {
    if let Some(actor) = hub.registry.task(task_id) {
        let (tx, rx) = oneshot::channel();
        actor.do_send(Subscribe { reply: tx });
        actor.do_send(Resolve { outcome });
        return match rx.await {
            Ok(result) => result,
            Err(_) => find(hub, task_id).await,
        };
    }
    let settled = settle(hub, task_id, outcome).await?;
    if let Some(actor) = hub.registry.task(task_id) {
        // Settling a final task changes nothing: the actor just hands the stored task on.
        actor.do_send(Resolve {
            outcome: Outcome::Timeout,
        });
    }
    Ok(settled)
}

/// The task as stored, or 404.
pub async fn find(hub: &Hub, task_id: Uuid) -> HubResult<tasks::Model> {
    tasks::Entity::find_by_id(task_id)
        .one(&hub.db)
        .await?
        .ok_or_else(|| HubError::not_found("Task"))
}

/// Whether a task is already in a final state (a database error counts as not final).
async fn is_final(hub: &Hub, task_id: Uuid) -> bool {
    find(hub, task_id)
        .await
        .is_ok_and(|t| FINAL.contains(&t.status.as_str()))
}

/// Settles every task a previous process left open: nothing stays reserved across a crash.
pub async fn recover(hub: &Hub) -> HubResult<usize> {
    let open = tasks::Entity::find()
        .filter(tasks::Column::Status.is_in(OPEN))
        .all(&hub.db)
        .await?;
    let n = open.len();
    for task in open {
        settle(
            hub,
            task.id,
            Outcome::Failed("The hub restarted before the call finished".into()),
        )
        .await?;
    }
    if n > 0 {
        tracing::warn!(tasks = n, "settled tasks left open by the previous run");
    }
    Ok(n)
}

/// The actor of one in-flight call.
///
/// With a connection (envelope WebSocket, HTTP, push, a connected plain stream) it hands the
/// call over at once. Without one (a plain-mode agent that is away, or a polling agent) the
/// task waits `queued` until the agent connects (`Attach`) or polls and answers (`Resolve`).
/// Whatever comes first (answer, error or deadline) settles the task, once.
pub struct TaskActor {
    hub: Arc<Hub>,
    task: tasks::Model,
    conn: Option<ConnHandle>,
    deadline: Duration,
    waiters: Vec<oneshot::Sender<HubResult<tasks::Model>>>,
    settling: bool,
}

impl TaskActor {
    pub fn new(
        hub: Arc<Hub>,
        task: tasks::Model,
        conn: Option<ConnHandle>,
        deadline: Duration,
    ) -> Self {
        Self {
            hub,
            task,
            conn,
            deadline,
            waiters: Vec::new(),
            settling: false,
        }
    }

    fn finish(&mut self, outcome: Outcome, ctx: &mut Context<Self>) {
        if self.settling {
            return;
        }
        self.settling = true;
        let hub = self.hub.clone();
        let task = self.task.clone();
        async move { crate::wallet::settle(&hub, task, outcome).await }
            .into_actor(self)
            .map(|result, act, ctx| {
                if let Err(err) = &result {
                    tracing::error!(task_id = %act.task.id, error = ?err, "settling failed");
                }
                for waiter in act.waiters.drain(..) {
                    let _ = waiter.send(match &result {
                        Ok(task) => Ok(task.clone()),
                        Err(_) => Err(HubError::Internal(anyhow::anyhow!("settling failed"))),
                    });
                }
                act.hub
                    .registry
                    .untrack(act.task.payer_id, &act.task.request_id, act.task.id);
                act.hub.registry.forget_task(act.task.id);
                ctx.stop();
            })
            .wait(ctx);
    }

    /// Whether a lost connection puts the task back in the queue (plain-stream agents get it
    /// again when they reconnect) rather than failing it.
    fn requeues(&self) -> bool {
        matches!(self.conn, Some(ConnHandle::Plain { .. }))
    }

    /// Waits in the queue for the agent, or goes straight to a newer stream of it.
    fn enqueue(&mut self, ctx: &mut Context<Self>) {
        if let Some(conn @ ConnHandle::Plain { .. }) = self.hub.registry.conn(self.task.agent_id)
            && self.conn.as_ref().map(ConnHandle::conn_id) != Some(conn.conn_id())
        {
            self.dispatch(conn, ctx);
            return;
        }
        self.conn = None;
        self.task.status = "queued".into();
        let hub = self.hub.clone();
        let task_id = self.task.id;
        let agent_id = self.task.agent_id;
        // Back to `queued` before the actor reads its next message, so a hand-over that
        // follows (`Attach`) cannot be overwritten by this write.
        async move {
            move_status(&hub, task_id, &["dispatched"], "queued").await;
            hub.registry.wake_pollers(agent_id);
        }
        .into_actor(self)
        .wait(ctx);
    }

    fn dispatch(&mut self, conn: ConnHandle, ctx: &mut Context<Self>) {
        let conn_id = conn.conn_id();
        self.conn = Some(conn.clone());
        // `open` stored the first hand-over with the task; later ones (after `queued`) are
        // persisted here, before the agent can answer.
        let persisted = self.task.status == "dispatched";
        self.task.status = "dispatched".into();
        let task = self.task.clone();
        let hub = self.hub.clone();
        async move {
            if !persisted {
                mark_dispatched(&hub, task.id).await;
            }
            let rx = conn.deliver(&task).await?;
            rx.await.map_err(|_| ConnError::Disconnected)?
        }
        .into_actor(self)
        .map(move |reply, act, ctx| {
            let outcome = match reply {
                Ok(AgentReply::Result(result)) => Outcome::Completed(result),
                Ok(AgentReply::Error(message)) => Outcome::Failed(message),
                Err(ConnError::Disconnected) if act.requeues() && !act.settling => {
                    // A newer stream may already have the task: only the current hand-over
                    // decides what happens next.
                    if act.conn.as_ref().map(ConnHandle::conn_id) == Some(conn_id) {
                        act.enqueue(ctx);
                    }
                    return;
                }
                Err(ConnError::Disconnected) => {
                    Outcome::Failed("The agent disconnected before answering".into())
                }
                Err(ConnError::Busy) => {
                    Outcome::Failed("The agent has too many calls in flight".into())
                }
            };
            act.finish(outcome, ctx);
        })
        .spawn(ctx);
    }
}

/// Marks a task handed to its agent (from `reserved` or `queued`).
pub async fn mark_dispatched(hub: &Hub, task_id: Uuid) -> bool {
    move_status(hub, task_id, &["reserved", "queued"], "dispatched").await
}

/// Moves an open task from one of `from` to `to` through the writer; whether it moved (a task
/// in another state, settled meanwhile say, is left alone).
async fn move_status(
    hub: &Hub,
    task_id: Uuid,
    from: &'static [&'static str],
    to: &'static str,
) -> bool {
    hub.writer
        .run(move |txn| {
            Box::pin(async move {
                let moved = tasks::Entity::update_many()
                    .col_expr(tasks::Column::Status, Expr::value(to))
                    .filter(tasks::Column::Id.eq(task_id))
                    .filter(tasks::Column::Status.is_in(from.iter().copied()))
                    .exec(txn)
                    .await?;
                Ok(moved.rows_affected == 1)
            })
        })
        .await
        .unwrap_or(false)
}

impl Actor for TaskActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.hub.registry.remember_task(self.task.id, ctx.address());
        // The deadline runs on the hub's clock, so a simulation decides when it passes.
        self.hub
            .env
            .clock
            .sleep(self.deadline)
            .into_actor(self)
            .map(|(), act, ctx| act.finish(Outcome::Timeout, ctx))
            .spawn(ctx);
        match self.conn.clone() {
            Some(conn) => self.dispatch(conn, ctx),
            None => {
                // `open` stored it `queued` already, so a poller may have leased it and its
                // agent answered before this actor was registered: that answer was settled
                // directly. Look once, now that any later answer will find this actor, so the
                // caller is not kept waiting for the deadline.
                let (hub, id) = (self.hub.clone(), self.task.id);
                async move { is_final(&hub, id).await }
                    .into_actor(self)
                    .map(|done, act, ctx| {
                        if done {
                            // Settling a final task changes nothing and returns it as stored.
                            act.finish(Outcome::Timeout, ctx);
                        }
                    })
                    .spawn(ctx);
                self.hub.registry.wake_pollers(self.task.agent_id);
            }
        }
    }
}

/// Wait for the final task.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub reply: oneshot::Sender<HubResult<tasks::Model>>,
}

impl Handler<Subscribe> for TaskActor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) {
        self.waiters.push(msg.reply);
    }
}

/// The agent connected: hand the queued task over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Attach {
    pub conn: ConnHandle,
}

impl Handler<Attach> for TaskActor {
    type Result = ();

    fn handle(&mut self, msg: Attach, ctx: &mut Self::Context) {
        // Take it when waiting, or when a newer stream of the agent replaced the one holding it.
        let superseded = matches!(&self.conn, Some(ConnHandle::Plain { conn_id, .. }) if *conn_id != msg.conn.conn_id());
        if (self.conn.is_none() || superseded) && !self.settling {
            self.dispatch(msg.conn, ctx);
        }
    }
}

/// An answer that arrived outside a connection (a polled task's result).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resolve {
    pub outcome: Outcome,
}

impl Handler<Resolve> for TaskActor {
    type Result = ();

    fn handle(&mut self, msg: Resolve, ctx: &mut Self::Context) {
        self.finish(msg.outcome, ctx);
    }
}
