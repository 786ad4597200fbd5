//! `wallets`: the materialised balances of the ledger. A user's wallet has the user's id; the
//! `system` wallet (nil UUID) issues start grants and is the only one allowed below zero.
//! `balance` is spendable, `reserved` is held for calls in flight. Both always equal the sum of
//! the wallet's ledger entries in that bucket.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "wallets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub balance: i64,
    pub reserved: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
