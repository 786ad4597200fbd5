//! DKIM verification against messages signed by a small signer written for these tests, keys
//! made afresh by each test, and the canonicalization example of RFC 6376 §3.4.6.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::mail::dns::Table;
use ed25519_dalek::Signer as _;
use rsa::pkcs8::EncodePublicKey;

const NOW: i64 = 1_800_000_000;

const MESSAGE: &[u8] = b"From: Ann <ann@example.org>\r\n\
To: echo@mail.localhost\r\n\
Subject:  Summarise   this\r\n\
Message-ID: <m1@example.org>\r\n\
\r\n\
The text  to work on.\r\n\
Second line.\r\n\
\r\n\
\r\n";

enum TestKey {
    Rsa(rsa::RsaPrivateKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl TestKey {
    fn rsa(bits: usize) -> Self {
        TestKey::Rsa(rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).unwrap())
    }

    fn ed25519() -> Self {
        TestKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random()))
    }

    /// The TXT record a domain would publish for this key.
    fn record(&self) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        match self {
            TestKey::Rsa(k) => format!(
                "v=DKIM1; k=rsa; p={}",
                b64(k.to_public_key().to_public_key_der().unwrap().as_bytes())
            ),
            TestKey::Ed25519(k) => {
                format!(
                    "v=DKIM1; k=ed25519; p={}",
                    b64(&k.verifying_key().to_bytes())
                )
            }
        }
    }

    fn algorithm(&self) -> &'static str {
        match self {
            TestKey::Rsa(_) => "rsa-sha256",
            TestKey::Ed25519(_) => "ed25519-sha256",
        }
    }
}

/// Signs like a sending server would; `tags` go into the signature as given.
struct TestSigner<'k> {
    key: &'k TestKey,
    canon: &'static str,
    headers: &'static str,
    tags: String,
}

impl<'k> TestSigner<'k> {
    fn new(key: &'k TestKey) -> Self {
        Self {
            key,
            canon: "relaxed/relaxed",
            headers: "from:to:subject:message-id",
            tags: String::new(),
        }
    }

    fn canon(mut self, canon: &'static str) -> Self {
        self.canon = canon;
        self
    }

    fn headers(mut self, headers: &'static str) -> Self {
        self.headers = headers;
        self
    }

    fn tags(mut self, tags: &str) -> Self {
        self.tags = tags.to_string();
        self
    }

    /// The message with a `DKIM-Signature` field on top.
    fn sign(&self, raw: &[u8]) -> Vec<u8> {
        let (hc, bc) = self.canon.split_once('/').unwrap();
        let (hc, bc) = (canon(hc).unwrap(), canon(bc).unwrap());
        let message = Message::split(raw);
        let mut body = canonical_body(message.body, bc);
        let length: Option<usize> = self
            .tags
            .split(';')
            .find_map(|t| t.trim().strip_prefix("l=").map(|l| l.parse().unwrap()));
        if let Some(l) = length {
            body.truncate(l);
        }
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let field = format!(
            "DKIM-Signature: v=1; a={}; c={}; d=example.org; s=sel;\r\n\th={}; {}\r\n\tbh={}; b=\r\n",
            self.key.algorithm(),
            self.canon,
            self.headers,
            self.tags,
            b64(&Sha256::digest(&body)),
        );
        let sig = Signature {
            algorithm: Algorithm::RsaSha256,
            signature: Vec::new(),
            body_hash: Vec::new(),
            header_canon: hc,
            body_canon: bc,
            domain: "example.org".into(),
            headers: self.headers.split(':').map(str::to_string).collect(),
            length,
            selector: "sel".into(),
            identity_domain: None,
            expires: None,
        };
        let own = Field {
            raw: field.as_bytes(),
        };
        let hash = Sha256::digest(signed_headers(&message, &own, &sig));
        let b = match self.key {
            TestKey::Rsa(k) => k.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &hash).unwrap(),
            TestKey::Ed25519(k) => k.sign(&hash).to_bytes().to_vec(),
        };
        let signed = field.replace("b=\r\n", &format!("b={}\r\n", fold(&b64(&b))));
        [signed.as_bytes(), raw].concat()
    }
}

/// Folds a long base64 value over lines, as signers do.
fn fold(value: &str) -> String {
    value
        .as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n\t ")
}

fn dns(key: &TestKey) -> Table {
    let record = key.record();
    Table::new([("txt:sel._domainkey.example.org", vec![record.as_str()])])
}

async fn check(dns: &Table, raw: &[u8]) -> Outcome {
    let outcomes = verify(dns, raw, NOW).await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes.into_iter().next().unwrap()
}

