//! An inbound message, read with mail-parser: what the mail rules and the task need of it.
//!
//! The task is the subject, a blank line, then the text (the plain part, or the HTML part
//! converted to text by mail-parser when there is none); attachments become the task's `files` (base64).
//! mail-parser decodes every transfer encoding and character set, so the agent always gets
//! UTF-8 text.

use base64::Engine;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use serde_json::{Value, json};

/// One attachment, decoded.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub mime_type: String,
    pub content: Vec<u8>,
}

/// What the hub reads from a message.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// The header `From` address, lower-cased.
    pub from: Option<String>,
    /// Where a reply goes: `Reply-To`, else `From`.
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// `References` then `Message-ID`, for the reply's `References`.
    pub references: Vec<String>,
    /// Set when a header marks the message as sent by a machine (see [`Inbound::automatic`]).
    pub automatic: Option<String>,
    /// Number of `Received` headers: a hop count, for loop detection.
    pub hops: usize,
    /// Every `Authentication-Results` header, raw.
    pub authentication_results: Vec<String>,
    /// Number of `From` fields: exactly one, or the sender checks refuse the message.
    pub from_fields: usize,
    /// Every address in `To` and `Cc`, lower-cased.
    pub addressed_to: Vec<String>,
}

impl Inbound {
    /// Parses a raw RFC 5322 message. `None` when it is not a message at all.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let msg = MessageParser::default().parse(raw)?;
        let address = |a: Option<&mail_parser::Address<'_>>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(|a| a.trim().to_lowercase())
        };
        let message_id = msg.message_id().map(str::to_string);
        let mut references: Vec<String> = text_list(msg.references());
        if let Some(id) = &message_id {
            references.push(id.clone());
        }
        // The plain part, or mail-parser's text rendering of the HTML part when there is none;
        // non-breaking spaces (`&nbsp;`) become plain ones.
        let text = msg
            .body_text(0)
            .map(|t| t.replace('\u{a0}', " "))
            .unwrap_or_default();
        let attachments = msg
            .attachments()
            .enumerate()
            .map(|(i, part)| Attachment {
                name: part
                    .attachment_name()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("attachment-{}", i + 1)),
                mime_type: part
                    .content_type()
                    .map(|ct| match ct.subtype() {
                        Some(sub) => format!("{}/{}", ct.ctype(), sub),
                        None => ct.ctype().to_string(),
                    })
                    .unwrap_or_else(|| "application/octet-stream".into()),
                content: part.contents().to_vec(),
            })
            .collect();
        let raw_header = |name: &str| {
            msg.headers_raw()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .collect::<Vec<_>>()
        };
        let from = address(msg.from());
        let addressed_to = [msg.to(), msg.cc()]
            .into_iter()
            .flatten()
            .flat_map(|list| list.iter())
            .filter_map(|a| a.address())
            .map(|a| a.trim().to_lowercase())
            .collect();
        Some(Self {
            message_id,
            reply_to: address(msg.reply_to()).or_else(|| from.clone()),
            from,
            subject: msg.subject().unwrap_or_default().trim().to_string(),
            text: text.trim_end().to_string(),
            attachments,
            references,
            automatic: automatic(&raw_header),
            hops: raw_header("Received").len(),
            authentication_results: raw_header("Authentication-Results"),
            from_fields: raw_header("From").len(),
            addressed_to,
        })
    }

    /// The task text: the subject, a blank line, then the text.
    pub fn task_text(&self) -> String {
        match (self.subject.is_empty(), self.text.trim().is_empty()) {
            (false, false) => format!("{}\n\n{}", self.subject, self.text),
            (false, true) => self.subject.clone(),
            (true, _) => self.text.clone(),
        }
    }

    /// The `task` tool's arguments.
    pub fn task_arguments(&self) -> Value {
        let files: Vec<Value> = self
            .attachments
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "mimeType": a.mime_type,
                    "content": base64::engine::general_purpose::STANDARD.encode(&a.content),
                })
            })
            .collect();
        json!({ "task": self.task_text(), "files": files })
    }

    /// Total decoded size of the attachments.
    pub fn attachment_bytes(&self) -> usize {
        self.attachments.iter().map(|a| a.content.len()).sum()
    }
}

fn text_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Why a message is automatic mail that must never be answered (RFC 3834), if it is.
fn automatic(header: &dyn Fn(&str) -> Vec<String>) -> Option<String> {
    if let Some(v) = header("Auto-Submitted").first()
        && !v.eq_ignore_ascii_case("no")
    {
        return Some(format!("Auto-Submitted: {v}"));
    }
    if let Some(v) = header("Precedence").first() {
        let v = v.to_ascii_lowercase();
        if ["bulk", "list", "junk"].contains(&v.as_str()) {
            return Some(format!("Precedence: {v}"));
        }
    }
    if !header("List-Id").is_empty() {
        return Some("List-Id".into());
    }
    // Other autoresponders' conventions.
    if !header("X-Autoreply").is_empty() || !header("X-Autorespond").is_empty() {
        return Some("X-Autoreply".into());
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn automatic_mail_is_recognised() {
        let raw = b"From: a@example.com\r\nTo: b@mail.localhost\r\nAuto-Submitted: auto-replied\r\nSubject: x\r\n\r\nbody\r\n";
        assert!(Inbound::parse(raw).unwrap().automatic.is_some());
        let raw = b"From: a@example.com\r\nTo: b@mail.localhost\r\nAuto-Submitted: no\r\nSubject: x\r\n\r\nbody\r\n";
        assert!(Inbound::parse(raw).unwrap().automatic.is_none());
    }

    #[test]
    fn task_is_subject_blank_line_text() {
        let raw = b"From: A <A@Example.com>\r\nMessage-ID: <m1@example.com>\r\nSubject: Translate\r\n\r\nbonjour\r\n";
        let m = Inbound::parse(raw).unwrap();
        assert_eq!(m.task_text(), "Translate\n\nbonjour");
        assert_eq!(m.from.as_deref(), Some("a@example.com"));
        assert_eq!(m.message_id.as_deref(), Some("m1@example.com"));
    }
}
