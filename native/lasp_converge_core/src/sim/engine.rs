//! The event loop behind [`super::run`].
//!
//! Data layout, for 10,000 nodes x 10,000 updates on one core:
//! - one flat bitset, `words_per_node` u64 words per node, bit `k` of node
//!   `n` set once `n` has seen update `k`; a merge is a word-wise OR over the
//!   words that can differ, and the new bits are walked with
//!   `trailing_zeros`;
//! - per node a watermark `wm` below which every update is seen, so a
//!   message copies and a merge reads only the words above the watermarks
//!   (the updates still in flight), not the whole history;
//! - a binary heap of events ordered by (time, insertion number), so equal
//!   times resolve the same way every run; updates come from a presorted
//!   list beside the heap;
//! - message payloads in a slab whose vectors are reused.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::latency::Latency;

use super::rng::Pcg32;
use super::{
    Detail, Fanout, Field, LatencyDist, Mode, SimError, SimLag, SimNodeStats, SimReport, SimSample,
    SimStats, Spec, Updates, MAX_EMPIRICAL, MAX_MESSAGES, MAX_NODES, MAX_NODE_UPDATES,
    MAX_PARTITIONS, MAX_SAMPLES, MAX_SAMPLE_ENTRIES, MAX_TIME_US, MAX_UPDATES,
};

const PENDING: u8 = 0;
const CONVERGED: u8 = 1;
const UNCONVERGED: u8 = 2;
const ALONE: u32 = u32::MAX;

/// What a validated spec expands to before the run.
pub(super) struct Plan {
    /// `(time, node)` of every update, by time.
    updates: Vec<(u64, u32)>,
    /// Per partition: start, end, group of each node (`ALONE` for none).
    partitions: Vec<(u64, u64, Vec<u32>)>,
    /// Time after which nothing can change.
    bound: u64,
    sample_every: u64,
    detail: Detail,
}

fn bad(f: Field) -> SimError {
    SimError::Bad(f)
}

fn check(ok: bool, f: Field) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(bad(f))
    }
}

/// A distribution of times in microseconds (latency, service, round cost).
fn check_dist(d: &LatencyDist, f: Field) -> Result<(), SimError> {
    let fin = |x: f64| x.is_finite();
    match d {
        LatencyDist::Constant(c) => check(*c <= MAX_TIME_US, f),
        LatencyDist::Uniform(lo, hi) => check(lo <= hi && *hi <= MAX_TIME_US, f),
        LatencyDist::Normal(m, sd) => check(
            fin(*m) && fin(*sd) && *m >= 0.0 && *sd >= 0.0 && *m <= MAX_TIME_US as f64,
            f,
        ),
        LatencyDist::LogNormal(mu, sigma) => check(
            fin(*mu) && fin(*sigma) && *sigma >= 0.0 && *mu <= (MAX_TIME_US as f64).ln(),
            f,
        ),
        LatencyDist::Empirical(v) => {
            check(!v.is_empty(), f)?;
            if v.len() > MAX_EMPIRICAL {
                return Err(SimError::TooLarge(f));
            }
            check(v.iter().all(|&x| x <= MAX_TIME_US), f)
        }
    }
}

/// One draw from `d`, in microseconds (validated by [`check_dist`]).
fn draw(d: &LatencyDist, r: &mut Pcg32) -> u64 {
    let v = match d {
        LatencyDist::Constant(c) => return *c,
        LatencyDist::Uniform(lo, hi) => {
            let span = hi - lo;
            return lo + ((r.f64() * (span + 1) as f64) as u64).min(span);
        }
        LatencyDist::Normal(m, sd) => m + sd * r.normal(),
        LatencyDist::LogNormal(mu, sigma) => (mu + sigma * r.normal()).exp(),
        LatencyDist::Empirical(v) => return v[r.below(v.len() as u32) as usize],
    };
    v.clamp(0.0, MAX_TIME_US as f64) as u64
}

