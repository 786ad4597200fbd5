//! The audit log: security-relevant events of a user, written beside the change they record.

use crate::{Hub, error::HubResult};
use entities::audit_logs;
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;

/// Who did something, and from where.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
}

/// One event to record.
pub struct Event<'a> {
    pub user_id: Uuid,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(user_id: Uuid, action: &'a str) -> Self {
        Self {
            user_id,
            action,
            target_type: None,
            target_id: None,
            details: serde_json::json!({}),
        }
    }

    pub fn target(mut self, kind: &'a str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

pub async fn record<C: ConnectionTrait>(
    hub: &Hub,
    conn: &C,
    origin: &Origin,
    event: Event<'_>,
) -> HubResult<()> {
    audit_logs::Entity::insert(audit_logs::ActiveModel {
        id: Set(hub.env.new_id()),
        user_id: Set(event.user_id),
        action: Set(event.action.to_string()),
        target_type: Set(event.target_type.map(str::to_string)),
        target_id: Set(event.target_id),
        ip: Set(origin.ip.clone()),
        details: Set(event.details),
        created_at: Set(hub.env.now()),
    })
    .exec(conn)
    .await?;
    Ok(())
}
