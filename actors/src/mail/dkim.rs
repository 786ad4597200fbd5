//! DKIM (RFC 6376), verified by the hub itself when no trusted upstream MTA reports
//! `Authentication-Results`: did the domain named in a `DKIM-Signature` sign this message's
//! headers and body? A pass proves who signed; whether that signer may stand for the `From`
//! address (alignment) is [`super::sender`]'s question.
//!
//! Supported: `rsa-sha256` (keys of at least 1024 bits, RFC 8301) and `ed25519-sha256`
//! (RFC 8463); `simple` and `relaxed` canonicalization of headers and body; `l=` (reported, since
//! whatever follows the signed length is anyone's text); `x=`; key records with `v`, `k`, `h`,
//! `s`, `t=s` and revoked (empty) `p=`. `rsa-sha1` is refused (RFC 8301). Keys come through
//! [`Dns`], so the rules are tested without a network.

use super::dns::Dns;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// At most this many signatures of one message are checked: each costs a DNS query and a
/// public-key operation, and a sender could add any number.
const MAX_SIGNATURES: usize = 5;

/// Keys shorter than this are not trusted (RFC 8301 §3.2).
const MIN_RSA_BITS: usize = 1024;

/// The outcome of one `DKIM-Signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The signing domain (`d=`), lower-cased; empty when the signature could not be read.
    pub domain: String,
    /// `Ok` when the signature verified; otherwise why not.
    pub result: Result<(), String>,
    /// Whether `l=` left part of the body outside the signature.
    pub partial_body: bool,
    /// The header fields the signature covers (`h=`, lower-cased).
    pub signed_headers: Vec<String>,
}

impl Outcome {
    fn failed(domain: &str, why: impl Into<String>) -> Self {
        Self {
            domain: domain.to_string(),
            result: Err(why.into()),
            partial_body: false,
            signed_headers: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.result.is_ok()
    }
}

/// Checks every `DKIM-Signature` of `raw` (the first [`MAX_SIGNATURES`]) at time `now` (Unix
/// seconds, for `x=`). No signature: an empty list.
pub async fn verify(dns: &dyn Dns, raw: &[u8], now: i64) -> Vec<Outcome> {
    let raw = crlf(raw);
    let message = Message::split(&raw);
    let mut outcomes = Vec::new();
    for field in message
        .headers
        .iter()
        .filter(|f| f.is_named("dkim-signature"))
        .take(MAX_SIGNATURES)
    {
        outcomes.push(verify_one(dns, &message, field, now).await);
    }
    outcomes
}

async fn verify_one(dns: &dyn Dns, message: &Message<'_>, field: &Field<'_>, now: i64) -> Outcome {
    let sig = match Signature::parse(&field.value()) {
        Ok(sig) => sig,
        Err((domain, why)) => return Outcome::failed(&domain, why),
    };
    let domain = sig.domain.as_str();
    if sig.expires.is_some_and(|x| x < now) {
        return Outcome::failed(domain, "signature expired (x=)");
    }
    // The body first: a mismatch needs neither a DNS query nor a public-key operation.
    let body = canonical_body(message.body, sig.body_canon);
    let signed_body = match sig.length {
        Some(l) if l > body.len() => {
            return Outcome::failed(domain, "body shorter than l=");
        }
        Some(l) => &body[..l],
        None => &body[..],
    };
    if Sha256::digest(signed_body)[..] != sig.body_hash[..] {
        return Outcome::failed(domain, "body hash mismatch (bh=)");
    }
    let key = match Key::fetch(dns, &sig).await {
        Ok(key) => key,
        Err(why) => return Outcome::failed(domain, why),
    };
    let data = signed_headers(message, field, &sig);
    let hash = Sha256::digest(&data);
    if let Err(why) = key.verify(&hash, &sig.signature) {
        return Outcome::failed(domain, why);
    }
    Outcome {
        domain: domain.to_string(),
        result: Ok(()),
        partial_body: signed_body.len() < body.len(),
        signed_headers: sig.headers.clone(),
    }
}

/// The input of the header hash (RFC 6376 §3.7): the fields `h=` names, each picked from the
/// bottom up, then the signature's own field with its `b=` value emptied and no final CRLF.
fn signed_headers(message: &Message<'_>, own: &Field<'_>, sig: &Signature) -> Vec<u8> {
    let mut data = Vec::new();
    let mut used: Vec<(String, usize)> = Vec::new();
    for name in &sig.headers {
        let skip = used
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, count)| {
                *count += 1;
                *count - 1
            })
            .unwrap_or_else(|| {
                used.push((name.clone(), 1));
                0
            });
        // A name listed more often than it occurs signs nothing (§5.4.2).
        if let Some(field) = message
            .headers
            .iter()
            .rev()
            .filter(|f| f.is_named(name))
            .nth(skip)
        {
            data.extend_from_slice(&canonical_header(field.raw, sig.header_canon));
        }
    }
    let blanked = without_b_value(own.raw);
    let mut own = canonical_header(&blanked, sig.header_canon);
    if own.ends_with(b"\r\n") {
        own.truncate(own.len() - 2);
    }
    data.extend_from_slice(&own);
    data
}

