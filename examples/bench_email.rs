//! Inbound email throughput, end to end: C concurrent SMTP clients send M messages each to a
//! free plain-WebSocket echo agent; the hub stores each message before its `250`, dispatches it
//! as a task, and writes the agent's answer as a reply to the outbox. Reports messages/s
//! accepted (`250`s) and answered (replies written), with per-message `250` latency
//! percentiles, alternating with a *null SMTP server* on the same stack (smtp-proto on tokio,
//! acknowledging without storing anything), so the figure is also a ratio: the cost of
//! admission, durable storage and dispatch over the bare protocol.
//!
//!     cargo run --release --example bench_email [-- <clients> <messages per client> <rounds>]

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agenthub::{config::Settings, startup::Application};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

/// One SMTP client: EHLO, then `n` pipelined transactions on one connection.
async fn client(port: u16, id: usize, n: usize) -> Vec<Duration> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    let mut expect = async |r: &mut BufReader<_>, code: &str| loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    };
    expect(&mut r, "220").await;
    w.write_all(b"EHLO bench.example\r\n").await.unwrap();
    expect(&mut r, "250").await;
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let tx = format!(
            "MAIL FROM:<client{id}@bench.example>\r\nRCPT TO:<echo@mail.localhost>\r\nDATA\r\n"
        );
        w.write_all(tx.as_bytes()).await.unwrap();
        expect(&mut r, "250").await;
        expect(&mut r, "250").await;
        expect(&mut r, "354").await;
        let body = format!(
            "From: client{id}@bench.example\r\nTo: echo@mail.localhost\r\nSubject: job {id}-{i}\r\n\
             Message-ID: <{id}-{i}-{}@bench.example>\r\n\r\nPlease echo this line back.\r\n.\r\n",
            uuid::Uuid::new_v4().simple()
        );
        w.write_all(body.as_bytes()).await.unwrap();
        expect(&mut r, "250").await;
        latencies.push(t.elapsed());
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
    latencies
}

/// The floor: the same protocol on the same stack, storing nothing.
async fn null_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                s.set_nodelay(true).unwrap();
                s.write_all(b"220 null ESMTP\r\n").await.unwrap();
                let mut rx = RequestReceiver::default();
                let mut data: Option<(DataReceiver, Vec<u8>)> = None;
                let mut buf = vec![0u8; 16384];
                let mut out = Vec::new();
                loop {
                    if !out.is_empty() {
                        s.write_all(&out).await.unwrap();
                        out.clear();
                    }
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    let mut bytes = buf[..n].iter();
                    loop {
                        if let Some((d, body)) = data.as_mut() {
                            if !d.ingest(&mut bytes, body) {
                                break;
                            }
                            data = None;
                            out.extend_from_slice(b"250 2.0.0 OK\r\n");
                            continue;
                        }
                        if bytes.as_slice().is_empty() {
                            break;
                        }
                        match rx.ingest(&mut bytes) {
                            Ok(smtp_proto::Request::Data) => {
                                out.extend_from_slice(b"354 go\r\n");
                                data = Some((DataReceiver::new(), Vec::new()));
                            }
                            Ok(smtp_proto::Request::Quit) => return,
                            Ok(_) => out.extend_from_slice(b"250 OK\r\n"),
                            Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                            Err(_) => out.extend_from_slice(b"500 ?\r\n"),
                        }
                    }
                }
            });
        }
    });
    port
}

struct Run {
    accepted_per_s: f64,
    answered_per_s: Option<f64>,
    p50: Duration,
    p99: Duration,
}

async fn load(port: u16, clients: usize, per_client: usize) -> (Duration, Vec<Duration>) {
    let t = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(client(port, c, per_client)))
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    (t.elapsed(), all)
}

