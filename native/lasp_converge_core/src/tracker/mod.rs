//! Convergence tracking: when each update becomes visible on each replica.
//!
//! One [`Tracker`] follows one replicated variable across a cluster. It is
//! told three things, all in plain data so the NIF glue stays thin:
//!
//! * [`Tracker::updated`] / [`Tracker::updated_with`]: node `origin` made
//!   update `(origin, seq)` at `ts`; the update is described by a witness `W`
//!   (for Lasp, the delta `delta(Post, Pre)`), which the origin holds at `ts`.
//! * [`Tracker::observed`]: node `n` held some state at `ts`; the caller's
//!   `check(&W) -> bool` says whether that state contains a witness (for
//!   Lasp, whether merging the delta into the state leaves it unchanged).
//! * [`Tracker::set_members`]: the live members from `ts` on.
//!
//! An update converges when every *required* member has held it; its
//! convergence time, `max(seen ts of the required members) - update ts`, goes
//! into an HdrHistogram, and each node's own `seen ts - update ts` into that
//! node's histogram. [`Tracker::stats`], [`Tracker::divergence`] and
//! [`Tracker::to_json`] report them.
//!
//! # Design decisions
//!
//! **Who must see an update.** A node is required to see update `u` when it
//! is a live member now and joined at or before `u`'s timestamp. So:
//!
//! * A node that leaves (or crashes: the caller drops it from the members)
//!   stops holding updates pending; updates that waited only for it converge
//!   over the remaining members, with their seen times.
//! * A node that joins late is *excluded* from updates made before it
//!   joined: not required, and not in its latency histogram. Catching up
//!   after a join is state transfer, not propagation, and would skew both
//!   figures. The members of the first [`set_members`](Tracker::set_members)
//!   call form the initial cluster and count as present from the start;
//!   later additions join at that call's `ts`. A node that leaves and comes
//!   back joins anew.
//! * An update with no required member left is `orphaned` (counted, never
//!   dropped silently). Before the first `set_members` there are no members,
//!   so every update would be orphaned: set the members first.
//!
//! **Horizon and caps.** An update still missing a required member when the
//! tracker's clock is more than `horizon_us` past its timestamp is counted
//! `unconverged` (with the missing nodes in its record) and leaves pending.
//! At most `max_pending` updates are pending; past that the oldest are
//! counted `unconverged` (reason `capacity`). Finished updates fold into
//! histograms; raw records of the last `record_window` stay; divergence keeps
//! the last `max_samples` samples. So memory is bounded by the configuration
//! (plus one small slot per node ever seen), whatever the number of updates.
//!
//! **Clocks.** Every timestamp passed in is read on the node that produced it:
//! `updated` takes the origin's clock, `observed` the observing node's;
//! `set_members` and `tick` take the reference clock (the node running the
//! tracker). The tracker maps each reading onto the reference clock with its
//! own [`ClockSync`] (feed it with [`Tracker::clock_sample`]), at the moment
//! the reading arrives, and remembers the largest uncertainty it applied per
//! node. Every figure is reported next to `clock_uncertainty_us`, the sum of
//! the two largest such uncertainties: a latency is the difference of two
//! corrected readings, each off by at most its node's uncertainty. A node
//! with no estimate is taken raw and listed in `unsynced_nodes`; mark the
//! reference node (and nodes sharing its clock) with [`ClockSync::set_exact`].
//! A latency that comes out negative through clock error is recorded as 0
//! and counted in `negative_clamped`.
//!
//! **Time.** The tracker's clock is the largest corrected timestamp seen so
//! far ([`Tracker::tick`] advances it when nothing happens). It drives the
//! horizon and the divergence samples: a sample at `t` (a multiple of
//! `sample_every_us`) is taken when the clock first passes `t`, before the
//! event that moved it is applied. Late events are applied but do not
//! rewrite past samples.
//!
//! **Out of order and duplicates.** Duplicate announcements (same
//! `(origin, seq)`, even after the update finished) are ignored and
//! counted. An observation marks each update first-seen at its `ts`; a later
//! observation never moves that, an earlier one (reordered delivery) moves it
//! back. An update announced after a node already observed a state holding it
//! is caught by [`Tracker::updated_with`]: its `seen(node, &w)` is asked,
//! for every node that observed before, whether that node's *last observed
//! state* holds `w`; if so the node counts as having seen it at that last
//! observation (an upper bound on the first time). The tracker does not keep
//! states: keeping the last state per node is the caller's business.
//!
//! **Witness index.** Checking every pending update on every observation is
//! linear, and a check is a lattice operation. A [`Witness`] may expose an
//! index [`key`](Witness::key) (say a hash of the element or actor the delta
//! touches), promising that whether a state holds it depends only on the
//! part of the state under that key. An observation then narrows the
//! candidates with a [`Filter`]:
//!
//! * [`Filter::All`]: every pending update not yet seen by the node (the
//!   linear fallback, right for any witness).
//! * [`Filter::MayContain`]: `f(key) == false` means the state has nothing
//!   under `key`, so witnesses with that key are skipped unchecked; `f` runs
//!   once per distinct pending key.
//! * [`Filter::Changed`]: the keys under which this node's state changed
//!   since its previous observation (all its keys on its first). Only
//!   witnesses with those keys are checked, plus keyless ones, plus those
//!   registered with plain [`updated`](Tracker::updated) since the node's
//!   previous observation (never checked against its state). The cost is
//!   then independent of the number pending.
//! * [`Filter::Ranges`]: as `Changed`, for witnesses with several
//!   [`atoms`](Witness::atoms) `(position, rank)`: `(pos, lo, hi)` selects
//!   the witnesses with an atom at `pos` ranked within `lo..=hi`.
//!   [`witness`] lists the atoms of every lasp-lang/types state and the
//!   ranges a node's change opens ([`witness::View::changed`]).
//!
//! Keyless witnesses are checked under every filter. The number of checks of
//! each observation is returned in [`Observed::checked`].
//!
//! # Examples
//!
//! ```
//! use lasp_converge_core::tracker::{Config, Filter, NodeId, Tracker, Witness};
//!
//! // A witness: the element a set update adds.
//! struct Add(u64);
//! impl Witness for Add {
//!     fn key(&self) -> Option<u64> { Some(self.0) }
//! }
//!
//! let (a, b) = (NodeId(1), NodeId(2));
//! let mut t = Tracker::new(Config::default());
//! t.clock_mut().set_exact(a);
//! t.clock_mut().set_exact(b);
//! t.set_members(0, &[a, b]);
//! t.updated(a, 1, 1_000, Add(7));
//! let b_state = [7u64];
//! let obs = t.observed(b, 4_000, Filter::Changed(&[7]), |w: &Add| b_state.contains(&w.0));
//! assert_eq!((obs.checked, obs.converged), (1, 1));
//! let s = t.stats();
//! assert_eq!((s.converged, s.pending), (1, 0));
//! assert!(s.latency.p50_us.unwrap().abs_diff(3_000) <= 3);
//! assert_eq!(s.clock_uncertainty_us, 0);
//! ```

