//! Mail clients and servers nobody here wrote, for the email tests: Python's `smtplib` sends
//! (tests/py/send_mail.py, signing with `dkimpy` when asked), `aiosmtpd` receives the hub's
//! replies (tests/py/smtp_sink.py) and `dnslib` serves the senders' SPF records and DKIM keys
//! (tests/py/dns_server.py). All run from the virtualenv that `scripts/test` makes in
//! tests/py/.venv.

use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The virtualenv's Python. Missing is a failure, never a skip: `scripts/test` makes it.
pub fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("tests/py/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which creates tests/py/.venv with tests/py/requirements.txt",
        python.display()
    );
    python
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Sends one message through smtplib; returns the script's outcome
/// (`{refused: {rcpt: [code, text]}, error: null | {stage, code, message}}`).
pub async fn send(spec: Value) -> Value {
    let mut child = tokio::process::Command::new(python())
        .arg(script("send_mail.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start send_mail.py");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(spec.to_string().as_bytes())
        .await
        .expect("write spec");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("send_mail.py took over 60 s")
        .expect("send_mail.py failed to run");
    assert!(
        out.status.success(),
        "send_mail.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "send_mail.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A message the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub raw: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("the reply parses as a message")
    }

    /// A header's raw value, trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed()
            .headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    pub fn body(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }
}

/// aiosmtpd listening on a free local port; stops when dropped.
pub struct Sink {
    pub port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Sink {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = tokio::process::Command::new(python())
            .arg(script("smtp_sink.py"))
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start smtp_sink.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the sink did not start within 20 s")
            .expect("read the sink's output");
        assert_eq!(
            ready.as_deref(),
            Some("READY"),
            "smtp_sink.py did not start"
        );
        Self {
            port,
            dir,
            _child: child,
        }
    }

    /// The relay URL the hub sends replies to.
    pub fn relay_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .iter()
            .map(|eml| {
                let envelope: Value = serde_json::from_slice(
                    &std::fs::read(eml.with_extension("json")).expect("envelope"),
                )
                .expect("envelope JSON");
                Received {
                    mail_from: envelope["mailFrom"].as_str().unwrap_or_default().into(),
                    rcpt_tos: envelope["rcptTos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    raw: std::fs::read(eml).expect("message"),
                }
            })
            .collect()
    }

    /// Waits (at most `secs`) until `count` messages have arrived.
    pub async fn wait_for(&self, count: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} repl(ies) at the sink within {secs} s, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A spec for send_mail.py with the usual envelope: from `from` to each of `to`.
pub fn spec(port: u16, from: &str, to: &[&str], message: Value) -> Value {
    let mut message = message;
    if message.get("from").is_none() {
        message["from"] = Value::String(from.to_string());
    }
    if message.get("to").is_none() {
        message["to"] = Value::String(to.join(", "));
    }
    serde_json::json!({
        "host": "127.0.0.1",
        "port": port,
        "mailFrom": from,
        "rcptTo": to,
        "message": message,
    })
}

/// dnslib answering `records` (`[name, type, value]`: TXT, A, AAAA, MX) on a free local port,
/// UDP and TCP; stops when dropped. The hub asks it through `AGENTHUB_MAIL_DNS`.
pub struct DnsServer {
    pub port: u16,
    _child: tokio::process::Child,
}

impl DnsServer {
    pub async fn start(records: Value) -> Self {
        let mut child = tokio::process::Command::new(python())
            .arg(script("dns_server.py"))
            .arg(records.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start dns_server.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the DNS server did not start within 20 s")
            .expect("read the DNS server's output")
            .unwrap_or_default();
        let port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("dns_server.py did not start: {ready:?}"));
        Self {
            port,
            _child: child,
        }
    }

    /// The `AGENTHUB_MAIL_DNS` value that points the hub here.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A fresh RSA key for DKIM: (private key PEM for dkimpy, the TXT record to publish).
pub fn dkim_key() -> (String, String) {
    use base64::Engine;
    use rsa::{pkcs1::EncodeRsaPrivateKey, pkcs8::EncodePublicKey};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
    let pem = key
        .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
        .expect("PEM")
        .to_string();
    let public = key
        .to_public_key()
        .to_public_key_der()
        .expect("public key DER");
    let record = format!(
        "v=DKIM1; k=rsa; p={}",
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
    );
    (pem, record)
}
