//! Extractors that authenticate the caller. A handler states what it accepts in its
//! signature: `UserAuth` (a JWT), `ApiKeyAuth` (an `amp_` key), `Caller` (either: the user is
//! the key's owner) or `OptionalCaller` (anonymous allowed; a bad credential is still 401).

use crate::{auth::jwt::JwtKeys, error::ApiError};
use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use actors::{Hub, keys};
use std::{future::Future, pin::Pin};
use uuid::Uuid;

/// A user authenticated by JWT.
#[derive(Debug, Clone, Copy)]
pub struct UserAuth {
    pub user_id: Uuid,
}

/// An agent authenticated by its API key.
#[derive(Debug, Clone, Copy)]
pub struct ApiKeyAuth {
    pub agent_id: Uuid,
    pub owner_id: Uuid,
}

/// A user, by JWT or by one of their agents' keys.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: Uuid,
    pub agent_id: Option<Uuid>,
}

/// `Caller` when a credential was given.
#[derive(Debug, Clone, Copy)]
pub struct OptionalCaller(pub Option<Caller>);

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    bearer_token(req.headers()).map(str::to_string)
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
pub fn bearer_token(headers: &header::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn missing() -> ApiError {
    ApiError::unauthorized("Missing credentials: send Authorization: Bearer <token>")
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("Invalid or expired token")
}

fn jwt_user(req: &HttpRequest, token: &str) -> Result<Uuid, ApiError> {
    let keys = req
        .app_data::<web::Data<JwtKeys>>()
        .ok_or_else(|| anyhow::anyhow!("no JWT keys"))?;
    keys.verify(token).ok_or_else(invalid_token)
}

async fn resolve_key(hub: web::Data<Hub>, token: &str) -> Result<ApiKeyAuth, ApiError> {
    let owner = keys::authenticate(&hub, token).await?;
    Ok(ApiKeyAuth {
        agent_id: owner.agent_id,
        owner_id: owner.owner_id,
    })
}

fn hub(req: &HttpRequest) -> Result<web::Data<Hub>, ApiError> {
    req.app_data::<web::Data<Hub>>()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no hub").into())
}

async fn caller(req: HttpRequest, token: String) -> Result<Caller, ApiError> {
    if keys::looks_like_key(&token) {
        let key = resolve_key(hub(&req)?, &token).await?;
        Ok(Caller {
            user_id: key.owner_id,
            agent_id: Some(key.agent_id),
        })
    } else {
        Ok(Caller {
            user_id: jwt_user(&req, &token)?,
            agent_id: None,
        })
    }
}

type Fut<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for UserAuth {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(match bearer(req) {
            None => Err(missing()),
            Some(t) if keys::looks_like_key(&t) => Err(ApiError::unauthorized(
                "This endpoint needs a user JWT (from /auth/login), not an API key",
            )),
            Some(t) => jwt_user(req, &t).map(|user_id| UserAuth { user_id }),
        })
    }
}

impl FromRequest for ApiKeyAuth {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match bearer(&req) {
                None => Err(missing()),
                Some(t) if !keys::looks_like_key(&t) => Err(ApiError::unauthorized(
                    "This endpoint needs an agent API key (amp_...), not a JWT",
                )),
                Some(t) => resolve_key(hub(&req)?, &t).await,
            }
        })
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let token = bearer(&req).ok_or_else(missing)?;
            caller(req, token).await
        })
    }
}

impl FromRequest for OptionalCaller {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match bearer(&req) {
                None => Ok(OptionalCaller(None)),
                Some(token) => caller(req, token).await.map(|c| OptionalCaller(Some(c))),
            }
        })
    }
}
