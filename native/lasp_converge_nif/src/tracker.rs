// Convergence tracker NIFs: one resource per tracked variable, holding the
// core's `Tracker` behind a mutex (the tracker is a measurement that many
// processes feed, not a CRDT value, so STYLE's "no Mutex in resources" rule
// for CRDT payloads does not apply here).
//
// The tracker, the variable's type and what is known of each node's state
// live in the core (`tracker::nodes::Tracked`): each NIF copies its term
// argument out of the caller's heap (`term_to_binary` + the core's ETF
// reader: a witness or a delta is small, a whole state O(state)), makes one
// core call and encodes the answer. Witnesses and node states are owned by
// Rust, so no check touches the BEAM heap; node states are resident
// replicas, keyed for gsets, gcounters, twopsets, orsets and awsets, so a
// delta observation joins in O(delta log state).
//
// Every input is decoded by hand so that bad input gives `{error, Reason}`
// (never `badarg`, never an atom made from input); reasons are fixed atoms
// or `{badcrdt, Why}` as the CRDT NIFs raise them.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use lasp_converge_core::owned::OwnedTerm;
use lasp_converge_core::tracker::nodes::{Refused, Tracked};
use lasp_converge_core::tracker::{Config, NodeId, Registered, Summary};
use lasp_converge_core::{etf, BadCrdt, Limits, Term as CoreTerm};
use rustler::types::map::map_new;
use rustler::{Encoder, Env, NifResult, ResourceArc, Term};

use crate::term::{ExBuilder, ExTerm};

mod atoms {
    rustler::atoms! {
        ok,
        error,
        undefined,
        badcrdt,
        not_a_tracker,
        bad_node,
        bad_seq,
        bad_ts,
        bad_members,
        bad_opts,
        unsupported_term,
        negative_rtt,
        json,
        new,
        duplicate,
        finished,
        updates,
        converged,
        pending,
        unconverged,
        unconverged_capacity,
        orphaned,
        duplicates,
        p50,
        p90,
        p99,
        p999,
        max,
        mean,
        clock_uncertainty_us,
        unsynced_nodes,
        negative_clamped,
        saturated,
        witness_checks,
        per_node,
        count,
        live,
        checked,
        newly_seen,
        t_us,
        up_to_date,
        nodes,
        unseen,
        oldest_unseen_age_us,
        index_entries,
        records,
        samples,
        seq_entries,
        clock_samples,
        last_states,
        origin,
        seq,
        ts_us,
        outcome,
        convergence_us,
        missing,
        seen,
        reason,
        horizon,
        capacity,
        offset_us,
        uncertainty_us,
        rtt_us,
        // Config keys.
        horizon_us,
        max_pending,
        record_window,
        sample_every_us,
        max_samples,
        max_latency_us,
        seq_window,
        clock_window,
        max_nodes,
        too_many_nodes,
        exact,
        convergence,
        type_ = "type",
    }
}

pub struct ExTrackerRef(Mutex<Tracked>);

// Live tracker resources, for the lifetime test (rustler's
// `resource_test.exs`): the BEAM frees a resource when its last reference
// is garbage-collected, and `Drop` runs then.
static LIVE: AtomicUsize = AtomicUsize::new(0);

impl Drop for ExTrackerRef {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

// `tracker_live()`: how many tracker resources exist in this VM.
#[rustler::nif]
fn tracker_live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

#[rustler::resource_impl]
impl rustler::Resource for ExTrackerRef {}

impl ExTrackerRef {
    fn lock(&self) -> MutexGuard<'_, Tracked> {
        // A panic while holding the lock is a bug, but the tracker's data is
        // still consistent between calls: keep serving it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type Reply<'a> = NifResult<Term<'a>>;

fn error<'a>(env: Env<'a>, why: impl Encoder) -> Reply<'a> {
    Ok((atoms::error(), why).encode(env))
}

