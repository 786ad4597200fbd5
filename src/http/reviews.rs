//! `/api/v1/agents/{agentId}/reviews`: list (anyone), mine, submit or update, delete (JWT).

use crate::{
    auth::{OptionalCaller, UserAuth},
    error::ApiError,
    http::PageQuery,
    http::schema::{Page, Review},
    http::{body::Body, origin},
};
use actix_web::{HttpRequest, HttpResponse, web};
use actors::{
    Hub,
    reviews::{self, ReviewInput, Saved},
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(list, mine, submit, delete))]
pub struct Api;

/// An agent's reviews
///
/// Newest first.
#[utoipa::path(
    get,
    path = "/agents/{agentId}/reviews",
    operation_id = "listReviews",
    tag = "Reviews and reputation",
    params(("agentId" = String, Path, description = "The agent's slug or id"), PageQuery),
    security((), ("jwt" = []), ("apiKey" = [])),
    responses(
        (status = 200, description = "One page of reviews", body = Page<Review>),
        (status = 400, description = "page or limit is invalid"),
        (status = 401, description = "A credential was sent and is invalid"),
        (status = 404, description = "No such agent, or someone else's private agent"),
    )
)]
async fn list(
    hub: web::Data<Hub>,
    caller: OptionalCaller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let viewer = caller.0.map(|c| c.user_id);
    let reviews = reviews::list(&hub, &path, viewer, page).await?;
    Ok(HttpResponse::Ok().json(Page::<Review>::from(reviews)))
}

/// Your review of an agent
#[utoipa::path(
    get,
    path = "/agents/{agentId}/reviews/mine",
    operation_id = "myReview",
    tag = "Reviews and reputation",
    params(("agentId" = String, Path, description = "The agent's slug or id")),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Your review", body = Review),
        (status = 401, description = "No valid JWT"),
        (status = 404, description = "No such agent, or no review of yours"),
    )
)]
async fn mine(
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let review = reviews::mine(&hub, auth.user_id, &path).await?;
    Ok(HttpResponse::Ok().json(Review::from(review)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReviewInput)]
struct ReviewBody {
    /// Whole stars, 1 to 5.
    #[schema(value_type = i32, required = true, minimum = 1, maximum = 5)]
    rating: Option<Value>,
    /// At most 2,000 characters; blank means none.
    #[schema(value_type = String, max_length = 2000, required = false)]
    comment: Option<String>,
}

impl From<ReviewBody> for ReviewInput {
    fn from(b: ReviewBody) -> Self {
        let ReviewBody { rating, comment } = b;
        Self { rating, comment }
    }
}

/// Review an agent
///
/// Needs a completed call to the agent, paid by you; never your own agent. A second review
/// updates the first (200).
#[utoipa::path(
    post,
    path = "/agents/{agentId}/reviews",
    operation_id = "submitReview",
    tag = "Reviews and reputation",
    params(("agentId" = String, Path, description = "The agent's slug or id")),
    security(("jwt" = [])),
    request_body = ReviewBody,
    responses(
        (status = 201, description = "Created", body = Review),
        (status = 200, description = "Your earlier review, updated", body = Review),
        (status = 400, description = "rating or comment is invalid"),
        (status = 401, description = "No valid JWT"),
        (status = 403, description = "No completed call of yours to this agent, or your own agent"),
        (status = 404, description = "No such agent, or someone else's private agent"),
    )
)]
async fn submit(
    req: HttpRequest,
    auth: UserAuth,
    hub: web::Data<Hub>,
    path: web::Path<String>,
    Body(input): Body<ReviewBody>,
) -> Result<HttpResponse, ApiError> {
    let (saved, review) =
        reviews::submit(&hub, &origin(&req), auth.user_id, &path, input.into()).await?;
    let review = Review::from(review);
    Ok(match saved {
        Saved::Created => HttpResponse::Created().json(review),
        Saved::Updated => HttpResponse::Ok().json(review),
    })
}

/// Delete your review
#[utoipa::path(
    delete,
    path = "/agents/{agentId}/reviews",
    operation_id = "deleteReview",
    tag = "Reviews and reputation",
    params(("agentId" = String, Path, description = "The agent's slug or id")),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid JWT"),
        (status = 404, description = "No such agent, or no review of yours"),
    )
)]
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