mod clock;
pub mod nodes;
mod report;
mod seq;
pub mod witness;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use serde::Serialize;

pub use crate::latency::Summary;
pub use clock::{ClockError, ClockSync, Corrected, Estimate};
pub use report::{
    Buckets, DivergenceSample, Expiry, NodeClock, NodeLag, NodeStats, Outcome, Record, Report,
    Retained, Seen, Stats,
};

use crate::latency::Latency;
use seq::SeqWindow;

/// A node, as a small integer the caller maps node names to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

/// An update: its origin and the origin's sequence number for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UpdateId {
    /// The node that made the update.
    pub origin: NodeId,
    /// The origin's number for it.
    pub seq: u64,
}

/// What the tracker stores per update to recognise it in a state.
///
/// The containment test itself is the caller's closure; the trait only
/// offers the optional index key (see the module docs, "Witness index").
pub trait Witness {
    /// A key such that whether a state holds this witness depends only on
    /// the part of the state under that key (e.g. a hash of the element a
    /// set delta adds, or the actor a counter delta bumps). `None` (the
    /// default) means no such key: the witness is checked on every observation.
    fn key(&self) -> Option<u64> {
        None
    }

    /// Index atoms `(position, rank)`: whether a state holds this witness
    /// depends only on the state's ranks at these positions, and a state
    /// holds it only if its rank at each is at least the atom's (see
    /// [`witness`]). `None` (the default: the [`key`](Self::key), if any,
    /// at rank 0) means the witness is checked on every observation.
    fn atoms(&self) -> Option<Vec<(u64, u64)>> {
        self.key().map(|k| vec![(k, 0)])
    }
}

/// Which pending updates an observation checks (see the module docs).
#[derive(Clone, Copy)]
pub enum Filter<'a> {
    /// Every pending update the node has not seen.
    All,
    /// Skip witnesses whose key the state cannot hold (`f(key) == false`).
    MayContain(&'a dyn Fn(u64) -> bool),
    /// Only witnesses under keys that changed since the node's previous
    /// observation (plus keyless ones and unchecked registrations).
    Changed(&'a [u64]),
    /// As `Changed`, by rank: `(pos, lo, hi)` selects the witnesses with an
    /// atom at `pos` whose rank is within `lo..=hi` (see
    /// [`witness::View::changed`]).
    Ranges(&'a [(u64, u64, u64)]),
}

impl std::fmt::Debug for Filter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::All => f.write_str("All"),
            Filter::MayContain(_) => f.write_str("MayContain(..)"),
            Filter::Changed(k) => f.debug_tuple("Changed").field(&k.len()).finish(),
            Filter::Ranges(r) => f.debug_tuple("Ranges").field(&r.len()).finish(),
        }
    }
}

/// Tracker settings. Out-of-range values are clamped by [`Tracker::new`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// How long an update may stay unseen by a required member before it is
    /// counted unconverged (default 30 s).
    pub horizon_us: i64,
    /// Hard cap on pending updates (default 100 000); past it the oldest
    /// pending are counted unconverged.
    pub max_pending: usize,
    /// Raw records of finished updates kept (default 10 000).
    pub record_window: usize,
    /// Divergence sample period (default 10 ms); 0 disables sampling.
    pub sample_every_us: i64,
    /// Divergence samples kept (default 60 000, ten minutes at 10 ms).
    pub max_samples: usize,
    /// Latencies above this are recorded as this (default 1 hour).
    pub max_latency_us: u64,
    /// Out-of-order sequence numbers held per origin for duplicate detection
    /// (default 4096); dense per-origin counters need none.
    pub seq_window: usize,
    /// Round-trip samples per node among which the tightest is kept (default 64).
    pub clock_window: usize,
    /// Most distinct nodes held at once (default 1024): each takes a latency
    /// histogram (about 66 KB). Past it, a new node's events are refused
    /// ([`Registered::TooManyNodes`], [`Observed::refused`]) until
    /// [`reset`](Tracker::reset) frees the nodes that are not members.
    pub max_nodes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            horizon_us: 30_000_000,
            max_pending: 100_000,
            record_window: 10_000,
            sample_every_us: 10_000,
            max_samples: 60_000,
            max_latency_us: 3_600_000_000,
            seq_window: 4096,
            clock_window: 64,
            max_nodes: 1024,
        }
    }
}

/// The result of registering an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// A new update; `finished` if it converged (or was orphaned or expired)
    /// at once.
    New {
        /// It is no longer pending.
        finished: bool,
    },
    /// Its `(origin, seq)` was registered before; ignored.
    Duplicate,
    /// Its origin would be one node more than `max_nodes`; ignored.
    TooManyNodes,
}

/// The result of one observation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Witness checks performed.
    pub checked: usize,
    /// Pending updates this node saw for the first time.
    pub newly_seen: usize,
    /// Updates that converged as a result.
    pub converged: usize,
    /// The node would be one more than `max_nodes`: nothing was done.
    pub refused: bool,
}

/// Most divergence samples one move of the tracker's clock takes; a longer
/// jump keeps the latest ones (the ones before are the same state anyway).
pub const CATCHUP_SAMPLES: usize = 1024;

/// "Not seen" in `Entry::seen`. Timestamps are clamped above it ([`clamp_ts`]).
const UNSEEN: i64 = i64::MIN;

/// Reference-clock timestamps live in `i64::MIN + 1 ..= i64::MAX`, so no
/// reading can be mistaken for [`UNSEEN`].
fn clamp_ts(t: i64) -> i64 {
    t.max(i64::MIN + 1)
}

