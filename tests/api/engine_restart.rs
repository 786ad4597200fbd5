//! Restart recovery: a call in flight when the process stops holds a reservation; the next
//! process on the same data settles it (released), so nothing stays reserved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use agenthub::config::Settings;
use agenthub::startup::Application;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::engine_ws::{AgentOpts, MockAgent, assert_echo_request, echo_call, pricing};
use crate::helpers::into_json;

/// One running server process (in this test process) and a client for it.
struct Node {
    address: String,
    port: u16,
    client: reqwest::Client,
    hub: Arc<actors::Hub>,
    handle: ServerHandle,
}

impl Node {
    async fn start(settings: Settings) -> Self {
        let app = Application::build(settings)
            .await
            .expect("failed to build the application");
        let port = app.port();
        let hub = app.hub();
        let handle = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client");
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client,
            hub,
            handle,
        }
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        into_json(req.send().await.expect("request failed")).await
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request failed");
        into_json(resp).await
    }

    async fn register(&self, username: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                &json!({ "email": format!("{username}@example.com"), "username": username,
                         "password": crate::helpers::PASSWORD }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_string()
    }

    async fn agent(&self, token: &str, slug: &str, price: i64) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/agents",
                &json!({ "name": format!("Agent {slug}"), "slug": slug,
                         "connectionMode": "websocket", "pricing": pricing(price) }),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["agent"]["id"].as_str().expect("id").to_string(),
            body["apiKey"].as_str().expect("apiKey").to_string(),
        )
    }

    async fn balance(&self, token: &str) -> (i64, i64) {
        let (status, body) = self.get("/api/v1/billing/balance", token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["balance"].as_i64().expect("balance"),
            body["reserved"].as_i64().expect("reserved"),
        )
    }

    async fn assert_ledger_balanced(&self) {
        let report = actors::ledger::check(&self.hub.db)
            .await
            .expect("ledger check failed to run");
        assert!(
            report.problems.is_empty(),
            "ledger problems: {:?}",
            report.problems
        );
        assert_eq!(
            report.granted,
            report.user_balances + report.user_reserved,
            "granted != balances + reserved"
        );
        assert_eq!(report.user_reserved, 0, "reservations left open");
    }
}

/// The settings `spawn_app` uses, on `data_dir` (a fresh PostgreSQL database when
/// `AGENTHUB_TEST_DATABASE_URL` is set).
async fn settings_on(data_dir: &std::path::Path) -> Settings {
    let mut settings = Settings {
        http_addr: "127.0.0.1:0".into(),
        smtp_addr: "off".into(),
        data_dir: data_dir.to_path_buf(),
        rate_limit_per_min: 0,
        // Long enough that no deadline settles the call during the test.
        call_timeout_secs: 600,
        ..Settings::default()
    };
    if let Ok(url) = std::env::var("AGENTHUB_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        let name = format!("agenthub_t_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&url)
            .await
            .expect("connect to the test database server");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        let mut parsed = url::Url::parse(&url).expect("AGENTHUB_TEST_DATABASE_URL is a URL");
        parsed.set_path(&format!("/{name}"));
        settings.database_url = Some(parsed.to_string());
    }
    settings
}

#[actix_web::test]
async fn restart_releases_the_reservation_of_a_call_in_flight() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_on(dir.path()).await;

    let a = Node::start(settings.clone()).await;
    let payer = a.register("payer").await;
    let owner = a.register("owner").await;
    let (_, caller_key) = a.agent(&payer, "caller", 0).await;
    let (target, target_key) = a.agent(&owner, "mute-agent", 7).await;
    let mut agent = MockAgent::connect_with(a.port, &target_key, AgentOpts::default()).await;

    let client = a.client.clone();
    let url = format!("{}/api/v1/mcp/call", a.address);
    let body = echo_call(&target, "never answered", Some("rid-restart"));
    let key = caller_key.clone();
    let pending =
        tokio::spawn(async move { client.post(url).bearer_auth(key).json(&body).send().await });
    let call = agent.next_call().await;
    assert_echo_request(&call, "never answered");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if a.balance(&payer).await == (9993, 7) {
            break;
        }
        assert!(Instant::now() < deadline, "the price was never reserved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    a.handle.stop(false).await;
    pending.abort();

    let b = Node::start(settings.clone()).await;
    assert_eq!(b.balance(&payer).await, (10000, 0), "payer after restart");
    assert_eq!(b.balance(&owner).await, (10000, 0), "payee after restart");
    let (status, rows) = b.get("/api/v1/billing/transactions", &payer).await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert!(
        rows["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|r| r["type"] != json!("charge")),
        "a charge after restart: {rows}"
    );
    b.assert_ledger_balanced().await;

    // The same requestId on the new process is a fresh attempt (the first was refunded).
    let mut agent_b = MockAgent::connect_with(b.port, &target_key, AgentOpts::default()).await;
    let body = echo_call(&target, "never answered", Some("rid-restart"));
    let ((status, resp), ()) = tokio::join!(
        b.post("/api/v1/mcp/call", &body, Some(&caller_key)),
        async {
            let call = agent_b.next_call().await;
            assert_echo_request(&call, "never answered");
            agent_b.answer_echo(&call);
        }
    );
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["status"], json!("completed"), "{resp}");
    assert_eq!(resp["billing"]["tokensCharged"], json!(7), "{resp}");
    assert_eq!(b.balance(&payer).await, (9993, 0));
    assert_eq!(b.balance(&owner).await, (10007, 0));
    agent_b.disconnect().await;
    drop(agent);
    b.assert_ledger_balanced().await;
    b.handle.stop(false).await;
}
