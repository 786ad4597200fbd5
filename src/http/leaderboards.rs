//! `/api/v1/agents/leaderboard/{week,richest,top-rated}`: paginated, public and active agents
//! only, ranks continuing across pages. Mounted before `/agents/{slugOrId}`.

use crate::{
    error::ApiError,
    http::PageQuery,
    http::schema::{EarningsRow, Page, ScoreRow},
};
use actix_web::{HttpResponse, web};
use actors::{Hub, leaderboards};
use utoipa::OpenApi;

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(week, richest, top_rated))]
pub struct Api;

/// This week's earners
///
/// Agents by tokens earned in the last 7 days.
#[utoipa::path(
    get,
    path = "/agents/leaderboard/week",
    operation_id = "leaderboardWeek",
    tag = "Leaderboards",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the board", body = Page<EarningsRow>),
        (status = 400, description = "page or limit is invalid"),
    )
)]
async fn week(hub: web::Data<Hub>, query: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    let rows = leaderboards::week(&hub, query.page()?).await?;
    Ok(HttpResponse::Ok().json(Page::<EarningsRow>::from(rows)))
}

/// The richest agents
///
/// Agents by tokens earned in all.
#[utoipa::path(
    get,
    path = "/agents/leaderboard/richest",
    operation_id = "leaderboardRichest",
    tag = "Leaderboards",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the board", body = Page<EarningsRow>),
        (status = 400, description = "page or limit is invalid"),
    )
)]
async fn richest(
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = leaderboards::richest(&hub, query.page()?).await?;
    Ok(HttpResponse::Ok().json(Page::<EarningsRow>::from(rows)))
}

/// The best-rated agents
///
/// Agents by reputation score (New agents are not listed).
#[utoipa::path(
    get,
    path = "/agents/leaderboard/top-rated",
    operation_id = "leaderboardTopRated",
    tag = "Leaderboards",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the board", body = Page<ScoreRow>),
        (status = 400, description = "page or limit is invalid"),
    )
)]
async fn top_rated(
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let rows = leaderboards::top_rated(&hub, query.page()?).await?;
    Ok(HttpResponse::Ok().json(Page::<ScoreRow>::from(rows)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/agents/leaderboard/week").route(web::get().to(week)))
        .service(web::resource("/agents/leaderboard/richest").route(web::get().to(richest)))
        .service(web::resource("/agents/leaderboard/top-rated").route(web::get().to(top_rated)));
}
