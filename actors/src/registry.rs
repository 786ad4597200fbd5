//! The Registry: which connection holds each agent (presence), and which task actor runs each
//! in-flight call, keyed by `(paying account, requestId)`.
//!
//! Lookups are O(1) reads of concurrent maps, taken without a mailbox hop, so the registry is
//! never the throughput bottleneck, and no I/O ever happens here. Attaching a connection is
//! atomic per agent: exactly one connection is current, and the one it replaced is returned
//! so the caller can close it. "Which node holds this agent" stays behind this interface.

use crate::{conn::ConnHandle, task::TaskActor};
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
