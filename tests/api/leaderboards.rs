//! Leaderboards: top this week, richest, top rated, after calls of known sizes: ordering,
//! ranks across pages, tokens earned, stars, and only public active agents.

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_validation, spawn_app};
use crate::reviews::{
    assert_close, caller_key, complete_calls, expected_score, expected_stars, served, served_with,
    uptime_ratio,
};

const WEEK: &str = "/api/v1/agents/leaderboard/week";
const RICHEST: &str = "/api/v1/agents/leaderboard/richest";
const TOP_RATED: &str = "/api/v1/agents/leaderboard/top-rated";

async fn board(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

fn slugs(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data in {page}"))
        .iter()
        .map(|r| r["agent"]["slug"].as_str().expect("slug").to_string())
        .collect()
}

fn column(page: &Value, key: &str) -> Vec<Value> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data in {page}"))
        .iter()
        .map(|r| r[key].clone())
        .collect()
}

fn assert_row_keys(row: &Value, value_key: &str) {
    let mut keys: Vec<&str> = row
        .as_object()
        .unwrap_or_else(|| panic!("row: {row}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = vec!["agent", "rank", "stars", value_key];
    expected.sort_unstable();
    assert_eq!(keys, expected, "row keys in {row}");
    let mut agent_keys: Vec<&str> = row["agent"]
        .as_object()
        .unwrap_or_else(|| panic!("agent in {row}"))
        .keys()
        .map(String::as_str)
        .collect();
    agent_keys.sort_unstable();
    assert_eq!(agent_keys, ["id", "name", "slug"], "agent keys in {row}");
}

/// Four public agents of different owners earn, through one caller:
/// `alpha` 1 × 10 = 10, `bravo` 5 × 3 = 15, `charlie` 2 × 7 = 14, `delta` 4 free calls.
/// A private agent (`hidden`, 50) and an inactive one (`paused`, 20) earn too; a new agent
/// (`fresh`) earns nothing.
#[actix_web::test]
async fn boards_rank_agents_by_earnings_and_score() {
    let app = spawn_app().await;
    let (payer, _) = app.register_user("payer").await;
    let key = caller_key(&app, &payer, "payer-caller").await;
    let mut served_agents = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for (slug, price, calls) in [
        ("alpha", 10, 1),
        ("bravo", 3, 5),
        ("charlie", 7, 2),
        ("delta", 0, 4),
        ("paused", 20, 1),
    ] {
        let (owner, _) = app.register_user(&format!("owner-{slug}")).await;
        let s = served(&app, &owner, slug, price).await;
        complete_calls(&app, &key, &s.id, price, calls).await;
        if slug == "paused" {
            let (status, body) = app
                .patch(
                    &format!("/api/v1/agents/{}/status", s.id),
                    &json!({ "status": "inactive" }),
                    Some(&owner),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        ids.insert(slug, (s.id.clone(), price, calls));
        served_agents.push(s);
    }
    // Private agents are callable only by their owner's agents.
    let hidden = served_with(&app, &payer, "hidden", 50, "private").await;
    complete_calls(&app, &key, &hidden.id, 50, 1).await;
    let (fresh_owner, _) = app.register_user("owner-fresh").await;
    let fresh = served(&app, &fresh_owner, "fresh", 1).await;

    // Top this week and richest: by tokens earned, paid agents only.
    for path in [WEEK, RICHEST] {
        let page = board(&app, path).await;
        assert_eq!(
            slugs(&page),
            ["bravo", "charlie", "alpha"],
            "{path}: {page}"
        );
        assert_eq!(
            column(&page, "tokensEarned"),
            [json!(15), json!(14), json!(10)],
            "{path}"
        );
        assert_eq!(column(&page, "rank"), [json!(1), json!(2), json!(3)]);
        assert_eq!(page["total"], json!(3), "{path}: {page}");
        assert_eq!(page["page"], json!(1));
        assert_eq!(page["limit"], json!(20));
        let first = &page["data"][0];
        assert_row_keys(first, "tokensEarned");
        assert_eq!(first["agent"]["id"], json!(ids["bravo"].0));
        assert_eq!(first["agent"]["name"], json!("Agent bravo"));
        let detail = crate::reviews::agent_detail(&app, &ids["bravo"].0, None).await;
        assert_eq!(first["stars"], detail["reputationCache"]["stars"]);

        // Ranks continue across pages.
        let p1 = board(&app, &format!("{path}?limit=2")).await;
        let p2 = board(&app, &format!("{path}?limit=2&page=2")).await;
        let p3 = board(&app, &format!("{path}?limit=2&page=3")).await;
        assert_eq!(slugs(&p1), ["bravo", "charlie"]);
        assert_eq!(slugs(&p2), ["alpha"]);
        assert_eq!(column(&p2, "rank"), [json!(3)]);
        assert_eq!(p2["total"], json!(3));
        assert!(slugs(&p3).is_empty());

        let (status, body) = app.get(&format!("{path}?limit=101"), None).await;
        assert_validation(status, &body, "limit");
        let (status, body) = app.get(&format!("{path}?page=0"), None).await;
        assert_validation(status, &body, "page");
    }

    // Top rated: by score, agents with calls only (the free one too), computed from the
    // document's formula.
    let page = board(&app, TOP_RATED).await;
    let mut expected = Vec::new();
    for slug in ["alpha", "bravo", "charlie", "delta"] {
        let (id, price, calls) = &ids[slug];
        let uptime = uptime_ratio(&app, id).await;
        let calls = *calls as i64;
        let score = expected_score(calls, calls, price * calls, uptime, &[]);
        expected.push((slug, score));
    }
    expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let by_score: Vec<&str> = expected.iter().map(|e| e.0).collect();
    let mut got = slugs(&page);
    // Ties are broken by agent id, which the test does not know: compare as sets per score.
    assert_eq!(page["total"], json!(4), "{page}");
    for (i, row) in page["data"].as_array().unwrap().iter().enumerate() {
        assert_row_keys(row, "score");
        assert_eq!(row["rank"], json!(i + 1));
        let slug = row["agent"]["slug"].as_str().unwrap();
        let score = expected.iter().find(|e| e.0 == slug).unwrap().1;
        assert_close(&row["score"], score, slug);
        assert_close(&row["stars"], expected_stars(score), slug);
    }
    got.sort();
    let mut want = by_score.clone();
    want.sort();
    assert_eq!(got, want, "{page}");
    let scores: Vec<f64> = column(&page, "score")
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "sorted: {scores:?}"
    );
    let p2 = board(&app, &format!("{TOP_RATED}?limit=3&page=2")).await;
    assert_eq!(column(&p2, "rank"), [json!(4)]);

    fresh.agent.disconnect().await;
    hidden.agent.disconnect().await;
    for s in served_agents {
        s.agent.disconnect().await;
    }
    app.assert_ledger_balanced().await;
}

/// Earnings older than seven days leave the weekly board but stay on the richest one.
#[actix_web::test]
async fn week_board_counts_only_the_last_seven_days() {
    let app = spawn_app().await;
    let (payer, _) = app.register_user("payer").await;
    let key = caller_key(&app, &payer, "payer-caller").await;
    let (o1, _) = app.register_user("owner-one").await;
    let (o2, _) = app.register_user("owner-two").await;
    let old = served(&app, &o1, "old-timer", 40).await;
    let new = served(&app, &o2, "newcomer", 6).await;
    complete_calls(&app, &key, &old.id, 40, 2).await;
    complete_calls(&app, &key, &new.id, 6, 1).await;

    // Move one of old-timer's two charges eight days back (time passing, not a new event).
    let old_id = uuid::Uuid::parse_str(&old.id).unwrap();
    let charges = entities::ledger_transactions::Entity::find()
        .filter(entities::ledger_transactions::Column::AgentId.eq(old_id))
        .filter(entities::ledger_transactions::Column::Kind.eq("charge"))
        .all(&app.hub.db)
        .await
        .unwrap();
    assert_eq!(charges.len(), 2);
    let eight_days_ago = chrono::Utc::now() - chrono::Duration::days(8);
    entities::ledger_transactions::Entity::update_many()
        .col_expr(
            entities::ledger_transactions::Column::CreatedAt,
            Expr::value(eight_days_ago),
        )
        .filter(entities::ledger_transactions::Column::Id.eq(charges[0].id))
        .exec(&app.hub.db)
        .await
        .unwrap();

    let week = board(&app, WEEK).await;
    assert_eq!(slugs(&week), ["old-timer", "newcomer"], "{week}");
    assert_eq!(column(&week, "tokensEarned"), [json!(40), json!(6)]);

    entities::ledger_transactions::Entity::update_many()
        .col_expr(
            entities::ledger_transactions::Column::CreatedAt,
            Expr::value(eight_days_ago),
        )
        .filter(entities::ledger_transactions::Column::Id.eq(charges[1].id))
        .exec(&app.hub.db)
        .await
        .unwrap();
    let week = board(&app, WEEK).await;
    assert_eq!(slugs(&week), ["newcomer"], "{week}");
    assert_eq!(week["total"], json!(1));

    let richest = board(&app, RICHEST).await;
    assert_eq!(slugs(&richest), ["old-timer", "newcomer"], "{richest}");
    assert_eq!(column(&richest, "tokensEarned"), [json!(80), json!(6)]);

    old.agent.disconnect().await;
    new.agent.disconnect().await;
    app.assert_ledger_balanced().await;
}

#[actix_web::test]
async fn empty_boards_and_route_precedence() {
    let app = spawn_app().await;
    for path in [WEEK, RICHEST, TOP_RATED] {
        let page = board(&app, path).await;
        assert_eq!(
            page,
            json!({ "data": [], "page": 1, "limit": 20, "total": 0 })
        );
    }
    // `leaderboard` is not an agent slug: the detail route does not swallow it.
    let (status, _) = app.get("/api/v1/agents/leaderboard", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.assert_ledger_balanced().await;
}