impl Plan {
    pub(super) fn new(s: &Spec) -> Result<Plan, SimError> {
        check(s.nodes >= 1, Field::Nodes)?;
        if s.nodes > MAX_NODES {
            return Err(SimError::TooLarge(Field::Nodes));
        }
        let n = s.nodes;
        check(
            (1000..=MAX_TIME_US).contains(&s.state_interval_us),
            Field::StateInterval,
        )?;
        check(s.fanout != Fanout::Count(0), Field::Fanout)?;
        check(s.jitter_percent <= 100, Field::JitterPercent)?;
        check(s.delta_buffer >= 1, Field::DeltaBuffer)?;
        let fin = |x: f64| x.is_finite();
        check_dist(&s.latency, Field::Latency)?;
        if let Some(d) = &s.ack_latency {
            check_dist(d, Field::AckLatency)?;
        }
        check_dist(&s.round_cost, Field::RoundCost)?;
        check_dist(&s.service_time, Field::ServiceTime)?;
        if let Some(offsets) = &s.timer_offsets_us {
            check(
                !s.aligned_timers
                    && offsets.len() == n as usize
                    && offsets.iter().all(|&o| o <= MAX_TIME_US),
                Field::TimerOffsets,
            )?;
        }
        check(fin(s.loss) && (0.0..=1.0).contains(&s.loss), Field::Loss)?;
        if s.partitions.len() > MAX_PARTITIONS {
            return Err(SimError::TooLarge(Field::Partitions));
        }
        let mut partitions = Vec::with_capacity(s.partitions.len());
        for p in &s.partitions {
            check(
                p.start_us <= p.end_us && p.end_us <= MAX_TIME_US,
                Field::Partitions,
            )?;
            let mut group = vec![ALONE; n as usize];
            for (g, members) in p.groups.iter().enumerate() {
                for &m in members {
                    check(m < n && group[m as usize] == ALONE, Field::Partitions)?;
                    group[m as usize] = g as u32;
                }
            }
            partitions.push((p.start_us, p.end_us, group));
        }
        check(
            s.horizon_us >= 1 && s.horizon_us <= MAX_TIME_US,
            Field::Horizon,
        )?;
        if let Some(u) = s.until_us {
            check(u <= MAX_TIME_US, Field::Until)?;
        }
        if let Some(e) = s.sample_every_us {
            check((1000..=MAX_TIME_US).contains(&e), Field::SampleEvery)?;
        }
        if s.max_samples > MAX_SAMPLES {
            return Err(SimError::TooLarge(Field::MaxSamples));
        }
        let updates = match &s.updates {
            Updates::Poisson {
                rate_per_s,
                duration_us,
            } => {
                check(
                    fin(*rate_per_s) && *rate_per_s >= 0.0 && *duration_us <= MAX_TIME_US,
                    Field::Updates,
                )?;
                let expected = rate_per_s * (*duration_us as f64) / 1e6;
                if expected > MAX_UPDATES as f64 * 1.01 {
                    return Err(SimError::TooLarge(Field::Updates));
                }
                let mut out = Vec::new();
                if *rate_per_s > 0.0 {
                    let mut r = Pcg32::new(s.seed, 1);
                    let mean = 1e6 / rate_per_s;
                    let mut t = 0.0f64;
                    loop {
                        t += r.exp(mean);
                        if t >= *duration_us as f64 {
                            break;
                        }
                        if out.len() as u64 >= MAX_UPDATES {
                            return Err(SimError::TooLarge(Field::Updates));
                        }
                        out.push((t as u64, r.below(n)));
                    }
                }
                out
            }
            Updates::At(list) => {
                if list.len() as u64 > MAX_UPDATES {
                    return Err(SimError::TooLarge(Field::Updates));
                }
                check(
                    list.iter().all(|&(t, o)| t <= MAX_TIME_US && o < n),
                    Field::Updates,
                )?;
                let mut v = list.clone();
                v.sort_by_key(|&(t, _)| t);
                v
            }
        };
        if u64::from(n) * updates.len() as u64 > MAX_NODE_UPDATES {
            return Err(SimError::TooLarge(Field::Updates));
        }
        let natural = updates.last().map_or(0, |&(t, _)| t + s.horizon_us);
        let bound = match s.until_us {
            Some(u) if updates.is_empty() => u,
            Some(u) => u.min(natural),
            None => natural,
        };
        let peers = match s.fanout {
            Fanout::All => u64::from(n - 1),
            Fanout::Count(k) => u64::from(k.min(n - 1)),
        };
        let rounds = bound / s.state_interval_us + 1;
        let mut est = u64::from(n).saturating_mul(peers).saturating_mul(rounds);
        if s.propagate_on_update {
            est = est.saturating_add((updates.len() as u64).saturating_mul(peers));
        }
        if s.mode == Mode::DeltaBased {
            est = est.saturating_mul(2); // acknowledgements
        }
        if est > MAX_MESSAGES {
            return Err(SimError::TooLarge(Field::Messages));
        }
        let sample_every = match s.sample_every_us {
            Some(e) => e,
            None => {
                let per = bound / u64::from(s.max_samples.max(1)) + 1;
                per.div_ceil(1000).max(10) * 1000
            }
        };
        let detail = s.detail.unwrap_or(if n <= 100 {
            Detail::Full
        } else {
            Detail::Summary
        });
        if detail == Detail::Full && u64::from(n) * u64::from(s.max_samples) > MAX_SAMPLE_ENTRIES {
            return Err(SimError::TooLarge(Field::MaxSamples));
        }
        Ok(Plan {
            updates,
            partitions,
            bound,
            sample_every,
            detail,
        })
    }
}

