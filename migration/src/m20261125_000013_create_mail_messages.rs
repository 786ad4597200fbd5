use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("mail_messages")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("agent_id"))
                    .col(string_len("recipient", 320))
                    .col(string_len("sender", 320))
                    .col(string_len_null("message_id", 998))
                    .col(text_null("subject"))
                    .col(blob("raw"))
                    .col(string_len("status", 16))
                    .col(text_null("note"))
                    .col(uuid_null("task_id"))
                    .col(string_len_null("reply_message_id", 998))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mail_messages_agent")
                            .from("mail_messages", "agent_id")
                            .to("agents", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Start-up picks up every message that was accepted but not answered yet.
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_messages_status")
                    .table("mail_messages")
                    .col("status")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mail_messages_agent_created")
                    .table("mail_messages")
                    .col("agent_id")
                    .col("created_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("mail_messages").to_owned())
            .await
    }
}
