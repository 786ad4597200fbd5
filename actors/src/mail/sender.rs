//! The hub's own answer to "did this message come from its `From` domain?", used when no
//! trusted upstream MTA reports `Authentication-Results` (`AGENTHUB_MAIL_TRUSTED_AUTHSERV`).
//!
//! Like DMARC, a check only counts when the domain it proved is aligned with the `From`
//! domain, since `From` is what names the account that pays: either SPF passes for the envelope
//! sender's domain at the connecting address ([`super::spf`]), or a DKIM signature verifies
//! ([`super::dkim`]) and covers the whole body. A message with no single `From` field never
//! passes (RFC 5322 allows exactly one; two let a signed one hide behind an unsigned one).
//!
//! A DKIM signature proves who wrote a message, not who sent this copy: anyone holding a
//! signed message can send it again, to any agent. So a DKIM pass only counts when the
//! signature covers `To` (or `Cc`) and those name the agent receiving it: a copy replayed to
//! another agent is not paid for by its author. (The same agent receiving it twice is caught by
//! its `Message-ID`.)

use super::{dkim, dns::Dns, inbound::Inbound, policy::domain_of, spf};
use std::net::IpAddr;

/// What one message offers to be checked.
pub struct Evidence<'a> {
    /// The message as stored.
    pub raw: &'a [u8],
    pub message: &'a Inbound,
    /// The `From` address.
    pub from: &'a str,
    /// The envelope sender (`MAIL FROM`).
    pub envelope_sender: &'a str,
    /// The SMTP client's address; `None` for messages posted over HTTP, which can only pass
    /// by DKIM.
    pub client_ip: Option<IpAddr>,
    /// Unix seconds, for DKIM's `x=`.
    pub now: i64,
    /// The address this copy was delivered to (`slug@<mail domain>`).
    pub recipient: &'a str,
}

/// `Ok` with what passed (for the logs), or `Err` with why nothing did.
pub async fn authenticate(dns: &dyn Dns, evidence: &Evidence<'_>) -> Result<String, String> {
    let Some(from_domain) = domain_of(evidence.from) else {
        return Err("no From domain".into());
    };
    if evidence.message.from_fields != 1 {
        return Err(format!(
            "{} From fields (exactly one is needed)",
            evidence.message.from_fields
        ));
    }
    let mut why = Vec::new();
    match (evidence.client_ip, domain_of(evidence.envelope_sender)) {
        (Some(ip), Some(mail_from)) => {
            let spf = spf::check_host(dns, ip, &mail_from).await;
            if spf == spf::SpfResult::Pass && aligned(&mail_from, &from_domain) {
                return Ok(format!("spf=pass smtp.mailfrom={mail_from} ({ip})"));
            }
            why.push(format!("spf={spf:?} smtp.mailfrom={mail_from} ({ip})"));
        }
        _ => why.push("spf=none (no client address or envelope sender)".into()),
    }
    let outcomes = dkim::verify(dns, evidence.raw, evidence.now).await;
    if outcomes.is_empty() {
        why.push("dkim=none".into());
    }
    for outcome in outcomes {
        match &outcome.result {
            Ok(()) if !aligned(&outcome.domain, &from_domain) => {
                why.push(format!(
                    "dkim=pass header.d={} (not aligned)",
                    outcome.domain
                ));
            }
            Ok(()) if outcome.partial_body => {
                why.push(format!(
                    "dkim=pass header.d={} (l= leaves part of the body unsigned)",
                    outcome.domain
                ));
            }
            Ok(()) if !addressed_here(&outcome, evidence) => {
                why.push(format!(
                    "dkim=pass header.d={} (the signed To/Cc do not name {}: a replayed copy)",
                    outcome.domain, evidence.recipient
                ));
            }
            Ok(()) => return Ok(format!("dkim=pass header.d={}", outcome.domain)),
            Err(e) => why.push(format!("dkim=fail header.d={} ({e})", outcome.domain)),
        }
    }
    Err(why.join("; "))
}