/// A signature's field with the value of its `b=` tag deleted, surrounding whitespace included
/// (§3.7), everything else byte for byte.
fn without_b_value(field: &[u8]) -> Vec<u8> {
    let Some(colon) = field.iter().position(|&c| c == b':') else {
        return field.to_vec();
    };
    let mut out = field[..=colon].to_vec();
    let mut rest = &field[colon + 1..];
    loop {
        let end = rest.iter().position(|&c| c == b';').unwrap_or(rest.len());
        let tag = &rest[..end];
        match tag.iter().position(|&c| c == b'=') {
            Some(eq) if trim_fws(&tag[..eq]) == b"b" => {
                out.extend_from_slice(&tag[..=eq]);
                // Keep the field's final CRLF, which belongs to no tag.
                if end == rest.len() && tag.ends_with(b"\r\n") {
                    out.extend_from_slice(b"\r\n");
                }
            }
            _ => out.extend_from_slice(tag),
        }
        if end == rest.len() {
            break;
        }
        out.push(b';');
        rest = &rest[end + 1..];
    }
    out
}

/// `Cow` of the message with every bare LF made CRLF: messages posted over HTTP may have Unix
/// line ends, while signatures are computed over CRLF (§5.3).
fn crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    let bare = raw
        .iter()
        .enumerate()
        .any(|(i, &c)| c == b'\n' && (i == 0 || raw[i - 1] != b'\r'));
    if !bare {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for (i, &c) in raw.iter().enumerate() {
        if c == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// A message cut into header fields (each as received, with its folding and final CRLF) and
/// body.
struct Message<'a> {
    headers: Vec<Field<'a>>,
    body: &'a [u8],
}

struct Field<'a> {
    raw: &'a [u8],
}

impl<'a> Message<'a> {
    fn split(raw: &'a [u8]) -> Self {
        let mut headers: Vec<Field<'a>> = Vec::new();
        // Where the last field began, so a continuation line can extend it.
        let mut field_start = 0;
        let mut pos = 0;
        while pos < raw.len() {
            let end = raw[pos..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(raw.len(), |i| pos + i + 2);
            let line = &raw[pos..end];
            if line == b"\r\n" {
                return Self {
                    headers,
                    body: &raw[end..],
                };
            }
            match headers.last_mut() {
                Some(last) if matches!(line.first(), Some(b' ' | b'\t')) => {
                    last.raw = &raw[field_start..end];
                }
                _ => {
                    field_start = pos;
                    headers.push(Field { raw: line });
                }
            }
            pos = end;
        }
        Self { headers, body: &[] }
    }
}

impl Field<'_> {
    fn name(&self) -> &[u8] {
        let colon = self
            .raw
            .iter()
            .position(|&c| c == b':')
            .unwrap_or(self.raw.len());
        trim_fws(&self.raw[..colon])
    }

    fn is_named(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value after the colon, as text (a signature is ASCII).
    fn value(&self) -> Cow<'_, str> {
        let colon = self
            .raw
            .iter()
            .position(|&c| c == b':')
            .map_or(self.raw.len(), |i| i + 1);
        String::from_utf8_lossy(&self.raw[colon..])
    }
}

