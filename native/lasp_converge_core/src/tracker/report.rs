//! What the tracker reports: plain structs that serialize to JSON.

use serde::Serialize;

use super::clock::Estimate;
use super::{Config, NodeId, UpdateId};
use crate::latency::Summary;

/// Counters and convergence-time percentiles, from [`Tracker::stats`].
///
/// Every update registered ends up in exactly one of `converged`,
/// `unconverged`, `orphaned`, or is still `pending`:
/// `updates == converged + unconverged + orphaned + pending`.
///
/// [`Tracker::stats`]: super::Tracker::stats
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// Distinct updates registered (duplicates excluded).
    pub updates: u64,
    /// Updates seen by every live member that was required to see them.
    pub converged: u64,
    /// Updates still waiting for some live member.
    pub pending: u64,
    /// Updates some live member had not seen after the horizon, or that the
    /// pending cap pushed out; includes `unconverged_capacity`.
    pub unconverged: u64,
    /// The part of `unconverged` pushed out by `Config::max_pending`.
    pub unconverged_capacity: u64,
    /// Updates with no live member left to require them (every member that
    /// existed at the update's time left, and the rest joined later).
    pub orphaned: u64,
    /// Announcements ignored because their `(origin, seq)` was registered.
    pub duplicates: u64,
    /// Convergence time of the converged updates (3 significant digits),
    /// flattened into these stats (`p50_us`, ..., `mean_us`, `count`,
    /// `saturated`). Its `saturated` counts the latencies above
    /// `Config::max_latency_us`, recorded as that cap, in every histogram:
    /// convergence time and each node's visibility latency.
    #[serde(flatten)]
    pub latency: Summary,
    /// Bound on the clock error of any latency figure: the sum of the two
    /// largest offset uncertainties applied to the nodes whose timestamps
    /// were used (a latency is a difference of two corrected readings).
    pub clock_uncertainty_us: u64,
    /// Nodes whose timestamps were used before they had a clock estimate
    /// (taken raw); `clock_uncertainty_us` does not cover them.
    pub unsynced_nodes: Vec<NodeId>,
    /// Latencies that came out negative (clock error) and were recorded as 0.
    pub negative_clamped: u64,
    /// Witness checks performed so far (registration checks included).
    pub witness_checks: u64,
    /// Per node, sorted by node.
    pub per_node: Vec<NodeStats>,
}

/// Visibility latency of remote updates on one node, from [`Stats`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeStats {
    /// The node.
    pub node: NodeId,
    /// Whether it is a live member now.
    pub live: bool,
    /// `seen ts - update ts` of the updates of other origins it saw
    /// (3 significant digits), flattened as in [`Stats`].
    #[serde(flatten)]
    pub latency: Summary,
    /// Pending updates this node is required to see and has not seen.
    pub pending: u64,
    /// Largest offset uncertainty applied to this node's timestamps; `None`
    /// if none were used or some were used unsynced.
    pub clock_uncertainty_us: Option<u64>,
}

/// A latency histogram as cumulative counts at fixed upper bounds, from
/// [`Tracker::buckets`] (the shape of a Prometheus histogram).
///
/// [`Tracker::buckets`]: super::Tracker::buckets
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Buckets {
    /// The node, or `None` for the convergence-time histogram.
    pub node: Option<NodeId>,
    /// Values at or below each bound asked for, in the same order.
    pub cumulative: Vec<u64>,
    /// Values recorded (the count at an infinite bound).
    pub count: u64,
    /// Their exact sum, microseconds.
    pub sum_us: u64,
}

/// How a finished update ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Seen by every required live member.
    Converged {
        /// `max(seen ts of required members) - update ts`, clamped at 0.
        convergence_us: u64,
    },
    /// Moved out of pending while some required live members had not seen it.
    Unconverged {
        /// Why it was moved out.
        reason: Expiry,
        /// The required live members that had not seen it.
        missing: Vec<NodeId>,
    },
    /// No live member was left to require it.
    Orphaned,
}

/// Why an update stopped being pending without converging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// Older than `Config::horizon_us`.
    Horizon,
    /// Oldest pending when `Config::max_pending` was exceeded.
    Capacity,
}

/// When one node first held one update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// The node.
    pub node: NodeId,
    /// First observation holding it (reference clock, microseconds).
    pub ts_us: i64,
}

/// The raw record of one finished update (kept for the most recent
/// `Config::record_window` of them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The update.
    pub id: UpdateId,
    /// Its timestamp (reference clock).
    pub ts_us: i64,
    /// Every node known to have held it, the origin included, by node.
    pub seen: Vec<Seen>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One node in a [`DivergenceSample`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NodeLag {
    /// The node.
    pub node: NodeId,
    /// Pending updates it must see and has not.
    pub unseen: u32,
    /// Age of the oldest of them at the sample time; `None` when up to date.
    pub oldest_unseen_age_us: Option<u64>,
}

/// The divergence of the live members at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DivergenceSample {
    /// Sample time, a multiple of `Config::sample_every_us` (reference clock).
    pub t_us: i64,
    /// Fraction of live members with nothing unseen (1.0 with no members).
    pub up_to_date: f64,
    /// Every live member, by node.
    pub nodes: Vec<NodeLag>,
}

/// A node's clock estimate, in a [`Report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NodeClock {
    /// The node.
    pub node: NodeId,
    /// Its estimate.
    #[serde(flatten)]
    pub estimate: Estimate,
}

/// Everything the tracker knows, as [`Tracker::to_json`] serializes it.
///
/// [`Tracker::to_json`]: super::Tracker::to_json
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The configuration in force.
    pub config: Config,
    /// Counters and percentiles.
    pub stats: Stats,
    /// Clock estimates in force.
    pub clocks: Vec<NodeClock>,
    /// Raw records of the most recent finished updates, oldest first.
    pub records: Vec<Record>,
    /// Divergence samples, oldest first.
    pub divergence: Vec<DivergenceSample>,
}

/// Sizes of everything the tracker holds, for asserting memory bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Retained {
    /// Pending updates (witness kept).
    pub pending: usize,
    /// Entries across the pending indexes: by id, by time, by key, keyless,
    /// unchecked, and every node's unseen set.
    pub index_entries: usize,
    /// Raw records of finished updates.
    pub records: usize,
    /// Divergence samples.
    pub samples: usize,
    /// Out-of-order sequence numbers held for duplicate detection.
    pub seq_entries: usize,
    /// Clock round-trip samples.
    pub clock_samples: usize,
    /// Node slots (one per node ever mentioned; nodes are not forgotten).
    pub nodes: usize,
}