/// One pending update.
struct Entry<W> {
    id: UpdateId,
    ts: i64,
    /// Index atoms `(pos, rank)`, sorted; `None` for a keyless witness.
    atoms: Option<Box<[(u64, u64)]>>,
    witness: W,
    /// First-seen time per node slot; `UNSEEN`, or missing past the end.
    seen: Vec<i64>,
    /// Required live members that have not seen it (never 0 while pending).
    missing: u32,
}

impl<W> Entry<W> {
    fn seen_at(&self, slot: usize) -> i64 {
        self.seen.get(slot).copied().unwrap_or(UNSEEN)
    }
}

struct Node {
    id: NodeId,
    live: bool,
    /// Last join time; `i64::MIN` for initial members, `None` if never a member.
    joined_at: Option<i64>,
    /// Time of its last observation, and the last serial registered then.
    last_obs: Option<i64>,
    last_obs_serial: u64,
    /// `(ts, serial)` of pending updates it is required to see and has not.
    unseen: BTreeSet<(i64, u64)>,
    latency: Latency,
    /// Largest clock uncertainty applied to its readings, and whether any
    /// reading was taken without an estimate.
    max_uncertainty: Option<u64>,
    unsynced: bool,
}

impl Node {
    /// Whether it joined at or before `ts` (or was never a member).
    fn joined_by(&self, ts: i64) -> bool {
        self.joined_at.is_none_or(|j| j <= ts)
    }

