//! `/api/v1/agents/{agentId}/reviews`: list (anyone), mine, submit or update, delete (JWT).

use crate::{
    auth::{OptionalCaller, UserAuth},
    error::ApiError,
    http::PageQuery,
    http::{body::Body, origin},
};
use actix_web::{HttpRequest, HttpResponse, web};
use actors::{
    Hub,
    reviews::{self, ReviewInput, Saved},
};

async fn list(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let viewer = caller.0.map(|c| c.user_id);
    Ok(HttpResponse::Ok().json(reviews::list(&hub, &path, viewer, page).await?))
}

async fn mine(
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(reviews::mine(&hub, auth.user_id, &path).await?))
}

async fn submit(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    Body(input): Body<ReviewInput>,
) -> Result<HttpResponse, ApiError> {
    let (saved, review) = reviews::submit(&hub, &origin(&req), auth.user_id, &path, input).await?;
    Ok(match saved {
        Saved::Created => HttpResponse::Created().json(review),
        Saved::Updated => HttpResponse::Ok().json(review),
    })
}

async fn delete(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    reviews::delete(&hub, &origin(&req), auth.user_id, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/agents/{agentId}/reviews/mine").route(web::get().to(mine)))
        .service(
            web::resource("/agents/{agentId}/reviews")
                .route(web::get().to(list))
                .route(web::post().to(submit))
                .route(web::delete().to(delete)),
        );
}
