//! The test harness: `spawn_app()` starts the real server on a random port with a fresh
//! database (SQLite in a tempdir, or a fresh PostgreSQL database per test when
//! `AGENTHUB_TEST_DATABASE_URL` is set) and returns a `TestApp` with typed request helpers.
//! Every test ends with `app.assert_ledger_balanced().await`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agenthub::config::Settings;
use agenthub::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The password every helper-registered user gets.
pub const PASSWORD: &str = "secure-password";

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub port: u16,
    /// The SMTP listener's port, when the test turned it on (`smtp_addr: "127.0.0.1:0"`).
    pub smtp_port: Option<u16>,
    pub client: reqwest::Client,
    pub hub: Arc<actors::Hub>,
    /// The Registry actor of this hub.
    pub registry: actix::Addr<actors::registry::RegistryActor>,
    pub data_dir: PathBuf,
    /// Kept alive so the data directory outlives the test.
    _tempdir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app with the test defaults, then applies `tweak` (rate limit, private URLs, ...).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tempdir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings {
        http_addr: "127.0.0.1:0".into(),
        smtp_addr: "off".into(),
        data_dir: tempdir.path().to_path_buf(),
        rate_limit_per_min: 0,
        ..Settings::default()
    };
    if let Ok(url) = std::env::var("AGENTHUB_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        settings.database_url = Some(fresh_database(&url).await);
    }
    tweak(&mut settings);
    let data_dir = settings.data_dir.clone();
    let app = Application::build(settings)
        .await
        .expect("failed to build the application");
    let port = app.port();
    let smtp_port = app.smtp_port();
    let hub = app.hub();
    let registry = app.registry();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        smtp_port,
        client,
        hub,
        registry,
        data_dir,
        _tempdir: tempdir,
    }
}

/// Creates `agenthub_t_<uuid>` on the server named by `url` and returns its URL.
pub async fn fresh_database(url: &str) -> String {
    actors::db::create_database(url, "agenthub_t_")
        .await
        .expect("create the test database")
}

