// Gossip simulator NIF: decode the spec map, run the core's simulator once,
// encode the report. A run is bounded by the core's caps (nodes, updates,
// nodes x updates, estimated messages; `lasp_converge_core::sim::MAX_*`),
// but still takes up to minutes, so it never runs on a scheduler: the spec
// is decoded on a dirty CPU scheduler (bounded by the caps), the run goes to
// a thread of its own, and its report comes back as a message. The caller
// holds a resource: its death (monitor) or the resource's collection raises
// the run's cancel flag, which the core reads every
// `sim::CANCEL_CHECK_EVENTS` events. At most as many runs as the machine
// has cores compute at once; the others wait for a turn, still cancellable.
//
// Every field is decoded by hand: bad input gives `{error, {bad_spec,
// Key}}`, `{error, {too_large, Key}}` or `{error, {unknown_key, Key}}`
// (Key the caller's own term), never `badarg`, never a panic, never an atom
// made from input. Erlang numbers nodes 1..N; the core 0..N-1: the
// conversion is here. Times in the spec are milliseconds (integers or
// floats), latencies microseconds, as `lasp_converge_sim` documents.
use lasp_converge_core::sim::{
    self, Detail, Fanout, Field, LatencyDist, Mode, Partition, SimError, SimReport, Spec, Updates,
    MAX_EMPIRICAL, MAX_PARTITIONS, MAX_TIME_US, MAX_UPDATES,
};
use rustler::types::map::map_new;
use rustler::types::MapIterator;
use rustler::{Encoder, Env, LocalPid, Monitor, NifResult, OwnedEnv, ResourceArc, Term};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::tracker::{opt_or_undefined, put, put_summary};

mod atoms {
    rustler::atoms! {
        ok,
        error,
        undefined,
        sent,
        cancelled,
        panicked,
        no_thread,
        bad_spec,
        too_large,
        unknown_key,
        // spec keys
        nodes,
        mode,
        state_interval,
        delta_interval,
        jitter,
        fanout,
        propagate_on_update,
        jitter_percent,
        delta_buffer,
        aligned_timers,
        timer_offsets,
        round_cost,
        service_time,
        latency,
        ack_latency,
        loss,
        partitions,
        update_rate,
        duration,
        updates,
        horizon,
        until,
        sample_every,
        max_samples,
        divergence,
        message_bytes,
        update_bytes,
        ack_bytes,
        seed,
        // values
        state_based,
        delta_based,
        all,
        constant,
        uniform,
        normal,
        lognormal,
        empirical,
        full,
        summary,
        // report
        converged,
        pending,
        unconverged,
        p50,
        p90,
        p99,
        p999,
        max,
        mean,
        clock_uncertainty_us,
        per_node,
        count,
        t_us,
        up_to_date,
        unseen,
        oldest_unseen_age_us,
        unseen_total,
        unseen_max,
        messages,
        bytes,
        full_states,
        deltas,
        acks,
        dropped,
        messages_per_update,
        bytes_per_update,
        end_us,
        events,
        sample_every_us,
    }
}

type Reply<'a> = NifResult<Term<'a>>;

/// Why a spec was refused.
enum Bad<'a> {
    NotAMap,
    Spec(rustler::Atom),
    // The caller's own key term, handed back.
    Unknown(Term<'a>),
}

fn field_atom(f: Field) -> rustler::Atom {
    match f {
        Field::Nodes => atoms::nodes(),
        Field::StateInterval => atoms::state_interval(),
        Field::Fanout => atoms::fanout(),
        Field::JitterPercent => atoms::jitter_percent(),
        Field::DeltaBuffer => atoms::delta_buffer(),
        Field::TimerOffsets => atoms::timer_offsets(),
        Field::RoundCost => atoms::round_cost(),
        Field::ServiceTime => atoms::service_time(),
        Field::Latency => atoms::latency(),
        Field::AckLatency => atoms::ack_latency(),
        Field::Loss => atoms::loss(),
        Field::Partitions => atoms::partitions(),
        Field::Updates => atoms::updates(),
        Field::Horizon => atoms::horizon(),
        Field::Until => atoms::until(),
        Field::SampleEvery => atoms::sample_every(),
        Field::MaxSamples => atoms::max_samples(),
        Field::Messages => atoms::messages(),
    }
}

