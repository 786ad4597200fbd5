//! The double-entry ledger: every token movement is a transaction whose entries sum to zero,
//! applied to the materialised `wallets` in the same database transaction.
//!
//! Buckets: a wallet's `available` balance (spendable, the API's `balance`) and its
//! `reserved` tokens (held for calls in flight). Kinds:
//! - `grant`: system.available → user.available (start tokens);
//! - `reserve`: payer.available → payer.reserved (a call starts);
//! - `charge`: payer.reserved → payee.available (the call succeeded);
//! - `release`: payer.reserved → payer.available (the call failed or timed out).
//!
//! Invariants, checked by [`check`]: each transaction sums to zero; each wallet bucket equals
//! the sum of its entries; no user balance is negative; users' balances plus reservations
//! equal the tokens the system granted. Rows are never updated or deleted.

use crate::{
    Env, Hub,
    error::{HubError, HubResult},
    later::{MayHoldBack, WalletState},
    validate::{Page, Paged},
};
use chrono::{DateTime, Utc};
use entities::{ledger_entries, ledger_transactions, wallets};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};
use serde::Serialize;
use uuid::Uuid;

/// The wallet that issues grants; the only one allowed below zero.
pub const SYSTEM_WALLET: Uuid = Uuid::nil();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Available,
    Reserved,
}

impl Bucket {
    fn as_str(self) -> &'static str {
        match self {
            Bucket::Available => "available",
            Bucket::Reserved => "reserved",
        }
    }

    fn column(self) -> wallets::Column {
        match self {
            Bucket::Available => wallets::Column::Balance,
            Bucket::Reserved => wallets::Column::Reserved,
        }
    }
}

/// What a transaction is about, for statements and the checker.
#[derive(Debug, Clone, Default)]
pub struct Memo {
    pub task_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub request_id: Option<String>,
}

/// Creates the system wallet if it does not exist yet (at start-up).
pub async fn ensure_system_wallet<C: ConnectionTrait>(hub: &Hub, conn: &C) -> HubResult<()> {
    if wallets::Entity::find_by_id(SYSTEM_WALLET)
        .one(conn)
        .await?
        .is_none()
    {
        let res = wallets::Entity::insert(wallets::ActiveModel {
            id: Set(SYSTEM_WALLET),
            kind: Set("system".into()),
            balance: Set(0),
            reserved: Set(0),
            updated_at: Set(hub.env.now()),
        })
        .exec(conn)
        .await;
        if let Err(err) = res {
            // Another process may have created it at the same moment.
            if !crate::db::is_unique_violation(&err) {
                return Err(err.into());
            }
        }
    }
    Ok(())
}

