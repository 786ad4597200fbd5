//! A simulated agent: the marketplace document's reverse WebSocket, answering every
//! `tool_call_request` at once with the echo result (and `ping` with `pong`).

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// Connects an envelope agent to `ws_url` with its key; returns once the hub said
/// `agent_connected` (or, for a hub that does not say it, once the socket is open).
pub async fn start(ws_url: &str, key: &str) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut req = ws_url.into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let (mut tx, mut rx) = ws.split();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        while let Some(Ok(msg)) = rx.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let reply = match frame["type"].as_str() {
                Some("agent_connected") => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                    continue;
                }
                Some("ping") => {
                    json!({ "type": "pong", "requestId": frame["requestId"], "timestamp": "", "payload": {} })
                }
                Some("tool_call_request") => {
                    let message = frame["payload"]["arguments"]["message"]
                        .as_str()
                        .unwrap_or("");
                    json!({
                        "type": "tool_call_response",
                        "requestId": frame["requestId"],
                        "timestamp": "",
                        "payload": { "result": { "content": [{ "type": "text", "text": format!("Echo: {message}") }] } }
                    })
                }
                Some("tools_list_request") => json!({
                    "type": "tools_list_response",
                    "requestId": frame["requestId"],
                    "timestamp": "",
                    "payload": { "tools": [{ "name": "echo", "description": "echo", "inputSchema": { "type": "object" } }] }
                }),
                _ => continue,
            };
            if tx.send(Message::text(reply.to_string())).await.is_err() {
                return;
            }
        }
    });
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), ready_rx).await;
    Ok(handle)
}
