//! The OpenAPI document (`/api/v1/openapi.json`) and its reference page (`/api/v1/docs`):
//! - served as OpenAPI 3.1 and valid for a real validator (Python's `openapi-spec-validator`);
//! - complete and true to the router: its operations are exactly the routes the server serves,
//!   read from the route registrations in `src/http` and each one probed on the server;
//! - true to the answers: `schemathesis` fuzzes the running hub with it (no 5xx; every status,
//!   content type, header and body as documented).
//!
//! The Python tools run from the virtualenv that `scripts/test` makes in tests/py/.venv (with
//! tests/py/requirements.txt); missing is a failure, never a skip.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::io::AsyncWriteExt;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A program of the test virtualenv. Missing is a failure: `scripts/test` installs it.
fn venv_bin(name: &str) -> PathBuf {
    let bin = repo().join("tests/py/.venv/bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run scripts/test, which creates tests/py/.venv with tests/py/requirements.txt",
        bin.display()
    );
    bin
}

async fn document(app: &TestApp) -> Value {
    let resp = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("GET /api/v1/openapi.json");
    assert_eq!(resp.status(), StatusCode::OK);
    let ctype = resp.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    resp.json().await.expect("the document is JSON")
}

/// Every `(METHOD, path)` of the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Validates `doc` with openapi-spec-validator's OpenAPI 3.1 validator; returns its errors.
async fn validator_errors(doc: &Value) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys
from openapi_spec_validator import OpenAPIV31SpecValidator
spec = json.load(sys.stdin)
try:
    errors = [str(e).splitlines()[0] for e in OpenAPIV31SpecValidator(spec).iter_errors()]
except Exception as e:  # an unreadable document is an error too
    errors = [f"{type(e).__name__}: {e}"[:500]]
print(json.dumps(errors))
"#;
    let mut child = tokio::process::Command::new(venv_bin("python"))
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the validator");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(doc.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the validator took over 120 s")
        .unwrap();
    assert!(
        out.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the validator printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[actix_web::test]
async fn the_document_is_openapi_3_1_and_valid() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], json!("3.1.0"));
    assert_eq!(doc["info"]["title"], json!("agenthub"));
    assert_eq!(
        doc["servers"][0]["url"],
        json!(app.address),
        "this deployment"
    );

    let errors = validator_errors(&doc).await;
    assert!(errors.is_empty(), "openapi-spec-validator: {errors:#?}");
    // The validator is really looking: a document without `info` fails it.
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    assert!(!validator_errors(&broken).await.is_empty());

    // What every operation has: an id, a tag, a summary; every error response the error body.
    let mut ids = BTreeSet::new();
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_string()),
            "{method} {path}: operationId {id:?}"
        );
        assert!(op["tags"][0].is_string(), "{method} {path}: no tag");
        assert!(op["summary"].is_string(), "{method} {path}: no summary");
        for (status, response) in op["responses"].as_object().unwrap() {
            let json_error = &response["content"]["application/json"]["schema"]["$ref"];
            if status.starts_with('4') && !path.starts_with("/marketplace") {
                assert_eq!(
                    json_error,
                    &json!("#/components/schemas/ErrorBody"),
                    "{method} {path} {status}"
                );
            }
        }
        if path != "/health" {
            assert!(op["responses"]["429"].is_object(), "{method} {path}: 429");
        }
    }
    // Security schemes, and the pagination wrapper.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["jwt"]["scheme"], json!("bearer"));
    assert_eq!(schemes["jwt"]["bearerFormat"], json!("JWT"));
    assert_eq!(schemes["apiKey"]["scheme"], json!("bearer"));
    let me = &doc["paths"]["/api/v1/auth/me"]["get"];
    assert_eq!(me["security"], json!([{ "jwt": [] }]));
    let page = &doc["components"]["schemas"]["Page_Agent"];
    assert_eq!(
        page["required"],
        json!(["data", "page", "limit", "total"]),
        "{page}"
    );
    assert_eq!(
        page["properties"]["data"]["items"]["$ref"],
        json!("#/components/schemas/Agent")
    );
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["statusCode", "error", "message"]));
    app.assert_ledger_balanced().await;
}

