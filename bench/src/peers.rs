//! The floors agenthub is measured against, besides the null hub: NATS request/reply through
//! the machine's `nats-server` (the broker floor: a message to a responder and back, nothing
//! stored), and a bare WebSocket echo (the transport floor: one frame out, the same frame back).

use crate::hist::{self, Hist};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Closed loop of `inflight` NATS requests for `secs`; latencies of the answered ones, errors.
pub async fn nats(
    url: &str,
    inflight: usize,
    secs: f64,
) -> anyhow::Result<(Hist, usize, Duration)> {
    let responder = async_nats::connect(url).await?;
    let subject = format!("agenthub.bench.{}", uuid::Uuid::new_v4().simple());
    let mut sub = responder.subscribe(subject.clone()).await?;
    let answering = responder.clone();
    let serve = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                let _ = answering.publish(reply, msg.payload).await;
            }
        }
    });
    let client = async_nats::connect(url).await?;
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let workers: Vec<_> = (0..inflight)
        .map(|_| {
            let (client, subject) = (client.clone(), subject.clone());
            tokio::spawn(async move {
                let (mut lat, mut errors) = (hist::new(), 0usize);
                while Instant::now() < until {
                    let t = Instant::now();
                    match client.request(subject.clone(), "Hello!".into()).await {
                        Ok(_) => hist::record(&mut lat, t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (hist::new(), 0);
    for w in workers {
        let (l, e) = w.await?;
        hist::merge(&mut lat, &l);
        errors += e;
    }
    let elapsed = start.elapsed();
    serve.abort();
    Ok((lat, errors, elapsed))
}

/// A WebSocket server on 127.0.0.1 that sends every text frame back; returns its port.
pub async fn start_echo() -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

/// Closed loop: `inflight` connections, each sending a frame and waiting for its echo.
pub async fn ws_echo(
    port: u16,
    inflight: usize,
    secs: f64,
) -> anyhow::Result<(Hist, usize, Duration)> {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let mut workers = Vec::new();
    for _ in 0..inflight {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/")).await?;
        workers.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (hist::new(), 0usize);
            while Instant::now() < until {
                let t = Instant::now();
                if ws.send(Message::text("Hello!")).await.is_err() {
                    errors += 1;
                    break;
                }
                match ws.next().await {
                    Some(Ok(_)) => hist::record(&mut lat, t.elapsed()),
                    _ => {
                        errors += 1;
                        break;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (hist::new(), 0);
    for w in workers {
        let (l, e) = w.await?;
        hist::merge(&mut lat, &l);
        errors += e;
    }
    Ok((lat, errors, start.elapsed()))
}