fn count_outbox(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().map_or(8, |a| a.parse().unwrap());
    let per_client: usize = args.next().map_or(250, |a| a.parse().unwrap());
    let rounds: usize = args.next().map_or(3, |a| a.parse().unwrap());
    let total = clients * per_client;

    let dir = tempfile::tempdir()?;
    let settings = Settings {
        http_addr: "127.0.0.1:0".into(),
        smtp_addr: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        rate_limit_per_min: 0,
        mail_rate_per_hour: 0,
        ..Settings::default()
    };
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let smtp_port = app.smtp_port().unwrap();
    let hub = app.hub();
    actix_web::rt::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "bench@example.com", "username": "bench", "password": "bench-password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = reg["accessToken"].as_str().unwrap().to_string();
    let created: Value = http
        .post(format!("{base}/api/v1/agents"))
        .bearer_auth(&token)
        .json(&json!({"name": "Echo", "slug": "echo", "deliveryMode": "ws"}))
        .send()
        .await?
        .json()
        .await?;
    let key = created["apiKey"].as_str().unwrap().to_string();

    // The echo agent: the task-delivery document's plain WebSocket stream.
    let mut req = format!("ws://127.0.0.1:{}/ws", hub_port(&base)).into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    tokio::spawn(async move {
        let (mut tx, mut rx) = ws.split();
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Text(text) = msg {
                let task: Value = serde_json::from_str(&text).unwrap();
                let answer = json!({ "taskId": task["id"], "result": format!("echo: {}", task["task"].as_str().unwrap_or("")) });
                if tx.send(Message::text(answer.to_string())).await.is_err() {
                    return;
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let null_port = null_server().await;
    let outbox = dir.path().join("outbox");
    let mut hub_runs = Vec::new();
    let mut null_runs = Vec::new();
    for round in 0..rounds {
        let (elapsed, mut lat) = load(null_port, clients, per_client).await;
        null_runs.push(Run {
            accepted_per_s: total as f64 / elapsed.as_secs_f64(),
            answered_per_s: None,
            p50: percentile(&mut lat, 0.5),
            p99: percentile(&mut lat, 0.99),
        });
        let before = count_outbox(&outbox);
        let t = Instant::now();
        let (elapsed, mut lat) = load(smtp_port, clients, per_client).await;
        while count_outbox(&outbox) < before + total {
            assert!(t.elapsed() < Duration::from_secs(300), "replies missing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let answered = t.elapsed();
        hub_runs.push(Run {
            accepted_per_s: total as f64 / elapsed.as_secs_f64(),
            answered_per_s: Some(total as f64 / answered.as_secs_f64()),
            p50: percentile(&mut lat, 0.5),
            p99: percentile(&mut lat, 0.99),
        });
        eprintln!("round {} done", round + 1);
    }
    let median = |runs: &mut Vec<Run>, f: &dyn Fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let hub_acc = median(&mut hub_runs, &|r| r.accepted_per_s);
    let hub_ans = median(&mut hub_runs, &|r| r.answered_per_s.unwrap_or(0.0));
    let null_acc = median(&mut null_runs, &|r| r.accepted_per_s);
    println!("inbound email, {clients} clients x {per_client} messages, {rounds} rounds (medians)");
    println!(
        "  null SMTP (same stack) : {null_acc:>8.0} msg/s accepted   250 p50 {:>6.2} ms  p99 {:>6.2} ms",
        median(&mut null_runs, &|r| ms(r.p50)),
        median(&mut null_runs, &|r| ms(r.p99))
    );
    println!(
        "  agenthub               : {hub_acc:>8.0} msg/s accepted   250 p50 {:>6.2} ms  p99 {:>6.2} ms",
        median(&mut hub_runs, &|r| ms(r.p50)),
        median(&mut hub_runs, &|r| ms(r.p99))
    );
    println!("  agenthub end to end    : {hub_ans:>8.0} msg/s answered (task done, reply written)");
    println!("  ratio accepted hub/null: {:.2}", hub_acc / null_acc);
    let report = actors::ledger::check(&hub.db).await?;
    println!(
        "  ledger balanced: {}",
        report.is_balanced() && report.problems.is_empty()
    );
    Ok(())
}

fn hub_port(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}
