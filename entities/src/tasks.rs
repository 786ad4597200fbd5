//! `tasks`: one row per call or task, from creation to its final state. The row is written
//! before the work is handed to the agent, so a crash never loses track of a reservation:
//! start-up settles every row that is not final.
//!
//! `status`: `reserved` → `dispatched` → `completed` | `failed` | `timeout` | `cancelled`
//! (`queued` for tasks waiting for an agent that is away).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub job_id: i64,
    /// The paying account (the caller's user).
    pub payer_id: Uuid,
    pub caller_agent_id: Option<Uuid>,
    pub agent_id: Uuid,
    /// The agent's owner at the time of the call: who is paid.
    pub payee_id: Uuid,
    /// `mcp`, `ws`, `task`, `email` or `test`.
    pub source: String,
    pub buyer: String,
    pub tool_name: String,
    pub arguments: Json,
    pub request_id: String,
    pub price: i64,
    pub status: String,
    pub result: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub reserve_tx: Option<Uuid>,
    pub settle_tx: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub deadline_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub duration_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
