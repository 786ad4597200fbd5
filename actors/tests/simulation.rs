//! A seeded simulation of the money paths of the engine: thousands of random schedules of
//! calls opened (some beyond the payer's means), answers, failures, timeouts, duplicate and
//! racing results, retries of refunded attempts and crashes (start-up recovery), each against
//! a fresh database and an independent model of every wallet. After every step the ledger
//! checker must pass (each transaction sums to zero, balances plus reservations equal grants,
//! no negative balance, no reservation left open once its task is final) and every wallet
//! must equal the model.
//!
//! The engine runs on a manual clock and seeded entropy, so a schedule is a pure function of
//! its seed; the scheduler plays the clock (a timeout is a step it chooses, and the clock
//! moves by random amounts). A failure prints its seed; replay it exactly with
//! `AGENTHUB_SIM_SEED=<seed> cargo test -p actors --test simulation`.
//! `AGENTHUB_SIM_SCHEDULES` sets how many schedules run (default 250 on SQLite, 15 on
//! PostgreSQL under `scripts/test --postgres`), `AGENTHUB_SIM_STEPS` their length (default 40).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::on_postgres;

use actors::{
    Hub, HubConfig, HubError,
    clock::ManualClock,
    ledger,
    task::{self, NewTask, OpenError, Outcome},
};
use entities::{agents, tasks};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::EntityTrait;
use serde_json::json;
use std::{collections::HashMap, sync::Arc, time::Duration};
use uuid::Uuid;

const START: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Open,
    Completed,
    Refunded,
}

struct ModelTask {
    id: Uuid,
    payer: Uuid,
    payee: Uuid,
    price: i64,
    request_id: String,
    state: State,
}

/// What the wallets must hold.
#[derive(Default)]
struct Model {
    available: HashMap<Uuid, i64>,
    reserved: HashMap<Uuid, i64>,
    tasks: Vec<ModelTask>,
}

struct World {
    hub: Arc<Hub>,
    clock: Arc<ManualClock>,
    users: Vec<Uuid>,
    agents: Vec<agents::Model>,
    model: Model,
    _dir: tempfile::TempDir,
}

async fn world(seed: u64) -> World {
    let dir = tempfile::tempdir().unwrap();
    let config = HubConfig {
        start_tokens: START,
        ..HubConfig::default()
    };
    let (hub, clock) = common::hub(dir.path(), seed, config).await;
    let mut model = Model::default();
    let mut users_ = Vec::new();
    for i in 0..4 {
        let id = common::user(&hub, i, START).await;
        model.available.insert(id, START);
        model.reserved.insert(id, 0);
        users_.push(id);
    }
    let mut agents_ = Vec::new();
    for (i, price) in [0i64, 7, 120, 450].into_iter().enumerate() {
        let owner = users_[i % users_.len()];
        agents_.push(common::agent(&hub, i, owner, price, None, Some("poll")).await);
    }
    World {
        hub,
        clock,
        users: users_,
        agents: agents_,
        model,
        _dir: dir,
    }
}

impl World {
    fn new_task(
        &self,
        payer: Uuid,
        agent: &agents::Model,
        request_id: String,
        retry_of: Option<Uuid>,
    ) -> NewTask {
        NewTask {
            payer_id: payer,
            caller_agent_id: None,
            agent: agent.clone(),
            source: "task",
            buyer: "sim".into(),
            tool_name: "task".into(),
            arguments: json!({ "task": "x" }),
            request_id,
            fingerprint: format!("fp-{}", agent.id),
            price: agent.price_per_call,
            deadline: Duration::from_secs(60),
            retry_of,
            queued: true,
        }
    }

    /// Opens a call; the model decides whether it must be refused for lack of tokens.
    async fn open(
        &mut self,
        payer: Uuid,
        agent: agents::Model,
        request_id: String,
        retry_of: Option<Uuid>,
    ) -> String {
        let price = agent.price_per_call;
        let affordable = self.model.available[&payer] >= price;
        let new = self.new_task(payer, &agent, request_id.clone(), retry_of);
        match task::open(&self.hub, new).await {
            Ok(t) => {
                assert!(
                    affordable,
                    "opened a call of {price} with {} available",
                    self.model.available[&payer]
                );
                *self.model.available.get_mut(&payer).unwrap() -= price;
                *self.model.reserved.get_mut(&payer).unwrap() += price;
                self.model.tasks.push(ModelTask {
                    id: t.id,
                    payer,
                    payee: agent.owner_id,
                    price,
                    request_id,
                    state: State::Open,
                });
                format!("open {price} -> {}", t.id)
            }
            Err(OpenError::Hub(HubError::Coded {
                code: "INSUFFICIENT_TOKENS",
                ..
            })) => {
                assert!(
                    !affordable,
                    "refused a call of {price} with {} available",
                    self.model.available[&payer]
                );
                format!("refused {price}")
            }
            Err(OpenError::Raced) => panic!("open raced with nobody"),
            Err(OpenError::Hub(e)) => panic!("open failed: {e}"),
        }
    }