/// Opens the wallet of a new user, empty.
pub async fn open_wallet<C: ConnectionTrait>(hub: &Hub, conn: &C, user_id: Uuid) -> HubResult<()> {
    wallets::Entity::insert(wallets::ActiveModel {
        id: Set(user_id),
        kind: Set("user".into()),
        balance: Set(0),
        reserved: Set(0),
        updated_at: Set(hub.env.now()),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// One leg to apply: `amount` (signed) on a wallet's bucket.
struct Leg {
    wallet: Uuid,
    bucket: Bucket,
    amount: i64,
}

/// Applies a balanced set of legs as one ledger transaction. A leg that would take a user's
/// bucket below zero fails the whole transaction with `INSUFFICIENT_TOKENS` (the caller rolls
/// back). Must run inside a database transaction.
///
/// One `UPDATE … RETURNING` per wallet (both buckets of a wallet move in the same statement),
/// so a reservation or a release is one statement; the transaction row and its entries are
/// inserted at once, or held back to the end of a group transaction ([`MayHoldBack`]).
async fn post<C: MayHoldBack>(
    env: &Env,
    conn: &C,
    kind: &str,
    memo: &Memo,
    legs: &[Leg],
) -> HubResult<Uuid> {
    debug_assert_eq!(
        legs.iter().map(|l| l.amount).sum::<i64>(),
        0,
        "unbalanced {kind}"
    );
    if legs.iter().map(|l| l.amount).sum::<i64>() != 0 {
        return Err(HubError::Internal(anyhow::anyhow!(
            "unbalanced ledger transaction {kind}"
        )));
    }
    let now = env.now();
    let tx_id = env.new_id();
    // Lock wallets in one global order (by id), so two transactions moving tokens between
    // the same wallets in opposite directions cannot deadlock on PostgreSQL. Each update
    // returns the wallet as it now is (one statement instead of an update and a read).
    let mut touched: Vec<Uuid> = legs.iter().map(|l| l.wallet).collect();
    touched.sort();
    touched.dedup();
    let mut after: Vec<(Uuid, WalletState)> = Vec::with_capacity(touched.len());
    for wallet_id in touched {
        let delta = |bucket: Bucket| -> i64 {
            legs.iter()
                .filter(|l| l.wallet == wallet_id && l.bucket == bucket)
                .map(|l| l.amount)
                .sum()
        };
        let (d_balance, d_reserved) = (delta(Bucket::Available), delta(Bucket::Reserved));
        let needed = std::cmp::max(std::cmp::max(-d_balance, -d_reserved), 0);
        let held = conn
            .later()
            .and_then(|later| Some((later, later.wallet(wallet_id)?)));
        let state = match held {
            // Already moved (and so held) by this group transaction: checked and applied in
            // memory, written at the flush.
            Some((later, state)) => {
                let overdrawn = (d_balance < 0 && state.balance + d_balance < 0)
                    || (d_reserved < 0 && state.reserved + d_reserved < 0);
                if overdrawn && wallet_id != SYSTEM_WALLET {
                    return Err(HubError::insufficient_tokens(needed, state.balance));
                }
                later
                    .move_wallet(wallet_id, d_balance, d_reserved, now)
                    .ok_or_else(|| HubError::Internal(anyhow::anyhow!("wallet not held")))?
            }
            None => {
                let state =
                    update_wallet(conn, wallet_id, d_balance, d_reserved, now, needed).await?;
                if let Some(later) = conn.later() {
                    later.wallet_written(wallet_id, state);
                }
                state
            }
        };
        after.push((wallet_id, state));
    }
    // Every entry records its bucket and the wallet's spendable balance once the whole
    // transaction is applied.
    let mut entries = Vec::with_capacity(legs.len());
    for leg in legs {
        let Some((_, wallet)) = after.iter().find(|(id, _)| *id == leg.wallet) else {
            return Err(HubError::Internal(anyhow::anyhow!(
                "wallet {} not updated",
                leg.wallet
            )));
        };
        entries.push(ledger_entries::ActiveModel {
            transaction_id: Set(tx_id),
            wallet_id: Set(leg.wallet),
            bucket: Set(leg.bucket.as_str().into()),
            amount: Set(leg.amount),
            balance_after: Set(match leg.bucket {
                Bucket::Available => wallet.balance,
                Bucket::Reserved => wallet.reserved,
            }),
            available_after: Set(wallet.balance),
            created_at: Set(now),
            ..Default::default()
        });
    }
    let transaction = ledger_transactions::ActiveModel {
        id: Set(tx_id),
        kind: Set(kind.to_string()),
        task_id: Set(memo.task_id),
        agent_id: Set(memo.agent_id),
        request_id: Set(memo.request_id.clone()),
        created_at: Set(now),
    };
    match conn.later() {
        Some(later) => later.ledger(transaction, entries),
        None => {
            ledger_transactions::Entity::insert(transaction)
                .exec(conn)
                .await?;
            ledger_entries::Entity::insert_many(entries)
                .exec(conn)
                .await?;
        }
    }
    Ok(tx_id)
}

/// Moves a wallet's buckets by the deltas in one `UPDATE … RETURNING`, refusing to take a
/// user's bucket below zero (`INSUFFICIENT_TOKENS`, with `needed` as the amount asked for).
async fn update_wallet<C: ConnectionTrait>(
    conn: &C,
    wallet_id: Uuid,
    d_balance: i64,
    d_reserved: i64,
    now: DateTime<Utc>,
    needed: i64,
) -> HubResult<WalletState> {
    let mut update = wallets::Entity::update_many()
        .col_expr(wallets::Column::UpdatedAt, Expr::value(now))
        .filter(wallets::Column::Id.eq(wallet_id));
    for (bucket, delta) in [
        (Bucket::Available, d_balance),
        (Bucket::Reserved, d_reserved),
    ] {
        if delta == 0 {
            continue;
        }
        let column = bucket.column();
        update = update.col_expr(column, Expr::col(column).add(delta));
        if delta < 0 && wallet_id != SYSTEM_WALLET {
            update = update.filter(column.gte(-delta));
        }
    }
    match update.exec_with_returning(conn).await?.into_iter().next() {
        Some(wallet) => Ok(WalletState {
            balance: wallet.balance,
            reserved: wallet.reserved,
        }),
        None => {
            let available = wallets::Entity::find_by_id(wallet_id)
                .one(conn)
                .await?
                .map(|w| w.balance)
                .unwrap_or(0);
            Err(HubError::insufficient_tokens(needed, available))
        }
    }
}

/// Adds held-back movements to a wallet (the flush of a group transaction, see
/// [`crate::later`]); they were checked against the wallet's exact state when they were held.
pub(crate) async fn add_to_wallet<C: ConnectionTrait>(
    conn: &C,
    wallet_id: Uuid,
    d_balance: i64,
    d_reserved: i64,
    at: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    wallets::Entity::update_many()
        .col_expr(
            wallets::Column::Balance,
            Expr::col(wallets::Column::Balance).add(d_balance),
        )
        .col_expr(
            wallets::Column::Reserved,
            Expr::col(wallets::Column::Reserved).add(d_reserved),
        )
        .col_expr(wallets::Column::UpdatedAt, Expr::value(at))
        .filter(wallets::Column::Id.eq(wallet_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Grants tokens from the system wallet (the start bonus).
pub async fn grant<C: MayHoldBack>(
    env: &Env,
    conn: &C,
    user_id: Uuid,
    amount: i64,
) -> HubResult<Uuid> {
    let legs = [
        Leg {
            wallet: SYSTEM_WALLET,
            bucket: Bucket::Available,
            amount: -amount,
        },
        Leg {
            wallet: user_id,
            bucket: Bucket::Available,
            amount,
        },
    ];
    post(env, conn, "grant", &Memo::default(), &legs).await
}

/// Holds `amount` of the payer's spendable tokens for a call; `INSUFFICIENT_TOKENS` if the
/// balance does not cover it.
pub async fn reserve<C: MayHoldBack>(
    env: &Env,
    conn: &C,
    payer: Uuid,
    amount: i64,
    memo: &Memo,
) -> HubResult<Uuid> {
    let legs = [
        Leg {
            wallet: payer,
            bucket: Bucket::Available,
            amount: -amount,
        },
        Leg {
            wallet: payer,
            bucket: Bucket::Reserved,
            amount,
        },
    ];
    post(env, conn, "reserve", memo, &legs).await
}

/// Pays a reservation to the payee (the agent's owner).
pub async fn charge<C: MayHoldBack>(
    env: &Env,
    conn: &C,
    payer: Uuid,
    payee: Uuid,
    amount: i64,
    memo: &Memo,
) -> HubResult<Uuid> {
    let legs = [
        Leg {
            wallet: payer,
            bucket: Bucket::Reserved,
            amount: -amount,
        },
        Leg {
            wallet: payee,
            bucket: Bucket::Available,
            amount,
        },
    ];
    post(env, conn, "charge", memo, &legs).await
}

/// Returns a reservation to the payer.
pub async fn release<C: MayHoldBack>(
    env: &Env,
    conn: &C,
    payer: Uuid,
    amount: i64,
    memo: &Memo,
) -> HubResult<Uuid> {
    let legs = [
        Leg {
            wallet: payer,
            bucket: Bucket::Reserved,
            amount: -amount,
        },
        Leg {
            wallet: payer,
            bucket: Bucket::Available,
            amount,
        },
    ];
    post(env, conn, "release", memo, &legs).await
}

/// A user's balance as the API shows it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Balance {
    pub balance: i64,
    pub reserved: i64,
}

pub async fn balance<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> HubResult<Balance> {
    let wallet = wallets::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .ok_or_else(|| HubError::not_found("Wallet"))?;
    Ok(Balance {
        balance: wallet.balance,
        reserved: wallet.reserved,
    })
}

/// One settled movement on a user's statement.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementLine {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub amount: i64,
    pub balance_after: i64,
    pub agent_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, FromQueryResult)]
struct StatementRow {
    transaction_id: Uuid,
    kind: String,
    amount: i64,
    available_after: i64,
    agent_id: Option<Uuid>,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
}

/// A user's settled movements, newest first: grants, charges (paid calls, negative) and
/// earnings (calls to the user's agents, positive). Reservations and releases are not shown:
/// they net to nothing once a call is final.
pub async fn statement<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    page: Page,
) -> HubResult<Paged<StatementLine>> {
    use ledger_entries::Column as E;
    let settled = Expr::col((
        ledger_transactions::Entity,
        ledger_transactions::Column::Kind,
    ))
    .eq("grant")
    .and(Expr::col((ledger_entries::Entity, E::Bucket)).eq("available"))
    .or(Expr::col((
        ledger_transactions::Entity,
        ledger_transactions::Column::Kind,
    ))
    .eq("charge"));
    let base = ledger_entries::Entity::find()
        .inner_join(ledger_transactions::Entity)
        .filter(E::WalletId.eq(user_id))
        .filter(settled);
    let total = base.clone().count(conn).await?;
    let rows = base
        .select_only()
        .column(E::TransactionId)
        .column(E::Amount)
        .column(E::AvailableAfter)
        .column(E::CreatedAt)
        .column(ledger_transactions::Column::Kind)
        .column(ledger_transactions::Column::AgentId)
        .column(ledger_transactions::Column::RequestId)
        .order_by_desc(E::Id)
        .offset(page.offset())
        .limit(page.limit)
        .into_model::<StatementRow>()
        .all(conn)
        .await?;
    let data = rows
        .into_iter()
        .map(|r| StatementLine {
            id: r.transaction_id,
            kind: match (r.kind.as_str(), r.amount < 0) {
                ("grant", _) => "grant",
                (_, true) => "charge",
                (_, false) => "earning",
            },
            amount: r.amount,
            balance_after: r.available_after,
            agent_id: r.agent_id,
            request_id: r.request_id,
            created_at: r.created_at,
        })
        .collect();
    Ok(Paged {
        data,
        page: page.page,
        limit: page.limit,
        total,
    })
}

/// What the ledger checker found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub granted: i64,
    pub user_balances: i64,
    pub user_reserved: i64,
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_balanced(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Debug, FromQueryResult)]
struct Sum {
    key: Uuid,
    total: Option<i64>,
}

/// Verifies every invariant of the ledger. Run after every test, and cheap enough to run in
/// production as a health probe on small databases.
pub async fn check<C: ConnectionTrait>(conn: &C) -> HubResult<Report> {
    let mut report = Report::default();
    // Each transaction sums to zero.
    let sums = ledger_entries::Entity::find()
        .select_only()
        .column_as(ledger_entries::Column::TransactionId, "key")
        .column_as(
            Expr::col(ledger_entries::Column::Amount)
                .sum()
                .cast_as("BIGINT"),
            "total",
        )
        .group_by(ledger_entries::Column::TransactionId)
        .into_model::<Sum>()
        .all(conn)
        .await?;
    for s in sums.iter().filter(|s| s.total.unwrap_or(0) != 0) {
        report
            .problems
            .push(format!("transaction {} sums to {:?}", s.key, s.total));
    }
    // Each wallet bucket equals its entries.
    for w in wallets::Entity::find().all(conn).await? {
        for (bucket, value) in [("available", w.balance), ("reserved", w.reserved)] {
            let total: i64 = ledger_entries::Entity::find()
                .filter(ledger_entries::Column::WalletId.eq(w.id))
                .filter(ledger_entries::Column::Bucket.eq(bucket))
                .all(conn)
                .await?
                .iter()
                .map(|e| e.amount)
                .sum();
            if total != value {
                report.problems.push(format!(
                    "wallet {} {bucket} is {value} but its entries sum to {total}",
                    w.id
                ));
            }
        }
        if w.id == SYSTEM_WALLET {
            report.granted = -w.balance;
        } else {
            report.user_balances += w.balance;
            report.user_reserved += w.reserved;
            if w.balance < 0 || w.reserved < 0 {
                report.problems.push(format!("wallet {} is negative", w.id));
            }
        }
    }
    // No reservation stays open once its task is final, and an open task holds its price.
    #[derive(Debug, FromQueryResult)]
    struct Held {
        task_id: Option<Uuid>,
        held: Option<i64>,
    }
    let held = ledger_entries::Entity::find()
        .inner_join(ledger_transactions::Entity)
        .select_only()
        .column_as(ledger_transactions::Column::TaskId, "task_id")
        .column_as(
            Expr::col(ledger_entries::Column::Amount)
                .sum()
                .cast_as("BIGINT"),
            "held",
        )
        .filter(ledger_entries::Column::Bucket.eq("reserved"))
        .filter(ledger_transactions::Column::TaskId.is_not_null())
        .group_by(ledger_transactions::Column::TaskId)
        .into_model::<Held>()
        .all(conn)
        .await?;
    for h in held {
        let Some(task_id) = h.task_id else { continue };
        let held = h.held.unwrap_or(0);
        let task = entities::tasks::Entity::find_by_id(task_id)
            .one(conn)
            .await?;
        let expected = match &task {
            Some(t) if crate::task::FINAL.contains(&t.status.as_str()) => 0,
            Some(t) => t.price,
            None => 0,
        };
        if held != expected {
            report.problems.push(format!(
                "task {task_id} ({}) holds {held} reserved tokens, expected {expected}",
                task.map_or("missing".into(), |t| t.status)
            ));
        }
    }
    if report.user_balances + report.user_reserved != report.granted {
        report.problems.push(format!(
            "users hold {} + {} reserved but {} were granted",
            report.user_balances, report.user_reserved, report.granted
        ));
    }
    Ok(report)
}
