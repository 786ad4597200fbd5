use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Only the system wallet (the issuer of start grants) may go below zero; the database
        // refuses a negative user balance even if a bug in the engine tried to write one.
        manager
            .create_table(
                Table::create()
                    .table("wallets")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(string("kind"))
                    .col(big_integer("balance"))
                    .col(big_integer("reserved").check(Expr::col("reserved").gte(0)))
                    .col(timestamp_with_time_zone("updated_at"))
                    .check(
                        Expr::col("balance")
                            .gte(0)
                            .or(Expr::col("kind").eq("system")),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("wallets").to_owned())
            .await
    }
}
