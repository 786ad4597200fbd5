use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("ledger_transactions")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(string("kind"))
                    .col(uuid_null("task_id"))
                    .col(uuid_null("agent_id"))
                    .col(string_null("request_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("ledger_entries")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(uuid("transaction_id"))
                    .col(uuid("wallet_id"))
                    .col(string("bucket"))
                    .col(big_integer("amount"))
                    .col(big_integer("balance_after"))
                    .col(big_integer("available_after"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ledger_entries_transaction")
                            .from("ledger_entries", "transaction_id")
                            .to("ledger_transactions", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ledger_entries_wallet")
                            .from("ledger_entries", "wallet_id")
                            .to("wallets", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ledger_entries_wallet")
                    .table("ledger_entries")
                    .col("wallet_id")
                    .col("id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ledger_entries_transaction")
                    .table("ledger_entries")
                    .col("transaction_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ledger_transactions_task")
                    .table("ledger_transactions")
                    .col("task_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("ledger_entries").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("ledger_transactions").to_owned())
            .await
    }
}
