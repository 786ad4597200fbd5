//! Writes held back to the end of a group transaction.
//!
//! Why: in a batch of the group-commit [`writer`](crate::writer), every statement is a round
//! trip to the database (through sqlx's SQLite worker thread, or over the network to
//! PostgreSQL), and that, not SQLite itself, is what a call's writes cost. Most of a call's
//! statements are inserts nothing in the same transaction reads back (the task row, its
//! idempotency key, ledger transactions and entries) or counters several calls of the batch
//! add to (an agent's statistics). Those are collected here while the batch's jobs run and
//! written just before the commit: one multi-row insert per table and one update per agent
//! for the whole batch, instead of several statements per call. What a job must see at once
//! (a wallet's balance after its reservation, whether a task is still open) stays inline.
//!
//! Wallets follow the same idea. The first movement of a wallet in a group transaction is an
//! inline `UPDATE … RETURNING` (which checks the balance and, on PostgreSQL, locks the row;
//! SQLite's write lock covers the whole transaction anyway). From then on nobody else can
//! change that wallet until the commit, so its exact state is known here: the next movements
//! of the batch are checked and applied in memory, their entries get exact balances, and one
//! `UPDATE` at the flush adds them all.
//!
//! Held-back writes can fail only at the flush (a `requestId` that another job of the same
//! batch, or another process, inserted first). Then the whole batch rolls back and the writer
//! runs each job alone, in a transaction of its own that holds nothing back, so the failing
//! job gets its own error and nothing of it stays (see `writer`).

use chrono::{DateTime, Utc};
use entities::{idempotency_keys, ledger_entries, ledger_transactions, tasks};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};
use std::collections::BTreeMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Rows per multi-row insert: far under SQLite's (32,766) and PostgreSQL's (65,535) limits on
/// bound parameters for the widest row (a task, ~20 columns).
const ROWS_PER_INSERT: usize = 200;

/// The writes held back by one group transaction.
#[derive(Default)]
pub struct Later {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    transactions: Vec<ledger_transactions::ActiveModel>,
    entries: Vec<ledger_entries::ActiveModel>,
    tasks: Vec<tasks::ActiveModel>,
    keys: Vec<idempotency_keys::ActiveModel>,
    /// By agent id: a stable order, so concurrent PostgreSQL flushes lock agents alike.
    stats: BTreeMap<Uuid, CallStats>,
    /// Wallets this transaction has moved (and so holds), with what is still to be written.
    wallets: BTreeMap<Uuid, HeldWallet>,
    /// Final states of settled tasks, written by one statement (see [`TaskFinal`]).
    finals: Vec<TaskFinal>,
}

/// A settled task's final state, held back. At the flush all of them are written by one
/// `UPDATE … FROM (VALUES …)` that also requires each task to be still open; if one was not
/// (settled by another outcome meanwhile), the flush fails and the writer runs the batch job
/// by job, where each settlement meets its row alone and inline.
#[derive(Debug, Clone)]
pub struct TaskFinal {
    pub id: Uuid,
    pub status: String,
    pub settle_tx: Option<Uuid>,
    pub completed_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// A wallet's two buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletState {
    pub balance: i64,
    pub reserved: i64,
}

struct HeldWallet {
    /// As this transaction has left it so far (written and held back).
    state: WalletState,
    /// Held back: to add at the flush.
    balance: i64,
    reserved: i64,
    at: Option<DateTime<Utc>>,
}

/// Settled calls to add to an agent's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    pub calls: i64,
    pub completed: i64,
    pub failed: i64,
    pub latency_ms: i64,
    pub earned: i64,
    /// When the last of them settled (the agent's `updated_at`).
    pub at: Option<DateTime<Utc>>,
}

impl CallStats {
    /// One settled call.
    pub fn one(completed: bool, latency_ms: i64, price: i64, at: DateTime<Utc>) -> Self {
        Self {
            calls: 1,
            completed: completed.into(),
            failed: (!completed).into(),
            latency_ms: if completed { latency_ms } else { 0 },
            earned: if completed { price } else { 0 },
            at: Some(at),
        }
    }

