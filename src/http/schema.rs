//! The shapes the API answers with, as `/api/v1/openapi.json` documents them.
//!
//! Handlers answer with these types. The engine's views (`actors::catalog::AgentView`, ...) are
//! converted by `From` impls that destructure every field without `..`, so a field added to a
//! view does not compile until it is added (and documented) here: the document and the answers
//! cannot drift apart. Value sets (categories, statuses, ...) come from the engine's own
//! constants.

use actors::{
    audit_trail, catalog, leaderboards, ledger, reputation, reviews, validate::Page as PageParams,
    validate::Paged,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::{
    ToSchema,
    openapi::{
        RefOr,
        schema::{ObjectBuilder, Schema, SchemaType, Type},
    },
};
use uuid::Uuid;

/// A string schema limited to `values`, `null` allowed when `nullable`.
pub fn string_enum(values: &[&str], nullable: bool) -> RefOr<Schema> {
    let mut enum_values: Vec<Value> = values.iter().map(|v| Value::from(*v)).collect();
    let schema_type = if nullable {
        enum_values.push(Value::Null);
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .enum_values(Some(enum_values))
        .into()
}

pub fn category() -> RefOr<Schema> {
    string_enum(&catalog::CATEGORIES, false)
}
pub fn visibility() -> RefOr<Schema> {
    string_enum(&catalog::VISIBILITIES, false)
}
pub fn agent_status() -> RefOr<Schema> {
    string_enum(&catalog::STATUSES, false)
}
pub fn pricing_model() -> RefOr<Schema> {
    string_enum(&catalog::PRICING_MODELS, false)
}
pub fn connection_mode() -> RefOr<Schema> {
    string_enum(&catalog::CONNECTION_MODES, false)
}
pub fn delivery_mode() -> RefOr<Schema> {
    string_enum(&catalog::DELIVERY_MODES, false)
}
pub fn connection_mode_or_null() -> RefOr<Schema> {
    string_enum(&catalog::CONNECTION_MODES, true)
}
pub fn delivery_mode_or_null() -> RefOr<Schema> {
    string_enum(&catalog::DELIVERY_MODES, true)
}
pub fn sort() -> RefOr<Schema> {
    string_enum(&actors::discovery::SORTS, false)
}

/// One page of a list: `data` holds at most `limit` items of page `page` (1-based) out of
/// `total`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// The page (1-based).
    pub page: u64,
    /// Items per page (1–100, default 20).
    pub limit: u64,
    /// Items on all pages.
    pub total: u64,
}

impl<A, B: From<A>> From<Paged<A>> for Page<B> {
    fn from(paged: Paged<A>) -> Self {
        let Paged {
            data,
            page,
            limit,
            total,
        } = paged;
        Self {
            data: data.into_iter().map(B::from).collect(),
            page,
            limit,
            total,
        }
    }
}

impl<T> Page<T> {
    /// A page of `data` as requested by `params`.
    pub fn new(data: Vec<T>, params: PageParams, total: u64) -> Self {
        Self {
            data,
            page: params.page,
            limit: params.limit,
            total,
        }
    }
}

/// A validation failure of one field, named as the client sent it (`pricing.pricePerCall`).
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl From<actors::FieldError> for FieldError {
    fn from(e: actors::FieldError) -> Self {
        let actors::FieldError { field, message } = e;
        Self { field, message }
    }
}

/// A confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

impl Message {
    pub fn new(message: &str) -> Self {
        Self {
            message: message.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Agents

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    #[schema(schema_with = pricing_model)]
    pub model: String,
    /// Tokens per call (0 for free agents).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub price_per_call: i64,
}

/// The latest health check.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub healthy: bool,
    pub latency_ms: i64,
    pub checked_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStats {
    pub total_calls: i64,
    pub completed_calls: i64,
    pub failed_calls: i64,
    pub tokens_earned: i64,
}

/// The stored reputation: score 0–100, stars in half steps, `isNew` (and `stars: null`) before
/// the first settled call or review.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReputationCache {
    pub score: f64,
    #[schema(required = true)]
    pub stars: Option<f64>,
    pub review_count: i64,
    pub success_rate: f64,
    pub uptime_ratio: f64,
    #[schema(required = true)]
    pub avg_latency_ms: Option<i64>,
    pub is_new: bool,
}

impl From<reputation::ReputationCache> for ReputationCache {
    fn from(r: reputation::ReputationCache) -> Self {
        let reputation::ReputationCache {
            score,
            stars,
            review_count,
            success_rate,
            uptime_ratio,
            avg_latency_ms,
            is_new,
        } = r;
        Self {
            score,
            stars,
            review_count,
            success_rate,
            uptime_ratio,
            avg_latency_ms,
            is_new,
        }
    }
}

/// An agent. Exactly one of `connectionMode` (MCP agents) and `deliveryMode` (task agents) is
/// set; `endpoint` (a push agent's webhook) is shown to its owner only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub slug: String,
    pub version: String,
    pub description: String,
    #[schema(schema_with = connection_mode_or_null, required = true)]
    pub connection_mode: Option<String>,
    #[schema(schema_with = delivery_mode_or_null, required = true)]
    pub delivery_mode: Option<String>,
    #[schema(required = true)]
    pub mcp_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub endpoint: Option<String>,
    #[schema(schema_with = visibility)]
    pub visibility: String,
    #[schema(schema_with = agent_status)]
    pub status: String,
    pub pricing: Pricing,
    #[schema(value_type = Vec<String>)]
    pub tags: Value,
    #[schema(schema_with = category)]
    pub category: String,
    pub is_online: bool,
    pub reputation_cache: ReputationCache,
    #[schema(required = true)]
    pub health_checks: Option<HealthCheck>,
    pub stats: AgentStats,
    /// The agent's mail address, `slug@<mail domain>`.
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<catalog::AgentView> for Agent {
    fn from(v: catalog::AgentView) -> Self {
        let catalog::AgentView {
            id,
            owner_id,
            name,
            slug,
            version,
            description,
            connection_mode,
            delivery_mode,
            mcp_endpoint,
            endpoint,
            visibility,
            status,
            pricing,
            tags,
            category,
            is_online,
            reputation_cache,
            health_checks,
            stats,
            email,
            created_at,
            updated_at,
        } = v;
        let catalog::PricingView {
            model,
            price_per_call,
        } = pricing;
        let catalog::StatsView {
            total_calls,
            completed_calls,
            failed_calls,
            tokens_earned,
        } = stats;
        Self {
            id,
            owner_id,
            name,
            slug,
            version,
            description,
            connection_mode,
            delivery_mode,
            mcp_endpoint,
            endpoint,
            visibility,
            status,
            pricing: Pricing {
                model,
                price_per_call,
            },
            tags,
            category,
            is_online,
            reputation_cache: reputation_cache.into(),
            health_checks: health_checks.map(|h| {
                let catalog::HealthView {
                    healthy,
                    latency_ms,
                    checked_at,
                } = h;
                HealthCheck {
                    healthy,
                    latency_ms,
                    checked_at,
                }
            }),
            stats: AgentStats {
                total_calls,
                completed_calls,
                failed_calls,
                tokens_earned,
            },
            email,
            created_at,
            updated_at,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reviews and reputation

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub user_id: Uuid,
    /// The reviewer's username.
    pub username: String,
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i32,
    #[schema(required = true)]
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<reviews::ReviewView> for Review {
    fn from(r: reviews::ReviewView) -> Self {
        let reviews::ReviewView {
            id,
            agent_id,
            user_id,
            username,
            rating,
            comment,
            created_at,
            updated_at,
        } = r;
        Self {
            id,
            agent_id,
            user_id,
            username,
            rating,
            comment,
            created_at,
            updated_at,
        }
    }
}

/// The points of each of the five components of the score (two decimals).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReputationComponents {
    /// `(completed / total calls) × 30`
    pub success_rate: f64,
    /// `min(completed calls / 100, 1) × 15`
    pub call_volume: f64,
    /// `min(tokens earned / 50000, 1) × 10`
    pub earnings: f64,
    /// `(healthy checks / checks) × 15`
    pub uptime: f64,
    /// `(average rating / 5) × 30`
    pub reviews: f64,
}

/// An agent's reputation: score (0–100, the sum of the components), stars, cold-start flag.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reputation {
    pub agent_id: Uuid,
    pub score: f64,
    #[schema(required = true)]
    pub stars: Option<f64>,
    pub is_new: bool,
    pub review_count: i64,
    pub success_rate: f64,
    pub uptime_ratio: f64,
    #[schema(required = true)]
    pub avg_latency_ms: Option<i64>,
    pub components: ReputationComponents,
    pub total_calls: i64,
    pub completed_calls: i64,
}

impl From<reputation::Report> for Reputation {
    fn from(r: reputation::Report) -> Self {
        let reputation::Report {
            agent_id,
            score,
            stars,
            is_new,
            review_count,
            success_rate,
            uptime_ratio,
            avg_latency_ms,
            components,
            total_calls,
            completed_calls,
        } = r;
        let reputation::Components {
            success_rate: c_success_rate,
            call_volume,
            earnings,
            uptime,
            reviews,
        } = components;
        Self {
            agent_id,
            score,
            stars,
            is_new,
            review_count,
            success_rate,
            uptime_ratio,
            avg_latency_ms,
            components: ReputationComponents {
                success_rate: c_success_rate,
                call_volume,
                earnings,
                uptime,
                reviews,
            },
            total_calls,
            completed_calls,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Leaderboards

/// The agent of a leaderboard row.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRef {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

impl From<leaderboards::AgentRef> for AgentRef {
    fn from(a: leaderboards::AgentRef) -> Self {
        let leaderboards::AgentRef { id, slug, name } = a;
        Self { id, slug, name }
    }
}

/// A row of the weekly or richest board.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EarningsRow {
    pub rank: u64,
    pub agent: AgentRef,
    pub tokens_earned: i64,
    #[schema(required = true)]
    pub stars: Option<f64>,
}

impl From<leaderboards::EarningsRow> for EarningsRow {
    fn from(r: leaderboards::EarningsRow) -> Self {
        let leaderboards::EarningsRow {
            rank,
            agent,
            tokens_earned,
            stars,
        } = r;
        Self {
            rank,
            agent: agent.into(),
            tokens_earned,
            stars,
        }
    }
}

/// A row of the top-rated board.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScoreRow {
    pub rank: u64,
    pub agent: AgentRef,
    pub score: f64,
    #[schema(required = true)]
    pub stars: Option<f64>,
}

impl From<leaderboards::ScoreRow> for ScoreRow {
    fn from(r: leaderboards::ScoreRow) -> Self {
        let leaderboards::ScoreRow {
            rank,
            agent,
            score,
            stars,
        } = r;
        Self {
            rank,
            agent: agent.into(),
            score,
            stars,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Billing and audit

/// Spendable tokens and tokens reserved for calls in flight.
#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    pub balance: i64,
    pub reserved: i64,
}

impl From<ledger::Balance> for Balance {
    fn from(b: ledger::Balance) -> Self {
        let ledger::Balance { balance, reserved } = b;
        Self { balance, reserved }
    }
}

/// A settled movement: `grant` (start tokens), `charge` (a paid call, negative) or `earning`
/// (a call to one of your agents, positive).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(schema_with = transaction_type)]
    pub kind: &'static str,
    pub amount: i64,
    /// The spendable balance after the movement.
    pub balance_after: i64,
    #[schema(required = true)]
    pub agent_id: Option<Uuid>,
    #[schema(required = true)]
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn transaction_type() -> RefOr<Schema> {
    string_enum(&["grant", "charge", "earning"], false)
}

impl From<ledger::StatementLine> for Transaction {
    fn from(l: ledger::StatementLine) -> Self {
        let ledger::StatementLine {
            id,
            kind,
            amount,
            balance_after,
            agent_id,
            request_id,
            created_at,
        } = l;
        Self {
            id,
            kind,
            amount,
            balance_after,
            agent_id,
            request_id,
            created_at,
        }
    }
}

/// An audit-log entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: Uuid,
    /// `user.login`, `agent.create`, `review.update`, `email.received`, ...
    pub action: String,
    #[schema(required = true)]
    pub target_type: Option<String>,
    #[schema(required = true)]
    pub target_id: Option<String>,
    /// The peer address of the request (none for mail).
    #[schema(required = true)]
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    /// What the action concerned (an object).
    pub details: Value,
}

impl From<audit_trail::Entry> for AuditEntry {
    fn from(e: audit_trail::Entry) -> Self {
        let audit_trail::Entry {
            id,
            action,
            target_type,
            target_id,
            ip,
            created_at,
            details,
        } = e;
        Self {
            id,
            action,
            target_type,
            target_id,
            ip,
            created_at,
            details,
        }
    }
}
