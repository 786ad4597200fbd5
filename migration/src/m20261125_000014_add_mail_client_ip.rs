use sea_orm_migration::{prelude::*, schema::*};

/// The SMTP client's address of each stored message, so the hub's own SPF check can run when
/// the message is processed, also after a restart. Nullable: rows stored before, and messages
/// posted over HTTP, have none.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("mail_messages")
                    .add_column(string_len_null("client_ip", 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("mail_messages")
                    .drop_column("client_ip")
                    .to_owned(),
            )
            .await
    }
}
