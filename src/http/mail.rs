//! `POST /api/v1/email/inbound`: a raw RFC 5322 message from an MTA or a mail provider, for
//! deployments where the hub's own SMTP listener does not face the internet. Protected by
//! `AGENTHUB_MAIL_INBOUND_SECRET` (as `Authorization: Bearer <secret>`); off when unset.
//!
//! The envelope comes from `?to=` (comma-separated) and `?from=`, or else from the message's
//! `To`/`Cc` addresses at this hub's mail domain and its `Return-Path`/`From`. Each recipient
//! passes the same admission as at SMTP `RCPT TO`; the answer is 202 once the message is
//! stored, with what was accepted and what was refused.

use crate::error::ApiError;
use actix_web::{HttpRequest, HttpResponse, web};
use actors::{
    HubError,
    mail::{Mailroom, inbound::Inbound},
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The routes of this module, for the OpenAPI document (paths relative to `/api/v1`).
#[derive(OpenApi)]
#[openapi(paths(inbound))]
pub struct Api;

/// The configured secret, if the endpoint is on.
pub struct InboundSecret(pub Option<String>);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Envelope {
    /// Comma-separated recipients, `slug@<mail domain>` (default: the message's `To` and `Cc`
    /// addresses at this hub's mail domain).
    to: Option<String>,
    /// The envelope sender (default: `Return-Path`, else `From`).
    from: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct AcceptedRecipient {
    recipient: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct RejectedRecipient {
    recipient: String,
    /// Why, as the SMTP listener would say.
    reason: &'static str,
    /// Whether a later retry may succeed (SMTP 4xx rather than 5xx).
    temporary: bool,
}

/// What became of a posted message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InboundOutcome {
    accepted: Vec<AcceptedRecipient>,
    rejected: Vec<RejectedRecipient>,
    /// One stored message per accepted recipient.
    mail_ids: Vec<uuid::Uuid>,
}

/// Post an inbound email
///
/// For an MTA or a mail provider: the raw RFC 5322 message is the body. Each recipient passes
/// the same admission as at SMTP `RCPT TO`; 202 once the message is stored. Off (404) unless
/// `AGENTHUB_MAIL_INBOUND_SECRET` is set; not rate-limited with the right secret.
#[utoipa::path(
    post,
    path = "/email/inbound",
    operation_id = "inboundEmail",
    tag = "Email",
    params(Envelope),
    security(("inboundSecret" = [])),
    request_body(content = String, content_type = "message/rfc822", description = "The raw message"),
    responses(
        (status = 202, description = "Stored for the accepted recipients", body = InboundOutcome),
        (status = 400, description = "Not a message, no recipient, or every recipient refused"),
        (status = 401, description = "Missing or wrong secret"),
        (status = 404, description = "Inbound mail over HTTP is off on this hub"),
        (status = 413, description = "Larger than `AGENTHUB_MAIL_MAX_BYTES`"),
    )
)]
async fn inbound(
    req: HttpRequest,
    secret: web::Data<InboundSecret>,
    room: web::Data<Mailroom>,
    envelope: web::Query<Envelope>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Some(expected) = secret.0.as_deref() else {
        return Err(HubError::NotFound(
            "Inbound mail over HTTP is off on this hub (AGENTHUB_MAIL_INBOUND_SECRET is unset)"
                .into(),
        )
        .into());
    };
    if !constant_time_eq(bearer(req.headers()).as_bytes(), expected.as_bytes()) {
        return Err(HubError::Unauthorized("Missing or wrong inbound mail secret".into()).into());
    }
    let max = room.settings().max_message_bytes;
    let mut raw = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| HubError::BadRequest(format!("Cannot read the body: {e}")))?;
        if raw.len() + chunk.len() > max {
            return Err(ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("A message may be at most {max} bytes"),
            ));
        }
        raw.extend_from_slice(&chunk);
    }
    // RFC 5322 text never holds NUL (and PostgreSQL could not store it).
    if raw.contains(&0) {
        return Err(HubError::invalid_field("body", "must not contain NUL bytes").into());
    }
    let Some(parsed) = Inbound::parse(&raw).filter(|_| !raw.is_empty()) else {
        return Err(HubError::invalid_field("body", "must be an RFC 5322 message").into());
    };
    let domain = room.mail_domain().to_ascii_lowercase();
    let recipients: Vec<String> = match &envelope.to {
        Some(to) => to
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => header_recipients(&raw, &domain),
    };
    if recipients.is_empty() {
        return Err(HubError::invalid_field(
            "to",
            format!("no recipient at @{domain}: pass ?to=slug@{domain}"),
        )
        .into());
    }
    let sender = envelope
        .from
        .clone()
        .or_else(|| return_path(&raw))
        .or(parsed.from.clone())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut admitted = Vec::new();
    let mut rejected = Vec::new();
    for rcpt in recipients {
        match room.admit(&sender, &rcpt).await? {
            Ok(agent) => admitted.push((rcpt, agent)),
            Err(refusal) => rejected.push(RejectedRecipient {
                recipient: rcpt,
                reason: refusal.explain(),
                temporary: refusal.is_temporary(),
            }),
        }
    }
    if admitted.is_empty() {
        let details = rejected
            .iter()
            .map(|r| actors::FieldError::new("to", format!("{}: {}", r.recipient, r.reason)))
            .collect();
        return Err(HubError::invalid(details).into());
    }
    // No client address: the poster is a relay, not the sender's server, so only DKIM can
    // authenticate such a message (unless a trusted upstream's verdict is used).
    let ids = room.accept(&sender, None, &admitted, &raw).await?;
    let accepted = admitted
        .iter()
        .map(|(rcpt, _)| AcceptedRecipient {
            recipient: rcpt.clone(),
        })
        .collect();
    room.into_inner().spawn(ids.clone());
    Ok(HttpResponse::Accepted().json(InboundOutcome {
        accepted,
        rejected,
        mail_ids: ids,
    }))
}

/// `To` and `Cc` addresses at this hub's mail domain.
fn header_recipients(raw: &[u8], domain: &str) -> Vec<String> {
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    msg.to()
        .into_iter()
        .chain(msg.cc())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .map(str::to_ascii_lowercase)
        .filter(|a| a.ends_with(&format!("@{domain}")))
        .collect()
}

fn return_path(raw: &[u8]) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    msg.return_address().map(str::to_string)
}

/// Whether a request is the configured MTA posting mail (right secret, right path): the rate
/// limit of people and agents does not apply to it (senders are limited per address instead).
pub fn is_trusted_mta(req: &actix_web::dev::ServiceRequest) -> bool {
    req.path() == "/api/v1/email/inbound"
        && req
            .app_data::<web::Data<InboundSecret>>()
            .and_then(|s| s.0.clone())
            .is_some_and(|secret| {
                constant_time_eq(bearer(req.headers()).as_bytes(), secret.as_bytes())
            })
}

fn bearer(headers: &actix_web::http::header::HeaderMap) -> &str {
    crate::auth::extract::bearer_token(headers).unwrap_or_default()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/email/inbound").route(web::post().to(inbound)));
}
