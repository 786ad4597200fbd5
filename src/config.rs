//! Configuration: defaults, then `agenthub.toml` (if present), then the environment
//! (`AGENTHUB_*`, `DATABASE_URL`); the environment wins. Every timer the tests shorten is a
//! setting here: nothing is special-cased for tests.

use anyhow::{Context, bail};
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// HTTP and WebSocket listener (`AGENTHUB_HTTP_ADDR`); port 0 picks a free port.
    pub http_addr: String,
    /// `sqlite://…` or `postgres://…` (`DATABASE_URL`); unset: `sqlite://<data_dir>/agenthub.db`.
    pub database_url: Option<String>,
    /// Where the SQLite file, the generated JWT secret and the mail outbox live.
    pub data_dir: PathBuf,
    /// Base URL used in links, emails and `/skill.md`; unset: `http://<http_addr>`.
    pub public_url: Option<String>,
    /// HS256 secret for user JWTs; unset: generated once and kept in the data directory.
    pub jwt_secret: Option<String>,
    /// Agents receive mail at `slug@<mail_domain>`.
    pub mail_domain: String,
    /// Inbound SMTP listener, or `off`.
    pub smtp_addr: String,
    /// Outbound relay (`smtp://host:port`, `smtps://user:pass@host`); unset: `.eml` files in
    /// `<data_dir>/outbox/`.
    pub smtp_relay: Option<String>,
    /// Let webhook and MCP endpoints resolve to private addresses.
    pub allow_private_urls: bool,
    pub call_timeout_secs: u64,
    pub push_timeout_secs: u64,
    /// authserv-id of the upstream MTA whose `Authentication-Results` headers are trusted.
    pub mail_trusted_authserv: Option<String>,
    /// DNS server (`ip:port`) for the hub's own SPF and DKIM checks; unset: the system resolver.
    pub mail_dns: Option<String>,
    /// Largest inbound message (SMTP `SIZE`, and the HTTP inbound endpoint), in bytes.
    pub mail_max_bytes: usize,
    /// Messages an hour one sender may send to the hub's agents; 0: no limit.
    pub mail_rate_per_hour: u32,
    /// Secret of `POST /api/v1/email/inbound` (raw messages from an MTA or mail provider);
    /// unset: that endpoint is off.
    pub mail_inbound_secret: Option<String>,
    /// PEM certificate chain and key offered with SMTP `STARTTLS`; unset: no `STARTTLS`.
    pub smtp_tls_cert: Option<PathBuf>,
    pub smtp_tls_key: Option<PathBuf>,
    /// Concurrent SMTP sessions.
    pub smtp_max_connections: usize,
    pub heartbeat_secs: u64,
    pub pong_timeout_secs: u64,
    pub health_interval_secs: u64,
    /// Requests a minute per API key, user or IP address; 0 disables rate limiting.
    pub rate_limit_per_min: u32,
    /// Tokens granted to every new account.
    pub start_tokens: i64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// SQLite's `synchronous`: `normal` (a commit survives a process crash) or `full` (it also
    /// survives a power failure, at the cost of a disk flush per commit).
    pub sqlite_synchronous: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http_addr: "127.0.0.1:8080".into(),
            database_url: None,
            data_dir: PathBuf::from("data"),
            public_url: None,
            jwt_secret: None,
            mail_domain: "mail.localhost".into(),
            smtp_addr: "127.0.0.1:2525".into(),
            smtp_relay: None,
            allow_private_urls: false,
            call_timeout_secs: 60,
            push_timeout_secs: 30,
            mail_trusted_authserv: None,
            mail_dns: None,
            mail_max_bytes: 10 * 1024 * 1024,
            mail_rate_per_hour: 30,
            mail_inbound_secret: None,
            smtp_tls_cert: None,
            smtp_tls_key: None,
            smtp_max_connections: 256,
            heartbeat_secs: 30,
            pong_timeout_secs: 10,
            health_interval_secs: 300,
            rate_limit_per_min: 100,
            start_tokens: 10_000,
            max_body_bytes: 2 * 1024 * 1024,
            sqlite_synchronous: "normal".into(),
        }
    }
}

impl Settings {
    /// Loads the configuration from `agenthub.toml` (or `config_file`) and the environment.
    pub fn load(config_file: Option<&Path>) -> anyhow::Result<Self> {
        let file = config_file.unwrap_or(Path::new("agenthub.toml"));
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("AGENTHUB_"))
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .extract()
            .context("invalid configuration")?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.http_addr.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "AGENTHUB_HTTP_ADDR must be host:port, got {:?}",
                self.http_addr
            );
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres"))
        {
            bail!("DATABASE_URL must be sqlite://… or postgres://…");
        }
        for (name, v) in [
            ("AGENTHUB_CALL_TIMEOUT_SECS", self.call_timeout_secs),
            ("AGENTHUB_PUSH_TIMEOUT_SECS", self.push_timeout_secs),
            ("AGENTHUB_HEARTBEAT_SECS", self.heartbeat_secs),
            ("AGENTHUB_PONG_TIMEOUT_SECS", self.pong_timeout_secs),
            ("AGENTHUB_HEALTH_INTERVAL_SECS", self.health_interval_secs),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.smtp_addr != "off" && self.smtp_addr.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "AGENTHUB_SMTP_ADDR must be host:port or off, got {:?}",
                self.smtp_addr
            );
        }
        if let Some(dns) = &self.mail_dns
            && dns.parse::<std::net::SocketAddr>().is_err()
        {
            bail!("AGENTHUB_MAIL_DNS must be ip:port, got {dns:?}");
        }
        if self.smtp_tls_cert.is_some() != self.smtp_tls_key.is_some() {
            bail!("AGENTHUB_SMTP_TLS_CERT and AGENTHUB_SMTP_TLS_KEY go together");
        }
        if self
            .mail_inbound_secret
            .as_deref()
            .is_some_and(|s| s.len() < 16)
        {
            bail!("AGENTHUB_MAIL_INBOUND_SECRET must be at least 16 characters");
        }
        if !matches!(self.sqlite_synchronous.as_str(), "normal" | "full") {
            bail!(
                "AGENTHUB_SQLITE_SYNCHRONOUS must be normal or full, got {:?}",
                self.sqlite_synchronous
            );
        }
        if self.start_tokens < 0 {
            bail!("AGENTHUB_START_TOKENS must not be negative");
        }
        Ok(())
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("agenthub.db").display()
            ),
        }
    }

    /// Whether SQLite commits wait for the disk.
    pub fn sqlite_synchronous_full(&self) -> bool {
        self.sqlite_synchronous == "full"
    }

    /// The DNS server of the mail checks, when one is set (validated by [`Settings::validate`]).
    pub fn mail_dns_server(&self) -> Option<std::net::SocketAddr> {
        self.mail_dns.as_deref().and_then(|d| d.parse().ok())
    }

    /// The outbox directory for mail when no relay is configured.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }
}

/// A database URL with its password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
