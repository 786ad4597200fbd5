//! S1, idle agents and the reconnect storm. The hub runs as a separate process (the release
//! binary, `--hub-bin`) on a SQLite file, so that its resident memory and CPU time can be read
//! from `/proc/<pid>/` without the load generator in them. For each size N:
//!
//! 1. a fresh hub process; its RSS and CPU over `--idle-secs` with no agent connected;
//! 2. N envelope-WebSocket agents (seeded in the database with real Argon2id key hashes)
//!    connect to `GET /api/v1/agents/ws`, a few handshakes at a time, plus one paid probe agent;
//!    RSS and CPU over `--idle-secs` again: RSS per agent = (RSS with N - RSS with 0) / N;
//! 3. one caller calls the probe agent (`POST /api/v1/mcp/call`, one in flight) for
//!    `--idle-secs`: the latencies "before";
//! 4. the hub is killed (SIGKILL) and restarted on the same database file; every agent
//!    reconnects with the marketplace document's backoff (1 s, 2 s, 4 s, … 30 s), jittered
//!    between half and all of each step, and gives up an attempt after 60 s; the probe
//!    every 50 ms; the caller keeps calling: the latencies "during the storm" are those of
//!    calls started after the probe is back and before the last agent is back.

use crate::{
    agent::{self, Backoff, Fleet},
    hist::{self, Hist},
};
use anyhow::{Context, bail};
use entities::{agents, api_keys};
use futures_util::StreamExt;
use sea_orm::{EntityTrait, Set};
use serde_json::json;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::Semaphore;

pub struct Options {
    pub sizes: Vec<usize>,
    /// Extra environment of the hub process (`KEY=VALUE`), e.g. glibc malloc tunables.
    pub hub_env: Vec<String>,
    pub hub_bin: PathBuf,
    pub idle_secs: f64,
    pub connect_concurrency: usize,
    pub connect_timeout: Duration,
    pub storm_max: Duration,
    /// The storm is stopped when the hub's RSS passes this many bytes.
    pub max_hub_rss: u64,
    /// Only the idle figures, no reconnect storm.
    pub no_storm: bool,
}

/// Raises this process's soft limit of open files to the hard limit (children inherit it);
/// returns (soft, hard) after.
pub fn raise_nofile() -> (u64, u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return (0, 0);
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return (hard, hard);
    }
    (soft, hard)
}

/// Resident set size of a process, in bytes.
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    status_kb(pid, "VmRSS:")
}

/// Peak resident set size of a process, in bytes.
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    status_kb(pid, "VmHWM:")
}

fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .context("no such field in /proc/<pid>/status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

/// User plus system CPU time of a process, in seconds (`/proc/<pid>/stat`, clock ticks of
/// 1/100 s, Linux's USER_HZ).
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based over the line).
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / 100.0)
}

/// The hub as a child process.
struct HubProc {
    child: Child,
}

