//! Timing of the resident replica paths on a 10k gset (from_term, to_binary,
//! from_binary, merge of a replica and of a binary, to_term), in one process:
//! the median of 201 runs of each.
//! `cargo run --release -p lasp_converge_core --example replica_timing`
use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm};
use lasp_converge_core::replica::Replica;
use lasp_converge_core::term::{Builder, Term};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn median(mut f: impl FnMut()) -> Duration {
    let mut ts: Vec<Duration> = (0..201)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed()
        })
        .collect();
    ts.sort();
    ts[ts.len() / 2]
}

fn main() {
    let b = OwnedBuilder;
    let mut es: Vec<OwnedTerm> = (1..=10000i64)
        .map(|i| match i % 3 {
            0 => OwnedTerm::int(i),
            1 => OwnedTerm::bin(format!("elem-{i}").as_bytes()),
            _ => OwnedTerm::tuple([OwnedTerm::atom("item"), OwnedTerm::int(i)]),
        })
        .collect();
    es.sort_by(|a, b| a.compare(b));
    let t = b.pair(OwnedTerm::atom("state_gset"), b.list(&es));
    // The receiver lacks ten of the sender's elements.
    let local = b.pair(OwnedTerm::atom("state_gset"), b.list(&es[10..]));
    let r = Replica::from_term(&t).unwrap();
    let l = Replica::from_term(&local).unwrap();
    let bin = r.to_binary();
    println!("10k gset, {} bytes", bin.len());
    println!(
        "from_term    {:?}",
        median(|| drop(black_box(Replica::from_term(&t).unwrap())))
    );
    println!(
        "to_binary    {:?}",
        median(|| drop(black_box(r.to_binary())))
    );
    println!(
        "from_binary  {:?}",
        median(|| drop(black_box(Replica::from_binary(&bin).unwrap())))
    );
    let r2 = Replica::from_binary(&bin).unwrap();
    let mut m = l.clone();
    println!("merge        {:?}", median(|| m.merge(&r2).unwrap()));
    // Ten new entries the first time, then none: the steady state of a
    // receiver that is up to date.
    let mut m = l.clone();
    println!(
        "merge_binary {:?}",
        median(|| m.merge_binary(&bin, &|_| true).unwrap())
    );
    println!("to_term      {:?}", median(|| drop(black_box(r.to_term()))));
}
