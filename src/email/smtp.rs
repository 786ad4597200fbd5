//! The inbound SMTP listener (`AGENTHUB_SMTP_ADDR`): ESMTP with `SIZE`, `8BITMIME`,
//! `PIPELINING`, `ENHANCEDSTATUSCODES` and, when a certificate is configured, `STARTTLS`.
//!
//! This edge only speaks the protocol (parsing by smtp-proto, Stalwart's sans-IO parser); every
//! decision is the [`Mailroom`]'s: `RCPT TO` is admitted or refused by it (so the hub is never
//! an open relay), and `250` after `DATA` is written only once it has stored the message.
//! Connections are bounded by a semaphore; each session has an idle timeout, a recipient limit
//! and a size limit enforced while the data streams in, so a client cannot make the hub buffer
//! more than one message's allowance.

use actors::mail::{Mailroom, Refusal};
use entities::agents;
use smtp_proto::{
    EXT_8BIT_MIME, EXT_ENHANCED_STATUS_CODES, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8,
    EXT_START_TLS, EhloResponse, Error as ParseError, Request,
    request::receiver::{DataReceiver, RequestReceiver},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
    sync::Semaphore,
};
use tokio_rustls::TlsAcceptor;

/// Limits and options of the listener.
#[derive(Clone)]
pub struct SmtpConfig {
    pub max_connections: usize,
    pub max_recipients: usize,
    pub max_message_bytes: usize,
    /// A client silent this long is disconnected (RFC 5321 suggests 5 minutes).
    pub idle_timeout: Duration,
    /// Offered as `STARTTLS` when set.
    pub tls: Option<TlsAcceptor>,
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: TcpListener, room: Arc<Mailroom>, config: SmtpConfig) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let config = Arc::new(config);
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "smtp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let _ = stream
                .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                .await;
            continue;
        };
        let room = room.clone();
        let config = config.clone();
        actix_web::rt::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut session = Session::new(room, &config, peer);
            let result = match session.run(&mut stream, true).await {
                Ok(Step::StartTls) => match &config.tls {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(mut tls) => {
                            session.reset_after_tls();
                            session.run(&mut tls, false).await.map(|_| ())
                        }
                        Err(err) => Err(err),
                    },
                    None => Ok(()),
                },
                Ok(_) => Ok(()),
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "smtp session ended");
            }
            drop(permit);
        });
    }
}

enum Step {
    Quit,
    StartTls,
}

struct Session<'a> {
    room: Arc<Mailroom>,
    config: &'a SmtpConfig,
    peer: SocketAddr,
    tls: bool,
    helo: Option<String>,
    from: Option<String>,
    recipients: Vec<(String, agents::Model)>,
    errors: u32,
}

/// What is being received after `DATA`.
struct Incoming {
    receiver: DataReceiver,
    body: Vec<u8>,
    too_big: bool,
}

impl<'a> Session<'a> {
    fn new(room: Arc<Mailroom>, config: &'a SmtpConfig, peer: SocketAddr) -> Self {
        Self {
            room,
            config,
            peer,
            tls: false,
            helo: None,
            from: None,
            recipients: Vec::new(),
            errors: 0,
        }
    }

    fn reset(&mut self) {
        self.from = None;
        self.recipients.clear();
    }

