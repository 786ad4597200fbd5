//! User JWTs: HS256, valid 7 days, `sub` = the user's id. The secret comes from the
//! configuration or is generated once and kept in the data directory, so tokens survive a
//! restart.

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use std::path::Path;
use uuid::Uuid;

pub const TOKEN_TTL_SECS: i64 = 7 * 24 * 3600;
const ISSUER: &str = "agenthub";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The configured secret, or the one kept in `data_dir/jwt_secret` (created on first use).
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(secret) = configured {
            anyhow::ensure!(
                secret.len() >= 32,
                "AGENTHUB_JWT_SECRET must be at least 32 bytes"
            );
            return Ok(Self::new(secret.as_bytes()));
        }
        let path = data_dir.join("jwt_secret");
        let secret = match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() >= 32 => s.trim().to_string(),
            _ => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("cannot create {}", data_dir.display()))?;
                let secret = actors::Env::system().random_hex(32);
                write_private(&path, &secret)?;
                secret
            }
        };
        Ok(Self::new(secret.as_bytes()))
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<String> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user_id,
            iat,
            exp: iat + TOKEN_TTL_SECS,
            iss: ISSUER.into(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).context("cannot sign JWT")
    }

    /// The user id of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims.sub)
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
