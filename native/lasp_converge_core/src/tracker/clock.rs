//! Clock offsets between nodes, from round-trip samples (see [`ClockSync`]).

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use super::NodeId;

/// Why a round-trip sample was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockError {
    /// The reply came back before the request left (`t2 < t0`).
    NegativeRtt {
        /// `t2 - t0`, in microseconds.
        rtt_us: i64,
    },
}

impl std::fmt::Display for ClockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockError::NegativeRtt { rtt_us } => write!(f, "negative round trip ({rtt_us} us)"),
        }
    }
}

impl std::error::Error for ClockError {}

/// The offset of one node's clock from the reference clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// Remote clock minus reference clock, in microseconds.
    pub offset_us: i64,
    /// Bound on the error of `offset_us` (half the kept round trip).
    pub uncertainty_us: u64,
    /// The round trip of the kept sample (0 for [`ClockSync::set_exact`]).
    pub rtt_us: u64,
}

/// A remote timestamp mapped onto the reference clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrected {
    /// The timestamp on the reference clock.
    pub ts_us: i64,
    /// Bound on its error; `None` when the node has no estimate yet, in which
    /// case `ts_us` is the raw reading (offset assumed 0).
    pub uncertainty_us: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    rtt_us: u64,
    offset_us: i64,
}

#[derive(Clone, Debug, Default)]
struct NodeClock {
    exact: bool,
    samples: VecDeque<Sample>,
    best: Option<Estimate>,
}

/// Per-node clock offsets estimated from round trips.
///
/// Every timestamp the tracker receives is read from the clock of the node
/// that produced it. [`ClockSync`] maps such a reading onto the reference
/// clock (the clock of the node that runs the tracker, whose own readings it
/// takes as they are) with the classic NTP-style estimate: the reference
/// sends at `t0` (reference clock), the remote answers with its reading `t1`,
/// the reply arrives at `t2` (reference clock). Then
///
/// ```text
/// offset      = t1 - (t0 + t2) / 2      // remote clock minus reference clock
/// uncertainty = (t2 - t0) / 2           // rtt / 2
/// ```
///
/// The estimate is off by `(d_out - d_back) / 2`, which the round trip
/// bounds by `rtt / 2` whatever the split between the two legs, so the
/// tighter the round trip the better: of the last `window` samples of a node
/// the one with the smallest round trip is kept. Drift between two samples
/// is not modelled; feed samples regularly (every few seconds).
///
/// # Examples
///
/// ```
/// use lasp_converge_core::tracker::{ClockSync, NodeId};
///
/// let mut clocks = ClockSync::new(64);
/// let b = NodeId(2);
/// // b runs 250 ms ahead; one leg 3 ms, the other 1 ms.
/// clocks.sample(b, 1_000_000, 1_253_000, 1_004_000).unwrap();
/// let est = clocks.estimate(b).unwrap();
/// assert_eq!(est.offset_us, 251_000);
/// assert_eq!(est.uncertainty_us, 2_000);
/// // A tighter round trip replaces it.
/// clocks.sample(b, 2_000_000, 2_250_500, 2_001_000).unwrap();
/// assert_eq!(clocks.estimate(b).unwrap().offset_us, 250_000);
/// assert_eq!(clocks.to_reference(b, 2_250_500).ts_us, 2_000_500);
/// ```
#[derive(Clone, Debug)]
pub struct ClockSync {
    window: usize,
    nodes: HashMap<NodeId, NodeClock>,
}

impl Default for ClockSync {
    fn default() -> Self {
        ClockSync::new(64)
    }
}

impl ClockSync {
    /// An empty estimator that keeps the best of the last `window` samples
    /// per node (at least 1).
    pub fn new(window: usize) -> Self {
        ClockSync {
            window: window.max(1),
            nodes: HashMap::new(),
        }
    }

    /// Feeds one round trip with `node`: `t0` request sent and `t2` reply
    /// received (reference clock), `t1` the node's own reading in between.
    /// Returns the estimate now in force. Ignored (but not refused) for a
    /// node marked [`set_exact`](Self::set_exact).
    pub fn sample(
        &mut self,
        node: NodeId,
        t0: i64,
        t1: i64,
        t2: i64,
    ) -> Result<Estimate, ClockError> {
        let rtt = t2.saturating_sub(t0);
        if rtt < 0 {
            return Err(ClockError::NegativeRtt { rtt_us: rtt });
        }
        let window = self.window;
        let clock = self.nodes.entry(node).or_default();
        if clock.exact {
            return Ok(clock.best.unwrap_or(EXACT));
        }
        // t0 + (t2 - t0) / 2, without overflowing on epoch-sized readings.
        let mid = t0 + rtt / 2;
        let sample = Sample {
            rtt_us: rtt as u64,
            offset_us: t1.saturating_sub(mid),
        };
        clock.samples.push_back(sample);
        while clock.samples.len() > window {
            clock.samples.pop_front();
        }
        let best = clock
            .samples
            .iter()
            .min_by_key(|s| s.rtt_us)
            .copied()
            .unwrap_or(sample);
        let est = Estimate {
            offset_us: best.offset_us,
            // Round up: the integer midpoint may be half a microsecond off.
            uncertainty_us: best.rtt_us.div_ceil(2),
            rtt_us: best.rtt_us,
        };
        clock.best = Some(est);
        Ok(est)
    }

