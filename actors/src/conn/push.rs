//! Push delivery: the task is POSTed to the agent's webhook as `{task, files, buyer, jobId}`
//! through the safe outbound client. 200 with `{result}` completes the task; 4xx/5xx or a
//! garbled answer fails it (refunded). The deadline is `AGENTHUB_PUSH_TIMEOUT_SECS`. Each POST
//! carries `Idempotency-Key` (the task id) and `X-Agenthub-Job-Id`, so an endpoint recognises a
//! redelivery: a request that failed before the endpoint answered is retried with backoff
//! while the deadline allows.

use crate::conn::{AgentReply, mcp_http::McpHttp};
use reqwest::{
    Method,
    header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue},
};
use serde_json::Value;
use std::{sync::Arc, time::Duration};
use uuid::Uuid;

pub async fn deliver(
    client: Arc<McpHttp>,
    endpoint: String,
    body: Value,
    task_id: Uuid,
    job_id: i64,
    timeout: Duration,
) -> AgentReply {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&task_id.to_string()) {
        headers.insert(HeaderName::from_static("idempotency-key"), v);
    }
    if let Ok(v) = HeaderValue::from_str(&job_id.to_string()) {
        headers.insert(HeaderName::from_static("x-agenthub-job-id"), v);
    }
    let payload = body.to_string().into_bytes();
    let mut backoff = Duration::from_millis(250);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let sent = client
            .outbound()
            .send(
                Method::POST,
                &endpoint,
                headers.clone(),
                Some(payload.clone()),
                left,
            )
            .await;
        match sent {
            Ok(answer) if answer.status.is_success() => {
                return match serde_json::from_slice::<Value>(&answer.body) {
                    Ok(v) if v.get("result").is_some() => {
                        AgentReply::Result(v.get("result").cloned().unwrap_or(Value::Null))
                    }
                    _ => AgentReply::Error(
                        "the webhook answered 200 without a JSON {\"result\": ...}".into(),
                    ),
                };
            }
            Ok(answer) => {
                let detail = String::from_utf8_lossy(&answer.body)
                    .chars()
                    .take(200)
                    .collect::<String>();
                return AgentReply::Error(format!(
                    "the webhook answered HTTP {}{}",
                    answer.status.as_u16(),
                    if detail.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", detail.trim())
                    }
                ));
            }
            Err(crate::outbound::OutboundError::Request(e))
                if !e.contains("timed out") && tokio::time::Instant::now() + backoff < deadline =>
            {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => return AgentReply::Error(format!("push delivery failed: {e}")),
        }
    }
}