    /// Applies a settlement to the model (once: a final task never changes again).
    fn model_settle(&mut self, id: Uuid, completed: bool) {
        let t = self.model.tasks.iter_mut().find(|t| t.id == id).unwrap();
        if t.state != State::Open {
            return;
        }
        *self.model.reserved.get_mut(&t.payer).unwrap() -= t.price;
        if completed {
            *self.model.available.get_mut(&t.payee).unwrap() += t.price;
            t.state = State::Completed;
        } else {
            *self.model.available.get_mut(&t.payer).unwrap() += t.price;
            t.state = State::Refunded;
        }
    }

    async fn check(&self, seed: u64, step: usize, log: &[String]) {
        let report = ledger::check(&self.hub.db).await.unwrap();
        let fail = |what: String| -> ! {
            panic!(
                "seed {seed}, step {step}: {what}\nschedule:\n  {}\nreplay: AGENTHUB_SIM_SEED={seed} cargo test -p actors --test simulation",
                log.join("\n  ")
            )
        };
        if !report.problems.is_empty() {
            fail(format!("ledger problems: {:?}", report.problems));
        }
        if report.granted != report.user_balances + report.user_reserved {
            fail(format!(
                "granted {} != balances {} + reserved {}",
                report.granted, report.user_balances, report.user_reserved
            ));
        }
        for u in &self.users {
            let b = ledger::balance(&self.hub.db, *u).await.unwrap();
            let want = (self.model.available[u], self.model.reserved[u]);
            if (b.balance, b.reserved) != want {
                fail(format!(
                    "wallet {u}: hub ({}, {}) model {want:?}",
                    b.balance, b.reserved
                ));
            }
        }
        for t in &self.model.tasks {
            let row = tasks::Entity::find_by_id(t.id)
                .one(&self.hub.db)
                .await
                .unwrap()
                .unwrap();
            let ok = match t.state {
                State::Open => !task::FINAL.contains(&row.status.as_str()),
                State::Completed => row.status == "completed",
                State::Refunded => {
                    ["failed", "timeout", "cancelled"].contains(&row.status.as_str())
                }
            };
            if !ok {
                fail(format!(
                    "task {} is {} in the hub, {:?} in the model",
                    t.id, row.status, t.state
                ));
            }
        }
    }
}

