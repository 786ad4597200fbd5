//! Restart with tasks in every state: queued for a poller, leased by a poller, dispatched on a
//! plain stream, in flight to a push endpoint, and completed. The next process on the same data
//! settles everything open (failed, refunded) and keeps what was settled.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use agenthub::config::Settings;
use agenthub::startup::Application;
use futures_util::StreamExt;
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{PASSWORD, into_json};

const START: i64 = 10_000;

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

    async fn post(&self, path: &str, body: &Value, token: &str) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request failed");
        into_json(resp).await
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
        let resp = self
            .client
            .post(format!("{}/api/v1/auth/register", self.address))
            .json(
                &json!({ "email": format!("{username}@example.com"), "username": username,
                           "password": PASSWORD }),
            )
            .send()
            .await
            .expect("request failed");
        let (status, body) = into_json(resp).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["accessToken"].as_str().unwrap().to_string()
    }

    /// A plain-mode agent; returns (id, API token).
    async fn agent(
        &self,
        owner: &str,
        slug: &str,
        mode: &str,
        price: i64,
        endpoint: Option<&str>,
    ) -> (String, String) {
        let mut body = json!({ "name": format!("Agent {slug}"), "slug": slug,
            "deliveryMode": mode, "pricing": { "model": "per-call", "pricePerCall": price } });
        if let Some(e) = endpoint {
            body["endpoint"] = json!(e);
        }
        let (status, resp) = self.post("/api/v1/agents", &body, owner).await;
        assert_eq!(status, StatusCode::CREATED, "{resp}");
        (
            resp["agent"]["id"].as_str().unwrap().to_string(),
            resp["apiKey"].as_str().unwrap().to_string(),
        )
    }

    async fn task(&self, buyer: &str, agent: &str, task: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/tasks",
                &json!({ "agent": agent, "task": task }),
                buyer,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn status(&self, buyer: &str, id: &Value) -> Value {
        let (status, body) = self
            .get(&format!("/api/v1/tasks/{}", id.as_str().unwrap()), buyer)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn balance(&self, token: &str) -> (i64, i64) {
        let (status, body) = self.get("/api/v1/billing/balance", token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["balance"].as_i64().unwrap(),
            body["reserved"].as_i64().unwrap(),
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

async fn settings_on(data_dir: &std::path::Path) -> Settings {
    let mut settings = Settings {
        http_addr: "127.0.0.1:0".into(),
        smtp_addr: "off".into(),
        data_dir: data_dir.to_path_buf(),
        rate_limit_per_min: 0,
        allow_private_urls: true,
        // Long enough that no deadline settles anything during the test.
        call_timeout_secs: 600,
        push_timeout_secs: 120,
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

/// A push endpoint that holds every request for a minute; returns its URL and a counter.
fn start_stalling_endpoint() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let shared = hits.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let hits = hits.clone();
        App::new().default_service(web::post().to(move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(60)).await;
                HttpResponse::Ok().json(json!({ "result": "far too late" }))
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .disable_signals()
    .run();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}/"), shared)
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn restart_settles_every_open_task_and_keeps_settled_ones() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_on(dir.path()).await;
    let (endpoint, hits) = start_stalling_endpoint();

    let a = Node::start(settings.clone()).await;
    let owner = a.register("rsowner").await;
    let buyer = a.register("rsbuyer").await;
    let (_, poll_token) = a.agent(&owner, "rs-poll", "poll", 5, None).await;
    let (ws_id, ws_token) = a.agent(&owner, "rs-ws", "ws", 3, None).await;
    a.agent(&owner, "rs-push", "push", 2, Some(&endpoint)).await;

    // Completed before the restart: charged, and stays so.
    let done = a.task(&buyer, "rs-poll", "done before").await;
    let (_, polled) = a.get("/tasks/poll?wait=5", &poll_token).await;
    assert_eq!(polled["tasks"][0]["id"], done["id"], "{polled}");
    let (status, body) = a
        .post(
            &format!("/tasks/{}/result", done["id"].as_str().unwrap()),
            &json!({ "result": "kept" }),
            &poll_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Leased by the poller, then one left queued.
    let leased = a.task(&buyer, "rs-poll", "leased").await;
    let (_, polled) = a.get("/tasks/poll?wait=5", &poll_token).await;
    assert_eq!(polled["tasks"][0]["id"], leased["id"], "{polled}");
    let queued = a.task(&buyer, "rs-poll", "queued").await;
    assert_eq!(queued["status"], "queued");

    // Dispatched on a plain stream, unanswered.
    let mut req = format!("ws://127.0.0.1:{}/ws", a.port)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {ws_token}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let ws_uuid = uuid::Uuid::parse_str(&ws_id).unwrap();
    wait_until("the stream attached", async || {
        a.hub.registry.conn(ws_uuid).is_some()
    })
    .await;
    let streamed = a.task(&buyer, "rs-ws", "streamed").await;
    let frame = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let msg = ws.next().await.unwrap().unwrap();
            if msg.is_text() {
                return serde_json::from_str::<Value>(msg.to_text().unwrap()).unwrap();
            }
        }
    })
    .await
    .expect("no task frame");
    assert_eq!(frame["id"], streamed["id"]);

    // In flight to a push endpoint that does not answer.
    let pushed = a.task(&buyer, "rs-push", "pushed").await;
    wait_until("the push request arrived", async || {
        hits.load(std::sync::atomic::Ordering::SeqCst) > 0
    })
    .await;

    let open = 5 + 5 + 3 + 2;
    assert_eq!(a.balance(&buyer).await, (START - 5 - open, open));
    for t in [&leased, &streamed, &pushed] {
        assert_eq!(a.status(&buyer, &t["id"]).await["status"], "dispatched");
    }

    a.handle.stop(false).await;
    drop(ws);

    let b = Node::start(settings.clone()).await;
    for (t, what) in [
        (&leased, "leased"),
        (&queued, "queued"),
        (&streamed, "streamed"),
        (&pushed, "pushed"),
    ] {
        let now = b.status(&buyer, &t["id"]).await;
        assert_eq!(now["status"], "failed", "{what}: {now}");
        assert_eq!(now["billing"]["tokensCharged"], 0, "{what}: {now}");
        assert!(now["error"].is_string(), "{what}: {now}");
        assert!(now["completedAt"].is_string(), "{what}: {now}");
    }
    let kept = b.status(&buyer, &done["id"]).await;
    assert_eq!(kept["status"], "completed", "{kept}");
    assert_eq!(kept["result"], "kept");
    assert_eq!(kept["billing"]["tokensCharged"], 5);
    assert_eq!(b.balance(&buyer).await, (START - 5, 0));
    assert_eq!(b.balance(&owner).await, (START + 5, 0));
    b.assert_ledger_balanced().await;

    // Nothing is handed out again, and late answers settle nothing.
    let (_, polled) = b.get("/tasks/poll", &poll_token).await;
    assert_eq!(polled, json!({ "tasks": [] }));
    let (status, body) = b
        .post(
            &format!("/tasks/{}/result", leased["id"].as_str().unwrap()),
            &json!({ "result": "late" }),
            &poll_token,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "TASK_SETTLED", "{body}");
    let (status, list) = b.get("/api/v1/tasks", &buyer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 5, "{list}");
    assert_eq!(b.balance(&buyer).await, (START - 5, 0));
    b.assert_ledger_balanced().await;
    b.handle.stop(false).await;
}
