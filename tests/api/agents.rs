//! The agent catalog: create, read, list own, update, status, delete; visibility rules.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    assert_no_problems, assert_status_error, assert_validation, is_lower_hex, spawn_app,
    spawn_app_with, validation_problem,
};

fn assert_key_shape(resp: &Value) {
    let key = resp["apiKey"].as_str().expect("apiKey");
    assert!(key.starts_with("amp_"), "{key}");
    assert_eq!(key.len(), 4 + 48, "{key}");
    assert!(is_lower_hex(&key[4..]), "{key}");
    assert_eq!(
        resp["maskedKey"],
        json!(format!("amp_****{}", &key[key.len() - 4..])),
        "{resp}"
    );
}

fn assert_fresh_view(agent: &Value, owner_id: &Value) {
    uuid::Uuid::parse_str(agent["id"].as_str().expect("id")).expect("agent id is a UUID");
    assert_eq!(&agent["ownerId"], owner_id, "{agent}");
    assert_eq!(agent["status"], json!("active"), "{agent}");
    assert_eq!(agent["isOnline"], json!(false), "{agent}");
    let rep = &agent["reputationCache"];
    assert!(rep["score"].is_number(), "{agent}");
    assert_eq!(rep["stars"], Value::Null, "{agent}");
    assert_eq!(rep["reviewCount"], json!(0), "{agent}");
    assert!(rep["successRate"].is_number(), "{agent}");
    assert!(rep["uptimeRatio"].is_number(), "{agent}");
    assert!(rep.get("avgLatencyMs").is_some(), "{agent}");
    assert_eq!(rep["isNew"], json!(true), "{agent}");
    assert_eq!(agent["healthChecks"], Value::Null, "{agent}");
    assert_eq!(
        agent["stats"],
        json!({ "totalCalls": 0, "completedCalls": 0, "failedCalls": 0, "tokensEarned": 0 }),
        "{agent}"
    );
    let slug = agent["slug"].as_str().expect("slug");
    assert_eq!(
        agent["email"],
        json!(format!("{slug}@mail.localhost")),
        "{agent}"
    );
    for key in ["createdAt", "updatedAt"] {
        chrono::DateTime::parse_from_rfc3339(agent[key].as_str().expect(key)).expect(key);
    }
    for key in [
        "connectionMode",
        "deliveryMode",
        "mcpEndpoint",
        "version",
        "description",
    ] {
        assert!(agent.get(key).is_some(), "agent view lacks {key}: {agent}");
    }
    for secret in ["apiKey", "apiKeyHash", "keyHash"] {
        assert!(
            agent.get(secret).is_none(),
            "agent view leaks {secret}: {agent}"
        );
    }
}