// rustler's `Vec` decoder panics on an improper list; walk the cells, and
// stop past `cap` cells before allocating more.
fn list(t: Term, cap: usize) -> Option<Vec<Term>> {
    let mut out = Vec::new();
    let mut cur = t;
    while !cur.is_empty_list() {
        let (h, tail) = cur.list_get_cell().ok()?;
        if out.len() == cap {
            return None;
        }
        out.push(h);
        cur = tail;
    }
    Some(out)
}

fn num(t: Term) -> Option<f64> {
    if let Ok(i) = t.decode::<i64>() {
        return Some(i as f64);
    }
    t.decode::<f64>().ok().filter(|x| x.is_finite())
}

fn uint(t: Term) -> Option<u64> {
    t.decode::<u64>().ok()
}

// Milliseconds (integer or float, >= 0) to microseconds.
fn ms(t: Term) -> Option<u64> {
    let x = num(t)?;
    (x >= 0.0 && x * 1000.0 <= MAX_TIME_US as f64).then(|| (x * 1000.0).round() as u64)
}

fn boolean(t: Term) -> Option<bool> {
    t.decode::<bool>().ok()
}

fn tuple(t: Term) -> Option<Vec<Term>> {
    rustler::types::tuple::get_tuple(t).ok()
}

// Erlang node number 1..=N to the core's 0..N (0 stays out of range).
fn node(t: Term) -> Option<u32> {
    t.decode::<u32>().ok().and_then(|n| n.checked_sub(1))
}

fn latency(t: Term) -> Option<LatencyDist> {
    let v = tuple(t)?;
    let tag = v.first()?;
    let us = |x: &Term| uint(*x).filter(|&u| u <= MAX_TIME_US);
    match v.len() {
        2 if atoms::constant() == *tag => Some(LatencyDist::Constant(us(&v[1])?)),
        2 if atoms::empirical() == *tag => {
            let xs = list(v[1], MAX_EMPIRICAL + 1)?;
            Some(LatencyDist::Empirical(
                xs.iter().map(us).collect::<Option<Vec<u64>>>()?,
            ))
        }
        3 if atoms::uniform() == *tag => Some(LatencyDist::Uniform(us(&v[1])?, us(&v[2])?)),
        3 if atoms::normal() == *tag => Some(LatencyDist::Normal(num(v[1])?, num(v[2])?)),
        3 if atoms::lognormal() == *tag => Some(LatencyDist::LogNormal(num(v[1])?, num(v[2])?)),
        _ => None,
    }
}

fn partitions(t: Term) -> Option<Vec<Partition>> {
    let ps = list(t, MAX_PARTITIONS + 1)?;
    let mut out = Vec::with_capacity(ps.len());
    for p in ps {
        let v = tuple(p)?;
        if v.len() != 3 {
            return None;
        }
        let mut groups = Vec::new();
        for g in list(v[2], sim::MAX_NODES as usize)? {
            groups.push(
                list(g, sim::MAX_NODES as usize)?
                    .into_iter()
                    .map(node)
                    .collect::<Option<Vec<u32>>>()?,
            );
        }
        out.push(Partition {
            start_us: ms(v[0])?,
            end_us: ms(v[1])?,
            groups,
        });
    }
    Some(out)
}

fn update_list(t: Term) -> Option<Vec<(u64, u32)>> {
    let us = list(t, MAX_UPDATES as usize + 1)?;
    us.into_iter()
        .map(|u| {
            let v = tuple(u)?;
            (v.len() == 2).then_some(())?;
            Some((ms(v[0])?, node(v[1])?))
        })
        .collect()
}

