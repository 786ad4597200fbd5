//! The Wallet actor: one per user with calls in flight (ARCHITECTURE.md), serialising that
//! user's balance changes.
//!
//! Every call the user pays for opens (reserves) and settles (charges or releases) through
//! the user's wallet actor, which hands them to the group-commit writer ([`crate::writer`])
//! in the order they arrived. It does not wait for one movement to commit before handing on
//! the next: the writer runs jobs in the order it receives them (and a wallet's later
//! movements in the same transaction see its earlier ones, see [`crate::later`]), so order is
//! kept either way, and waiting only left the writer idle while the result of the previous
//! batch travelled back (the benchmark's single paying caller kept the writer busy half the
//! time). A movement is acknowledged only once committed. The database stays the source of truth: the actor caches nothing about the
//! balance, so an idle wallet simply stops (after [`IDLE`]) and the next call starts a new one.

use crate::{
    Hub,
    error::HubResult,
    task::{self, NewTask, OpenError, Outcome},
};
use actix::prelude::*;
use entities::tasks;
use std::{
    sync::{Arc, Weak},
    time::{Duration, Instant},
};
use tokio::sync::oneshot;
use uuid::Uuid;

/// How long a wallet without movements lives on.
pub const IDLE: Duration = Duration::from_secs(30);

/// Opens a task (with its reservation, when priced) through the payer's wallet actor.
pub async fn open(hub: &Arc<Hub>, new: NewTask) -> Result<tasks::Model, OpenError> {
    match through_wallet(hub, new.payer_id, |reply| {
        Op::Open(Box::new(new.clone()), reply)
    })
    .await
    {
        Some(result) => result,
        None => task::open(hub, new).await,
    }
}

/// Settles a task (charge or release) through the payer's wallet actor.
pub async fn settle(
    hub: &Arc<Hub>,
    task: tasks::Model,
    outcome: Outcome,
) -> HubResult<tasks::Model> {
    match through_wallet(hub, task.payer_id, |reply| {
        Op::Settle(Box::new(task.clone()), outcome.clone(), reply)
    })
    .await
    {
        Some(result) => result,
        None => task::settle_known(hub, task, outcome).await,
    }
}

/// Hands a movement to the user's wallet actor and waits for its result. A message that a
/// stopping actor dropped never ran, so it is offered to a fresh actor; after three such
/// losses `None` tells the caller to apply the movement itself.
async fn through_wallet<T>(
    hub: &Arc<Hub>,
    user_id: Uuid,
    op: impl Fn(oneshot::Sender<T>) -> Op,
) -> Option<T> {
    for _ in 0..3 {
        let (reply, answer) = oneshot::channel();
        let addr = hub.registry.wallet(hub, user_id);
        addr.do_send(Movement(op(reply)));
        match answer.await {
            Ok(result) => return Some(result),
            Err(_) => hub.registry.retire_wallet(user_id, &addr),
        }
    }
    None
}

/// A balance change to apply, with whom to tell once it is durable.
enum Op {
    Open(
        Box<NewTask>,
        oneshot::Sender<Result<tasks::Model, OpenError>>,
    ),
    Settle(
        Box<tasks::Model>,
        Outcome,
        oneshot::Sender<HubResult<tasks::Model>>,
    ),
}

#[derive(Message)]
#[rtype(result = "()")]
struct Movement(Op);

pub struct WalletActor {
    hub: Weak<Hub>,
    user_id: Uuid,
    waiting: Vec<Op>,
    /// Movements handed to the writer and not yet answered.
    in_writer: usize,
    last_movement: Instant,
}

impl WalletActor {
    pub fn new(hub: &Arc<Hub>, user_id: Uuid) -> Self {
        Self {
            hub: Arc::downgrade(hub),
            user_id,
            waiting: Vec::new(),
            in_writer: 0,
            last_movement: Instant::now(),
        }
    }

    /// Hands what waits to the writer, in arrival order (the futures spawned here are first
    /// polled in the order they were spawned, and each hands its job over on that first poll).
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.waiting.is_empty() {
            return;
        }
        let Some(hub) = self.hub.upgrade() else {
            ctx.stop(); // the hub is gone; dropping the ops tells their callers
            return;
        };
        let batch = std::mem::take(&mut self.waiting);
        self.in_writer += batch.len();
        let n = batch.len();
        async move {
            futures_util::future::join_all(batch.into_iter().map(|op| apply(&hub, op))).await;
        }
        .into_actor(self)
        .map(move |(), act, _| {
            act.in_writer -= n;
            act.last_movement = Instant::now();
        })
        .spawn(ctx);
    }

    fn stop_if_idle(&mut self, ctx: &mut Context<Self>) {
        if self.in_writer == 0 && self.waiting.is_empty() && self.last_movement.elapsed() >= IDLE {
            if let Some(hub) = self.hub.upgrade() {
                hub.registry.retire_wallet(self.user_id, &ctx.address());
            }
            ctx.stop();
        }
    }
}

/// Applies one movement and tells its caller.
async fn apply(hub: &Hub, op: Op) {
    match op {
        Op::Open(new, reply) => {
            let _ = reply.send(task::open(hub, *new).await);
        }
        Op::Settle(task, outcome, reply) => {
            let _ = reply.send(task::settle_known(hub, *task, outcome).await);
        }
    }
}

impl Actor for WalletActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(IDLE / 2, Self::stop_if_idle);
    }
}

impl Handler<Movement> for WalletActor {
    type Result = ();

    fn handle(&mut self, Movement(op): Movement, ctx: &mut Self::Context) {
        self.last_movement = Instant::now();
        self.waiting.push(op);
        self.flush(ctx);
    }
}
