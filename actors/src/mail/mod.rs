//! Email: anyone can send a task to an agent at `slug@<mail domain>`; the result goes back as
//! a reply. The SMTP listener and the HTTP inbound endpoint (edges) only move bytes: every rule
//! lives here.
//!
//! The life of a message:
//! 1. [`Mailroom::admit`] at `RCPT TO`: only `slug@<mail domain>` of an agent that may take this
//!    sender's mail (private agents: the owner's address only), within the per-sender limit.
//!    So the hub is never an open relay and accepts nothing it cannot deliver.
//! 2. [`Mailroom::accept`] after `DATA`: the raw message is stored, one row per recipient agent,
//!    in one transaction, *before* the `250`. A crash after that loses nothing: start-up
//!    ([`Mailroom::recover`]) resumes every unfinished row.
//! 3. [`Mailroom::process`]: automatic mail (RFC 3834 and friends) and mail from this hub's own
//!    domain are recorded and never answered, which also stops two agents from mailing each
//!    other in a loop. Otherwise the message becomes a `task` call through the gateway, over
//!    the agent's own channel, paid by the rules of ARCHITECTURE.md ("Who pays for email"),
//!    with the `requestId` `email:<row id>`, so resuming after a crash never charges twice.
//! 4. The reply (result, failure, timeout or an explanation) goes out through the
//!    [`MailTransport`] and the row is closed.

pub mod dkim;
pub mod dns;
pub mod inbound;
pub mod policy;
pub mod reply;
pub mod sender;
pub mod spf;

use crate::{
    Hub, audit,
    error::{HubError, HubResult},
    gateway::{self, CallRequest},
};
use entities::{agents, mail_messages, users};
use inbound::Inbound;
use policy::SenderLimit;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde_json::json;
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use uuid::Uuid;

/// Sends a finished message: the SMTP relay, or the outbox directory. Implemented by the edge.
#[async_trait::async_trait]
pub trait MailTransport: Send + Sync {
    async fn send(&self, message: lettre::Message) -> anyhow::Result<()>;
}

/// Settings of the mail rules.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// This deployment's base URL, for "how to pay" explanations.
    pub public_url: String,
    /// authserv-id of the upstream MTA whose `Authentication-Results` are trusted.
    pub trusted_authserv: Option<String>,
    /// Largest accepted message, in bytes (the SMTP `SIZE`).
    pub max_message_bytes: usize,
    /// Messages an hour one sender may send; 0: no limit.
    pub per_sender_per_hour: u32,
    /// The DNS server the hub's own SPF and DKIM checks ask (`AGENTHUB_MAIL_DNS`); `None`: the
    /// system resolver.
    pub dns_server: Option<SocketAddr>,
}

/// Why a recipient is refused at `RCPT TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not this hub's mail domain: the hub relays nothing.
    Relay,
    /// No agent of that name may take this sender's mail (unknown, or private to another).
    Unknown,
    /// The agent exists but takes no work (`inactive`).
    Disabled,
    /// The agent is in maintenance: try again later.
    Maintenance,
    /// Too many messages from this sender: try again later.
    RateLimited,
}

impl Refusal {
    /// Whether the sender should retry later (SMTP 4xx) rather than give up (5xx).
    pub fn is_temporary(self) -> bool {
        matches!(self, Refusal::Maintenance | Refusal::RateLimited)
    }

    pub fn explain(self) -> &'static str {
        match self {
            Refusal::Relay => "relaying denied: this hub only takes mail for its agents",
            Refusal::Unknown => "no such agent here",
            Refusal::Disabled => "this agent takes no tasks",
            Refusal::Maintenance => "this agent is in maintenance, try again later",
            Refusal::RateLimited => "too many messages from this sender, try again later",
        }
    }
}

/// Every message accepted but not yet answered; the edges hand messages here.
pub struct Mailroom {
    hub: Arc<Hub>,
    transport: Arc<dyn MailTransport>,
    settings: MailSettings,
    senders: SenderLimit,
    /// For the hub's own sender checks (SPF, DKIM keys).
    dns: Arc<dyn dns::Dns>,
}

