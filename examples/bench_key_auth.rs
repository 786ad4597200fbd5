//! Measures what the API-key cache saves: the latency of `GET /api/v1/billing/balance`
//! authenticated by a key that is already verified (cache hit) versus one that must be checked
//! with Argon2 (the cache is emptied before each request). Runs the real server in-process on
//! a temporary SQLite database and prints medians, p90 and their ratio.
//!
//!     cargo run --release --example bench_key_auth [-- <cached requests> <argon2 requests>]

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agenthub::{config::Settings, startup::Application};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cached_n: usize = args.next().map_or(2000, |a| a.parse().unwrap());
    let argon_n: usize = args.next().map_or(100, |a| a.parse().unwrap());
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        http_addr: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        smtp_addr: "off".into(),
        rate_limit_per_min: 0,
        ..Settings::default()
    };
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let hub = app.hub();
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let reg: Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "bench@example.com", "username": "bench", "password": "bench-password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = reg["accessToken"].as_str().unwrap().to_string();
    let created: Value = client
        .post(format!("{base}/api/v1/agents"))
        .bearer_auth(&token)
        .json(&json!({"name": "Bench Agent", "slug": "bench-agent"}))
        .send()
        .await?
        .json()
        .await?;
    let key = created["apiKey"].as_str().unwrap().to_string();
    let agent_id: uuid::Uuid = created["agent"]["id"].as_str().unwrap().parse()?;

    let request = || {
        client
            .get(format!("{base}/api/v1/billing/balance"))
            .bearer_auth(&key)
            .send()
    };
    for _ in 0..50 {
        assert!(request().await?.status().is_success());
    }
    let mut cached = Vec::with_capacity(cached_n);
    for _ in 0..cached_n {
        let t = Instant::now();
        assert!(request().await?.status().is_success());
        cached.push(t.elapsed());
    }
    let mut argon = Vec::with_capacity(argon_n);
    for _ in 0..argon_n {
        hub.keys.evict_agent(agent_id);
        let t = Instant::now();
        assert!(request().await?.status().is_success());
        argon.push(t.elapsed());
    }
    let (c50, c90) = (percentile(&mut cached, 0.5), percentile(&mut cached, 0.9));
    let (a50, a90) = (percentile(&mut argon, 0.5), percentile(&mut argon, 0.9));
    println!("key auth, GET /api/v1/billing/balance, sequential, loopback");
    println!("cached key  (n={cached_n:>5}): median {c50:>10.1?}  p90 {c90:>10.1?}");
    println!("argon2 key  (n={argon_n:>5}): median {a50:>10.1?}  p90 {a90:>10.1?}");
    println!(
        "ratio of medians: {:.0}x",
        a50.as_secs_f64() / c50.as_secs_f64()
    );
    Ok(())
}