fn is_wsp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn trim_fws(s: &[u8]) -> &[u8] {
    let fws = |c: &u8| is_wsp(*c) || *c == b'\r' || *c == b'\n';
    let start = s.iter().position(|c| !fws(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !fws(c)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// Header and body canonicalization (§3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canon {
    Simple,
    Relaxed,
}

/// One header field in canonical form, with its final CRLF.
fn canonical_header(field: &[u8], canon: Canon) -> Vec<u8> {
    if canon == Canon::Simple {
        return field.to_vec();
    }
    let colon = field.iter().position(|&c| c == b':').unwrap_or(field.len());
    let mut out: Vec<u8> = trim_fws(&field[..colon]).to_ascii_lowercase();
    out.push(b':');
    // Unfold, then make each run of whitespace one space, and drop it at both ends.
    let value: Vec<u8> = field[(colon + 1).min(field.len())..]
        .iter()
        .copied()
        .filter(|&c| c != b'\r' && c != b'\n')
        .collect();
    let mut space = false;
    for &c in trim_fws(&value) {
        if is_wsp(c) {
            space = true;
            continue;
        }
        if space {
            out.push(b' ');
            space = false;
        }
        out.push(c);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The body in canonical form (§3.4.3, §3.4.4): trailing empty lines dropped; `simple` ends
/// with exactly one CRLF, `relaxed` also folds whitespace and is empty for an empty body.
fn canonical_body(body: &[u8], canon: Canon) -> Vec<u8> {
    match canon {
        Canon::Simple => {
            let mut b = body;
            while b.ends_with(b"\r\n\r\n") {
                b = &b[..b.len() - 2];
            }
            let mut out = b.to_vec();
            if !out.ends_with(b"\r\n") {
                out.extend_from_slice(b"\r\n");
            }
            out
        }
        Canon::Relaxed => {
            let mut lines: Vec<Vec<u8>> = split_lines(body)
                .map(|line| {
                    let mut out = Vec::with_capacity(line.len());
                    let mut space = false;
                    for &c in line {
                        if is_wsp(c) {
                            space = true;
                            continue;
                        }
                        if space {
                            out.push(b' ');
                            space = false;
                        }
                        out.push(c);
                    }
                    out
                })
                .collect();
            while lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            let mut out = Vec::with_capacity(body.len());
            for line in lines {
                out.extend_from_slice(&line);
                out.extend_from_slice(b"\r\n");
            }
            out
        }
    }
}

/// The lines of a body without their CRLFs (a last line without one counts as a line).
fn split_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                let line = &rest[..i];
                rest = &rest[i + 2..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = &[];
                Some(line)
            }
        }
    })
}

/// A tag list (§3.2): `name=value` pairs separated by `;`, whitespace around both trimmed.
/// A repeated tag makes the whole list invalid.
fn tags(list: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for spec in list.split(';') {
        if spec.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = spec.split_once('=') else {
            return Err(format!("malformed tag {:?}", spec.trim()));
        };
        let name = name.trim().to_string();
        if name.is_empty() || out.iter().any(|(n, _)| *n == name) {
            return Err(format!("malformed or repeated tag {name:?}"));
        }
        out.push((name, value.trim().to_string()));
    }
    Ok(out)
}

fn tag<'t>(tags: &'t [(String, String)], name: &str) -> Option<&'t str> {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A base64 tag value, whose folding whitespace is not part of it.
fn base64(value: &str) -> Option<Vec<u8>> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    RsaSha256,
    Ed25519Sha256,
}

/// A parsed `DKIM-Signature`.
#[derive(Debug)]
struct Signature {
    algorithm: Algorithm,
    signature: Vec<u8>,
    body_hash: Vec<u8>,
    header_canon: Canon,
    body_canon: Canon,
    domain: String,
    /// `h=`, lower-cased.
    headers: Vec<String>,
    length: Option<usize>,
    selector: String,
    /// The local part and domain of `i=`, when given.
    identity_domain: Option<String>,
    expires: Option<i64>,
}

impl Signature {
    /// Reads the tags; on error, the `d=` domain (if readable) and why.
    fn parse(value: &str) -> Result<Self, (String, String)> {
        let tags = tags(value).map_err(|why| (String::new(), why))?;
        let domain = tag(&tags, "d")
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default();
        let fail = |why: &str| (domain.clone(), why.to_string());
        if tag(&tags, "v") != Some("1") {
            return Err(fail("v= is not 1"));
        }
        if domain.is_empty() {
            return Err(fail("no d="));
        }
        let algorithm = match tag(&tags, "a").map(str::to_ascii_lowercase).as_deref() {
            Some("rsa-sha256") => Algorithm::RsaSha256,
            Some("ed25519-sha256") => Algorithm::Ed25519Sha256,
            Some("rsa-sha1") => return Err(fail("rsa-sha1 is not accepted (RFC 8301)")),
            _ => return Err(fail("unknown a=")),
        };
        let signature = tag(&tags, "b")
            .and_then(base64)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| fail("missing or malformed b="))?;
        let body_hash = tag(&tags, "bh")
            .and_then(base64)
            .ok_or_else(|| fail("missing or malformed bh="))?;
        let c = tag(&tags, "c")
            .unwrap_or("simple/simple")
            .to_ascii_lowercase();
        let (h, b) = c.split_once('/').unwrap_or((c.as_str(), "simple"));
        let header_canon = canon(h).ok_or_else(|| fail("unknown c="))?;
        let body_canon = canon(b).ok_or_else(|| fail("unknown c="))?;
        let headers: Vec<String> = tag(&tags, "h")
            .unwrap_or_default()
            .split(':')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if !headers.iter().any(|h| h == "from") {
            return Err(fail("h= does not sign From"));
        }
        let selector = tag(&tags, "s")
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| fail("no s="))?;
        if let Some(q) = tag(&tags, "q")
            && !q
                .split(':')
                .any(|m| m.trim().eq_ignore_ascii_case("dns/txt"))
        {
            return Err(fail("unknown q="));
        }
        let number = |name: &str| -> Result<Option<i64>, (String, String)> {
            tag(&tags, name)
                .map(|v| v.parse::<i64>().map_err(|_| fail("malformed number")))
                .transpose()
        };
        let length = number("l")?
            .map(|l| usize::try_from(l).map_err(|_| fail("malformed l=")))
            .transpose()?;
        let (signed_at, expires) = (number("t")?, number("x")?);
        if let (Some(t), Some(x)) = (signed_at, expires)
            && x < t
        {
            return Err(fail("x= before t="));
        }
        let identity_domain = match tag(&tags, "i") {
            Some(i) => {
                let d = i
                    .rsplit_once('@')
                    .map_or("", |(_, d)| d)
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if d != domain && !d.ends_with(&format!(".{domain}")) {
                    return Err(fail("i= is not within d="));
                }
                Some(d)
            }
            None => None,
        };
        Ok(Self {
            algorithm,
            signature,
            body_hash,
            header_canon,
            body_canon,
            domain,
            headers,
            length,
            selector,
            identity_domain,
            expires,
        })
    }
}

