//! agenthub's edges: configuration, the HTTP API, authentication, mail, and the start-up that
//! ties them to the engine in the `actors` crate. Edges translate; they hold no business rules.

pub mod auth;
pub mod config;
pub mod email;
pub mod error;
pub mod http;
pub mod startup;
pub mod telemetry;
