//! Email edges: the outbound mailer (relay or outbox). The inbound SMTP listener joins later.

pub mod mailer;
