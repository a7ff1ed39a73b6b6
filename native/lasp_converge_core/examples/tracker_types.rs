//! Core-side timing of `Tracked::observed` per type, as the tracker bench's
//! type rows (bench/lasp_converge_tracker_bench.erl, `type_rows/0`) without
//! the NIF: 10,000 updates pending, nodes 1 and 2 holding the first half,
//! then 30 changes of 10 (node 1 a whole state, node 2 the delta).
//! `cargo run --release -p lasp_converge_core --example tracker_types [type ...]`
use std::time::Instant;

use lasp_converge_core::api;
use lasp_converge_core::decode::Limits;
use lasp_converge_core::lattice::MutateCx;
use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
use lasp_converge_core::replica::Replica;
use lasp_converge_core::term::Builder;
use lasp_converge_core::tracker::nodes::Tracked;
use lasp_converge_core::tracker::{Config, NodeId};

const PENDING: usize = 10_000;
const CHANGE: usize = 10;
const RUNS: usize = 30;

struct Cx(u64);
impl MutateCx<T> for Cx {
    type B = OwnedBuilder;
    fn builder(&self) -> &OwnedBuilder {
        &OwnedBuilder
    }
    fn token(&mut self) -> T {
        self.0 += 1;
        OwnedBuilder.binary(&self.0.to_be_bytes())
    }
}

const TYPES: [&str; 19] = [
    "state_gcounter",
    "state_pncounter",
    "state_gset",
    "state_twopset",
    "state_orset",
    "state_awset",
    "state_lwwregister",
    "state_boolean",
    "state_ivar",
    "state_max_int",
    "state_mvregister",
    "state_ewflag",
    "state_dwflag",
    "state_lexcounter",
    "state_gmap",
    "state_pair",
    "state_awmap",
    "state_awset_ps",
    "state_bcounter",
];

