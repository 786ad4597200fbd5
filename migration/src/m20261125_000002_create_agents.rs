use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("agents")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("owner_id"))
                    .col(string("name"))
                    .col(string_uniq("slug"))
                    .col(string("version"))
                    .col(text("description"))
                    .col(string_null("connection_mode"))
                    .col(string_null("delivery_mode"))
                    .col(text_null("mcp_endpoint"))
                    .col(text_null("endpoint"))
                    .col(string("visibility"))
                    .col(string("status"))
                    .col(string("pricing_model"))
                    .col(big_integer("price_per_call").check(Expr::col("price_per_call").gte(0)))
                    .col(json("tags"))
                    .col(text("tags_index"))
                    .col(string("category"))
                    .col(json_null("tools"))
                    .col(big_integer("total_calls").default(0))
                    .col(big_integer("completed_calls").default(0))
                    .col(big_integer("failed_calls").default(0))
                    .col(big_integer("total_latency_ms").default(0))
                    .col(big_integer("tokens_earned").default(0))
                    .col(double_null("reputation_score"))
                    .col(big_integer("review_count").default(0))
                    .col(big_integer("rating_sum").default(0))
                    .col(big_integer("checks_total").default(0))
                    .col(big_integer("checks_healthy").default(0))
                    .col(boolean_null("last_check_healthy"))
                    .col(big_integer_null("last_check_latency_ms"))
                    .col(timestamp_with_time_zone_null("last_check_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_agents_owner")
                            .from("agents", "owner_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_agents_owner", vec!["owner_id"]),
            (
                "idx_agents_listing",
                vec!["visibility", "status", "created_at"],
            ),
            ("idx_agents_category", vec!["category"]),
            ("idx_agents_tokens", vec!["tokens_earned"]),
            ("idx_agents_reputation", vec!["reputation_score"]),
        ] {
            let mut index = Index::create();
            index.name(name).table("agents").if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("agents").to_owned())
            .await
    }
}
