//! The latency histogram of the tracker and the simulator: HdrHistogram
//! plus the exact count, sum and maximum it cannot give back, and the one
//! [`Summary`] of percentiles both report (the `latency` field of
//! `tracker::Stats`, `sim::SimStats` and their per-node entries).

use hdrhistogram::{Counter, Histogram};
use serde::Serialize;

/// Latencies in microseconds. Values above `cap` are recorded as `cap` and
/// counted in `saturated`, so memory stays bounded (the HdrHistogram grows
/// only up to the largest value recorded: about 200 KB at one hour).
///
/// The counter type `C` sizes each bucket: the tracker keeps `u64`, the
/// simulator `u32` for its per-node histograms (a run records fewer than
/// 2^32 values per node).
#[derive(Clone, Debug)]
pub(crate) struct Latency<C: Counter = u64> {
    hist: Histogram<C>,
    cap: u64,
    count: u64,
    sum: u128,
    max: u64,
    saturated: u64,
}

/// Percentiles of one latency histogram, in microseconds; `None` while it
/// is empty.
///
/// Reached as [`tracker::Summary`](crate::tracker::Summary) and
/// [`sim::Summary`](crate::sim::Summary). The reports that carry it flatten
/// it, so its fields appear among theirs in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Values recorded.
    pub count: u64,
    /// Median (HdrHistogram, at the histogram's significant digits).
    pub p50_us: Option<u64>,
    /// 90th percentile.
    pub p90_us: Option<u64>,
    /// 99th percentile.
    pub p99_us: Option<u64>,
    /// 99.9th percentile.
    pub p999_us: Option<u64>,
    /// Exact maximum (after saturation at the configured cap).
    pub max_us: Option<u64>,
    /// Exact mean.
    pub mean_us: Option<f64>,
    /// Values above the cap, recorded as the cap.
    pub saturated: u64,
}

impl Latency<u64> {
    /// Three significant digits, values capped at `cap`.
    pub(crate) fn new(cap: u64) -> Self {
        Self::with_sigfig(3, cap)
    }
}

impl<C: Counter> Latency<C> {
    /// `sigfig` significant digits (2 or 3), values capped at `cap`.
    pub(crate) fn with_sigfig(sigfig: u8, cap: u64) -> Self {
        let cap = cap.max(2);
        // `new` auto-resizes from a tiny initial range; it cannot fail for
        // sigfig 2 or 3, and the fallback keeps a panic out of the NIF
        // regardless.
        let hist = Histogram::new(sigfig)
            .or_else(|_| Histogram::new_with_bounds(1, cap.min(u64::MAX / 4), sigfig))
            .unwrap_or_else(|_| unreachable!("valid HdrHistogram bounds"));
        Latency {
            hist,
            cap,
            count: 0,
            sum: 0,
            max: 0,
            saturated: 0,
        }
    }

    #[inline]
    pub(crate) fn record(&mut self, v: u64) {
        let v = if v > self.cap {
            self.saturated += 1;
            self.cap
        } else {
            v
        };
        // Auto-resize makes `record` infallible below i64::MAX / 2.
        if self.hist.record(v).is_err() {
            self.hist.saturating_record(v);
        }
        self.count += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    /// HdrHistogram answers with the top of the value's bucket, which can
    /// pass the exact maximum: clamped to it.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        (self.count > 0).then(|| self.hist.value_at_quantile(q).min(self.max))
    }

    pub(crate) fn summary(&self) -> Summary {
        let some = self.count > 0;
        Summary {
            count: self.count,
            p50_us: self.quantile(0.5),
            p90_us: self.quantile(0.9),
            p99_us: self.quantile(0.99),
            p999_us: self.quantile(0.999),
            max_us: some.then_some(self.max),
            mean_us: some.then(|| self.sum as f64 / self.count as f64),
            saturated: self.saturated,
        }
    }

    /// Cumulative counts at the upper bounds `bounds_us` (ascending): the
    /// `i`-th is the number of values recorded at or below `bounds_us[i]`,
    /// within HdrHistogram's resolution (a value counts under a bound when
    /// the lowest value equivalent to it does, so a value at most 0.1 %
    /// above a bound may count under it). One pass over the recorded values.
    pub(crate) fn cumulative(&self, bounds_us: &[u64]) -> Vec<u64> {
        let mut per = vec![0u64; bounds_us.len()];
        for v in self.hist.iter_recorded() {
            let low = self.hist.lowest_equivalent(v.value_iterated_to());
            let i = bounds_us.partition_point(|&b| b < low);
            if let Some(c) = per.get_mut(i) {
                *c += v.count_at_value().as_u64();
            }
        }
        let mut acc = 0u64;
        for c in &mut per {
            acc += *c;
            *c = acc;
        }
        per
    }

    /// Values recorded, and their exact sum (saturating at `u64::MAX`).
    pub(crate) fn count_sum(&self) -> (u64, u64) {
        (self.count, u64::try_from(self.sum).unwrap_or(u64::MAX))
    }

    /// Whether HdrHistogram counts `a` and `b` as the same value.
    #[cfg(test)]
    pub(crate) fn equivalent(&self, a: u64, b: u64) -> bool {
        self.hist.equivalent(a, b)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn empty_summary_has_no_percentiles() {
        let s = Latency::new(1000).summary();
        assert_eq!(s.count, 0);
        assert_eq!(s.p50_us, None);
        assert_eq!(s.mean_us, None);
    }

    #[test]
    fn saturates_at_cap() {
        let mut h = Latency::new(1000);
        h.record(5);
        h.record(5000);
        let s = h.summary();
        assert_eq!((s.count, s.max_us, s.saturated), (2, Some(1000), 1));
        assert_eq!(s.mean_us, Some(502.5));
        assert!(h.equivalent(s.p99_us.unwrap(), 1000));
    }

    #[test]
    fn percentiles_never_pass_the_exact_maximum() {
        // 2 significant digits: 1234 falls in a bucket whose top is above it.
        let mut h: Latency<u32> = Latency::with_sigfig(2, u64::MAX);
        h.record(1234);
        let s = h.summary();
        assert_eq!(
            (s.p50_us, s.p999_us, s.max_us),
            (Some(1234), Some(1234), Some(1234))
        );
        assert_eq!(s.saturated, 0);
    }

    #[test]
    fn cumulative_counts_at_bounds() {
        let mut h = Latency::new(10_000_000);
        for v in [0, 1, 999, 1000, 1001, 2500, 40_000, 3_000_000] {
            h.record(v);
        }
        // Exact below 2048 (3 significant digits); above, within 0.1 %.
        let c = h.cumulative(&[0, 1000, 2500, 50_000, 1_000_000]);
        assert_eq!(c, vec![1, 4, 6, 7, 7]);
        assert_eq!(h.count_sum(), (8, 3_045_501));
        assert_eq!(Latency::new(10).cumulative(&[1, 2]), vec![0, 0]);
        assert!(h.cumulative(&[]).is_empty());
    }
}
