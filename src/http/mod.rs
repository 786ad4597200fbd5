//! The HTTP API: one module per resource, each with its DTOs, thin handlers and `configure`.

pub mod agents;
pub mod audit;
pub mod billing;
pub mod body;
pub mod health;
pub mod leaderboards;
pub mod mail;
pub mod mcp;
pub mod openapi;
pub mod public;
pub mod rate_limit;
pub mod reputation;
pub mod reviews;
pub mod schema;
pub mod tasks;
pub mod users;

use crate::error::ApiError;
use actix_web::{HttpRequest, web};
use actors::{audit::Origin, discovery, validate};

/// `?page=&limit=` of every list endpoint, as sent (strings, so a bad value is a field error).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The page, from 1.
    #[param(value_type = Option<u64>, minimum = 1)]
    pub page: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

impl PageQuery {
    /// The validated page: 400 with `details` for a bad `page` or `limit` (> 100 included).
    pub fn page(&self) -> Result<validate::Page, ApiError> {
        page_params(&self.page, &self.limit)
    }
}

/// `page` and `limit` from a query string, validated, with the offset bounded: the database
/// drivers take signed 64-bit integers, and a larger offset made them panic.
pub fn page_params(
    page: &Option<String>,
    limit: &Option<String>,
) -> Result<validate::Page, ApiError> {
    let mut errors = validate::Errors::new();
    let page = discovery::page_params(&mut errors, page, limit);
    errors.finish()?;
    bounded(page)
}

/// A valid page whose offset the database can take (see [`page_params`]).
pub fn bounded(page: validate::Page) -> Result<validate::Page, ApiError> {
    if page.offset() > i64::MAX as u64 {
        return Err(ApiError::invalid(vec![actors::FieldError::new(
            "page",
            "is too large",
        )]));
    }
    Ok(page)
}

/// Mounts every route. Fixed paths under `/agents/` come before `/agents/{slugOrId}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    public::configure(cfg);
    tasks::configure_agent_side(cfg);
    cfg.service(
        web::scope("/api/v1")
            .configure(users::configure)
            .configure(billing::configure)
            .configure(mcp::configure)
            .configure(mail::configure)
            .configure(tasks::configure)
            .configure(audit::configure)
            .configure(leaderboards::configure)
            .configure(reviews::configure)
            .configure(reputation::configure)
            .configure(agents::configure)
            .configure(openapi::configure),
    );
}

/// Where a request came from, for the audit log.
pub fn origin(req: &HttpRequest) -> Origin {
    Origin {
        ip: req.peer_addr().map(|a| a.ip().to_string()),
    }
}