#[derive(Clone, Copy)]
enum Ev {
    /// A node's timer falls due.
    Tick(u32),
    /// A tick that waited for its node to be free: the round goes out.
    Round(u32),
    /// A local update's `propagate_on_update` round, after its service.
    Push(u32),
    /// A full state (`seq` is `None` in state-based mode); `served` once
    /// its service time has passed.
    State {
        to: u32,
        from: u32,
        payload: u32,
        seq: Option<u64>,
        served: bool,
    },
    Delta {
        to: u32,
        from: u32,
        payload: u32,
        seq: u64,
        served: bool,
    },
    Ack {
        to: u32,
        from: u32,
        seq: u64,
    },
}

impl Ev {
    /// The receiver of a state or delta whose service has not begun.
    fn unserved(&self) -> Option<u32> {
        match *self {
            Ev::State {
                to, served: false, ..
            }
            | Ev::Delta {
                to, served: false, ..
            } => Some(to),
            _ => None,
        }
    }

    /// The same message, served.
    fn served(mut self) -> Self {
        if let Ev::State { served, .. } | Ev::Delta { served, .. } = &mut self {
            *served = true;
        }
        self
    }
}

struct Entry {
    t: u64,
    n: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.n) == (o.t, o.n)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.t, self.n).cmp(&(o.t, o.n))
    }
}

/// A message body: a set snapshot (`prefix` and the words from word
/// `prefix / 64` on) or a list of update numbers.
#[derive(Default)]
struct Payload {
    prefix: u32,
    words: Vec<u64>,
    ids: Vec<u32>,
}

/// A node's delta buffer (delta-based mode).
#[derive(Default)]
struct DeltaBuf {
    /// Per entry: origin, and the absolute end of its updates in `ids`.
    entries: VecDeque<(u32, u64)>,
    /// Sequence number of `entries[0]` (the replicator's `low`).
    low: u64,
    /// Next sequence number.
    next: u64,
    ids: VecDeque<u32>,
    /// Absolute position of `ids[0]`.
    ids_front: u64,
    /// Acknowledged sequence per peer, and the multiset of those values.
    acks: HashMap<u32, u64>,
    ack_values: BTreeMap<u64, u32>,
}

