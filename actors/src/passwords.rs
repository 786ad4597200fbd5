//! Argon2id hashing of passwords, with OWASP's recommended parameters (m = 19 MiB, t = 2,
//! p = 1: the `argon2` crate's defaults), and of API keys, with the least work Argon2 allows.
//!
//! Why two costs: Argon2's work factor exists to make guessing a low-entropy secret (a
//! password) expensive for whoever steals the table. An API key is 192 random bits; guessing
//! one is out of reach at any work factor, so the 19 MiB and ~35 ms per hash bought nothing
//! for keys, while a reconnect storm after a restart (10,000 agents presenting keys the
//! in-memory cache no longer holds) paid them 10,000 times: 470 s until every agent was back,
//! and the calls of agents already connected waited behind the hashes. Keys are still stored
//! only as Argon2id PHC strings, as the contract says; [`KEY_PARAMS`] are written into each
//! hash, and verification reads the parameters from the stored hash, so keys hashed with the
//! old parameters keep working.
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
    Algorithm, Argon2, Params, Version,
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

/// Argon2id parameters for API keys: 256 KiB, one pass, one lane (about a hundredth of a
/// password hash's time and memory; see the module doc for why that is enough).
pub const KEY_PARAMS: (u32, u32, u32) = (256, 1, 1);

/// Hashes a password to an Argon2id PHC string, on the blocking pool.
pub async fn hash(secret: String) -> HubResult<String> {
    hash_with(secret, Argon2::default()).await
}

/// Hashes an API key (192 random bits) to an Argon2id PHC string with [`KEY_PARAMS`].
pub async fn hash_key(key: String) -> HubResult<String> {
    let (m, t, p) = KEY_PARAMS;
    let params = Params::new(m, t, p, None)
        .map_err(|e| HubError::Internal(anyhow!("argon2 key parameters: {e}")))?;
    hash_with(
        key,
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
    )
    .await
}

async fn hash_with(secret: String, argon2: Argon2<'static>) -> HubResult<String> {
    run_bounded(move || {
        argon2
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn keys_take_the_light_parameters_and_both_kinds_verify() {
        let key = "amp_0123456789abcdef0123456789abcdef0123456789abcdef".to_string();
        let light = hash_key(key.clone()).await.unwrap();
        assert!(
            light.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
            "{light}"
        );
        assert!(verify(key.clone(), light.clone()).await.unwrap());
        assert!(!verify(format!("{key}0"), light).await.unwrap());
        // A key stored before keys had their own parameters still verifies.
        let heavy = hash(key.clone()).await.unwrap();
        assert!(
            heavy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{heavy}"
        );
        assert!(verify(key, heavy).await.unwrap());
    }
}
