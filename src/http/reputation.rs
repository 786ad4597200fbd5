//! `GET /api/v1/agents/{agentId}/reputation`: the score, stars, cold-start flag and the points
//! of each of the five components.

use crate::{auth::OptionalCaller, error::ApiError};
use actix_web::{HttpResponse, web};
use actors::{Hub, reputation};

async fn show(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let viewer = caller.0.map(|c| c.user_id);
    Ok(HttpResponse::Ok().json(reputation::of_agent(&hub, &path, viewer).await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/agents/{agentId}/reputation").route(web::get().to(show)));
}