    fn required_for(&self, ts: i64) -> bool {
        self.live && self.joined_by(ts)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    updates: u64,
    converged: u64,
    unconverged: u64,
    unconverged_capacity: u64,
    orphaned: u64,
    duplicates: u64,
    witness_checks: u64,
    negative_clamped: u64,
}

/// `updated_with`'s question: does this node's last observed state hold `w`?
type SeenFn<'a, W> = dyn FnMut(NodeId, &W) -> bool + 'a;

enum Finish {
    /// No required member is missing.
    Complete,
    Expired(Expiry),
}

/// Convergence tracking for one variable (see the module docs).
pub struct Tracker<W> {
    config: Config,
    clock: ClockSync,
    nodes: Vec<Node>,
    slots: HashMap<NodeId, usize>,
    members_set: bool,
    seqs: HashMap<NodeId, SeqWindow>,
    /// Serials number registrations from 1, in order.
    next_serial: u64,
    pending: BTreeMap<u64, Entry<W>>,
    ids: HashMap<UpdateId, u64>,
    by_ts: BTreeSet<(i64, u64)>,
    /// Per position, `(rank, serial)` of the witnesses with an atom there.
    by_key: HashMap<u64, BTreeSet<(u64, u64)>>,
    keyless: BTreeSet<u64>,
    /// Registered by plain `updated`: never checked against any node's state.
    unchecked: BTreeSet<u64>,
    convergence: Latency,
    counters: Counters,
    records: VecDeque<Record>,
    samples: VecDeque<DivergenceSample>,
    now: Option<i64>,
    next_sample: Option<i64>,
}

impl<W: Witness> Tracker<W> {
    /// An empty tracker with no members.
    pub fn new(config: Config) -> Self {
        let config = Config {
            horizon_us: config.horizon_us.max(0),
            max_pending: config.max_pending.max(1),
            sample_every_us: config.sample_every_us.max(0),
            max_latency_us: config.max_latency_us.max(2),
            seq_window: config.seq_window.max(1),
            clock_window: config.clock_window.max(1),
            max_nodes: config.max_nodes.max(1),
            ..config
        };
        Tracker {
            clock: ClockSync::new(config.clock_window),
            convergence: Latency::new(config.max_latency_us),
            config,
            nodes: Vec::new(),
            slots: HashMap::new(),
            members_set: false,
            seqs: HashMap::new(),
            next_serial: 1,
            pending: BTreeMap::new(),
            ids: HashMap::new(),
            by_ts: BTreeSet::new(),
            by_key: HashMap::new(),
            keyless: BTreeSet::new(),
            unchecked: BTreeSet::new(),
            counters: Counters::default(),
            records: VecDeque::new(),
            samples: VecDeque::new(),
            now: None,
            next_sample: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clock estimates.
    pub fn clock(&self) -> &ClockSync {
        &self.clock
    }

    /// The clock estimates, to mark exact nodes or set estimates.
    pub fn clock_mut(&mut self) -> &mut ClockSync {
        &mut self.clock
    }

    /// Feeds a round trip with `node` to the clock estimates (see [`ClockSync::sample`]).
    pub fn clock_sample(
        &mut self,
        node: NodeId,
        t0: i64,
        t1: i64,
        t2: i64,
    ) -> Result<Estimate, ClockError> {
        self.clock.sample(node, t0, t1, t2)
    }

    /// The tracker's clock: the largest reference-clock time seen, if any.
    pub fn now(&self) -> Option<i64> {
        self.now
    }

    /// Whether events of `node` can be taken: it is held already, or there
    /// is room for one more node (`max_nodes`).
    pub fn admits(&self, node: NodeId) -> bool {
        self.slots.contains_key(&node) || self.nodes.len() < self.config.max_nodes
    }

    /// Whether [`set_members`](Self::set_members) with `members` fits in
    /// `max_nodes` (it ignores the members past it).
    pub fn admits_all(&self, members: &[NodeId]) -> bool {
        let new: HashSet<NodeId> = members
            .iter()
            .copied()
            .filter(|n| !self.slots.contains_key(n))
            .collect();
        self.nodes.len() + new.len() <= self.config.max_nodes
    }

    /// The live members, by node.
    pub fn members(&self) -> Vec<NodeId> {
        let mut v: Vec<_> = self.nodes.iter().filter(|n| n.live).map(|n| n.id).collect();
        v.sort();
        v
    }

    /// Advances the tracker's clock to `now_us` (reference clock): expires
    /// updates past the horizon and takes due divergence samples. Call it
    /// about once per sample period when no events arrive.
    pub fn tick(&mut self, now_us: i64) {
        self.advance(clamp_ts(now_us));
    }

    /// Sets the live members from `ts_us` (reference clock) on. Nodes not
    /// listed stop being required; nodes newly listed join at `ts_us` (the
    /// first call's members count as present from the start).
    pub fn set_members(&mut self, ts_us: i64, members: &[NodeId]) {
        let ts_us = clamp_ts(ts_us);
        self.advance(ts_us);
        let initial = !self.members_set;
        self.members_set = true;
        let wanted: HashSet<NodeId> = members.iter().copied().collect();
        let mut done = Vec::new();
        for slot in 0..self.nodes.len() {
            if self.nodes[slot].live && !wanted.contains(&self.nodes[slot].id) {
                self.leave(slot, &mut done);
            }
        }
        for s in done {
            self.finish(s, Finish::Complete);
        }
        for &id in members {
            let Some(slot) = self.slot(id) else {
                continue;
            };
            if self.nodes[slot].live {
                continue;
            }
            let joined = if initial { i64::MIN } else { ts_us };
            let node = &mut self.nodes[slot];
            node.live = true;
            node.joined_at = Some(joined);
            for &(ts, s) in self.by_ts.range((joined, 0)..) {
                if let Some(e) = self.pending.get_mut(&s) {
                    if e.seen_at(slot) == UNSEEN && node.unseen.insert((ts, s)) {
                        e.missing += 1;
                    }
                }
            }
        }
    }

    fn leave(&mut self, slot: usize, done: &mut Vec<u64>) {
        let node = &mut self.nodes[slot];
        node.live = false;
        for (_, s) in std::mem::take(&mut node.unseen) {
            if let Some(e) = self.pending.get_mut(&s) {
                e.missing = e.missing.saturating_sub(1);
                if e.missing == 0 {
                    done.push(s);
                }
            }
        }
    }

    /// Registers update `(origin, seq)` made at `ts_us` (origin's clock),
    /// described by `witness`. Nobody but the origin is assumed to hold it
    /// yet; with [`Filter::Changed`] such an update is checked on each node's
    /// next observation whatever keys changed. Prefer
    /// [`updated_with`](Self::updated_with) when the caller keeps states.
    pub fn updated(&mut self, origin: NodeId, seq: u64, ts_us: i64, witness: W) -> Registered {
        self.register(origin, seq, ts_us, witness, None)
    }

    /// Like [`updated`](Self::updated), but first asks `seen(node, &witness)`
    /// for every node other than the origin that has observed before,
    /// whether its last observed state already holds the update (an
    /// observation that arrived before the announcement). A `true` marks the
    /// node as having seen it at that last observation.
    pub fn updated_with<F>(
        &mut self,
        origin: NodeId,
        seq: u64,
        ts_us: i64,
        witness: W,
        mut seen: F,
    ) -> Registered
    where
        F: FnMut(NodeId, &W) -> bool,
    {
        self.register(origin, seq, ts_us, witness, Some(&mut seen))
    }

    fn register(
        &mut self,
        origin: NodeId,
        seq: u64,
        ts_us: i64,
        witness: W,
        seen: Option<&mut SeenFn<'_, W>>,
    ) -> Registered {
        let id = UpdateId { origin, seq };
        let window = self.config.seq_window;
        if self.ids.contains_key(&id) || !self.seqs.entry(origin).or_default().insert(seq, window) {
            self.counters.duplicates += 1;
            return Registered::Duplicate;
        }
        let Some(origin_slot) = self.slot(origin) else {
            return Registered::TooManyNodes;
        };
        let ts = self.correct(origin_slot, ts_us);
        self.advance(ts);
        let serial = self.next_serial;
        self.next_serial += 1;
        self.counters.updates += 1;

        let atoms = witness.atoms().filter(|a| !a.is_empty()).map(|mut a| {
            a.sort_unstable();
            a.dedup();
            a.into_boxed_slice()
        });
        let mut entry = Entry {
            id,
            ts,
            atoms,
            witness,
            seen: vec![UNSEEN; self.nodes.len()],
            missing: 0,
        };
        entry.seen[origin_slot] = ts;
        match seen {
            Some(seen) => {
                for (slot, node) in self.nodes.iter().enumerate() {
                    if slot == origin_slot {
                        continue;
                    }
                    if let Some(last) = node.last_obs {
                        self.counters.witness_checks += 1;
                        if seen(node.id, &entry.witness) {
                            entry.seen[slot] = last;
                        }
                    }
                }
            }
            None => {
                self.unchecked.insert(serial);
            }
        }
        for (slot, node) in self.nodes.iter_mut().enumerate() {
            if node.required_for(ts) && entry.seen[slot] == UNSEEN {
                node.unseen.insert((ts, serial));
                entry.missing += 1;
            }
        }
        let complete = entry.missing == 0;
        self.ids.insert(id, serial);
        self.by_ts.insert((ts, serial));
        match &entry.atoms {
            Some(atoms) => {
                for &(pos, rank) in atoms.iter() {
                    self.by_key.entry(pos).or_default().insert((rank, serial));
                }
            }
            None => {
                self.keyless.insert(serial);
            }
        }
        self.pending.insert(serial, entry);

        if complete {
            self.finish(serial, Finish::Complete);
        } else {
            while self.pending.len() > self.config.max_pending {
                match self.by_ts.first() {
                    Some(&(_, oldest)) => self.finish(oldest, Finish::Expired(Expiry::Capacity)),
                    None => break,
                }
            }
            if let Some(now) = self.now {
                self.expire(now);
            }
        }
        Registered::New {
            finished: !self.pending.contains_key(&serial),
        }
    }

    /// Node `node` held a state at `ts_us` (its own clock); `check(&w)` says
    /// whether that state holds witness `w`. Marks every candidate (per
    /// `filter`) the state holds as seen by `node` at `ts_us`, the first time
    /// only (or earlier, for a reordered observation), and finishes the
    /// updates that converge.
    pub fn observed<F>(
        &mut self,
        node: NodeId,
        ts_us: i64,
        filter: Filter<'_>,
        mut check: F,
    ) -> Observed
    where
        F: FnMut(&W) -> bool,
    {
        let Some(slot) = self.slot(node) else {
            return Observed {
                refused: true,
                ..Observed::default()
            };
        };
        let ts = self.correct(slot, ts_us);
        self.advance(ts);

        let mut out = Observed::default();
        let mut hits = Vec::new();
        let mut consider = |s: u64, e: &Entry<W>| {
            let prev = e.seen_at(slot);
            // Seen at or before `ts` already: nothing this observation can add.
            if prev != UNSEEN && prev <= ts {
                return;
            }
            out.checked += 1;
            if check(&e.witness) {
                hits.push(s);
            }
        };
        let mut candidates: Vec<u64> = match filter {
            Filter::All => {
                for (&s, e) in &self.pending {
                    consider(s, e);
                }
                Vec::new()
            }
            Filter::MayContain(may) => {
                let mut c: Vec<u64> = self.keyless.iter().copied().collect();
                for (k, serials) in &self.by_key {
                    if may(*k) {
                        c.extend(serials.iter().map(|&(_, s)| s));
                    }
                }
                c
            }
            Filter::Changed(keys) => {
                let mut c: Vec<u64> = self.keyless.iter().copied().collect();
                let since = self.nodes[slot].last_obs_serial.saturating_add(1);
                c.extend(self.unchecked.range(since..).copied());
                for k in keys {
                    if let Some(serials) = self.by_key.get(k) {
                        c.extend(serials.iter().map(|&(_, s)| s));
                    }
                }
                c
            }
            Filter::Ranges(ranges) => {
                let mut c: Vec<u64> = self.keyless.iter().copied().collect();
                let since = self.nodes[slot].last_obs_serial.saturating_add(1);
                c.extend(self.unchecked.range(since..).copied());
                for &(pos, lo, hi) in ranges {
                    if lo > hi {
                        continue;
                    }
                    if let Some(serials) = self.by_key.get(&pos) {
                        c.extend(serials.range((lo, 0)..=(hi, u64::MAX)).map(|&(_, s)| s));
                    }
                }
                c
            }
        };
        // Check in registration order, each once.
        candidates.sort_unstable();
        candidates.dedup();
        for s in candidates {
            if let Some(e) = self.pending.get(&s) {
                consider(s, e);
            }
        }
        self.counters.witness_checks += out.checked as u64;

        let n = &mut self.nodes[slot];
        n.last_obs = Some(n.last_obs.map_or(ts, |l| l.max(ts)));
        n.last_obs_serial = self.next_serial - 1;

        for s in hits {
            let Some(e) = self.pending.get_mut(&s) else {
                continue;
            };
            if e.seen.len() <= slot {
                e.seen.resize(slot + 1, UNSEEN);
            }
            let prev = e.seen[slot];
            if prev == UNSEEN {
                out.newly_seen += 1;
                e.seen[slot] = ts;
                if self.nodes[slot].unseen.remove(&(e.ts, s)) {
                    e.missing -= 1;
                    if e.missing == 0 {
                        out.converged += 1;
                        self.finish(s, Finish::Complete);
                    }
                }
            } else if ts < prev {
                e.seen[slot] = ts;
            }
        }
        out
    }

    /// Counters, convergence-time percentiles and per-node latency.
    pub fn stats(&self) -> Stats {
        let c = self.convergence.summary();
        let mut uncertainties: Vec<u64> = Vec::new();
        let mut unsynced = Vec::new();
        let mut saturated = c.saturated;
        let mut per_node: Vec<NodeStats> = self
            .nodes
            .iter()
            .map(|n| {
                if n.unsynced {
                    unsynced.push(n.id);
                }
                if let Some(u) = n.max_uncertainty {
                    uncertainties.push(u);
                }
                let s = n.latency.summary();
                saturated += s.saturated;
                NodeStats {
                    node: n.id,
                    live: n.live,
                    latency: s,
                    pending: n.unseen.len() as u64,
                    clock_uncertainty_us: n.max_uncertainty.filter(|_| !n.unsynced),
                }
            })
            .collect();
        per_node.sort_by_key(|n| n.node);
        unsynced.sort();
        uncertainties.sort_unstable_by(|a, b| b.cmp(a));
        let clock_uncertainty_us = uncertainties.iter().take(2).sum();
        Stats {
            updates: self.counters.updates,
            converged: self.counters.converged,
            pending: self.pending.len() as u64,
            unconverged: self.counters.unconverged,
            unconverged_capacity: self.counters.unconverged_capacity,
            orphaned: self.counters.orphaned,
            duplicates: self.counters.duplicates,
            latency: Summary { saturated, ..c },
            clock_uncertainty_us,
            unsynced_nodes: unsynced,
            negative_clamped: self.counters.negative_clamped,
            witness_checks: self.counters.witness_checks,
            per_node,
        }
    }

    /// The convergence-time histogram (first, `node: None`) and each node's
    /// visibility-latency histogram, by node, as cumulative counts at
    /// `bounds_us` (ascending upper bounds, microseconds). Linear in the
    /// distinct values recorded.
    pub fn buckets(&self, bounds_us: &[u64]) -> Vec<Buckets> {
        let one = |node, h: &Latency| {
            let (count, sum_us) = h.count_sum();
            Buckets {
                node,
                cumulative: h.cumulative(bounds_us),
                count,
                sum_us,
            }
        };
        let mut out = vec![one(None, &self.convergence)];
        let mut nodes: Vec<&Node> = self.nodes.iter().collect();
        nodes.sort_by_key(|n| n.id);
        out.extend(nodes.into_iter().map(|n| one(Some(n.id), &n.latency)));
        out
    }

    /// Updates finished since the last reset (converged, unconverged or
    /// orphaned): the newest `min(finished, record_window)` of them are the
    /// records kept, so a reader that remembers this number knows which
    /// records are new.
    pub fn finished(&self) -> u64 {
        self.counters.converged + self.counters.unconverged + self.counters.orphaned
    }

    /// The divergence samples kept, oldest first.
    pub fn divergence(&self) -> &VecDeque<DivergenceSample> {
        &self.samples
    }

    /// The divergence samples taken at or after `t_us`, oldest first (for
    /// polling without copying the whole ring).
    pub fn divergence_since(&self, t_us: i64) -> impl Iterator<Item = &DivergenceSample> {
        let start = self.samples.partition_point(|s| s.t_us < t_us);
        self.samples.range(start..)
    }

    /// Raw records of the most recent finished updates, oldest first.
    pub fn records(&self) -> &VecDeque<Record> {
        &self.records
    }

    /// Sizes of everything held (see [`Retained`]).
    pub fn retained(&self) -> Retained {
        let keyed: usize = self.by_key.values().map(BTreeSet::len).sum();
        let unseen: usize = self.nodes.iter().map(|n| n.unseen.len()).sum();
        Retained {
            pending: self.pending.len(),
            index_entries: self.ids.len()
                + self.by_ts.len()
                + keyed
                + self.keyless.len()
                + self.unchecked.len()
                + unseen,
            records: self.records.len(),
            samples: self.samples.len(),
            seq_entries: self.seqs.values().map(SeqWindow::len).sum(),
            clock_samples: self.clock.retained_samples(),
            nodes: self.nodes.len(),
        }
    }

    /// Starts a new measurement: drops pending updates, records, samples,
    /// histograms, counters, duplicate detection and the tracker's clock.
    /// Keeps the configuration, the members (with their join times), the
    /// clock estimates and each member's last-observation time; nodes that
    /// are not members are forgotten, which frees their slots (`max_nodes`).
    pub fn reset(&mut self) {
        self.seqs.clear();
        self.pending.clear();
        self.ids.clear();
        self.by_ts.clear();
        self.by_key.clear();
        self.keyless.clear();
        self.unchecked.clear();
        self.convergence = Latency::new(self.config.max_latency_us);
        self.counters = Counters::default();
        self.records.clear();
        self.samples.clear();
        self.now = None;
        self.next_sample = None;
        let cap = self.config.max_latency_us;
        // Nodes that are not members are forgotten (their slots freed):
        // nothing pending refers to a slot any more.
        self.nodes.retain(|n| n.live);
        self.slots = self
            .nodes
            .iter()
            .enumerate()
            .map(|(s, n)| (n.id, s))
            .collect();
        for n in &mut self.nodes {
            n.unseen.clear();
            n.latency = Latency::new(cap);
            n.max_uncertainty = None;
            n.unsynced = false;
            n.last_obs_serial = 0;
        }
    }

    /// Everything reported, as one value.
    pub fn report(&self) -> Report {
        Report {
            config: self.config.clone(),
            stats: self.stats(),
            clocks: self
                .clock
                .estimates()
                .into_iter()
                .map(|(node, estimate)| NodeClock { node, estimate })
                .collect(),
            records: self.records.iter().cloned().collect(),
            divergence: self.samples.iter().cloned().collect(),
        }
    }

    /// [`report`](Self::report) as JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&self.report())
    }

    // ---- internals ----

    fn slot(&mut self, id: NodeId) -> Option<usize> {
        if let Some(&s) = self.slots.get(&id) {
            return Some(s);
        }
        if self.nodes.len() >= self.config.max_nodes {
            return None;
        }
        let s = self.nodes.len();
        self.nodes.push(Node {
            id,
            live: false,
            joined_at: None,
            last_obs: None,
            last_obs_serial: 0,
            unseen: BTreeSet::new(),
            latency: Latency::new(self.config.max_latency_us),
            max_uncertainty: None,
            unsynced: false,
        });
        self.slots.insert(id, s);
        Some(s)
    }

    /// Maps a reading of the node in `slot` onto the reference clock,
    /// remembering the uncertainty applied.
    fn correct(&mut self, slot: usize, ts_us: i64) -> i64 {
        let node = &mut self.nodes[slot];
        let c = self.clock.to_reference(node.id, ts_us);
        match c.uncertainty_us {
            Some(u) => node.max_uncertainty = Some(node.max_uncertainty.map_or(u, |m| m.max(u))),
            None => node.unsynced = true,
        }
        clamp_ts(c.ts_us)
    }

    /// Moves the tracker's clock forward to `t`, taking the divergence
    /// samples due on the way and expiring updates past the horizon.
    fn advance(&mut self, t: i64) {
        if self.now.is_some_and(|now| t <= now) {
            return;
        }
        let every = self.config.sample_every_us;
        if every > 0 && self.config.max_samples > 0 {
            let mut b = match self.next_sample {
                Some(b) => b,
                None => t.div_euclid(every).saturating_add(1).saturating_mul(every),
            };
            if b <= t {
                // Samples that the ring would evict at once are not taken.
                // In i128: the span of two i64 readings can exceed i64.
                // At most CATCHUP_SAMPLES per move, so that one far jump
                // (a timestamp in the wrong unit) costs bounded work.
                let keep = self.config.max_samples.min(CATCHUP_SAMPLES);
                let (every_w, keep) = (i128::from(every), keep as i128);
                let due = (i128::from(t) - i128::from(b)) / every_w + 1;
                if due > keep {
                    let skipped = i128::from(b) + (due - keep) * every_w;
                    b = i64::try_from(skipped).unwrap_or(i64::MAX);
                }
                while b <= t {
                    self.expire(b);
                    self.sample(b);
                    // At the very end of the i64 range, stop sampling.
                    b = b.checked_add(every).unwrap_or(i64::MAX);
                    if b == i64::MAX {
                        break;
                    }
                }
            }
            self.next_sample = Some(b);
        }
        self.expire(t);
        self.now = Some(t);
    }

    fn expire(&mut self, t: i64) {
        let horizon = self.config.horizon_us;
        while let Some(&(ts, s)) = self.by_ts.first() {
            if t.saturating_sub(ts) <= horizon {
                break;
            }
            self.finish(s, Finish::Expired(Expiry::Horizon));
        }
    }

    fn sample(&mut self, t: i64) {
        let mut nodes: Vec<NodeLag> = self
            .nodes
            .iter()
            .filter(|n| n.live)
            .map(|n| NodeLag {
                node: n.id,
                unseen: u32::try_from(n.unseen.len()).unwrap_or(u32::MAX),
                oldest_unseen_age_us: n
                    .unseen
                    .first()
                    .map(|&(ts, _)| t.saturating_sub(ts).max(0) as u64),
            })
            .collect();
        nodes.sort_by_key(|l| l.node);
        let up = nodes.iter().filter(|l| l.unseen == 0).count();
        let up_to_date = if nodes.is_empty() {
            1.0
        } else {
            up as f64 / nodes.len() as f64
        };
        self.samples.push_back(DivergenceSample {
            t_us: t,
            up_to_date,
            nodes,
        });
        while self.samples.len() > self.config.max_samples {
            self.samples.pop_front();
        }
    }

    fn clamp_latency(&mut self, d: i64) -> u64 {
        if d < 0 {
            self.counters.negative_clamped += 1;
            0
        } else {
            d as u64
        }
    }

    /// Takes pending update `s` out of every index, records its figures and
    /// its raw record.
    fn finish(&mut self, s: u64, how: Finish) {
        let Some(e) = self.pending.remove(&s) else {
            return;
        };
        self.ids.remove(&e.id);
        self.by_ts.remove(&(e.ts, s));
        match &e.atoms {
            Some(atoms) => {
                for &(pos, rank) in atoms.iter() {
                    if let Some(set) = self.by_key.get_mut(&pos) {
                        set.remove(&(rank, s));
                        if set.is_empty() {
                            self.by_key.remove(&pos);
                        }
                    }
                }
            }
            None => {
                self.keyless.remove(&s);
            }
        }
        self.unchecked.remove(&s);

        let origin_slot = self.slots.get(&e.id.origin).copied();
        let mut latest_required: Option<i64> = None;
        let mut missing = Vec::new();
        let mut seen = Vec::new();
        let mut latencies = Vec::new();
        for (slot, node) in self.nodes.iter_mut().enumerate() {
            let at = e.seen_at(slot);
            if node.live {
                node.unseen.remove(&(e.ts, s));
            }
            if node.required_for(e.ts) {
                if at == UNSEEN {
                    missing.push(node.id);
                } else {
                    latest_required = Some(latest_required.map_or(at, |l| l.max(at)));
                }
            }
            if at != UNSEEN {
                seen.push(Seen {
                    node: node.id,
                    ts_us: at,
                });
                if Some(slot) != origin_slot && node.joined_by(e.ts) {
                    latencies.push((slot, at.saturating_sub(e.ts)));
                }
            }
        }
        for (slot, d) in latencies {
            let v = self.clamp_latency(d);
            self.nodes[slot].latency.record(v);
        }
        seen.sort_by_key(|x| x.node);
        missing.sort();

        let outcome = match how {
            Finish::Expired(reason) if !missing.is_empty() => {
                self.counters.unconverged += 1;
                if reason == Expiry::Capacity {
                    self.counters.unconverged_capacity += 1;
                }
                Outcome::Unconverged { reason, missing }
            }
            _ => match latest_required {
                Some(latest) => {
                    let v = self.clamp_latency(latest.saturating_sub(e.ts));
                    self.convergence.record(v);
                    self.counters.converged += 1;
                    Outcome::Converged { convergence_us: v }
                }
                None => {
                    self.counters.orphaned += 1;
                    Outcome::Orphaned
                }
            },
        };
        if self.config.record_window > 0 {
            self.records.push_back(Record {
                id: e.id,
                ts_us: e.ts,
                seen,
                outcome,
            });
            while self.records.len() > self.config.record_window {
                self.records.pop_front();
            }
        }
    }
}

impl<W: Witness> Default for Tracker<W> {
    fn default() -> Self {
        Tracker::new(Config::default())
    }
}

impl<W> std::fmt::Debug for Tracker<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("pending", &self.pending.len())
            .field("nodes", &self.nodes.len())
            .field("now", &self.now)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    struct K(u64);
    impl Witness for K {
        fn key(&self) -> Option<u64> {
            (!self.0.is_multiple_of(4)).then_some(self.0)
        }
    }

