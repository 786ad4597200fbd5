//! Agent health checks, as the marketplace document's table says, every
//! `AGENTHUB_HEALTH_INTERVAL_SECS`:
//!
//! - `http`: a real MCP `tools/list` to the `mcpEndpoint` through the safe outbound client,
//!   at most 10 s, latency measured;
//! - `websocket` (and plain `ws` delivery): presence of a live connection, latency 0;
//! - `hybrid`: presence when connected, else the HTTP check.
//!
//! `poll` and `push` agents are not checked (nothing to ask). Checks of a round run concurrently,
//! at most [`CONCURRENCY`] at a time. The Registry actor (`registry::RegistryActor`) schedules
//! the rounds; a round still running when the next tick comes makes it skip that tick, so a
//! hanging endpoint never piles rounds up.
//!
//! Every result is a `health_checks` row. In the same write transaction the agent's
//! `checks_total`/`checks_healthy` are recounted from the rows of the last 7 days (older rows of
//! that agent are deleted first), `last_check_*` take the result and the stored reputation score
//! follows. Agents with expired rows that were not checked are swept the same way, so the
//! counters always equal the retained records.

use crate::{Hub, HubResult, db, reputation};
use entities::{agents, health_checks};
use futures_util::StreamExt;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QuerySelect, Set,
};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Deadline of an HTTP health check (`tools/list`), as documented.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many checks of a round run at the same time.
pub const CONCURRENCY: usize = 16;
/// How long check records are kept.
pub fn retention() -> chrono::Duration {
    chrono::Duration::days(7)
}

/// How an agent is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Healthy when a live connection is registered; latency 0.
    Presence,
    /// `tools/list` to the endpoint.
    Http(String),
    /// Presence when connected, else `tools/list` to the endpoint.
    Hybrid(String),
}

