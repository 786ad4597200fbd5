//! `Body<T>`: the JSON request body of every endpoint. It checks the content type (415),
//! bounds the size (413) and reports a decoding failure as a validation error naming the field
//! (`details: [{field: "pricing.pricePerCall", message}]`), which `web::Json` cannot do.
//! An empty body reads as `{}`, so endpoints whose fields are all optional need none.
//!
//! Text may not contain the NUL character (`\u0000` in JSON, `%00` in URLs, checked by
//! [`nul_in_url`]): PostgreSQL cannot store it, so it is refused here with a 400 naming the field
//! rather than failing in the database with a 500.

use crate::error::ApiError;
use actix_web::{
    FromRequest, HttpRequest,
    dev::{Payload, ServiceRequest},
    http::StatusCode,
    http::header,
    web,
};
use actors::FieldError;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::{future::Future, pin::Pin};

/// The largest body accepted, shared through app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map_or(2 * 1024 * 1024, |l| l.0);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("invalid").to_ascii_lowercase());
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared_len.is_some_and(|n| n > limit) {
                return Err(too_large(limit));
            }
            let mut bytes = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|e| ApiError::bad_request(format!("Cannot read body: {e}")))?;
                if bytes.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
            let is_json = content_type.as_deref().is_some_and(|ct| {
                let essence = ct.split(';').next().unwrap_or("").trim();
                essence == "application/json" || essence.ends_with("+json")
            });
            if bytes.iter().all(u8::is_ascii_whitespace) && (content_type.is_none() || is_json) {
                bytes = web::BytesMut::from(&b"{}"[..]);
            } else if !is_json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Content-Type must be application/json",
                ));
            }
            if has_nul_escape(&bytes)
                && let Ok(value) = serde_json::from_slice::<Value>(&bytes)
                && let Some(field) = nul_field(&value, "")
            {
                return Err(nul_error(field));
            }
            let de = &mut serde_json::Deserializer::from_slice(&bytes);
            match serde_path_to_error::deserialize::<_, T>(de) {
                Ok(value) => Ok(Body(value)),
                Err(err) => {
                    let field = err.path().to_string();
                    let inner = err.into_inner();
                    if inner.is_syntax() || inner.is_eof() || field == "." {
                        Err(ApiError::bad_request(format!(
                            "Malformed JSON body: {inner}"
                        )))
                    } else {
                        let message = strip_position(&inner.to_string());
                        Err(ApiError::invalid(vec![FieldError::new(field, message)]))
                    }
                }
            }
        })
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Request body is larger than {limit} bytes"),
    )
}

fn nul_error(field: String) -> ApiError {
    ApiError::invalid(vec![FieldError::new(
        field,
        "must not contain the NUL character",
    )])
}

/// Whether the JSON text has a `\u0000` escape (an odd run of backslashes before `u0000`: in
/// valid JSON, backslashes only appear in strings, as escapes).
fn has_nul_escape(json: &[u8]) -> bool {
    json.windows(5).enumerate().any(|(i, w)| {
        w == b"u0000" && json[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
    })
}

/// The path (`pricing.model`, `tags[2]`) of the first key or string holding a NUL character.
fn nul_field(value: &Value, path: &str) -> Option<String> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            ".".to_string()
        } else {
            path.to_string()
        }),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(at(k))
            } else {
                nul_field(v, &at(k))
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// A 400 for a URL whose path or query string holds `%00`, naming the query parameter (or
/// `path`); checked for every request before it is routed.
pub fn nul_in_url(req: &ServiceRequest) -> Option<ApiError> {
    if req.path().contains("%00") {
        return Some(nul_error("path".into()));
    }
    let query = req.query_string();
    if !query.contains("%00") {
        return None;
    }
    let field = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map_or_else(|| "query".to_string(), |(k, _)| k.replace('\0', ""));
    Some(nul_error(field))
}

/// Middleware: a URL with a NUL character is a 400 before routing (an HTML page under
/// `/marketplace`), since no handler could use it and PostgreSQL could not store it.
pub async fn refuse_nul_urls(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    if let Some(err) = nul_in_url(&req) {
        let page = req.path() == "/marketplace" || req.path().starts_with("/marketplace/");
        let response = if page {
            crate::http::public::html::error_page(err.status, &err.message)
        } else {
            actix_web::ResponseError::error_response(&err)
        };
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req)
        .await
        .map(actix_web::dev::ServiceResponse::map_into_left_body)
}

/// serde_json appends " at line 1 column 12"; the field name already says where.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