    /// Declares `node`'s clock to be the reference clock (offset 0,
    /// uncertainty 0): the node running the tracker, or nodes sharing its host.
    pub fn set_exact(&mut self, node: NodeId) {
        let clock = self.nodes.entry(node).or_default();
        clock.exact = true;
        clock.samples.clear();
        clock.best = Some(EXACT);
    }

    /// Sets an estimate obtained elsewhere (replaces the kept samples).
    pub fn set_estimate(&mut self, node: NodeId, offset_us: i64, uncertainty_us: u64) {
        let clock = self.nodes.entry(node).or_default();
        clock.exact = false;
        clock.samples.clear();
        clock.best = Some(Estimate {
            offset_us,
            uncertainty_us,
            rtt_us: uncertainty_us.saturating_mul(2),
        });
    }

    /// The estimate in force for `node`, if it has one.
    pub fn estimate(&self, node: NodeId) -> Option<Estimate> {
        self.nodes.get(&node).and_then(|c| c.best)
    }

    /// Maps `node`'s reading `ts_us` onto the reference clock.
    pub fn to_reference(&self, node: NodeId, ts_us: i64) -> Corrected {
        match self.estimate(node) {
            Some(e) => Corrected {
                ts_us: ts_us.saturating_sub(e.offset_us),
                uncertainty_us: Some(e.uncertainty_us),
            },
            None => Corrected {
                ts_us,
                uncertainty_us: None,
            },
        }
    }

    /// Every node with an estimate, sorted by node.
    pub fn estimates(&self) -> Vec<(NodeId, Estimate)> {
        let mut v: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|(n, c)| c.best.map(|e| (*n, e)))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v
    }

    /// Number of round-trip samples held (at most `window` per node).
    pub fn retained_samples(&self) -> usize {
        self.nodes.values().map(|c| c.samples.len()).sum()
    }
}

const EXACT: Estimate = Estimate {
    offset_us: 0,
    uncertainty_us: 0,
    rtt_us: 0,
};

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn tightest_round_trip_wins() {
        let mut c = ClockSync::new(8);
        let n = NodeId(1);
        c.sample(n, 0, 500_010, 100).unwrap();
        c.sample(n, 1000, 500_990, 1010).unwrap();
        c.sample(n, 2000, 502_100, 2400).unwrap();
        let e = c.estimate(n).unwrap();
        assert_eq!((e.offset_us, e.uncertainty_us, e.rtt_us), (499_985, 5, 10));
    }

    #[test]
    fn window_forgets_old_samples() {
        let mut c = ClockSync::new(2);
        let n = NodeId(1);
        c.sample(n, 0, 10, 2).unwrap();
        c.sample(n, 100, 150, 200).unwrap();
        c.sample(n, 300, 360, 400).unwrap();
        assert_eq!(c.estimate(n).unwrap().rtt_us, 100);
        assert_eq!(c.retained_samples(), 2);
    }

    #[test]
    fn negative_rtt_refused() {
        let mut c = ClockSync::default();
        assert_eq!(
            c.sample(NodeId(1), 10, 0, 5),
            Err(ClockError::NegativeRtt { rtt_us: -5 })
        );
        assert!(c.estimate(NodeId(1)).is_none());
    }

    #[test]
    fn exact_node_ignores_samples() {
        let mut c = ClockSync::default();
        c.set_exact(NodeId(0));
        c.sample(NodeId(0), 0, 1_000, 10).unwrap();
        assert_eq!(c.to_reference(NodeId(0), 77).ts_us, 77);
        assert_eq!(c.to_reference(NodeId(0), 77).uncertainty_us, Some(0));
        assert_eq!(c.to_reference(NodeId(5), 77).uncertainty_us, None);
    }

    #[test]
    fn uncertainty_rounds_up_odd_rtt() {
        let mut c = ClockSync::default();
        let e = c.sample(NodeId(1), 0, 7, 3).unwrap();
        // mid = 1 (true mid 1.5), so the error can reach 1.5 us: report 2.
        assert_eq!((e.offset_us, e.uncertainty_us), (6, 2));
    }
}
