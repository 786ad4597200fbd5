//! The DNS the hub's own sender checks read: SPF records, addresses and MX hosts (RFC 7208) and
//! DKIM keys (RFC 6376, `<selector>._domainkey.<domain>`). One small trait, so SPF and DKIM are
//! tested against a table, and one implementation over hickory-resolver: the system resolver,
//! or the server named by `AGENTHUB_MAIL_DNS` (a local validating resolver, or a test's).

use std::{net::IpAddr, time::Duration};

/// The queries the sender checks need. Errors and missing records both read as "nothing":
/// a check that cannot see a record never passes, so neither needs to tell them apart.
#[async_trait::async_trait]
pub trait Dns: Send + Sync {
    /// Every TXT record of `name`, each one's strings joined.
    async fn txt(&self, name: &str) -> Vec<String>;
    async fn ips(&self, name: &str) -> Vec<IpAddr>;
    async fn mx(&self, name: &str) -> Vec<String>;
}

/// Answers nothing: what the hub uses when no resolver can be built, so that its own checks
/// fail closed (nobody is authenticated) instead of stopping the hub.
pub struct NoDns;

#[async_trait::async_trait]
impl Dns for NoDns {
    async fn txt(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
    async fn ips(&self, _: &str) -> Vec<IpAddr> {
        Vec::new()
    }
    async fn mx(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

/// [`Dns`] over a real resolver: the system's, or the one named by `AGENTHUB_MAIL_DNS`.
pub struct Resolver(hickory_resolver::TokioResolver);

impl Resolver {
    /// The system resolver, or `server` (`ip:port`, UDP and TCP) when given. Lookups give up
    /// after a few seconds: a message waits for them before it becomes a task.
    pub fn new(server: Option<std::net::SocketAddr>) -> anyhow::Result<Self> {
        use hickory_resolver::{
            config::{ConnectionConfig, NameServerConfig, ResolverConfig},
            net::runtime::TokioRuntimeProvider,
        };
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                ns.connections = vec![udp, tcp];
                hickory_resolver::Resolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => hickory_resolver::TokioResolver::builder_tokio()?,
        };
        let options = builder.options_mut();
        options.timeout = Duration::from_secs(3);
        options.attempts = 2;
        // DKIM keys of 2048 bits do not fit a plain 512-byte UDP answer.
        options.edns0 = true;
        Ok(Self(builder.build()?))
    }

    fn fqdn(name: &str) -> String {
        if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        }
    }
}

#[async_trait::async_trait]
impl Dns for Resolver {
    async fn txt(&self, name: &str) -> Vec<String> {
        let Ok(lookup) = self.0.txt_lookup(Self::fqdn(name)).await else {
            return Vec::new();
        };
        lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                hickory_resolver::proto::rr::RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect()
    }

    async fn ips(&self, name: &str) -> Vec<IpAddr> {
        match self.0.lookup_ip(Self::fqdn(name)).await {
            Ok(ips) => ips.iter().collect(),
            Err(_) => Vec::new(),
        }
    }

    async fn mx(&self, name: &str) -> Vec<String> {
        let Ok(lookup) = self.0.mx_lookup(Self::fqdn(name)).await else {
            return Vec::new();
        };
        lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                hickory_resolver::proto::rr::RData::MX(mx) => Some(mx.exchange.to_ascii()),
                _ => None,
            })
            .collect()
    }
}

/// A fixed table of answers, for the unit tests of SPF and DKIM: keys are `txt:<name>`,
/// `ip:<name>` and `mx:<name>`.
#[cfg(test)]
pub struct Table(pub std::collections::HashMap<String, Vec<String>>);

#[cfg(test)]
impl Table {
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>) -> Self {
        Self(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
                .collect(),
        )
    }

    fn get(&self, key: String) -> Vec<String> {
        self.0.get(&key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
#[async_trait::async_trait]
impl Dns for Table {
    async fn txt(&self, name: &str) -> Vec<String> {
        self.get(format!("txt:{name}"))
    }
    async fn ips(&self, name: &str) -> Vec<IpAddr> {
        self.get(format!("ip:{name}"))
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
    async fn mx(&self, name: &str) -> Vec<String> {
        self.get(format!("mx:{name}"))
    }
}