    impl<W> Tracker<W> {
        /// The indexes agree with each other and with membership.
        fn check_invariants(&self) {
            assert_eq!(self.ids.len(), self.pending.len());
            assert_eq!(self.by_ts.len(), self.pending.len());
            let keyed: usize = self.by_key.values().map(BTreeSet::len).sum();
            let atoms: usize = self
                .pending
                .values()
                .map(|e| e.atoms.as_ref().map_or(0, |a| a.len()))
                .sum();
            assert_eq!(keyed, atoms);
            let keyless = self.pending.values().filter(|e| e.atoms.is_none()).count();
            assert_eq!(keyless, self.keyless.len());
            for (&s, e) in &self.pending {
                assert_eq!(self.ids[&e.id], s);
                assert!(self.by_ts.contains(&(e.ts, s)));
                match &e.atoms {
                    Some(atoms) => {
                        for &(pos, rank) in atoms.iter() {
                            assert!(self.by_key[&pos].contains(&(rank, s)));
                        }
                    }
                    None => assert!(self.keyless.contains(&s)),
                }
                let mut missing = 0;
                for (slot, n) in self.nodes.iter().enumerate() {
                    let owes = n.required_for(e.ts) && e.seen_at(slot) == UNSEEN;
                    assert_eq!(n.unseen.contains(&(e.ts, s)), owes);
                    missing += u32::from(owes);
                }
                assert_eq!(e.missing, missing);
                assert!(missing > 0, "a pending update owes someone");
            }
            for n in &self.nodes {
                assert!(n.live || n.unseen.is_empty());
                for (_, s) in &n.unseen {
                    assert!(self.pending.contains_key(s));
                }
            }
            let c = self.counters;
            assert_eq!(
                c.updates,
                c.converged + c.unconverged + c.orphaned + self.pending.len() as u64
            );
            assert!(self.pending.len() <= self.config.max_pending);
            assert!(self.records.len() <= self.config.record_window);
            assert!(self.samples.len() <= self.config.max_samples);
        }
    }

