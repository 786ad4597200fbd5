//! `/api/v1/billing/*`: balance (JWT or API key: the owner's), transactions, status.

use crate::{
    auth::{Caller, UserAuth},
    error::ApiError,
    http::PageQuery,
};
use actix_web::{HttpResponse, web};
use actors::{Hub, catalog::PRICING_MODELS, ledger};
use serde_json::json;

async fn balance(caller: Caller, hub: web::Data<Hub>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(ledger::balance(&hub.db, caller.user_id).await?))
}

async fn transactions(
    auth: UserAuth,
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    Ok(HttpResponse::Ok().json(ledger::statement(&hub.db, auth.user_id, page).await?))
}

async fn status(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "enabled": true,
        "currency": "virtual-tokens",
        "realMoney": false,
        "startTokens": hub.config.start_tokens,
        "marketplaceFeePercent": 0,
        "pricingModels": PRICING_MODELS,
        "tokenExpiry": null,
    }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/billing/balance").route(web::get().to(balance)))
        .service(web::resource("/billing/transactions").route(web::get().to(transactions)))
        .service(web::resource("/billing/status").route(web::get().to(status)));
}
