//! A deterministic discrete-event simulator of CRDT anti-entropy, as
//! `lasp_converge_replicator` does it.
//!
//! # Model
//!
//! `nodes` replicas of one variable. Every replica runs a timer: every
//! `state_interval` (stretched or shortened by a uniform random amount of
//! up to `jitter_percent` %, plus a `round_cost` drawn per round; the first
//! tick at a random phase, at one interval with `aligned_timers`, or at
//! the given `timer_offsets_us`) it sends to `fanout` distinct random
//! peers, or to all. With `propagate_on_update` it also sends right after
//! each local update.
//!
//! Processing: each node handles one thing at a time, in arrival order, as
//! the replicator's single process does. A received state or delta, and a
//! local update, occupy the node for a `service_time` draw; a message takes
//! effect (merge, acknowledgement) when its service ends, an update's
//! `propagate_on_update` round goes out then, and a tick that falls due
//! while the node is busy sends when it is free. Acknowledgements are
//! handled on arrival, and an update is seen by its own node at once.
//!
//! The state is modelled by what it holds: which updates a replica has seen.
//! Updates are numbered in creation order and each replica keeps a bitset
//! of them. Lattice states only grow, so a merge is the union of the two
//! sets: the simulator never needs the values themselves.
//!
//! - `StateBased`: a message carries the sender's whole set as it was when
//!   sent.
//! - `DeltaBased` (Enes et al., ICDE 2019, as the replicator does it): each
//!   replica buffers its own updates and, reduced to what they added, the
//!   states and deltas it received, each under a sequence number with its
//!   origin. A peer that acknowledged sequence `A` gets the buffered updates
//!   numbered `A` or later, less those that came from it (nothing is sent
//!   when that leaves nothing); a peer that acknowledged nothing or is
//!   behind the buffer gets the full set. The receiver merges and
//!   acknowledges the sequence number the message carried. Entries every
//!   acknowledging peer has acknowledged leave the buffer, which never holds
//!   more than `delta_buffer` entries.
//!
//! Every message (state, delta, acknowledgement) takes a latency drawn from
//! [`LatencyDist`] (`ack_latency` for acknowledgements when given), is lost with probability `loss`, and is dropped when a
//! [`Partition`] active at the time it is sent separates its ends. A
//! node's update makes it see the update at once; another node sees it when
//! a message carrying it arrives. An update converges when every node has
//! seen it; one not converged `horizon` after it was made counts as
//! unconverged (as in the tracker).
//!
//! Sizes: a message weighs `message_bytes + update_bytes * k`, `k` the
//! updates it carries (the sender's whole set for a full state); an
//! acknowledgement weighs `ack_bytes`. This is a linear model of
//! `erlang:external_size/1` of the replicator's messages for a set whose
//! elements are about `update_bytes` each.
//!
//! The run stops when every update has been made and has converged or
//! expired, or at `until`, whichever is first.
//!
//! # Limits of the model
//!
//! CPU cost only as the `service_time` and `round_cost` draws (both 0 by
//! default: a message is merged the instant it arrives), independent of
//! the state's size and of what other nodes on the same machine are
//! doing. No queueing on links: latencies are independent draws, so
//! messages on one link may overtake each other.
//! Every node runs the same settings; no crashes or restarts. Only the
//! number of updates a message carries sets its size: a removal, a counter
//! increment and an add all weigh `update_bytes`.
//!
//! # Examples
//!
//! ```
//! use lasp_converge_core::sim::{run, Fanout, Spec, Updates};
//!
//! let spec = Spec {
//!     nodes: 20,
//!     fanout: Fanout::Count(2),
//!     state_interval_us: 100_000,
//!     updates: Updates::Poisson { rate_per_s: 50.0, duration_us: 1_000_000 },
//!     seed: 7,
//!     ..Spec::default()
//! };
//! let r = run(&spec).unwrap();
//! assert_eq!(r.stats.updates, r.stats.converged);
//! assert!(r.stats.latency.p99_us.unwrap() < 2_000_000);
//! assert_eq!(run(&spec).unwrap(), r); // one seed, one run
//! ```
#![allow(clippy::module_name_repetitions)]

