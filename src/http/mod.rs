//! The HTTP API: one module per resource, each with its DTOs, thin handlers and `configure`.

pub mod agents;
pub mod audit;
pub mod billing;
pub mod body;
pub mod health;
pub mod leaderboards;
pub mod mail;
pub mod mcp;
pub mod public;
pub mod rate_limit;
pub mod reputation;
pub mod reviews;
pub mod tasks;
pub mod users;

use crate::error::ApiError;
use actix_web::{HttpRequest, web};
use actors::{audit::Origin, discovery, validate};

/// `?page=&limit=` of every list endpoint, as sent (strings, so a bad value is a field error).
#[derive(Debug, serde::Deserialize)]
pub struct PageQuery {
    pub page: Option<String>,
    pub limit: Option<String>,
}

impl PageQuery {
    /// The validated page: 400 with `details` for a bad `page` or `limit` (> 100 included).
    pub fn page(&self) -> Result<validate::Page, ApiError> {
        let mut errors = validate::Errors::new();
        let page = discovery::page_params(&mut errors, &self.page, &self.limit);
        errors.finish()?;
        Ok(page)
    }
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
            .configure(agents::configure),
    );
}

/// Where a request came from, for the audit log.
pub fn origin(req: &HttpRequest) -> Origin {
    Origin {
        ip: req.peer_addr().map(|a| a.ip().to_string()),
    }
}
