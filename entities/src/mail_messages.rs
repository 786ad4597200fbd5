//! `mail_messages`: one row per accepted inbound message and recipient agent. The raw message
//! is stored before the SMTP `250` (or the HTTP `202`), so nothing acknowledged is lost: start-up
//! resumes every row that is not finished.
//!
//! `status`: `received` → `dispatched` → `replied`, or `ignored` (automatic mail, never
//! answered) or `failed` (the reply could not be sent).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub agent_id: Uuid,
    /// `slug@<mail domain>` as given at `RCPT TO`.
    pub recipient: String,
    /// The envelope sender (`MAIL FROM`), lower-cased; empty for the null return path.
    pub sender: String,
    /// The SMTP client's address, for the hub's own SPF check; `None` for messages posted over
    /// HTTP (and rows stored before it was kept).
    pub client_ip: Option<String>,
    pub message_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub subject: Option<String>,
    /// The message as received, byte for byte.
    pub raw: Vec<u8>,
    pub status: String,
    /// Why it was ignored or what the reply said, for the owner and the logs.
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    pub task_id: Option<Uuid>,
    pub reply_message_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