mod engine;
pub mod rng;

use serde::Serialize;
use std::sync::atomic::AtomicBool;

pub use crate::latency::Summary;

/// How replicas synchronize (the replicator's `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The full state every time.
    StateBased,
    /// Unacknowledged deltas, full state when needed.
    DeltaBased,
}

/// How many peers each round goes to (the replicator's `fanout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fanout {
    /// Every other node.
    All,
    /// That many distinct random peers (all of them when fewer exist).
    Count(u32),
}

/// One-way latency of a message, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyDist {
    /// Always this.
    Constant(u64),
    /// Uniform in `[lo, hi]`.
    Uniform(u64, u64),
    /// Normal with this mean and standard deviation, negative draws as 0.
    Normal(f64, f64),
    /// `exp(mu + sigma * Z)`, `Z` standard normal (`exp(mu)` is the median).
    LogNormal(f64, f64),
    /// One of these, uniformly (e.g. measured on a real cluster).
    Empirical(Vec<u64>),
}

/// Where updates come from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Updates {
    /// A Poisson process at `rate_per_s` over the whole cluster, from time 0
    /// for `duration_us`, each update on a uniformly random node.
    Poisson {
        /// Updates per second, cluster-wide.
        rate_per_s: f64,
        /// How long updates are made.
        duration_us: u64,
    },
    /// Exactly these `(time us, node)`.
    At(Vec<(u64, u32)>),
}

/// A partition: from `start_us` (inclusive) to `end_us` (exclusive),
/// messages between nodes of different groups are dropped; a node in no
/// group is alone.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Partition {
    /// When it starts.
    pub start_us: u64,
    /// When it heals.
    pub end_us: u64,
    /// Disjoint groups of node numbers (`0..nodes`).
    pub groups: Vec<Vec<u32>>,
}

/// Which divergence figures each sample holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    /// Per node, as the tracker gives them.
    Full,
    /// Cluster-wide figures only (`nodes` left empty).
    Summary,
}

/// Everything a run depends on. Times in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spec {
    /// Replicas, `2..=MAX_NODES`.
    pub nodes: u32,
    /// `state_based` or `delta_based`.
    pub mode: Mode,
    /// Period of each node's timer.
    pub state_interval_us: u64,
    /// Peers per round.
    pub fanout: Fanout,
    /// Also send right after each local update.
    pub propagate_on_update: bool,
    /// Each period is changed by a uniform amount of up to this percentage.
    pub jitter_percent: u32,
    /// Most entries in a delta buffer.
    pub delta_buffer: u32,
    /// Every node's first tick at one `state_interval` (synchronous rounds)
    /// instead of at a random phase.
    pub aligned_timers: bool,
    /// Each node's first tick (`nodes` entries, by node), instead of a
    /// random phase; not with `aligned_timers`.
    pub timer_offsets_us: Option<Vec<u64>>,
    /// How much longer than `state_interval` (after jitter) each period
    /// is, drawn per round: the round's own work and the timer's lateness,
    /// as the replicator arms its next timer after the round.
    pub round_cost: LatencyDist,
    /// Time a node takes to process a received state or delta (merge and
    /// tracking), or a local update; one at a time per node, in arrival
    /// order.
    pub service_time: LatencyDist,
    /// Link latency.
    pub latency: LatencyDist,
    /// Link latency of acknowledgements; `None`: `latency`.
    pub ack_latency: Option<LatencyDist>,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Partitions over time.
    pub partitions: Vec<Partition>,
    /// The update process.
    pub updates: Updates,
    /// Unseen this long after it was made, an update counts as unconverged.
    pub horizon_us: u64,
    /// Stop here at the latest.
    pub until_us: Option<u64>,
    /// Divergence sample period; `None`: the run's bound / `max_samples`,
    /// at least 10 ms.
    pub sample_every_us: Option<u64>,
    /// Most divergence samples kept (the last ones).
    pub max_samples: u32,
    /// Per-node figures in the samples; `None`: `Full` up to 100 nodes.
    pub detail: Option<Detail>,
    /// Fixed part of a state or delta message.
    pub message_bytes: u64,
    /// Bytes per update a message carries.
    pub update_bytes: u64,
    /// An acknowledgement.
    pub ack_bytes: u64,
    /// The random seed.
    pub seed: u64,
}

