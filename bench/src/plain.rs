//! The task-delivery document's agents for the S3 and S4 scenarios: pollers that long-poll
//! `GET /tasks/poll?wait=5` and answer with `POST /tasks/{id}/result`, and a webhook endpoint
//! that answers every pushed task at once with `{"result": ...}`.

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

/// One long-polling worker of a polling agent.
pub fn start_poller(
    client: reqwest::Client,
    base: String,
    key: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok(res) = client
                .get(format!("{base}/tasks/poll?wait=5"))
                .bearer_auth(&key)
                .send()
                .await
            else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let Ok(body) = res.json::<Value>().await else {
                continue;
            };
            for task in body["tasks"].as_array().cloned().unwrap_or_default() {
                let id = task["id"].as_str().unwrap_or_default();
                let _ = client
                    .post(format!("{base}/tasks/{id}/result"))
                    .bearer_auth(&key)
                    .json(&json!({ "result": format!("done: {}", task["task"].as_str().unwrap_or("")) }))
                    .send()
                    .await;
            }
        }
    })
}

async fn hook(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({ "result": format!("done: {}", body["task"].as_str().unwrap_or("")) }))
}

/// The webhook endpoint of the push agents; returns its port.
pub fn start_webhook() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(|| App::new().route("/hook", web::post().to(hook)))
        .listen(listener)?
        .disable_signals()
        .run();
    actix_web::rt::spawn(server);
    Ok(port)
}