impl HubProc {
    fn spawn(bin: &Path, dir: &Path, port: u16, extra_env: &[String]) -> anyhow::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("hub.log"))?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(dir.join("none.toml"))
            .arg("serve")
            .env_clear()
            .env("AGENTHUB_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", dir.join("agenthub.db").display()),
            )
            .env("AGENTHUB_DATA_DIR", dir)
            .env("AGENTHUB_SMTP_ADDR", "off")
            .env("AGENTHUB_RATE_LIMIT_PER_MIN", "0")
            .env("AGENTHUB_START_TOKENS", "1000000000")
            .env("RUST_LOG", "warn")
            .envs(extra_env.iter().filter_map(|kv| kv.split_once('=')))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (cargo build --release -p agenthub)",
                    bin.display()
                )
            })?;
        Ok(Self { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProc {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_healthy(client: &reqwest::Client, port: u16, max: Duration) -> anyhow::Result<()> {
    let t = Instant::now();
    loop {
        if let Ok(res) = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && res.status().is_success()
        {
            return Ok(());
        }
        if t.elapsed() > max {
            bail!("hub not healthy after {max:?} (see hub.log)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `n` websocket agents of `owner`, each with its own key (hashed as the hub hashes keys, a
/// few at a time); returns the keys.
async fn seed(
    db: &sea_orm::DatabaseConnection,
    owner: uuid::Uuid,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let now = chrono::Utc::now();
    let keys: Vec<(String, String, String)> = (0..n)
        .map(|_| {
            let secret = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            let secret = &secret[..48];
            (
                format!("amp_{secret}"),
                secret[..16].to_string(),
                secret[44..].to_string(),
            )
        })
        .collect();
    let hashes: Vec<anyhow::Result<String>> = futures_util::stream::iter(keys.iter())
        .map(|(key, _, _)| async move {
            actors::passwords::hash_key(key.clone())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .buffered(4)
        .collect()
        .await;
    let mut rows = Vec::with_capacity(n);
    for (i, ((_, lookup, last4), hash)) in keys.iter().zip(hashes).enumerate() {
        rows.push((i, lookup.clone(), last4.clone(), hash?));
    }
    for chunk in rows.chunks(400) {
        let ids: Vec<uuid::Uuid> = chunk.iter().map(|_| uuid::Uuid::now_v7()).collect();
        agents::Entity::insert_many(chunk.iter().zip(&ids).map(|((i, ..), id)| {
            agents::ActiveModel {
                id: Set(*id),
                owner_id: Set(owner),
                name: Set(format!("Idle agent {i}")),
                slug: Set(format!("s1-idle-{i}")),
                version: Set("1.0.0".into()),
                description: Set("An idle envelope agent of the S1 benchmark.".into()),
                connection_mode: Set(Some("websocket".into())),
                delivery_mode: Set(None),
                mcp_endpoint: Set(None),
                endpoint: Set(None),
                visibility: Set("private".into()),
                status: Set("active".into()),
                pricing_model: Set("free".into()),
                price_per_call: Set(0),
                tags: Set(json!([])),
                tags_index: Set(",".into()),
                category: Set(actors::catalog::CATEGORIES[0].to_string()),
                tools: Set(None),
                total_calls: Set(0),
                completed_calls: Set(0),
                failed_calls: Set(0),
                total_latency_ms: Set(0),
                tokens_earned: Set(0),
                reputation_score: Set(None),
                review_count: Set(0),
                rating_sum: Set(0),
                checks_total: Set(0),
                checks_healthy: Set(0),
                last_check_healthy: Set(None),
                last_check_latency_ms: Set(None),
                last_check_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
        }))
        .exec(db)
        .await?;
        api_keys::Entity::insert_many(chunk.iter().zip(&ids).map(
            |((_, lookup, last4, hash), id)| api_keys::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                agent_id: Set(*id),
                lookup: Set(lookup.clone()),
                key_hash: Set(hash.clone()),
                last4: Set(last4.clone()),
                created_at: Set(now),
            },
        ))
        .exec(db)
        .await?;
    }
    Ok(keys.into_iter().map(|(k, _, _)| k).collect())
}

/// One size's figures.
pub struct Figures {
    pub n: usize,
    pub connect_secs: f64,
    pub rss0: u64,
    pub rss_n: u64,
    pub rss_after_storm: u64,
    pub peak_n: u64,
    pub peak_storm: u64,
    pub cpu0: f64,
    pub cpu_n: f64,
    pub before: Hist,
    pub storm: Hist,
    pub storm_errors: usize,
    pub down_errors: usize,
    pub restart_secs: f64,
    pub probe_back_secs: f64,
    pub all_back_secs: Option<f64>,
    pub failures: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Before,
    Down,
    Storm,
    After,
}

async fn wait_connected(fleet: &Fleet, n: usize, max: Duration) -> Option<Duration> {
    let t = Instant::now();
    while fleet.connected.load(Ordering::SeqCst) < n {
        if t.elapsed() > max {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Some(t.elapsed())
}

/// Hub CPU use over `secs`, as a percentage of one core.
async fn idle_cpu(pid: u32, secs: f64) -> anyhow::Result<f64> {
    let c0 = cpu_secs(pid)?;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    Ok((cpu_secs(pid)? - c0) / t.elapsed().as_secs_f64() * 100.0)
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Figures>> {
    let (soft, hard) = raise_nofile();
    let max_n = opts.sizes.iter().copied().max().unwrap_or(0);
    println!(
        "S1 idle agents: open files soft {soft} / hard {hard} (the bench and the hub each need about N + 200)"
    );
    if (soft as usize) < max_n + 200 {
        println!(
            "  WARNING: the hard limit {hard} is too low for {max_n} agents: raise `ulimit -Hn` (or nofile in limits.conf)"
        );
    }
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()?;
    let base = format!("http://127.0.0.1:{port}/api/v1");

    // Setup on a first hub process: an owner and a caller through the API, the paid probe agent,
    // then the N idle agents seeded in the database.
    let mut hub = HubProc::spawn(&opts.hub_bin, dir.path(), port, &opts.hub_env)?;
    wait_healthy(&client, port, Duration::from_secs(60)).await?;
    let owner = crate::post(&client, format!("{base}/auth/register"),
        json!({ "email": "owner@bench.example", "username": "owner", "password": "bench-password" }), None).await?;
    let owner_token = owner["accessToken"].as_str().context("token")?.to_string();
    let owner_id: uuid::Uuid = owner["user"]["id"].as_str().context("owner id")?.parse()?;
    let caller = crate::post(&client, format!("{base}/auth/register"),
        json!({ "email": "caller@bench.example", "username": "caller", "password": "bench-password" }), None).await?;
    let caller_token = caller["accessToken"].as_str().context("token")?.to_string();
    let caller_agent = crate::post(
        &client,
        format!("{base}/agents"),
        json!({ "name": "Caller", "slug": "bench-caller" }),
        Some(&caller_token),
    )
    .await?;
    let caller_key = caller_agent["apiKey"].as_str().context("key")?.to_string();
    let probe = crate::post(
        &client,
        format!("{base}/agents"),
        json!({ "name": "Probe", "slug": "bench-probe",
                "pricing": { "model": "per-call", "pricePerCall": 5 } }),
        Some(&owner_token),
    )
    .await?;
    let probe_id = probe["agent"]["id"].as_str().context("id")?.to_string();
    let probe_key = probe["apiKey"].as_str().context("key")?.to_string();
    let db = sea_orm::Database::connect(format!(
        "sqlite://{}?mode=rw",
        dir.path().join("agenthub.db").display()
    ))
    .await?;
    let t = Instant::now();
    let keys = seed(&db, owner_id, max_n).await?;
    println!(
        "  seeded {max_n} agents with Argon2id key hashes in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    hub.kill();
    drop(hub);

    let ws_url = format!("ws://127.0.0.1:{port}/api/v1/agents/ws");
    let mut out = Vec::new();
    for &n in &opts.sizes {
        let mut hub = HubProc::spawn(&opts.hub_bin, dir.path(), port, &opts.hub_env)?;
        wait_healthy(&client, port, Duration::from_secs(60)).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss0 = rss(hub.pid())?;
        let cpu0 = idle_cpu(hub.pid(), opts.idle_secs).await?;

        let fleet = Arc::new(Fleet::default());
        let probe_fleet = Arc::new(Fleet::default());
        let gate = Arc::new(Semaphore::new(opts.connect_concurrency));
        let jitter = Backoff::Jittered {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
        };
        let mut tasks = vec![agent::start_reconnecting(
            ws_url.clone(),
            probe_key.clone(),
            Arc::new(Semaphore::new(1)),
            probe_fleet.clone(),
            Backoff::Fixed(Duration::from_millis(50)),
            opts.connect_timeout,
        )];
        let t = Instant::now();
        for key in &keys[..n] {
            tasks.push(agent::start_reconnecting(
                ws_url.clone(),
                key.clone(),
                gate.clone(),
                fleet.clone(),
                jitter,
                opts.connect_timeout,
            ));
        }
        if wait_connected(&fleet, n, Duration::from_secs(1800))
            .await
            .is_none()
            || wait_connected(&probe_fleet, 1, Duration::from_secs(60))
                .await
                .is_none()
        {
            bail!("S1: {n} agents did not all connect");
        }
        let connect_secs = t.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_n = rss(hub.pid())?;
        let peak_n = peak_rss(hub.pid()).unwrap_or(0);
        let cpu_n = idle_cpu(hub.pid(), opts.idle_secs).await?;
        println!(
            "  N={n}: connected in {connect_secs:.1} s; hub RSS {:.1} MiB with 0, {:.1} MiB with N: {:.1} KiB per agent; idle CPU {cpu0:.2} % of a core with 0, {cpu_n:.2} % with N",
            rss0 as f64 / 1048576.0,
            rss_n as f64 / 1048576.0,
            (rss_n as f64 - rss0 as f64) / n as f64 / 1024.0
        );

        if opts.no_storm {
            for t in tasks {
                t.abort();
            }
            drop(hub);
            out.push(Figures {
                n,
                connect_secs,
                rss0,
                rss_n,
                rss_after_storm: 0,
                peak_n,
                peak_storm: 0,
                cpu0,
                cpu_n,
                before: hist::new(),
                storm: hist::new(),
                storm_errors: 0,
                down_errors: 0,
                restart_secs: f64::NAN,
                probe_back_secs: f64::NAN,
                all_back_secs: None,
                failures: 0,
            });
            tokio::time::sleep(Duration::from_secs(3)).await;
            continue;
        }
        // The caller: one call in flight to the probe, latencies by phase.
        let phase = Arc::new(Mutex::new(Phase::Before));
        let stop = Arc::new(AtomicBool::new(false));
        let caller = {
            let (client, phase, stop) = (client.clone(), phase.clone(), stop.clone());
            let (url, key, target) = (
                format!("{base}/mcp/call"),
                caller_key.clone(),
                probe_id.clone(),
            );
            tokio::spawn(async move {
                let mut lat = [hist::new(), hist::new(), hist::new(), hist::new()];
                let mut errors = [0usize; 4];
                while !stop.load(Ordering::SeqCst) {
                    let p = *phase.lock().unwrap_or_else(|e| e.into_inner()) as usize;
                    let t = Instant::now();
                    let ok = match client
                        .post(&url)
                        .bearer_auth(&key)
                        .timeout(Duration::from_secs(30))
                        .json(&json!({ "targetAgentId": target, "toolName": "echo",
                                       "arguments": { "message": "Hello!" } }))
                        .send()
                        .await
                    {
                        Ok(res) if res.status().is_success() => res
                            .json::<serde_json::Value>()
                            .await
                            .is_ok_and(|v| v["status"] == "completed"),
                        _ => false,
                    };
                    if ok {
                        hist::record(&mut lat[p], t.elapsed());
                    } else {
                        errors[p] += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                (lat, errors)
            })
        };
        let set = |p: Phase| *phase.lock().unwrap_or_else(|e| e.into_inner()) = p;
        tokio::time::sleep(Duration::from_secs_f64(opts.idle_secs)).await;

        // The storm: no gate on reconnections, the hub killed and restarted at once.
        gate.add_permits(1_000_000);
        let failures0 = fleet.failures.load(Ordering::SeqCst);
        set(Phase::Down);
        let t_kill = Instant::now();
        hub.kill();
        drop(hub);
        let hub = HubProc::spawn(&opts.hub_bin, dir.path(), port, &opts.hub_env)?;
        wait_healthy(&client, port, Duration::from_secs(60)).await?;
        let restart_secs = t_kill.elapsed().as_secs_f64();
        wait_connected(&probe_fleet, 1, Duration::from_secs(120))
            .await
            .context("the probe agent did not come back")?;
        let probe_back_secs = t_kill.elapsed().as_secs_f64();
        set(Phase::Storm);
        // Wait for every agent, watching the hub's memory: past `max_hub_rss` the storm is
        // stopped (the hub killed) rather than let it take the machine.
        let mut all_back = None;
        let mut rss_after_storm = 0;
        let mut peak_storm = 0;
        let mut hub = hub;
        loop {
            rss_after_storm = rss(hub.pid()).unwrap_or(rss_after_storm);
            peak_storm = peak_rss(hub.pid())
                .unwrap_or(peak_storm)
                .max(rss_after_storm);
            if fleet.connected.load(Ordering::SeqCst) >= n {
                all_back = Some(t_kill.elapsed().as_secs_f64());
                break;
            }
            if rss_after_storm > opts.max_hub_rss {
                println!(
                    "  N={n}: STORM STOPPED at {:.1} s: hub RSS {:.1} MiB is over --s1-max-hub-rss-mib; {} of {n} agents back",
                    t_kill.elapsed().as_secs_f64(),
                    rss_after_storm as f64 / 1048576.0,
                    fleet.connected.load(Ordering::SeqCst)
                );
                hub.kill();
                break;
            }
            if t_kill.elapsed() > opts.storm_max {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        set(Phase::After);
        stop.store(true, Ordering::SeqCst);
        let (lat, errors) = caller.await?;
        let [before, _, storm, _] = lat;
        let f = Figures {
            n,
            connect_secs,
            rss0,
            rss_n,
            rss_after_storm,
            peak_n,
            peak_storm,
            cpu0,
            cpu_n,
            before,
            storm,
            storm_errors: errors[Phase::Storm as usize],
            down_errors: errors[Phase::Down as usize],
            restart_secs,
            probe_back_secs,
            all_back_secs: all_back,
            failures: fleet.failures.load(Ordering::SeqCst) - failures0,
        };
        println!(
            "  N={n}: storm: hub listening {:.2} s after the kill, probe back at {:.2} s, all {} back at {}; {} failed attempts; hub RSS after {:.1} MiB (peak {:.1} MiB; peak while first connecting {:.1} MiB)",
            f.restart_secs,
            f.probe_back_secs,
            n,
            f.all_back_secs
                .map_or("NOT within the limit".into(), |s| format!("{s:.1} s")),
            f.failures,
            rss_after_storm as f64 / 1048576.0,
            f.peak_storm as f64 / 1048576.0,
            f.peak_n as f64 / 1048576.0
        );
        if f.failures > 0 {
            println!("  N={n}: failed attempts: {}", fleet.reasons());
        }
        println!(
            "  N={n}: probe calls before: {}, errors {}",
            hist::brief(&f.before),
            errors[Phase::Before as usize]
        );
        println!(
            "  N={n}: probe calls during the storm: {}, errors {} (and {} while the probe was away)",
            hist::brief(&f.storm),
            f.storm_errors,
            f.down_errors
        );
        for t in tasks {
            t.abort();
        }
        drop(hub);
        out.push(f);
        // Let the closed sockets go before the next size.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let report = actors::ledger::check(&db).await?;
    println!(
        "  ledger after S1: {}",
        if report.is_balanced() && report.problems.is_empty() {
            "balanced"
        } else {
            "UNBALANCED"
        }
    );
    println!("S1 summary");
    println!(
        "  {:>6} {:>10} {:>10} {:>10} {:>12} {:>9} {:>9} {:>11} {:>11} {:>11} {:>9} {:>14}",
        "N",
        "connect s",
        "RSS0 MiB",
        "RSS N MiB",
        "KiB/agent",
        "CPU0 %",
        "CPU N %",
        "p99 before",
        "p99 storm",
        "storm p50",
        "all back",
        "RSS after MiB"
    );
    for f in &out {
        println!(
            "  {:>6} {:>10.1} {:>10.1} {:>10.1} {:>12.1} {:>9.2} {:>9.2} {:>8.2} ms {:>8.2} ms {:>8.2} ms {:>9} {:>12.1}",
            f.n,
            f.connect_secs,
            f.rss0 as f64 / 1048576.0,
            f.rss_n as f64 / 1048576.0,
            (f.rss_n as f64 - f.rss0 as f64) / f.n as f64 / 1024.0,
            f.cpu0,
            f.cpu_n,
            hist::ms(&f.before, 0.99),
            hist::ms(&f.storm, 0.99),
            hist::ms(&f.storm, 0.5),
            f.all_back_secs.map_or("-".into(), |s| format!("{s:.1} s")),
            f.rss_after_storm as f64 / 1048576.0
        );
    }
    Ok(out)
}