    fn add(&mut self, other: CallStats) {
        self.calls += other.calls;
        self.completed += other.completed;
        self.failed += other.failed;
        self.latency_ms += other.latency_ms;
        self.earned += other.earned;
        self.at = self.at.max(other.at);
    }
}

impl Later {
    fn with<R>(&self, f: impl FnOnce(&mut Held) -> R) -> R {
        // A panic elsewhere cannot leave these vectors half-pushed; keep going.
        f(&mut self.held.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn ledger(
        &self,
        transaction: ledger_transactions::ActiveModel,
        entries: impl IntoIterator<Item = ledger_entries::ActiveModel>,
    ) {
        self.with(|h| {
            h.transactions.push(transaction);
            h.entries.extend(entries);
        });
    }

    pub fn task(&self, task: tasks::ActiveModel) {
        self.with(|h| h.tasks.push(task));
    }

    pub fn idempotency_key(&self, key: idempotency_keys::ActiveModel) {
        self.with(|h| h.keys.push(key));
    }

    pub fn task_final(&self, task: TaskFinal) {
        self.with(|h| h.finals.push(task));
    }

    pub fn stats(&self, agent_id: Uuid, stats: CallStats) {
        self.with(|h| h.stats.entry(agent_id).or_default().add(stats));
    }

    /// The wallet as this transaction has left it, if it has already moved it (and so holds
    /// its row: see the module doc); `None` means the next movement must be written inline.
    pub fn wallet(&self, id: Uuid) -> Option<WalletState> {
        self.with(|h| h.wallets.get(&id).map(|w| w.state))
    }

    /// Records the state an inline movement left the wallet in.
    pub fn wallet_written(&self, id: Uuid, state: WalletState) {
        self.with(|h| {
            let held = h.wallets.entry(id).or_insert(HeldWallet {
                state,
                balance: 0,
                reserved: 0,
                at: None,
            });
            held.state = state;
        });
    }

    /// Holds back a movement of a wallet this transaction already holds (the caller checked
    /// it against [`wallet`](Self::wallet)); returns the wallet's new state.
    pub fn move_wallet(
        &self,
        id: Uuid,
        balance: i64,
        reserved: i64,
        at: DateTime<Utc>,
    ) -> Option<WalletState> {
        self.with(|h| {
            let held = h.wallets.get_mut(&id)?;
            held.state.balance += balance;
            held.state.reserved += reserved;
            held.balance += balance;
            held.reserved += reserved;
            held.at = held.at.max(Some(at));
            Some(held.state)
        })
    }

    /// Writes everything held, in an order the foreign keys accept (a ledger transaction
    /// before its entries).
    pub async fn flush<C: ConnectionTrait>(self, conn: &C) -> Result<(), DbErr> {
        let held = self.held.into_inner().unwrap_or_else(|e| e.into_inner());
        for (id, wallet) in held.wallets {
            if let Some(at) = wallet.at {
                crate::ledger::add_to_wallet(conn, id, wallet.balance, wallet.reserved, at).await?;
            }
        }
        insert_all::<ledger_transactions::Entity, _>(conn, held.transactions).await?;
        insert_all::<ledger_entries::Entity, _>(conn, held.entries).await?;
        insert_all::<tasks::Entity, _>(conn, held.tasks).await?;
        insert_all::<idempotency_keys::Entity, _>(conn, held.keys).await?;
        crate::task::write_finals(conn, held.finals).await?;
        for (agent_id, stats) in held.stats {
            crate::task::add_call_stats(conn, agent_id, stats)
                .await
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        Ok(())
    }
}

async fn insert_all<E, C>(conn: &C, rows: Vec<E::ActiveModel>) -> Result<(), DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        E::insert_many(chunk).exec_without_returning(conn).await?;
    }
    Ok(())
}

/// A connection whose writes may be held back until its commit ([`Later`]); only a group
/// transaction of more than one job holds any back.
pub trait MayHoldBack: ConnectionTrait {
    fn later(&self) -> Option<&Later> {
        None
    }
}

impl MayHoldBack for sea_orm::DatabaseConnection {}
impl MayHoldBack for sea_orm::DatabaseTransaction {}
