//! `agenthub-bench`: paid `/mcp/call` throughput and latency of agenthub, measured in the
//! same run, alternating, against a *null hub* on the same stack (actix-web in, the envelope
//! WebSocket to the agent, the same answer out; keys in a map, no database), so that every
//! figure is also a ratio. Closed loop at 1, 16 and 64 calls in flight gives the ceiling;
//! open loop at 50 % and 80 % of the hub's ceiling gives latencies that coordinated omission
//! cannot flatter (each call is timed from when it was due, not from when it was sent). After
//! the runs the ledger is checked.
//!
//!     cargo run --release -p agenthub-bench -- [--secs 5] [--inflight 1,16,64] [--agents 4]
//!     cargo run --release -p agenthub-bench -- --smoke      # CI: short, fails on a 3x regression
//!     cargo run --release -p agenthub-bench -- --scenarios s1  # idle agents, reconnect storm
//!     cargo run --release -p agenthub-bench -- --scenarios s5  # inbound email
//!     cargo run --release -p agenthub-bench -- --scenarios s6 --soak-secs 600  # the soak
//!
//! The hub runs in-process on a fresh SQLite file (or `--database-url postgres://...`), with
//! the load generator on the same machine; only S1 runs it as a separate process (`--hub-bin`).
//! Every percentile comes from an HDR histogram (`hist`).

mod agent;
mod email;
mod hist;
mod idle;
mod null_hub;
mod pages;
mod peers;
mod plain;
mod soak;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

#[derive(Parser, Debug)]
struct Args {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Calls in flight for the closed-loop runs.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    inflight: Vec<usize>,
    /// Simulated agents the calls are spread over.
    #[arg(long, default_value_t = 4)]
    agents: usize,
    /// Price of a call, in tokens.
    #[arg(long, default_value_t = 5)]
    price: i64,
    /// Alternating rounds (null hub, then agenthub) per setting; medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip the open-loop runs.
    #[arg(long)]
    no_open_loop: bool,
    /// Scenarios: `s1` (idle envelope WebSocket agents and the reconnect storm, the hub as a
    /// separate process), `s2` (envelope WebSocket agents), `s3` (polling agents), `s4` (webhook
    /// push), `s5` (inbound email), `s6` (the soak: S2, S3, S4 and S5 at once), `pages` (the
    /// public pages and discovery with `--page-agents` agents).
    #[arg(long, value_delimiter = ',', default_value = "s2,s3,s4")]
    scenarios: Vec<String>,
    /// `postgres://…` to run the hub on PostgreSQL (default: a fresh SQLite file).
    #[arg(long)]
    database_url: Option<String>,
    /// SQLite's `synchronous` for the hub: `normal` or `full`.
    #[arg(long, default_value = "normal")]
    sqlite_synchronous: String,
    /// NATS server for the broker floor of S2 (`nats-server` on this machine).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Skip the NATS and bare WebSocket floors of S2.
    #[arg(long)]
    no_peers: bool,
    /// Agents seeded for the `pages` scenario.
    #[arg(long, default_value_t = 10_000)]
    page_agents: usize,
    /// S1: numbers of idle agents, one fresh hub process each.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    s1_agents: Vec<usize>,
    /// S1: the hub binary (`cargo build --release -p agenthub`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/agenthub"))]
    hub_bin: std::path::PathBuf,
    /// S1: `KEY=VALUE` added to the hub process's environment (repeatable), e.g.
    /// `MALLOC_MMAP_THRESHOLD_=131072` so that glibc returns Argon2's 19 MiB buffers at once.
    #[arg(long)]
    hub_env: Vec<String>,
    /// S1: seconds over which idle CPU, and the probe's calls before the storm, are measured.
    #[arg(long, default_value_t = 5.0)]
    idle_secs: f64,
    /// S1: WebSocket handshakes in flight while the agents first connect.
    #[arg(long, default_value_t = 4)]
    s1_connect_concurrency: usize,
    /// S1: an agent gives up a connection attempt after this many seconds and backs off.
    #[arg(long, default_value_t = 60)]
    s1_connect_timeout_secs: u64,
    /// S1: the longest the reconnect storm is waited for, in seconds.
    #[arg(long, default_value_t = 600)]
    s1_storm_max_secs: u64,
    /// S1: the reconnect storm is stopped (the hub killed) when the hub's RSS passes this,
    /// to keep a shared machine alive.
    #[arg(long, default_value_t = 12_288)]
    s1_max_hub_rss_mib: u64,
    /// S1: only the idle figures, no reconnect storm.
    #[arg(long)]
    s1_no_storm: bool,
    /// S5: concurrent SMTP clients.
    #[arg(long, default_value_t = 8)]
    email_clients: usize,
    /// S5: messages per SMTP client and round.
    #[arg(long, default_value_t = 250)]
    email_messages: usize,
    /// S6: length of the soak, in seconds.
    #[arg(long, default_value_t = 600.0)]
    soak_secs: f64,
    /// S6: seconds between samples.
    #[arg(long, default_value_t = 60.0)]
    soak_sample_secs: f64,
    /// S6: calls (and SMTP clients) in flight per kind.
    #[arg(long, default_value_t = 2)]
    soak_inflight: usize,
    /// CI smoke run: 16 in flight, 1 s runs, one round; fails when agenthub's throughput is
    /// under a third of `--smoke-min-ratio` times the null hub's.
    #[arg(long)]
    smoke: bool,
    /// The hub/null ratio at 16 in flight recorded in BENCHMARKS.md for the smoke run (a
    /// debug build, as `scripts/test` runs it).
    #[arg(long, default_value_t = 0.08)]
    smoke_min_ratio: f64,
}

