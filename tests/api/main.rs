//! Black-box tests of agenthub: the real server on a random port, real HTTP clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agents;
mod audit;
mod auth;
mod billing;
mod browser;
mod discovery;
mod email;
mod email_crash;
mod engine_calls;
mod engine_http;
mod engine_restart;
mod engine_ws;
mod errors;
mod health_checks;
mod helpers;
mod leaderboards;
mod ledger;
mod mail_support;
mod mcp_sdks;
mod public_pages;
mod rate_limit;
mod reputation;
mod reviews;
mod tasks_delivery;
mod tasks_restart;
