//! What the two simulations share: a fresh, migrated hub on a manual clock and seeded entropy,
//! and the users and agents they play with.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use actors::{
    Env, Hub, HubConfig,
    clock::{ManualClock, SeededEntropy},
    db, ledger,
};
use entities::{agents, users};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// Whether the suite runs on PostgreSQL (`scripts/test --postgres`).
pub fn on_postgres() -> bool {
    std::env::var("AGENTHUB_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A hub on a fresh database (a SQLite file in `dir`, or a new database on the PostgreSQL
/// server of `AGENTHUB_TEST_DATABASE_URL`), with a manual clock and entropy seeded by `seed`.
pub async fn hub(
    dir: &std::path::Path,
    seed: u64,
    config: HubConfig,
) -> (Arc<Hub>, Arc<ManualClock>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = match std::env::var("AGENTHUB_TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            db::create_database(&server, "agenthub_t_").await.unwrap()
        }
        _ => format!("sqlite://{}?mode=rwc", dir.join("sim.db").display()),
    };
    let conn = db::connect(&url).await.unwrap();
    Migrator::up(&conn, None).await.unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let clock = Arc::new(ManualClock::new(start));
    let env = Env {
        clock: clock.clone(),
        entropy: Arc::new(SeededEntropy::new(seed)),
    };
    let hub = Arc::new(Hub::start(conn, env, config).await.unwrap());
    (hub, clock)
}

/// User `u<i>`, with a wallet granted `tokens`.
pub async fn user(hub: &Hub, i: usize, tokens: i64) -> Uuid {
    let id = hub.env.new_id();
    let now = hub.env.now();
    let txn = db::begin_write(&hub.db).await.unwrap();
    users::Entity::insert(users::ActiveModel::from(users::Model {
        id,
        email: format!("u{i}@sim.example"),
        username: format!("u{i}"),
        username_key: format!("u{i}"),
        display_name: format!("u{i}"),
        password_hash: "-".into(),
        created_at: now,
        updated_at: now,
    }))
    .exec(&txn)
    .await
    .unwrap();
    ledger::open_wallet(hub, &txn, id).await.unwrap();
    ledger::grant(&hub.env, &txn, id, tokens).await.unwrap();
    txn.commit().await.unwrap();
    id
}

/// Public, active agent `agent-<i>` of `owner` at `price`, reached by `connection_mode`
/// (`websocket`, ...) or, when that is `None`, by `delivery_mode`.
pub async fn agent(
    hub: &Hub,
    i: usize,
    owner: Uuid,
    price: i64,
    connection_mode: Option<&str>,
    delivery_mode: Option<&str>,
) -> agents::Model {
    let now = hub.env.now();
    let agent = agents::Model {
        id: hub.env.new_id(),
        owner_id: owner,
        name: format!("a{i}"),
        slug: format!("agent-{i}"),
        version: "1.0.0".into(),
        description: "simulated".into(),
        connection_mode: connection_mode.map(str::to_string),
        delivery_mode: delivery_mode.map(str::to_string),
        mcp_endpoint: None,
        endpoint: None,
        visibility: "public".into(),
        status: "active".into(),
        pricing_model: if price > 0 { "per-call" } else { "free" }.into(),
        price_per_call: price,
        tags: json!([]),
        tags_index: ",".into(),
        category: "other".into(),
        tools: None,
        total_calls: 0,
        completed_calls: 0,
        failed_calls: 0,
        total_latency_ms: 0,
        tokens_earned: 0,
        reputation_score: None,
        review_count: 0,
        rating_sum: 0,
        checks_total: 0,
        checks_healthy: 0,
        last_check_healthy: None,
        last_check_latency_ms: None,
        last_check_at: None,
        created_at: now,
        updated_at: now,
    };
    agent
        .clone()
        .into_active_model()
        .insert(&hub.db)
        .await
        .unwrap();
    agent
}
