//! `/api/v1/agents/leaderboard/{week,richest,top-rated}`: paginated, public and active agents
//! only, ranks continuing across pages. Mounted before `/agents/{slugOrId}`.

use crate::{error::ApiError, http::PageQuery};
use actix_web::{HttpResponse, web};
use actors::{Hub, leaderboards};

async fn week(hub: web::Data<Hub>, query: web::Query<PageQuery>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(leaderboards::week(&hub, query.page()?).await?))
}

async fn richest(
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(leaderboards::richest(&hub, query.page()?).await?))
}

async fn top_rated(
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(leaderboards::top_rated(&hub, query.page()?).await?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/agents/leaderboard/week").route(web::get().to(week)))
        .service(web::resource("/agents/leaderboard/richest").route(web::get().to(richest)))
        .service(web::resource("/agents/leaderboard/top-rated").route(web::get().to(top_rated)));
}
