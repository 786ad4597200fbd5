//! The public pages: `/` (landing), `/marketplace` (listing with search, filters and pages),
//! `/marketplace/{slug}` (detail) and `/skill.md` (the hub's own API reference, every endpoint
//! it names checked against the running server).

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::BTreeSet;

use crate::helpers::{TestApp, WsStream, spawn_app};

/// GETs a page: (status, content type, body).
async fn page(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let resp = app
        .client
        .get(app.url(path))
        .send()
        .await
        .expect("request failed");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ctype, resp.text().await.expect("body"))
}

/// GETs an HTML page, asserting 200 and `text/html`.
async fn html(app: &TestApp, path: &str) -> String {
    let (status, ctype, body) = page(app, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    assert!(ctype.starts_with("text/html"), "GET {path}: {ctype}");
    body
}

/// The agent slugs the listing links to, in order.
fn listed(body: &str) -> Vec<String> {
    body.split(r#"<li class="card">"#)
        .skip(1)
        .filter_map(|card| {
            let rest = card.split(r#"href="/marketplace/"#).nth(1)?;
            Some(rest.split('"').next()?.to_string())
        })
        .collect()
}

/// The listing card of `slug`.
fn card<'a>(body: &'a str, slug: &str) -> &'a str {
    body.split(r#"<li class="card">"#)
        .skip(1)
        .find(|c| c.contains(&format!(r#"href="/marketplace/{slug}""#)))
        .unwrap_or_else(|| panic!("no card for {slug}"))
}

struct Fixture {
    app: TestApp,
    token: String,
    _socket: WsStream,
}

/// Public: translator-pro (translation, 20/call, tags language+llm), summarizer-bot (research,
/// free, tags llm+python, online). Hidden: secret-agent (private), hidden-helper (unlisted),
/// sleepy-agent (public but inactive).
async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let (token, _) = app.register_user("pages").await;
    app.create_agent(
        &token,
        &json!({ "name": "Translator Pro", "slug": "translator-pro",
                 "description": "Translates documents between 40 languages", "category": "translation",
                 "pricing": { "model": "per-call", "pricePerCall": 20 }, "tags": ["language", "llm"] }),
    )
    .await;
    let (_, key) = app
        .create_agent(
            &token,
            &json!({ "name": "Summarizer Bot", "slug": "summarizer-bot",
                     "description": "I summarize long texts", "category": "research",
                     "pricing": { "model": "free" }, "tags": ["llm", "python"] }),
        )
        .await;
    let socket = app.connect_agent(&key).await;
    app.create_agent(
        &token,
        &json!({ "name": "Secret Agent", "slug": "secret-agent", "visibility": "private",
                 "description": "Translates secrets", "category": "translation" }),
    )
    .await;
    app.create_agent(
        &token,
        &json!({ "name": "Hidden Helper", "slug": "hidden-helper", "visibility": "unlisted",
                 "description": "Translates quietly", "category": "translation" }),
    )
    .await;
    let (sleepy, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Sleepy Agent", "slug": "sleepy-agent",
                     "description": "Translates slowly", "category": "translation" }),
        )
        .await;
    let (status, body) = app
        .patch(
            &format!("/api/v1/agents/{}/status", sleepy["id"].as_str().unwrap()),
            &json!({ "status": "inactive" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Fixture {
        app,
        token,
        _socket: socket,
    }
}

#[actix_web::test]
async fn marketplace_lists_public_agents_with_price_stars_and_online_state() {
    let f = fixture().await;
    let body = html(&f.app, "/marketplace").await;
    let slugs = listed(&body);
    assert_eq!(slugs, ["summarizer-bot", "translator-pro"], "newest first");
    for hidden in [
        "secret-agent",
        "Secret Agent",
        "hidden-helper",
        "sleepy-agent",
    ] {
        assert!(!body.contains(hidden), "{hidden} must not be listed");
    }
    let translator = card(&body, "translator-pro");
    assert!(translator.contains("Translator Pro"), "{translator}");
    assert!(translator.contains("20 tokens/call"), "{translator}");
    assert!(translator.contains("New"), "{translator}");
    assert!(translator.contains("Offline"), "{translator}");
    assert!(translator.contains("Translation"), "{translator}");
    let summarizer = card(&body, "summarizer-bot");
    assert!(summarizer.contains("Free"), "{summarizer}");
    assert!(summarizer.contains("Online"), "{summarizer}");
    assert!(summarizer.contains(r#"href="/marketplace?tags=python""#));
    // Works without JavaScript: a plain GET form, no script at all.
    assert!(body.contains(r#"<form class="filters" method="get" action="/marketplace""#));
    assert!(!body.contains("<script"));
    assert!(body.contains(r#"name="viewport""#));

    // An agent with a reputation shows stars instead of "New".
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    entities::agents::Entity::update_many()
        .col_expr(entities::agents::Column::TotalCalls, Expr::value(100i64))
        .col_expr(
            entities::agents::Column::CompletedCalls,
            Expr::value(100i64),
        )
        .filter(entities::agents::Column::Slug.eq("translator-pro"))
        .exec(&f.app.hub.db)
        .await
        .unwrap();
    let body = html(&f.app, "/marketplace").await;
    let translator = card(&body, "translator-pro");
    assert!(
        translator.contains(r#"class="stars""#) && !translator.contains("New"),
        "{translator}"
    );
    f.app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn marketplace_search_filters_sort_and_pages() {
    let f = fixture().await;
    let app = &f.app;
    assert_eq!(
        listed(&html(app, "/marketplace?search=TRANSLAT").await),
        ["translator-pro"]
    );
    assert_eq!(
        listed(&html(app, "/marketplace?category=research").await),
        ["summarizer-bot"]
    );
    assert_eq!(
        listed(&html(app, "/marketplace?tags=language").await),
        ["translator-pro"]
    );
    assert_eq!(
        listed(&html(app, "/marketplace?tags=llm,python").await),
        ["summarizer-bot"]
    );
    assert_eq!(
        listed(&html(app, "/marketplace?pricingModel=free").await),
        ["summarizer-bot"]
    );
    assert_eq!(
        listed(&html(app, "/marketplace?online=true").await),
        ["summarizer-bot"]
    );
    assert_eq!(
        listed(&html(app, "/marketplace?sort=price_desc").await),
        ["translator-pro", "summarizer-bot"]
    );
    // The form submits every field, empty ones included.
    assert_eq!(
        listed(
            &html(
                app,
                "/marketplace?search=&category=&tags=&pricingModel=&sort=name&maxPrice=&minReputation="
            )
            .await
        ),
        ["summarizer-bot", "translator-pro"]
    );
    let none = html(app, "/marketplace?search=nothing-like-this").await;
    assert!(listed(&none).is_empty());
    assert!(none.contains("No agents match"));
    // The chosen filters stay in the form.
    let body = html(app, "/marketplace?search=translat&category=translation").await;
    assert!(body.contains(r#"value="translat""#));
    assert!(body.contains(r#"<option value="translation" selected>"#));

    // Pages: one agent per page, links that keep the filters.
    let first = html(app, "/marketplace?sort=name&limit=1").await;
    assert_eq!(listed(&first), ["summarizer-bot"]);
    assert!(first.contains("Page 1 of 2"), "{first}");
    assert!(
        first.contains(r#"href="/marketplace?sort=name&amp;limit=1&amp;page=2""#),
        "{first}"
    );
    let second = html(app, "/marketplace?sort=name&limit=1&page=2").await;
    assert_eq!(listed(&second), ["translator-pro"]);
    assert!(second.contains(r#"href="/marketplace?sort=name&amp;limit=1" rel="prev""#));

    // A bad filter is a 400 page that says which one.
    let (status, ctype, body) = page(app, "/marketplace?category=bogus&limit=500").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(
        body.contains("category") && body.contains("limit"),
        "{body}"
    );
    f.app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn detail_page_shows_everything_and_escapes_what_users_wrote() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (agent, _) = app
        .create_agent(
            &token,
            &json!({ "name": "<script>alert(1)</script>", "slug": "xss-agent",
                     "description": "Line one <img src=x onerror=alert(2)>\nline \"two\" & 'three'",
                     "category": "automation", "tags": ["<b>bold</b>"],
                     "pricing": { "model": "per-call", "pricePerCall": 7 } }),
        )
        .await;
    let id = agent["id"].as_str().unwrap().to_string();
    let agent_id = uuid::Uuid::parse_str(&id).unwrap();
    actors::catalog::store_tools(
        &app.hub,
        agent_id,
        json!([{ "name": "echo", "description": "Echo <script>x</script>",
                 "inputSchema": { "type": "object",
                                  "properties": { "message": { "type": "string", "description": "</pre><script>y</script>" } },
                                  "required": ["message"] } }]),
    )
    .await
    .unwrap();
    // A review, written straight into the table (reviews need a completed call).
    let (_, reviewer) = app.register_user("reviewer").await;
    {
        use sea_orm::{ActiveModelTrait, Set};
        let now = chrono::Utc::now();
        entities::reviews::ActiveModel {
            id: Set(uuid::Uuid::new_v4()),
            agent_id: Set(agent_id),
            user_id: Set(uuid::Uuid::parse_str(reviewer["id"].as_str().unwrap()).unwrap()),
            rating: Set(4),
            comment: Set(Some("Great <script>alert(3)</script> agent".into())),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&app.hub.db)
        .await
        .unwrap();
    }

    for path in ["/marketplace/xss-agent", &format!("/marketplace/{id}")] {
        let body = html(&app, path).await;
        assert!(!body.contains("<script"), "unescaped script in {path}");
        assert!(!body.contains("<img"), "unescaped img in {path}");
        assert!(!body.contains("<b>bold"), "unescaped tag in {path}");
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(body.contains("&lt;img src=x onerror=alert(2)&gt;"));
        assert!(body.contains("line &quot;two&quot; &amp; &#39;three&#39;"));
        // Tools with their input schemas.
        assert!(body.contains("<code>echo</code>"));
        assert!(body.contains("Echo &lt;script&gt;x&lt;/script&gt;"));
        assert!(body.contains("&quot;required&quot;: ["));
        assert!(body.contains("&lt;/pre&gt;&lt;script&gt;y&lt;/script&gt;"));
        // How to call it: the exact curl and the mail address.
        assert!(
            body.contains(&format!("curl -X POST {}/api/v1/mcp/call", app.address)),
            "{body}"
        );
        let call = format!(
            r#"-d '{{"targetAgentId": "{id}", "toolName": "echo", "arguments": {{"message":"..."}}, "maxCost": 7}}'"#
        );
        assert!(
            body.contains(&call.replace('"', "&quot;").replace('\'', "&#39;")),
            "{body}"
        );
        assert!(body.contains("xss-agent@mail.localhost"));
        assert!(body.contains("7 tokens/call"));
        // Reputation, health, reviews.
        assert!(body.contains("<h2>Reputation</h2>"));
        assert!(body.contains("<h2>Health</h2>"));
        assert!(body.contains("Offline"));
        assert!(body.contains("1 review"));
        assert!(body.contains("Great &lt;script&gt;alert(3)&lt;/script&gt; agent"));
        assert!(body.contains("<strong>reviewer</strong>"));
    }
    // The listing escapes too.
    let listing = html(&app, "/marketplace").await;
    assert!(!listing.contains("<script"));
    assert!(listing.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Scripts could not run anyway.
    let resp = app
        .client
        .get(app.url("/marketplace/xss-agent"))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn private_and_unknown_agents_are_404_pages_unlisted_ones_open() {
    let f = fixture().await;
    let app = &f.app;
    let (_, agents) = app.get("/api/v1/agents/my", Some(&f.token)).await;
    let secret_id = agents["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == json!("secret-agent"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        "/marketplace/secret-agent".to_string(),
        format!("/marketplace/{secret_id}"),
        "/marketplace/no-such-agent".to_string(),
        format!("/marketplace/{}", uuid::Uuid::new_v4()),
    ] {
        let (status, ctype, body) = page(app, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
        assert!(!body.contains("Secret Agent") && !body.contains("secrets"));
        assert!(body.contains(r#"href="/marketplace""#));
    }
    // Unlisted: not listed, but its page opens for whoever has the address.
    let body = html(app, "/marketplace/hidden-helper").await;
    assert!(body.contains("Hidden Helper") && body.contains("Unlisted"));
    // Inactive: the page says it cannot be called.
    let body = html(app, "/marketplace/sleepy-agent").await;
    assert!(body.contains("inactive"));
    f.app.assert_ledger_balanced().await;
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Every `METHOD /path` the text names (table rows `| METHOD | `/path` |`, inline mentions and
/// `curl -X METHOD <base>/path` after the base URL is removed), query strings dropped.
fn named_endpoints(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let cleaned: String = line
            .chars()
            .map(|c| {
                if matches!(c, '|' | '`' | '(' | ')' | '"' | '\'' | '*') {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        let tokens: Vec<&str> = cleaned.split_whitespace().collect();
        for (i, token) in tokens.iter().enumerate() {
            if !METHODS.contains(token) {
                continue;
            }
            let mut j = i + 1;
            if tokens.get(j) == Some(&"WS") {
                j += 1;
            }
            let Some(path) = tokens.get(j).filter(|p| p.starts_with('/')) else {
                continue;
            };
            let path = path.split('?').next().unwrap_or(path);
            let path = path.trim_end_matches(['.', ',', ':', ';']);
            out.insert((token.to_string(), path.to_string()));
        }
    }
    out
}

#[actix_web::test]
async fn skill_md_is_the_complete_reference_of_real_routes() {
    let app = spawn_app().await;
    let (status, ctype, md) = page(&app, "/skill.md").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "text/markdown; charset=utf-8");
    assert!(md.starts_with("# "), "a markdown document");
    assert!(!md.contains("{{"), "every placeholder filled in");
    assert!(!md.contains("busapi.com"));
    assert!(
        md.contains(&format!("`{}/api/v1`", app.address)),
        "base URL"
    );
    assert!(md.contains(&format!("ws://127.0.0.1:{}/api/v1/agents/ws", app.port)));
    assert!(md.contains("slug@mail.localhost"), "mail domain");

    let endpoints = named_endpoints(&md.replace(&app.address, ""));
    // Complete: every route the hub serves is named.
    for (method, path) in [
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/auth/change-password"),
        ("POST", "/api/v1/auth/reset-password/request"),
        ("POST", "/api/v1/auth/reset-password/confirm"),
        ("POST", "/api/v1/auth/regenerate-api-key"),
        ("GET", "/api/v1/agents"),
        ("POST", "/api/v1/agents"),
        ("GET", "/api/v1/agents/my"),
        ("GET", "/api/v1/agents/{slugOrId}"),
        ("PATCH", "/api/v1/agents/{agentId}"),
        ("DELETE", "/api/v1/agents/{agentId}"),
        ("PATCH", "/api/v1/agents/{agentId}/status"),
        ("GET", "/api/v1/agents/{agentId}/tools"),
        ("POST", "/api/v1/agents/{agentId}/test-call"),
        ("GET", "/api/v1/agents/{agentId}/reputation"),
        ("GET", "/api/v1/agents/ws"),
        ("GET", "/api/v1/agents/{agentId}/reviews"),
        ("GET", "/api/v1/agents/{agentId}/reviews/mine"),
        ("POST", "/api/v1/agents/{agentId}/reviews"),
        ("DELETE", "/api/v1/agents/{agentId}/reviews"),
        ("GET", "/api/v1/billing/balance"),
        ("GET", "/api/v1/billing/transactions"),
        ("GET", "/api/v1/billing/status"),
        ("POST", "/api/v1/mcp/call"),
        ("GET", "/api/v1/mcp/ws"),
        ("GET", "/api/v1/agents/leaderboard/week"),
        ("GET", "/api/v1/agents/leaderboard/richest"),
        ("GET", "/api/v1/agents/leaderboard/top-rated"),
        ("GET", "/api/v1/audit/logs"),
        ("POST", "/api/v1/tasks"),
        ("GET", "/api/v1/tasks"),
        ("GET", "/api/v1/tasks/{taskId}"),
        ("GET", "/ws"),
        ("GET", "/tasks/poll"),
        ("POST", "/tasks/{taskId}/result"),
        ("GET", "/health"),
        ("GET", "/"),
        ("GET", "/marketplace"),
        ("GET", "/marketplace/{slug}"),
        ("GET", "/skill.md"),
    ] {
        assert!(
            endpoints.contains(&(method.to_string(), path.to_string())),
            "skill.md does not name {method} {path}"
        );
    }
    // True: every endpoint it names exists on this server.
    let mut problems = Vec::new();
    for (method, path) in &endpoints {
        let concrete: String = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = app.request(method.clone(), &concrete, None);
        if method != Method::GET && method != Method::DELETE {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.expect("request failed");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND && body["message"] == json!("Route not found"))
        {
            problems.push(format!("{method} {path} ({concrete}): {status} {text}"));
        }
    }
    assert!(
        problems.is_empty(),
        "skill.md names routes the hub does not serve:\n{}",
        problems.join("\n")
    );
    app.assert_ledger_balanced().await;
}

#[test]
fn endpoint_extraction_reads_tables_inline_mentions_and_curl() {
    let text = "| Login | POST | `/api/v1/auth/login` | None |\n\
                | Socket | GET (WS) | `/api/v1/agents/ws` | API Key |\n\
                curl -X POST /api/v1/mcp/call \\\n\
                **Check your balance first** (`GET /api/v1/billing/balance?x=1`), then\n\
                `POST tools/list` and a second `POST` updates it";
    let got = named_endpoints(text);
    let want: BTreeSet<(String, String)> = [
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/agents/ws"),
        ("POST", "/api/v1/mcp/call"),
        ("GET", "/api/v1/billing/balance"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[actix_web::test]
async fn landing_page_says_what_the_hub_is_and_links_the_rest() {
    let app = spawn_app().await;
    let body = html(&app, "/").await;
    assert!(body.contains("dispatch hub for AI agents"));
    for link in ["/marketplace", "/skill.md"] {
        assert!(
            body.contains(&format!(r#"href="{link}""#)),
            "landing page links {link}"
        );
    }
    // The OpenAPI description and its reference page, linked and answering.
    for link in ["/api/v1/openapi.json", "/api/v1/docs"] {
        assert!(
            body.contains(&format!(r#"href="{link}""#)),
            "landing page links {link}"
        );
        let (status, _, _) = page(&app, link).await;
        assert_eq!(status, StatusCode::OK, "GET {link}");
    }
    assert!(body.contains(r#"action="/marketplace""#), "a search form");
    assert!(!body.contains("<script"));
    // The links it promises today answer.
    html(&app, "/marketplace").await;
    let (status, ctype, _) = page(&app, "/skill.md").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/markdown"));
    // The API keeps its JSON errors.
    let (status, body) = app.get("/no-such-page", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], json!("Route not found"));
    app.assert_ledger_balanced().await;
}
