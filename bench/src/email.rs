//! S5, inbound email end to end: C concurrent SMTP clients send M messages each to a free
//! plain-WebSocket echo agent (the task-delivery document's `/ws` stream); the hub stores each
//! message before its `250`, dispatches it as a task, and writes the agent's answer as a reply
//! to the outbox. Reports messages/s accepted (`250`s) and answered (replies written), with
//! per-message `250` latency percentiles, alternating with a *null SMTP server* on the same
//! stack (smtp-proto on tokio, acknowledging without storing anything), so the figure is also a
//! ratio: the cost of admission, durable storage and dispatch over the bare protocol.

use crate::hist::{self, Hist};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf},
};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// Where to send mail and where the replies land.
pub struct Email {
    pub smtp_port: u16,
    pub null_port: u16,
    pub outbox: PathBuf,
    pub echo: tokio::task::JoinHandle<()>,
}

/// Creates the free `echo` task agent (so `echo@mail.localhost`), connects it to `/ws` as an
/// echo, and starts the null SMTP server.
pub async fn setup(
    client: &reqwest::Client,
    hub_port: u16,
    smtp_port: u16,
    owner_token: &str,
    outbox: PathBuf,
) -> anyhow::Result<Email> {
    let created: Value = crate::post(
        client,
        format!("http://127.0.0.1:{hub_port}/api/v1/agents"),
        json!({"name": "Echo", "slug": "echo", "deliveryMode": "ws"}),
        Some(owner_token),
    )
    .await?;
    let key = created["apiKey"].as_str().context("key")?.to_string();
    let mut req = format!("ws://127.0.0.1:{hub_port}/ws").into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {key}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let echo = tokio::spawn(async move {
        let (mut tx, mut rx) = ws.split();
        while let Some(Ok(msg)) = rx.next().await {
            let Message::Text(text) = msg else { continue };
            let Ok(task) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let answer = json!({ "taskId": task["id"], "result": format!("echo: {}", task["task"].as_str().unwrap_or("")) });
            if tx.send(Message::text(answer.to_string())).await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(Email {
        smtp_port,
        null_port: null_server().await?,
        outbox,
        echo,
    })
}

async fn expect(
    r: &mut BufReader<OwnedReadHalf>,
    line: &mut String,
    code: &str,
) -> anyhow::Result<()> {
    loop {
        line.clear();
        if r.read_line(line).await? == 0 {
            bail!("connection closed, expected {code}");
        }
        if !line.starts_with(code) {
            bail!("expected {code}, got {line:?}");
        }
        if line.as_bytes().get(3) == Some(&b' ') {
            return Ok(());
        }
    }
}

/// One SMTP client: EHLO, then pipelined transactions on one connection, `n` of them or until
/// `until`; each `250` latency into `lat`. Returns the messages accepted.
pub async fn client(
    port: u16,
    id: usize,
    n: usize,
    until: Option<Instant>,
    mut on_accepted: impl FnMut(Duration),
) -> anyhow::Result<usize> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    expect(&mut r, &mut line, "220").await?;
    w.write_all(b"EHLO bench.example\r\n").await?;
    expect(&mut r, &mut line, "250").await?;
    let mut sent = 0;
    while sent < n && until.is_none_or(|u| Instant::now() < u) {
        let t = Instant::now();
        let tx = format!(
            "MAIL FROM:<client{id}@bench.example>\r\nRCPT TO:<echo@mail.localhost>\r\nDATA\r\n"
        );
        w.write_all(tx.as_bytes()).await?;
        expect(&mut r, &mut line, "250").await?;
        expect(&mut r, &mut line, "250").await?;
        expect(&mut r, &mut line, "354").await?;
        let body = format!(
            "From: client{id}@bench.example\r\nTo: echo@mail.localhost\r\nSubject: job {id}-{sent}\r\n\
             Message-ID: <{id}-{sent}-{}@bench.example>\r\n\r\nPlease echo this line back.\r\n.\r\n",
            uuid::Uuid::new_v4().simple()
        );
        w.write_all(body.as_bytes()).await?;
        expect(&mut r, &mut line, "250").await?;
        on_accepted(t.elapsed());
        sent += 1;
    }
    w.write_all(b"QUIT\r\n").await?;
    Ok(sent)
}

/// The floor: the same protocol on the same stack, storing nothing.
async fn null_server() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = null_session(s).await;
            });
        }
    });
    Ok(port)
}

