use sea_orm_migration::prelude::*;

/// Indexes for two lookups that scanned an agent's whole history, found by the 10-minute soak
/// (S6), where throughput fell 4× as the tables grew:
/// - an inbound message's duplicate check (`agent_id` and `message_id`) ran inside the
///   mailroom's write transaction and scanned every message the agent ever received, holding
///   SQLite's one writer turn longer with every message (and so slowing every paid call too);
/// - a plain stream's offer of the tasks still open (`agent_id` and `status`, by `job_id`)
///   scanned every task of the agent.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            // A B-tree entry must fit a third of a page on PostgreSQL, and a Message-ID may be
            // up to 998 characters of any script; a hash index has no such limit and serves
            // the equality lookup (the agent is then checked on the few rows found).
            sea_orm::DbBackend::Postgres => {
                manager
                    .get_connection()
                    .execute_unprepared(
                        "CREATE INDEX IF NOT EXISTS idx_mail_messages_agent_message_id \
                         ON mail_messages USING hash (message_id)",
                    )
                    .await?;
            }
            _ => {
                manager
                    .create_index(
                        Index::create()
                            .name("idx_mail_messages_agent_message_id")
                            .table("mail_messages")
                            .col("agent_id")
                            .col("message_id")
                            .if_not_exists()
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_agent_status_job")
                    .table("tasks")
                    .col("agent_id")
                    .col("status")
                    .col("job_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tasks_agent_status_job")
                    .table("tasks")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_mail_messages_agent_message_id")
                    .table("mail_messages")
                    .to_owned(),
            )
            .await
    }
}
