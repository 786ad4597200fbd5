//! Authentication: user JWTs (`jwt`), agent API keys (resolved by `actors::keys`), and the
//! extractors that put the caller in a handler's signature (`extract`).

pub mod extract;
pub mod jwt;

pub use extract::{ApiKeyAuth, Caller, OptionalCaller, UserAuth};