// ---------------------------------------------------------------------------------------------
// The routes the server serves, read from their registration in src/http.

/// The body of `fn name(cfg: &mut web::ServiceConfig)` in `source`.
fn configure_body<'a>(source: &'a str, name: &str) -> &'a str {
    let start = source
        .find(&format!("fn {name}(cfg: &mut web::ServiceConfig)"))
        .unwrap_or_else(|| panic!("no fn {name}(cfg) in the module"));
    let rest = &source[start..];
    let end = rest.find("\n}\n").expect("the end of the function");
    &rest[..end]
}

/// The `(METHOD, path)` registered by `module::function`, following calls of other
/// configuring functions of the same module (`configure_agent_side(cfg)`).
fn registered(module: &str, function: &str, prefix: &str, out: &mut BTreeSet<(String, String)>) {
    let file = repo().join("src/http").join(format!("{module}.rs"));
    let source =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let body = configure_body(&source, function);
    for line in body.lines() {
        let call = line.trim();
        if let Some(name) = call.strip_suffix("(cfg);")
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            registered(module, name, prefix, out);
        }
    }
    for chunk in body.split("web::resource(\"").skip(1) {
        let path = chunk.split('"').next().unwrap();
        let mut methods = 0;
        for method in METHODS {
            let count = chunk.matches(&format!("web::{method}()")).count();
            if count > 0 {
                methods += 1;
                out.insert((method.to_uppercase(), format!("{prefix}{path}")));
            }
        }
        assert!(methods > 0, "no method found for {path} in {module}.rs");
    }
}

/// Every route of the server, from `http::configure` (src/http/mod.rs): the modules it mounts
/// at the root (`module::function(cfg);`) and inside `web::scope("/api/v1")`
/// (`.configure(module::function)`).
fn served_routes() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(repo().join("src/http/mod.rs")).unwrap();
    let body = configure_body(&source, "configure");
    let (root, scoped) = body
        .split_once("web::scope(\"/api/v1\")")
        .expect("the /api/v1 scope");
    let mut out = BTreeSet::new();
    let mut mounts = 0;
    for line in root.lines() {
        if let Some((module, function)) = line
            .trim()
            .strip_suffix("(cfg);")
            .and_then(|c| c.split_once("::"))
        {
            registered(module, function, "", &mut out);
            mounts += 1;
        }
    }
    for chunk in scoped.split(".configure(").skip(1) {
        let target = chunk.split(')').next().unwrap();
        let (module, function) = target.split_once("::").expect("module::function");
        registered(module, function, "/api/v1", &mut out);
        mounts += 1;
    }
    assert!(
        mounts >= 10,
        "read only {mounts} mounts from src/http/mod.rs"
    );
    out
}

