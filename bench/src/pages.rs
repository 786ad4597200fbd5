//! The `pages` scenario: the public marketplace and discovery at 10,000 agents. Seeds the
//! agents straight into the database (as one owner's public agents, with varied categories,
//! tags, prices and reputation), then times each page over loopback, one request at a time, so
//! the figure is the server's time plus a loopback round trip.

use crate::hist;
use entities::agents;
use sea_orm::{EntityTrait, Set};
use serde_json::json;
use std::time::Instant;

/// Inserts `n` public agents owned by `owner`.
pub async fn seed(
    db: &sea_orm::DatabaseConnection,
    owner: uuid::Uuid,
    n: usize,
) -> anyhow::Result<()> {
    let categories = actors::catalog::CATEGORIES;
    let words = [
        "translate",
        "summarise",
        "review",
        "search",
        "code",
        "image",
        "audio",
        "legal",
    ];
    let now = chrono::Utc::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let rows = chunk.iter().map(|&i| {
            let tags = [words[i % words.len()], words[(i / 7) % words.len()]];
            let price = (i % 5) as i64 * 3;
            agents::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                owner_id: Set(owner),
                name: Set(format!("Seeded {} agent {i}", words[i % words.len()])),
                slug: Set(format!("seeded-{i}")),
                version: Set("1.0.0".into()),
                description: Set(format!(
                    "Agent number {i}: it can {} things quickly.",
                    words[(i / 3) % words.len()]
                )),
                connection_mode: Set(Some("websocket".into())),
                delivery_mode: Set(None),
                mcp_endpoint: Set(None),
                endpoint: Set(None),
                visibility: Set("public".into()),
                status: Set("active".into()),
                pricing_model: Set(if price > 0 { "per-call" } else { "free" }.into()),
                price_per_call: Set(price),
                tags: Set(json!(tags)),
                tags_index: Set(format!(",{},{},", tags[0], tags[1])),
                category: Set(categories[i % categories.len()].to_string()),
                tools: Set(None),
                total_calls: Set((i % 50) as i64),
                completed_calls: Set((i % 40) as i64),
                failed_calls: Set((i % 50 - i % 40) as i64),
                total_latency_ms: Set((i % 40) as i64 * 120),
                tokens_earned: Set((i % 40) as i64 * price),
                reputation_score: Set((i % 3 != 0).then_some((i % 100) as f64)),
                review_count: Set((i % 4) as i64),
                rating_sum: Set((i % 4) as i64 * 4),
                checks_total: Set(0),
                checks_healthy: Set(0),
                last_check_healthy: Set(None),
                last_check_latency_ms: Set(None),
                last_check_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
        });
        agents::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

/// Times each page `n` times; prints median, p99 and max per page. Returns the worst median.
pub async fn time_pages(client: &reqwest::Client, base: &str, n: usize) -> anyhow::Result<f64> {
    let pages = [
        "/",
        "/marketplace",
        "/marketplace?search=summarise",
        "/marketplace?category=code-generation&sort=reputation",
        "/marketplace?tags=code,legal&maxPrice=6&sort=price_asc",
        "/marketplace?minReputation=50&sort=newest",
        "/marketplace?page=250",
        "/marketplace/seeded-4242",
        "/api/v1/agents?search=audio&limit=50",
        "/api/v1/agents?tags=translate&sort=reputation&page=20",
        "/api/v1/agents/leaderboard/top-rated",
        "/skill.md",
    ];
    let mut worst: f64 = 0.0;
    for page in pages {
        let mut lat = hist::new();
        for _ in 0..n {
            let t = Instant::now();
            let res = client.get(format!("{base}{page}")).send().await?;
            let status = res.status();
            let _ = res.bytes().await?;
            if !status.is_success() {
                anyhow::bail!("{page}: {status}");
            }
            hist::record(&mut lat, t.elapsed());
        }
        let p50 = hist::ms(&lat, 0.5);
        worst = worst.max(p50);
        println!(
            "  {page:<55} p50 {p50:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            hist::ms(&lat, 0.99),
            hist::max_ms(&lat)
        );
    }
    Ok(worst)
}
