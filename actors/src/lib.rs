//! agenthub's engine: the actors (Registry, Task, Wallet, AgentConn kinds) and every business
//! rule, in plain modules where no actor is needed. Edges (HTTP, SMTP) call into this crate;
//! this crate knows nothing of HTTP routing.

pub mod accounts;
pub mod audit;
pub mod catalog;
pub mod clock;
pub mod db;
pub mod discovery;
pub mod error;
pub mod keys;
pub mod ledger;
pub mod passwords;
pub mod reputation;
pub mod url_guard;
pub mod validate;

use dashmap::DashSet;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

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
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            start_tokens: 10_000,
            mail_domain: "mail.localhost".into(),
            allow_private_urls: false,
        }
    }
}

/// Which agents are connected to this process right now.
#[derive(Debug, Default)]
pub struct Presence(DashSet<Uuid>);

impl Presence {
    pub fn contains(&self, agent: Uuid) -> bool {
        self.0.contains(&agent)
    }

    pub fn set(&self, agent: Uuid, online: bool) {
        if online {
            self.0.insert(agent);
        } else {
            self.0.remove(&agent);
        }
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.0.iter().map(|id| *id).collect()
    }
}

/// Everything the engine needs, shared by every edge.
pub struct Hub {
    pub db: DatabaseConnection,
    pub env: Env,
    pub config: HubConfig,
    pub keys: keys::KeyCache,
    pub presence: Presence,
}

impl Hub {
    /// Builds the hub on an open, migrated database and makes sure the system wallet exists.
    pub async fn start(db: DatabaseConnection, env: Env, config: HubConfig) -> HubResult<Self> {
        let hub = Self {
            db,
            env,
            config,
            keys: keys::KeyCache::default(),
            presence: Presence::default(),
        };
        ledger::ensure_system_wallet(&hub, &hub.db).await?;
        Ok(hub)
    }
}
