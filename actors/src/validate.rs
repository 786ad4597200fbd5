//! Small helpers to validate request fields and collect every failure at once, so a client
//! sees all of its mistakes in one 400 with `details`.

use crate::error::{FieldError, HubError, HubResult};

/// Collects field errors; `finish` turns them into one validation error.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Checks the length (in characters) of a string field.
    pub fn len(&mut self, field: &str, value: &str, min: usize, max: usize) {
        let n = value.chars().count();
        if n < min {
            if min == 1 {
                self.add(field, "must not be empty");
            } else {
                self.add(field, format!("must be at least {min} characters"));
            }
        } else if n > max {
            self.add(field, format!("must be at most {max} characters"));
        }
    }

    /// A required field that is missing.
    pub fn required<T>(&mut self, field: &str, value: &Option<T>) {
        if value.is_none() {
            self.add(field, "is required");
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish(self) -> HubResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(HubError::invalid(self.0))
        }
    }
}

/// Page and page size of a list, validated: `page` ≥ 1, 1 ≤ `limit` ≤ 100 (default 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub limit: u64,
}

impl Page {
    pub const DEFAULT_LIMIT: u64 = 20;
    pub const MAX_LIMIT: u64 = 100;

    pub fn new(page: Option<i64>, limit: Option<i64>, errors: &mut Errors) -> Self {
        let page = match page {
            None => 1,
            Some(p) if p >= 1 => p as u64,
            Some(_) => {
                errors.add("page", "must be a positive integer");
                1
            }
        };
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(l) if (1..=Self::MAX_LIMIT as i64).contains(&l) => l as u64,
            Some(_) => {
                errors.add(
                    "limit",
                    format!("must be between 1 and {}", Self::MAX_LIMIT),
                );
                Self::DEFAULT_LIMIT
            }
        };
        Self { page, limit }
    }

    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.limit)
    }
}

/// One page of a list, as every list endpoint answers it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub page: u64,
    pub limit: u64,
    pub total: u64,
}
