//! Timing of the resident replica paths on a 10k gset (from_term, to_binary,
//! from_binary, merge of a replica and of a binary, to_term), in one process.
//! `cargo run --release -p lasp_converge_core --example replica_timing`
use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm};
use lasp_converge_core::replica::Replica;
use lasp_converge_core::term::{Builder, Term};
use std::time::Instant;
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
    let t0 = Instant::now();
    let r = Replica::from_term(&t).unwrap();
    println!("from_term {:?}", t0.elapsed());
    let t0 = Instant::now();
    let bin = r.to_binary();
    println!("to_binary {:?} {} bytes", t0.elapsed(), bin.len());
    let t0 = Instant::now();
    let r2 = Replica::from_binary(&bin).unwrap();
    println!("from_binary {:?}", t0.elapsed());
    let mut r3 = r.clone();
    let t0 = Instant::now();
    r3.merge(&r2).unwrap();
    println!("merge {:?}", t0.elapsed());
    let mut r4 = r.clone();
    let t0 = Instant::now();
    r4.merge_binary(&bin, &|_| true).unwrap();
    println!("merge_binary {:?}", t0.elapsed());
    let t0 = Instant::now();
    let _ = r3.to_term();
    println!("to_term {:?}", t0.elapsed());
}