/// Turns a response into (status, JSON body); an empty body is `Null`, a non-JSON body is a
/// JSON string holding the text (so assertions on the shape fail with the text visible).
pub async fn into_json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("read the response body");
    if text.is_empty() {
        return (status, Value::Null);
    }
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A request with an optional bearer token; the caller adds a body and sends it.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req
    }

    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let resp = self
            .request(method, path, token)
            .json(body)
            .send()
            .await
            .expect("request failed");
        into_json(resp).await
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        self.send_json(Method::POST, path, body, token).await
    }

    pub async fn patch(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        self.send_json(Method::PATCH, path, body, token).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let resp = self
            .request(Method::GET, path, token)
            .send()
            .await
            .expect("request failed");
        into_json(resp).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let resp = self
            .request(Method::DELETE, path, token)
            .send()
            .await
            .expect("request failed");
        into_json(resp).await
    }

    /// Registers `username` with `<username>@example.com` and `PASSWORD`; returns
    /// (accessToken, user).
    pub async fn register_user(&self, username: &str) -> (String, Value) {
        self.register(&format!("{username}@example.com"), username, PASSWORD)
            .await
    }

    pub async fn register(&self, email: &str, username: &str, password: &str) -> (String, Value) {
        let (status, body) = self
            .post_json(
                "/api/v1/auth/register",
                &json!({ "email": email, "username": username, "password": password }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {username}: {body}");
        let token = body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_string();
        (token, body["user"].clone())
    }

    /// Creates an agent (asserting 201); returns (agent view, apiKey).
    pub async fn create_agent(&self, token: &str, body: &Value) -> (Value, String) {
        let (status, resp) = self.post_json("/api/v1/agents", body, Some(token)).await;
        assert_eq!(status, StatusCode::CREATED, "create agent {body}: {resp}");
        let key = resp["apiKey"].as_str().expect("apiKey").to_string();
        (resp["agent"].clone(), key)
    }

    /// A minimal free WebSocket agent.
    pub async fn create_ws_agent(&self, token: &str, name: &str, slug: &str) -> (Value, String) {
        self.create_agent(token, &json!({ "name": name, "slug": slug }))
            .await
    }

    /// Connects an agent's reverse WebSocket (`/api/v1/agents/ws`) and waits (at most 10 s)
    /// for the hub's `agent_connected` frame; the agent is online while the stream lives.
    pub async fn connect_agent(&self, api_key: &str) -> WsStream {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("ws://127.0.0.1:{}/api/v1/agents/ws", self.port);
        let mut req = url.into_client_request().expect("ws request");
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {api_key}").parse().expect("header value"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("ws connect");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, ws.next())
                .await
                .expect("no agent_connected within 10 s")
                .expect("ws closed before agent_connected")
                .expect("ws error");
            if let Ok(text) = frame.to_text()
                && let Ok(value) = serde_json::from_str::<Value>(text)
                && value["type"] == json!("agent_connected")
            {
                return ws;
            }
        }
    }

    /// The `.eml` files of `<data_dir>/outbox/`, oldest name first.
    pub fn outbox_messages(&self) -> Vec<String> {
        let dir = self.data_dir.join("outbox");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Polls the outbox until it holds at least `count` messages (at most 10 s).
    pub async fn wait_for_outbox(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.outbox_messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} mail(s) in the outbox, found {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn ledger_report(&self) -> actors::ledger::Report {
        actors::ledger::check(&self.hub.db)
            .await
            .expect("ledger check failed to run")
    }

    pub async fn assert_ledger_balanced(&self) {
        let report = self.ledger_report().await;
        assert!(
            report.is_balanced(),
            "ledger unbalanced: {:?}",
            report.problems
        );
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
    }
}

/// Checks an error body: `{statusCode, error: <reason phrase>, message: <non-empty>}`.
pub fn assert_error(body: &Value, status: StatusCode) {
    assert_eq!(
        body["statusCode"],
        json!(status.as_u16()),
        "statusCode in {body}"
    );
    assert_eq!(
        body["error"],
        json!(status.canonical_reason().expect("reason phrase")),
        "error (reason phrase) in {body}"
    );
    let message = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("message missing in {body}"));
    assert!(!message.is_empty(), "empty message in {body}");
}

/// Checks the HTTP status and the error body together.
pub fn assert_status_error(status: StatusCode, body: &Value, expected: StatusCode) {
    assert_eq!(status, expected, "unexpected status; body: {body}");
    assert_error(body, expected);
}

/// A validation 400 whose `details` name `field` (among possibly others).
pub fn assert_validation(status: StatusCode, body: &Value, field: &str) {
    if let Some(problem) = validation_problem(status, body, field) {
        panic!("{problem}");
    }
}

/// What is wrong with a response expected to be a validation 400 naming `field`, if anything.
pub fn validation_problem(status: StatusCode, body: &Value, field: &str) -> Option<String> {
    if status != StatusCode::BAD_REQUEST {
        return Some(format!("expected 400 naming {field}, got {status}: {body}"));
    }
    if body["statusCode"] != json!(400)
        || body["error"] != json!("Bad Request")
        || !body["message"].is_string()
    {
        return Some(format!("malformed error body (field {field}): {body}"));
    }
    let Some(details) = body["details"].as_array() else {
        return Some(format!("no details array (field {field}): {body}"));
    };
    if !details.iter().any(|d| d["field"] == json!(field)) {
        return Some(format!("details do not name {field}: {body}"));
    }
    if details
        .iter()
        .any(|d| !d["field"].is_string() || d["message"].as_str().is_none_or(str::is_empty))
    {
        return Some(format!("detail without field or message: {body}"));
    }
    None
}

/// Panics listing every collected problem.
pub fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// An error with a machine-readable `code`.
pub fn assert_coded(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_status_error(status, body, expected);
    assert_eq!(body["code"], json!(code), "code in {body}");
}

/// Decodes the payload (middle part) of a JWT without checking the signature.
pub fn jwt_claims(token: &str) -> Value {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("not a JWT: {token}");
    };
    let bytes = base64url_decode(payload);
    serde_json::from_slice(&bytes).expect("JWT payload is JSON")
}

fn base64url_decode(input: &str) -> Vec<u8> {
    fn val(c: u8) -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => panic!("invalid base64url character {c}"),
        }
    }
    let clean: Vec<u8> = input.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i as u32);
        }
        let bytes = acc.to_be_bytes();
        let n = chunk.len().saturating_sub(1);
        out.extend_from_slice(&bytes[1..1 + n]);
    }
    out
}

/// The ids of a paginated list's `data`, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array in {list}"))
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_string())
        .collect()
}

/// The slugs of a paginated list's `data`, in order.
pub fn slugs(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array in {list}"))
        .iter()
        .map(|a| a["slug"].as_str().expect("slug").to_string())
        .collect()
}

pub fn is_lower_hex(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}