    proptest! {
        #[test]
        fn prop_indexes_stay_consistent(
            ops in proptest::collection::vec((0u8..6, 0u64..24, 0u32..5, -2_000i64..60_000), 1..200),
        ) {
            let cfg = Config {
                horizon_us: 150_000,
                max_pending: 16,
                record_window: 8,
                sample_every_us: 5_000,
                max_samples: 10,
                ..Config::default()
            };
            let mut t: Tracker<K> = Tracker::new(cfg);
            let mut now = 0i64;
            for (op, x, n, dt) in ops {
                now += dt;
                let node = NodeId(n);
                match op {
                    0 => { t.updated(node, x, now, K(x)); }
                    1 => { t.updated_with(node, x, now, K(x), |m, w| (u64::from(m.0) + w.0).is_multiple_of(3)); }
                    2 => { t.observed(node, now, Filter::All, |w| w.0 < x); }
                    3 => {
                        let keys: Vec<u64> = (0..x).collect();
                        t.observed(node, now, Filter::Changed(&keys), |w| w.0 < x);
                    }
                    4 => {
                        let members: Vec<NodeId> =
                            (0..5).filter(|b| (x >> b) & 1 == 1).map(NodeId).collect();
                        t.set_members(now, &members);
                    }
                    _ => {
                        if x == 0 { t.reset() } else { t.tick(now) }
                    }
                }
                t.check_invariants();
            }
        }
    }