fn op(ty: &str, i: i64, e: &T) -> T {
    let b = OwnedBuilder;
    let a = T::atom;
    match ty {
        "state_gcounter" | "state_max_int" | "state_lexcounter" | "state_bcounter" => {
            a("increment")
        }
        "state_pncounter" if i % 2 == 0 => a("decrement"),
        "state_pncounter" => a("increment"),
        "state_boolean" => a("true"),
        "state_ewflag" | "state_dwflag" if i % 2 == 0 => a("enable"),
        "state_ewflag" | "state_dwflag" => a("disable"),
        "state_ivar" => b.pair(a("set"), e.clone()),
        "state_lwwregister" | "state_mvregister" => b.tuple(&[a("set"), T::int(i), e.clone()]),
        "state_gmap" => b.tuple(&[a("apply"), T::int(i % 100), a("increment")]),
        "state_pair" => b.pair(a("fst"), b.pair(a("set"), e.clone())),
        "state_awmap" => b.tuple(&[a("apply"), T::int(i % 100), b.pair(a("add"), e.clone())]),
        _ => b.pair(a("add"), e.clone()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn row(ty: &str) {
    let b = OwnedBuilder;
    let lim = Limits::dirty();
    let mut cx = Cx(0);
    let s0 = api::new(&b, &T::atom(ty)).unwrap();
    // The states are built as resident replicas (a mutation of a keyed one
    // costs O(log n)), the deltas by their `delta_mutate`.
    let mut rep = Replica::from_term(&s0).unwrap();
    let mut prev = s0.clone();
    let mut ds = Vec::with_capacity(PENDING);
    for i in 1..=PENDING as i64 {
        let actor = match i % 3 {
            0 => T::tuple([T::atom("lasp@host"), T::int(i % 8)]),
            1 => T::bin(format!("actor-{}", i % 8).as_bytes()),
            _ => T::atom(&format!("node{}", i % 8)),
        };
        let e = match i % 3 {
            0 => T::int(i),
            1 => T::bin(&(i as u32).to_be_bytes()),
            _ => T::tuple([T::int(i), T::atom("x")]),
        };
        let actor = if ty == "state_awset_ps" {
            T::tuple([T::bin(b"obj"), actor])
        } else {
            actor
        };
        let d = match rep.mutate(&op(ty, i, &e), &actor, &mut cx) {
            Ok(d) => d.encode(&b),
            Err(_) => prev.clone(),
        };
        prev = d.clone();
        ds.push(d);
    }
    let mut t = Tracked::new(Config {
        max_pending: 2 * PENDING,
        horizon_us: 1 << 40,
        ..Config::default()
    });
    let ns = [NodeId(0), NodeId(1), NodeId(2)];
    for n in ns {
        t.tracker.clock_mut().set_exact(n);
    }
    assert!(t.set_members(0, &ns));
    for (i, d) in ds.iter().enumerate() {
        t.updated(NodeId(0), i as u64 + 1, i as i64 + 1, d).unwrap();
    }
    let delta_only = std::env::var("DELTA_ONLY").is_ok();
    // `N1_DELTA=1`: node 1 reports the change too, not its whole state.
    let n1_delta = std::env::var("N1_DELTA").is_ok();
    let mut s1 = Replica::from_term(&s0).unwrap();
    for d in &ds[..PENDING / 2] {
        s1.merge(&Replica::from_term(d).unwrap()).unwrap();
    }
    let half = s1.to_term();
    if std::env::var("PARTS").is_ok() {
        parts(&half, &ds);
    }
    let ts0 = PENDING as i64 + 1;
    t.observed(NodeId(1), ts0, &half, false).unwrap();
    t.observed(NodeId(2), ts0, &half, true).unwrap();
    let repeat: usize = std::env::var("REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let (mut ts, mut td, mut cs, mut cd, mut seen) = (vec![], vec![], vec![], vec![], 0);
    // `RUNS=n` (at most 500): more changes (for a profiler).
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .map_or(RUNS, |r: usize| r.min(PENDING / 2 / CHANGE));
    for k in 0..runs {
        let start = PENDING / 2 + k * CHANGE;
        let batch = &ds[start..start + CHANGE];
        let mut gain = batch[0].clone();
        for d in &batch[1..] {
            gain = api::merge(&b, &gain, d, lim).unwrap();
        }
        if !delta_only {
            s1.merge(&Replica::from_term(&gain).unwrap()).unwrap();
        }
        let s1 = if delta_only {
            gain.clone()
        } else {
            s1.to_term()
        };
        let at = ts0 + 1 + k as i64;
        let t0 = Instant::now();
        // `DELTA_ONLY=1`: node 1 reports nothing (for a profiler).
        let o1 = if delta_only {
            Default::default()
        } else if n1_delta {
            t.observed(NodeId(1), at, &gain, true).unwrap()
        } else {
            t.observed(NodeId(1), at, &s1, false).unwrap()
        };
        ts.push(t0.elapsed().as_secs_f64() * 1e6);
        let t0 = Instant::now();
        let o2 = t.observed(NodeId(2), at, &gain, true).unwrap();
        td.push(t0.elapsed().as_secs_f64() * 1e6);
        // `REPEAT=n`: the delta observation n times more (for a profiler;
        // the repeats hold nothing new).
        for _ in 0..repeat {
            t.observed(NodeId(2), at, &gain, true).unwrap();
        }
        cs.push(o1.checked as f64);
        cd.push(o2.checked as f64);
        seen += o2.newly_seen;
    }
    println!(
        "{ty:<20} state {:>9.1} us {:>6} checks  delta {:>8.1} us {:>6} checks  light {}  seen {seen}",
        median(ts),
        median(cs),
        median(td),
        median(cd),
        t.light(NodeId(2))
    );
}

// `PARTS=1`: the pieces of a delta observation, timed alone: decoding the
// change, listing its atoms, joining it into a resident copy of the state.
fn parts(half: &T, ds: &[T]) {
    use lasp_converge_core::decode::Decoder;
    use lasp_converge_core::tracker::witness;
    use lasp_converge_core::Crdt;
    let b = OwnedBuilder;
    let lim = Limits::dirty();
    let mut rep = Replica::from_term(half).unwrap();
    let (mut dec, mut atoms, mut join) = (vec![], vec![], vec![]);
    for k in 0..RUNS {
        let start = PENDING / 2 + k * CHANGE;
        let mut gain = ds[start].clone();
        for d in &ds[start + 1..start + CHANGE] {
            gain = api::merge(&b, &gain, d, lim).unwrap();
        }
        let t0 = Instant::now();
        let c = Crdt::decode(&gain, &mut Decoder::new(lim)).unwrap();
        dec.push(t0.elapsed().as_secs_f64() * 1e6);
        let t0 = Instant::now();
        let _ = witness::atoms_of_term(&gain);
        atoms.push(t0.elapsed().as_secs_f64() * 1e6);
        let t0 = Instant::now();
        rep.merge_crdt_ref(&c).unwrap();
        join.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "  parts: decode {:.1} us, atoms {:.1} us, join {:.1} us",
        median(dec),
        median(atoms),
        median(join)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let types: Vec<&str> = if args.is_empty() {
        TYPES.to_vec()
    } else {
        args.iter().map(|s| s.as_str()).collect()
    };
    for ty in types {
        row(ty);
    }
}
