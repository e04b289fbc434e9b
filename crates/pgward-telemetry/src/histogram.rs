//! A duration histogram that every session can record into without a lock.
//!
//! prometheus_client's `Histogram` keeps its buckets behind one mutex, so every statement of
//! every session would take the same lock on its answer (and the worker threads would
//! contend for its cache line). Here each bucket is its own atomic counter and the sum is
//! kept in whole nanoseconds; a scrape reads them one by one, so it may see an observation
//! in the count and not yet in the sum (Prometheus tolerates that; a mutex-free histogram
//! cannot avoid it). The count is the sum of the buckets, so those two always agree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Buckets of durations in seconds (upper bounds, ascending), plus `+Inf`.
#[derive(Clone, Debug)]
pub struct DurationHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds in seconds, as rendered.
    bounds: Box<[f64]>,
    /// The same bounds in nanoseconds, compared against each observation.
    bounds_nanos: Box<[u64]>,
    /// One counter per bound, and the last for `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    /// `bounds`: finite upper bounds in seconds, ascending.
    pub fn new(bounds: &[f64]) -> Self {
        let bounds: Box<[f64]> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        let bounds_nanos = bounds
            .iter()
            .map(|b| Duration::try_from_secs_f64(*b).map_or(0, saturating_nanos))
            .collect();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            inner: Arc::new(Inner {
                bounds,
                bounds_nanos,
                counts,
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Counts one duration in the first bucket whose bound it does not exceed.
    pub fn observe(&self, duration: Duration) {
        let nanos = saturating_nanos(duration);
        let inner = &*self.inner;
        let bucket = inner.bounds_nanos.partition_point(|&b| b < nanos);
        if let Some(count) = inner.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        // Wraps after 584 years of summed durations.
        inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl EncodeMetric for DurationHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &*self.inner;
        // Per bucket, not cumulative: the encoder accumulates them into `le` counts.
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(inner.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = Duration::from_nanos(inner.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::Registry;

    use super::*;

    fn render(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        register(&mut registry);
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// The exposition is the one prometheus_client's own histogram gives for the same
    /// observations, bounds included (a duration equal to a bound counts in its bucket).
    #[test]
    fn renders_what_the_mutex_histogram_renders() {
        const BOUNDS: [f64; 4] = [0.0001, 0.001, 0.5, 2.5];
        let observations = [
            Duration::from_micros(50),
            Duration::from_micros(100),
            Duration::from_micros(101),
            Duration::from_millis(1),
            Duration::from_millis(499),
            Duration::from_secs(3),
            Duration::from_secs(300),
        ];
        let ours = DurationHistogram::new(&BOUNDS);
        let theirs = Histogram::new(BOUNDS);
        for d in observations {
            ours.observe(d);
            theirs.observe(d.as_secs_f64());
        }
        let a = render(|r| r.register("d", "durations", ours.clone()));
        let b = render(|r| r.register("d", "durations", theirs.clone()));
        // The sums agree to the nanosecond; their f64 renderings may differ in the last digit.
        let without_sum = |s: &str| {
            s.lines()
                .filter(|l| !l.starts_with("d_sum"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(without_sum(&a), without_sum(&b), "{a}\nvs\n{b}");
        assert!(a.contains("d_bucket{le=\"0.0001\"} 2\n"), "{a}");
        assert!(a.contains("d_bucket{le=\"+Inf\"} 7\n"), "{a}");
        assert!(a.contains("d_count 7\n"), "{a}");
        assert!(a.contains("d_sum 303.500251\n"), "{a}");
    }

    #[test]
    fn threads_record_without_losing_counts() {
        let h = DurationHistogram::new(&[0.001]);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        h.observe(Duration::from_micros(10));
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        let text = render(|r| r.register("d", "durations", h.clone()));
        assert!(text.contains("d_count 40000\n"), "{text}");
        assert!(text.contains("d_sum 0.4\n"), "{text}");
    }
}