fn replace(raw: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(raw.to_vec())
        .unwrap()
        .replacen(from, to, 1)
        .into_bytes()
}

#[test]
fn the_rfc_canonicalization_example() {
    // RFC 6376 §3.4.6.
    let raw = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";
    let message = Message::split(raw);
    let relaxed: Vec<u8> = message
        .headers
        .iter()
        .flat_map(|f| canonical_header(f.raw, Canon::Relaxed))
        .collect();
    assert_eq!(relaxed, b"a:X\r\nb:Y Z\r\n");
    assert_eq!(
        canonical_body(message.body, Canon::Relaxed),
        b" C\r\nD E\r\n"
    );
    let simple: Vec<u8> = message
        .headers
        .iter()
        .flat_map(|f| canonical_header(f.raw, Canon::Simple))
        .collect();
    assert_eq!(simple, b"A: X\r\nB : Y\t\r\n\tZ  \r\n");
    assert_eq!(
        canonical_body(message.body, Canon::Simple),
        b" C \r\nD \t E\r\n"
    );
}

#[test]
fn empty_bodies_canonicalize_as_the_rfc_says() {
    // §3.4.3: an empty body is one CRLF in `simple`; §3.4.4: nothing in `relaxed`.
    assert_eq!(canonical_body(b"", Canon::Simple), b"\r\n");
    assert_eq!(canonical_body(b"\r\n\r\n", Canon::Simple), b"\r\n");
    assert_eq!(canonical_body(b"", Canon::Relaxed), b"");
    assert_eq!(canonical_body(b" \r\n\r\n", Canon::Relaxed), b"");
    assert_eq!(canonical_body(b"x", Canon::Relaxed), b"x\r\n");
}

#[test]
fn the_b_value_is_emptied_and_nothing_else() {
    let field = b"DKIM-Signature: v=1; bh=abc;\r\n b = QUJD\r\n DEF ; d=x\r\n";
    assert_eq!(
        without_b_value(field),
        b"DKIM-Signature: v=1; bh=abc;\r\n b =; d=x\r\n"
    );
    let last = b"DKIM-Signature: v=1; b=QUJD\r\n\t RUY=\r\n";
    assert_eq!(without_b_value(last), b"DKIM-Signature: v=1; b=\r\n");
}

#[actix_rt::test]
async fn rsa_signatures_verify_in_both_canonicalizations() {
    let key = TestKey::rsa(1024);
    let dns = dns(&key);
    for canon in [
        "relaxed/relaxed",
        "simple/simple",
        "relaxed/simple",
        "simple/relaxed",
    ] {
        let signed = TestSigner::new(&key).canon(canon).sign(MESSAGE);
        let outcome = check(&dns, &signed).await;
        assert_eq!(outcome.result, Ok(()), "{canon}");
        assert_eq!(outcome.domain, "example.org");
        assert!(!outcome.partial_body);
    }
}

#[actix_rt::test]
async fn relaxed_survives_refolding_and_simple_does_not() {
    let key = TestKey::rsa(1024);
    let dns = dns(&key);
    let refold = |raw: &[u8]| {
        let raw = replace(
            raw,
            "Subject:  Summarise   this",
            "subject: Summarise\r\n this",
        );
        replace(&raw, "The text  to work on.", "The text to work on.  ")
    };
    let relaxed = TestSigner::new(&key).sign(MESSAGE);
    assert!(check(&dns, &refold(&relaxed)).await.passed());
    let simple = TestSigner::new(&key).canon("simple/simple").sign(MESSAGE);
    assert!(!check(&dns, &refold(&simple)).await.passed());
    // Unix line ends (a message posted over HTTP) read as CRLF.
    let unix = String::from_utf8(relaxed).unwrap().replace("\r\n", "\n");
    assert!(check(&dns, unix.as_bytes()).await.passed());
}

#[actix_rt::test]
async fn tampering_is_caught() {
    let key = TestKey::rsa(1024);
    let dns = dns(&key);
    let signed = TestSigner::new(&key).sign(MESSAGE);
    let body = check(&dns, &replace(&signed, "Second line.", "Send tokens.")).await;
    assert_eq!(body.result, Err("body hash mismatch (bh=)".into()));
    let header = check(&dns, &replace(&signed, "Summarise", "Translate")).await;
    assert_eq!(header.result, Err("signature does not verify (b=)".into()));
    let from = check(
        &dns,
        &replace(&signed, "ann@example.org", "bob@example.org"),
    )
    .await;
    assert!(!from.passed());
    // Fields the signature does not name may be added by relays.
    let relayed = [b"Received: from relay.example\r\n".as_slice(), &signed].concat();
    assert!(check(&dns, &relayed).await.passed());
}