/// `path` with every `{param}` replaced by a fresh UUID.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[actix_web::test]
async fn the_document_names_exactly_the_routes_the_server_serves() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let documented = operations(&doc);
    let served = served_routes();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented: {undocumented:?}\ndocumented but not served: {unserved:?}"
    );
    assert!(served.len() >= 45, "{} routes", served.len());
    // And the reading of the source is right: each route answers on the server (not the
    // unknown-route 404, not 405).
    let mut problems = Vec::new();
    for (method, path) in &served {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = app.request(method.clone(), &concrete(path), None);
        if method != Method::GET && method != Method::DELETE {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.expect("request failed");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND && body["message"] == json!("Route not found"))
        {
            problems.push(format!("{method} {path}: {status}"));
        }
    }
    assert!(problems.is_empty(), "not served: {problems:#?}");
    // A route the scan cannot see would be a 404 "Route not found": this one is.
    let (status, body) = app.get("/api/v1/no-such-route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], json!("Route not found"));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn the_reference_page_shows_every_operation_without_script() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let resp = app
        .client
        .get(app.url("/api/v1/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(!page.contains("<script"), "no script");
    assert!(page.contains(r#"href="/api/v1/openapi.json""#));
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let id = op["operationId"].as_str().unwrap();
        assert!(
            page.contains(&format!(r#"id="op-{id}""#)),
            "{method} {path} is not on the page"
        );
        assert!(page.contains(&format!(
            r#"<span class="verb">{method}</span> <code>{path}</code>"#
        )));
    }
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(page.contains(&format!(r#"id="schema-{name}""#)), "{name}");
    }
    // Linked from the landing page.
    let landing = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(landing.contains(r#"href="/api/v1/docs""#));
    app.assert_ledger_balanced().await;
}

// ---------------------------------------------------------------------------------------------
// schemathesis

/// One schemathesis run against the hub with `Authorization: Bearer <token>`; `extra` narrows
/// it. Fails the test on any failure or error, with schemathesis' report.
async fn schemathesis(app: &TestApp, token: &str, extra: &[&str], label: &str) {
    let workdir = tempfile::tempdir().unwrap();
    let schema_url = app.url("/api/v1/openapi.json");
    let auth = format!("Authorization: Bearer {token}");
    let mut args = vec![
        "run",
        schema_url.as_str(),
        "--url",
        app.address.as_str(),
        "--header",
        auth.as_str(),
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,\
         response_headers_conformance,response_schema_conformance",
        "--max-examples",
        "10",
        "--seed",
        "20261125",
        "--request-timeout",
        "30",
        "--no-color",
    ];
    args.extend_from_slice(extra);
    let child = tokio::process::Command::new(venv_bin("schemathesis"))
        .args(&args)
        .current_dir(workdir.path())
        .env(
            "SCHEMATHESIS_HOOKS",
            repo().join("tests/py/schemathesis_hooks.py"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start schemathesis");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ({label}) took over 300 s"))
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis ({label}) failed:\n{report}"
    );
    assert!(
        report.contains("passed") && !report.contains(" 0 generated"),
        "schemathesis ({label}) ran nothing:\n{report}"
    );
}

#[actix_web::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    const INBOUND_SECRET: &str = "inbound-secret-for-the-fuzzer";
    let app = spawn_app_with(|s| s.mail_inbound_secret = Some(INBOUND_SECRET.into())).await;
    // Two accounts, so that nothing one run does (regenerating a key, deleting an agent)
    // disarms the other's credential: a user with a JWT and an agent, and another user's
    // poll agent whose API key drives the agent side.
    let (jwt, _) = app.register_user("fuzzer").await;
    app.create_agent(
        &jwt,
        &json!({ "name": "Fuzz target", "slug": "fuzz-target", "category": "research" }),
    )
    .await;
    let (other, _) = app.register_user("fuzzcaller").await;
    let (_, api_key) = app
        .create_agent(
            &other,
            &json!({ "name": "Fuzz caller", "slug": "fuzz-caller", "deliveryMode": "poll" }),
        )
        .await;

    // Every operation as an agent, then as a person; the inbound-mail endpoint with its secret
    // (elsewhere it is 401), so that its parser sees the generated messages.
    schemathesis(&app, &api_key, &[], "API key").await;
    schemathesis(&app, &jwt, &[], "JWT").await;
    schemathesis(
        &app,
        INBOUND_SECRET,
        &["--include-path", "/api/v1/email/inbound"],
        "inbound mail secret",
    )
    .await;

    // The hub is still whole.
    let (status, health) = app.get("/health", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    app.assert_ledger_balanced().await;
}

/// Found by schemathesis: a `page` whose offset is past the signed 64-bit integers made the SQL
/// driver panic, and the connection closed without an answer. It is a 400 naming `page` now,
/// on every list and on the marketplace page.
#[actix_web::test]
async fn a_page_past_the_database_integers_is_a_400() {
    let app = spawn_app().await;
    let (jwt, _) = app.register_user("pager").await;
    let (agent, _) = app
        .create_agent(&jwt, &json!({ "name": "Paged", "slug": "paged" }))
        .await;
    let id = agent["id"].as_str().unwrap();
    let reviews = format!("/api/v1/agents/{id}/reviews");
    for path in [
        "/api/v1/agents",
        "/api/v1/agents/my",
        "/api/v1/agents/leaderboard/week",
        "/api/v1/agents/leaderboard/richest",
        "/api/v1/agents/leaderboard/top-rated",
        reviews.as_str(),
        "/api/v1/billing/transactions",
        "/api/v1/audit/logs",
        "/api/v1/tasks",
    ] {
        for query in [
            "page=103633393672525572&limit=89",
            "page=9223372036854775807",
        ] {
            let (status, body) = app.get(&format!("{path}?{query}"), Some(&jwt)).await;
            crate::helpers::assert_validation(status, &body, "page");
        }
        // The last page the database can take still answers.
        let (status, body) = app
            .get(
                &format!("{path}?page=92233720368547758&limit=100"),
                Some(&jwt),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["data"], json!([]), "{path}");
    }
    let resp = app
        .client
        .get(app.url("/marketplace?page=103633393672525572&limit=89"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("page is too large"));
    let (status, _) = app.get("/health", None).await;
    assert_eq!(status, StatusCode::OK);
    app.assert_ledger_balanced().await;
}

/// Found by schemathesis on PostgreSQL, which cannot store the NUL character: a `\u0000` in a
/// JSON string, a `%00` in a URL or a NUL byte in a posted mail was a 500. Each is a 400 naming
/// the field now, on either database.
#[actix_web::test]
async fn nul_characters_are_a_400_naming_the_field() {
    const SECRET: &str = "inbound-secret-for-nul-tests";
    let app = spawn_app_with(|s| s.mail_inbound_secret = Some(SECRET.into())).await;
    let (jwt, _) = app.register_user("nuller").await;
    for (body, field) in [
        (json!({ "name": "a\u{0}b" }), "name"),
        (
            json!({ "name": "ok", "pricing": { "model": "free\u{0}" } }),
            "pricing.model",
        ),
        (
            json!({ "name": "ok", "tags": ["fine", "\u{0}"] }),
            "tags[1]",
        ),
        (json!({ "name": "ok", "\u{0}": 1 }), "\u{0}"),
    ] {
        let (status, answer) = app.post_json("/api/v1/agents", &body, Some(&jwt)).await;
        crate::helpers::assert_validation(status, &answer, field);
    }
    // An escaped backslash before `u0000` is text, not NUL.
    let (agent, _) = app
        .create_agent(
            &jwt,
            &json!({ "name": "Backslash", "slug": "backslash", "description": "x\\u0000y" }),
        )
        .await;
    assert_eq!(agent["description"], json!("x\\u0000y"));
    let (status, body) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "username": "nul\u{0}ler", "password": "secure-password" }),
            None,
        )
        .await;
    crate::helpers::assert_validation(status, &body, "username");

    // URLs: the query parameter, or the path.
    let (status, body) = app.get("/api/v1/agents?search=a%00b", None).await;
    crate::helpers::assert_validation(status, &body, "search");
    let (status, body) = app.get("/api/v1/agents/a%00b", None).await;
    crate::helpers::assert_validation(status, &body, "path");
    let resp = app
        .client
        .get(app.url("/marketplace?search=%00"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "the marketplace answers pages"
    );

    // A posted mail: RFC 5322 text has no NUL.
    let resp = app
        .client
        .post(app.url("/api/v1/email/inbound?to=backslash@mail.localhost"))
        .bearer_auth(SECRET)
        .body(
            &b"From: a@example.org\r\nTo: backslash@mail.localhost\r\nSubject: hi\r\n\r\nx\0y\r\n"
                [..],
        )
        .send()
        .await
        .unwrap();
    let (status, body) = crate::helpers::into_json(resp).await;
    crate::helpers::assert_validation(status, &body, "body");
    app.assert_ledger_balanced().await;
}
