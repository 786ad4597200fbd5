//! Rate limiting: `AGENTHUB_RATE_LIMIT_PER_MIN` requests a minute (100 by default) per API
//! key, per user, or per IP address, as a token bucket that refills continuously. Every
//! response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
//! (seconds until the bucket is full again); a refused request gets 429 with `Retry-After`.
//!
//! The budget is chosen without paying Argon2: a key counts as a key only once it has been
//! verified (it is then in the key cache); before that, and for bad credentials, the peer's
//! address is charged. The address is the TCP peer, not a spoofable `X-Forwarded-For`.

use crate::{auth::extract::bearer, auth::jwt::JwtKeys, error::ApiError};
use actix_web::{
    Error, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header::HeaderName, header::HeaderValue},
    middleware::Next,
    web,
};
use actors::{Hub, keys};
use dashmap::DashMap;
use parking_lot::Mutex;
use std::time::Instant;

const MAX_BUCKETS: usize = 200_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of one process.
pub struct RateLimiter {
    per_min: u32,
    buckets: DashMap<String, Mutex<Bucket>>,
}

/// What one request was allowed.
pub struct Decision {
    pub allowed: bool,
    pub remaining: u32,
    pub reset_secs: u64,
    pub retry_after_secs: u64,
}

impl RateLimiter {
    pub fn new(per_min: u32) -> Self {
        Self {
            per_min,
            buckets: DashMap::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.per_min > 0
    }

    pub fn take(&self, key: &str) -> Decision {
        let capacity = f64::from(self.per_min);
        let rate = capacity / 60.0;
        let now = Instant::now();
        if self.buckets.len() > MAX_BUCKETS {
            self.buckets
                .retain(|_, b| now.duration_since(b.lock().last).as_secs() < 60);
        }
        let entry = self.buckets.entry(key.to_string()).or_insert_with(|| {
            Mutex::new(Bucket {
                tokens: capacity,
                last: now,
            })
        });
        let mut b = entry.lock();
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate).min(capacity);
        b.last = now;
        let allowed = b.tokens >= 1.0;
        if allowed {
            b.tokens -= 1.0;
        }
        Decision {
            allowed,
            remaining: b.tokens.floor() as u32,
            reset_secs: ((capacity - b.tokens) / rate).ceil() as u64,
            retry_after_secs: (((1.0 - b.tokens) / rate).ceil() as u64).max(1),
        }
    }
}

/// Whose budget a request spends.
fn budget_key(req: &ServiceRequest) -> String {
    if let Some(token) = bearer(req.request()) {
        if keys::looks_like_key(&token) {
            if let Some(hub) = req.app_data::<web::Data<Hub>>()
                && let Some(owner) = keys::cached_owner(hub, &token)
            {
                return format!("key:{}", owner.agent_id);
            }
        } else if let Some(jwt) = req.app_data::<web::Data<JwtKeys>>()
            && let Some(user) = jwt.verify(&token)
        {
            return format!("user:{user}");
        }
    }
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    format!("ip:{ip}")
}

fn set(headers: &mut actix_web::http::header::HeaderMap, name: &'static str, value: u64) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let limiter = req.app_data::<web::Data<RateLimiter>>().cloned();
    let Some(limiter) = limiter.filter(|l| l.enabled()) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    if req.path() == "/health" || crate::http::mail::is_trusted_mta(&req) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let decision = limiter.take(&budget_key(&req));
    let limit = u64::from(limiter.per_min);
    let mut res = if decision.allowed {
        next.call(req).await?.map_into_left_body()
    } else {
        let err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Rate limit of {limit} requests per minute exceeded; retry later"),
        )
        .with_code("RATE_LIMITED");
        let mut response = err.error_response();
        set(
            response.headers_mut(),
            "retry-after",
            decision.retry_after_secs,
        );
        req.into_response(response).map_into_right_body()
    };
    let headers = res.headers_mut();
    set(headers, "x-ratelimit-limit", limit);
    set(
        headers,
        "x-ratelimit-remaining",
        u64::from(decision.remaining),
    );
    set(headers, "x-ratelimit-reset", decision.reset_secs);
    Ok(res)
}