fn bad<'a>(env: Env<'a>, e: BadCrdt) -> Reply<'a> {
    let why = e.to_term(&ExBuilder { env }).0;
    error(env, (atoms::badcrdt(), why))
}

fn res<'a>(t: Term<'a>) -> Option<ResourceArc<ExTrackerRef>> {
    t.decode::<ResourceArc<ExTrackerRef>>().ok()
}

fn node_id(t: Term) -> Option<NodeId> {
    t.decode::<u32>().ok().map(NodeId)
}

// rustler's `Vec` decoder panics on an improper list; walk the cells.
fn list(t: Term) -> Option<Vec<Term>> {
    let mut out = Vec::new();
    let mut cur = t;
    while !cur.is_empty_list() {
        let (h, tail) = cur.list_get_cell().ok()?;
        out.push(h);
        cur = tail;
    }
    Some(out)
}

pub(crate) fn opt_or_undefined<'a, T: Encoder>(env: Env<'a>, v: Option<T>) -> Term<'a> {
    match v {
        Some(v) => v.encode(env),
        None => atoms::undefined().encode(env),
    }
}

pub(crate) fn put<'a>(m: Term<'a>, k: rustler::Atom, v: Term<'a>) -> Term<'a> {
    // Keys are distinct atoms of ours: map_put cannot fail on a map.
    m.map_put(k, v).unwrap_or(m)
}

/// `p50`, `p90`, `p99`, `p999`, `max` and `mean` of a latency summary
/// (`undefined` while it is empty), the keys the tracker's and the
/// simulator's stats maps share.
pub(crate) fn put_summary<'a>(env: Env<'a>, m: Term<'a>, s: &Summary) -> Term<'a> {
    let m = put(m, atoms::p50(), opt_or_undefined(env, s.p50_us));
    let m = put(m, atoms::p90(), opt_or_undefined(env, s.p90_us));
    let m = put(m, atoms::p99(), opt_or_undefined(env, s.p99_us));
    let m = put(m, atoms::p999(), opt_or_undefined(env, s.p999_us));
    let m = put(m, atoms::max(), opt_or_undefined(env, s.max_us));
    put(m, atoms::mean(), opt_or_undefined(env, s.mean_us))
}

/// A caller term copied out of the BEAM heap.
fn owned(t: Term) -> Option<OwnedTerm> {
    etf::decode(t.to_binary().as_slice()).ok()
}

// ---- construction and configuration ----

fn config_from(opts: Term) -> Option<(Config, Vec<NodeId>)> {
    if !opts.is_map() {
        return None;
    }
    let mut c = Config::default();
    macro_rules! field {
        ($key:ident, $ty:ty) => {
            if let Ok(v) = opts.map_get(atoms::$key()) {
                c.$key = v.decode::<$ty>().ok()?;
            }
        };
    }
    field!(horizon_us, i64);
    field!(max_pending, usize);
    field!(record_window, usize);
    field!(sample_every_us, i64);
    field!(max_samples, usize);
    field!(max_latency_us, u64);
    field!(seq_window, usize);
    field!(clock_window, usize);
    field!(max_nodes, usize);
    let mut exact = Vec::new();
    if let Ok(v) = opts.map_get(atoms::exact()) {
        for n in list(v)? {
            exact.push(node_id(n)?);
        }
    }
    Some((c, exact))
}

// `tracker_new(Opts)`: `{ok, Ref}`. Opts: the `Config` fields (microseconds
// and counts, atom keys, `max_nodes` included: past it a new node's calls
// give `{error, too_many_nodes}`) and `exact => [NodeId]`, the nodes that
// read the reference clock (the tracker's own node).
#[rustler::nif]
fn tracker_new<'a>(env: Env<'a>, opts: Term<'a>) -> Reply<'a> {
    let Some((config, exact)) = config_from(opts) else {
        return error(env, atoms::bad_opts());
    };
    let mut tracked = Tracked::new(config);
    for n in exact {
        tracked.tracker.clock_mut().set_exact(n);
    }
    LIVE.fetch_add(1, Ordering::Relaxed);
    let r = ResourceArc::new(ExTrackerRef(Mutex::new(tracked)));
    Ok((atoms::ok(), r).encode(env))
}

