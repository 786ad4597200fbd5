//! `HubError`: every failure a business rule can report, with the machine-readable `code` a
//! client must be able to tell apart. The HTTP edge maps each variant to a status; nothing here
//! knows about HTTP.

use serde::Serialize;

/// One failed field of a validation error, named in camelCase as the client sent it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{message}")]
    Validation {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A business rule refused the request with a code the client can act on
    /// (`PRICE_EXCEEDS_MAX`, `INSUFFICIENT_TOKENS`, `AGENT_OFFLINE`, `IDEMPOTENCY_CONFLICT`, ...).
    #[error("{message}")]
    Coded {
        status: u16,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl HubError {
    /// A validation failure of the given fields.
    pub fn invalid(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("Validation failed: {} {}", one.field, one.message),
            _ => "Validation failed".to_string(),
        };
        Self::Validation { message, details }
    }

    /// A validation failure of one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn insufficient_tokens(needed: i64, available: i64) -> Self {
        Self::Coded {
            status: 402,
            code: "INSUFFICIENT_TOKENS",
            message: format!(
                "Insufficient tokens: this call needs {needed}, {available} available"
            ),
        }
    }
}

impl From<sea_orm::DbErr> for HubError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(anyhow::Error::new(err).context("database error"))
    }
}

impl<E: std::fmt::Display + std::fmt::Debug + Send + Sync + 'static>
    From<sea_orm::TransactionError<E>> for HubError
where
    E: Into<HubError>,
{
    fn from(err: sea_orm::TransactionError<E>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e.into(),
        }
    }
}

pub type HubResult<T> = Result<T, HubError>;