/// Messages seen through this many relays are looping somewhere.
const MAX_HOPS: usize = 30;

impl Mailroom {
    pub fn new(
        hub: Arc<Hub>,
        transport: Arc<dyn MailTransport>,
        settings: MailSettings,
    ) -> Arc<Self> {
        let senders = SenderLimit::new(settings.per_sender_per_hour);
        // A resolver that cannot be built (no system configuration) must not stop the hub:
        // its own checks then pass nobody, and paid agents explain how to pay.
        let dns: Arc<dyn dns::Dns> = match dns::Resolver::new(settings.dns_server) {
            Ok(resolver) => Arc::new(resolver),
            Err(err) => {
                tracing::warn!(error = %err, "no DNS resolver: the hub's own SPF/DKIM checks pass nobody");
                Arc::new(dns::NoDns)
            }
        };
        Arc::new(Self {
            hub,
            transport,
            settings,
            senders,
            dns,
        })
    }

    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    pub fn mail_domain(&self) -> &str {
        &self.hub.config.mail_domain
    }

    /// Decides a `RCPT TO`: the agent it names, or why not. `sender` is the envelope sender
    /// (empty for the null return path).
    pub async fn admit(
        &self,
        sender: &str,
        recipient: &str,
    ) -> HubResult<Result<agents::Model, Refusal>> {
        let recipient = recipient.trim().to_ascii_lowercase();
        let Some((local, domain)) = recipient.rsplit_once('@') else {
            return Ok(Err(Refusal::Unknown));
        };
        if !domain.eq_ignore_ascii_case(self.mail_domain()) {
            return Ok(Err(Refusal::Relay));
        }
        // Sub-addressing: `slug+anything@domain` reaches `slug`.
        let slug = local.split('+').next().unwrap_or_default();
        let Some(agent) = agents::Entity::find()
            .filter(agents::Column::Slug.eq(slug))
            .one(&self.hub.db)
            .await?
        else {
            return Ok(Err(Refusal::Unknown));
        };
        if agent.visibility == "private" {
            let owner = users::Entity::find_by_id(agent.owner_id)
                .one(&self.hub.db)
                .await?;
            if owner.is_none_or(|o| !o.email.eq_ignore_ascii_case(sender)) {
                return Ok(Err(Refusal::Unknown));
            }
        }
        match agent.status.as_str() {
            "active" => {}
            "maintenance" => return Ok(Err(Refusal::Maintenance)),
            _ => return Ok(Err(Refusal::Disabled)),
        }
        if !sender.is_empty() && !self.senders.take(sender, self.hub.env.now()) {
            return Ok(Err(Refusal::RateLimited));
        }
        Ok(Ok(agent))
    }