    #[test]
    fn buckets_agree_with_stats_and_finished_counts_records() {
        let (a, b, c) = (NodeId(0), NodeId(1), NodeId(2));
        let mut t: Tracker<K> = Tracker::new(Config {
            record_window: 2,
            ..Config::default()
        });
        for n in [a, b, c] {
            t.clock_mut().set_exact(n);
        }
        t.set_members(0, &[a, b, c]);
        // Update 1 converges in 3 ms (b at 1 ms, c at 3 ms), update 2 in 20 ms.
        t.updated(a, 1, 1_000, K(1));
        t.observed(a, 1_000, Filter::All, |w| w.0 == 1);
        t.observed(b, 2_000, Filter::All, |w| w.0 == 1);
        t.observed(c, 4_000, Filter::All, |w| w.0 == 1);
        t.updated(a, 2, 10_000, K(2));
        t.observed(a, 10_000, Filter::All, |_| true);
        t.observed(b, 30_000, Filter::All, |_| true);
        assert_eq!(t.finished(), 1);
        t.observed(c, 30_000, Filter::All, |_| true);
        assert_eq!(t.finished(), 2);
        let bs = t.buckets(&[1_000, 5_000, 50_000]);
        assert_eq!(bs.len(), 4);
        assert_eq!(bs[0].node, None);
        assert_eq!(bs[0].cumulative, vec![0, 1, 2]);
        assert_eq!((bs[0].count, bs[0].sum_us), (2, 23_000));
        assert_eq!(bs[0].count, t.stats().converged);
        // The origin records no latency; b saw them after 1 and 20 ms.
        assert_eq!((bs[1].node, bs[1].count), (Some(a), 0));
        assert_eq!(bs[2].node, Some(b));
        assert_eq!(bs[2].cumulative, vec![1, 1, 2]);
        assert_eq!(bs[2].sum_us, 21_000);
        assert_eq!(bs[3].cumulative, vec![0, 1, 2]);
        t.reset();
        assert_eq!(t.finished(), 0);
        assert_eq!(t.buckets(&[1]).first().map(|b| b.count), Some(0));
    }

