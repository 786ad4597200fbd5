use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("health_checks")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("agent_id"))
                    .col(boolean("healthy"))
                    .col(big_integer("latency_ms").check(Expr::col("latency_ms").gte(0)))
                    .col(timestamp_with_time_zone("checked_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_health_checks_agent")
                            .from("health_checks", "agent_id")
                            .to("agents", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_health_checks_agent_checked")
                    .table("health_checks")
                    .col("agent_id")
                    .col("checked_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // The retention sweep deletes by age across all agents.
        manager
            .create_index(
                Index::create()
                    .name("idx_health_checks_checked")
                    .table("health_checks")
                    .col("checked_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("health_checks").to_owned())
            .await
    }
}