// `tracker_set_members(Ref, TsUs, [NodeId])`.
#[rustler::nif]
fn tracker_set_members<'a>(
    env: Env<'a>,
    r: Term<'a>,
    ts: Term<'a>,
    members: Term<'a>,
) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let Ok(ts) = ts.decode::<i64>() else {
        return error(env, atoms::bad_ts());
    };
    let Some(ids) =
        list(members).and_then(|v| v.into_iter().map(node_id).collect::<Option<Vec<_>>>())
    else {
        return error(env, atoms::bad_members());
    };
    if !r.lock().set_members(ts, &ids) {
        return error(env, atoms::too_many_nodes());
    }
    Ok(atoms::ok().encode(env))
}

// `tracker_clock_exact(Ref, NodeId)`: the node reads the reference clock.
#[rustler::nif]
fn tracker_clock_exact<'a>(env: Env<'a>, r: Term<'a>, n: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let Some(n) = node_id(n) else {
        return error(env, atoms::bad_node());
    };
    r.lock().tracker.clock_mut().set_exact(n);
    Ok(atoms::ok().encode(env))
}

// `tracker_clock_sample(Ref, NodeId, T0, T1, T2)`: one ping round trip, T0
// and T2 on the reference clock, T1 the node's reading. `{ok, #{offset_us,
// uncertainty_us, rtt_us}}` is the estimate in force afterwards.
#[rustler::nif]
fn tracker_clock_sample<'a>(
    env: Env<'a>,
    r: Term<'a>,
    n: Term<'a>,
    t0: Term<'a>,
    t1: Term<'a>,
    t2: Term<'a>,
) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let Some(n) = node_id(n) else {
        return error(env, atoms::bad_node());
    };
    let (Ok(t0), Ok(t1), Ok(t2)) = (t0.decode::<i64>(), t1.decode::<i64>(), t2.decode::<i64>())
    else {
        return error(env, atoms::bad_ts());
    };
    let sampled = r.lock().tracker.clock_sample(n, t0, t1, t2);
    match sampled {
        Ok(e) => {
            let m = map_new(env);
            let m = put(m, atoms::offset_us(), e.offset_us.encode(env));
            let m = put(m, atoms::uncertainty_us(), e.uncertainty_us.encode(env));
            let m = put(m, atoms::rtt_us(), e.rtt_us.encode(env));
            Ok((atoms::ok(), m).encode(env))
        }
        Err(_) => error(env, atoms::negative_rtt()),
    }
}

// `tracker_tick(Ref, NowUs)`: advance the clock (horizon, samples).
#[rustler::nif]
fn tracker_tick<'a>(env: Env<'a>, r: Term<'a>, now: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let Ok(now) = now.decode::<i64>() else {
        return error(env, atoms::bad_ts());
    };
    r.lock().tracker.tick(now);
    Ok(atoms::ok().encode(env))
}

// ---- updates and observations ----

fn refused<'a>(env: Env<'a>, why: Refused) -> Reply<'a> {
    match why {
        Refused::Bad(e) => bad(env, e),
        Refused::TooManyNodes => error(env, atoms::too_many_nodes()),
    }
}

struct UpdArgs {
    r: ResourceArc<ExTrackerRef>,
    origin: NodeId,
    seq: u64,
    ts: i64,
}

fn upd_args<'a>(
    env: Env<'a>,
    r: Term<'a>,
    o: Term<'a>,
    s: Term<'a>,
    t: Term<'a>,
) -> Result<UpdArgs, Reply<'a>> {
    let r = res(r).ok_or_else(|| error(env, atoms::not_a_tracker()))?;
    let origin = node_id(o).ok_or_else(|| error(env, atoms::bad_node()))?;
    let seq = s
        .decode::<u64>()
        .map_err(|_| error(env, atoms::bad_seq()))?;
    let ts = t.decode::<i64>().map_err(|_| error(env, atoms::bad_ts()))?;
    Ok(UpdArgs { r, origin, seq, ts })
}