fn spec_from<'a>(t: Term<'a>) -> Result<Spec, Bad<'a>> {
    let mut s = Spec::default();
    let mut rate = None;
    let mut duration = None;
    let mut listed = None;
    let mut delta_interval = None;
    let mut jitter = None;
    let mut jitter_percent = None;
    let Some(it) = MapIterator::new(t) else {
        return Err(Bad::NotAMap);
    };
    for (k, v) in it {
        macro_rules! set {
            ($key:ident, $e:expr) => {
                if atoms::$key() == k {
                    let mut f = || -> Option<_> { $e };
                    match f() {
                        Some(()) => continue,
                        None => return Err(Bad::Spec(atoms::$key())),
                    }
                }
            };
        }
        set!(nodes, {
            s.nodes = v.decode::<u32>().ok()?;
            Some(())
        });
        set!(mode, {
            s.mode = if atoms::state_based() == v {
                Mode::StateBased
            } else if atoms::delta_based() == v {
                Mode::DeltaBased
            } else {
                return None;
            };
            Some(())
        });
        set!(state_interval, {
            s.state_interval_us = ms(v)?;
            Some(())
        });
        set!(fanout, {
            s.fanout = if atoms::all() == v {
                Fanout::All
            } else {
                Fanout::Count(v.decode::<u32>().ok()?)
            };
            Some(())
        });
        set!(propagate_on_update, {
            s.propagate_on_update = boolean(v)?;
            Some(())
        });
        set!(jitter_percent, {
            jitter_percent = Some(v.decode::<u32>().ok()?);
            Some(())
        });
        set!(delta_interval, {
            delta_interval = Some(ms(v)?);
            Some(())
        });
        set!(jitter, {
            jitter = Some(boolean(v)?);
            Some(())
        });
        set!(delta_buffer, {
            s.delta_buffer = v.decode::<u32>().ok()?;
            Some(())
        });
        set!(aligned_timers, {
            s.aligned_timers = boolean(v)?;
            Some(())
        });
        set!(timer_offsets, {
            let xs = list(v, sim::MAX_NODES as usize + 1)?;
            s.timer_offsets_us = Some(xs.into_iter().map(ms).collect::<Option<Vec<u64>>>()?);
            Some(())
        });
        // Service and round costs are distributions of microseconds, shaped
        // as `latency`.
        set!(round_cost, {
            s.round_cost = latency(v)?;
            Some(())
        });
        set!(service_time, {
            s.service_time = latency(v)?;
            Some(())
        });
        set!(latency, {
            s.latency = latency(v)?;
            Some(())
        });
        set!(ack_latency, {
            s.ack_latency = Some(latency(v)?);
            Some(())
        });
        set!(loss, {
            s.loss = num(v)?;
            Some(())
        });
        set!(partitions, {
            s.partitions = partitions(v)?;
            Some(())
        });
        set!(update_rate, {
            rate = Some(num(v).filter(|r| *r >= 0.0)?);
            Some(())
        });
        set!(duration, {
            duration = Some(ms(v)?);
            Some(())
        });
        set!(updates, {
            listed = Some(update_list(v)?);
            Some(())
        });
        set!(horizon, {
            s.horizon_us = ms(v)?;
            Some(())
        });
        set!(until, {
            s.until_us = if atoms::undefined() == v {
                None
            } else {
                Some(ms(v)?)
            };
            Some(())
        });
        set!(sample_every, {
            s.sample_every_us = Some(ms(v)?);
            Some(())
        });
        set!(max_samples, {
            s.max_samples = v.decode::<u32>().ok()?;
            Some(())
        });
        set!(divergence, {
            s.detail = Some(if atoms::full() == v {
                Detail::Full
            } else if atoms::summary() == v {
                Detail::Summary
            } else {
                return None;
            });
            Some(())
        });
        set!(message_bytes, {
            s.message_bytes = uint(v)?;
            Some(())
        });
        set!(update_bytes, {
            s.update_bytes = uint(v)?;
            Some(())
        });
        set!(ack_bytes, {
            s.ack_bytes = uint(v)?;
            Some(())
        });
        set!(seed, {
            s.seed = uint(v)?;
            Some(())
        });
        return Err(Bad::Unknown(k));
    }
    // Lasp's names, as lasp_converge_tuner sets them: the replicator's one
    // timer takes `delta_interval` in delta-based mode; `jitter => false`
    // means no jitter, `true` Lasp's 1% unless `jitter_percent` says.
    if let (Mode::DeltaBased, Some(d)) = (s.mode, delta_interval) {
        s.state_interval_us = d;
    }
    s.jitter_percent = match (jitter, jitter_percent) {
        (Some(false), _) => 0,
        (_, Some(p)) => p,
        (Some(true), None) => 1,
        (None, None) => s.jitter_percent,
    };
    match (listed, rate, duration) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(Bad::Spec(atoms::updates())),
        (Some(l), None, None) => s.updates = Updates::At(l),
        (None, r, d) => {
            let Updates::Poisson {
                rate_per_s,
                duration_us,
            } = s.updates
            else {
                return Err(Bad::Spec(atoms::updates()));
            };
            s.updates = Updates::Poisson {
                rate_per_s: r.unwrap_or(rate_per_s),
                duration_us: d.unwrap_or(duration_us),
            };
        }
    }
    Ok(s)
}

