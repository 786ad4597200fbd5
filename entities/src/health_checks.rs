//! `health_checks`: every health check of an agent (healthy or not, latency in ms), kept for
//! 7 days. The agent's `checks_total`/`checks_healthy` always count exactly the retained rows
//! and `last_check_*` mirror the newest; both change in the same transaction as this table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "health_checks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agent_id: Uuid,
    pub healthy: bool,
    /// 0 for a presence check.
    pub latency_ms: i64,
    pub checked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