impl Probe {
    /// The probe for an agent's modes; `None` when the agent is not checked.
    pub fn for_modes(
        connection_mode: Option<&str>,
        delivery_mode: Option<&str>,
        endpoint: Option<&str>,
    ) -> Option<Self> {
        match (connection_mode, delivery_mode) {
            (Some("websocket"), _) | (None, Some("ws")) => Some(Probe::Presence),
            (Some("http"), _) => Some(match endpoint {
                Some(e) => Probe::Http(e.to_string()),
                // No endpoint to ask: the check runs and fails.
                None => Probe::Http(String::new()),
            }),
            (Some("hybrid"), _) => Some(match endpoint {
                Some(e) => Probe::Hybrid(e.to_string()),
                None => Probe::Presence,
            }),
            _ => None,
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub healthy: bool,
    pub latency_ms: i64,
}

/// What a round did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub checked: usize,
    pub healthy: usize,
    pub failed_writes: usize,
    pub swept_agents: usize,
}

/// Runs one probe. Never takes more than [`HTTP_TIMEOUT`] (plus scheduling).
pub async fn probe(hub: &Hub, agent_id: Uuid, probe: &Probe) -> Outcome {
    let endpoint = match probe {
        Probe::Presence => {
            return Outcome {
                healthy: hub.registry.is_connected(agent_id),
                latency_ms: 0,
            };
        }
        Probe::Hybrid(_) if hub.registry.is_connected(agent_id) => {
            return Outcome {
                healthy: true,
                latency_ms: 0,
            };
        }
        Probe::Http(e) | Probe::Hybrid(e) => e,
    };
    let started = Instant::now();
    let healthy = if endpoint.is_empty() {
        false
    } else {
        // `list_tools` may (re-)initialise a session and retry; the whole check stays within the
        // documented 10 s.
        match tokio::time::timeout(HTTP_TIMEOUT, hub.mcp.list_tools(endpoint, HTTP_TIMEOUT)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::debug!(agent = %agent_id, error = %e, "health check failed");
                false
            }
            Err(_) => {
                tracing::debug!(agent = %agent_id, "health check timed out");
                false
            }
        }
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    Outcome {
        healthy,
        latency_ms,
    }
}

/// Records a check result (or, with `None`, only expires the agent's old rows) and brings the
/// agent's counters, latest check and stored score up to date, in one write transaction.
/// Returns `false` when the agent no longer exists.
pub async fn record(hub: &Hub, agent_id: Uuid, outcome: Option<Outcome>) -> HubResult<bool> {
    let txn = db::begin_write(&hub.db).await?;
    // Lock the row (PostgreSQL; SQLite's write transaction already serialises writers) so the
    // counters and the score are computed from the same state as other writers (calls, reviews).
    let Some(agent) = agents::Entity::find_by_id(agent_id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        txn.rollback().await?;
        return Ok(false);
    };
    let now = hub.env.now();
    let cutoff = now - retention();
    health_checks::Entity::delete_many()
        .filter(health_checks::Column::AgentId.eq(agent_id))
        .filter(health_checks::Column::CheckedAt.lt(cutoff))
        .exec(&txn)
        .await?;
    if let Some(o) = outcome {
        health_checks::ActiveModel {
            id: Set(hub.env.new_id()),
            agent_id: Set(agent_id),
            healthy: Set(o.healthy),
            latency_ms: Set(o.latency_ms.max(0)),
            checked_at: Set(now),
        }
        .insert(&txn)
        .await?;
    }
    let (total, healthy) = counts(&txn, agent_id, cutoff).await?;
    let mut next = agent.clone();
    next.checks_total = total;
    next.checks_healthy = healthy;
    let mut active = agent.into_active_model();
    active.checks_total = Set(total);
    active.checks_healthy = Set(healthy);
    active.reputation_score = Set(reputation::stored_score(&reputation::Inputs::of(&next)));
    if let Some(o) = outcome {
        active.last_check_healthy = Set(Some(o.healthy));
        active.last_check_latency_ms = Set(Some(o.latency_ms.max(0)));
        active.last_check_at = Set(Some(now));
    }
    // `updated_at` is the agent's own edits; a check does not touch it.
    active.update(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

/// (all, healthy) checks of an agent at or after `since`.
async fn counts<C: ConnectionTrait>(
    conn: &C,
    agent_id: Uuid,
    since: chrono::DateTime<chrono::Utc>,
) -> HubResult<(i64, i64)> {
    let base = health_checks::Entity::find()
        .filter(health_checks::Column::AgentId.eq(agent_id))
        .filter(health_checks::Column::CheckedAt.gte(since));
    let total = base.clone().count(conn).await?;
    let healthy = base
        .filter(health_checks::Column::Healthy.eq(true))
        .count(conn)
        .await?;
    Ok((
        i64::try_from(total).unwrap_or(i64::MAX),
        i64::try_from(healthy).unwrap_or(i64::MAX),
    ))
}

/// `(id, connection_mode, delivery_mode, mcp_endpoint)` of an agent.
type ModesRow = (Uuid, Option<String>, Option<String>, Option<String>);

/// Every agent that is checked, with its probe.
async fn targets(hub: &Hub) -> HubResult<Vec<(Uuid, Probe)>> {
    let rows: Vec<ModesRow> = agents::Entity::find()
        .select_only()
        .columns([
            agents::Column::Id,
            agents::Column::ConnectionMode,
            agents::Column::DeliveryMode,
            agents::Column::McpEndpoint,
        ])
        .into_tuple()
        .all(&hub.db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, conn, delivery, endpoint)| {
            Probe::for_modes(conn.as_deref(), delivery.as_deref(), endpoint.as_deref())
                .map(|p| (id, p))
        })
        .collect())
}

/// Agents holding records older than the retention window.
async fn expired_agents(hub: &Hub) -> HubResult<Vec<Uuid>> {
    let cutoff = hub.env.now() - retention();
    Ok(health_checks::Entity::find()
        .select_only()
        .column(health_checks::Column::AgentId)
        .filter(health_checks::Column::CheckedAt.lt(cutoff))
        .distinct()
        .into_tuple()
        .all(&hub.db)
        .await?)
}

/// One round: every checked agent, [`CONCURRENCY`] at a time, then the retention sweep of the
/// agents that were not checked. Errors are logged, never raised.
pub async fn run_round(hub: &Hub) -> RoundReport {
    let mut report = RoundReport::default();
    let targets = match targets(hub).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "health checks: cannot list agents");
            Vec::new()
        }
    };
    let checked: std::collections::HashSet<Uuid> = targets.iter().map(|(id, _)| *id).collect();
    let mut results = futures_util::stream::iter(targets)
        .map(|(id, p)| async move {
            let outcome = probe(hub, id, &p).await;
            (id, outcome, record(hub, id, Some(outcome)).await)
        })
        .buffer_unordered(CONCURRENCY);
    while let Some((id, outcome, written)) = results.next().await {
        report.checked += 1;
        report.healthy += usize::from(outcome.healthy);
        if let Err(e) = written {
            report.failed_writes += 1;
            tracing::warn!(agent = %id, error = %e, "health checks: cannot record a result");
        }
    }
    drop(results);
    match expired_agents(hub).await {
        Ok(ids) => {
            for id in ids.into_iter().filter(|id| !checked.contains(id)) {
                match record(hub, id, None).await {
                    Ok(_) => report.swept_agents += 1,
                    Err(e) => {
                        tracing::warn!(agent = %id, error = %e, "health checks: cannot expire records");
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "health checks: cannot find expired records"),
    }
    tracing::debug!(?report, "health check round done");
    report
}
