//! The public pages in a real browser: Debian's Chromium, driven headless by npm
//! `playwright-core` (tests/js/browse.js), against a seeded hub. At a phone and a desktop width
//! it opens `/`, follows the link to the marketplace, searches, clicks a category chip and a tag,
//! opens two agents, and saves a full-page screenshot of every step; it fails on any JavaScript
//! dialog or console error, on a page that scrolls sideways, on a filter that does not narrow
//! the list, and unless the agent named `<script>alert(1)</script>` shows as literal text.
//!
//! The screenshots are kept in `target/test-artifacts/screenshots/` (replaced each run, kept on
//! failure too). Chromium, Node and `tests/js/node_modules` come from `scripts/test`; a missing
//! one fails the test, it is never skipped.

use crate::helpers::{TestApp, spawn_app_with};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const XSS_NAME: &str = "<script>alert(1)</script>";
const PRIVATE_NAME: &str = "Secret Agent Zeta";
/// The steps browse.js screenshots at each width, in order.
const STEPS: [&str; 7] = [
    "landing",
    "marketplace",
    "search",
    "category",
    "tag",
    "agent-xss",
    "agent",
];
/// (viewport, CSS width, device pixel ratio) as browse.js sets them.
const VIEWPORTS: [(&str, u32, u32); 2] = [("phone", 390, 2), ("desktop", 1366, 1)];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Everything the browser needs; missing pieces fail with what to run.
fn assert_prerequisites() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test (it installs Debian's chromium), \
         or `apt-get install -y chromium`"
    );
    assert!(
        root()
            .join("tests/js/node_modules/playwright-core")
            .exists(),
        "tests/js/node_modules/playwright-core is missing: run scripts/test \
         (or `cd tests/js && npm ci`)"
    );
}

/// Seeds six listed agents (one named `<script>alert(1)</script>`), an unlisted and a private
/// one; returns the spec browse.js checks the pages against, and the socket that keeps
/// Summarizer Bot online.
async fn seed(app: &TestApp) -> (Value, crate::helpers::WsStream) {
    let (token, _) = app.register_user("browser").await;
    let agent = |body: Value| {
        let token = token.clone();
        async move { app.create_agent(&token, &body).await }
    };
    let (translator, _) = agent(json!({
        "name": "Translator Pro", "slug": "translator-pro",
        "description": "Translates documents between 40 languages, keeping the layout of tables and lists.",
        "category": "translation", "tags": ["language", "llm"],
        "pricing": { "model": "per-call", "pricePerCall": 20 } }))
    .await;
    let (_, summarizer_key) = agent(json!({
        "name": "Summarizer Bot", "slug": "summarizer-bot",
        "description": "I summarize long texts into a few bullet points.",
        "category": "research", "tags": ["llm", "python"], "pricing": { "model": "free" } }))
    .await;
    agent(json!({
        "name": "Code Helper", "slug": "code-helper",
        "description": "Writes and reviews code; translates Python into idiomatic Rust.",
        "category": "code-generation", "tags": ["python", "rust"],
        "pricing": { "model": "per-call", "pricePerCall": 5 } }))
    .await;
    agent(json!({
        "name": "Data Cruncher", "slug": "data-cruncher",
        "description": "Crunches CSV files into charts and summary statistics.",
        "category": "data-analysis", "tags": ["python", "sql", "charts"],
        "pricing": { "model": "per-call", "pricePerCall": 150 } }))
    .await;
    agent(json!({
        "name": "Support Desk", "slug": "support-desk",
        "description": "Answers customer mail in 12 languages. Docs: https://support.example.com/a/very/long/unbroken/path/that/must/wrap/on/a/phone/screen?with=query&and=more_parameters_without_spaces",
        "category": "customer-support",
        "tags": ["email", "helpdesk", "customer-service", "multilingual", "a-long-tag-name-for-wrapping-32c"],
        "pricing": { "model": "per-call", "pricePerCall": 1 } }))
    .await;
    agent(json!({
        "name": XSS_NAME, "slug": "xss-agent",
        "description": "Line one <img src=x onerror=alert(2)>\nline \"two\" & 'three'",
        "category": "automation", "tags": ["<b>bold</b>"],
        "pricing": { "model": "per-call", "pricePerCall": 7 } }))
    .await;
    agent(json!({
        "name": "Hidden Helper", "slug": "hidden-helper", "visibility": "unlisted",
        "description": "Translates quietly", "category": "translation" }))
    .await;
    agent(json!({
        "name": PRIVATE_NAME, "slug": "secret-agent-zeta", "visibility": "private",
        "description": "Translates secrets", "category": "translation", "tags": ["llm"] }))
    .await;

    // Translator Pro gets tools, a review (with the counters the review path keeps) and enough
    // calls for stars.
    let translator_id = uuid::Uuid::parse_str(translator["id"].as_str().unwrap()).unwrap();
    actors::catalog::store_tools(
        &app.hub,
        translator_id,
        json!([
            { "name": "translate", "description": "Translates a text into the target language",
              "inputSchema": { "type": "object",
                  "properties": { "text": { "type": "string" },
                                  "targetLanguage": { "type": "string", "description": "ISO 639-1 code, e.g. de" } },
                  "required": ["text", "targetLanguage"] } },
            { "name": "detect_language", "description": "Names the language of a text",
              "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } } }
        ]),
    )
    .await
    .unwrap();
    {
        use sea_orm::{
            ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
        };
        entities::agents::Entity::update_many()
            .col_expr(entities::agents::Column::TotalCalls, Expr::value(120i64))
            .col_expr(
                entities::agents::Column::CompletedCalls,
                Expr::value(114i64),
            )
            .col_expr(entities::agents::Column::FailedCalls, Expr::value(6i64))
            .col_expr(
                entities::agents::Column::TotalLatencyMs,
                Expr::value(114i64 * 840),
            )
            .col_expr(entities::agents::Column::ReviewCount, Expr::value(1i64))
            .col_expr(entities::agents::Column::RatingSum, Expr::value(4i64))
            .filter(entities::agents::Column::Id.eq(translator_id))
            .exec(&app.hub.db)
            .await
            .unwrap();
        let (_, reviewer) = app.register_user("reviewer").await;
        let now = chrono::Utc::now();
        entities::reviews::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            agent_id: Set(translator_id),
            user_id: Set(uuid::Uuid::parse_str(reviewer["id"].as_str().unwrap()).unwrap()),
            rating: Set(4),
            comment: Set(Some(
                "Good German, <script>alert(3)</script> weak on idioms.".into(),
            )),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&app.hub.db)
        .await
        .unwrap();
    }
    let socket = app.connect_agent(&summarizer_key).await;

    let spec = json!({
        "all": ["Translator Pro", "Summarizer Bot", "Code Helper", "Data Cruncher",
                "Support Desk", XSS_NAME],
        "xssName": XSS_NAME,
        "privateName": PRIVATE_NAME,
        "privateSlug": "secret-agent-zeta",
        // Matches Translator Pro by name and Code Helper by description (and the unlisted and
        // private agents, which must not show).
        "search": "translat",
        "searchExpect": ["Translator Pro", "Code Helper"],
        "category": "Translation",
        "categoryExpect": ["Translator Pro"],
        "tagFrom": "Translator Pro",
        "tag": "llm",
        "tagExpect": ["Translator Pro", "Summarizer Bot"],
        "open": "Translator Pro",
    });
    (spec, socket)
}

