//! Argon2id hashing of passwords and API keys, with OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1: the `argon2` crate's defaults).
//!
//! Argon2 is slow by design (tens of milliseconds), so it always runs on tokio's blocking pool,
//! never on an async worker thread where it would stall every other request of that worker.

use crate::error::{HubError, HubResult};
use anyhow::{Context, anyhow};
use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use std::sync::OnceLock;

/// Hashes a secret to an Argon2id PHC string, on the blocking pool.
pub async fn hash(secret: String) -> HubResult<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(secret.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow!("argon2 hash failed: {e}"))
    })
    .await
    .context("argon2 task panicked")?
    .map_err(HubError::Internal)
}

/// Verifies a secret against a PHC string, on the blocking pool. A malformed stored hash
/// verifies nothing.
pub async fn verify(secret: String, phc: String) -> HubResult<bool> {
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .context("argon2 task panicked")?;
    Ok(ok)
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
