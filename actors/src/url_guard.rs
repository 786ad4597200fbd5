//! Rules for user-supplied URLs (MCP endpoints, webhooks): HTTPS only, plain HTTP for
//! `localhost`, `127.0.0.1` and `[::1]` (development); no credentials in the URL; and no
//! private, loopback, link-local, CGNAT, unique-local, IPv4-mapped or metadata addresses
//! unless the hub allows private URLs. This module judges the URL as written; the outbound
//! client checks the resolved address again at call time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Whether an IP address may be reached by the hub on a user's behalf.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if v6.to_ipv4_mapped().is_some() {
                // ::ffff:a.b.c.d is a way to spell an IPv4 address past naive filters.
                return false;
            }
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique-local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 64:ff9b::/96
                || (seg[0] == 0x2001 && seg[1] == 0xdb8) // documentation
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)) // AWS metadata
                && !matches!(seg, [0, 0, 0, 0, 0, 0, _, _]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254/16, incl. 169.254.169.254 metadata
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF 192.0.0/24
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240) // reserved
}

/// Whether the host is one of the development hosts that may use plain HTTP.
pub fn is_localhost(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => *ip == Ipv4Addr::LOCALHOST,
        Host::Ipv6(ip) => *ip == Ipv6Addr::LOCALHOST,
    }
}

/// Checks an endpoint URL at registration or update. The development hosts (`localhost`,
/// `127.0.0.1`, `[::1]`) are accepted whatever the setting ("localhost allowed for
/// development"), since the documents promise it; they are reached only when the hub allows
/// private addresses: otherwise the outbound client refuses them at call time, and the call
/// fails and is refunded. Every other private or local address is refused here already.
pub fn check_endpoint(raw: &str, allow_private: bool) -> Result<Url, String> {
    let url = check(raw, true)?;
    if allow_private || url.host().is_some_and(|h| is_localhost(&h)) {
        return Ok(url);
    }
    check(raw, false)
}

/// Checks a user-supplied URL before the hub calls it; `Err` says why it is refused.
pub fn check(raw: &str, allow_private: bool) -> Result<Url, String> {
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let url = Url::parse(raw.trim()).map_err(|e| format!("must be a valid URL ({e})"))?;
    let host = url.host().ok_or_else(|| "must have a host".to_string())?;
    let local = is_localhost(&host);
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        "http" => return Err("must use https (http is allowed only for localhost)".into()),
        other => return Err(format!("must use https, not {other}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    // `localhost` may use plain HTTP, but it is still loopback: reachable only when the hub
    // allows private addresses (development, tests, intranets).
    if allow_private {
        return Ok(url);
    }
    if local {
        return Err("must not point to a private or local address".into());
    }
    let ip = match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.ends_with(".localhost") || d.ends_with(".local") || d.ends_with(".internal") {
                return Err("must not point to a private or local address".into());
            }
            if d == "metadata.google.internal" || !d.contains('.') {
                return Err("must be a public host name".into());
            }
            None
        }
    };
    match ip {
        Some(ip) if !is_public_ip(ip) => Err("must not point to a private or local address".into()),
        _ => Ok(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_private_addresses_in_every_notation() {
        for url in [
            "https://10.0.0.1/mcp",
            "https://192.168.1.1/",
            "https://172.16.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://0.0.0.0/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://127.1/",
            "http://localhost/",
            "http://example.com/",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://intranet/",
        ] {
            assert!(check(url, false).is_err(), "{url} should be refused");
        }
    }

    #[test]
    fn accepts_public_https_and_localhost_http() {
        for url in ["https://my-agent.example.com/mcp", "https://8.8.8.8/"] {
            assert!(check(url, false).is_ok(), "{url} should be accepted");
        }
        for url in [
            "http://localhost:3000/mcp",
            "http://127.0.0.1:9000/",
            "http://[::1]:9000/",
        ] {
            assert!(check(url, false).is_err(), "{url} is loopback");
            assert!(
                check(url, true).is_ok(),
                "{url} should be accepted when private is allowed"
            );
        }
        assert!(check("https://10.0.0.1/", true).is_ok());
        assert!(check("http://10.0.0.1/", true).is_err());
    }

    #[test]
    fn registration_accepts_the_development_hosts_only() {
        for url in [
            "http://localhost:3000/mcp",
            "http://127.0.0.1:9000/",
            "https://[::1]:9000/",
        ] {
            assert!(
                check_endpoint(url, false).is_ok(),
                "{url} is a development host"
            );
        }
        for url in [
            "https://10.0.0.1/",
            "https://127.0.0.2/",
            "https://[::ffff:127.0.0.1]/",
            "http://example.com/",
            "https://intranet/",
        ] {
            assert!(
                check_endpoint(url, false).is_err(),
                "{url} should be refused"
            );
        }
    }
}