/// One measured run.
#[derive(Debug, Clone)]
struct Run {
    calls_per_s: f64,
    errors: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn summarize(lat: &hist::Hist, elapsed: Duration, errors: usize) -> Run {
    Run {
        calls_per_s: lat.len() as f64 / elapsed.as_secs_f64(),
        errors,
        p50: hist::ms(lat, 0.50),
        p90: hist::ms(lat, 0.90),
        p99: hist::ms(lat, 0.99),
        max: hist::max_ms(lat),
    }
}

/// Where and how to call.
#[derive(Clone)]
struct Target {
    url: String,
    key: String,
    agents: Vec<String>,
    /// `echo` for envelope agents, `task` for poll and push agents.
    tool: &'static str,
}

async fn one_call(client: &reqwest::Client, t: &Target, i: usize) -> bool {
    let arguments = if t.tool == "task" {
        json!({ "task": "Hello!" })
    } else {
        json!({ "message": "Hello!" })
    };
    let body = json!({
        "targetAgentId": t.agents[i % t.agents.len()],
        "toolName": t.tool,
        "arguments": arguments,
    });
    match client
        .post(&t.url)
        .bearer_auth(&t.key)
        .json(&body)
        .send()
        .await
    {
        Ok(res) if res.status().is_success() => res
            .json::<Value>()
            .await
            .is_ok_and(|v| v["status"] == "completed"),
        _ => false,
    }
}

/// The group-commit writer's counters: commits, committed jobs, split batches.
fn writer_counts(hub: &actors::Hub) -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let stats = hub.writer.stats();
    (
        stats.commits.load(Relaxed),
        stats.committed_jobs.load(Relaxed),
        stats.split_batches.load(Relaxed),
    )
}

