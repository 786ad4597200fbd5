//! `ledger_entries`: the legs of a ledger transaction. The entries of one transaction sum to
//! zero; `balance_after` is the bucket's value right after this entry. Insert-only.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub transaction_id: Uuid,
    pub wallet_id: Uuid,
    /// `available` (the wallet's `balance`) or `reserved`.
    pub bucket: String,
    pub amount: i64,
    pub balance_after: i64,
    /// The wallet's spendable balance right after this entry's transaction: what a statement
    /// shows as `balanceAfter`, whichever bucket the entry moved.
    pub available_after: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::ledger_transactions::Entity",
        from = "Column::TransactionId",
        to = "super::ledger_transactions::Column::Id"
    )]
    Transaction,
}

impl Related<super::ledger_transactions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Transaction.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