// Copy a witness out of the caller's heap, decode it and register update
// `a` with it.
fn register_witness<'a>(env: Env<'a>, a: &UpdArgs, w: Term<'a>) -> Reply<'a> {
    let Some(o) = owned(w) else {
        return error(env, atoms::unsupported_term());
    };
    let reg = a.r.lock().updated(a.origin, a.seq, a.ts, &o);
    Ok(match reg {
        Err(why) => return refused(env, why),
        Ok(Registered::New { finished: false }) => (atoms::ok(), atoms::new()).encode(env),
        Ok(Registered::New { finished: true }) => (atoms::ok(), atoms::finished()).encode(env),
        Ok(Registered::Duplicate) => (atoms::ok(), atoms::duplicate()).encode(env),
        Ok(Registered::TooManyNodes) => return error(env, atoms::too_many_nodes()),
    })
}

fn updated<'a>(env: Env<'a>, limits: Limits, args: [Term<'a>; 6]) -> Reply<'a> {
    let [r, o, s, t, pre, post] = args;
    let a = match upd_args(env, r, o, s, t) {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    // The delta over the caller's terms (no copy of either state), then the
    // (small) delta copied out.
    let d = match lasp_converge_core::api::delta(
        &ExBuilder { env },
        &ExTerm(post),
        &ExTerm(pre),
        limits,
    ) {
        Ok(d) => d,
        Err(BadCrdt::Yield) => return Err(crate::error::raise(BadCrdt::Yield)),
        Err(e) => return bad(env, e),
    };
    register_witness(env, &a, d.0)
}

// `tracker_updated(Ref, Origin, Seq, TsUs, Pre, Post)`: update `(Origin,
// Seq)` made at `TsUs` (Origin's clock); the witness is `delta(Post, Pre)`.
// `{ok, new | finished | duplicate}`. The normal-scheduler NIF raises
// `lasp_converge_dirty` when the states are large; the caller retries with
// the `_dirty` twin (as `lasp_converge_crdt` does).
#[rustler::nif]
fn tracker_updated<'a>(
    env: Env<'a>,
    r: Term<'a>,
    o: Term<'a>,
    s: Term<'a>,
    t: Term<'a>,
    pre: Term<'a>,
    post: Term<'a>,
) -> Reply<'a> {
    updated(env, Limits::normal(), [r, o, s, t, pre, post])
}

#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_updated_dirty<'a>(
    env: Env<'a>,
    r: Term<'a>,
    o: Term<'a>,
    s: Term<'a>,
    t: Term<'a>,
    pre: Term<'a>,
    post: Term<'a>,
) -> Reply<'a> {
    updated(env, Limits::dirty(), [r, o, s, t, pre, post])
}

// `tracker_witness(Ref, Origin, Seq, TsUs, Witness)`: as `tracker_updated`,
// with the witness already computed (by the origin node, which sends it to
// the aggregating node instead of two states, or by a writer that has the
// update's delta). A witness is usually a small delta, registered on the
// normal scheduler; one that weighs more than `Limits::NORMAL_WEIGHT`
// raises `lasp_converge_dirty` and goes to `tracker_witness_dirty`.
fn witness<'a>(env: Env<'a>, args: [Term<'a>; 5], dirty: bool) -> Reply<'a> {
    let [r, o, s, t, w] = args;
    if !dirty && <ExTerm as CoreTerm>::too_heavy(&[&ExTerm(w)], Limits::NORMAL_WEIGHT) {
        return Err(crate::error::raise(BadCrdt::Yield));
    }
    let a = match upd_args(env, r, o, s, t) {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    register_witness(env, &a, w)
}

#[rustler::nif]
fn tracker_witness<'a>(
    env: Env<'a>,
    r: Term<'a>,
    o: Term<'a>,
    s: Term<'a>,
    t: Term<'a>,
    w: Term<'a>,
) -> Reply<'a> {
    witness(env, [r, o, s, t, w], false)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_witness_dirty<'a>(
    env: Env<'a>,
    r: Term<'a>,
    o: Term<'a>,
    s: Term<'a>,
    t: Term<'a>,
    w: Term<'a>,
) -> Reply<'a> {
    witness(env, [r, o, s, t, w], true)
}

