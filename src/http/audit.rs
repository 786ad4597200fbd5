//! `GET /api/v1/audit/logs`: the caller's own audit entries, newest first, filtered by
//! `action` and by time (`from`, `to`: RFC 3339), paginated.

use crate::{auth::UserAuth, error::ApiError};
use actix_web::{HttpResponse, web};
use actors::{Hub, audit_trail, discovery, validate::Errors};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct LogsQuery {
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    page: Option<String>,
    limit: Option<String>,
}

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
    Ok(HttpResponse::Ok().json(audit_trail::list(&hub, auth.user_id, filter, page).await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit/logs").route(web::get().to(logs)));
}