impl DeltaBuf {
    fn push(&mut self, origin: u32, new: &[u32], max: usize) {
        self.ids.extend(new.iter().copied());
        let end = self.ids_front + self.ids.len() as u64;
        self.entries.push_back((origin, end));
        self.next += 1;
        while self.entries.len() > max {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, end)) = self.entries.pop_front() {
            let k = (end - self.ids_front) as usize;
            self.ids.drain(..k);
            self.ids_front = end;
            self.low += 1;
        }
    }

    fn ack(&mut self, peer: u32, seq: u64) {
        let old = self.acks.get(&peer).copied();
        let new = old.map_or(seq, |o| o.max(seq));
        if old == Some(new) {
            return;
        }
        if let Some(o) = old {
            if let Some(c) = self.ack_values.get_mut(&o) {
                *c -= 1;
                if *c == 0 {
                    self.ack_values.remove(&o);
                }
            }
        }
        *self.ack_values.entry(new).or_insert(0) += 1;
        self.acks.insert(peer, new);
        // collect: drop what every acknowledging peer has.
        if let Some((&min, _)) = self.ack_values.iter().next() {
            while self.low < min && !self.entries.is_empty() {
                self.pop_front();
            }
            self.low = self.low.max(min.min(self.next));
        }
    }

    /// Updates of the entries numbered `from` or later not from `peer`.
    fn since(&self, from: u64, peer: u32, out: &mut Vec<u32>) {
        let first = (from - self.low) as usize;
        let mut start = if first == 0 {
            self.ids_front
        } else {
            self.entries[first - 1].1
        };
        for &(origin, end) in self.entries.iter().skip(first) {
            if origin != peer {
                let a = (start - self.ids_front) as usize;
                let b = (end - self.ids_front) as usize;
                out.extend(self.ids.range(a..b).copied());
            }
            start = end;
        }
    }
}

pub(super) struct Sim<'a> {
    s: &'a Spec,
    plan: Plan,
    n: u32,
    wpn: usize,
    bits: Vec<u64>,
    known: Vec<u64>,
    wm: Vec<u32>,
    /// Per node: seen updates that have not expired unconverged.
    kp: Vec<u64>,
    /// Per node: when it is done with what it has been given.
    busy: Vec<u64>,
    node_hist: Vec<Latency<u32>>,
    bufs: Vec<DeltaBuf>,
    // updates
    created: u32,
    seen: Vec<u32>,
    status: Vec<u8>,
    /// Updates made and not expired unconverged.
    live_made: u64,
    converged: u64,
    unconverged: u64,
    expire_ptr: usize,
    oldest_ptr: usize,
    conv: Latency,
    // events
    heap: BinaryHeap<Reverse<Entry>>,
    seqno: u64,
    slab: Vec<Payload>,
    free: Vec<u32>,
    // randomness
    r_timer: Pcg32,
    r_peer: Pcg32,
    r_link: Pcg32,
    r_proc: Pcg32,
    perm: Vec<u32>,
    peers: Vec<u32>,
    scratch: Vec<u32>,
    // counters
    messages: u64,
    bytes: u64,
    full_states: u64,
    deltas: u64,
    acks: u64,
    dropped: u64,
    events: u64,
    samples: VecDeque<SimSample>,
    next_sample: u64,
}

