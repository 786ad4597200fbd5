//! sea-orm entities of agenthub: one module per table, nothing else.
//!
//! Entities hold no business rules; those live in the `actors` crate. Identifiers are UUIDs
//! (v7 where ordering by creation helps), timestamps are UTC, money is `i64` tokens.

pub mod agents;
pub mod api_keys;
pub mod audit_logs;
pub mod health_checks;
pub mod idempotency_keys;
pub mod ledger_entries;
pub mod ledger_transactions;
pub mod mail_messages;
pub mod password_resets;
pub mod prelude;
pub mod reviews;
pub mod tasks;
pub mod users;
pub mod wallets;
