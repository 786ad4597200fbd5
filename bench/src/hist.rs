//! Latencies: every latency of the bench is recorded in an HDR histogram (nanoseconds, three
//! significant digits, resized as needed), and every percentile reported comes from one.

use std::time::Duration;

pub type Hist = hdrhistogram::Histogram<u64>;

/// An empty histogram of nanoseconds with three significant digits.
pub fn new() -> Hist {
    match Hist::new(3) {
        Ok(mut h) => {
            h.auto(true);
            h
        }
        // Only more than five significant digits is refused.
        Err(e) => unreachable!("histogram: {e:?}"),
    }
}

pub fn record(h: &mut Hist, d: Duration) {
    // `record` grows an auto-resizing histogram (`saturating_record` would clamp instead); a
    // latency is at least 1 ns.
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 4).max(1);
    let _ = h.record(ns);
}

/// Adds `from` into `into` (both auto-resizing, so this cannot fail short of memory).
pub fn merge(into: &mut Hist, from: &Hist) {
    let _ = into.add(from);
}

/// The value at quantile `q` (0..=1) in milliseconds; NaN for an empty histogram.
pub fn ms(h: &Hist, q: f64) -> f64 {
    if h.is_empty() {
        return f64::NAN;
    }
    h.value_at_quantile(q) as f64 / 1e6
}

/// The largest value in milliseconds; NaN for an empty histogram.
pub fn max_ms(h: &Hist) -> f64 {
    if h.is_empty() {
        return f64::NAN;
    }
    h.max() as f64 / 1e6
}

/// `p50 … p99 … max` for one line of a report.
pub fn brief(h: &Hist) -> String {
    format!(
        "p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  (n={})",
        ms(h, 0.5),
        ms(h, 0.99),
        max_ms(h),
        h.len()
    )
}