// `tracker_observed(Ref, NodeId, TsUs, State)`: node held `State` at `TsUs`
// (its own clock). Pending updates it has not seen are checked with
// `is_inflation(Witness, State)`. `{ok, #{checked, newly_seen, converged}}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_observed<'a>(
    env: Env<'a>,
    r: Term<'a>,
    n: Term<'a>,
    t: Term<'a>,
    state: Term<'a>,
) -> Reply<'a> {
    observed(env, [r, n, t, state], false)
}

// `tracker_observed_delta_normal(Ref, NodeId, TsUs, Delta)`: as
// `tracker_observed_delta`, on the normal scheduler, for a light delta
// (`Limits::NORMAL_WEIGHT`, and at most `LIGHT_ATOMS` index atoms: a
// compressed causal context may cover many dots) of a node whose state is
// keyed or small (`Tracked::light`: the join costs O(delta log state), or
// at most what a normal-scheduler merge weighs, and the checks read
// ranks). Otherwise, or when the tracker is busy (another call holds it),
// it raises `lasp_converge_dirty` and the caller uses
// `tracker_observed_delta`: a normal scheduler never waits for the lock.
#[rustler::nif]
fn tracker_observed_delta_normal<'a>(
    env: Env<'a>,
    r: Term<'a>,
    n: Term<'a>,
    t: Term<'a>,
    delta: Term<'a>,
) -> Reply<'a> {
    let yield_ = || Err(crate::error::raise(BadCrdt::Yield));
    if <ExTerm as CoreTerm>::too_heavy(&[&ExTerm(delta)], Limits::NORMAL_WEIGHT) {
        return yield_();
    }
    let (rr, id, ts, o) = match observed_args(env, [r, n, t, delta]) {
        Ok(args) => args,
        Err(reply) => return reply,
    };
    let Ok(mut inner) = rr.0.try_lock() else {
        return yield_();
    };
    if !inner.light(id) || !Tracked::light_change(&o) {
        return yield_();
    }
    let obs = inner.observed(id, ts, &o, true);
    drop(inner);
    match obs {
        Ok(obs) => observed_reply(env, obs),
        Err(why) => refused(env, why),
    }
}

// `tracker_observed_delta(Ref, NodeId, TsUs, Delta)`: as `tracker_observed`,
// for a node that sends only what its state gained since the last state it
// sent (`delta(State, Last)`, the whole state the first time): the node's
// state is taken to be the join of everything it sent. Member nodes send
// these, so an observation costs the network the change, not the state.
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_observed_delta<'a>(
    env: Env<'a>,
    r: Term<'a>,
    n: Term<'a>,
    t: Term<'a>,
    delta: Term<'a>,
) -> Reply<'a> {
    observed(env, [r, n, t, delta], true)
}

// The arguments of an observation, `(Ref, NodeId, TsUs, StateOrDelta)`,
// decoded, or the error answer naming the first bad one.
type ObservedArgs = (ResourceArc<ExTrackerRef>, NodeId, i64, OwnedTerm);

