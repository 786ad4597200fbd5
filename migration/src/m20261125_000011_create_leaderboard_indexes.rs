//! Indexes the leaderboards and review rules read through: charges by time (the weekly board),
//! a payer's completed calls to an agent (who may review), audit entries by action.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str, &[&str]); 3] = [
    (
        "idx_ledger_transactions_kind_created",
        "ledger_transactions",
        &["kind", "created_at"],
    ),
    (
        "idx_tasks_payer_agent_status",
        "tasks",
        &["payer_id", "agent_id", "status"],
    ),
    (
        "idx_audit_logs_user_action",
        "audit_logs",
        &["user_id", "action", "created_at"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, cols) in INDEXES {
            let mut index = Index::create();
            index.name(name).table(table).if_not_exists();
            for col in cols {
                index.col(*col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
