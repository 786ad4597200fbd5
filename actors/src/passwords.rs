//! Argon2id hashing of passwords and API keys, with OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1: the `argon2` crate's defaults).
//!
//! Argon2 is slow by design (tens of milliseconds), so it always runs on tokio's blocking pool,
//! never on an async worker thread where it would stall every other request of that worker.
//! And it is memory-hard: every running hash holds 19 MiB. A reconnect storm (10,000 agents
//! presenting their keys after a restart, when the in-memory key cache is empty) once ran
//! hundreds at a time on the blocking pool and took the process to 10 GB, while starving the
//! calls of agents already connected. So at most [`permits`] hashes run at once (half the
//! cores, at least one): the rest wait their turn without a thread, and the other half of the
//! machine keeps serving calls.

use crate::error::{HubError, HubResult};
use anyhow::{Context, anyhow};
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// How many Argon2 computations may run at once: half the cores, at least one.
pub fn permits() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Runs one Argon2 computation on the blocking pool when a permit is free.
async fn run_bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> HubResult<T> {
    static GATE: OnceLock<Semaphore> = OnceLock::new();
    let _permit = GATE
        .get_or_init(|| Semaphore::new(permits()))
        .acquire()
        .await
        .map_err(|e| HubError::Internal(anyhow!("argon2 gate closed: {e}")))?;
    Ok(tokio::task::spawn_blocking(work)
        .await
        .context("argon2 task panicked")?)
}

/// Hashes a secret to an Argon2id PHC string, on the blocking pool.
pub async fn hash(secret: String) -> HubResult<String> {
    run_bounded(move || {
        Argon2::default()
            .hash_password(secret.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow!("argon2 hash failed: {e}"))
    })
    .await?
    .map_err(HubError::Internal)
}

/// Verifies a secret against a PHC string, on the blocking pool. A malformed stored hash
/// verifies nothing.
pub async fn verify(secret: String, phc: String) -> HubResult<bool> {
    run_bounded(move || {
        PasswordHash::new(&phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
}

/// Burns the same time as a real verification, so that "no such user" and "wrong password"
/// cannot be told apart by timing.
pub async fn verify_dummy(secret: String) -> HubResult<()> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = match DUMMY.get() {
        Some(phc) => phc.clone(),
        None => {
            let phc = hash("agenthub-dummy-password".to_string()).await?;
            DUMMY.get_or_init(|| phc).clone()
        }
    };
    verify(secret, phc).await.map(|_| ())
}