/// (width, height) of a PNG, checking its signature and IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

/// Replaces the artefact directory's screenshots with those of this run.
fn keep_artifacts(from: &Path) -> PathBuf {
    let dir = root().join("target/test-artifacts/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts/screenshots");
    for entry in std::fs::read_dir(&dir).expect("read the artefact directory") {
        let path = entry.expect("artefact entry").path();
        if path.extension().is_some_and(|e| e == "png") {
            std::fs::remove_file(&path).expect("remove an old screenshot");
        }
    }
    for entry in std::fs::read_dir(from).expect("read the screenshots") {
        let path = entry.expect("screenshot entry").path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).expect("keep a screenshot");
    }
    dir
}

#[actix_web::test]
async fn public_pages_work_in_headless_chromium_at_phone_and_desktop_widths() {
    assert_prerequisites();
    let app = spawn_app_with(|_| {}).await;
    let (spec, _socket) = seed(&app).await;
    let out = tempfile::tempdir().expect("tempdir");

    let child = tokio::process::Command::new("node")
        .arg(root().join("tests/js/browse.js"))
        .arg(&app.address)
        .arg(out.path())
        .env("BROWSE_SPEC", spec.to_string())
        .current_dir(root().join("tests/js"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run node ({e}): run scripts/test, which installs Node.js and npm")
        });
    let output = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("browse.js took over 240 s")
        .expect("browse.js failed to run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let artifacts = keep_artifacts(out.path());
    assert!(
        output.status.success(),
        "browse.js failed ({}); screenshots in {}\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}",
        output.status,
        artifacts.display()
    );
    let summary: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("browse.js printed no JSON ({e}): {stdout}"));
    assert_eq!(summary["ok"], json!(true), "{summary}");
    assert!(
        summary["problems"].as_array().is_some_and(Vec::is_empty),
        "{summary}"
    );

    for (viewport, width, ratio) in VIEWPORTS {
        let steps = summary["viewports"][viewport]["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("no steps for {viewport}: {summary}"));
        let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
        assert_eq!(names, STEPS, "{viewport} steps");
        for (i, step) in STEPS.iter().enumerate() {
            let file = format!("{viewport}-{:02}-{step}.png", i + 1);
            let path = artifacts.join(&file);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("screenshot {} is missing: {e}", path.display()));
            let (w, h) =
                png_size(&bytes).unwrap_or_else(|| panic!("{} is not a PNG", path.display()));
            assert_eq!(w, width * ratio, "{file}: width");
            assert!(h >= 400 * ratio, "{file}: only {h} px high");
            assert!(
                bytes.len() > 10_000,
                "{file}: only {} bytes, the page looks empty",
                bytes.len()
            );
        }
    }
    let marketplace = &summary["viewports"]["phone"]["steps"][1]["names"];
    assert!(
        marketplace
            .as_array()
            .is_some_and(|n| n.contains(&json!(XSS_NAME)) && !n.contains(&json!(PRIVATE_NAME))),
        "{marketplace}"
    );
    app.assert_ledger_balanced().await;
}
