//! `ApiError`: the one error type of the HTTP edge, and the handlers that make actix's own
//! failures (unknown route, wrong method, bad JSON, wrong content type, oversized body) answer
//! with the same body: `{statusCode, error, message}` plus `details` for validation failures
//! and `code` where a client must tell cases apart.
//!
//! Client errors carry their message; internal errors are logged with their cause chain and
//! returned opaque.

use actix_web::{
    HttpResponse, ResponseError,
    body::{BoxBody, MessageBody},
    dev::ServiceResponse,
    http::{StatusCode, header},
    middleware::ErrorHandlerResponse,
};
use actors::{FieldError, HubError};
use serde::Serialize;

/// The body of every error: the status, its reason phrase and a message; `details` names each
/// failed field of a validation error, `code` tells apart the cases a client must handle
/// (`RATE_LIMITED`, `INSUFFICIENT_TOKENS`, `AGENT_OFFLINE`, `TASK_SETTLED`, ...).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status_code: u16,
    /// The status' reason phrase (`Bad Request`, `Not Found`, ...).
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, examples("INSUFFICIENT_TOKENS", "RATE_LIMITED"))]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<crate::http::schema::FieldError>)]
    pub details: Option<Vec<FieldError>>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub code: Option<&'static str>,
    pub details: Option<Vec<FieldError>>,
    /// Extra headers (e.g. `Retry-After`).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
            details: None,
            headers: vec![],
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn invalid(details: Vec<FieldError>) -> Self {
        HubError::invalid(details).into()
    }

    fn body(&self) -> ErrorBody {
        ErrorBody {
            status_code: self.status.as_u16(),
            error: reason(self.status),
            message: self.message.clone(),
            code: self.code,
            details: self.details.clone(),
        }
    }
}

/// The reason phrase of a status ("Bad Request", "Not Found", ...).
pub fn reason(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("Error").to_string()
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut res = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            res.insert_header((name.clone(), value.clone()));
        }
        res.json(self.body())
    }
}

impl From<HubError> for ApiError {
    fn from(err: HubError) -> Self {
        match err {
            HubError::Validation { message, details } => Self {
                details: Some(details),
                ..Self::new(StatusCode::BAD_REQUEST, message)
            },
            HubError::BadRequest(m) => Self::new(StatusCode::BAD_REQUEST, m),
            HubError::Unauthorized(m) => Self::new(StatusCode::UNAUTHORIZED, m),
            HubError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, m),
            HubError::NotFound(m) => Self::new(StatusCode::NOT_FOUND, m),
            HubError::Conflict(m) => Self::new(StatusCode::CONFLICT, m),
            HubError::Coded {
                status,
                code,
                message,
            } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                Self::new(status, message).with_code(code)
            }
            HubError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        HubError::Internal(err).into()
    }
}

/// Rewrites any error response that is not already our JSON body (actix's plain-text 404,
/// 405, 413, ...) into the documented error body, keeping the status and headers.
pub fn render_plain_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    // The public pages (`/marketplace/...`) answer their errors as HTML pages.
    let is_html = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = match status {
        StatusCode::NOT_FOUND => "Route not found".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed on this route".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large".to_string(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported content type".to_string(),
        s if s.is_server_error() => "Internal server error".to_string(),
        s => reason(s),
    };
    let (req, old) = res.into_parts();
    let mut new = ApiError::new(status, message).error_response();
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

/// The 404 of unknown routes.
pub async fn not_found() -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "Route not found").error_response()
}

/// Turns a query-string parse failure into a 400 with the offending field.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("Invalid query string: {err}")).into()
}

/// Turns a path parse failure into a 404 (an id of the wrong shape names nothing).
pub fn path_error(_: actix_web::error::PathError, _: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::NOT_FOUND, "Not found").into()
}
