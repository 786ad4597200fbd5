//! The Registry: which connection holds each agent (presence), and which task actor runs each
//! in-flight call, keyed by `(paying account, requestId)`.
//!
//! Lookups are O(1) reads of concurrent maps, taken without a mailbox hop, so the registry is
//! never the throughput bottleneck, and no I/O ever happens here. Attaching a connection is
//! atomic per agent: exactly one connection is current, and the one it replaced is returned
//! so the caller can close it. "Which node holds this agent" stays behind this interface.
//!
//! [`RegistryActor`] is the actor over these maps: the supervisor that owns the registry's
//! periodic work (health rounds, sweeping idle notifiers) and reports its counts.

use crate::{conn::ConnHandle, task::TaskActor, wallet::WalletActor};
use actix::Addr;
use dashmap::DashMap;
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use tokio::sync::Notify;
use uuid::Uuid;

/// An in-flight call that retries with the same `requestId` can wait on.
#[derive(Clone)]
pub struct InFlight {
    pub fingerprint: String,
    pub task_id: Uuid,
    pub addr: Addr<TaskActor>,
}

#[derive(Default)]
pub struct Registry {
    conns: DashMap<Uuid, ConnHandle>,
    calls: DashMap<(Uuid, String), InFlight>,
    /// Every running task actor, by task id.
    tasks: DashMap<Uuid, Addr<TaskActor>>,
    /// Long-polling agents wait here for new tasks.
    pollers: DashMap<Uuid, Arc<Notify>>,
    /// The wallet actor of every user with recent movements.
    wallets: DashMap<Uuid, Addr<WalletActor>>,
    next_conn: AtomicU64,
}

impl Registry {
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes `handle` the agent's connection; returns the one it replaced.
    pub fn attach(&self, agent_id: Uuid, handle: ConnHandle) -> Option<ConnHandle> {
        self.conns.insert(agent_id, handle)
    }

    /// Forgets the agent's connection if it is still `conn_id` (a replaced connection must not
    /// take its successor offline).
    pub fn detach(&self, agent_id: Uuid, conn_id: u64) {
        self.conns
            .remove_if(&agent_id, |_, h| h.conn_id() == conn_id);
    }

    pub fn conn(&self, agent_id: Uuid) -> Option<ConnHandle> {
        self.conns.get(&agent_id).map(|h| h.clone())
    }

    pub fn is_connected(&self, agent_id: Uuid) -> bool {
        self.conns.contains_key(&agent_id)
    }

    pub fn connected_ids(&self) -> Vec<Uuid> {
        self.conns.iter().map(|e| *e.key()).collect()
    }

    pub fn connected_count(&self) -> usize {
        self.conns.len()
    }

    pub fn in_flight(&self, payer: Uuid, request_id: &str) -> Option<InFlight> {
        self.calls
            .get(&(payer, request_id.to_string()))
            .map(|c| c.clone())
    }

    pub fn track(&self, payer: Uuid, request_id: String, call: InFlight) {
        self.calls.insert((payer, request_id), call);
    }

    pub fn untrack(&self, payer: Uuid, request_id: &str, task_id: Uuid) {
        self.calls
            .remove_if(&(payer, request_id.to_string()), |_, c| {
                c.task_id == task_id
            });
    }

    pub fn remember_task(&self, task_id: Uuid, addr: Addr<TaskActor>) {
        self.tasks.insert(task_id, addr);
    }

    pub fn forget_task(&self, task_id: Uuid) {
        self.tasks.remove(&task_id);
    }

    pub fn task(&self, task_id: Uuid) -> Option<Addr<TaskActor>> {
        self.tasks.get(&task_id).map(|a| a.clone())
    }

    /// The user's wallet actor, started on the current arbiter if it has none.
    pub fn wallet(&self, hub: &Arc<crate::Hub>, user_id: Uuid) -> Addr<WalletActor> {
        use actix::Actor;
        self.wallets
            .entry(user_id)
            .or_insert_with(|| WalletActor::new(hub, user_id).start())
            .clone()
    }

    /// Forgets a wallet actor that stopped (or is stopping), unless another replaced it.
    pub fn retire_wallet(&self, user_id: Uuid, addr: &Addr<WalletActor>) {
        self.wallets.remove_if(&user_id, |_, a| a == addr);
    }