/// `inflight` workers, each calling again as soon as its call returns.
async fn closed_loop(client: &reqwest::Client, t: &Target, inflight: usize, secs: f64) -> Run {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let workers: Vec<_> = (0..inflight)
        .map(|w| {
            let (client, t) = (client.clone(), t.clone());
            tokio::spawn(async move {
                let (mut lat, mut errors, mut i) = (hist::new(), 0, w);
                while Instant::now() < until {
                    let began = Instant::now();
                    if one_call(&client, &t, i).await {
                        hist::record(&mut lat, began.elapsed());
                    } else {
                        errors += 1;
                    }
                    i += inflight;
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (hist::new(), 0);
    for w in workers {
        match w.await {
            Ok((l, e)) => {
                hist::merge(&mut lat, &l);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    summarize(&lat, start.elapsed(), errors)
}

/// Calls started at a fixed rate whatever the answers do; each is timed from when it was due.
async fn open_loop(client: &reqwest::Client, t: &Target, rate: f64, secs: f64) -> Run {
    let start = Instant::now();
    let n = (rate * secs) as usize;
    let slots = Arc::new(tokio::sync::Semaphore::new(4096));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (client, t, slots) = (client.clone(), t.clone(), slots.clone());
        handles.push(tokio::spawn(async move {
            let _permit = slots.acquire_owned().await;
            let ok = one_call(&client, &t, i).await;
            (ok, due.elapsed())
        }));
    }
    let (mut lat, mut errors) = (hist::new(), 0);
    for h in handles {
        match h.await {
            Ok((true, d)) => hist::record(&mut lat, d),
            _ => errors += 1,
        }
    }
    let mut run = summarize(&lat, start.elapsed(), errors);
    run.calls_per_s = n as f64 / secs;
    run
}

fn median(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn line(label: &str, runs: &[Run]) -> String {
    format!(
        "{label:<34} {:>9.0} calls/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  errors {}",
        median(runs, |r| r.calls_per_s),
        median(runs, |r| r.p50),
        median(runs, |r| r.p90),
        median(runs, |r| r.p99),
        median(runs, |r| r.max),
        runs.iter().map(|r| r.errors).sum::<usize>(),
    )
}

async fn post(
    client: &reqwest::Client,
    url: String,
    body: Value,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    let mut req = client.post(&url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if !status.is_success() {
        bail!("{url}: {status} {body}");
    }
    Ok(body)
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.secs = 1.0;
        args.inflight = vec![16];
        args.rounds = 1;
        args.no_open_loop = true;
        args.scenarios = vec!["s2".into()];
        args.no_peers = true;
    }
    agenthub::startup::install_crypto_provider();
    // The hub's own warnings and errors (RUST_LOG, default `warn`), on stderr.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let has = |name: &str| args.scenarios.iter().any(|s| s == name);
    if has("s1") {
        idle::run(&idle::Options {
            sizes: args.s1_agents.clone(),
            hub_env: args.hub_env.clone(),
            hub_bin: args.hub_bin.clone(),
            idle_secs: args.idle_secs,
            connect_concurrency: args.s1_connect_concurrency.max(1),
            connect_timeout: Duration::from_secs(args.s1_connect_timeout_secs),
            storm_max: Duration::from_secs(args.s1_storm_max_secs),
            max_hub_rss: args.s1_max_hub_rss_mib * 1024 * 1024,
            no_storm: args.s1_no_storm,
        })
        .await?;
    }
    let mail = has("s5") || has("s6");
    let dir = tempfile::tempdir()?;
    // On PostgreSQL every run gets a database of its own, so runs never see each other's data.
    if let Some(server) = args.database_url.clone() {
        use sea_orm::ConnectionTrait;
        let name = format!("agenthub_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&server).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        let _ = admin.close().await;
        let mut url = url::Url::parse(&server)?;
        url.set_path(&format!("/{name}"));
        args.database_url = Some(url.to_string());
    }
    let settings = agenthub::config::Settings {
        http_addr: "127.0.0.1:0".into(),
        smtp_addr: if mail { "127.0.0.1:0" } else { "off" }.into(),
        mail_rate_per_hour: 0,
        data_dir: dir.path().to_path_buf(),
        database_url: args.database_url.clone(),
        rate_limit_per_min: 0,
        // The push scenario's webhook listens on 127.0.0.1.
        allow_private_urls: true,
        start_tokens: 1_000_000_000,
        sqlite_synchronous: args.sqlite_synchronous.clone(),
        ..Default::default()
    };
    let app = agenthub::startup::Application::build(settings).await?;
    let hub_port = app.port();
    let smtp_port = app.smtp_port();
    let hub = app.hub();
    actix_web::rt::spawn(app.run_until_stopped());
    let base = format!("http://127.0.0.1:{hub_port}/api/v1");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;

    // Seed agenthub: an owner with N priced agents, a caller with an API key.
    let owner = post(&client, format!("{base}/auth/register"),
        json!({ "email": "owner@bench.example", "username": "owner", "password": "bench-password" }), None).await?;
    let owner_token = owner["accessToken"].as_str().context("token")?.to_string();
    let caller = post(&client, format!("{base}/auth/register"),
        json!({ "email": "caller@bench.example", "username": "caller", "password": "bench-password" }), None).await?;
    let caller_token = caller["accessToken"].as_str().context("token")?.to_string();
    let caller_agent = post(
        &client,
        format!("{base}/agents"),
        json!({ "name": "Caller", "slug": "bench-caller" }),
        Some(&caller_token),
    )
    .await?;
    let caller_key = caller_agent["apiKey"].as_str().context("key")?.to_string();
    let null_state = Arc::new(null_hub::State::default());
    null_state.keys.insert(caller_key.clone(), "caller".into());
    let null_port = null_hub::start(null_state.clone())?;
    let mut hub_agents = Vec::new();
    let mut null_agents = Vec::new();
    let mut agent_tasks = Vec::new();
    for i in 0..args.agents {
        let created = post(
            &client,
            format!("{base}/agents"),
            json!({ "name": format!("Echo {i}"), "slug": format!("bench-echo-{i}"),
                    "pricing": { "model": "per-call", "pricePerCall": args.price } }),
            Some(&owner_token),
        )
        .await?;
        let id = created["agent"]["id"].as_str().context("id")?.to_string();
        let key = created["apiKey"].as_str().context("key")?.to_string();
        agent_tasks.push(
            agent::start(&format!("ws://127.0.0.1:{hub_port}/api/v1/agents/ws"), &key).await?,
        );
        null_state.keys.insert(key.clone(), id.clone());
        agent_tasks.push(
            agent::start(
                &format!("ws://127.0.0.1:{null_port}/api/v1/agents/ws"),
                &key,
            )
            .await?,
        );
        hub_agents.push(id.clone());
        null_agents.push(id);
    }
    let hub_target = Target {
        url: format!("{base}/mcp/call"),
        key: caller_key.clone(),
        agents: hub_agents,
        tool: "echo",
    };
    let null_target = Target {
        url: format!("http://127.0.0.1:{null_port}/api/v1/mcp/call"),
        key: caller_key.clone(),
        agents: null_agents,
        tool: "echo",
    };
    // S3: polling agents, each with four long-polling workers; S4: a webhook on 127.0.0.1.
    let hook_port = plain::start_webhook()?;
    let (mut poll_agents, mut push_agents) = (Vec::new(), Vec::new());
    for i in 0..args.agents {
        let created = post(
            &client,
            format!("{base}/agents"),
            json!({ "name": format!("Poller {i}"), "slug": format!("bench-poll-{i}"), "deliveryMode": "poll",
                    "pricing": { "model": "per-call", "pricePerCall": args.price } }),
            Some(&owner_token),
        )
        .await?;
        let key = created["apiKey"].as_str().context("key")?.to_string();
        for _ in 0..4 {
            agent_tasks.push(plain::start_poller(
                client.clone(),
                format!("http://127.0.0.1:{hub_port}"),
                key.clone(),
            ));
        }
        poll_agents.push(created["agent"]["id"].as_str().context("id")?.to_string());
        let created = post(
            &client,
            format!("{base}/agents"),
            json!({ "name": format!("Hook {i}"), "slug": format!("bench-push-{i}"), "deliveryMode": "push",
                    "endpoint": format!("http://127.0.0.1:{hook_port}/hook"),
                    "pricing": { "model": "per-call", "pricePerCall": args.price } }),
            Some(&owner_token),
        )
        .await?;
        push_agents.push(created["agent"]["id"].as_str().context("id")?.to_string());
    }
    let poll_target = Target {
        agents: poll_agents,
        tool: "task",
        ..hub_target.clone()
    };
    let push_target = Target {
        agents: push_agents,
        tool: "task",
        ..hub_target.clone()
    };
    // Warm both up (connection pools, caches).
    closed_loop(&client, &null_target, 8, 0.3).await;
    closed_loop(&client, &hub_target, 8, 0.3).await;

    let backend = match &args.database_url {
        Some(_) => "PostgreSQL".to_string(),
        None => format!(
            "SQLite (WAL, synchronous={})",
            args.sqlite_synchronous.to_uppercase()
        ),
    };
    println!(
        "agenthub-bench: paid /mcp/call, {} agents, price {}, {} s runs, {} rounds, hub on {backend}",
        args.agents, args.price, args.secs, args.rounds
    );
    let echo_port = peers::start_echo().await?;
    let mut ceiling = 0.0f64;
    let mut smoke_ratio = None;
    let s2 = args.scenarios.iter().any(|s| s == "s2");
    for &c in args.inflight.iter().filter(|_| s2) {
        let (mut null_runs, mut hub_runs) = (Vec::new(), Vec::new());
        let writer_before = writer_counts(&hub);
        for _ in 0..args.rounds {
            null_runs.push(closed_loop(&client, &null_target, c, args.secs).await);
            hub_runs.push(closed_loop(&client, &hub_target, c, args.secs).await);
        }
        let ratio = median(&hub_runs, |r| r.calls_per_s) / median(&null_runs, |r| r.calls_per_s);
        println!("closed loop, {c:>3} in flight");
        println!(
            "  {}",
            line("null hub (same stack, no database)", &null_runs)
        );
        println!("  {}", line("agenthub", &hub_runs));
        let (commits, jobs, splits) = writer_counts(&hub);
        let (commits, jobs) = (commits - writer_before.0, jobs - writer_before.1);
        println!(
            "  agenthub's writer: {commits} commits, {:.1} jobs per commit, {} split batches",
            jobs as f64 / commits.max(1) as f64,
            splits - writer_before.2
        );
        println!("  ratio agenthub / null hub: {ratio:.3}");
        if !args.no_peers {
            let (mut nats_runs, mut echo_runs) = (Vec::new(), Vec::new());
            for _ in 0..args.rounds {
                match peers::nats(&args.nats_url, c, args.secs).await {
                    Ok((lat, errors, elapsed)) => nats_runs.push(summarize(&lat, elapsed, errors)),
                    Err(e) => println!("  NATS at {} unavailable: {e}", args.nats_url),
                }
                let (lat, errors, elapsed) = peers::ws_echo(echo_port, c, args.secs).await?;
                echo_runs.push(summarize(&lat, elapsed, errors));
            }
            let hub = median(&hub_runs, |r| r.calls_per_s);
            if !nats_runs.is_empty() {
                println!(
                    "  {}",
                    line("NATS request/reply (broker floor)", &nats_runs)
                );
                println!(
                    "  ratio agenthub / NATS: {:.3}",
                    hub / median(&nats_runs, |r| r.calls_per_s)
                );
            }
            println!(
                "  {}",
                line("bare WebSocket echo (transport floor)", &echo_runs)
            );
            println!(
                "  ratio agenthub / WebSocket echo: {:.3}",
                hub / median(&echo_runs, |r| r.calls_per_s)
            );
        }
        ceiling = ceiling.max(median(&hub_runs, |r| r.calls_per_s));
        if c == 16 {
            smoke_ratio = Some(ratio);
        }
    }
    for (name, target) in [("s3", &poll_target), ("s4", &push_target)] {
        if !args.scenarios.iter().any(|s| s == name) {
            continue;
        }
        let label = if name == "s3" {
            "S3 polling agents (4 long-polling workers each)"
        } else {
            "S4 webhook push (a local HTTP endpoint)"
        };
        for &c in &args.inflight {
            let (mut null_runs, mut hub_runs) = (Vec::new(), Vec::new());
            for _ in 0..args.rounds {
                null_runs.push(closed_loop(&client, &null_target, c, args.secs).await);
                hub_runs.push(closed_loop(&client, target, c, args.secs).await);
            }
            let ratio =
                median(&hub_runs, |r| r.calls_per_s) / median(&null_runs, |r| r.calls_per_s);
            println!("{label}, closed loop, {c:>3} in flight, paid task calls through /mcp/call");
            println!("  {}", line("null hub (envelope WebSocket)", &null_runs));
            println!("  {}", line("agenthub", &hub_runs));
            println!("  ratio agenthub / null hub: {ratio:.3}");
        }
    }
    if s2 && !args.no_open_loop && ceiling > 0.0 {
        for share in [0.5, 0.8] {
            let rate = ceiling * share;
            let (mut null_runs, mut hub_runs) = (Vec::new(), Vec::new());
            for _ in 0..args.rounds {
                null_runs.push(open_loop(&client, &null_target, rate, args.secs).await);
                hub_runs.push(open_loop(&client, &hub_target, rate, args.secs).await);
            }
            println!(
                "open loop at {:.0} % of agenthub's ceiling ({rate:.0} calls/s)",
                share * 100.0
            );
            println!(
                "  {}",
                line("null hub (same stack, no database)", &null_runs)
            );
            println!("  {}", line("agenthub", &hub_runs));
        }
    }
    let email = match smtp_port {
        Some(smtp_port) if mail => Some(
            email::setup(
                &client,
                hub_port,
                smtp_port,
                &owner_token,
                dir.path().join("outbox"),
            )
            .await?,
        ),
        _ => None,
    };
    if let Some(e) = email.as_ref().filter(|_| has("s5")) {
        email::run(e, args.email_clients, args.email_messages, args.rounds).await?;
    }
    if let Some(e) = email.as_ref().filter(|_| has("s6")) {
        soak::run(
            &client,
            [&hub_target, &poll_target, &push_target],
            e,
            args.soak_inflight.max(1),
            args.soak_secs,
            args.soak_sample_secs,
        )
        .await?;
    }
    if args.scenarios.iter().any(|s| s == "pages") {
        let owner_id: uuid::Uuid = owner["user"]["id"].as_str().context("owner id")?.parse()?;
        let t = Instant::now();
        pages::seed(&hub.db, owner_id, args.page_agents).await?;
        println!(
            "pages with {} agents (seeded in {:.1} s), one request at a time, 50 each",
            args.page_agents,
            t.elapsed().as_secs_f64()
        );
        let worst = pages::time_pages(&client, &format!("http://127.0.0.1:{hub_port}"), 50).await?;
        println!("  slowest median: {worst:.2} ms (target: every page under 100 ms)");
    }
    let report = actors::ledger::check(&hub.db).await?;
    let balanced =
        report.problems.is_empty() && report.granted == report.user_balances + report.user_reserved;
    println!(
        "ledger after the runs: {}",
        if balanced { "balanced" } else { "UNBALANCED" }
    );
    if !balanced {
        bail!("ledger problems: {:?}", report.problems);
    }
    if args.smoke {
        let ratio = smoke_ratio.unwrap_or(0.0);
        let floor = args.smoke_min_ratio / 3.0;
        if ratio < floor {
            bail!(
                "smoke: agenthub/null ratio {ratio:.3} is under {floor:.3} (a 3x regression of {:.3})",
                args.smoke_min_ratio
            );
        }
        println!("smoke: ratio {ratio:.3} >= {floor:.3}: ok");
    }
    for t in agent_tasks {
        t.abort();
    }
    if let Some(e) = email {
        e.echo.abort();
    }
    Ok(())
}
