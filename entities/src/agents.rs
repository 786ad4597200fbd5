//! `agents`: the catalog. Exactly one of `connection_mode` (marketplace document: `websocket`,
//! `http`, `hybrid`) and `delivery_mode` (task-delivery document: `ws`, `poll`, `push`) is set.
//! `tags_index` is `,tag1,tag2,` (lower-cased) so "has all these tags" is a portable LIKE.
//! The call counters and `tokens_earned` are kept by the engine for reputation and leaderboards.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    #[sea_orm(unique)]
    pub slug: String,
    pub version: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub connection_mode: Option<String>,
    pub delivery_mode: Option<String>,
    pub mcp_endpoint: Option<String>,
    pub endpoint: Option<String>,
    pub visibility: String,
    pub status: String,
    pub pricing_model: String,
    pub price_per_call: i64,
    pub tags: Json,
    pub tags_index: String,
    pub category: String,
    pub tools: Option<Json>,
    pub total_calls: i64,
    pub completed_calls: i64,
    pub failed_calls: i64,
    pub total_latency_ms: i64,
    pub tokens_earned: i64,
    /// Cached reputation score (0–100); `None` while the agent is "New".
    pub reputation_score: Option<f64>,
    pub review_count: i64,
    pub rating_sum: i64,
    pub checks_total: i64,
    pub checks_healthy: i64,
    pub last_check_healthy: Option<bool>,
    pub last_check_latency_ms: Option<i64>,
    pub last_check_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
