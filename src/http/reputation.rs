//! `GET /api/v1/agents/{agentId}/reputation`: the score, stars, cold-start flag and the points
//! of each of the five components.

use crate::{auth::OptionalCaller, error::ApiError, http::schema::Reputation};
use actix_web::{HttpResponse, web};
use actors::{Hub, reputation};
use utoipa::OpenApi;

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(show))]
pub struct Api;

/// An agent's reputation
#[utoipa::path(
    get,
    path = "/agents/{agentId}/reputation",
    operation_id = "agentReputation",
    tag = "Reviews and reputation",
    params(("agentId" = String, Path, description = "The agent's slug or id")),
    security((), ("jwt" = []), ("apiKey" = [])),
    responses(
        (status = 200, description = "The reputation", body = Reputation),
        (status = 401, description = "A credential was sent and is invalid"),
        (status = 404, description = "No such agent, or someone else's private agent"),
    )
)]
async fn show(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let viewer = caller.0.map(|c| c.user_id);
    let report = reputation::of_agent(&hub, &path, viewer).await?;
    Ok(HttpResponse::Ok().json(Reputation::from(report)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/agents/{agentId}/reputation").route(web::get().to(show)));
}