#[actix_rt::test]
async fn fields_are_picked_from_the_bottom_and_over_signing_locks_them() {
    let key = TestKey::rsa(1024);
    let dns = dns(&key);
    let extra = b"Subject: Something else\r\n".as_slice();
    // Signed once: a second Subject added on top is not the signed one, so it still verifies
    // (this is why the alignment and From checks do not trust other fields).
    let signed = TestSigner::new(&key).sign(MESSAGE);
    let (sig, rest) = signed.split_at(signed.len() - MESSAGE.len());
    assert!(check(&dns, &[sig, extra, rest].concat()).await.passed());
    // Over-signed (`subject` twice, one present): adding one breaks the signature.
    let locked = TestSigner::new(&key)
        .headers("from:to:subject:subject:message-id")
        .sign(MESSAGE);
    assert!(check(&dns, &locked).await.passed());
    let (sig, rest) = locked.split_at(locked.len() - MESSAGE.len());
    assert!(!check(&dns, &[sig, extra, rest].concat()).await.passed());
}

#[actix_rt::test]
async fn a_length_limit_is_reported_and_checked() {
    let key = TestKey::rsa(1024);
    let dns = dns(&key);
    let signed = TestSigner::new(&key).tags("l=22;").sign(MESSAGE);
    let outcome = check(&dns, &signed).await;
    assert!(outcome.passed(), "{outcome:?}");
    assert!(outcome.partial_body);
    // Text after the signed length does not break the signature, hence `partial_body`.
    let appended = replace(&signed, "Second line.", "Second line. Pay me.");
    assert!(check(&dns, &appended).await.passed());
    let whole = TestSigner::new(&key).tags("l=36;").sign(MESSAGE);
    let outcome = check(&dns, &whole).await;
    assert!(outcome.passed() && !outcome.partial_body, "{outcome:?}");
    let too_long = TestSigner::new(&key).tags("l=37;").sign(MESSAGE);
    assert_eq!(
        check(&dns, &too_long).await.result,
        Err("body shorter than l=".into())
    );
}

#[actix_rt::test]
async fn expired_signatures_fail() {
    let key = TestKey::rsa(1024);
    let dns = dns(&key);
    let old = TestSigner::new(&key)
        .tags(&format!("t={}; x={};", NOW - 100, NOW - 1))
        .sign(MESSAGE);
    assert_eq!(
        check(&dns, &old).await.result,
        Err("signature expired (x=)".into())
    );
    let fresh = TestSigner::new(&key)
        .tags(&format!("t={}; x={};", NOW - 100, NOW + 100))
        .sign(MESSAGE);
    assert!(check(&dns, &fresh).await.passed());
}

#[actix_rt::test]
async fn key_records_are_checked() {
    let key = TestKey::rsa(1024);
    let signed = TestSigner::new(&key).sign(MESSAGE);
    let outcome = |record: String| {
        let table = Table::new([("txt:sel._domainkey.example.org", vec![record.as_str()])]);
        let signed = signed.clone();
        async move { check(&table, &signed).await.result }
    };
    assert_eq!(
        outcome("v=DKIM1; p=".into()).await,
        Err("key revoked".into())
    );
    assert_eq!(
        outcome("v=DKIM1; k=ed25519; p=AAAA".into()).await,
        Err("the key's type does not match a=".into())
    );
    let good = key.record();
    assert_eq!(
        outcome(format!("{good}; h=sha1")).await,
        Err("the key does not allow sha256".into())
    );
    assert_eq!(
        outcome(format!("{good}; s=tlsrpt")).await,
        Err("the key is not for email".into())
    );
    assert_eq!(outcome(format!("{good}; s=email; t=y")).await, Ok(()));
    let none = Table::new([]);
    assert_eq!(
        check(&none, &signed).await.result,
        Err("no key at sel._domainkey.example.org".into())
    );
    // Keys under 1024 bits are not trusted (RFC 8301).
    let short = TestKey::rsa(512);
    let signed = TestSigner::new(&short).sign(MESSAGE);
    assert_eq!(
        check(&dns(&short), &signed).await.result,
        Err("RSA key shorter than 1024 bits".into())
    );
}