fn canon(name: &str) -> Option<Canon> {
    match name.trim() {
        "simple" => Some(Canon::Simple),
        "relaxed" => Some(Canon::Relaxed),
        _ => None,
    }
}

/// A public key from `<s>._domainkey.<d>` (§3.6.1).
enum Key {
    Rsa(rsa::RsaPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl Key {
    async fn fetch(dns: &dyn Dns, sig: &Signature) -> Result<Self, String> {
        let name = format!("{}._domainkey.{}", sig.selector, sig.domain);
        let records = dns.txt(&name).await;
        let Some(record) = records.first() else {
            return Err(format!("no key at {name}"));
        };
        Self::parse(record, sig)
    }

    fn parse(record: &str, sig: &Signature) -> Result<Self, String> {
        let tags = tags(record).map_err(|why| format!("bad key record: {why}"))?;
        if tag(&tags, "v").is_some_and(|v| v != "DKIM1") {
            return Err("bad key record: v= is not DKIM1".into());
        }
        if let Some(h) = tag(&tags, "h")
            && !h
                .split(':')
                .any(|h| h.trim().eq_ignore_ascii_case("sha256"))
        {
            return Err("the key does not allow sha256".into());
        }
        if let Some(s) = tag(&tags, "s")
            && !s
                .split(':')
                .any(|s| matches!(s.trim().to_ascii_lowercase().as_str(), "*" | "email"))
        {
            return Err("the key is not for email".into());
        }
        // `t=s`: the identity must be the signing domain itself, not a subdomain.
        let strict = tag(&tags, "t").is_some_and(|t| t.split(':').any(|f| f.trim() == "s"));
        if strict
            && sig
                .identity_domain
                .as_ref()
                .is_some_and(|d| *d != sig.domain)
        {
            return Err("i= is a subdomain, but the key says t=s".into());
        }
        let p = tag(&tags, "p").ok_or("bad key record: no p=")?;
        if p.trim().is_empty() {
            return Err("key revoked".into());
        }
        let p = base64(p).ok_or("bad key record: malformed p=")?;
        match (
            tag(&tags, "k")
                .unwrap_or("rsa")
                .to_ascii_lowercase()
                .as_str(),
            sig.algorithm,
        ) {
            ("rsa", Algorithm::RsaSha256) => {
                use rsa::{
                    pkcs1::DecodeRsaPublicKey, pkcs8::DecodePublicKey, traits::PublicKeyParts,
                };
                let key = rsa::RsaPublicKey::from_public_key_der(&p)
                    .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&p))
                    .map_err(|_| "bad key record: not an RSA key")?;
                if key.size() * 8 < MIN_RSA_BITS {
                    return Err("RSA key shorter than 1024 bits".into());
                }
                Ok(Key::Rsa(key))
            }
            ("ed25519", Algorithm::Ed25519Sha256) => {
                let bytes: [u8; 32] = p
                    .as_slice()
                    .try_into()
                    .map_err(|_| "bad key record: not an Ed25519 key")?;
                ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map(Key::Ed25519)
                    .map_err(|_| "bad key record: not an Ed25519 key".into())
            }
            _ => Err("the key's type does not match a=".into()),
        }
    }

    /// Verifies `signature` over the SHA-256 `hash` of the signed headers (RFC 8463 signs the
    /// hash with Ed25519, as RSA does).
    fn verify(&self, hash: &[u8], signature: &[u8]) -> Result<(), String> {
        match self {
            Key::Rsa(key) => key
                .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), hash, signature)
                .map_err(|_| "signature does not verify (b=)".into()),
            Key::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| "malformed Ed25519 signature (b=)")?;
                key.verify_strict(hash, &signature)
                    .map_err(|_| "signature does not verify (b=)".into())
            }
        }
    }
}

#[cfg(test)]
mod tests;
