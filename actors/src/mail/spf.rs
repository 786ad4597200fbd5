//! SPF (RFC 7208), evaluated by the hub itself when no trusted upstream MTA reports
//! `Authentication-Results`: is the connecting address allowed to send mail for the envelope
//! sender's domain? Supported: `ip4`, `ip6`, `a`, `mx`, `include`, `exists`-free records with
//! `all` and the `redirect` modifier, qualifiers `+ - ~ ?`, and the limit of 10 DNS-querying
//! terms. Macros are not expanded (a record that needs them is a `PermError`, never a pass).
//! DNS answers come through [`Dns`], so the rules are tested without a network.

use super::dns::Dns;
use std::net::IpAddr;

/// The result of a check (RFC 7208 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpfResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
}

/// Most DNS-querying terms one check may use (RFC 7208 §4.6.4).
const MAX_LOOKUPS: usize = 10;

/// `check_host(ip, domain)`: whether `ip` may send for `domain`.
pub async fn check_host(dns: &dyn Dns, ip: IpAddr, domain: &str) -> SpfResult {
    let mut lookups = 0;
    evaluate(dns, ip, &domain.to_ascii_lowercase(), &mut lookups, 0).await
}

fn evaluate<'a>(
    dns: &'a dyn Dns,
    ip: IpAddr,
    domain: &'a str,
    lookups: &'a mut usize,
    depth: usize,
) -> futures_util::future::BoxFuture<'a, SpfResult> {
    Box::pin(async move {
        if depth > MAX_LOOKUPS {
            return SpfResult::PermError;
        }
        let records: Vec<String> = dns
            .txt(domain)
            .await
            .into_iter()
            .filter(|r| {
                let r = r.to_ascii_lowercase();
                r == "v=spf1" || r.starts_with("v=spf1 ")
            })
            .collect();
        let record = match records.as_slice() {
            [] => return SpfResult::None,
            [one] => one.clone(),
            _ => return SpfResult::PermError,
        };
        let mut redirect = None;
        for term in record.split_whitespace().skip(1) {
            let term = term.to_ascii_lowercase();
            if let Some(target) = term.strip_prefix("redirect=") {
                redirect = Some(target.to_string());
                continue;
            }
            if term.contains('=') {
                continue; // other modifiers (exp=...) do not change the result
            }
            if term.contains('%') {
                return SpfResult::PermError; // macros are not supported
            }
            let (qualifier, mechanism) = match term.chars().next() {
                Some(c @ ('+' | '-' | '~' | '?')) => (c, &term[1..]),
                _ => ('+', term.as_str()),
            };
            let matched = match mechanism
                .split_once(':')
                .map_or((mechanism, None), |(m, a)| (m, Some(a)))
            {
                ("all", None) => true,
                ("ip4", Some(net)) | ("ip6", Some(net)) => in_network(ip, net),
                (m, arg)
                    if m == "a" || m.starts_with("a/") || m == "mx" || m.starts_with("mx/") =>
                {
                    *lookups += 1;
                    if *lookups > MAX_LOOKUPS {
                        return SpfResult::PermError;
                    }
                    let (kind, cidr) = m.split_once('/').map_or((m, None), |(k, c)| (k, Some(c)));
                    let (target, cidr) = match arg {
                        Some(a) => a.split_once('/').map_or((a, cidr), |(t, c)| (t, Some(c))),
                        None => (domain, cidr),
                    };
                    let hosts = if kind == "mx" {
                        dns.mx(target).await
                    } else {
                        vec![target.to_string()]
                    };
                    let mut any = false;
                    for host in hosts.iter().take(10) {
                        for addr in dns.ips(host).await {
                            let net = match cidr {
                                Some(c) => format!("{addr}/{c}"),
                                None => addr.to_string(),
                            };
                            if in_network(ip, &net) {
                                any = true;
                            }
                        }
                    }
                    any
                }
                ("include", Some(target)) => {
                    *lookups += 1;
                    if *lookups > MAX_LOOKUPS {
                        return SpfResult::PermError;
                    }
                    match evaluate(dns, ip, target, lookups, depth + 1).await {
                        SpfResult::Pass => true,
                        SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => false,
                        SpfResult::TempError => return SpfResult::TempError,
                        SpfResult::None | SpfResult::PermError => return SpfResult::PermError,
                    }
                }
                _ => return SpfResult::PermError, // exists, ptr, unknown: not supported
            };
            if matched {
                return match qualifier {
                    '+' => SpfResult::Pass,
                    '-' => SpfResult::Fail,
                    '~' => SpfResult::SoftFail,
                    _ => SpfResult::Neutral,
                };
            }
        }
        match redirect {
            Some(target) => {
                *lookups += 1;
                if *lookups > MAX_LOOKUPS {
                    return SpfResult::PermError;
                }
                match evaluate(dns, ip, &target, lookups, depth + 1).await {
                    SpfResult::None => SpfResult::PermError,
                    other => other,
                }
            }
            None => SpfResult::Neutral,
        }
    })
}