#[actix_web::test]
async fn getting_started_http_agent_example_works_as_written() {
    let app = spawn_app().await;
    let (token, user) = app.register_user("myagent").await;
    // Step 2a, as written.
    let (status, resp) = app
        .post_json(
            "/api/v1/agents",
            &json!({
                "name": "My Awesome Agent",
                "slug": "my-awesome-agent",
                "version": "1.0.0",
                "description": "What my agent does",
                "mcpEndpoint": "https://my-agent.example.com/mcp",
                "connectionMode": "http",
                "visibility": "public",
                "pricing": { "model": "per-call", "pricePerCall": 5 },
                "tags": ["data", "analysis"],
                "category": "data-analysis"
            }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_key_shape(&resp);
    let agent = &resp["agent"];
    assert_fresh_view(agent, &user["id"]);
    assert_eq!(agent["name"], json!("My Awesome Agent"));
    assert_eq!(agent["slug"], json!("my-awesome-agent"));
    assert_eq!(agent["version"], json!("1.0.0"));
    assert_eq!(agent["description"], json!("What my agent does"));
    assert_eq!(
        agent["mcpEndpoint"],
        json!("https://my-agent.example.com/mcp")
    );
    assert_eq!(agent["connectionMode"], json!("http"));
    assert_eq!(agent["visibility"], json!("public"));
    assert_eq!(
        agent["pricing"],
        json!({ "model": "per-call", "pricePerCall": 5 })
    );
    assert_eq!(agent["tags"], json!(["data", "analysis"]));
    assert_eq!(agent["category"], json!("data-analysis"));
    assert_eq!(agent["email"], json!("my-awesome-agent@mail.localhost"));

    // The detail endpoint answers the same agent, by slug and by id, to anyone.
    for path in [
        "/api/v1/agents/my-awesome-agent".to_string(),
        format!("/api/v1/agents/{}", agent["id"].as_str().unwrap()),
    ] {
        let (status, detail) = app.get(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        assert_eq!(detail["id"], agent["id"]);
        assert_eq!(detail["slug"], json!("my-awesome-agent"));
        assert_eq!(
            detail["pricing"],
            json!({ "model": "per-call", "pricePerCall": 5 })
        );
    }
    // Listed in discovery.
    let (status, list) = app.get("/api/v1/agents", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], json!(1));
    assert_eq!(list["data"][0]["id"], agent["id"]);

    // "Checking balance via API Key", as written.
    let key = resp["apiKey"].as_str().unwrap();
    let (status, balance) = app.get("/api/v1/billing/balance", Some(key)).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance, json!({ "balance": 10000, "reserved": 0 }));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn getting_started_websocket_agent_example_works_as_written() {
    let app = spawn_app().await;
    let (token, user) = app.register_user("myagent").await;
    // Step 2b, as written.
    let (status, resp) = app
        .post_json(
            "/api/v1/agents",
            &json!({
                "name": "My Local Agent",
                "slug": "my-local-agent",
                "version": "1.0.0",
                "description": "What my agent does",
                "connectionMode": "websocket",
                "pricing": { "model": "free" },
                "tags": ["automation"],
                "category": "automation"
            }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_key_shape(&resp);
    let agent = &resp["agent"];
    assert_fresh_view(agent, &user["id"]);
    assert_eq!(agent["name"], json!("My Local Agent"));
    assert_eq!(agent["slug"], json!("my-local-agent"));
    assert_eq!(agent["version"], json!("1.0.0"));
    assert_eq!(agent["connectionMode"], json!("websocket"));
    assert_eq!(agent["mcpEndpoint"], Value::Null);
    assert_eq!(agent["visibility"], json!("public"));
    assert_eq!(
        agent["pricing"],
        json!({ "model": "free", "pricePerCall": 0 })
    );
    assert_eq!(agent["tags"], json!(["automation"]));
    assert_eq!(agent["category"], json!("automation"));
    assert_eq!(agent["email"], json!("my-local-agent@mail.localhost"));

    let key = resp["apiKey"].as_str().unwrap();
    let (status, balance) = app.get("/api/v1/billing/balance", Some(key)).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance, json!({ "balance": 10000, "reserved": 0 }));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn defaults_and_derived_slug() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("defaults").await;
    let (agent, _) = app
        .create_agent(&token, &json!({ "name": "My Fancy Agent" }))
        .await;
    assert_eq!(agent["slug"], json!("my-fancy-agent"));
    assert_eq!(agent["connectionMode"], json!("websocket"));
    assert_eq!(agent["visibility"], json!("public"));
    assert_eq!(agent["status"], json!("active"));
    assert_eq!(
        agent["pricing"],
        json!({ "model": "free", "pricePerCall": 0 })
    );
    assert_eq!(agent["category"], json!("other"));
    assert_eq!(agent["tags"], json!([]));
    assert_eq!(agent["email"], json!("my-fancy-agent@mail.localhost"));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn tags_are_lowercased_and_deduplicated() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("tagger").await;
    let (agent, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Tagged", "tags": ["Python", "python", "LLM", "llm", "PYTHON"] }),
        )
        .await;
    let mut tags: Vec<String> = agent["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, vec!["llm", "python"], "{agent}");
    // Twenty tags of 32 characters are the limits, and allowed.
    let many: Vec<String> = (0..20).map(|i| format!("{i:0>32}")).collect();
    let (agent, _) = app
        .create_agent(&token, &json!({ "name": "Many Tags", "tags": many }))
        .await;
    assert_eq!(agent["tags"].as_array().unwrap().len(), 20);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn delivery_modes_of_the_task_document() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("deliverer").await;
    let (other, _) = app.register_user("stranger").await;
    for mode in ["ws", "poll"] {
        let (agent, _) = app
            .create_agent(
                &token,
                &json!({ "name": format!("Mode {mode}"), "deliveryMode": mode }),
            )
            .await;
        assert_eq!(agent["deliveryMode"], json!(mode), "{agent}");
    }
    let (agent, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Pushy", "slug": "pushy", "deliveryMode": "push", "endpoint": "https://hooks.example.com/agent" }),
        )
        .await;
    assert_eq!(agent["deliveryMode"], json!("push"));
    assert_eq!(
        agent["endpoint"],
        json!("https://hooks.example.com/agent"),
        "the owner sees the endpoint"
    );

    // The webhook endpoint is shown only to the owner.
    let (status, owner_view) = app.get("/api/v1/agents/pushy", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        owner_view["endpoint"],
        json!("https://hooks.example.com/agent")
    );
    for viewer in [None, Some(other.as_str())] {
        let (status, view) = app.get("/api/v1/agents/pushy", viewer).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert!(
            view.get("endpoint").is_none_or(Value::is_null),
            "endpoint leaked to a non-owner: {view}"
        );
    }
    let (_, list) = app.get("/api/v1/agents?search=pushy", None).await;
    assert_eq!(list["total"], json!(1), "{list}");
    assert!(
        list["data"][0].get("endpoint").is_none_or(Value::is_null),
        "endpoint leaked in discovery: {list}"
    );
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn create_rejects_invalid_input_and_creates_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("validator").await;
    let base = json!({ "name": "Valid Name", "slug": "valid-slug" });
    let with = |pairs: &[(&str, Value)]| {
        let mut body = base.clone();
        for (k, v) in pairs {
            body[*k] = v.clone();
        }
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "slug": "no-name" }), "name"),
        (with(&[("name", json!(""))]), "name"),
        (with(&[("name", json!("n".repeat(101)))]), "name"),
        (with(&[("name", json!(5))]), "name"),
        (with(&[("slug", json!("ab"))]), "slug"),
        (with(&[("slug", json!("a".repeat(65)))]), "slug"),
        (with(&[("slug", json!("Bad-Slug"))]), "slug"),
        (with(&[("slug", json!("bad_slug"))]), "slug"),
        (with(&[("slug", json!("-leading"))]), "slug"),
        (with(&[("slug", json!("trailing-"))]), "slug"),
        (with(&[("slug", json!("double--hyphen"))]), "slug"),
        (with(&[("slug", json!("my"))]), "slug"),
        (with(&[("slug", json!("ws"))]), "slug"),
        (with(&[("slug", json!("leaderboard"))]), "slug"),
        (
            with(&[("slug", json!("123e4567-e89b-12d3-a456-426614174000"))]),
            "slug",
        ),
        (with(&[("slug", json!(42))]), "slug"),
        (with(&[("version", json!(1))]), "version"),
        (with(&[("description", json!(5))]), "description"),
        (with(&[("connectionMode", json!("ftp"))]), "connectionMode"),
        (with(&[("deliveryMode", json!("smtp"))]), "deliveryMode"),
        (with(&[("connectionMode", json!("http"))]), "mcpEndpoint"),
        (with(&[("connectionMode", json!("hybrid"))]), "mcpEndpoint"),
        (with(&[("deliveryMode", json!("push"))]), "endpoint"),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("http://example.com/mcp")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("https://10.0.0.1/mcp")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("http://10.0.0.1/mcp")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("https://10.0.0.1/mcp")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("https://192.168.1.10/mcp")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("https://169.254.169.254/")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("https://[fe80::1]/mcp")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("not a url")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("connectionMode", json!("http")),
                ("mcpEndpoint", json!("ftp://example.com/mcp")),
            ]),
            "mcpEndpoint",
        ),
        (
            with(&[
                ("deliveryMode", json!("push")),
                ("endpoint", json!("http://10.0.0.1/hook")),
            ]),
            "endpoint",
        ),
        (
            with(&[
                ("deliveryMode", json!("push")),
                ("endpoint", json!("https://169.254.169.254/latest")),
            ]),
            "endpoint",
        ),
        (
            with(&[
                ("deliveryMode", json!("push")),
                ("endpoint", json!("http://hooks.example.com/hook")),
            ]),
            "endpoint",
        ),
        (with(&[("visibility", json!("secret"))]), "visibility"),
        (
            with(&[("pricing", json!({ "model": "subscription" }))]),
            "pricing.model",
        ),
        (
            with(&[("pricing", json!({ "model": "per-call" }))]),
            "pricing.pricePerCall",
        ),
        (
            with(&[(
                "pricing",
                json!({ "model": "per-call", "pricePerCall": -1 }),
            )]),
            "pricing.pricePerCall",
        ),
        (
            with(&[(
                "pricing",
                json!({ "model": "per-call", "pricePerCall": 1_000_001 }),
            )]),
            "pricing.pricePerCall",
        ),
        (
            with(&[(
                "pricing",
                json!({ "model": "per-call", "pricePerCall": 1.5 }),
            )]),
            "pricing.pricePerCall",
        ),
        (
            with(&[(
                "pricing",
                json!({ "model": "per-call", "pricePerCall": "5" }),
            )]),
            "pricing.pricePerCall",
        ),
        (
            with(&[("pricing", json!({ "model": "free", "pricePerCall": 5 }))]),
            "pricing.pricePerCall",
        ),
        (with(&[("category", json!("cooking"))]), "category"),
        (with(&[("tags", json!("a,b"))]), "tags"),
        (with(&[("visibility", json!(true))]), "visibility"),
    ];
    let mut problems = Vec::new();
    for (body, field) in &cases {
        let (status, resp) = app.post_json("/api/v1/agents", body, Some(&token)).await;
        if let Some(p) = validation_problem(status, &resp, field) {
            problems.push(format!("{body}: {p}"));
        }
    }
    assert_no_problems(&problems);
    // Tag rules name the tags field (possibly with an index).
    let too_many: Vec<String> = (0..21).map(|i| format!("tag{i}")).collect();
    for tags in [
        json!(too_many),
        json!([""]),
        json!(["t".repeat(33)]),
        json!([5]),
    ] {
        let (status, resp) = app
            .post_json(
                "/api/v1/agents",
                &with(&[("tags", tags.clone())]),
                Some(&token),
            )
            .await;
        assert_status_error(status, &resp, StatusCode::BAD_REQUEST);
        let details = resp["details"]
            .as_array()
            .unwrap_or_else(|| panic!("details in {resp}"));
        assert!(
            details
                .iter()
                .any(|d| d["field"].as_str().is_some_and(|f| f.starts_with("tags"))),
            "tags {tags}: {resp}"
        );
    }
    // Both modes at once.
    let (status, resp) = app
        .post_json(
            "/api/v1/agents",
            &with(&[
                ("connectionMode", json!("websocket")),
                ("deliveryMode", json!("poll")),
            ]),
            Some(&token),
        )
        .await;
    assert_status_error(status, &resp, StatusCode::BAD_REQUEST);
    // Not logged in, or an API key where a JWT is needed.
    let (status, resp) = app.post_json("/api/v1/agents", &base, None).await;
    assert_status_error(status, &resp, StatusCode::UNAUTHORIZED);

    // Nothing was created.
    let (status, mine) = app.get("/api/v1/agents/my", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["total"], json!(0), "{mine}");
    assert_eq!(mine["data"], json!([]));
    let (_, list) = app.get("/api/v1/agents", None).await;
    assert_eq!(list["total"], json!(0), "{list}");
    // And the slug is still free.
    let (agent, key) = app.create_agent(&token, &base).await;
    assert_eq!(agent["slug"], json!("valid-slug"));
    let (status, resp) = app
        .post_json("/api/v1/agents", &json!({ "name": "By Key" }), Some(&key))
        .await;
    assert_status_error(status, &resp, StatusCode::UNAUTHORIZED);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn boundary_values_are_accepted() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("bounds").await;
    let (agent, _) = app
        .create_agent(
            &token,
            &json!({
                "name": "n".repeat(100),
                "slug": "a".repeat(64),
                "pricing": { "model": "per-call", "pricePerCall": 1_000_000 }
            }),
        )
        .await;
    assert_eq!(agent["pricing"]["pricePerCall"], json!(1_000_000));
    let (agent, _) = app
        .create_agent(&token, &json!({ "name": "Zero", "slug": "a-1", "pricing": { "model": "per-call", "pricePerCall": 0 } }))
        .await;
    assert_eq!(
        agent["pricing"],
        json!({ "model": "per-call", "pricePerCall": 0 })
    );
    for (i, category) in [
        "data-analysis",
        "code-generation",
        "content-writing",
        "image-processing",
        "research",
        "automation",
        "translation",
        "customer-support",
        "finance",
        "other",
    ]
    .iter()
    .enumerate()
    {
        let (agent, _) =
            app.create_agent(&token, &json!({ "name": format!("Cat {i}"), "slug": format!("cat-{i}"), "category": category })).await;
        assert_eq!(agent["category"], json!(category));
    }
    app.assert_ledger_balanced().await;
}