fn observed_args<'a>(env: Env<'a>, args: [Term<'a>; 4]) -> Result<ObservedArgs, Reply<'a>> {
    let [r, n, t, x] = args;
    let r = res(r).ok_or_else(|| error(env, atoms::not_a_tracker()))?;
    let n = node_id(n).ok_or_else(|| error(env, atoms::bad_node()))?;
    let ts = t.decode::<i64>().map_err(|_| error(env, atoms::bad_ts()))?;
    let o = owned(x).ok_or_else(|| error(env, atoms::unsupported_term()))?;
    Ok((r, n, ts, o))
}

fn observed<'a>(env: Env<'a>, args: [Term<'a>; 4], is_delta: bool) -> Reply<'a> {
    let (r, n, ts, o) = match observed_args(env, args) {
        Ok(args) => args,
        Err(reply) => return reply,
    };
    let obs = r.lock().observed(n, ts, &o, is_delta);
    match obs {
        Ok(obs) => observed_reply(env, obs),
        Err(why) => refused(env, why),
    }
}

fn observed_reply(env: Env, obs: lasp_converge_core::tracker::Observed) -> Reply {
    let m = map_new(env);
    let m = put(m, atoms::checked(), obs.checked.encode(env));
    let m = put(m, atoms::newly_seen(), obs.newly_seen.encode(env));
    let m = put(m, atoms::converged(), obs.converged.encode(env));
    Ok((atoms::ok(), m).encode(env))
}

// ---- queries ----

// `tracker_retained(Ref)`: what the tracker holds, in entries, to show that
// it is bounded by its configuration (`max_pending`, `record_window`,
// `max_samples`, `seq_window`, `clock_window`) whatever the number of
// updates; `last_states` is the number of members whose latest state is
// kept (one state per member, the size of the variable itself).
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_retained<'a>(env: Env<'a>, r: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let inner = r.lock();
    let k = inner.tracker.retained();
    let m = map_new(env);
    let m = put(m, atoms::pending(), k.pending.encode(env));
    let m = put(m, atoms::index_entries(), k.index_entries.encode(env));
    let m = put(m, atoms::records(), k.records.encode(env));
    let m = put(m, atoms::samples(), k.samples.encode(env));
    let m = put(m, atoms::seq_entries(), k.seq_entries.encode(env));
    let m = put(m, atoms::clock_samples(), k.clock_samples.encode(env));
    let m = put(m, atoms::nodes(), k.nodes.encode(env));
    let m = put(m, atoms::last_states(), inner.last_states().encode(env));
    Ok((atoms::ok(), m).encode(env))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_stats<'a>(env: Env<'a>, r: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let s = r.lock().tracker.stats();
    let u = |v: Option<u64>| opt_or_undefined(env, v);
    let mut per_node = map_new(env);
    for n in &s.per_node {
        let m = map_new(env);
        let m = put(m, atoms::p50(), u(n.latency.p50_us));
        let m = put(m, atoms::p99(), u(n.latency.p99_us));
        let m = put(m, atoms::max(), u(n.latency.max_us));
        let m = put(m, atoms::pending(), n.pending.encode(env));
        let m = put(m, atoms::count(), n.latency.count.encode(env));
        let m = put(m, atoms::live(), n.live.encode(env));
        let m = put(m, atoms::clock_uncertainty_us(), u(n.clock_uncertainty_us));
        per_node = per_node.map_put(n.node.0, m).unwrap_or(per_node);
    }
    let unsynced: Vec<u32> = s.unsynced_nodes.iter().map(|n| n.0).collect();
    let m = map_new(env);
    let m = put(m, atoms::updates(), s.updates.encode(env));
    let m = put(m, atoms::converged(), s.converged.encode(env));
    let m = put(m, atoms::pending(), s.pending.encode(env));
    let m = put(m, atoms::unconverged(), s.unconverged.encode(env));
    let m = put(
        m,
        atoms::unconverged_capacity(),
        s.unconverged_capacity.encode(env),
    );
    let m = put(m, atoms::orphaned(), s.orphaned.encode(env));
    let m = put(m, atoms::duplicates(), s.duplicates.encode(env));
    let m = put_summary(env, m, &s.latency);
    let m = put(
        m,
        atoms::clock_uncertainty_us(),
        s.clock_uncertainty_us.encode(env),
    );
    let m = put(m, atoms::unsynced_nodes(), unsynced.encode(env));
    let m = put(m, atoms::negative_clamped(), s.negative_clamped.encode(env));
    let m = put(m, atoms::saturated(), s.latency.saturated.encode(env));
    let m = put(m, atoms::witness_checks(), s.witness_checks.encode(env));
    let m = put(m, atoms::per_node(), per_node);
    Ok((atoms::ok(), m).encode(env))
}

// `tracker_divergence(Ref)`: `{ok, [#{t_us, up_to_date, nodes => #{NodeId
// => #{unseen, oldest_unseen_age_us}}}]}`, oldest first.
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_divergence<'a>(env: Env<'a>, r: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let inner = r.lock();
    let mut out = Vec::with_capacity(inner.tracker.divergence().len());
    for s in inner.tracker.divergence() {
        let mut nodes = map_new(env);
        for l in &s.nodes {
            let m = map_new(env);
            let m = put(m, atoms::unseen(), l.unseen.encode(env));
            let m = put(
                m,
                atoms::oldest_unseen_age_us(),
                opt_or_undefined(env, l.oldest_unseen_age_us),
            );
            nodes = nodes.map_put(l.node.0, m).unwrap_or(nodes);
        }
        let m = map_new(env);
        let m = put(m, atoms::t_us(), s.t_us.encode(env));
        let m = put(m, atoms::up_to_date(), s.up_to_date.encode(env));
        let m = put(m, atoms::nodes(), nodes);
        out.push(m);
    }
    Ok((atoms::ok(), out).encode(env))
}

