//! `GET /health`: whether the hub and its database answer. 503 when the database does not.

use actix_web::{HttpResponse, web};
use actors::{Hub, db};
use serde_json::json;
use std::time::Instant;

/// When the process started, for `uptimeSecs`.
pub struct StartedAt(pub Instant);

async fn health(hub: web::Data<Hub>, started: web::Data<StartedAt>) -> HttpResponse {
    let t = Instant::now();
    let up = db::ping(&hub.db).await;
    let body = json!({
        "status": if up { "ok" } else { "degraded" },
        "database": if up { "up" } else { "down" },
        "databaseLatencyMs": t.elapsed().as_millis() as u64,
        "backend": format!("{:?}", hub.db.get_database_backend()).to_lowercase(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSecs": started.0.elapsed().as_secs(),
        "connectedAgents": hub.registry.connected_count(),
    });
    if up {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)));
}