    /// Stores a message for each admitted recipient agent, durably, before it is acknowledged.
    /// A message already stored for an agent (same `Message-ID`, resent because an earlier
    /// acknowledgement was lost) is not stored twice. `client_ip` is the SMTP client's address
    /// (kept for the SPF check; `None` over HTTP). Returns the rows to process.
    pub async fn accept(
        &self,
        sender: &str,
        client_ip: Option<IpAddr>,
        recipients: &[(String, agents::Model)],
        raw: &[u8],
    ) -> HubResult<Vec<Uuid>> {
        let parsed = Inbound::parse(raw);
        let message_id = parsed
            .as_ref()
            .and_then(|m| m.message_id.as_deref().map(crate::task::scrub_text));
        let subject = parsed.as_ref().map(|m| crate::task::scrub_text(&m.subject));
        let now = self.hub.env.now();
        let sender = sender.trim().to_ascii_lowercase();
        let txn = crate::db::begin_write(&self.hub.db).await?;
        let mut ids = Vec::new();
        for (recipient, agent) in recipients {
            if ids.iter().any(|(_, a)| *a == agent.id) {
                continue;
            }
            if let Some(mid) = &message_id
                && mail_messages::Entity::find()
                    .filter(mail_messages::Column::AgentId.eq(agent.id))
                    .filter(mail_messages::Column::MessageId.eq(mid.as_str()))
                    .one(&txn)
                    .await?
                    .is_some()
            {
                continue;
            }
            let id = self.hub.env.new_id();
            mail_messages::ActiveModel {
                id: Set(id),
                agent_id: Set(agent.id),
                recipient: Set(recipient.to_ascii_lowercase()),
                sender: Set(sender.clone()),
                client_ip: Set(client_ip.map(|ip| ip.to_canonical().to_string())),
                message_id: Set(message_id.clone()),
                subject: Set(subject.clone()),
                raw: Set(raw.to_vec()),
                status: Set("received".into()),
                note: Set(None),
                task_id: Set(None),
                reply_message_id: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?;
            audit::record(
                &self.hub,
                &txn,
                &audit::Origin::default(),
                audit::Event::new(agent.owner_id, "email.received")
                    .target("agent", agent.id)
                    .details(json!({
                        "mailId": id,
                        "from": sender,
                        "to": recipient,
                        "subject": subject,
                        "messageId": message_id,
                    })),
            )
            .await?;
            ids.push((id, agent.id));
        }
        txn.commit().await?;
        Ok(ids.into_iter().map(|(id, _)| id).collect())
    }

    /// Processes stored messages in the background, each to its reply.
    pub fn spawn(self: &Arc<Self>, ids: Vec<Uuid>) {
        for id in ids {
            let room = self.clone();
            actix::spawn(async move {
                for attempt in 0..5u32 {
                    match room.process(id).await {
                        Ok(()) => return,
                        Err(err) => {
                            tracing::warn!(mail = %id, attempt, error = %err, "mail processing failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                        }
                    }
                }
                tracing::error!(mail = %id, "mail left unprocessed; it resumes at the next start");
            });
        }
    }

    /// Resumes every accepted message that was not finished when the last process stopped.
    /// Runs after the engine has settled the calls that process left open.
    pub async fn recover(self: &Arc<Self>) -> HubResult<usize> {
        let open: Vec<Uuid> = mail_messages::Entity::find()
            .filter(mail_messages::Column::Status.is_in(["received", "dispatched"]))
            .all(&self.hub.db)
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect();
        let n = open.len();
        if n > 0 {
            tracing::info!(messages = n, "resuming accepted mail");
        }
        self.spawn(open);
        Ok(n)
    }

    /// Takes one stored message to its end: ignored, or answered.
    pub async fn process(&self, id: Uuid) -> HubResult<()> {
        let Some(row) = mail_messages::Entity::find_by_id(id)
            .one(&self.hub.db)
            .await?
        else {
            return Ok(());
        };
        if !["received", "dispatched"].contains(&row.status.as_str()) {
            return Ok(());
        }
        let Some(agent) = agents::Entity::find_by_id(row.agent_id)
            .one(&self.hub.db)
            .await?
        else {
            return Ok(());
        };
        let Some(msg) = Inbound::parse(&row.raw) else {
            return self.ignore(&row, &agent, "not a readable message").await;
        };
        let reply_to = msg.reply_to.clone().unwrap_or_else(|| row.sender.clone());
        if policy::is_daemon(&row.sender) || policy::is_daemon(&reply_to) {
            return self
                .ignore(
                    &row,
                    &agent,
                    "sent by a mail system (null sender or mailer-daemon)",
                )
                .await;
        }
        if let Some(why) = &msg.automatic {
            return self
                .ignore(&row, &agent, &format!("automatic mail ({why})"))
                .await;
        }
        if msg.hops > MAX_HOPS {
            return self.ignore(&row, &agent, "mail loop (too many hops)").await;
        }
        if policy::domain_of(&reply_to).as_deref() == Some(self.mail_domain())
            || policy::domain_of(&row.sender).as_deref() == Some(self.mail_domain())
        {
            return self
                .ignore(&row, &agent, "sent from this hub's own mail domain")
                .await;
        }
        if !takes_tasks(&agent) {
            let body = format!(
                "{} does not take tasks by email: it has no \"task\" tool. \
                 See {}/marketplace/{} for how to call it.\n",
                agent.name, self.settings.public_url, agent.slug
            );
            return self
                .answer(
                    &row,
                    &agent,
                    &msg,
                    &reply_to,
                    body,
                    "refused: no task tool",
                    None,
                )
                .await;
        }
        if msg.attachment_bytes() > gateway::MAX_FILES_BYTES {
            let body = format!(
                "Your attachments total {} bytes; a task's files may total at most {} bytes. \
                 Nothing was run and nothing was charged.\n",
                msg.attachment_bytes(),
                gateway::MAX_FILES_BYTES
            );
            return self
                .answer(
                    &row,
                    &agent,
                    &msg,
                    &reply_to,
                    body,
                    "refused: files too large",
                    None,
                )
                .await;
        }
        let from = msg.from.clone().unwrap_or_else(|| row.sender.clone());
        let payer = match self.payer(&agent, &row, &msg, &from).await? {
            Ok(payer) => payer,
            Err(body) => {
                return self
                    .answer(
                        &row,
                        &agent,
                        &msg,
                        &reply_to,
                        body,
                        "refused: payment",
                        None,
                    )
                    .await;
            }
        };
        let request = CallRequest {
            payer_id: payer,
            caller_agent_id: None,
            buyer: from,
            target: Some(agent.id.to_string()),
            tool_name: Some("task".into()),
            arguments: Some(msg.task_arguments()),
            request_id: Some(format!("email:{}", row.id)),
            max_cost: None,
            source: "email",
            billed: true,
            wait: true,
        };
        match gateway::call(&self.hub, request).await {
            Ok(task) => {
                let body = reply::task_body(&task, &agent, self.hub.config.call_timeout.as_secs());
                let note = format!("task {} {}", task.job_id, task.status);
                self.answer(&row, &agent, &msg, &reply_to, body, &note, Some(task.id))
                    .await
            }
            Err(HubError::Internal(err)) => Err(HubError::Internal(err)),
            Err(err) => {
                let body = format!("Your task was not run: {err}. Nothing was charged.\n");
                let note = format!("refused: {err}");
                self.answer(&row, &agent, &msg, &reply_to, body, &note, None)
                    .await
            }
        }
    }

    /// Who pays for a task by email: nobody for free agents (the owner's account carries the
    /// zero-price task); for paid agents, the registered user whose account address sent the
    /// message, if the message passed authentication: the trusted upstream's verdict when one
    /// is configured, else the hub's own SPF/DKIM check ([`sender`]). Otherwise the reply
    /// explains how to pay, and nothing runs.
    async fn payer(
        &self,
        agent: &agents::Model,
        row: &mail_messages::Model,
        msg: &Inbound,
        from: &str,
    ) -> HubResult<Result<Uuid, String>> {
        if agent.price_per_call == 0 {
            return Ok(Ok(agent.owner_id));
        }
        let user = users::Entity::find()
            .filter(users::Column::Email.eq(from.to_ascii_lowercase()))
            .one(&self.hub.db)
            .await?;
        // No account, nothing to charge: spare the DNS queries.
        let authenticated = user.is_some() && self.authenticated(row, msg, from).await;
        match user {
            Some(user) if authenticated => Ok(Ok(user.id)),
            _ => Ok(Err(format!(
                "{name} charges {price} tokens per task. To pay by email, register at {url} \
                 with this address ({from}) and write from a mail server that signs its mail \
                 (DKIM) or is listed in your domain's SPF record; the tokens are taken from \
                 your account. You can also call the agent with your API key:\n\n\
                 curl -X POST {url}/api/v1/tasks -H \"Authorization: Bearer <your API key>\" \
                 -H \"Content-Type: application/json\" \
                 -d '{{\"agent\": \"{slug}\", \"task\": \"...\"}}'\n\n\
                 Nothing was run and nothing was charged.\n",
                name = agent.name,
                price = agent.price_per_call,
                url = self.settings.public_url,
                slug = agent.slug,
            ))),
        }
    }

    /// Whether the message comes from its `From` domain: by the trusted upstream's
    /// `Authentication-Results` when `AGENTHUB_MAIL_TRUSTED_AUTHSERV` is set (the hub then
    /// checks nothing itself: the upstream saw the real client), else by SPF/DKIM.
    async fn authenticated(&self, row: &mail_messages::Model, msg: &Inbound, from: &str) -> bool {
        if let Some(trusted) = self.settings.trusted_authserv.as_deref() {
            return policy::authenticated(&msg.authentication_results, Some(trusted), from);
        }
        let evidence = sender::Evidence {
            raw: &row.raw,
            message: msg,
            from,
            envelope_sender: &row.sender,
            client_ip: row.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
            now: self.hub.env.now().timestamp(),
            recipient: &row.recipient,
        };
        match sender::authenticate(self.dns.as_ref(), &evidence).await {
            Ok(how) => {
                tracing::info!(mail = %row.id, %how, "sender authenticated");
                true
            }
            Err(why) => {
                tracing::info!(mail = %row.id, %why, "sender not authenticated");
                false
            }
        }
    }

    async fn ignore(
        &self,
        row: &mail_messages::Model,
        agent: &agents::Model,
        why: &str,
    ) -> HubResult<()> {
        tracing::info!(mail = %row.id, reason = why, "mail not answered");
        let mut m = row.clone().into_active_model();
        m.status = Set("ignored".into());
        m.note = Set(Some(why.to_string()));
        self.close(
            m,
            audit::Event::new(agent.owner_id, "email.ignored")
                .target("agent", agent.id)
                .details(json!({ "mailId": row.id, "from": row.sender, "reason": why })),
        )
        .await
    }

    /// Stores a message's final state and its audit event, in one transaction.
    async fn close(
        &self,
        mut row: mail_messages::ActiveModel,
        event: audit::Event<'_>,
    ) -> HubResult<()> {
        row.updated_at = Set(self.hub.env.now());
        let txn = crate::db::begin_write(&self.hub.db).await?;
        row.update(&txn).await?;
        audit::record(&self.hub, &txn, &audit::Origin::default(), event).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Sends a reply and closes the row.
    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &self,
        row: &mail_messages::Model,
        agent: &agents::Model,
        msg: &Inbound,
        to: &str,
        body: String,
        note: &str,
        task_id: Option<Uuid>,
    ) -> HubResult<()> {
        let message_id = format!("{}@{}", self.hub.env.new_id().simple(), self.mail_domain());
        let reply = reply::Reply {
            agent,
            mail_domain: self.mail_domain(),
            to,
            original: msg,
            body,
            message_id: message_id.clone(),
        };
        let (status, note) = match reply.build() {
            Ok(message) => match self.send(message).await {
                Ok(()) => ("replied", note.to_string()),
                Err(err) => ("failed", format!("{note}; reply not sent: {err:#}")),
            },
            Err(err) => ("failed", format!("{note}; reply not built: {err:#}")),
        };
        let mut m = row.clone().into_active_model();
        m.status = Set(status.into());
        m.note = Set(Some(note.clone()));
        m.task_id = Set(task_id);
        m.reply_message_id = Set((status == "replied").then_some(message_id));
        let action = if status == "replied" {
            "email.replied"
        } else {
            "email.reply_failed"
        };
        self.close(
            m,
            audit::Event::new(agent.owner_id, action)
                .target("agent", agent.id)
                .details(json!({ "mailId": row.id, "to": to, "taskId": task_id, "outcome": note })),
        )
        .await
    }

    /// Hands a reply to the transport, retrying a refusing relay with backoff.
    async fn send(&self, message: lettre::Message) -> anyhow::Result<()> {
        let mut last = None;
        for attempt in 0..3u32 {
            match self.transport.send(message.clone()).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    tracing::warn!(attempt, error = %err, "reply not sent");
                    last = Some(err);
                    tokio::time::sleep(Duration::from_millis(300 << attempt)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("reply not sent")))
    }
}

/// Whether an agent takes mail: plain-mode agents always (their only tool is `task`), MCP
/// agents when they declare a tool named `task`.
pub fn takes_tasks(agent: &agents::Model) -> bool {
    agent.delivery_mode.is_some()
        || agent
            .tools
            .as_ref()
            .and_then(|t| t.as_array())
            .is_some_and(|tools| {
                tools
                    .iter()
                    .any(|t| t.get("name").and_then(|n| n.as_str()) == Some("task"))
            })
}