// `tracker_records(Ref)`: `{ok, [#{origin, seq, ts_us, outcome,
// convergence_us, missing, reason, seen => #{NodeId => TsUs}}]}`, the raw
// records of the most recent finished updates, oldest first (at most
// `record_window`). `convergence_us` is `undefined` unless converged;
// `missing` and `reason` (`horizon` | `capacity`) only for unconverged.
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_records<'a>(env: Env<'a>, r: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let inner = r.lock();
    let out: Vec<Term> = inner
        .tracker
        .records()
        .iter()
        .map(|rec| encode_record(env, rec))
        .collect();
    Ok((atoms::ok(), out).encode(env))
}

// `tracker_finished_since(Ref, Since, All)`: `{ok, Finished, Records}`,
// where `Finished` counts the updates finished since the last reset and
// `Records` are those of the updates finished after the first `Since` of
// them that are still kept (as `tracker_records`, oldest first), only the
// unconverged ones unless `All` is `true`. A reader that passes back the
// `Finished` it got sees each record once; after a reset `Finished` is
// smaller than `Since` and every kept record is new.
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_finished_since<'a>(
    env: Env<'a>,
    r: Term<'a>,
    since: Term<'a>,
    all: Term<'a>,
) -> Reply<'a> {
    use lasp_converge_core::tracker::Outcome;
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let Ok(since) = since.decode::<u64>() else {
        return error(env, atoms::bad_seq());
    };
    let Ok(all) = all.decode::<bool>() else {
        return error(env, atoms::bad_opts());
    };
    let inner = r.lock();
    let finished = inner.tracker.finished();
    let records = inner.tracker.records();
    let new = if finished >= since {
        usize::try_from(finished - since).unwrap_or(usize::MAX)
    } else {
        records.len()
    };
    let skip = records.len().saturating_sub(new);
    let out: Vec<Term> = records
        .iter()
        .skip(skip)
        .filter(|rec| all || matches!(rec.outcome, Outcome::Unconverged { .. }))
        .map(|rec| encode_record(env, rec))
        .collect();
    Ok((atoms::ok(), finished, out).encode(env))
}

