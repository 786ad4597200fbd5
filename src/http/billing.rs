//! `/api/v1/billing/*`: balance (JWT or API key: the owner's), transactions, status.

use crate::{
    auth::{Caller, UserAuth},
    error::ApiError,
    http::PageQuery,
    http::schema::{self, Balance, Page, Transaction},
};
use actix_web::{HttpResponse, web};
use actors::{Hub, catalog::PRICING_MODELS, ledger};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(balance, transactions, status))]
pub struct Api;

/// Your balance
///
/// With an API key: the balance of the key's owner.
#[utoipa::path(
    get,
    path = "/billing/balance",
    operation_id = "balance",
    tag = "Billing",
    security(("jwt" = []), ("apiKey" = [])),
    responses(
        (status = 200, description = "Spendable and reserved tokens", body = Balance),
        (status = 401, description = "No valid credential"),
        (status = 404, description = "The account no longer exists"),
    )
)]
async fn balance(caller: Caller, hub: web::Data<Hub>) -> Result<HttpResponse, ApiError> {
    let balance = ledger::balance(&hub.db, caller.user_id).await?;
    Ok(HttpResponse::Ok().json(Balance::from(balance)))
}

/// Your transactions
///
/// Settled movements, newest first: grants, charges and earnings.
#[utoipa::path(
    get,
    path = "/billing/transactions",
    operation_id = "transactions",
    tag = "Billing",
    params(PageQuery),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "One page of transactions", body = Page<Transaction>),
        (status = 400, description = "page or limit is invalid"),
        (status = 401, description = "No valid JWT"),
    )
)]
async fn transactions(
    auth: UserAuth,
    hub: web::Data<Hub>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let statement = ledger::statement(&hub.db, auth.user_id, page).await?;
    Ok(HttpResponse::Ok().json(Page::<Transaction>::from(statement)))
}

/// How billing works on this hub.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct BillingStatus {
    enabled: bool,
    /// Always `virtual-tokens`.
    currency: &'static str,
    /// Always `false`: no real money.
    real_money: bool,
    /// Tokens every new account starts with.
    start_tokens: i64,
    marketplace_fee_percent: u32,
    #[schema(schema_with = pricing_models)]
    pricing_models: [&'static str; 2],
    /// Tokens never expire: always `null`.
    #[schema(value_type = Option<String>, required = true)]
    token_expiry: Option<()>,
}

fn pricing_models() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(schema::pricing_model())
        .into()
}

/// Billing status
#[utoipa::path(
    get,
    path = "/billing/status",
    operation_id = "billingStatus",
    tag = "Billing",
    responses((status = 200, description = "The billing settings", body = BillingStatus))
)]
async fn status(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(BillingStatus {
        enabled: true,
        currency: "virtual-tokens",
        real_money: false,
        start_tokens: hub.config.start_tokens,
        marketplace_fee_percent: 0,
        pricing_models: PRICING_MODELS,
        token_expiry: None,
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/billing/balance").route(web::get().to(balance)))
        .service(web::resource("/billing/transactions").route(web::get().to(transactions)))
        .service(web::resource("/billing/status").route(web::get().to(status)));
}
