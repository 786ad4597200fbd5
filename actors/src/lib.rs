//! agenthub's engine: the actors (Registry, Task, Wallet, AgentConn kinds) and every business
//! rule, in plain modules where no actor is needed. Edges (HTTP, SMTP) call into this crate;
//! this crate knows nothing of HTTP routing.

pub mod accounts;
pub mod audit;
pub mod audit_trail;
pub mod catalog;
pub mod clock;
pub mod conn;
pub mod db;
pub mod discovery;
pub mod error;
pub mod gateway;
pub mod health;
pub mod keys;
pub mod later;
pub mod leaderboards;
pub mod ledger;
pub mod mail;
pub mod outbound;
pub mod passwords;
pub mod registry;
pub mod reputation;
pub mod reviews;
pub mod task;
pub mod url_guard;
pub mod validate;
pub mod wallet;
pub mod writer;

use sea_orm::DatabaseConnection;
use std::time::Duration;

pub use clock::Env;
pub use error::{FieldError, HubError, HubResult};

/// Settings of the engine (a subset of the process configuration).
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Tokens granted to every new account.
    pub start_tokens: i64,
    /// Agents receive mail at `slug@<mail_domain>`.
    pub mail_domain: String,
    /// Whether user-supplied URLs may point at private addresses.
    pub allow_private_urls: bool,
    /// Default deadline of a call.
    pub call_timeout: Duration,
    /// WebSocket ping cadence and pong deadline.
    pub heartbeat: Duration,
    pub pong_timeout: Duration,
    /// Deadline of a webhook push.
    pub push_timeout: Duration,
    /// How often agents are health-checked.
    pub health_interval: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            start_tokens: 10_000,
            mail_domain: "mail.localhost".into(),
            allow_private_urls: false,
            call_timeout: Duration::from_secs(60),
            heartbeat: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(10),
            health_interval: Duration::from_secs(300),
            push_timeout: Duration::from_secs(30),
        }
    }
}

/// Everything the engine needs, shared by every edge.
pub struct Hub {
    pub db: DatabaseConnection,
    pub env: Env,
    pub config: HubConfig,
    pub keys: keys::KeyCache,
    pub registry: registry::Registry,
    /// The MCP-over-HTTP client (through the safe outbound client).
    pub mcp: std::sync::Arc<conn::mcp_http::McpHttp>,
    /// Group commit of the calls' writes (tasks and their ledger transactions).
    pub writer: writer::Writer,
    /// The last `jobId` handed out: a per-hub increasing integer.
    job_seq: std::sync::atomic::AtomicI64,
}

impl Hub {
    /// The next `jobId`.
    pub fn next_job_id(&self) -> i64 {
        self.job_seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    /// Builds the hub on an open, migrated database: makes sure the system wallet exists and
    /// settles the calls a previous process left in flight.
    pub async fn start(db: DatabaseConnection, env: Env, config: HubConfig) -> HubResult<Self> {
        let allow_private = config.allow_private_urls;
        let hub = Self {
            writer: writer::Writer::start(db.clone()),
            db,
            env,
            config,
            keys: keys::KeyCache::default(),
            registry: registry::Registry::default(),
            mcp: std::sync::Arc::new(
                conn::mcp_http::McpHttp::new(allow_private).map_err(HubError::Internal)?,
            ),
            job_seq: std::sync::atomic::AtomicI64::new(0),
        };
        ledger::ensure_system_wallet(&hub, &hub.db).await?;
        hub.job_seq.store(
            task::max_job_id(&hub.db).await?,
            std::sync::atomic::Ordering::SeqCst,
        );
        task::recover(&hub).await?;
        Ok(hub)
    }
}
