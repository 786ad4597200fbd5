use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("tasks")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(big_integer_uniq("job_id"))
                    .col(uuid("payer_id"))
                    .col(uuid_null("caller_agent_id"))
                    .col(uuid("agent_id"))
                    .col(uuid("payee_id"))
                    .col(string("source"))
                    .col(string("buyer"))
                    .col(string("tool_name"))
                    .col(json("arguments"))
                    .col(string("request_id"))
                    .col(big_integer("price").check(Expr::col("price").gte(0)))
                    .col(string("status"))
                    .col(json_null("result"))
                    .col(text_null("error"))
                    .col(uuid_null("reserve_tx"))
                    .col(uuid_null("settle_tx"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("deadline_at"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .col(big_integer_null("duration_ms"))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_tasks_status", vec!["status"]),
            ("idx_tasks_payer", vec!["payer_id", "created_at"]),
            ("idx_tasks_agent", vec!["agent_id", "created_at"]),
        ] {
            let mut index = Index::create();
            index.name(name).table("tasks").if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("tasks").to_owned())
            .await
    }
}
