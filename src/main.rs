//! The `agenthub` binary: `serve` (the default) runs the hub; `migrate` only migrates.

use agenthub::{config::Settings, startup, telemetry};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// agenthub: a realtime dispatch hub for AI agents.
///
/// Configuration comes from `agenthub.toml` and the environment (which wins): AGENTHUB_HTTP_ADDR,
/// DATABASE_URL, AGENTHUB_PUBLIC_URL, AGENTHUB_JWT_SECRET, AGENTHUB_MAIL_DOMAIN,
/// AGENTHUB_SMTP_ADDR, AGENTHUB_SMTP_RELAY, AGENTHUB_ALLOW_PRIVATE_URLS,
/// AGENTHUB_CALL_TIMEOUT_SECS, AGENTHUB_PUSH_TIMEOUT_SECS, AGENTHUB_MAIL_TRUSTED_AUTHSERV,
/// AGENTHUB_MAIL_DNS, AGENTHUB_HEARTBEAT_SECS, AGENTHUB_PONG_TIMEOUT_SECS, AGENTHUB_HEALTH_INTERVAL_SECS,
/// AGENTHUB_RATE_LIMIT_PER_MIN, AGENTHUB_DATA_DIR, AGENTHUB_START_TOKENS,
/// AGENTHUB_MAX_BODY_BYTES, RUST_LOG. See the README for each.
#[derive(Debug, Parser)]
#[command(name = "agenthub", version, about, long_about)]
struct Cli {
    /// Configuration file (default: ./agenthub.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub: HTTP API, WebSockets and mail (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

fn main() -> anyhow::Result<()> {
    return_large_allocations(); // before any thread exists
    let cli = Cli::parse();
    telemetry::init();
    let settings = Settings::load(cli.config.as_deref())?;
    actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Migrate => {
                startup::install_crypto_provider();
                startup::open_database(&settings).await?;
                tracing::info!("migrations applied");
                Ok(())
            }
            Command::Serve => serve(settings).await,
        }
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    raise_open_file_limit();
    let app = startup::Application::build(settings).await?;
    let handle = app.handle();
    let server = actix_web::rt::spawn(app.run_until_stopped());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    handle.stop(true).await;
    server.await.context("server task failed")??;
    tracing::info!("stopped");
    Ok(())
}

/// Every connected agent is a socket: the common soft limit of 1,024 open files would cap the
/// hub near a thousand agents, so the soft limit is raised to the hard one at start.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            if limit.rlim_cur < limit.rlim_max {
                let before = limit.rlim_cur;
                limit.rlim_cur = limit.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    tracing::info!(from = before, to = limit.rlim_max, "open-file limit raised");
                }
            }
        }
    }
}

/// Argon2id allocates 19 MiB per hash. glibc serves such blocks with `mmap`, but after the first
/// is freed it raises its threshold (up to 32 MiB) and serves the next ones from per-thread
/// arenas, which keep the memory after it is freed: measured, a hub holding 10,000 idle agents
/// took 608 MiB instead of 247 MiB, and a reconnect storm grew it by gigabytes. A fixed
/// threshold keeps large blocks on `mmap`, returned to the kernel when freed.
fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called once at start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
