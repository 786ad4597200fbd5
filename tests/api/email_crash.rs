//! A crash right after the SMTP `250` loses nothing: the real binary is killed with SIGKILL
//! once the message is acknowledged, and started again on the same data; the task reaches the
//! agent and the reply goes out, once.

use crate::helpers::fresh_database;
use crate::mail_support::{Sink, send, spec};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// One run of the `agenthub` binary.
struct Hub {
    child: Child,
    base: String,
    smtp: u16,
}

impl Hub {
    async fn start(data: &Path, database: Option<&str>, relay: &str) -> Self {
        let (http, smtp) = (free_port(), free_port());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("hub.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agenthub"));
        cmd.arg("serve")
            .env("AGENTHUB_HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("AGENTHUB_SMTP_ADDR", format!("127.0.0.1:{smtp}"))
            .env("AGENTHUB_SMTP_RELAY", relay)
            .env("AGENTHUB_DATA_DIR", data)
            .env("AGENTHUB_RATE_LIMIT_PER_MIN", "0")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(url) = database {
            cmd.env("DATABASE_URL", url);
        }
        let child = cmd.spawn().expect("start the agenthub binary");
        let base = format!("http://127.0.0.1:{http}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        while client.get(format!("{base}/health")).send().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the hub did not start: see {}",
                data.join("hub.log").display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, base, smtp }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(url: &str, body: Value, token: Option<&str>) -> Value {
    let mut req = reqwest::Client::new().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.expect("json")
}

#[actix_web::test]
async fn a_message_acknowledged_before_a_crash_is_answered_after_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sink = Sink::start().await;
    let data = tempfile::tempdir().unwrap();
    let database = match std::env::var("AGENTHUB_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(fresh_database(&url).await),
        _ => None,
    };
    let relay = sink.relay_url();
    let first = Hub::start(data.path(), database.as_deref(), &relay).await;
    let reg = post(
        &format!("{}/api/v1/auth/register", first.base),
        json!({ "email": "crash@example.com", "username": "crash", "password": "password123" }),
        None,
    )
    .await;
    let token = reg["accessToken"].as_str().unwrap().to_string();
    let created = post(
        &format!("{}/api/v1/agents", first.base),
        json!({ "name": "Survivor", "slug": "survivor", "description": "polls", "deliveryMode": "poll" }),
        Some(&token),
    )
    .await;
    let key = created["apiKey"].as_str().unwrap().to_string();

    let outcome = send(spec(
        first.smtp,
        "sender@example.org",
        &["survivor@mail.localhost"],
        json!({ "subject": "Keep me", "text": "across the crash", "messageId": "<crash-1@example.org>" }),
    ))
    .await;
    assert_eq!(outcome["refused"], json!({}), "{outcome}");
    assert_eq!(outcome["error"], Value::Null, "{outcome}");
    first.kill();

    let second = Hub::start(data.path(), database.as_deref(), &relay).await;
    let client = reqwest::Client::new();
    let mut task = Value::Null;
    for _ in 0..6 {
        let resp = client
            .get(format!("{}/tasks/poll?wait=5", second.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        if let Some(t) = body["tasks"].as_array().and_then(|t| t.first()) {
            task = t.clone();
            break;
        }
    }
    assert_eq!(
        task["task"], "Keep me\n\nacross the crash",
        "the task was lost: {task}"
    );
    let resp = client
        .post(format!(
            "{}/tasks/{}/result",
            second.base,
            task["id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .json(&json!({ "result": "still here" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let replies = sink.wait_for(1, 30).await;
    assert!(
        replies[0].body().contains("still here"),
        "{}",
        replies[0].body()
    );
    assert_eq!(
        replies[0].header("In-Reply-To").as_deref(),
        Some("<crash-1@example.org>")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 1, "one reply, not two");
}
