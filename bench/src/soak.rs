//! S6, the soak: S2 paid calls to envelope agents, S3 polling agents, S4 webhook push and S5
//! inbound email at once, each in closed loop, for `--soak-secs`; every `--soak-sample-secs`
//! a sample of throughput and p99 per kind and the process's resident memory. At the end: the
//! drift of RSS and p99 between the first and the last sample, and the errors. The hub runs
//! in-process, so the RSS is the hub's plus the load generator's (whose share does not grow).

use crate::{
    Target, email,
    hist::{self, Hist},
    one_call,
};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

const KINDS: [&str; 4] = ["S2 ws", "S3 poll", "S4 push", "S5 email"];

#[derive(Default)]
struct Window {
    lat: [Option<Hist>; 4],
    errors: [usize; 4],
}

fn with<T>(w: &Mutex<Window>, f: impl FnOnce(&mut Window) -> T) -> T {
    f(&mut w.lock().unwrap_or_else(|e| e.into_inner()))
}

fn record(w: &Mutex<Window>, kind: usize, d: Option<Duration>) {
    with(w, |w| match d {
        Some(d) => hist::record(w.lat[kind].get_or_insert_with(hist::new), d),
        None => w.errors[kind] += 1,
    });
}

struct Sample {
    pub at_secs: f64,
    pub per_s: [f64; 4],
    pub p99: [f64; 4],
    pub p99_all: f64,
    pub rss: u64,
}

/// Runs the mix for `secs`, sampling every `sample_secs`.
pub async fn run(
    client: &reqwest::Client,
    targets: [&Target; 3],
    mail: &email::Email,
    inflight: usize,
    secs: f64,
    sample_secs: f64,
) -> anyhow::Result<usize> {
    let window = Arc::new(Mutex::new(Window::default()));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let mut workers = Vec::new();
    for (kind, target) in targets.into_iter().enumerate() {
        for w in 0..inflight {
            let (client, t, window) = (client.clone(), target.clone(), window.clone());
            workers.push(tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < until {
                    let began = Instant::now();
                    let ok = one_call(&client, &t, i).await;
                    record(&window, kind, ok.then(|| began.elapsed()));
                    i += inflight;
                }
            }));
        }
    }
    for c in 0..inflight {
        let (window, port) = (window.clone(), mail.smtp_port);
        workers.push(tokio::spawn(async move {
            while Instant::now() < until {
                let w2 = window.clone();
                let sent = email::client(port, 1000 + c, usize::MAX, Some(until), move |d| {
                    record(&w2, 3, Some(d))
                })
                .await;
                if sent.is_err() {
                    record(&window, 3, None);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    let pid = std::process::id();
    let mut samples = Vec::new();
    let mut errors = [0usize; 4];
    let mut last = Instant::now();
    println!(
        "S6 soak: {} s, {inflight} in flight per kind (S2, S3, S4 paid calls; S5 SMTP clients), a sample every {sample_secs} s",
        secs
    );
    while Instant::now() < until {
        let next = (last + Duration::from_secs_f64(sample_secs)).min(until);
        tokio::time::sleep_until(next.into()).await;
        let elapsed = last.elapsed().as_secs_f64();
        last = Instant::now();
        let w = with(&window, std::mem::take);
        let mut all = hist::new();
        let mut per_s = [0.0; 4];
        let mut p99 = [f64::NAN; 4];
        for k in 0..4 {
            errors[k] += w.errors[k];
            if let Some(h) = &w.lat[k] {
                per_s[k] = h.len() as f64 / elapsed;
                p99[k] = hist::ms(h, 0.99);
                hist::merge(&mut all, h);
            }
        }
        let s = Sample {
            at_secs: start.elapsed().as_secs_f64(),
            per_s,
            p99,
            p99_all: hist::ms(&all, 0.99),
            rss: crate::idle::rss(pid)?,
        };
        println!(
            "  t={:>5.0} s  {}  all p99 {:>7.2} ms  RSS {:>7.1} MiB  errors {}",
            s.at_secs,
            (0..4)
                .map(|k| format!(
                    "{} {:>5.0}/s p99 {:>7.2} ms",
                    KINDS[k], s.per_s[k], s.p99[k]
                ))
                .collect::<Vec<_>>()
                .join(" | "),
            s.p99_all,
            s.rss as f64 / 1048576.0,
            w.errors.iter().sum::<usize>()
        );
        samples.push(s);
    }
    for w in workers {
        let _ = w.await;
    }
    let w = with(&window, std::mem::take);
    for (total, late) in errors.iter_mut().zip(w.errors) {
        *total += late;
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let drift = |a: f64, b: f64| (b - a) / a * 100.0;
        println!(
            "  drift first -> last sample: RSS {:+.1} % ({:.1} -> {:.1} MiB), p99 all {:+.1} % ({:.2} -> {:.2} ms), throughput {:+.1} %",
            drift(first.rss as f64, last.rss as f64),
            first.rss as f64 / 1048576.0,
            last.rss as f64 / 1048576.0,
            drift(first.p99_all, last.p99_all),
            first.p99_all,
            last.p99_all,
            drift(first.per_s.iter().sum(), last.per_s.iter().sum())
        );
        for k in 0..4 {
            println!(
                "    {}: p99 {:+.1} % ({:.2} -> {:.2} ms), {:.0}/s -> {:.0}/s, errors {}",
                KINDS[k],
                drift(first.p99[k], last.p99[k]),
                first.p99[k],
                last.p99[k],
                first.per_s[k],
                last.per_s[k],
                errors[k]
            );
        }
    }
    let total = errors.iter().sum::<usize>();
    println!("  errors: {total} in all");
    Ok(total)
}
