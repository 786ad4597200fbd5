//! Email edges: the inbound SMTP listener and the outbound mailer (relay or outbox). The rules
//! of what mail does live in `actors::mail`.

pub mod mailer;
pub mod smtp;
pub mod tls;