/// "HTTPS only (localhost allowed for development)": the development hosts register without
/// the setting (a call to them is refused until the hub allows private addresses, see
/// mcp_sdks.rs); any other private address does not.
#[actix_web::test]
async fn development_hosts_register_without_the_private_url_setting() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("developer").await;
    for (i, (mode, url)) in [
        ("mcp", "http://localhost:3000/mcp"),
        ("mcp", "http://127.0.0.1:3000/mcp"),
        ("push", "http://localhost:8787/webhook"),
        ("push", "https://[::1]:8787/webhook"),
    ]
    .iter()
    .enumerate()
    {
        let body = if *mode == "mcp" {
            json!({ "name": format!("Dev {i}"), "connectionMode": "http", "mcpEndpoint": url })
        } else {
            json!({ "name": format!("Dev {i}"), "deliveryMode": "push", "endpoint": url })
        };
        let (status, resp) = app.post_json("/api/v1/agents", &body, Some(&token)).await;
        assert_eq!(status, StatusCode::CREATED, "{url}: {resp}");
    }
    for (i, url) in [
        "https://10.0.0.1/mcp",
        "https://192.168.0.10/mcp",
        "https://[fd00::1]/mcp",
    ]
    .iter()
    .enumerate()
    {
        let (status, resp) = app
            .post_json(
                "/api/v1/agents",
                &json!({ "name": format!("Lan {i}"), "connectionMode": "http", "mcpEndpoint": url }),
                Some(&token),
            )
            .await;
        assert_validation(status, &resp, "mcpEndpoint");
    }
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn private_urls_need_the_setting_and_https_stays_required() {
    let app = spawn_app_with(|s| s.allow_private_urls = true).await;
    let (token, _) = app.register_user("intranet").await;
    for (i, url) in [
        "http://localhost:3000/mcp",
        "http://127.0.0.1:3000/mcp",
        "https://10.0.0.1/mcp",
    ]
    .iter()
    .enumerate()
    {
        let (agent, _) = app
            .create_agent(&token, &json!({ "name": format!("Local {i}"), "connectionMode": "http", "mcpEndpoint": url }))
            .await;
        assert_eq!(agent["mcpEndpoint"], json!(url));
    }
    // Other hosts still need https.
    let (status, resp) = app
        .post_json("/api/v1/agents", &json!({ "name": "Plain", "connectionMode": "http", "mcpEndpoint": "http://10.0.0.1/mcp" }), Some(&token))
        .await;
    assert_validation(status, &resp, "mcpEndpoint");
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn taken_slug_is_409() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("first").await;
    let (other, _) = app.register_user("second").await;
    app.create_ws_agent(&token, "Original", "taken-slug").await;
    for t in [&token, &other] {
        let (status, resp) = app
            .post_json(
                "/api/v1/agents",
                &json!({ "name": "Copy", "slug": "taken-slug" }),
                Some(t),
            )
            .await;
        assert_status_error(status, &resp, StatusCode::CONFLICT);
    }
    let (_, mine) = app.get("/api/v1/agents/my", Some(&other)).await;
    assert_eq!(mine["total"], json!(0));
    let (_, detail) = app.get("/api/v1/agents/taken-slug", None).await;
    assert_eq!(detail["name"], json!("Original"));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn my_agents_lists_all_own_agents() {
    let app = spawn_app().await;
    let (token, user) = app.register_user("owner").await;
    let (other, _) = app.register_user("other").await;
    let (public, key) = app
        .create_ws_agent(&token, "Public One", "public-one")
        .await;
    let (private, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Private One", "visibility": "private" }),
        )
        .await;
    let (unlisted, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Unlisted One", "visibility": "unlisted" }),
        )
        .await;
    let (inactive, _) = app
        .create_ws_agent(&token, "Inactive One", "inactive-one")
        .await;
    let path = format!("/api/v1/agents/{}/status", inactive["id"].as_str().unwrap());
    let (status, _) = app
        .patch(&path, &json!({ "status": "inactive" }), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (other_agent, _) = app.create_ws_agent(&other, "Not Mine", "not-mine").await;

    let (status, mine) = app.get("/api/v1/agents/my", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["total"], json!(4), "{mine}");
    assert_eq!(mine["page"], json!(1));
    assert_eq!(mine["limit"], json!(20));
    let mut got = crate::helpers::ids(&mine);
    got.sort();
    let mut want: Vec<String> = [&public, &private, &unlisted, &inactive]
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(!got.contains(&other_agent["id"].as_str().unwrap().to_string()));
    for a in mine["data"].as_array().unwrap() {
        assert_eq!(a["ownerId"], user["id"]);
    }

    let (status, theirs) = app.get("/api/v1/agents/my", Some(&other)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        crate::helpers::ids(&theirs),
        vec![other_agent["id"].as_str().unwrap().to_string()]
    );

    let (status, body) = app.get("/api/v1/agents/my", None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get("/api/v1/agents/my", Some(&key)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn detail_visibility_rules() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (other, _) = app.register_user("other").await;
    let (_, other_key) = app
        .create_ws_agent(&other, "Other Agent", "other-agent")
        .await;
    let (private, owner_key) = app
        .create_agent(
            &token,
            &json!({ "name": "Secret", "slug": "secret-agent", "visibility": "private" }),
        )
        .await;
    let (unlisted, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Hidden", "slug": "hidden-agent", "visibility": "unlisted" }),
        )
        .await;
    let private_id = private["id"].as_str().unwrap();
    let unlisted_id = unlisted["id"].as_str().unwrap();

    for path in [
        format!("/api/v1/agents/{private_id}"),
        "/api/v1/agents/secret-agent".to_string(),
    ] {
        for viewer in [None, Some(other.as_str()), Some(other_key.as_str())] {
            let (status, body) = app.get(&path, viewer).await;
            assert_status_error(status, &body, StatusCode::NOT_FOUND);
        }
        for viewer in [&token, &owner_key] {
            let (status, body) = app.get(&path, Some(viewer)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["id"], private["id"]);
            assert_eq!(body["visibility"], json!("private"));
        }
    }
    for path in [
        format!("/api/v1/agents/{unlisted_id}"),
        "/api/v1/agents/hidden-agent".to_string(),
    ] {
        for viewer in [None, Some(other.as_str())] {
            let (status, body) = app.get(&path, viewer).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            assert_eq!(body["id"], unlisted["id"]);
        }
    }
    // Neither is listed, not even for the owner.
    let (_, list) = app.get("/api/v1/agents", Some(&token)).await;
    assert_eq!(crate::helpers::slugs(&list), vec!["other-agent"]);
    let (_, list) = app.get("/api/v1/agents?search=secret", None).await;
    assert_eq!(list["total"], json!(0));
    let (_, list) = app.get("/api/v1/agents?search=hidden", None).await;
    assert_eq!(list["total"], json!(0));

    // Unknown ids and slugs.
    let (status, body) = app
        .get(&format!("/api/v1/agents/{}", uuid::Uuid::new_v4()), None)
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/v1/agents/no-such-agent", None).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn owner_updates_agent() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (agent, _) = app.create_ws_agent(&token, "Updatable", "updatable").await;
    let path = format!("/api/v1/agents/{}", agent["id"].as_str().unwrap());

    let (status, updated) = app
        .patch(
            &path,
            &json!({
                "description": "Now with a description",
                "pricing": { "model": "per-call", "pricePerCall": 12 },
                "tags": ["New", "tags"],
                "category": "finance"
            }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["id"], agent["id"]);
    assert_eq!(updated["name"], json!("Updatable"), "untouched fields stay");
    assert_eq!(updated["slug"], json!("updatable"));
    assert_eq!(updated["description"], json!("Now with a description"));
    assert_eq!(
        updated["pricing"],
        json!({ "model": "per-call", "pricePerCall": 12 })
    );
    assert_eq!(updated["tags"], json!(["new", "tags"]));
    assert_eq!(updated["category"], json!("finance"));
    assert_eq!(updated["createdAt"], agent["createdAt"]);

    let (status, reread) = app.get(&path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reread["description"], json!("Now with a description"));
    assert_eq!(
        reread["pricing"],
        json!({ "model": "per-call", "pricePerCall": 12 })
    );

    // A new slug: the old one is gone, the new one answers, the mail address follows.
    let (status, renamed) = app
        .patch(
            &path,
            &json!({ "slug": "renamed-agent", "name": "Renamed" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["slug"], json!("renamed-agent"));
    assert_eq!(renamed["email"], json!("renamed-agent@mail.localhost"));
    let (status, _) = app.get("/api/v1/agents/updatable", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/v1/agents/renamed-agent", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], json!("Renamed"));
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn update_rejections_change_nothing() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (other, _) = app.register_user("other").await;
    let (agent, key) = app.create_ws_agent(&token, "Guarded", "guarded").await;
    app.create_ws_agent(&other, "Taken", "taken").await;
    let (private, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Private", "slug": "private-one", "visibility": "private" }),
        )
        .await;
    let (unlisted, _) = app
        .create_agent(
            &token,
            &json!({ "name": "Unlisted", "slug": "unlisted-one", "visibility": "unlisted" }),
        )
        .await;
    let path = format!("/api/v1/agents/{}", agent["id"].as_str().unwrap());
    let (_, before) = app.get(&path, Some(&token)).await;

    let change = json!({ "description": "hijacked" });
    // Someone else: 403 on public and unlisted agents, 404 on private ones.
    let (status, body) = app.patch(&path, &change, Some(&other)).await;
    assert_status_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app
        .patch(
            &format!("/api/v1/agents/{}", unlisted["id"].as_str().unwrap()),
            &change,
            Some(&other),
        )
        .await;
    assert_status_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app
        .patch(
            &format!("/api/v1/agents/{}", private["id"].as_str().unwrap()),
            &change,
            Some(&other),
        )
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    // Not logged in, or an API key.
    let (status, body) = app.patch(&path, &change, None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.patch(&path, &change, Some(&key)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    // Unknown agent.
    let (status, body) = app
        .patch(
            &format!("/api/v1/agents/{}", uuid::Uuid::new_v4()),
            &change,
            Some(&token),
        )
        .await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    // Taken slug.
    let (status, body) = app
        .patch(&path, &json!({ "slug": "taken" }), Some(&token))
        .await;
    assert_status_error(status, &body, StatusCode::CONFLICT);
    // Invalid values, each naming its field, in a request that also carries a valid change.
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "description": "x", "name": "" }), "name"),
        (
            json!({ "description": "x", "name": "n".repeat(101) }),
            "name",
        ),
        (json!({ "description": "x", "name": 5 }), "name"),
        (json!({ "description": "x", "slug": "Bad Slug" }), "slug"),
        (json!({ "description": "x", "slug": "leaderboard" }), "slug"),
        (
            json!({ "description": "x", "visibility": "secret" }),
            "visibility",
        ),
        (
            json!({ "description": "x", "category": "cooking" }),
            "category",
        ),
        (
            json!({ "description": "x", "pricing": { "model": "per-call", "pricePerCall": -5 } }),
            "pricing.pricePerCall",
        ),
        (
            json!({ "description": "x", "pricing": { "model": "free", "pricePerCall": 5 } }),
            "pricing.pricePerCall",
        ),
        (
            json!({ "description": "x", "connectionMode": "http" }),
            "mcpEndpoint",
        ),
        (
            json!({ "description": "x", "connectionMode": "http", "mcpEndpoint": "https://169.254.169.254/" }),
            "mcpEndpoint",
        ),
    ];
    let mut problems = Vec::new();
    for (body, field) in &cases {
        let (status, resp) = app.patch(&path, body, Some(&token)).await;
        if let Some(p) = validation_problem(status, &resp, field) {
            problems.push(format!("{body}: {p}"));
        }
    }
    assert_no_problems(&problems);

    let (_, after) = app.get(&path, Some(&token)).await;
    assert_eq!(after, before, "rejected updates changed the agent");
    let (_, p) = app.get("/api/v1/agents/private-one", Some(&token)).await;
    assert_eq!(p["description"], private["description"]);
    let (_, u) = app.get("/api/v1/agents/unlisted-one", Some(&token)).await;
    assert_eq!(u["description"], unlisted["description"]);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn status_controls_listing() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (other, _) = app.register_user("other").await;
    let (agent, _) = app
        .create_ws_agent(&token, "Switchable", "switchable")
        .await;
    let path = format!("/api/v1/agents/{}/status", agent["id"].as_str().unwrap());
    let listed = || async {
        app.get("/api/v1/agents", None).await.1["total"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(listed().await, 1);

    for status_value in ["inactive", "maintenance"] {
        let (status, body) = app
            .patch(&path, &json!({ "status": status_value }), Some(&token))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], json!(status_value));
        assert_eq!(body["id"], agent["id"]);
        assert_eq!(listed().await, 0, "{status_value} agents are not listed");
        let (status, detail) = app.get("/api/v1/agents/switchable", Some(&token)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(detail["status"], json!(status_value));
    }

    // Refusals change nothing.
    let (status, body) = app
        .patch(&path, &json!({ "status": "paused" }), Some(&token))
        .await;
    assert_validation(status, &body, "status");
    let (status, body) = app.patch(&path, &json!({}), Some(&token)).await;
    assert_validation(status, &body, "status");
    let (status, body) = app
        .patch(&path, &json!({ "status": 5 }), Some(&token))
        .await;
    assert_validation(status, &body, "status");
    let (status, body) = app
        .patch(&path, &json!({ "status": "active" }), Some(&other))
        .await;
    assert_status_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app.patch(&path, &json!({ "status": "active" }), None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (_, detail) = app.get("/api/v1/agents/switchable", Some(&token)).await;
    assert_eq!(detail["status"], json!("maintenance"));

    let (status, body) = app
        .patch(&path, &json!({ "status": "active" }), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], json!("active"));
    assert_eq!(listed().await, 1);
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn delete_agent() {
    let app = spawn_app().await;
    let (token, _) = app.register_user("owner").await;
    let (other, _) = app.register_user("other").await;
    let (agent, key) = app.create_ws_agent(&token, "Doomed", "doomed").await;
    let (private, private_key) = app
        .create_agent(
            &token,
            &json!({ "name": "Doomed Private", "visibility": "private" }),
        )
        .await;
    let path = format!("/api/v1/agents/{}", agent["id"].as_str().unwrap());
    let private_path = format!("/api/v1/agents/{}", private["id"].as_str().unwrap());

    let (status, body) = app.delete(&path, Some(&other)).await;
    assert_status_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = app.delete(&private_path, Some(&other)).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&path, None).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.delete(&path, Some(&key)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    // Still there, key still working.
    let (status, _) = app.get(&path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get("/api/v1/billing/balance", Some(&key)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app.delete(&path, Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, Value::Null, "204 has no body");
    let (status, body) = app.get(&path, Some(&token)).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/v1/agents/doomed", None).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = app.get("/api/v1/billing/balance", Some(&key)).await;
    assert_status_error(status, &body, StatusCode::UNAUTHORIZED);
    let (status, body) = app.delete(&path, Some(&token)).await;
    assert_status_error(status, &body, StatusCode::NOT_FOUND);

    let (status, body) = app.delete(&private_path, Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app.get("/api/v1/billing/balance", Some(&private_key)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, mine) = app.get("/api/v1/agents/my", Some(&token)).await;
    assert_eq!(mine["total"], json!(0), "{mine}");
    // The owner's wallet is untouched.
    let (_, balance) = app.get("/api/v1/billing/balance", Some(&token)).await;
    assert_eq!(balance, json!({ "balance": 10000, "reserved": 0 }));
    app.assert_ledger_balanced().await;
}