fn encode_record<'a>(env: Env<'a>, rec: &lasp_converge_core::tracker::Record) -> Term<'a> {
    use lasp_converge_core::tracker::{Expiry, Outcome};
    let mut seen = map_new(env);
    for s in &rec.seen {
        seen = seen.map_put(s.node.0, s.ts_us).unwrap_or(seen);
    }
    let m = map_new(env);
    let m = put(m, atoms::origin(), rec.id.origin.0.encode(env));
    let m = put(m, atoms::seq(), rec.id.seq.encode(env));
    let m = put(m, atoms::ts_us(), rec.ts_us.encode(env));
    let m = put(m, atoms::seen(), seen);
    let (outcome, conv, missing, reason) = match &rec.outcome {
        Outcome::Converged { convergence_us } => {
            (atoms::converged(), Some(*convergence_us), Vec::new(), None)
        }
        Outcome::Unconverged { reason, missing } => (
            atoms::unconverged(),
            None,
            missing.iter().map(|n| n.0).collect(),
            Some(match reason {
                Expiry::Horizon => atoms::horizon(),
                Expiry::Capacity => atoms::capacity(),
            }),
        ),
        Outcome::Orphaned => (atoms::orphaned(), None, Vec::new(), None),
    };
    let m = put(m, atoms::outcome(), outcome.encode(env));
    let m = put(m, atoms::convergence_us(), opt_or_undefined(env, conv));
    let m = put(m, atoms::missing(), missing.encode(env));
    put(m, atoms::reason(), opt_or_undefined(env, reason))
}

// Most bounds `tracker_buckets` takes: a Prometheus histogram has a dozen.
const MAX_BOUNDS: usize = 64;

// `tracker_buckets(Ref, BoundsUs)`: the histograms as Prometheus reads
// them, at the ascending upper bounds `BoundsUs` (microseconds, at most
// 64): `{ok, #{type => Type | undefined, convergence => {Cumulative,
// Count, SumUs}, per_node => #{NodeId => {Cumulative, Count, SumUs}}}}`,
// `Cumulative` the counts at or below each bound, `type` the variable's
// CRDT type once an update or observation fixed it.
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_buckets<'a>(env: Env<'a>, r: Term<'a>, bounds: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let bounds: Option<Vec<u64>> =
        list(bounds).and_then(|l| l.iter().map(|b| b.decode::<u64>().ok()).collect());
    let bounds = match bounds {
        Some(b) if b.len() <= MAX_BOUNDS && b.windows(2).all(|w| w[0] < w[1]) => b,
        _ => return error(env, atoms::bad_opts()),
    };
    let inner = r.lock();
    let mut per_node = map_new(env);
    let mut convergence = atoms::undefined().encode(env);
    for b in inner.tracker.buckets(&bounds) {
        let t = (b.cumulative, b.count, b.sum_us).encode(env);
        match b.node {
            None => convergence = t,
            Some(n) => per_node = per_node.map_put(n.0, t).unwrap_or(per_node),
        }
    }
    let tag = match inner.tag() {
        Some(t) => crate::atoms::get(t).encode(env),
        None => atoms::undefined().encode(env),
    };
    let m = map_new(env);
    let m = put(m, atoms::type_(), tag);
    let m = put(m, atoms::convergence(), convergence);
    let m = put(m, atoms::per_node(), per_node);
    Ok((atoms::ok(), m).encode(env))
}

// `tracker_json(Ref)`: `{ok, Binary}`, the core's `Report` as JSON.
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_json<'a>(env: Env<'a>, r: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let json = r.lock().tracker.to_json();
    match json {
        Ok(s) => {
            let mut b = rustler::NewBinary::new(env, s.len());
            b.as_mut_slice().copy_from_slice(s.as_bytes());
            Ok((atoms::ok(), Term::from(b)).encode(env))
        }
        Err(_) => error(env, atoms::json()),
    }
}

// `tracker_reset(Ref)`: a new measurement (members and clocks kept).
#[rustler::nif(schedule = "DirtyCpu")]
fn tracker_reset<'a>(env: Env<'a>, r: Term<'a>) -> Reply<'a> {
    let Some(r) = res(r) else {
        return error(env, atoms::not_a_tracker());
    };
    let mut inner = r.lock();
    inner.reset();
    Ok(atoms::ok().encode(env))
}
