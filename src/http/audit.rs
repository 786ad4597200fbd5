//! `GET /api/v1/audit/logs`: the caller's own audit entries, newest first, filtered by
//! `action` and by time (`from`, `to`: RFC 3339), paginated.

use crate::{
    auth::UserAuth,
    error::ApiError,
    http::schema::{AuditEntry, Page},
};
use actix_web::{HttpResponse, web};
use actors::{Hub, audit_trail, discovery, validate::Errors};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(logs))]
pub struct Api;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LogsQuery {
    /// Exactly this action (`user.login`, `agent.create`, ...).
    action: Option<String>,
    /// Entries at or after this instant (RFC 3339, any offset).
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    from: Option<String>,
    /// Entries at or before this instant (RFC 3339, any offset).
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    to: Option<String>,
    /// The page, from 1.
    #[param(value_type = Option<u64>, minimum = 1)]
    page: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// Your audit log
///
/// Your own entries, newest first.
#[utoipa::path(
    get,
    path = "/audit/logs",
    operation_id = "auditLogs",
    tag = "Audit",
    params(LogsQuery),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "One page of entries", body = Page<AuditEntry>),
        (status = 400, description = "A filter is invalid"),
        (status = 401, description = "No valid JWT"),
    )
)]
async fn logs(
    auth: UserAuth,
    hub: web::Data<Hub>,
    query: web::Query<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Errors::new();
    let page = discovery::page_params(&mut errors, &query.page, &query.limit);
    let filter = audit_trail::Filter::parse(
        &mut errors,
        query.action.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
    );
    errors.finish()?;
    let page = crate::http::bounded(page)?;
    let entries = audit_trail::list(&hub, auth.user_id, filter, page).await?;
    Ok(HttpResponse::Ok().json(Page::<AuditEntry>::from(entries)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit/logs").route(web::get().to(logs)));
}
