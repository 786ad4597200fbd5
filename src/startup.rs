//! `Application`: everything `serve` starts, shared by `main` and the tests. `build` binds the
//! listener (port 0 picks a free one), migrates the database and starts the engine; `run_until_stopped`
//! serves until the server is stopped.

use crate::{
    auth::jwt::JwtKeys,
    config::{Settings, redact_url},
    email::{mailer::Mailer, smtp},
    error,
    http::{
        self, body::BodyLimit, health::StartedAt, mail::InboundSecret, rate_limit::RateLimiter,
    },
};
use actix_web::{
    App, HttpServer,
    dev::{Server, ServerHandle},
    middleware::{ErrorHandlers, from_fn},
    web,
};
use actors::{
    Env, Hub, HubConfig,
    mail::{MailSettings, Mailroom},
};
use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use std::{
    net::TcpListener,
    sync::Arc,
    time::{Duration, Instant},
};

/// The base URL of this deployment, for links in mail and pages.
#[derive(Debug, Clone)]
pub struct PublicUrl(pub String);

pub struct Application {
    port: u16,
    smtp_port: Option<u16>,
    server: Server,
    hub: Arc<Hub>,
    registry: actix::Addr<actors::registry::RegistryActor>,
}

/// Installs ring as rustls' crypto provider (reqwest, lettre and sqlx share it). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Opens the database named by the settings and brings its schema up to date.
pub async fn open_database(settings: &Settings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let url = settings.database_url();
    let db = actors::db::connect_with(&url, settings.sqlite_synchronous_full())
        .await
        .with_context(|| format!("cannot open database {}", redact_url(&url)))?;
    Migrator::up(&db, None).await.context("migrations failed")?;
    Ok(db)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        install_crypto_provider();
        settings.validate()?;
        let db = open_database(&settings).await?;
        let config = HubConfig {
            start_tokens: settings.start_tokens,
            mail_domain: settings.mail_domain.clone(),
            allow_private_urls: settings.allow_private_urls,
            call_timeout: Duration::from_secs(settings.call_timeout_secs),
            heartbeat: Duration::from_secs(settings.heartbeat_secs),
            pong_timeout: Duration::from_secs(settings.pong_timeout_secs),
            health_interval: Duration::from_secs(settings.health_interval_secs),
            push_timeout: Duration::from_secs(settings.push_timeout_secs),
        };
        let hub = web::Data::new(Hub::start(db, Env::system(), config).await?);
        let registry = actors::registry::RegistryActor::start_for(&hub.clone().into_inner());
        let jwt = web::Data::new(JwtKeys::load(
            settings.jwt_secret.as_deref(),
            &settings.data_dir,
        )?);
        let mailer = Arc::new(Mailer::new(
            settings.smtp_relay.as_deref(),
            settings.outbox_dir(),
        )?);
        let limiter = web::Data::new(RateLimiter::new(settings.rate_limit_per_min));
        let listener = TcpListener::bind(&settings.http_addr)
            .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let public_url = web::Data::new(PublicUrl(settings.public_url.clone().unwrap_or_else(
            || {
                let host = settings
                    .http_addr
                    .rsplit_once(':')
                    .map_or("127.0.0.1", |(h, _)| h);
                format!("http://{host}:{port}")
            },
        )));
        let mailroom = Mailroom::new(
            hub.clone().into_inner(),
            mailer.clone(),
            MailSettings {
                public_url: public_url.0.clone(),
                trusted_authserv: settings.mail_trusted_authserv.clone(),
                max_message_bytes: settings.mail_max_bytes,
                per_sender_per_hour: settings.mail_rate_per_hour,
                dns_server: settings.mail_dns_server(),
            },
        );
        mailroom.recover().await?;
        let smtp_port = start_smtp(&settings, mailroom.clone())?;
        let mailroom = web::Data::from(mailroom);
        let inbound_secret = web::Data::new(InboundSecret(settings.mail_inbound_secret.clone()));
        let mailer = web::Data::from(mailer);
        let body_limit = BodyLimit(settings.max_body_bytes);
        let started = web::Data::new(StartedAt(Instant::now()));
        tracing::info!(
            addr = %listener.local_addr()?,
            database = %redact_url(&settings.database_url()),
            "agenthub listening"
        );
        let server_hub = hub.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(server_hub.clone())
                .app_data(jwt.clone())
                .app_data(mailer.clone())
                .app_data(mailroom.clone())
                .app_data(inbound_secret.clone())
                .app_data(limiter.clone())
                .app_data(public_url.clone())
                .app_data(started.clone())
                .app_data(body_limit)
                .app_data(web::QueryConfig::default().error_handler(error::query_error))
                .app_data(web::PathConfig::default().error_handler(error::path_error))
                .wrap(from_fn(http::rate_limit::middleware))
                .wrap(from_fn(http::body::refuse_nul_urls))
                .wrap(ErrorHandlers::new().default_handler(error::render_plain_errors))
                .wrap(tracing_actix_web::TracingLogger::default())
                .configure(http::configure)
                .default_service(web::to(error::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .disable_signals()
        .run();
        Ok(Self {
            port,
            smtp_port,
            server,
            hub: hub.into_inner(),
            registry,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The SMTP listener's port, when it is on.
    pub fn smtp_port(&self) -> Option<u16> {
        self.smtp_port
    }

    /// The Registry actor (the engine's supervisor).
    pub fn registry(&self) -> actix::Addr<actors::registry::RegistryActor> {
        self.registry.clone()
    }

    pub fn hub(&self) -> Arc<Hub> {
        self.hub.clone()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Binds the SMTP listener (unless `AGENTHUB_SMTP_ADDR` is `off`) and serves it on this
/// system's arbiter; returns its port.
fn start_smtp(settings: &Settings, room: Arc<Mailroom>) -> anyhow::Result<Option<u16>> {
    if settings.smtp_addr == "off" {
        return Ok(None);
    }
    let tls = match (&settings.smtp_tls_cert, &settings.smtp_tls_key) {
        (Some(cert), Some(key)) => Some(crate::email::tls::acceptor(cert, key)?),
        _ => None,
    };
    let std_listener = TcpListener::bind(&settings.smtp_addr)
        .with_context(|| format!("cannot listen for SMTP on {}", settings.smtp_addr))?;
    std_listener.set_nonblocking(true)?;
    let port = std_listener.local_addr()?.port();
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    tracing::info!(addr = %settings.smtp_addr, port, starttls = tls.is_some(), "SMTP listening");
    let config = smtp::SmtpConfig {
        max_connections: settings.smtp_max_connections.max(1),
        max_recipients: 50,
        max_message_bytes: settings.mail_max_bytes,
        idle_timeout: Duration::from_secs(300),
        tls,
    };
    actix_web::rt::spawn(smtp::serve(listener, room, config));
    Ok(Some(port))
}
