//! The safe outbound HTTP client, shared by every feature that calls a user-supplied URL (MCP
//! endpoints, webhook pushes and health checks).
//!
//! What stays true, whatever the URL says:
//! - the URL passes `url_guard::check` (https, `http` only for localhost, no credentials);
//! - the address is checked when the request is made: a name is resolved by our resolver,
//!   which drops every non-public address, and reqwest connects to what it returned; a literal
//!   IP (which skips resolvers) is checked before the request;
//! - no redirects are followed and no proxy is used;
//! - answers are bounded in size (`max_bytes`) and time; connections are pooled per host so a
//!   busy agent is not a new TLS handshake per call.
//!
//! `AGENTHUB_ALLOW_PRIVATE_URLS` lifts the address checks (tests, intranets), not the scheme rule.

use crate::url_guard;
use reqwest::{
    Client, Method, Response, StatusCode,
    dns::{Addrs, Name, Resolve, Resolving},
    header::HeaderMap,
};
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};
use url::{Host, Url};

/// Largest answer read from a user-supplied endpoint.
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Why an outbound request failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("refused URL: {0}")]
    Refused(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the endpoint answered with a redirect, which is not followed")]
    Redirect,
}

/// How names are looked up: the system resolver in production; a fixed table in the tests that
/// check what happens when a name resolves to a forbidden address.
pub type Lookup = std::sync::Arc<
    dyn Fn(String) -> futures_util::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>>
        + Send
        + Sync,
>;

/// The system resolver.
pub fn system_lookup() -> Lookup {
    std::sync::Arc::new(|host: String| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    })
}

/// A resolver that only returns public addresses.
struct PublicOnly(Lookup);

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let lookup = self.0.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup(host.clone())
                .await?
                .into_iter()
                .filter(|ip| url_guard::is_public_ip(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A finished answer: status, headers and the bounded body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub struct Outbound {
    client: Client,
    allow_private: bool,
    max_bytes: usize,
}

impl Outbound {
    pub fn new(allow_private: bool) -> Result<Self, OutboundError> {
        Self::with_lookup(allow_private, system_lookup())
    }

    /// The client with another way to look names up (every address it returns is still
    /// checked).
    pub fn with_lookup(allow_private: bool, lookup: Lookup) -> Result<Self, OutboundError> {
        let mut builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .user_agent(concat!("agenthub/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(PublicOnly(lookup));
        }
        let client = builder
            .build()
            .map_err(|e| OutboundError::Request(e.to_string()))?;
        Ok(Self {
            client,
            allow_private,
            max_bytes: DEFAULT_MAX_BYTES,
        })
    }

    /// Checks a URL against the rules, including a literal IP's address.
    pub fn check(&self, raw: &str) -> Result<Url, OutboundError> {
        let url = url_guard::check(raw, self.allow_private).map_err(OutboundError::Refused)?;
        if !self.allow_private {
            let ip = match url.host() {
                Some(Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
                Some(Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
                _ => None,
            };
            if ip.is_some_and(|ip| !url_guard::is_public_ip(ip)) {
                return Err(OutboundError::Refused("private address".into()));
            }
        }
        Ok(url)
    }

    /// Sends a request and reads the bounded answer, all within `timeout`.
    pub async fn send(
        &self,
        method: Method,
        raw_url: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Answer, OutboundError> {
        let url = self.check(raw_url)?;
        let work = async {
            let mut req = self.client.request(method, url).headers(headers);
            if let Some(body) = body {
                req = req.body(body);
            }
            let res = req
                .send()
                .await
                .map_err(|e| OutboundError::Request(describe(&e)))?;
            if res.status().is_redirection() {
                return Err(OutboundError::Redirect);
            }
            self.read(res).await
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| OutboundError::Request("timed out".into()))?
    }

    async fn read(&self, mut res: Response) -> Result<Answer, OutboundError> {
        let status = res.status();
        let headers = res.headers().clone();
        if res
            .content_length()
            .is_some_and(|n| n as usize > self.max_bytes)
        {
            return Err(OutboundError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| OutboundError::Request(describe(&e)))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(OutboundError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// The cause chain of a reqwest error, which its `Display` hides.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