async fn null_session(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    s.write_all(b"220 null ESMTP\r\n").await?;
    let mut rx = RequestReceiver::default();
    let mut data: Option<(DataReceiver, Vec<u8>)> = None;
    let mut buf = vec![0u8; 16384];
    let mut out = Vec::new();
    loop {
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
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
                Ok(smtp_proto::Request::Quit) => return Ok(()),
                Ok(_) => out.extend_from_slice(b"250 OK\r\n"),
                Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                Err(_) => out.extend_from_slice(b"500 ?\r\n"),
            }
        }
    }
}

/// `clients` clients of `per_client` messages each; elapsed time and `250` latencies.
async fn load(port: u16, clients: usize, per_client: usize) -> anyhow::Result<(Duration, Hist)> {
    let t = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            tokio::spawn(async move {
                let mut lat = hist::new();
                client(port, c, per_client, None, |d| hist::record(&mut lat, d))
                    .await
                    .map(|_| lat)
            })
        })
        .collect();
    let mut all = hist::new();
    for h in handles {
        hist::merge(&mut all, &h.await??);
    }
    Ok((t.elapsed(), all))
}

/// Replies written to the outbox so far.
pub fn count_outbox(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

struct Run {
    accepted_per_s: f64,
    answered_per_s: f64,
    p50: f64,
    p99: f64,
}

fn median(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The S5 scenario: alternating rounds against the null SMTP server and the hub; prints the
/// medians and the ratio.
pub async fn run(
    e: &Email,
    clients: usize,
    per_client: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let total = clients * per_client;
    let (mut hub_runs, mut null_runs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (elapsed, lat) = load(e.null_port, clients, per_client).await?;
        null_runs.push(Run {
            accepted_per_s: total as f64 / elapsed.as_secs_f64(),
            answered_per_s: f64::NAN,
            p50: hist::ms(&lat, 0.5),
            p99: hist::ms(&lat, 0.99),
        });
        let before = count_outbox(&e.outbox);
        let t = Instant::now();
        let (elapsed, lat) = load(e.smtp_port, clients, per_client).await?;
        while count_outbox(&e.outbox) < before + total {
            if t.elapsed() > Duration::from_secs(300) {
                bail!("S5: replies missing after 300 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        hub_runs.push(Run {
            accepted_per_s: total as f64 / elapsed.as_secs_f64(),
            answered_per_s: total as f64 / t.elapsed().as_secs_f64(),
            p50: hist::ms(&lat, 0.5),
            p99: hist::ms(&lat, 0.99),
        });
    }
    let hub_acc = median(&hub_runs, |r| r.accepted_per_s);
    let null_acc = median(&null_runs, |r| r.accepted_per_s);
    println!(
        "S5 inbound email, {clients} SMTP clients x {per_client} messages (pipelined), {rounds} rounds (medians)"
    );
    println!(
        "  null SMTP server (same stack): {null_acc:>8.0} msg/s accepted  250 p50 {:>7.2} ms  p99 {:>7.2} ms",
        median(&null_runs, |r| r.p50),
        median(&null_runs, |r| r.p99)
    );
    println!(
        "  agenthub                     : {hub_acc:>8.0} msg/s accepted  250 p50 {:>7.2} ms  p99 {:>7.2} ms",
        median(&hub_runs, |r| r.p50),
        median(&hub_runs, |r| r.p99)
    );
    println!(
        "  agenthub end to end          : {:>8.0} msg/s answered (task done, reply written)",
        median(&hub_runs, |r| r.answered_per_s)
    );
    println!(
        "  ratio accepted agenthub / null SMTP: {:.4}",
        hub_acc / null_acc
    );
    Ok(())
}