async fn run(seed: u64, steps: usize) {
    let mut w = world(seed).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = Vec::new();
    for step in 0..steps {
        w.clock
            .advance(chrono::Duration::milliseconds(rng.random_range(0..5_000)));
        let open: Vec<Uuid> = w
            .model
            .tasks
            .iter()
            .filter(|t| t.state == State::Open)
            .map(|t| t.id)
            .collect();
        let done: Vec<Uuid> = w
            .model
            .tasks
            .iter()
            .filter(|t| t.state != State::Open)
            .map(|t| t.id)
            .collect();
        let action = rng.random_range(0..100);
        let entry = match action {
            // A new call from a random payer to a random agent.
            0..=34 => {
                let payer = w.users[rng.random_range(0..w.users.len())];
                let agent = w.agents[rng.random_range(0..w.agents.len())].clone();
                let rid = format!("r{step}");
                w.open(payer, agent, rid, None).await
            }
            // The agent answers, fails, or the deadline passes.
            35..=64 if !open.is_empty() => {
                let id = open[rng.random_range(0..open.len())];
                let (outcome, completed) = match rng.random_range(0..3) {
                    0 => (Outcome::Completed(json!("ok")), true),
                    1 => (Outcome::Failed("agent error".into()), false),
                    _ => (Outcome::Timeout, false),
                };
                let label = format!("settle {id} {}", outcome.status());
                task::settle(&w.hub, id, outcome).await.unwrap();
                w.model_settle(id, completed);
                label
            }
            // Two outcomes race for the same task: exactly one wins.
            65..=74 if !open.is_empty() => {
                let id = open[rng.random_range(0..open.len())];
                let (a, b) = tokio::join!(
                    task::settle(&w.hub, id, Outcome::Completed(json!("first"))),
                    task::settle(&w.hub, id, Outcome::Failed("second".into())),
                );
                let (a, b) = (a.unwrap(), b.unwrap());
                assert_eq!(
                    a.status, b.status,
                    "seed {seed}: racing settles disagree on the stored state"
                );
                w.model_settle(id, a.status == "completed");
                format!("race {id} -> {}", a.status)
            }
            // A late or duplicate result for a finished task changes nothing.
            75..=84 if !done.is_empty() => {
                let id = done[rng.random_range(0..done.len())];
                let before = tasks::Entity::find_by_id(id)
                    .one(&w.hub.db)
                    .await
                    .unwrap()
                    .unwrap();
                let after = task::settle(&w.hub, id, Outcome::Completed(json!("late")))
                    .await
                    .unwrap();
                assert_eq!(
                    before.status, after.status,
                    "seed {seed}: a duplicate result changed a final task"
                );
                assert_eq!(
                    before.settle_tx, after.settle_tx,
                    "seed {seed}: a duplicate result moved money"
                );
                format!("duplicate {id}")
            }
            // A retry of a refunded attempt with the same requestId: a new attempt, charged once.
            85..=92 => {
                let refunded: Vec<(Uuid, Uuid, String, i64)> = w
                    .model
                    .tasks
                    .iter()
                    .filter(|t| t.state == State::Refunded)
                    .map(|t| (t.id, t.payer, t.request_id.clone(), t.price))
                    .collect();
                if refunded.is_empty() {
                    "retry: nothing refunded".to_string()
                } else {
                    let (id, payer, rid, price) =
                        refunded[rng.random_range(0..refunded.len())].clone();
                    let agent = w
                        .agents
                        .iter()
                        .find(|a| a.price_per_call == price)
                        .unwrap()
                        .clone();
                    // Only the latest attempt of a requestId may be retried.
                    let latest = w
                        .model
                        .tasks
                        .iter()
                        .rev()
                        .find(|t| t.request_id == rid && t.payer == payer)
                        .map(|t| t.id);
                    if latest != Some(id) {
                        "retry: superseded".to_string()
                    } else {
                        format!(
                            "retry of {id}: {}",
                            w.open(payer, agent, rid, Some(id)).await
                        )
                    }
                }
            }
            // The process dies: start-up settles every open task, refunded.
            93..=99 => {
                let n = task::recover(&w.hub).await.unwrap();
                for id in open.iter() {
                    w.model_settle(*id, false);
                }
                assert_eq!(
                    n,
                    open.len(),
                    "seed {seed}: recovery settled {n} of {} open tasks",
                    open.len()
                );
                format!("crash: {n} recovered")
            }
            _ => "idle".to_string(),
        };
        log.push(entry);
        w.check(seed, step, &log).await;
    }
    // Whatever happened, a final recovery leaves nothing reserved.
    task::recover(&w.hub).await.unwrap();
    let report = ledger::check(&w.hub.db).await.unwrap();
    assert_eq!(
        report.user_reserved, 0,
        "seed {seed}: tokens stranded in reservations"
    );
    assert!(
        report.problems.is_empty(),
        "seed {seed}: {:?}",
        report.problems
    );
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[actix_rt::test]
async fn random_schedules_keep_the_ledger_balanced() {
    let steps = env_num("AGENTHUB_SIM_STEPS", 40) as usize;
    if let Ok(seed) = std::env::var("AGENTHUB_SIM_SEED") {
        run(seed.parse().expect("AGENTHUB_SIM_SEED is a number"), steps).await;
        return;
    }
    // A fresh PostgreSQL database per schedule costs more than a SQLite file: fewer there.
    let schedules = env_num(
        "AGENTHUB_SIM_SCHEDULES",
        if on_postgres() { 15 } else { 250 },
    );
    let started = std::time::Instant::now();
    for seed in 0..schedules {
        run(seed, steps).await;
    }
    eprintln!(
        "simulation: {schedules} schedules x {steps} steps on {} in {:.1} s",
        if on_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        started.elapsed().as_secs_f64()
    );
}