    /// The notifier a long-polling agent waits on.
    pub fn poller(&self, agent_id: Uuid) -> Arc<Notify> {
        self.pollers.entry(agent_id).or_default().clone()
    }

    /// Wakes the agent's long-pollers: a task is waiting.
    pub fn wake_pollers(&self, agent_id: Uuid) {
        if let Some(n) = self.pollers.get(&agent_id) {
            n.notify_waiters();
        }
    }
}

/// The Registry actor: the engine's supervisor, started with the hub on the system arbiter
/// ([`RegistryActor::start_for`]). The actors it oversees (one per connected agent, one per
/// pending call) attach to and leave its maps ([`Registry`], on the `Hub`) directly, so every
/// lookup stays an O(1) map read without a mailbox hop, and its handlers never do I/O: what it
/// owns is the registry's periodic work —
///
/// - health-check rounds every `health_interval` (ARCHITECTURE.md: the Registry "owns presence
///   and health checks"), each spawned, never awaited, and skipped while the last one runs;
/// - sweeping the long-poll notifiers of agents nobody polls for any more;
///
/// and answering [`Snapshot`] with the registry's counts. It stops with the hub: it holds only
/// a weak reference to it.
pub struct RegistryActor {
    hub: std::sync::Weak<crate::Hub>,
    health_running: Arc<std::sync::atomic::AtomicBool>,
}

impl RegistryActor {
    /// Starts the Registry actor for `hub` on the current arbiter.
    pub fn start_for(hub: &Arc<crate::Hub>) -> actix::Addr<RegistryActor> {
        use actix::Actor;
        RegistryActor {
            hub: Arc::downgrade(hub),
            health_running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
        .start()
    }

    fn health_tick(&mut self, ctx: &mut actix::Context<Self>) {
        use actix::ActorContext;
        let Some(hub) = self.hub.upgrade() else {
            ctx.stop();
            return;
        };
        if self.health_running.swap(true, Ordering::SeqCst) {
            tracing::info!("health checks: the previous round is still running; tick skipped");
            return;
        }
        let running = HealthRound(self.health_running.clone());
        actix::spawn(async move {
            let _running = running;
            crate::health::run_round(&hub).await;
        });
    }

    fn sweep(&mut self, ctx: &mut actix::Context<Self>) {
        use actix::ActorContext;
        let Some(hub) = self.hub.upgrade() else {
            ctx.stop();
            return;
        };
        // A notifier only this map holds has no long-poll waiting on it.
        hub.registry
            .pollers
            .retain(|_, notify| Arc::strong_count(notify) > 1);
    }
}

/// Clears the "round running" flag when a health round ends, however it ends.
struct HealthRound(Arc<std::sync::atomic::AtomicBool>);

impl Drop for HealthRound {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl actix::Actor for RegistryActor {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        use actix::AsyncContext;
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        // The first round one interval after start, so WebSocket agents can reconnect first.
        let interval = hub
            .config
            .health_interval
            .max(std::time::Duration::from_millis(100));
        ctx.run_interval(interval, Self::health_tick);
        ctx.run_interval(std::time::Duration::from_secs(60), Self::sweep);
    }
}

/// The registry's counts at this moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub connected_agents: usize,
    pub tasks_in_flight: usize,
    pub pollers: usize,
    pub active_wallets: usize,
}

/// Asks the Registry actor for its [`Counts`].
#[derive(actix::Message)]
#[rtype(result = "Counts")]
pub struct Snapshot;

impl actix::Handler<Snapshot> for RegistryActor {
    type Result = actix::MessageResult<Snapshot>;

    fn handle(&mut self, _: Snapshot, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(match self.hub.upgrade() {
            Some(hub) => Counts {
                connected_agents: hub.registry.conns.len(),
                tasks_in_flight: hub.registry.tasks.len(),
                pollers: hub.registry.pollers.len(),
                active_wallets: hub.registry.wallets.len(),
            },
            None => Counts {
                connected_agents: 0,
                tasks_in_flight: 0,
                pollers: 0,
                active_wallets: 0,
            },
        })
    }
}
