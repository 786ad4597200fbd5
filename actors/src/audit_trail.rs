//! Reading the audit log (`GET /audit/logs`): a user's own entries, newest first, filtered by
//! action and time. The owner filter is applied here and nowhere else, so a user never sees
//! another's entries.

use crate::{
    Hub,
    error::HubResult,
    validate::{Errors, Page, Paged},
};
use chrono::{DateTime, Utc};
use entities::audit_logs;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

/// An audit entry as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: Uuid,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub details: serde_json::Value,
}

impl From<audit_logs::Model> for Entry {
    fn from(m: audit_logs::Model) -> Self {
        Self {
            id: m.id,
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id,
            ip: m.ip,
            created_at: m.created_at,
            details: m.details,
        }
    }
}

/// The filters of a listing, validated.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact action, e.g. `user.login`.
    pub action: Option<String>,
    /// Entries at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Entries at or before this instant.
    pub to: Option<DateTime<Utc>>,
}

impl Filter {
    /// Parses the query-string values; an invalid time is a field error.
    pub fn parse(
        errors: &mut Errors,
        action: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Self {
        let mut time = |field: &str, value: Option<&str>| {
            let value = value.map(str::trim).filter(|v| !v.is_empty())?;
            match DateTime::parse_from_rfc3339(value) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errors.add(
                        field,
                        "must be an RFC 3339 date-time, e.g. 2026-01-31T12:00:00Z",
                    );
                    None
                }
            }
        };
        let from = time("from", from);
        let to = time("to", to);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            errors.add("to", "must not be before from");
        }
        Self {
            action: action
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string),
            from,
            to,
        }
    }
}

/// The user's own entries, newest first.
pub async fn list(hub: &Hub, user_id: Uuid, filter: Filter, page: Page) -> HubResult<Paged<Entry>> {
    let mut q = audit_logs::Entity::find().filter(audit_logs::Column::UserId.eq(user_id));
    if let Some(action) = filter.action {
        q = q.filter(audit_logs::Column::Action.eq(action));
    }
    if let Some(from) = filter.from {
        q = q.filter(audit_logs::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(audit_logs::Column::CreatedAt.lte(to));
    }
    let q = q
        .order_by_desc(audit_logs::Column::CreatedAt)
        .order_by_desc(audit_logs::Column::Id);
    let total = q.clone().count(&hub.db).await?;
    let data = q
        .offset(page.offset())
        .limit(page.limit)
        .all(&hub.db)
        .await?
        .into_iter()
        .map(Entry::from)
        .collect();
    Ok(Paged {
        data,
        page: page.page,
        limit: page.limit,
        total,
    })
}