impl Default for Spec {
    /// The replicator's defaults (interval 10 s, fanout all, state-based,
    /// no jitter, buffer 1000), 10 nodes, 1 ms links, no loss, 1 update/s
    /// for 10 s, the tracker's 30 s horizon.
    fn default() -> Self {
        Spec {
            nodes: 10,
            mode: Mode::StateBased,
            state_interval_us: 10_000_000,
            fanout: Fanout::All,
            propagate_on_update: false,
            jitter_percent: 0,
            delta_buffer: 1000,
            aligned_timers: false,
            timer_offsets_us: None,
            round_cost: LatencyDist::Constant(0),
            service_time: LatencyDist::Constant(0),
            latency: LatencyDist::Constant(1000),
            ack_latency: None,
            loss: 0.0,
            partitions: Vec::new(),
            updates: Updates::Poisson {
                rate_per_s: 1.0,
                duration_us: 10_000_000,
            },
            horizon_us: 30_000_000,
            until_us: None,
            sample_every_us: None,
            max_samples: 1000,
            detail: None,
            message_bytes: 60,
            update_bytes: 40,
            ack_bytes: 60,
            seed: 1,
        }
    }
}

/// Most nodes.
pub const MAX_NODES: u32 = 20_000;
/// Most updates in one run.
pub const MAX_UPDATES: u64 = 1_000_000;
/// Most `nodes * updates` (the seen-bitsets: 250 MB at the cap).
pub const MAX_NODE_UPDATES: u64 = 2_000_000_000;
/// Most messages a run may need by the estimate
/// `nodes * peers * (bound / state_interval) + updates * peers` (about a
/// minute of simulation at the cap).
pub const MAX_MESSAGES: u64 = 300_000_000;
/// Most partitions.
pub const MAX_PARTITIONS: usize = 1000;
/// Most values in an empirical latency list.
pub const MAX_EMPIRICAL: usize = 1_000_000;
/// Longest simulated time (one week), interval and latency included.
pub const MAX_TIME_US: u64 = 7 * 24 * 3600 * 1_000_000;
/// Most divergence samples.
pub const MAX_SAMPLES: u32 = 100_000;
/// Most per-node entries over the samples kept with [`Detail::Full`]
/// (`nodes * max_samples`).
pub const MAX_SAMPLE_ENTRIES: u64 = 2_000_000;

/// Why a spec was refused; each names the field at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimError {
    /// This field is out of range or inconsistent.
    Bad(Field),
    /// The run would exceed this cap (see the `MAX_*` constants).
    TooLarge(Field),
    /// The cancel flag given to [`run_cancellable`] was raised.
    Cancelled,
}

/// A field of [`Spec`], for errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Field {
    Nodes,
    StateInterval,
    Fanout,
    JitterPercent,
    DeltaBuffer,
    TimerOffsets,
    RoundCost,
    ServiceTime,
    Latency,
    AckLatency,
    Loss,
    Partitions,
    Updates,
    Horizon,
    Until,
    SampleEvery,
    MaxSamples,
    Messages,
}

impl Field {
    /// The spec key this field is given as (Erlang and Elixir).
    pub fn name(self) -> &'static str {
        match self {
            Field::Nodes => "nodes",
            Field::StateInterval => "state_interval",
            Field::Fanout => "fanout",
            Field::JitterPercent => "jitter_percent",
            Field::DeltaBuffer => "delta_buffer",
            Field::TimerOffsets => "timer_offsets",
            Field::RoundCost => "round_cost",
            Field::ServiceTime => "service_time",
            Field::Latency => "latency",
            Field::AckLatency => "ack_latency",
            Field::Loss => "loss",
            Field::Partitions => "partitions",
            Field::Updates => "updates",
            Field::Horizon => "horizon",
            Field::Until => "until",
            Field::SampleEvery => "sample_every",
            Field::MaxSamples => "max_samples",
            Field::Messages => "messages",
        }
    }
}