fn encode<'a>(env: Env<'a>, r: &SimReport) -> Term<'a> {
    let s = &r.stats;
    let mut per_node = map_new(env);
    for n in &s.per_node {
        let m = map_new(env);
        let m = put(m, atoms::p50(), opt_or_undefined(env, n.latency.p50_us));
        let m = put(m, atoms::p99(), opt_or_undefined(env, n.latency.p99_us));
        let m = put(m, atoms::max(), opt_or_undefined(env, n.latency.max_us));
        let m = put(m, atoms::pending(), n.pending.encode(env));
        let m = put(m, atoms::count(), n.latency.count.encode(env));
        per_node = per_node.map_put(n.node + 1, m).unwrap_or(per_node);
    }
    let mut samples = Vec::with_capacity(r.divergence.len());
    for d in &r.divergence {
        let mut nodes = map_new(env);
        for l in &d.nodes {
            let m = map_new(env);
            let m = put(m, atoms::unseen(), l.unseen.encode(env));
            let m = put(
                m,
                atoms::oldest_unseen_age_us(),
                opt_or_undefined(env, l.oldest_unseen_age_us),
            );
            nodes = nodes.map_put(l.node + 1, m).unwrap_or(nodes);
        }
        let m = map_new(env);
        let m = put(m, atoms::t_us(), d.t_us.encode(env));
        let m = put(m, atoms::up_to_date(), d.up_to_date.encode(env));
        let m = put(m, atoms::unseen_total(), d.unseen_total.encode(env));
        let m = put(m, atoms::unseen_max(), d.unseen_max.encode(env));
        let m = put(
            m,
            atoms::oldest_unseen_age_us(),
            opt_or_undefined(env, d.oldest_unseen_age_us),
        );
        let m = put(m, atoms::nodes(), nodes);
        samples.push(m);
    }
    let m = map_new(env);
    let m = put(m, atoms::updates(), s.updates.encode(env));
    let m = put(m, atoms::converged(), s.converged.encode(env));
    let m = put(m, atoms::pending(), s.pending.encode(env));
    let m = put(m, atoms::unconverged(), s.unconverged.encode(env));
    let m = put_summary(env, m, &s.latency);
    // Simulated time is exact: no clock error.
    let m = put(m, atoms::clock_uncertainty_us(), 0u64.encode(env));
    let m = put(m, atoms::per_node(), per_node);
    let m = put(m, atoms::divergence(), samples.encode(env));
    let m = put(m, atoms::sample_every_us(), r.sample_every_us.encode(env));
    let m = put(m, atoms::messages(), r.messages.encode(env));
    let m = put(m, atoms::bytes(), r.bytes.encode(env));
    let m = put(m, atoms::full_states(), r.full_states.encode(env));
    let m = put(m, atoms::deltas(), r.deltas.encode(env));
    let m = put(m, atoms::acks(), r.acks.encode(env));
    let m = put(m, atoms::dropped(), r.dropped.encode(env));
    let m = put(
        m,
        atoms::messages_per_update(),
        r.messages_per_update.encode(env),
    );
    let m = put(m, atoms::bytes_per_update(), r.bytes_per_update.encode(env));
    let m = put(m, atoms::end_us(), r.end_us.encode(env));
    put(m, atoms::events(), r.events.encode(env))
}

fn reply<'a>(env: Env<'a>, r: Result<SimReport, SimError>) -> Term<'a> {
    let why = match r {
        Ok(r) => return (atoms::ok(), encode(env, &r)).encode(env),
        Err(SimError::Bad(f)) => (atoms::bad_spec(), field_atom(f)).encode(env),
        Err(SimError::TooLarge(f)) => (atoms::too_large(), field_atom(f)).encode(env),
        Err(SimError::Cancelled) => atoms::cancelled().encode(env),
    };
    (atoms::error(), why).encode(env)
}

fn refused<'a>(env: Env<'a>, b: Bad<'a>) -> Term<'a> {
    let why = match b {
        Bad::NotAMap => atoms::bad_spec().encode(env),
        Bad::Spec(k) => (atoms::bad_spec(), k).encode(env),
        Bad::Unknown(k) => (atoms::unknown_key(), k).encode(env),
    };
    (atoms::error(), why).encode(env)
}

