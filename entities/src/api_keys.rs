//! `api_keys`: one live key per agent. The key itself is never stored: `lookup` is a
//! non-secret prefix used to find the row, `key_hash` the Argon2id PHC string of the whole key,
//! `last4` what `maskedKey` shows. A regenerated key replaces the row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub agent_id: Uuid,
    #[sea_orm(unique)]
    pub lookup: String,
    pub key_hash: String,
    pub last4: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
