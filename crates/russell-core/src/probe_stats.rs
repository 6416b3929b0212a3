//! Durations and failures of one service's health probes since Russell started, counted
//! where the probe runs (`service/task/outcome.rs`) and read by whoever shows them (the
//! Prometheus histogram in russell-api). Atomics: recording never waits for a reader.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the duration buckets; a last bucket catches the rest.
pub const PROBE_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Counts of probes per duration bucket, their total time, and how many failed.
#[derive(Debug, Default)]
pub struct ProbeStats {
    /// Non-cumulative: `buckets[i]` counts probes that took at most `PROBE_BUCKETS[i]` and
    /// more than the bound before it; `buckets[PROBE_BUCKETS.len()]` the slower ones.
    buckets: [AtomicU64; PROBE_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    failures: AtomicU64,
}

/// A reading of [`ProbeStats`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReading {
    /// (upper bound in seconds, probes that took at most that long but longer than the
    /// bound before) in bound order — not cumulative; the probes slower than the last
    /// bound are `count` minus their sum.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
    pub failures: u64,
}

impl ProbeStats {
    /// Records one probe that took `took`.
    pub fn record(&self, took: Duration, ok: bool) {
        let secs = took.as_secs_f64();
        let i = PROBE_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(PROBE_BUCKETS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(us, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub fn read(&self) -> ProbeReading {
        let buckets: Vec<(f64, u64)> = PROBE_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| (*bound, n.load(Ordering::Relaxed)))
            .collect();
        let rest = self.buckets.last().map_or(0, |n| n.load(Ordering::Relaxed));
        ProbeReading {
            count: buckets.iter().map(|(_, n)| n).sum::<u64>() + rest,
            buckets,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_count_each_probe_once_and_failures_counted() {
        let s = ProbeStats::default();
        s.record(Duration::from_micros(500), true);
        s.record(Duration::from_millis(30), false);
        s.record(Duration::from_secs(9), false);
        let r = s.read();
        assert_eq!(r.count, 3);
        assert_eq!(r.failures, 2);
        assert_eq!(r.buckets.first(), Some(&(0.001, 1)));
        assert_eq!(r.buckets.iter().find(|b| b.0 == 0.05), Some(&(0.05, 1)));
        assert_eq!(r.buckets.last(), Some(&(5.0, 0)));
        assert!((r.sum_seconds - 9.0305).abs() < 1e-6);
    }
}
