//! `Body<T>`: the JSON request body of every endpoint. It checks the content type (415),
//! bounds the size (413) and reports a decoding failure as a validation error naming the field
//! (`details: [{field: "pricing.pricePerCall", message}]`), which `web::Json` cannot do.
//! An empty body reads as `{}`, so endpoints whose fields are all optional need none.

use crate::error::ApiError;
use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, http::header, web};
use actors::FieldError;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
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

/// serde_json appends " at line 1 column 12"; the field name already says where.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