    #[test]
    fn node_slots_are_bounded_and_freed_by_reset() {
        let cfg = Config {
            max_nodes: 3,
            ..Config::default()
        };
        let mut t: Tracker<K> = Tracker::new(cfg);
        t.set_members(0, &[NodeId(1)]);
        for n in 2..=3 {
            assert!(!t.observed(NodeId(n), 10, Filter::All, |_| true).refused);
        }
        assert!(!t.admits(NodeId(4)));
        assert!(t.observed(NodeId(4), 10, Filter::All, |_| true).refused);
        assert_eq!(t.updated(NodeId(5), 1, 10, K(1)), Registered::TooManyNodes);
        assert!(!t.admits_all(&[NodeId(1), NodeId(9)]));
        assert_eq!(t.retained().nodes, 3);
        // Reset forgets the nodes that are not members.
        t.reset();
        assert_eq!(t.retained().nodes, 1);
        assert_eq!(t.members(), vec![NodeId(1)]);
        assert!(!t.observed(NodeId(4), 20, Filter::All, |_| true).refused);
        t.check_invariants();
    }

    #[test]
    fn a_far_jump_takes_a_bounded_number_of_samples() {
        let cfg = Config {
            sample_every_us: 10,
            max_samples: 1_000_000,
            ..Config::default()
        };
        let mut t: Tracker<K> = Tracker::new(cfg);
        t.tick(0);
        // A nanosecond reading where microseconds were meant.
        t.tick(1_700_000_000_000_000_000);
        assert!(t.divergence().len() <= CATCHUP_SAMPLES + 1);
    }

    #[test]
    fn ranges_select_witnesses_by_rank() {
        struct R(u64);
        impl Witness for R {
            fn atoms(&self) -> Option<Vec<(u64, u64)>> {
                Some(vec![(7, self.0)])
            }
        }
        let (a, b) = (NodeId(1), NodeId(2));
        let mut t: Tracker<R> = Tracker::default();
        t.set_members(0, &[a, b]);
        for r in 1..=10 {
            t.updated_with(a, r, 100, R(r), |_, _| false);
        }
        // First observation: everything is checked.
        let o = t.observed(b, 200, Filter::All, |w| w.0 <= 2);
        assert_eq!((o.checked, o.converged), (10, 2));
        let o = t.observed(b, 300, Filter::Ranges(&[(7, 3, 5)]), |w| w.0 <= 5);
        assert_eq!((o.checked, o.converged), (3, 3));
        let o = t.observed(b, 300, Filter::Ranges(&[(8, 0, 99)]), |_| true);
        assert_eq!(o.checked, 0);
        t.check_invariants();
    }

    #[test]
    fn clock_skew_is_applied_to_each_reading() {
        let mut t: Tracker<K> = Tracker::default();
        let (a, b) = (NodeId(1), NodeId(2));
        t.clock_mut().set_exact(a);
        t.clock_mut().set_estimate(b, 250_000, 40);
        t.set_members(0, &[a, b]);
        t.updated(a, 1, 1_000, K(1));
        // B's reading 251 500 is 1 500 on the reference clock.
        t.observed(b, 251_500, Filter::All, |_| true);
        let s = t.stats();
        assert_eq!((s.latency.max_us, s.clock_uncertainty_us), (Some(500), 40));
        assert_eq!(t.now(), Some(1_500));
    }

    #[test]
    fn sample_boundaries_align_to_the_period() {
        let cfg = Config {
            sample_every_us: 100,
            ..Config::default()
        };
        let mut t: Tracker<K> = Tracker::new(cfg);
        t.tick(-250);
        t.tick(120);
        let times: Vec<i64> = t.divergence().iter().map(|s| s.t_us).collect();
        assert_eq!(times, vec![-200, -100, 0, 100]);
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        let cfg = Config {
            horizon_us: i64::MAX,
            ..Config::default()
        };
        let mut t: Tracker<K> = Tracker::new(cfg);
        t.set_members(i64::MIN, &[NodeId(1), NodeId(2)]);
        t.updated(NodeId(1), 1, i64::MIN, K(1));
        t.observed(NodeId(2), i64::MAX, Filter::All, |_| true);
        t.tick(i64::MAX);
        t.check_invariants();
        assert!(t.divergence().len() <= t.config().max_samples);
        let s = t.stats();
        assert_eq!((s.converged, s.latency.saturated), (1, 2));
        assert_eq!(s.latency.max_us, Some(t.config().max_latency_us));
    }
}