/// Whether `ip` is in `net` (`a.b.c.d`, `a.b.c.d/n`, an IPv6 address with an optional prefix).
fn in_network(ip: IpAddr, net: &str) -> bool {
    let (addr, prefix) = net
        .split_once('/')
        .map_or((net, None), |(a, p)| (a, Some(p)));
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (ip, addr) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let bits: u32 = prefix.and_then(|p| p.parse().ok()).unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let bits: u32 = prefix.and_then(|p| p.parse().ok()).unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mail::dns::Table;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[actix_rt::test]
    async fn the_mechanisms_decide_in_order() {
        let dns = Table::new([
            (
                "txt:example.org",
                vec!["v=spf1 ip4:192.0.2.0/24 a mx include:mail.example.net -all"],
            ),
            ("ip:example.org", vec!["198.51.100.7"]),
            ("mx:example.org", vec!["mx1.example.org."]),
            ("ip:mx1.example.org.", vec!["203.0.113.9", "2001:db8::25"]),
            (
                "txt:mail.example.net",
                vec!["v=spf1 ip6:2001:db8:1::/48 ~all"],
            ),
            ("txt:soft.example", vec!["v=spf1 ~all"]),
            (
                "txt:redirected.example",
                vec!["v=spf1 redirect=example.org"],
            ),
            ("txt:two.example", vec!["v=spf1 -all", "v=spf1 +all"]),
            (
                "txt:macro.example",
                vec!["v=spf1 exists:%{i}.spf.example -all"],
            ),
        ]);
        assert_eq!(
            check_host(&dns, ip("192.0.2.44"), "example.org").await,
            SpfResult::Pass
        );
        assert_eq!(
            check_host(&dns, ip("198.51.100.7"), "example.org").await,
            SpfResult::Pass
        );
        assert_eq!(
            check_host(&dns, ip("203.0.113.9"), "example.org").await,
            SpfResult::Pass
        );
        assert_eq!(
            check_host(&dns, ip("2001:db8:1::5"), "example.org").await,
            SpfResult::Pass
        );
        assert_eq!(
            check_host(&dns, ip("127.0.0.1"), "example.org").await,
            SpfResult::Fail
        );
        assert_eq!(
            check_host(&dns, ip("127.0.0.1"), "soft.example").await,
            SpfResult::SoftFail
        );
        assert_eq!(
            check_host(&dns, ip("192.0.2.1"), "redirected.example").await,
            SpfResult::Pass
        );
        assert_eq!(
            check_host(&dns, ip("192.0.2.1"), "nothing.example").await,
            SpfResult::None
        );
        assert_eq!(
            check_host(&dns, ip("192.0.2.1"), "two.example").await,
            SpfResult::PermError
        );
        assert_eq!(
            check_host(&dns, ip("192.0.2.1"), "macro.example").await,
            SpfResult::PermError
        );
    }

    #[actix_rt::test]
    async fn include_loops_end_in_a_permanent_error() {
        let dns = Table::new([
            ("txt:a.example", vec!["v=spf1 include:b.example -all"]),
            ("txt:b.example", vec!["v=spf1 include:a.example -all"]),
        ]);
        assert_eq!(
            check_host(&dns, ip("192.0.2.1"), "a.example").await,
            SpfResult::PermError
        );
    }
}