#[actix_rt::test]
async fn malformed_or_weak_signatures_fail() {
    let key = TestKey::rsa(1024);
    let dns = dns(&key);
    let signed = TestSigner::new(&key).sign(MESSAGE);
    let sha1 = replace(&signed, "a=rsa-sha256", "a=rsa-sha1");
    assert_eq!(
        check(&dns, &sha1).await.result,
        Err("rsa-sha1 is not accepted (RFC 8301)".into())
    );
    let no_from = TestSigner::new(&key)
        .headers("to:subject:message-id")
        .sign(MESSAGE);
    assert_eq!(
        check(&dns, &no_from).await.result,
        Err("h= does not sign From".into())
    );
    let foreign_identity = TestSigner::new(&key)
        .tags("i=ann@example.net;")
        .sign(MESSAGE);
    assert_eq!(
        check(&dns, &foreign_identity).await.result,
        Err("i= is not within d=".into())
    );
    let repeated = replace(&signed, "v=1;", "v=1; v=1;");
    assert!(!check(&dns, &repeated).await.passed());
    assert!(verify(&dns, MESSAGE, NOW).await.is_empty());
}

#[actix_rt::test]
async fn ed25519_signatures_verify() {
    let key = TestKey::ed25519();
    let dns = dns(&key);
    let signed = TestSigner::new(&key).sign(MESSAGE);
    assert_eq!(check(&dns, &signed).await.result, Ok(()));
    let tampered = replace(&signed, "Summarise", "Translate");
    assert!(!check(&dns, &tampered).await.passed());
}

#[actix_rt::test]
async fn each_signature_is_judged_on_its_own() {
    let key = TestKey::rsa(1024);
    let dns = dns(&key);
    let signed = TestSigner::new(&key).sign(MESSAGE);
    let broken = replace(
        &signed,
        "DKIM-Signature: v=1;",
        "DKIM-Signature: v=1; d=other.example;",
    );
    let both = [broken.split_at(broken.len() - MESSAGE.len()).0, &signed].concat();
    let outcomes = verify(&dns, &both, NOW).await;
    assert_eq!(outcomes.len(), 2);
    assert!(!outcomes[0].passed());
    assert!(outcomes[1].passed());
}
/// A key, message and signatures made once with dkimpy 1.1.8 (an implementation nobody here
/// wrote), so the verifier is not only checked against its own test signer.
const DKIMPY_KEY: &str = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCbWV/5s2FB8YeWw3pVZ4QrYaucXotqyJwWvWx2xQ+YagW9S9nUONn1yQY14e1yfQD4jPnm/HxKxiy3hNer420zbduEpGd/tON3h7Y1+zz1/q3+NNa1e1Md+xyWouRVCVYDbZGHSTloSkeTojrvOT9UI2WtS6snfi/hA3F+WkQC5wIDAQAB";
const DKIMPY_MESSAGE: &str = "From: Ann <ann@example.org>\r\nTo: echo@mail.localhost\r\nSubject:  Summarise \t this\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMessage-ID: <v1@example.org>\r\n\r\nThe text  to work on. \r\nSecond\tline.\r\n\r\n\r\n";
const DKIMPY_SIGNATURES: [&str; 2] = [
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;\r\n i=@example.org; q=dns/txt; s=sel; t=1795602741; h=from : to : subject\r\n : date : message-id; bh=cJ6oZmCJfbDjtGKuw3Z4o7PhS7VjVHsF8tLjFmcVlsc=;\r\n b=ibyI2FBYHBzOfpO8Fg3+V9MAemqAjqf6AbJDVo6segJffUDLx6icQeVlq7FEYMDi/E3RH\r\n yCp+Srxwvek+/bTjMuaA8DpYq3DQvgvNzVwA1WW+ckqAdhn2rDykm5r17iabZqLr1byRWxD\r\n 5T/fNlWMXdK5E2/WARVJzPqT7LnuoXE=\r\n",
    "DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; d=example.org;\r\n i=@example.org; q=dns/txt; s=sel; t=1795602741; h=from : to : subject\r\n : date : message-id; bh=U8o3EOOZ3Ga9uoV1BGKqwKib5VvT0hIXROytGI8PGok=;\r\n b=hrmiI1gKGHpBbosLEJNkCfWxs9Ij4QrTkeLvnviht15BQZid3e0yUgN7HAmU2T1jXBNnK\r\n iZuAeTblBObS/Zj7Hn9s2e0n1F1aZwU+ElG8dKci+s6BflK1wEXWTsmIJJ1PKIrZNNtL/0v\r\n QpZxsGYYcscXIHCTMHHQLmBXDvM0/10=\r\n",
];

#[actix_rt::test]
async fn signatures_made_by_dkimpy_verify() {
    let dns = Table::new([("txt:sel._domainkey.example.org", vec![DKIMPY_KEY])]);
    for signature in DKIMPY_SIGNATURES {
        let signed = format!("{signature}{DKIMPY_MESSAGE}");
        assert_eq!(
            check(&dns, signed.as_bytes()).await.result,
            Ok(()),
            "{signature}"
        );
        let tampered = signed.replace("Second", "Third");
        assert!(!check(&dns, tampered.as_bytes()).await.passed());
    }
}
