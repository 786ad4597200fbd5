//! Discovery (`GET /api/v1/agents`): filters, sorts, pagination and the document's examples.
//!
//! Call statistics cannot be produced cheaply through the API, so the catalog fixture seeds the
//! counters through the `agents` table; presence is real (agents connect their WebSocket).

use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{TestApp, WsStream, assert_no_problems, slugs, spawn_app, validation_problem};

/// Sets an agent's counters (and the stored score the way the engine computes it).
async fn seed_stats(app: &TestApp, agent: &Value, total: i64, completed: i64, earned: i64) {
    use entities::agents;
    let id = uuid::Uuid::parse_str(agent["id"].as_str().unwrap()).unwrap();
    let inputs = actors::reputation::Inputs {
        total_calls: total,
        completed_calls: completed,
        tokens_earned: earned,
        ..Default::default()
    };
    let score = actors::reputation::stored_score(&inputs);
    agents::Entity::update_many()
        .col_expr(agents::Column::TotalCalls, Expr::value(total))
        .col_expr(agents::Column::CompletedCalls, Expr::value(completed))
        .col_expr(agents::Column::FailedCalls, Expr::value(total - completed))
        .col_expr(agents::Column::TokensEarned, Expr::value(earned))
        .col_expr(agents::Column::ReputationScore, Expr::value(score))
        .filter(agents::Column::Id.eq(id))
        .exec(&app.hub.db)
        .await
        .expect("seed agent stats");
}

struct Catalog {
    app: TestApp,
    /// The connected agents' sockets: they are online while these live.
    _sockets: Vec<WsStream>,
}

