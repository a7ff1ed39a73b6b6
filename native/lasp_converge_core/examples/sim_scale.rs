//! Times the simulator at 10,000 nodes and 10,000 updates (the scale goal):
//! `cargo run --release --example sim_scale [mode]`.
use std::time::Instant;

use lasp_converge_core::sim::{run, Fanout, LatencyDist, Mode, Spec, Updates};

fn main() {
    let mode = match std::env::args().nth(1).as_deref() {
        Some("delta_based") => Mode::DeltaBased,
        _ => Mode::StateBased,
    };
    let spec = Spec {
        nodes: 10_000,
        mode,
        state_interval_us: 1_000_000,
        fanout: Fanout::Count(3),
        latency: LatencyDist::LogNormal(7.0, 0.5),
        updates: Updates::Poisson {
            rate_per_s: 1000.0,
            duration_us: 10_000_000,
        },
        seed: 1,
        ..Spec::default()
    };
    let t = Instant::now();
    let r = match run(&spec) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("refused: {e:?}");
            std::process::exit(1);
        }
    };
    let s = &r.stats;
    println!(
        "{:?}: {} nodes, {} updates ({} converged) in {:.2} s: p50 {:?} us, p99 {:?} us, {} messages ({:.1}/update), {} events",
        mode,
        spec.nodes,
        s.updates,
        s.converged,
        t.elapsed().as_secs_f64(),
        s.latency.p50_us,
        s.latency.p99_us,
        r.messages,
        r.messages_per_update,
        r.events
    );
}
