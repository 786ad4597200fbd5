//! The outbound mailer: through the configured SMTP relay (`AGENTHUB_SMTP_RELAY`), or, when
//! none is configured, as `.eml` files in `data/outbox/`, never dropped. Files are written
//! under a temporary name and renamed, so a reader never sees half a message.

use anyhow::Context;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

pub enum Mailer {
    /// Always `Some` until dropped (see `Drop`).
    Relay(Option<AsyncSmtpTransport<Tokio1Executor>>),
    Outbox(PathBuf),
}

/// lettre's connection pool spawns its shutdown on the Tokio runtime when dropped, and panics
/// when there is none (a process or test tearing down). Outside a runtime the transport is
/// leaked instead: its connections close with the process.
impl Drop for Mailer {
    fn drop(&mut self) {
        if let Self::Relay(transport) = self
            && tokio::runtime::Handle::try_current().is_err()
        {
            std::mem::forget(transport.take());
        }
    }
}

impl Mailer {
    pub fn new(relay: Option<&str>, outbox: PathBuf) -> anyhow::Result<Self> {
        match relay {
            Some(url) => Ok(Self::Relay(Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("invalid AGENTHUB_SMTP_RELAY")?
                    .build(),
            ))),
            None => Ok(Self::Outbox(outbox)),
        }
    }

    pub async fn send(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Self::Relay(transport) => {
                transport
                    .as_ref()
                    .context("the relay transport is gone")?
                    .send(message)
                    .await
                    .context("SMTP relay refused the message")?;
            }
            Self::Outbox(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .context("cannot create the outbox")?;
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
                    uuid::Uuid::new_v4().simple()
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .context("cannot write mail")?;
                tokio::fs::rename(&tmp, dir.join(&name))
                    .await
                    .context("cannot publish mail")?;
            }
        }
        Ok(())
    }
}

/// Masks an address for logs: `jo***@example.com`.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let keep: String = local.chars().take(2).collect();
            format!("{keep}***@{domain}")
        }
        None => "***".into(),
    }
}

#[async_trait::async_trait]
impl actors::mail::MailTransport for Mailer {
    async fn send(&self, message: Message) -> anyhow::Result<()> {
        Mailer::send(self, message).await
    }
}