impl<'a> Sim<'a> {
    pub(super) fn new(s: &'a Spec, plan: Plan) -> Sim<'a> {
        let n = s.nodes;
        let u = plan.updates.len();
        let wpn = u.div_ceil(64).max(1);
        let nn = n as usize;
        let bufs = if s.mode == Mode::DeltaBased {
            (0..nn).map(|_| DeltaBuf::default()).collect()
        } else {
            Vec::new()
        };
        Sim {
            s,
            n,
            wpn,
            bits: vec![0; nn * wpn],
            known: vec![0; nn],
            wm: vec![0; nn],
            kp: vec![0; nn],
            busy: vec![0; nn],
            node_hist: (0..nn).map(|_| Latency::with_sigfig(2, u64::MAX)).collect(),
            bufs,
            created: 0,
            seen: vec![0; u],
            status: vec![PENDING; u],
            live_made: 0,
            converged: 0,
            unconverged: 0,
            expire_ptr: 0,
            oldest_ptr: 0,
            conv: Latency::with_sigfig(3, u64::MAX),
            heap: BinaryHeap::new(),
            seqno: 0,
            slab: Vec::new(),
            free: Vec::new(),
            r_timer: Pcg32::new(s.seed, 2),
            r_peer: Pcg32::new(s.seed, 3),
            r_link: Pcg32::new(s.seed, 4),
            r_proc: Pcg32::new(s.seed, 5),
            perm: (0..n.saturating_sub(1)).collect(),
            peers: Vec::new(),
            scratch: Vec::new(),
            messages: 0,
            bytes: 0,
            full_states: 0,
            deltas: 0,
            acks: 0,
            dropped: 0,
            events: 0,
            samples: VecDeque::new(),
            next_sample: 0,
            plan,
        }
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.seqno += 1;
        self.heap.push(Reverse(Entry {
            t,
            n: self.seqno,
            ev,
        }));
    }

    fn next_delay(&mut self) -> u64 {
        let i = self.s.state_interval_us;
        let j = self.s.jitter_percent;
        if j == 0 {
            return i;
        }
        let d = i as f64 * f64::from(j) / 100.0 * (2.0 * self.r_timer.f64() - 1.0);
        (i as f64 + d).round().max(1000.0) as u64
    }

    /// The whole run, or `None` once `cancel` is seen raised.
    pub(super) fn run(mut self, cancel: &AtomicBool) -> Option<SimReport> {
        let i = self.s.state_interval_us;
        for node in 0..self.n {
            let first = if let Some(o) = &self.s.timer_offsets_us {
                o[node as usize]
            } else if self.s.aligned_timers {
                i
            } else {
                (self.r_timer.f64() * i as f64) as u64
            };
            self.push(first, Ev::Tick(node));
        }
        let total = self.plan.updates.len();
        let limit = self.s.until_us.unwrap_or(u64::MAX);
        let mut next_u = 0usize;
        let mut now = 0u64;
        loop {
            // Done: every update made and converged or expired (without
            // updates, a run with `until` goes on counting messages).
            let done = next_u == total && (self.converged + self.unconverged) as usize == total;
            if done && (self.s.until_us.is_none() || total > 0) {
                break;
            }
            let ut = self.plan.updates.get(next_u).map(|&(t, _)| t);
            let ht = self.heap.peek().map(|e| e.0.t);
            let t = match (ut, ht) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if t > limit {
                now = limit;
                break;
            }
            if self.events.is_multiple_of(super::CANCEL_CHECK_EVENTS)
                && cancel.load(Ordering::Relaxed)
            {
                return None;
            }
            self.advance(t);
            now = t;
            self.events += 1;
            if ut == Some(t) {
                let (_, origin) = self.plan.updates[next_u];
                next_u += 1;
                self.update(t, origin);
                continue;
            }
            let Some(Reverse(e)) = self.heap.pop() else {
                break;
            };
            // A state or delta takes effect once its receiver has served it.
            if let Some(to) = e.ev.unserved() {
                if let Some(done) = self.serve(t, to) {
                    self.push(done, e.ev.served());
                    continue;
                }
            }
            match e.ev {
                Ev::Tick(node) => {
                    // The tick waits behind what the node is processing.
                    let free = self.busy[node as usize];
                    if free > t {
                        self.push(free, Ev::Round(node));
                    } else {
                        self.tick_round(t, node);
                    }
                }
                Ev::Round(node) => self.tick_round(t, node),
                Ev::Push(node) => self.round(t, node),
                Ev::State {
                    to,
                    from,
                    payload,
                    seq,
                    ..
                } => {
                    self.merge_set(t, to, payload);
                    if let Some(seq) = seq {
                        self.buffer_news(to, from);
                        self.send_ack(t, to, from, seq);
                    }
                    self.free.push(payload);
                }
                Ev::Delta {
                    to,
                    from,
                    payload,
                    seq,
                    ..
                } => {
                    self.merge_ids(t, to, payload);
                    self.buffer_news(to, from);
                    self.send_ack(t, to, from, seq);
                    self.free.push(payload);
                }
                Ev::Ack { to, from, seq } => {
                    self.bufs[to as usize].ack(from, seq);
                }
            }
        }
        self.advance(now);
        Some(self.report(now))
    }

    /// A round at a tick, and the next tick armed after it: the interval
    /// (with jitter) plus the round's cost.
    fn tick_round(&mut self, t: u64, node: u32) {
        self.round(t, node);
        let d = self.next_delay() + draw(&self.s.round_cost, &mut self.r_proc);
        self.push(t + d, Ev::Tick(node));
    }

    /// Queue one service on `node` from `t`: `None` when it ends at once,
    /// else when it ends.
    fn serve(&mut self, t: u64, node: u32) -> Option<u64> {
        let busy = &mut self.busy[node as usize];
        let done = t.max(*busy) + draw(&self.s.service_time, &mut self.r_proc);
        *busy = done;
        (done > t).then_some(done)
    }

    /// Expire and sample up to `t` (samples see the state before the
    /// events at their instant).
    fn advance(&mut self, t: u64) {
        while self.next_sample <= t && self.next_sample <= self.plan.bound {
            let st = self.next_sample;
            self.expire(st);
            self.sample(st);
            self.next_sample += self.plan.sample_every;
        }
        self.expire(t);
    }

    fn expire(&mut self, t: u64) {
        let h = self.s.horizon_us;
        while self.expire_ptr < self.created as usize {
            let k = self.expire_ptr;
            if self.plan.updates[k].0 + h > t {
                break;
            }
            if self.status[k] == PENDING {
                self.status[k] = UNCONVERGED;
                self.unconverged += 1;
                self.live_made -= 1;
                let (w, b) = (k / 64, k % 64);
                for node in 0..self.n as usize {
                    if self.bits[node * self.wpn + w] >> b & 1 == 1 {
                        self.kp[node] -= 1;
                    }
                }
            }
            self.expire_ptr += 1;
        }
    }

    fn update(&mut self, t: u64, origin: u32) {
        let k = self.created;
        self.created += 1;
        self.live_made += 1;
        let o = origin as usize;
        self.bits[o * self.wpn + k as usize / 64] |= 1 << (k % 64);
        self.known[o] += 1;
        self.kp[o] += 1;
        self.seen[k as usize] = 1;
        self.raise_wm(origin);
        if self.n == 1 {
            self.status[k as usize] = CONVERGED;
            self.converged += 1;
            self.conv.record(0);
        }
        if self.s.mode == Mode::DeltaBased {
            let max = self.s.delta_buffer as usize;
            self.bufs[o].push(origin, &[k], max);
        }
        let served = self.serve(t, origin);
        if self.s.propagate_on_update {
            match served {
                Some(done) => self.push(done, Ev::Push(origin)),
                None => self.round(t, origin),
            }
        }
    }

    fn raise_wm(&mut self, node: u32) {
        let base = node as usize * self.wpn;
        let mut w = self.wm[node as usize] as usize / 64;
        let top = (self.created as usize).div_ceil(64);
        while w < top && self.bits[base + w] == u64::MAX {
            w += 1;
        }
        let wm = if w < top {
            w * 64 + (!self.bits[base + w]).trailing_zeros() as usize
        } else {
            top * 64
        };
        self.wm[node as usize] = wm.min(self.created as usize) as u32;
    }

    /// `node` sees update `k` at `t`.
    #[inline]
    fn learn(&mut self, t: u64, node: u32, k: usize, delta: bool) {
        self.known[node as usize] += 1;
        if delta {
            self.scratch.push(k as u32);
        }
        if self.status[k] == UNCONVERGED {
            return;
        }
        self.kp[node as usize] += 1;
        let ts = self.plan.updates[k].0;
        self.node_hist[node as usize].record(t - ts);
        self.seen[k] += 1;
        if self.seen[k] == self.n && self.status[k] == PENDING {
            self.status[k] = CONVERGED;
            self.converged += 1;
            self.conv.record(t - ts);
        }
    }

    fn merge_set(&mut self, t: u64, to: u32, payload: u32) {
        let delta = self.s.mode == Mode::DeltaBased;
        let p = std::mem::take(&mut self.slab[payload as usize]);
        let base = to as usize * self.wpn;
        let w0 = p.prefix as usize / 64;
        let mut w = self.wm[to as usize] as usize / 64;
        let end = w0 + p.words.len();
        while w < end {
            let m = if w < w0 { u64::MAX } else { p.words[w - w0] };
            let cur = self.bits[base + w];
            let mut new = m & !cur;
            if new != 0 {
                self.bits[base + w] = cur | new;
                while new != 0 {
                    let b = new.trailing_zeros() as usize;
                    new &= new - 1;
                    self.learn(t, to, w * 64 + b, delta);
                }
            }
            w += 1;
        }
        self.slab[payload as usize] = p;
        self.raise_wm(to);
    }

    fn merge_ids(&mut self, t: u64, to: u32, payload: u32) {
        let p = std::mem::take(&mut self.slab[payload as usize]);
        let base = to as usize * self.wpn;
        for &k in &p.ids {
            let k = k as usize;
            let (w, b) = (k / 64, 1u64 << (k % 64));
            if self.bits[base + w] & b == 0 {
                self.bits[base + w] |= b;
                self.learn(t, to, k, true);
            }
        }
        self.slab[payload as usize] = p;
        self.raise_wm(to);
    }

    fn buffer_news(&mut self, to: u32, from: u32) {
        if !self.scratch.is_empty() {
            let max = self.s.delta_buffer as usize;
            let news = std::mem::take(&mut self.scratch);
            self.bufs[to as usize].push(from, &news, max);
            self.scratch = news;
            self.scratch.clear();
        }
    }

    fn alloc(&mut self) -> u32 {
        if let Some(i) = self.free.pop() {
            let p = &mut self.slab[i as usize];
            p.words.clear();
            p.ids.clear();
            i
        } else {
            self.slab.push(Payload::default());
            (self.slab.len() - 1) as u32
        }
    }

    fn latency(&mut self) -> u64 {
        draw(&self.s.latency, &mut self.r_link)
    }

    /// Whether a message sent now is lost (loss drawn on every message, so
    /// the stream does not depend on partitions).
    fn lost(&mut self, t: u64, a: u32, b: u32) -> bool {
        let lost = self.s.loss > 0.0 && self.r_link.f64() < self.s.loss;
        let cut = self.plan.partitions.iter().any(|(s, e, g)| {
            *s <= t && t < *e && {
                let (ga, gb) = (g[a as usize], g[b as usize]);
                ga == ALONE || ga != gb
            }
        });
        if lost || cut {
            self.dropped += 1;
        }
        lost || cut
    }

    fn pick(&mut self, node: u32) {
        self.peers.clear();
        let others = self.n - 1;
        let k = match self.s.fanout {
            Fanout::All => others,
            Fanout::Count(k) => k.min(others),
        };
        let map = |x: u32| if x >= node { x + 1 } else { x };
        if k == others {
            self.peers.extend((0..others).map(map));
            return;
        }
        // Partial Fisher–Yates over a persistent permutation: uniform
        // whatever order the permutation was left in.
        for i in 0..k {
            let j = i + self.r_peer.below(others - i);
            self.perm.swap(i as usize, j as usize);
            self.peers.push(map(self.perm[i as usize]));
        }
    }

    fn round(&mut self, t: u64, node: u32) {
        self.pick(node);
        let peers = std::mem::take(&mut self.peers);
        for &p in &peers {
            match self.s.mode {
                Mode::StateBased => self.send_state(t, node, p, None),
                Mode::DeltaBased => self.send_delta(t, node, p),
            }
        }
        self.peers = peers;
    }

    fn send_state(&mut self, t: u64, from: u32, to: u32, seq: Option<u64>) {
        self.messages += 1;
        self.full_states += 1;
        let k = self.known[from as usize];
        self.bytes = self
            .bytes
            .saturating_add(self.s.message_bytes)
            .saturating_add(self.s.update_bytes.saturating_mul(k));
        if self.lost(t, from, to) {
            return;
        }
        let lat = self.latency();
        let id = self.alloc();
        let prefix = self.wm[from as usize];
        let base = from as usize * self.wpn;
        let w0 = prefix as usize / 64;
        let top = (self.created as usize).div_ceil(64);
        let p = &mut self.slab[id as usize];
        p.prefix = prefix;
        if w0 < top {
            p.words.extend_from_slice(&self.bits[base + w0..base + top]);
        }
        self.push(
            t + lat,
            Ev::State {
                to,
                from,
                payload: id,
                seq,
                served: false,
            },
        );
    }

    fn send_delta(&mut self, t: u64, from: u32, to: u32) {
        let b = &mut self.bufs[from as usize];
        let next = b.next;
        match b.acks.get(&to).copied() {
            Some(a) if a >= next => {}
            Some(a) if a >= b.low => {
                let mut ids = std::mem::take(&mut self.scratch);
                ids.clear();
                b.since(a, to, &mut ids);
                if ids.is_empty() {
                    // Everything it lacks came from it.
                    b.ack(to, next);
                    self.scratch = ids;
                    return;
                }
                self.messages += 1;
                self.deltas += 1;
                self.bytes = self
                    .bytes
                    .saturating_add(self.s.message_bytes)
                    .saturating_add(self.s.update_bytes.saturating_mul(ids.len() as u64));
                if !self.lost(t, from, to) {
                    let lat = self.latency();
                    let id = self.alloc();
                    std::mem::swap(&mut self.slab[id as usize].ids, &mut ids);
                    self.push(
                        t + lat,
                        Ev::Delta {
                            to,
                            from,
                            payload: id,
                            seq: next,
                            served: false,
                        },
                    );
                }
                ids.clear();
                self.scratch = ids;
            }
            _ => self.send_state(t, from, to, Some(next)),
        }
    }

    fn send_ack(&mut self, t: u64, from: u32, to: u32, seq: u64) {
        self.messages += 1;
        self.acks += 1;
        self.bytes = self.bytes.saturating_add(self.s.ack_bytes);
        if self.lost(t, from, to) {
            return;
        }
        let lat = match &self.s.ack_latency {
            Some(d) => draw(d, &mut self.r_link),
            None => self.latency(),
        };
        self.push(t + lat, Ev::Ack { to, from, seq });
    }

    fn sample(&mut self, t: u64) {
        if self.s.max_samples == 0 {
            return;
        }
        while self.oldest_ptr < self.created as usize && self.status[self.oldest_ptr] != PENDING {
            self.oldest_ptr += 1;
        }
        let oldest = (self.oldest_ptr < self.created as usize)
            .then(|| t - self.plan.updates[self.oldest_ptr].0);
        let full = self.plan.detail == Detail::Full;
        let mut nodes = Vec::new();
        let (mut total, mut max, mut up) = (0u64, 0u64, 0u64);
        for node in 0..self.n as usize {
            let unseen = self.live_made - self.kp[node];
            total += unseen;
            max = max.max(unseen);
            if unseen == 0 {
                up += 1;
            }
            if full {
                let age = (unseen > 0)
                    .then(|| self.first_unseen(node).map(|k| t - self.plan.updates[k].0))
                    .flatten();
                nodes.push(SimLag {
                    node: node as u32,
                    unseen,
                    oldest_unseen_age_us: age,
                });
            }
        }
        if self.samples.len() == self.s.max_samples as usize {
            self.samples.pop_front();
        }
        self.samples.push_back(SimSample {
            t_us: t,
            up_to_date: up as f64 / f64::from(self.n),
            unseen_total: total,
            unseen_max: max,
            oldest_unseen_age_us: oldest,
            nodes,
        });
    }

    fn first_unseen(&self, node: usize) -> Option<usize> {
        let base = node * self.wpn;
        (self.wm[node] as usize..self.created as usize)
            .find(|&k| self.bits[base + k / 64] >> (k % 64) & 1 == 0 && self.status[k] == PENDING)
    }

    fn report(self, end: u64) -> SimReport {
        let made = u64::from(self.created);
        let per_node = (0..self.n as usize)
            .map(|i| SimNodeStats {
                node: i as u32,
                latency: self.node_hist[i].summary(),
                pending: self.live_made - self.kp[i],
            })
            .collect();
        let stats = SimStats {
            updates: made,
            converged: self.converged,
            pending: made - self.converged - self.unconverged,
            unconverged: self.unconverged,
            latency: self.conv.summary(),
            per_node,
        };
        let per = |x: u64| {
            if made == 0 {
                0.0
            } else {
                x as f64 / made as f64
            }
        };
        SimReport {
            stats,
            divergence: self.samples.into_iter().collect(),
            sample_every_us: self.plan.sample_every,
            messages: self.messages,
            bytes: self.bytes,
            full_states: self.full_states,
            deltas: self.deltas,
            acks: self.acks,
            dropped: self.dropped,
            messages_per_update: per(self.messages),
            bytes_per_update: per(self.bytes),
            end_us: end,
            events: self.events,
        }
    }
}
