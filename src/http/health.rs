//! `GET /health`: whether the hub and its database answer. 503 when the database does not.

use actix_web::{HttpResponse, web};
use actors::{Hub, db};
use serde::Serialize;
use std::time::Instant;
use utoipa::{OpenApi, ToSchema};

/// The routes of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(health))]
pub struct Api;

/// When the process started, for `uptimeSecs`.
pub struct StartedAt(pub Instant);

/// Whether the hub and its database answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Health {
    #[schema(schema_with = health_status)]
    status: &'static str,
    #[schema(schema_with = database_status)]
    database: &'static str,
    database_latency_ms: u64,
    /// `sqlite` or `postgres`.
    backend: String,
    version: &'static str,
    uptime_secs: u64,
    /// Agents connected over a WebSocket now.
    connected_agents: usize,
}

fn health_status() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    crate::http::schema::string_enum(&["ok", "degraded"], false)
}

fn database_status() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    crate::http::schema::string_enum(&["up", "down"], false)
}

/// Health
///
/// Not rate-limited.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "Health",
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    )
)]
async fn health(hub: web::Data<Hub>, started: web::Data<StartedAt>) -> HttpResponse {
    let t = Instant::now();
    let up = db::ping(&hub.db).await;
    let body = Health {
        status: if up { "ok" } else { "degraded" },
        database: if up { "up" } else { "down" },
        database_latency_ms: t.elapsed().as_millis() as u64,
        backend: format!("{:?}", hub.db.get_database_backend()).to_lowercase(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: started.0.elapsed().as_secs(),
        connected_agents: hub.registry.connected_count(),
    };
    if up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)));
}
