//! Replies: built with lettre, threaded under the message they answer (`Re: <subject>`,
//! `In-Reply-To`, `References`), marked `Auto-Submitted: auto-replied` (RFC 3834) so that no
//! well-behaved responder, including this hub, answers them in turn.

use super::inbound::Inbound;
use entities::{agents, tasks};
use lettre::{
    Message,
    message::{
        Mailbox,
        header::{ContentType, HeaderName, HeaderValue},
    },
};
use serde_json::Value;

/// What a reply says.
pub struct Reply<'a> {
    pub agent: &'a agents::Model,
    pub mail_domain: &'a str,
    pub to: &'a str,
    pub original: &'a Inbound,
    pub body: String,
    /// The new message's id, without angle brackets.
    pub message_id: String,
}

impl Reply<'_> {
    pub fn build(&self) -> anyhow::Result<Message> {
        let from_addr = format!("{}@{}", self.agent.slug, self.mail_domain);
        let from = Mailbox::new(Some(self.agent.name.clone()), from_addr.parse()?);
        let subject = if self.original.subject.is_empty() {
            "Re: your task".to_string()
        } else if self
            .original
            .subject
            .to_ascii_lowercase()
            .starts_with("re:")
        {
            self.original.subject.clone()
        } else {
            format!("Re: {}", self.original.subject)
        };
        let mut builder = Message::builder()
            .from(from)
            .to(self.to.parse()?)
            .subject(subject)
            .message_id(Some(format!("<{}>", self.message_id)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-replied".into(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                "All".into(),
            ));
        if let Some(id) = &self.original.message_id {
            builder = builder.in_reply_to(format!("<{id}>"));
        }
        if !self.original.references.is_empty() {
            let refs: Vec<String> = self
                .original
                .references
                .iter()
                .map(|r| format!("<{r}>"))
                .collect();
            builder = builder.references(refs.join(" "));
        }
        Ok(builder
            .header(ContentType::TEXT_PLAIN)
            .body(self.body.clone())?)
    }
}

/// The text of a task's result: a string as is, MCP content as its text parts, anything else
/// as pretty JSON.
pub fn result_text(result: Option<&Value>) -> String {
    match result {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            if let Some(items) = v.get("content").and_then(Value::as_array) {
                let texts: Vec<&str> = items
                    .iter()
                    .filter_map(|i| i.get("text").and_then(Value::as_str))
                    .collect();
                if !texts.is_empty() {
                    return texts.join("\n\n");
                }
            }
            serde_json::to_string_pretty(v).unwrap_or_default()
        }
    }
}

/// The body answering a settled task.
pub fn task_body(task: &tasks::Model, agent: &agents::Model, timeout_secs: u64) -> String {
    let footer = |charged: i64| {
        let cost = if charged > 0 {
            format!("{charged} tokens were charged.")
        } else {
            "Nothing was charged.".to_string()
        };
        format!(
            "\n\n-- \n{} ({}), via agenthub. Job {}. {cost}\n",
            agent.name, agent.slug, task.job_id
        )
    };
    match task.status.as_str() {
        "completed" => {
            let charged = task.price;
            format!("{}{}", result_text(task.result.as_ref()), footer(charged))
        }
        "timeout" => format!(
            "{} did not answer your task within {timeout_secs} seconds, so it was cancelled.{}",
            agent.name,
            footer(0)
        ),
        _ => format!(
            "{} could not complete your task: {}{}",
            agent.name,
            task.error
                .as_deref()
                .unwrap_or("the agent reported an error"),
            footer(0)
        ),
    }
}
