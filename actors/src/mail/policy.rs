//! The mail rules that need no message body: who may write to an agent, who pays, what counts
//! as authenticated, and how often one sender may write.

use chrono::{DateTime, Utc};
use dashmap::DashMap;

/// The domain part of an address, lower-cased.
pub fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// Whether an envelope sender is a machine that must never be answered: the null return path,
/// mailer-daemons and postmasters.
pub fn is_daemon(sender: &str) -> bool {
    let local = sender
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    sender.is_empty() || local == "mailer-daemon" || local == "postmaster"
}

/// Whether the message passed an authentication check the hub trusts, aligned with the `From`
/// domain: the topmost `Authentication-Results` header, if its authserv-id is the configured
/// trusted one, must report `dmarc=pass`, or `dkim=pass` for the `From` domain, or `spf=pass`
/// for it. Only the topmost header counts, since anything below it came from the sender.
pub fn authenticated(results: &[String], trusted_authserv: Option<&str>, from: &str) -> bool {
    let (Some(trusted), Some(from_domain)) = (trusted_authserv, domain_of(from)) else {
        return false;
    };
    let Some(top) = results.first() else {
        return false;
    };
    let mut parts = top.split(';');
    let authserv = parts
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default();
    if !authserv.eq_ignore_ascii_case(trusted) {
        return false;
    }
    let aligned = |d: &str| {
        let d = d
            .trim()
            .trim_matches('"')
            .trim_start_matches('@')
            .to_ascii_lowercase();
        let d = d
            .rsplit_once('@')
            .map_or(d.as_str(), |(_, x)| x)
            .to_string();
        d == from_domain || from_domain.ends_with(&format!(".{d}"))
    };
    parts.any(|result| {
        let mut words = result.split_whitespace();
        let Some(verdict) = words.next() else {
            return false;
        };
        let verdict = verdict.to_ascii_lowercase();
        let props: Vec<(String, String)> = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        let prop = |k: &str| {
            props
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        match verdict.as_str() {
            "dmarc=pass" => prop("header.from").is_none_or(aligned),
            "dkim=pass" => prop("header.d").or(prop("header.i")).is_some_and(aligned),
            "spf=pass" => prop("smtp.mailfrom").is_some_and(aligned),
            _ => false,
        }
    })
}

/// A fixed-window counter per sender: at most `per_hour` messages an hour each.
pub struct SenderLimit {
    per_hour: u32,
    windows: DashMap<String, (DateTime<Utc>, u32)>,
}

impl SenderLimit {
    pub fn new(per_hour: u32) -> Self {
        Self {
            per_hour,
            windows: DashMap::new(),
        }
    }

    /// Counts one message from `sender`; false when over the limit (0 means no limit).
    pub fn take(&self, sender: &str, now: DateTime<Utc>) -> bool {
        if self.per_hour == 0 {
            return true;
        }
        if self.windows.len() > 100_000 {
            self.windows
                .retain(|_, (start, _)| now - *start < chrono::Duration::hours(1));
        }
        let mut w = self
            .windows
            .entry(sender.to_ascii_lowercase())
            .or_insert((now, 0));
        if now - w.0 >= chrono::Duration::hours(1) {
            *w = (now, 0);
        }
        if w.1 >= self.per_hour {
            return false;
        }
        w.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar(s: &str) -> Vec<String> {
        vec![s.to_string()]
    }

    #[test]
    fn trusted_results_must_be_topmost_and_aligned() {
        let t = Some("mx.example.net");
        let ok = ar("mx.example.net; dkim=pass header.d=example.com; spf=fail");
        assert!(authenticated(&ok, t, "ann@example.com"));
        assert!(!authenticated(&ok, t, "ann@other.org"));
        assert!(!authenticated(&ok, None, "ann@example.com"));
        let wrong_server = ar("evil.example; dkim=pass header.d=example.com");
        assert!(!authenticated(&wrong_server, t, "ann@example.com"));
        let spf = ar("mx.example.net; spf=pass smtp.mailfrom=ann@example.com");
        assert!(authenticated(&spf, t, "ann@example.com"));
        let fail = ar("mx.example.net; dkim=fail header.d=example.com; spf=softfail");
        assert!(!authenticated(&fail, t, "ann@example.com"));
        let second = vec![
            "mx.example.net; dkim=none".to_string(),
            "mx.example.net; dkim=pass header.d=example.com".to_string(),
        ];
        assert!(!authenticated(&second, t, "ann@example.com"));
    }

    #[test]
    fn sender_limit_counts_per_hour() {
        let l = SenderLimit::new(2);
        let t = Utc::now();
        assert!(l.take("a@x", t));
        assert!(l.take("A@x", t));
        assert!(!l.take("a@x", t));
        assert!(l.take("b@x", t));
        assert!(l.take("a@x", t + chrono::Duration::minutes(61)));
    }
}