/// Five listed agents (creation order: translator-pro, cheap-translator, summarizer-bot,
/// text-summarize-express, code-wizard) plus a private, an unlisted and an inactive one.
///
/// | slug                   | category        | price | tags          | score | calls | online |
/// | translator-pro         | translation     | 20    | language, llm | 55    | 100   | no     |
/// | cheap-translator       | translation     | 3     | language      | 31.5  | 10    | no     |
/// | summarizer-bot         | research        | free  | llm, python   | new   | 0     | yes    |
/// | text-summarize-express | content-writing | 8     | python        | new   | 0     | no     |
/// | code-wizard            | code-generation | 50    | python, llm   | 37.5  | 200   | no     |
async fn catalog() -> Catalog {
    let app = spawn_app().await;
    let (token, _) = app.register_user("catalog").await;
    let per_call = |price: i64| json!({ "model": "per-call", "pricePerCall": price });
    let translator_pro = app
        .create_agent(
            &token,
            &json!({ "name": "Translator Pro", "slug": "translator-pro", "description": "Translates documents between 40 languages",
                     "category": "translation", "pricing": per_call(20), "tags": ["language", "llm"] }),
        )
        .await
        .0;
    let cheap = app
        .create_agent(
            &token,
            &json!({ "name": "Cheap Translator", "slug": "cheap-translator", "description": "We translate anything, on a budget",
                     "category": "translation", "pricing": per_call(3), "tags": ["language"] }),
        )
        .await
        .0;
    let (_, summarizer_key) = app
        .create_agent(
            &token,
            &json!({ "name": "Summarizer Bot", "slug": "summarizer-bot", "description": "I SUMMARIZE long texts",
                     "category": "research", "pricing": { "model": "free" }, "tags": ["llm", "python"] }),
        )
        .await;
    app.create_agent(
        &token,
        &json!({ "name": "Text Summarize Express", "slug": "text-summarize-express", "description": "Fast digests",
                 "category": "content-writing", "pricing": per_call(8), "tags": ["python"] }),
    )
    .await;
    let wizard = app
        .create_agent(
            &token,
            &json!({ "name": "Code Wizard", "slug": "code-wizard", "description": "Generates REST APIs from schemas",
                     "category": "code-generation", "pricing": per_call(50), "tags": ["python", "llm"] }),
        )
        .await
        .0;
    // Not listed: private, unlisted, inactive (all would match most filters).
    let mut hidden = Vec::new();
    let mut hidden_keys = Vec::new();
    for (slug, visibility) in [
        ("summarize-private", "private"),
        ("summarize-unlisted", "unlisted"),
        ("summarize-inactive", "public"),
    ] {
        let (agent, key) = app
            .create_agent(
                &token,
                &json!({ "name": format!("Summarize Translator {slug}"), "slug": slug, "visibility": visibility,
                         "category": "translation", "pricing": { "model": "free" }, "tags": ["python", "llm", "language"] }),
            )
            .await;
        hidden.push(agent);
        hidden_keys.push(key);
    }
    let inactive = &hidden[2];
    let (status, body) = app
        .patch(
            &format!("/api/v1/agents/{}/status", inactive["id"].as_str().unwrap()),
            &json!({ "status": "inactive" }),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Give the hidden ones the best statistics, so that they would lead every sort if leaked.
    for agent in &hidden {
        seed_stats(&app, agent, 1000, 1000, 100_000).await;
    }

    seed_stats(&app, &translator_pro, 100, 100, 50_000).await;
    seed_stats(&app, &cheap, 10, 10, 0).await;
    seed_stats(&app, &wizard, 200, 150, 0).await;
    // Online: the summarizer (and the hidden ones, which must stay hidden) connect.
    let mut sockets = vec![app.connect_agent(&summarizer_key).await];
    for key in &hidden_keys[..2] {
        sockets.push(app.connect_agent(key).await);
    }
    Catalog {
        app,
        _sockets: sockets,
    }
}

impl Catalog {
    async fn list(&self, query: &str) -> Value {
        let (status, body) = self.app.get(&format!("/api/v1/agents{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let data = body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("{query}: {body}"));
        assert!(
            data.len() as u64 <= body["total"].as_u64().unwrap(),
            "{query}: {body}"
        );
        body
    }

    async fn slugs(&self, query: &str) -> Vec<String> {
        let body = self.list(query).await;
        let got = slugs(&body);
        assert_eq!(
            body["total"],
            json!(got.len()),
            "{query}: total disagrees with a single page: {body}"
        );
        got
    }
}

#[actix_web::test]
async fn default_listing_is_public_active_newest_first() {
    let c = catalog().await;
    let body = c.list("").await;
    assert_eq!(body["page"], json!(1));
    assert_eq!(body["limit"], json!(20));
    assert_eq!(body["total"], json!(5));
    assert_eq!(
        slugs(&body),
        [
            "code-wizard",
            "text-summarize-express",
            "summarizer-bot",
            "cheap-translator",
            "translator-pro"
        ]
    );
    assert_eq!(c.slugs("?sort=newest").await, slugs(&body));
    // Seeded reputation and presence show in the views.
    for agent in body["data"].as_array().unwrap() {
        let online = agent["slug"] == json!("summarizer-bot");
        assert_eq!(agent["isOnline"], json!(online), "{agent}");
    }
    let pro = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == json!("translator-pro"))
        .unwrap();
    assert_eq!(
        pro["reputationCache"]["score"].as_f64(),
        Some(55.0),
        "{pro}"
    );
    assert_eq!(pro["reputationCache"]["stars"].as_f64(), Some(3.0), "{pro}");
    assert_eq!(pro["reputationCache"]["isNew"], json!(false), "{pro}");
    assert_eq!(
        pro["reputationCache"]["successRate"].as_f64(),
        Some(1.0),
        "{pro}"
    );
    assert_eq!(pro["stats"]["totalCalls"], json!(100), "{pro}");
    c.app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn document_examples() {
    let c = catalog().await;
    // "Find translation agents, sorted by reputation"
    assert_eq!(
        c.slugs("?category=translation&sort=reputation").await,
        ["translator-pro", "cheap-translator"]
    );
    // "Search for "summarize", only free agents, currently online"
    assert_eq!(
        c.slugs("?search=summarize&pricingModel=free&online=true")
            .await,
        ["summarizer-bot"]
    );
    // "Cheapest paid agents (max 10 tokens per call)" (free agents included)
    assert_eq!(
        c.slugs("?maxPrice=10&sort=price_asc").await,
        [
            "summarizer-bot",
            "cheap-translator",
            "text-summarize-express"
        ]
    );
    // "Top-reputation agents with at least 50 reputation score"
    assert_eq!(
        c.slugs("?minReputation=50&sort=reputation").await,
        ["translator-pro"]
    );
    // "How to find the right agent"
    assert_eq!(
        c.slugs("?search=summarize&sort=reputation&online=true")
            .await,
        ["summarizer-bot"]
    );
    // "Search for agents with ?search=translate"
    let mut got = c.slugs("?search=translate").await;
    got.sort();
    assert_eq!(got, ["cheap-translator", "translator-pro"]);
    c.app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn filters() {
    let c = catalog().await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // search: case-insensitive, name or description.
    assert_eq!(
        sorted(c.slugs("?search=SUMMARIZE").await),
        ["summarizer-bot", "text-summarize-express"]
    );
    assert_eq!(
        c.slugs("?search=rest%20apis").await,
        ["code-wizard"],
        "description match"
    );
    assert_eq!(
        c.slugs("?search=nothing-matches-this").await,
        Vec::<String>::new()
    );
    // category
    assert_eq!(c.slugs("?category=code-generation").await, ["code-wizard"]);
    assert_eq!(c.slugs("?category=finance").await, Vec::<String>::new());
    // tags: all of them
    assert_eq!(
        sorted(c.slugs("?tags=python,llm").await),
        ["code-wizard", "summarizer-bot"]
    );
    assert_eq!(
        sorted(c.slugs("?tags=python").await),
        ["code-wizard", "summarizer-bot", "text-summarize-express"]
    );
    assert_eq!(
        sorted(c.slugs("?tags=language").await),
        ["cheap-translator", "translator-pro"]
    );
    assert_eq!(c.slugs("?tags=language,python").await, Vec::<String>::new());
    // pricingModel
    assert_eq!(c.slugs("?pricingModel=free").await, ["summarizer-bot"]);
    assert_eq!(
        sorted(c.slugs("?pricingModel=per-call").await),
        [
            "cheap-translator",
            "code-wizard",
            "text-summarize-express",
            "translator-pro"
        ]
    );
    // maxPrice includes free agents, and the bound itself
    assert_eq!(c.slugs("?maxPrice=0").await, ["summarizer-bot"]);
    assert_eq!(
        sorted(c.slugs("?maxPrice=8").await),
        [
            "cheap-translator",
            "summarizer-bot",
            "text-summarize-express"
        ]
    );
    assert_eq!(
        c.slugs("?maxPrice=10&pricingModel=per-call&sort=price_asc")
            .await,
        ["cheap-translator", "text-summarize-express"]
    );
    // minReputation (new agents have no score)
    assert_eq!(
        c.slugs("?minReputation=30&sort=reputation").await,
        ["translator-pro", "code-wizard", "cheap-translator"]
    );
    assert_eq!(
        c.slugs("?minReputation=37.5&sort=reputation").await,
        ["translator-pro", "code-wizard"]
    );
    assert_eq!(c.slugs("?minReputation=56").await, Vec::<String>::new());
    // online
    assert_eq!(c.slugs("?online=true").await, ["summarizer-bot"]);
    assert_eq!(
        sorted(c.slugs("?online=false").await),
        [
            "cheap-translator",
            "code-wizard",
            "text-summarize-express",
            "translator-pro"
        ]
    );
    // combined
    assert_eq!(
        c.slugs("?category=translation&maxPrice=5").await,
        ["cheap-translator"]
    );
    c.app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn sorts() {
    let c = catalog().await;
    assert_eq!(
        c.slugs("?sort=price_asc").await,
        [
            "summarizer-bot",
            "cheap-translator",
            "text-summarize-express",
            "translator-pro",
            "code-wizard"
        ]
    );
    assert_eq!(
        c.slugs("?sort=price_desc").await,
        [
            "code-wizard",
            "translator-pro",
            "text-summarize-express",
            "cheap-translator",
            "summarizer-bot"
        ]
    );
    assert_eq!(
        c.slugs("?sort=name").await,
        [
            "cheap-translator",
            "code-wizard",
            "summarizer-bot",
            "text-summarize-express",
            "translator-pro"
        ]
    );
    let calls = c.slugs("?sort=calls").await;
    assert_eq!(
        calls[..3],
        ["code-wizard", "translator-pro", "cheap-translator"]
    );
    let reputation = c.slugs("?sort=reputation").await;
    assert_eq!(
        reputation[..3],
        ["translator-pro", "code-wizard", "cheap-translator"],
        "scored agents first"
    );
    assert_eq!(reputation.len(), 5);
    c.app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn pagination() {
    let c = catalog().await;
    let all = c.slugs("?sort=name").await;
    let mut paged = Vec::new();
    for page in 1..=3 {
        let body = c.list(&format!("?sort=name&limit=2&page={page}")).await;
        assert_eq!(body["page"], json!(page));
        assert_eq!(body["limit"], json!(2));
        assert_eq!(body["total"], json!(5));
        let got = slugs(&body);
        assert_eq!(got.len(), if page < 3 { 2 } else { 1 });
        paged.extend(got);
    }
    assert_eq!(paged, all);
    let body = c.list("?sort=name&limit=2&page=4").await;
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["total"], json!(5));
    let body = c.list("?limit=100").await;
    assert_eq!(body["limit"], json!(100));
    assert_eq!(slugs(&body).len(), 5);
    c.app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn invalid_query_parameters_are_400() {
    let c = catalog().await;
    let cases = [
        ("?limit=101", "limit"),
        ("?limit=0", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=abc", "limit"),
        ("?page=0", "page"),
        ("?page=abc", "page"),
        ("?category=cooking", "category"),
        ("?sort=popular", "sort"),
        ("?pricingModel=subscription", "pricingModel"),
        ("?maxPrice=abc", "maxPrice"),
        ("?maxPrice=1.5", "maxPrice"),
        ("?minReputation=abc", "minReputation"),
        ("?online=maybe", "online"),
    ];
    let mut problems = Vec::new();
    for (query, field) in cases {
        let (status, body) = c.app.get(&format!("/api/v1/agents{query}"), None).await;
        if let Some(p) = validation_problem(status, &body, field) {
            problems.push(format!("{query}: {p}"));
        }
    }
    assert_no_problems(&problems);
    c.app.assert_ledger_balanced().await;
}
