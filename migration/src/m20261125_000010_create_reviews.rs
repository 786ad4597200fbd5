use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("reviews")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("agent_id"))
                    .col(uuid("user_id"))
                    .col(
                        integer("rating")
                            .check(Expr::col("rating").gte(1).and(Expr::col("rating").lte(5))),
                    )
                    .col(text_null("comment"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reviews_agent")
                            .from("reviews", "agent_id")
                            .to("agents", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reviews_user")
                            .from("reviews", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reviews_agent_user")
                    .table("reviews")
                    .col("agent_id")
                    .col("user_id")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reviews_agent_created")
                    .table("reviews")
                    .col("agent_id")
                    .col("created_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("reviews").to_owned())
            .await
    }
}