    /// RFC 3207: after STARTTLS the client starts over with EHLO.
    fn reset_after_tls(&mut self) {
        self.reset();
        self.helo = None;
        self.tls = true;
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        greet: bool,
    ) -> std::io::Result<Step> {
        let mut out: Vec<u8> = Vec::with_capacity(512);
        if greet {
            out.extend_from_slice(
                format!("220 {} ESMTP agenthub\r\n", self.room.mail_domain()).as_bytes(),
            );
        }
        let mut receiver = RequestReceiver::default();
        let mut incoming: Option<Incoming> = None;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if !out.is_empty() {
                stream.write_all(&out).await?;
                stream.flush().await?;
                out.clear();
            }
            let n =
                match tokio::time::timeout(self.config.idle_timeout, stream.read(&mut buf)).await {
                    Ok(read) => read?,
                    Err(_) => {
                        let _ = stream
                            .write_all(b"421 4.4.2 Idle too long, closing connection\r\n")
                            .await;
                        return Ok(Step::Quit);
                    }
                };
            if n == 0 {
                return Ok(Step::Quit);
            }
            let mut bytes = buf[..n].iter();
            loop {
                if let Some(data) = incoming.as_mut() {
                    let done = data.receiver.ingest(&mut bytes, &mut data.body);
                    if data.body.len() > self.config.max_message_bytes {
                        // Keep reading to the end of the data, but keep none of it.
                        data.too_big = true;
                        data.body = Vec::new();
                    }
                    if !done {
                        break;
                    }
                    if let Some(data) = incoming.take() {
                        out.extend_from_slice(self.deliver(data).await.as_bytes());
                    }
                    continue;
                }
                if bytes.as_slice().is_empty() {
                    break;
                }
                let request = match receiver.ingest(&mut bytes) {
                    Ok(request) => request.into_owned(),
                    Err(ParseError::NeedsMoreData { .. }) => break,
                    Err(err) => {
                        out.extend_from_slice(parse_error(&err).as_bytes());
                        self.errors += 1;
                        if self.errors > 20 {
                            out.extend_from_slice(b"421 4.7.0 Too many errors\r\n");
                            stream.write_all(&out).await?;
                            return Ok(Step::Quit);
                        }
                        continue;
                    }
                };
                match request {
                    Request::Data => {
                        if self.recipients.is_empty() {
                            out.extend_from_slice(b"503 5.5.1 No valid recipients\r\n");
                        } else {
                            out.extend_from_slice(
                                b"354 Start mail input; end with <CRLF>.<CRLF>\r\n",
                            );
                            incoming = Some(Incoming {
                                receiver: DataReceiver::new(),
                                body: Vec::with_capacity(8 * 1024),
                                too_big: false,
                            });
                        }
                    }
                    Request::Quit => {
                        out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                        stream.write_all(&out).await?;
                        stream.flush().await?;
                        return Ok(Step::Quit);
                    }
                    Request::StartTls if self.config.tls.is_some() && !self.tls => {
                        out.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                        stream.write_all(&out).await?;
                        stream.flush().await?;
                        // Anything pipelined after STARTTLS is discarded (RFC 3207).
                        return Ok(Step::StartTls);
                    }
                    other => {
                        let reply = self.command(other).await;
                        out.extend_from_slice(reply.as_bytes());
                    }
                }
            }
        }
    }

    async fn command(&mut self, request: Request<String>) -> String {
        match request {
            Request::Ehlo { host } => {
                self.reset();
                self.helo = Some(host);
                let mut ehlo = EhloResponse::new(self.room.mail_domain().to_string());
                ehlo.capabilities = EXT_SIZE
                    | EXT_8BIT_MIME
                    | EXT_PIPELINING
                    | EXT_ENHANCED_STATUS_CODES
                    | EXT_SMTP_UTF8;
                if self.config.tls.is_some() && !self.tls {
                    ehlo.capabilities |= EXT_START_TLS;
                }
                ehlo.size = self.config.max_message_bytes;
                let mut out = Vec::new();
                let _ = ehlo.write(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
            Request::Helo { host } | Request::Lhlo { host } => {
                self.reset();
                self.helo = Some(host);
                format!("250 {}\r\n", self.room.mail_domain())
            }
            Request::Mail { from } => {
                if self.helo.is_none() {
                    return "503 5.5.1 Say EHLO first\r\n".into();
                }
                if self.from.is_some() {
                    return "503 5.5.1 Sender already given\r\n".into();
                }
                if from.size > self.config.max_message_bytes {
                    return format!(
                        "552 5.3.4 Message too big: at most {} bytes\r\n",
                        self.config.max_message_bytes
                    );
                }
                self.from = Some(from.address.trim().to_ascii_lowercase());
                "250 2.1.0 Sender OK\r\n".into()
            }
            Request::Rcpt { to } => {
                let Some(from) = self.from.clone() else {
                    return "503 5.5.1 Need MAIL before RCPT\r\n".into();
                };
                if self.recipients.len() >= self.config.max_recipients {
                    return "452 4.5.3 Too many recipients\r\n".into();
                }
                match self.room.admit(&from, &to.address).await {
                    Ok(Ok(agent)) => {
                        self.recipients.push((to.address, agent));
                        "250 2.1.5 Recipient OK\r\n".into()
                    }
                    Ok(Err(refusal)) => refusal_reply(refusal),
                    Err(err) => {
                        tracing::error!(error = %err, "smtp recipient check failed");
                        "451 4.3.0 Temporary failure, try again later\r\n".into()
                    }
                }
            }
            Request::Rset => {
                self.reset();
                "250 2.0.0 OK\r\n".into()
            }
            Request::Noop { .. } => "250 2.0.0 OK\r\n".into(),
            Request::Vrfy { .. } => "252 2.5.0 Cannot verify, but will try delivery\r\n".into(),
            Request::Help { .. } => {
                "214 2.0.0 Send mail to <agent-slug>@<this domain>; see /skill.md\r\n".into()
            }
            Request::StartTls => "502 5.5.1 STARTTLS not available\r\n".into(),
            Request::Bdat { .. } => "502 5.5.1 CHUNKING not supported, use DATA\r\n".into(),
            Request::Auth { .. } => {
                "502 5.5.1 AUTH not supported: this is an inbound MX\r\n".into()
            }
            _ => "502 5.5.1 Command not implemented\r\n".into(),
        }
    }

    /// The end of `DATA`: the message is stored (then acknowledged) or refused.
    async fn deliver(&mut self, data: Incoming) -> String {
        let from = self.from.clone().unwrap_or_default();
        let recipients = std::mem::take(&mut self.recipients);
        self.reset();
        if data.too_big {
            return format!(
                "552 5.3.4 Message too big: at most {} bytes\r\n",
                self.config.max_message_bytes
            );
        }
        let mut raw = self.trace_header(&from).into_bytes();
        raw.extend_from_slice(&data.body);
        match self
            .room
            .accept(&from, Some(self.peer.ip()), &recipients, &raw)
            .await
        {
            Ok(ids) => {
                let first = ids.first().map(|id| id.to_string()).unwrap_or_default();
                self.room.spawn(ids);
                format!("250 2.0.0 Queued as {first}\r\n")
            }
            Err(err) => {
                tracing::error!(error = %err, "smtp message not stored");
                "451 4.3.0 Message not stored, try again later\r\n".into()
            }
        }
    }

    /// The `Received:` trace header this hop adds (RFC 5321 §4.4), counted for loop detection.
    fn trace_header(&self, from: &str) -> String {
        let helo: String = self
            .helo
            .as_deref()
            .unwrap_or("unknown")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(100)
            .collect();
        let from: String = from
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(320)
            .collect();
        format!(
            "Received: from {helo} ([{}])\r\n\tby {} with {} (agenthub)\r\n\tenvelope-from <{from}>;\r\n\t{}\r\n",
            self.peer.ip(),
            self.room.mail_domain(),
            if self.tls { "ESMTPS" } else { "ESMTP" },
            chrono::Utc::now().to_rfc2822()
        )
    }
}

fn refusal_reply(refusal: Refusal) -> String {
    let code = match refusal {
        Refusal::Relay => "550 5.7.1",
        Refusal::Unknown => "550 5.1.1",
        Refusal::Disabled => "550 5.2.1",
        Refusal::Maintenance => "450 4.2.1",
        Refusal::RateLimited => "450 4.7.1",
    };
    let mut text = refusal.explain().to_string();
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    format!("{code} {text}\r\n")
}

fn parse_error(err: &ParseError) -> String {
    match err {
        ParseError::UnknownCommand => "500 5.5.1 Command not recognized\r\n".into(),
        ParseError::InvalidSenderAddress => "501 5.1.7 Bad sender address\r\n".into(),
        ParseError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address\r\n".into(),
        ParseError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}\r\n"),
        ParseError::InvalidParameter { param } => {
            format!("501 5.5.4 Invalid parameter {param}\r\n")
        }
        ParseError::UnsupportedParameter { param } => {
            let param: String = param
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(40)
                .collect();
            format!("504 5.5.4 Unsupported parameter {param}\r\n")
        }
        ParseError::ResponseTooLong => "500 5.5.2 Line too long\r\n".into(),
        _ => "500 5.5.2 Syntax error\r\n".into(),
    }
}