// One run, as its caller holds it. `done` is set under the lock by whoever
// comes first: the thread when it sends the report, `sim_cancel` or the
// caller's death when they cancel; so after `sim_cancel` the caller knows
// whether a report is on its way.
pub struct ExSimRun {
    cancel: Arc<AtomicBool>,
    done: Arc<Mutex<bool>>,
}

fn lock(m: &Mutex<bool>) -> MutexGuard<'_, bool> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ExSimRun {
    // True when the report was already sent.
    fn cancel(&self) -> bool {
        let mut done = lock(&self.done);
        self.cancel.store(true, Ordering::Relaxed);
        std::mem::replace(&mut *done, true)
    }
}

impl Drop for ExSimRun {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[rustler::resource_impl]
impl rustler::Resource for ExSimRun {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _mon: Monitor) {
        self.cancel();
    }
}

// Run threads alive (computing or waiting for a turn), for tests and
// `lasp_converge_sim:active/0`.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

struct Active;

impl Active {
    fn enter() -> Active {
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        Active
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

// Turns to compute: as many as the machine has cores, as the VM sizes its
// dirty CPU pool, so runs never take more CPU than the dirty pool could.
static TURNS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

struct Turn;

impl Turn {
    // Wait for a turn; `None` once cancelled while waiting.
    fn take(cancel: &AtomicBool) -> Option<Turn> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut busy = TURNS.0.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            if *busy < cores {
                *busy += 1;
                return Some(Turn);
            }
            busy = TURNS
                .1
                .wait_timeout(busy, Duration::from_millis(20))
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut busy = TURNS.0.lock().unwrap_or_else(|p| p.into_inner());
        *busy = busy.saturating_sub(1);
        TURNS.1.notify_one();
    }
}

// `sim_start(Spec, Tag)`: `{ok, Run}`, the report to follow as `{Tag,
// {ok, Report} | {error, Reason}}` to the caller unless cancelled; or
// `{error, Reason}` for a spec refused at decoding.
#[rustler::nif(schedule = "DirtyCpu")]
fn sim_start<'a>(env: Env<'a>, spec: Term<'a>, tag: Term<'a>) -> Reply<'a> {
    let spec = match spec_from(spec) {
        Ok(s) => s,
        Err(b) => return Ok(refused(env, b)),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let done = Arc::new(Mutex::new(false));
    let run = ResourceArc::new(ExSimRun {
        cancel: cancel.clone(),
        done: done.clone(),
    });
    let pid = env.pid();
    let _ = run.monitor(Some(env), &pid);
    let mut owned = OwnedEnv::new();
    let tag = owned.save(tag);
    let active = Active::enter();
    let spawned = std::thread::Builder::new()
        .name("lasp_converge_sim".into())
        .spawn(move || {
            let _active = active;
            let Some(turn) = Turn::take(&cancel) else {
                return;
            };
            let out = catch_unwind(AssertUnwindSafe(|| sim::run_cancellable(&spec, &cancel)));
            drop(turn);
            drop(spec);
            if matches!(out, Ok(Err(SimError::Cancelled))) {
                return;
            }
            let mut done = lock(&done);
            if *done {
                return;
            }
            *done = true;
            let _ = owned.send_and_clear(&pid, |env| {
                let r = match out {
                    Ok(r) => reply(env, r),
                    Err(_) => (atoms::error(), atoms::panicked()).encode(env),
                };
                (tag.load(env), r).encode(env)
            });
        });
    match spawned {
        Ok(_) => Ok((atoms::ok(), run).encode(env)),
        Err(_) => {
            run.cancel();
            Ok((atoms::error(), atoms::no_thread()).encode(env))
        }
    }
}

// `sim_cancel(Run)`: stop it; `sent` when its report was already sent (it
// is in the caller's mailbox or on its way), else `ok`.
#[rustler::nif]
fn sim_cancel(run: ResourceArc<ExSimRun>) -> rustler::Atom {
    if run.cancel() {
        atoms::sent()
    } else {
        atoms::ok()
    }
}

// `sim_active()`: run threads alive in this VM.
#[rustler::nif]
fn sim_active() -> usize {
    ACTIVE.load(Ordering::Relaxed)
}
