//! Agent API keys: `amp_` followed by 48 hex digits (192 random bits), shown once.
//!
//! Only an Argon2id hash is stored, beside a non-secret 16-digit `lookup` prefix that finds the
//! row without hashing. Argon2 is slow by design, so a verified key is remembered in memory for
//! a few minutes under its SHA-256 digest: only the first use of a key pays Argon2. Regenerating
//! or deleting evicts at once, and an epoch counter stops a verification that raced with an
//! eviction from putting the old key back.

use crate::{
    Hub,
    error::{HubError, HubResult},
    passwords,
};
use dashmap::DashMap;
use entities::{agents, api_keys};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const PREFIX: &str = "amp_";
const SECRET_HEX: usize = 48;
const LOOKUP_HEX: usize = 16;
/// How long a verified key stays in memory before Argon2 is paid again.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Entries beyond this are dropped oldest-first, so the cache cannot grow without bound.
const CACHE_MAX: usize = 100_000;

/// A freshly generated key: the secret (shown once) and what is stored.
pub struct NewKey {
    pub key: String,
    pub lookup: String,
    pub last4: String,
}

impl NewKey {
    pub fn masked(&self) -> String {
        mask(&self.last4)
    }
}

/// `amp_****` and the last four characters, as documented.
pub fn mask(last4: &str) -> String {
    format!("{PREFIX}****{last4}")
}

/// The agent a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOwner {
    pub agent_id: Uuid,
    pub owner_id: Uuid,
}

struct Cached {
    owner: KeyOwner,
    at: Instant,
}

/// The in-memory map of verified keys.
#[derive(Default)]
pub struct KeyCache {
    map: DashMap<[u8; 32], Cached>,
    /// Bumped on every eviction; a verification inserts only if it did not change meanwhile.
    epoch: AtomicU64,
}

impl KeyCache {
    fn get(&self, digest: &[u8; 32]) -> Option<KeyOwner> {
        let hit = self.map.get(digest)?;
        if hit.at.elapsed() < CACHE_TTL {
            return Some(hit.owner);
        }
        drop(hit);
        self.map.remove(digest);
        None
    }

    fn insert(&self, digest: [u8; 32], owner: KeyOwner, epoch: u64) {
        if self.map.len() >= CACHE_MAX {
            self.map.retain(|_, v| v.at.elapsed() < CACHE_TTL);
            if self.map.len() >= CACHE_MAX {
                self.map.clear();
            }
        }
        if self.epoch.load(Ordering::SeqCst) == epoch {
            self.map.insert(
                digest,
                Cached {
                    owner,
                    at: Instant::now(),
                },
            );
        }
    }

    /// Forgets every cached key of this agent (after regeneration or deletion).
    pub fn evict_agent(&self, agent_id: Uuid) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.map.retain(|_, v| v.owner.agent_id != agent_id);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Whether a bearer token has the shape of an API key (and so is not a JWT).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

fn well_formed(key: &str) -> bool {
    key.len() == PREFIX.len() + SECRET_HEX
        && key[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Generates a new key from the hub's entropy.
pub fn generate(hub: &Hub) -> NewKey {
    let secret = hub.env.random_hex(SECRET_HEX / 2);
    let key = format!("{PREFIX}{secret}");
    NewKey {
        lookup: secret[..LOOKUP_HEX].to_string(),
        last4: secret[SECRET_HEX - 4..].to_string(),
        key,
    }
}

/// Hashes a new key (on the blocking pool, with Argon2's least work: see
/// [`passwords::KEY_PARAMS`]). Done before opening the write transaction that
/// stores it, so no database lock is held while Argon2 runs.
pub async fn hash(key: &NewKey) -> HubResult<String> {
    passwords::hash_key(key.key.clone()).await
}

/// Stores (or replaces) the key of an agent, with its hash from [`hash`].
pub async fn store<C: ConnectionTrait>(
    hub: &Hub,
    conn: &C,
    agent_id: Uuid,
    key: &NewKey,
    key_hash: String,
) -> HubResult<()> {
    api_keys::Entity::delete_many()
        .filter(api_keys::Column::AgentId.eq(agent_id))
        .exec(conn)
        .await?;
    api_keys::Entity::insert(api_keys::ActiveModel {
        id: Set(hub.env.new_id()),
        agent_id: Set(agent_id),
        lookup: Set(key.lookup.clone()),
        key_hash: Set(key_hash),
        last4: Set(key.last4.clone()),
        created_at: Set(hub.env.now()),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// Resolves an API key to its agent and owner: from memory when it was verified recently,
/// otherwise by its lookup prefix and one Argon2 verification.
pub async fn authenticate(hub: &Hub, key: &str) -> HubResult<KeyOwner> {
    let invalid = || HubError::Unauthorized("Invalid API key".into());
    if !well_formed(key) {
        return Err(invalid());
    }
    let digest = digest(key);
    if let Some(owner) = hub.keys.get(&digest) {
        return Ok(owner);
    }
    let epoch = hub.keys.epoch.load(Ordering::SeqCst);
    let lookup = &key[PREFIX.len()..PREFIX.len() + LOOKUP_HEX];
    let row = api_keys::Entity::find()
        .filter(api_keys::Column::Lookup.eq(lookup))
        .one(&hub.db)
        .await?
        .ok_or_else(invalid)?;
    if !passwords::verify(key.to_string(), row.key_hash).await? {
        return Err(invalid());
    }
    let agent = agents::Entity::find_by_id(row.agent_id)
        .one(&hub.db)
        .await?
        .ok_or_else(invalid)?;
    let owner = KeyOwner {
        agent_id: agent.id,
        owner_id: agent.owner_id,
    };
    hub.keys.insert(digest, owner, epoch);
    Ok(owner)
}

/// The owner of a key verified recently, without touching the database or Argon2 (for the
/// rate limiter, which must not pay Argon2 to decide whose budget a request spends).
pub fn cached_owner(hub: &Hub, key: &str) -> Option<KeyOwner> {
    hub.keys.get(&digest(key))
}