/// Convergence figures, the shape of the tracker's
/// [`Stats`](crate::tracker::Stats): `updates == converged + unconverged +
/// pending`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimStats {
    /// Updates made.
    pub updates: u64,
    /// Seen by every node within the horizon.
    pub converged: u64,
    /// Not yet converged nor expired when the run stopped (at `until`).
    pub pending: u64,
    /// Not seen by every node within the horizon.
    pub unconverged: u64,
    /// Convergence time of the converged updates (3 significant digits, no
    /// cap: `saturated` stays 0), flattened into these stats as in the
    /// tracker's.
    #[serde(flatten)]
    pub latency: Summary,
    /// Per node, by node.
    pub per_node: Vec<SimNodeStats>,
}

/// Visibility latency of other nodes' updates on one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimNodeStats {
    /// The node (`0..nodes`).
    pub node: u32,
    /// Its visibility latencies (2 significant digits), flattened as in
    /// [`SimStats`].
    #[serde(flatten)]
    pub latency: Summary,
    /// Updates pending at the end that it had not seen.
    pub pending: u64,
}

/// One node in a [`SimSample`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SimLag {
    /// The node.
    pub node: u32,
    /// Pending updates it has not seen.
    pub unseen: u64,
    /// Age of the oldest of them; `None` when up to date.
    pub oldest_unseen_age_us: Option<u64>,
}

/// Divergence at one instant (the state just before the events of that
/// instant), the shape of the tracker's divergence samples plus
/// cluster-wide figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimSample {
    /// Sample time.
    pub t_us: u64,
    /// Fraction of nodes with nothing unseen.
    pub up_to_date: f64,
    /// Sum over nodes of the pending updates each has not seen.
    pub unseen_total: u64,
    /// The largest of those.
    pub unseen_max: u64,
    /// Age of the oldest pending update; `None` when none is pending.
    pub oldest_unseen_age_us: Option<u64>,
    /// Per node (empty with [`Detail::Summary`]).
    pub nodes: Vec<SimLag>,
}

/// What a run gives back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimReport {
    /// Convergence figures.
    pub stats: SimStats,
    /// Divergence samples, oldest first.
    pub divergence: Vec<SimSample>,
    /// The sample period used.
    pub sample_every_us: u64,
    /// Messages sent, lost ones included.
    pub messages: u64,
    /// Their bytes (see the size model).
    pub bytes: u64,
    /// Full-state messages.
    pub full_states: u64,
    /// Delta messages.
    pub deltas: u64,
    /// Acknowledgements.
    pub acks: u64,
    /// Messages lost or cut by a partition.
    pub dropped: u64,
    /// `messages / updates` (0 without updates).
    pub messages_per_update: f64,
    /// `bytes / updates` (0 without updates).
    pub bytes_per_update: f64,
    /// Simulated time when the run stopped.
    pub end_us: u64,
    /// Events processed (ticks, updates, deliveries).
    pub events: u64,
}

/// Run the simulation `spec` describes.
pub fn run(spec: &Spec) -> Result<SimReport, SimError> {
    run_cancellable(spec, &AtomicBool::new(false))
}

/// [`run`], giving up with [`SimError::Cancelled`] soon after `cancel` is
/// raised (it is read every [`CANCEL_CHECK_EVENTS`] events). A run that is
/// not cancelled gives exactly what [`run`] gives.
///
/// ```
/// use lasp_converge_core::sim::{run_cancellable, SimError, Spec};
/// use std::sync::atomic::AtomicBool;
///
/// let spec = Spec { nodes: 50, ..Spec::default() };
/// assert_eq!(run_cancellable(&spec, &AtomicBool::new(true)), Err(SimError::Cancelled));
/// ```
pub fn run_cancellable(spec: &Spec, cancel: &AtomicBool) -> Result<SimReport, SimError> {
    let plan = engine::Plan::new(spec)?;
    engine::Sim::new(spec, plan)
        .run(cancel)
        .ok_or(SimError::Cancelled)
}

/// How many events a run processes between two reads of its cancel flag.
pub const CANCEL_CHECK_EVENTS: u64 = 1024;