/// Whether the signature covers `To` or `Cc` and they name the receiving agent.
fn addressed_here(outcome: &dkim::Outcome, evidence: &Evidence<'_>) -> bool {
    let signed = |name: &str| outcome.signed_headers.iter().any(|h| h == name);
    (signed("to") || signed("cc"))
        && evidence
            .message
            .addressed_to
            .iter()
            .any(|a| a.eq_ignore_ascii_case(evidence.recipient))
}

/// Relaxed alignment: the same domain, or one a subdomain of the other. Without the public
/// suffix list the organizational domain is approximated this way, and the parent must have
/// at least two labels, so a bare top-level domain never aligns with its children.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (
        a.trim_end_matches('.').to_ascii_lowercase(),
        b.trim_end_matches('.').to_ascii_lowercase(),
    );
    let under =
        |child: &str, parent: &str| parent.contains('.') && child.ends_with(&format!(".{parent}"));
    !a.is_empty() && (a == b || under(&a, &b) || under(&b, &a))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mail::dns::Table;

    #[test]
    fn alignment_is_relaxed_but_not_across_organizations() {
        assert!(aligned("example.org", "example.org"));
        assert!(aligned("Mail.Example.org.", "example.org"));
        assert!(aligned("example.org", "news.example.org"));
        assert!(!aligned("example.org", "example.net"));
        assert!(!aligned("badexample.org", "example.org"));
        assert!(!aligned("org", "example.org"));
        assert!(!aligned("", ""));
    }

    fn message(raw: &[u8]) -> Inbound {
        Inbound::parse(raw).unwrap()
    }

    #[actix_rt::test]
    async fn spf_passes_only_when_aligned_with_from() {
        let dns = Table::new([
            ("txt:example.org", vec!["v=spf1 ip4:192.0.2.0/24 -all"]),
            ("txt:bulk.example", vec!["v=spf1 ip4:192.0.2.0/24 -all"]),
        ]);
        let raw = b"From: ann@example.org\r\nSubject: x\r\n\r\nhi\r\n";
        let msg = message(raw);
        let evidence = |sender: &'static str, ip: &str| Evidence {
            raw,
            message: &msg,
            from: "ann@example.org",
            envelope_sender: sender,
            client_ip: Some(ip.parse().unwrap()),
            now: 0,
            recipient: "agent@mail.localhost",
        };
        assert!(
            authenticate(&dns, &evidence("ann@example.org", "192.0.2.5"))
                .await
                .is_ok()
        );
        assert!(
            authenticate(&dns, &evidence("ann@example.org", "198.51.100.1"))
                .await
                .is_err()
        );
        // SPF passes for the envelope domain, but it is not the From domain.
        let other = authenticate(&dns, &evidence("ann@bulk.example", "192.0.2.5")).await;
        assert!(other.is_err(), "{other:?}");
        // No client address (HTTP inbound): SPF cannot pass.
        let mut http = evidence("ann@example.org", "192.0.2.5");
        http.client_ip = None;
        assert!(authenticate(&dns, &http).await.is_err());
    }

    #[actix_rt::test]
    async fn two_from_fields_never_pass() {
        let dns = Table::new([("txt:example.org", vec!["v=spf1 +all"])]);
        let raw = b"From: ann@example.org\r\nFrom: bob@example.org\r\nSubject: x\r\n\r\nhi\r\n";
        let msg = message(raw);
        let evidence = Evidence {
            raw,
            message: &msg,
            from: "ann@example.org",
            envelope_sender: "ann@example.org",
            client_ip: Some("192.0.2.5".parse().unwrap()),
            now: 0,
            recipient: "agent@mail.localhost",
        };
        let why = authenticate(&dns, &evidence).await.unwrap_err();
        assert!(why.contains("2 From fields"), "{why}");
    }
}
