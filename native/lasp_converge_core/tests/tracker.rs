//! Convergence tracker: visibility, membership, horizon, clocks, memory
//! bounds, the witness index, and percentiles against brute force.

use std::collections::HashSet;

use lasp_converge_core::tracker::{
    Config, Expiry, Filter, NodeId, Outcome, Registered, Tracker, Witness,
};
use proptest::prelude::*;

/// A witness standing for "element `id` was added": a replica's state is the
/// set of ids it holds.
#[derive(Clone, Debug)]
struct Add {
    id: u64,
    keyed: bool,
}

impl Witness for Add {
    fn key(&self) -> Option<u64> {
        self.keyed.then_some(self.id)
    }
}

fn add(id: u64) -> Add {
    Add { id, keyed: true }
}

const A: NodeId = NodeId(1);
const B: NodeId = NodeId(2);
const C: NodeId = NodeId(3);

/// A tracker whose nodes all share the reference clock.
fn tracker(config: Config, nodes: &[NodeId]) -> Tracker<Add> {
    let mut t = Tracker::new(config);
    for &n in nodes {
        t.clock_mut().set_exact(n);
    }
    t.set_members(0, nodes);
    t
}

fn holds(state: &HashSet<u64>) -> impl FnMut(&Add) -> bool + '_ {
    move |w| state.contains(&w.id)
}

fn set(ids: impl IntoIterator<Item = u64>) -> HashSet<u64> {
    ids.into_iter().collect()
}

fn assert_accounted(t: &Tracker<Add>) {
    let s = t.stats();
    assert_eq!(
        s.updates,
        s.converged + s.unconverged + s.orphaned + s.pending,
        "{s:?}"
    );
}

#[test]
fn update_converges_when_all_members_saw_it() {
    let mut t = tracker(Config::default(), &[A, B, C]);
    assert_eq!(
        t.updated(A, 1, 1_000, add(1)),
        Registered::New { finished: false }
    );
    let s1 = set([1]);
    let o = t.observed(B, 3_000, Filter::All, holds(&s1));
    assert_eq!((o.checked, o.newly_seen, o.converged), (1, 1, 0));
    let o = t.observed(C, 6_000, Filter::All, holds(&s1));
    assert_eq!(o.converged, 1);
    let s = t.stats();
    assert_eq!((s.updates, s.converged, s.pending), (1, 1, 0));
    assert_eq!(s.latency.max_us, Some(5_000));
    let b = s.per_node.iter().find(|n| n.node == B).unwrap();
    assert_eq!((b.latency.count, b.latency.max_us), (1, Some(2_000)));
    let a = s.per_node.iter().find(|n| n.node == A).unwrap();
    assert_eq!(
        a.latency.count, 0,
        "the origin's own visibility is not a latency"
    );
    match &t.records()[0].outcome {
        Outcome::Converged { convergence_us } => assert_eq!(*convergence_us, 5_000),
        o => panic!("{o:?}"),
    }
}

#[test]
fn observation_before_announcement_counts_at_that_observation() {
    let mut t = tracker(Config::default(), &[A, B, C]);
    // B and C merge A's state before A's announcement reaches the tracker.
    let b_state = set([9]);
    let c_state = set([]);
    t.observed(B, 2_000, Filter::All, holds(&b_state));
    t.observed(C, 2_500, Filter::All, holds(&c_state));
    let r = t.updated_with(A, 1, 1_000, add(9), |n, w| match n {
        B => b_state.contains(&w.id),
        C => c_state.contains(&w.id),
        _ => unreachable!("the origin is not asked"),
    });
    assert_eq!(r, Registered::New { finished: false });
    assert_eq!(
        t.stats()
            .per_node
            .iter()
            .find(|n| n.node == C)
            .unwrap()
            .pending,
        1
    );
    let c_state = set([9]);
    t.observed(C, 4_000, Filter::Changed(&[9]), holds(&c_state));
    let s = t.stats();
    assert_eq!((s.converged, s.latency.max_us), (1, Some(3_000)));
    let rec = &t.records()[0];
    let b_seen = rec.seen.iter().find(|x| x.node == B).unwrap();
    assert_eq!(b_seen.ts_us, 2_000);
}

#[test]
fn announcement_after_every_node_saw_it_converges_at_once() {
    let mut t = tracker(Config::default(), &[A, B]);
    let b_state = set([5]);
    t.observed(B, 2_000, Filter::All, holds(&b_state));
    let r = t.updated_with(A, 1, 1_500, add(5), |_, w| b_state.contains(&w.id));
    assert_eq!(r, Registered::New { finished: true });
    assert_eq!(t.stats().latency.max_us, Some(500));
}

#[test]
fn duplicate_observations_keep_first_seen() {
    let mut t = tracker(Config::default(), &[A, B, C]);
    t.updated(A, 1, 0, add(1));
    let st = set([1]);
    assert_eq!(t.observed(B, 1_000, Filter::All, holds(&st)).newly_seen, 1);
    let again = t.observed(B, 5_000, Filter::All, holds(&st));
    assert_eq!(
        (again.checked, again.newly_seen),
        (0, 0),
        "an update seen by B is not checked again for B"
    );
    t.observed(C, 2_000, Filter::All, holds(&st));
    assert_eq!(t.stats().latency.max_us, Some(2_000));
    let b = t
        .stats()
        .per_node
        .into_iter()
        .find(|n| n.node == B)
        .unwrap();
    assert_eq!(b.latency.max_us, Some(1_000));
}

#[test]
fn reordered_earlier_observation_moves_first_seen_back() {
    let mut t = tracker(Config::default(), &[A, B, C]);
    t.updated(A, 1, 0, add(1));
    let st = set([1]);
    t.observed(B, 5_000, Filter::All, holds(&st));
    // B's earlier observation is delivered late.
    let o = t.observed(B, 3_000, Filter::All, holds(&st));
    assert_eq!((o.checked, o.newly_seen), (1, 0));
    t.observed(C, 4_000, Filter::All, holds(&st));
    assert_eq!(t.stats().latency.max_us, Some(4_000));
    assert_eq!(t.records()[0].seen[1].ts_us, 3_000);
}

#[test]
fn duplicate_announcements_are_ignored_even_after_convergence() {
    let mut t = tracker(Config::default(), &[A, B]);
    t.updated(A, 1, 0, add(1));
    assert_eq!(t.updated(A, 1, 10, add(1)), Registered::Duplicate);
    t.observed(B, 100, Filter::All, holds(&set([1])));
    assert_eq!(t.updated(A, 1, 200, add(1)), Registered::Duplicate);
    // Same seq from another origin is another update.
    assert!(matches!(
        t.updated(B, 1, 300, add(2)),
        Registered::New { .. }
    ));
    let s = t.stats();
    assert_eq!(
        (s.updates, s.duplicates, s.converged, s.pending),
        (2, 2, 1, 1)
    );
}

#[test]
fn one_state_covers_many_updates() {
    let mut t = tracker(Config::default(), &[A, B]);
    for i in 0..500 {
        t.updated(A, i, 1_000 + i as i64, add(i));
    }
    let st = set(0..500);
    let o = t.observed(B, 10_000, Filter::All, holds(&st));
    assert_eq!((o.checked, o.newly_seen, o.converged), (500, 500, 500));
    let s = t.stats();
    assert_eq!((s.converged, s.pending), (500, 0));
    assert_eq!(s.latency.max_us, Some(9_000));
    assert_accounted(&t);
}

#[test]
fn late_joiner_is_excluded_from_older_updates() {
    let mut t = tracker(Config::default(), &[A, B]);
    t.clock_mut().set_exact(C);
    t.updated(A, 1, 1_000, add(1));
    t.set_members(2_000, &[A, B, C]);
    t.updated(A, 2, 3_000, add(2));
    t.observed(B, 4_000, Filter::All, holds(&set([2])));
    // Update 2 postdates C's join: it waits for C. Update 1 waits for B only.
    let s = t.stats();
    assert_eq!((s.converged, s.pending), (0, 2));
    let c = s.per_node.iter().find(|n| n.node == C).unwrap();
    assert_eq!(c.pending, 1);
    // C catches up on both; update 1 still waits for B.
    t.observed(C, 9_000, Filter::All, holds(&set([1, 2])));
    let s = t.stats();
    assert_eq!(
        (s.converged, s.pending, s.latency.max_us),
        (1, 1, Some(6_000))
    );
    t.observed(B, 10_000, Filter::All, holds(&set([1, 2])));
    let s = t.stats();
    assert_eq!(
        (s.converged, s.pending, s.latency.max_us),
        (2, 0, Some(9_000))
    );
    // C's histogram holds update 2 only, not its catch-up on update 1, though
    // its record shows when C got it.
    let c = s.per_node.iter().find(|n| n.node == C).unwrap();
    assert_eq!((c.latency.count, c.latency.max_us), (1, Some(6_000)));
    let rec1 = t.records().iter().find(|r| r.id.seq == 1).unwrap();
    assert!(rec1.seen.iter().any(|x| x.node == C && x.ts_us == 9_000));
}

#[test]
fn join_counts_updates_stamped_after_it_even_if_announced_before() {
    let mut t = tracker(Config::default(), &[A, B]);
    t.clock_mut().set_exact(C);
    t.updated(A, 1, 5_000, add(1));
    t.set_members(4_000, &[A, B, C]);
    t.observed(B, 6_000, Filter::All, holds(&set([1])));
    assert_eq!(t.stats().pending, 1, "C joined before the update's time");
}

#[test]
fn node_leaving_releases_its_pending_updates() {
    let mut t = tracker(Config::default(), &[A, B, C]);
    t.updated(A, 1, 0, add(1));
    t.updated(A, 2, 0, add(2));
    t.observed(B, 1_000, Filter::All, holds(&set([1, 2])));
    t.observed(C, 2_000, Filter::All, holds(&set([1])));
    assert_eq!(t.stats().pending, 1);
    // C crashes before seeing update 2.
    t.set_members(3_000, &[A, B]);
    let s = t.stats();
    assert_eq!((s.converged, s.pending, s.unconverged), (2, 0, 0));
    // Update 2 converged over A and B: B saw it at 1 ms.
    match &t.records()[1].outcome {
        Outcome::Converged { convergence_us } => assert_eq!(*convergence_us, 1_000),
        o => panic!("{o:?}"),
    }
    assert!(!s.per_node.iter().find(|n| n.node == C).unwrap().live);
}

#[test]
fn updates_are_orphaned_when_every_member_left() {
    let mut t = tracker(Config::default(), &[A, B]);
    t.updated(A, 1, 0, add(1));
    t.set_members(10, &[]);
    let s = t.stats();
    assert_eq!((s.orphaned, s.pending, s.converged), (1, 0, 0));
    assert_eq!(t.records()[0].outcome, Outcome::Orphaned);
    assert_accounted(&t);
}

#[test]
fn rejoining_node_joins_anew() {
    let mut t = tracker(Config::default(), &[A, B, C]);
    t.set_members(100, &[A, B]);
    t.updated(A, 1, 200, add(1));
    t.set_members(300, &[A, B, C]);
    t.observed(B, 400, Filter::All, holds(&set([1])));
    assert_eq!(
        t.stats().converged,
        1,
        "C left before the update and rejoined after"
    );
}

#[test]
fn horizon_moves_unseen_updates_to_unconverged() {
    let cfg = Config {
        horizon_us: 1_000_000,
        ..Config::default()
    };
    let mut t = tracker(cfg, &[A, B, C]);
    t.updated(A, 1, 0, add(1));
    t.updated(A, 2, 500_000, add(2));
    t.observed(B, 600_000, Filter::All, holds(&set([1, 2])));
    t.tick(1_000_000);
    assert_eq!(
        t.stats().pending,
        2,
        "exactly at the horizon is not past it"
    );
    t.tick(1_000_001);
    let s = t.stats();
    assert_eq!((s.unconverged, s.pending), (1, 1));
    match &t.records()[0].outcome {
        Outcome::Unconverged { reason, missing } => {
            assert_eq!(*reason, Expiry::Horizon);
            assert_eq!(missing, &vec![C]);
        }
        o => panic!("{o:?}"),
    }
    // B's visibility still counts in its own histogram.
    let b = s.per_node.iter().find(|n| n.node == B).unwrap();
    assert_eq!(b.latency.count, 1);
    // Any later event moves the clock too.
    t.observed(B, 1_600_000, Filter::All, holds(&set([1, 2])));
    assert_eq!(t.stats().unconverged, 2);
    assert_accounted(&t);
}

#[test]
fn announcement_older_than_horizon_is_unconverged_at_once() {
    let cfg = Config {
        horizon_us: 1_000,
        ..Config::default()
    };
    let mut t = tracker(cfg, &[A, B]);
    t.tick(10_000);
    assert_eq!(
        t.updated(A, 1, 0, add(1)),
        Registered::New { finished: true }
    );
    assert_eq!(t.stats().unconverged, 1);
}

#[test]
fn pending_cap_counts_oldest_as_unconverged() {
    let cfg = Config {
        max_pending: 100,
        ..Config::default()
    };
    let mut t = tracker(cfg, &[A, B]);
    for i in 0..150 {
        t.updated(A, i, i as i64, add(i));
    }
    let s = t.stats();
    assert_eq!(
        (s.pending, s.unconverged, s.unconverged_capacity),
        (100, 50, 50)
    );
    match &t.records()[0].outcome {
        Outcome::Unconverged { reason, .. } => assert_eq!(*reason, Expiry::Capacity),
        o => panic!("{o:?}"),
    }
    assert_eq!(t.records()[0].id.seq, 0, "the oldest go first");
    assert_accounted(&t);
}

#[test]
fn negative_latency_from_clock_error_is_clamped() {
    let mut t = tracker(Config::default(), &[A, B]);
    t.updated(A, 1, 5_000, add(1));
    t.observed(B, 4_000, Filter::All, holds(&set([1])));
    let s = t.stats();
    // B's own latency is -1 ms (clamped); convergence is max(A at 5 ms, B
    // at 4 ms) - 5 ms = 0, not negative.
    assert_eq!(
        (s.converged, s.latency.max_us, s.negative_clamped),
        (1, Some(0), 1)
    );
}

#[test]
fn unsynced_nodes_are_reported() {
    let mut t: Tracker<Add> = Tracker::new(Config::default());
    t.clock_mut().set_exact(A);
    t.set_members(0, &[A, B]);
    t.updated(A, 1, 0, add(1));
    t.observed(B, 10, Filter::All, holds(&set([1])));
    let s = t.stats();
    assert_eq!(s.unsynced_nodes, vec![B]);
    assert_eq!(s.clock_uncertainty_us, 0);
}

// ---- divergence ----

#[test]
fn divergence_samples_count_unseen_and_oldest_age() {
    let cfg = Config {
        sample_every_us: 1_000,
        ..Config::default()
    };
    let mut t = tracker(cfg, &[A, B, C]);
    t.tick(500);
    t.updated(A, 1, 1_500, add(1));
    t.updated(A, 2, 2_500, add(2));
    t.observed(B, 3_200, Filter::All, holds(&set([1, 2])));
    t.observed(C, 4_100, Filter::All, holds(&set([1])));
    t.tick(5_000);
    let d: Vec<_> = t.divergence().iter().collect();
    let times: Vec<i64> = d.iter().map(|s| s.t_us).collect();
    assert_eq!(times, vec![1_000, 2_000, 3_000, 4_000, 5_000]);
    // t=1000: nothing pending.
    assert_eq!(d[0].up_to_date, 1.0);
    // t=3000: B and C lack updates 1 and 2; the oldest is 1.5 ms old.
    let b3 = d[2].nodes.iter().find(|l| l.node == B).unwrap();
    assert_eq!((b3.unseen, b3.oldest_unseen_age_us), (2, Some(1_500)));
    assert!((d[2].up_to_date - 1.0 / 3.0).abs() < 1e-9);
    // t=5000: B up to date; C lacks update 2, 2.5 ms old.
    let c5 = d[4].nodes.iter().find(|l| l.node == C).unwrap();
    assert_eq!((c5.unseen, c5.oldest_unseen_age_us), (1, Some(2_500)));
    assert!((d[4].up_to_date - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(t.divergence_since(4_000).count(), 2);
}

#[test]
fn divergence_ring_is_bounded_even_across_long_gaps() {
    let cfg = Config {
        sample_every_us: 10,
        max_samples: 100,
        ..Config::default()
    };
    let mut t = tracker(cfg, &[A, B]);
    t.tick(0);
    t.tick(1_000_000_000_000);
    assert_eq!(t.divergence().len(), 100);
    assert_eq!(t.divergence().back().unwrap().t_us, 1_000_000_000_000);
    let ts: Vec<i64> = t.divergence().iter().map(|s| s.t_us).collect();
    assert!(ts.windows(2).all(|w| w[1] - w[0] == 10));
}

// ---- reset and JSON ----

#[test]
fn reset_starts_a_new_measurement() {
    let mut t = tracker(Config::default(), &[A, B]);
    t.updated(A, 1, 0, add(1));
    t.updated(A, 2, 0, add(2));
    t.observed(B, 10_000, Filter::All, holds(&set([1])));
    t.reset();
    let s = t.stats();
    assert_eq!(
        (s.updates, s.converged, s.pending, s.latency.p50_us),
        (0, 0, 0, None)
    );
    assert_eq!(t.records().len(), 0);
    assert_eq!(t.members(), vec![A, B]);
    // Sequence numbers may start over.
    assert!(matches!(
        t.updated(A, 1, 20_000, add(1)),
        Registered::New { .. }
    ));
    t.observed(B, 21_000, Filter::All, holds(&set([1])));
    assert_eq!(t.stats().latency.max_us, Some(1_000));
}

#[test]
fn json_report_has_everything() {
    let mut t = tracker(Config::default(), &[A, B]);
    t.clock_sample(NodeId(7), 0, 100, 20).unwrap();
    t.updated(A, 1, 0, add(1));
    t.observed(B, 25_000, Filter::All, holds(&set([1])));
    let v: serde_json::Value = serde_json::from_str(&t.to_json().unwrap()).unwrap();
    let stats = &v["stats"];
    for k in [
        "updates",
        "converged",
        "pending",
        "unconverged",
        "p50_us",
        "p90_us",
        "p99_us",
        "p999_us",
        "max_us",
        "mean_us",
        "count",
        "saturated",
        "clock_uncertainty_us",
    ] {
        assert!(stats.get(k).is_some(), "stats.{k} missing: {stats}");
    }
    // The latency summary is flattened into the stats, not nested.
    assert!(stats.get("latency").is_none(), "{stats}");
    assert_eq!(stats["converged"], 1);
    assert_eq!(
        (&stats["count"], &stats["saturated"]),
        (&1.into(), &0.into())
    );
    assert_eq!(stats["max_us"], 25_000);
    assert_eq!(stats["mean_us"], 25_000.0);
    let b = &stats["per_node"][1];
    assert_eq!(b["node"], 2);
    for k in ["count", "p50_us", "p99_us", "max_us", "pending", "live"] {
        assert!(b.get(k).is_some(), "per_node.{k} missing");
    }
    assert!(b.get("latency").is_none(), "{b}");
    assert_eq!((&b["count"], &b["max_us"]), (&1.into(), &25_000.into()));
    assert_eq!(v["records"][0]["outcome"], "converged");
    assert_eq!(v["records"][0]["convergence_us"], 25_000);
    assert_eq!(v["records"][0]["id"]["seq"], 1);
    assert_eq!(v["divergence"].as_array().unwrap().len(), 2);
    assert_eq!(v["divergence"][0]["nodes"][1]["unseen"], 1);
    assert_eq!(v["clocks"][2]["node"], 7);
    assert_eq!(v["clocks"][2]["offset_us"], 90);
    assert_eq!(v["config"]["horizon_us"], 30_000_000);
}

// ---- witness index ----

/// 10 000 pending keyed updates; B's new state differs in 5 keys.
fn ten_thousand_pending() -> (Tracker<Add>, HashSet<u64>) {
    let mut t = tracker(Config::default(), &[A, B, C]);
    let empty = set([]);
    t.observed(B, 0, Filter::All, holds(&empty));
    t.observed(C, 0, Filter::All, holds(&empty));
    for i in 0..10_000u64 {
        let r = t.updated_with(A, i, 1_000 + i as i64, add(i), |_, w| empty.contains(&w.id));
        assert_eq!(r, Registered::New { finished: false });
    }
    (t, set([17, 4_000, 4_001, 9_998, 9_999]))
}

#[test]
fn changed_keys_check_only_touched_witnesses() {
    let (mut t, b_state) = ten_thousand_pending();
    let before = t.stats().witness_checks;
    let changed: Vec<u64> = b_state.iter().copied().collect();
    let o = t.observed(B, 20_000, Filter::Changed(&changed), holds(&b_state));
    assert_eq!((o.checked, o.newly_seen), (5, 5));
    assert_eq!(t.stats().witness_checks - before, 5);
    // A key that changed but holds no pending update costs nothing.
    let o = t.observed(B, 21_000, Filter::Changed(&[123_456]), holds(&b_state));
    assert_eq!(o.checked, 0);
}

#[test]
fn may_contain_skips_absent_keys() {
    let (mut t, b_state) = ten_thousand_pending();
    let may = |k: u64| b_state.contains(&k);
    let o = t.observed(B, 20_000, Filter::MayContain(&may), holds(&b_state));
    assert_eq!((o.checked, o.newly_seen), (5, 5));
}

#[test]
fn linear_fallback_checks_every_pending_update() {
    let (mut t, b_state) = ten_thousand_pending();
    let o = t.observed(B, 20_000, Filter::All, holds(&b_state));
    assert_eq!((o.checked, o.newly_seen), (10_000, 5));
}

#[test]
fn keyless_witnesses_are_checked_under_every_filter() {
    let mut t = tracker(Config::default(), &[A, B]);
    t.observed(B, 0, Filter::All, holds(&set([])));
    for i in 0..10 {
        t.updated_with(
            A,
            i,
            10,
            Add {
                id: i,
                keyed: i >= 3,
            },
            |_, _| false,
        );
    }
    let st = set([0, 5]);
    let o = t.observed(B, 20, Filter::Changed(&[5]), holds(&st));
    assert_eq!((o.checked, o.newly_seen), (4, 2));
    let never = |_: u64| false;
    let o = t.observed(B, 30, Filter::MayContain(&never), holds(&st));
    assert_eq!(o.checked, 2, "keys 1 and 2, still unseen");
}

#[test]
fn changed_filter_checks_unchecked_registrations_once() {
    let mut t = tracker(Config::default(), &[A, B]);
    let st = set([1, 2, 3]);
    t.observed(B, 0, Filter::All, holds(&st));
    // Plain `updated`: the tracker never asked whether B already holds them.
    for i in 1..=3 {
        t.updated(A, i, 10, add(i));
    }
    let o = t.observed(B, 20, Filter::Changed(&[]), holds(&st));
    assert_eq!((o.checked, o.newly_seen, o.converged), (3, 3, 3));
    t.updated(A, 4, 30, add(4));
    t.observed(B, 40, Filter::Changed(&[]), holds(&st));
    let o = t.observed(B, 50, Filter::Changed(&[]), holds(&st));
    assert_eq!(o.checked, 0, "update 4 was settled for B at 40");
}

// ---- clocks ----

/// A tiny deterministic generator (xorshift), so the test needs no seed plumbing.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn clock_offsets_are_corrected_within_reported_uncertainty() {
    // Truth: B's clock runs 250 ms ahead, C's 80 ms behind; A is the reference.
    const OFF_B: i64 = 250_000;
    const OFF_C: i64 = -80_000;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut t: Tracker<Add> = Tracker::new(Config::default());
    t.clock_mut().set_exact(A);
    // Jittery, asymmetric round trips: each leg 200 us to 20 ms.
    let mut now = 0i64;
    for _ in 0..40 {
        for (n, off) in [(B, OFF_B), (C, OFF_C)] {
            let out = 200 + rng.below(20_000) as i64;
            let back = 200 + rng.below(20_000) as i64;
            let t0 = now;
            let t1 = t0 + out + off;
            let t2 = t0 + out + back;
            t.clock_sample(n, t0, t1, t2).unwrap();
            now += 50_000;
        }
    }
    let unc_b = t.clock().estimate(B).unwrap().uncertainty_us;
    let unc_c = t.clock().estimate(C).unwrap().uncertainty_us;
    assert!(unc_b < 5_000 && unc_c < 5_000, "{unc_b} {unc_c}");
    let err_b = (t.clock().estimate(B).unwrap().offset_us - OFF_B).unsigned_abs();
    assert!(err_b <= unc_b, "offset error {err_b} > {unc_b}");

    t.set_members(now, &[A, B, C]);
    let mut truth = Vec::new();
    for i in 0..200u64 {
        // Origins rotate over all three nodes, so both remote clocks feed
        // update times as well as observation times.
        let origin = [A, B, C][i as usize % 3];
        let off = |n: NodeId| match n {
            B => OFF_B,
            C => OFF_C,
            _ => 0,
        };
        let ts = now + i as i64 * 100_000;
        let lat_b = 1_000 + rng.below(50_000) as i64;
        let lat_c = 1_000 + rng.below(50_000) as i64;
        let lat_a = 1_000 + rng.below(50_000) as i64;
        t.updated(origin, i, ts + off(origin), add(i));
        let st = set([i]);
        let mut conv = 0;
        for (n, lat) in [(A, lat_a), (B, lat_b), (C, lat_c)] {
            if n == origin {
                continue;
            }
            t.observed(n, ts + lat + off(n), Filter::Changed(&[i]), holds(&st));
            conv = conv.max(lat);
        }
        truth.push(conv as u64);
    }
    let s = t.stats();
    assert_eq!(s.converged, 200);
    assert!(s.unsynced_nodes.is_empty());
    assert!(s.clock_uncertainty_us <= unc_b + unc_c);
    assert!(s.clock_uncertainty_us > 0);
    for (rec, want) in t.records().iter().zip(&truth) {
        let Outcome::Converged { convergence_us } = rec.outcome else {
            panic!("{rec:?}");
        };
        assert!(
            convergence_us.abs_diff(*want) <= s.clock_uncertainty_us,
            "update {}: measured {convergence_us}, truth {want}, uncertainty {}",
            rec.id.seq,
            s.clock_uncertainty_us
        );
    }
    // Without correction the +250 ms offset would dominate.
    let max_truth = *truth.iter().max().unwrap();
    assert!(s.latency.max_us.unwrap() <= max_truth + s.clock_uncertainty_us);
}

// ---- memory bound ----

#[test]
fn a_million_updates_keep_memory_bounded() {
    let cfg = Config {
        horizon_us: 200_000,
        max_pending: 5_000,
        record_window: 1_000,
        sample_every_us: 1_000,
        max_samples: 2_000,
        ..Config::default()
    };
    let mut t = tracker(cfg, &[A, B, C]);
    let empty = HashSet::new();
    t.observed(B, 0, Filter::All, holds(&empty));
    t.observed(C, 0, Filter::All, holds(&empty));
    const N: u64 = 1_000_000;
    const BATCH: u64 = 100;
    let mut peak = t.retained();
    for batch in 0..N / BATCH {
        let base = batch * BATCH;
        for i in base..base + BATCH {
            // 10 us apart: a million updates span 10 s of tracker time.
            t.updated_with(A, i, (i * 10) as i64, add(i), |_, _| false);
        }
        let keys: Vec<u64> = (base..base + BATCH).collect();
        let ts = ((base + BATCH) * 10) as i64;
        // B sees everything; C misses every 1000th update (to the horizon),
        // and falls 60 batches behind during one stretch (to the cap).
        let b_sees = |w: &Add| w.id < base + BATCH;
        t.observed(B, ts + 5, Filter::Changed(&keys), b_sees);
        if !(3_000..3_060).contains(&batch) {
            let c_sees = |w: &Add| w.id % 1_000 != 999;
            let keys: Vec<u64> = if batch == 3_060 {
                (300_000..base + BATCH).collect()
            } else {
                keys
            };
            t.observed(C, ts + 7, Filter::Changed(&keys), c_sees);
        }
        let r = t.retained();
        peak.pending = peak.pending.max(r.pending);
        peak.index_entries = peak.index_entries.max(r.index_entries);
        peak.records = peak.records.max(r.records);
        peak.samples = peak.samples.max(r.samples);
        peak.seq_entries = peak.seq_entries.max(r.seq_entries);
    }
    let s = t.stats();
    assert_eq!(s.updates, N);
    assert_eq!(
        s.updates,
        s.converged + s.unconverged + s.orphaned + s.pending
    );
    assert!(s.unconverged >= 900, "{s:?}");
    assert!(s.unconverged_capacity > 0, "{s:?}");
    assert!(s.converged > 990_000);
    assert!(peak.pending <= 5_000, "{peak:?}");
    // Per pending update: id, time, key, and one unseen entry per member.
    assert!(peak.index_entries <= 5_000 * 6, "{peak:?}");
    assert!(peak.records <= 1_000 && peak.samples <= 2_000, "{peak:?}");
    assert_eq!(peak.seq_entries, 0, "a dense counter folds into its floor");
    assert_eq!(t.retained().nodes, 3);
}

// ---- percentiles against brute force ----

/// The nearest-rank value at quantile `q`, as HdrHistogram ranks.
fn brute(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

/// HdrHistogram with 3 significant digits reports the highest value of the
/// bucket holding the true value: at most 1/1024 above it (and exact
/// below 2048).
fn close(got: u64, want: u64) -> bool {
    got >= want && got - want <= want / 1024
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn prop_percentiles_match_brute_force(
        lats in proptest::collection::vec((0u64..5_000_000, 0u64..5_000_000), 1..400),
    ) {
        let mut t = tracker(Config::default(), &[A, B, C]);
        for (i, &(lb, lc)) in lats.iter().enumerate() {
            let i = i as u64;
            let ts = i as i64 * 10_000_000;
            t.updated(A, i, ts, add(i));
            let st = set([i]);
            // Observe in time order so neither one's clock passes the horizon.
            let mut obs = [(B, lb), (C, lc)];
            obs.sort_by_key(|o| o.1);
            for (n, l) in obs {
                t.observed(n, ts + l as i64, Filter::Changed(&[i]), holds(&st));
            }
        }
        let s = t.stats();
        prop_assert_eq!(s.converged, lats.len() as u64);
        let mut conv: Vec<u64> = lats.iter().map(|&(b, c)| b.max(c)).collect();
        conv.sort_unstable();
        for (q, got) in [(0.5, s.latency.p50_us), (0.9, s.latency.p90_us), (0.99, s.latency.p99_us), (0.999, s.latency.p999_us)] {
            let want = brute(&conv, q);
            prop_assert!(close(got.unwrap(), want), "q={} got {:?} want {}", q, got, want);
        }
        prop_assert_eq!(s.latency.max_us, conv.last().copied());
        let mean = conv.iter().sum::<u64>() as f64 / conv.len() as f64;
        prop_assert!((s.latency.mean_us.unwrap() - mean).abs() < 1e-6 * mean.max(1.0));

        let mut per_b: Vec<u64> = lats.iter().map(|l| l.0).collect();
        per_b.sort_unstable();
        let b = s.per_node.iter().find(|n| n.node == B).unwrap();
        prop_assert!(close(b.latency.p50_us.unwrap(), brute(&per_b, 0.5)));
        prop_assert!(close(b.latency.p99_us.unwrap(), brute(&per_b, 0.99)));
        prop_assert_eq!(b.latency.max_us, per_b.last().copied());
    }

    #[test]
    fn prop_every_update_is_accounted_for(
        ops in proptest::collection::vec((0u8..4, 0u64..40, 0u64..4, 0u64..50_000), 1..300),
    ) {
        let cfg = Config { horizon_us: 100_000, max_pending: 20, ..Config::default() };
        let nodes = [A, B, C, NodeId(4)];
        let mut t = tracker(cfg, &nodes[..3]);
        t.clock_mut().set_exact(NodeId(4));
        let mut now = 0i64;
        let mut seq = 0u64;
        for (op, x, n, dt) in ops {
            now += dt as i64;
            let node = nodes[n as usize];
            match op {
                0 => { t.updated(node, seq, now, add(x)); seq += 1; }
                1 => { t.updated(node, x, now, add(x)); }
                2 => {
                    let st: HashSet<u64> = (0..x).collect();
                    t.observed(node, now, Filter::All, holds(&st));
                }
                _ => {
                    let members: Vec<NodeId> =
                        nodes.iter().copied().filter(|m| (x >> (m.0 - 1)) & 1 == 1).collect();
                    t.set_members(now, &members);
                }
            }
            let s = t.stats();
            prop_assert_eq!(s.updates, s.converged + s.unconverged + s.orphaned + s.pending);
            prop_assert!(s.pending <= 20);
            let live: HashSet<NodeId> = t.members().into_iter().collect();
            for ns in &s.per_node {
                if !live.contains(&ns.node) {
                    prop_assert_eq!(ns.pending, 0);
                }
                prop_assert!(ns.pending <= s.pending);
            }
        }
    }
}

/// Replays one random history into three trackers that differ only in the
/// observation filter; the index must never change what is seen, when.
fn replay(ops: &[(u8, u64, u8, u32)]) -> [Tracker<Add>; 3] {
    let nodes = [A, B, C];
    let cfg = Config {
        horizon_us: 400_000,
        ..Config::default()
    };
    let mut ts: [Tracker<Add>; 3] = [
        tracker(cfg.clone(), &nodes),
        tracker(cfg.clone(), &nodes),
        tracker(cfg, &nodes),
    ];
    // Every node's current state, and its state at its last observation.
    let mut state: [HashSet<u64>; 3] = Default::default();
    let mut last: [Option<HashSet<u64>>; 3] = Default::default();
    let mut now = 0i64;
    let mut seq = 0u64;
    for &(op, x, n, dt) in ops {
        now += i64::from(dt);
        let i = usize::from(n) % 3;
        match op % 3 {
            // Node i updates: its state holds element x (maybe again).
            0 => {
                state[i].insert(x);
                seq += 1;
                for t in ts.iter_mut() {
                    t.updated_with(nodes[i], seq, now, add(x), |node, w| {
                        let j = nodes.iter().position(|m| *m == node).unwrap();
                        last[j].as_ref().is_some_and(|s| s.contains(&w.id))
                    });
                }
            }
            // Node i merges node (i + x) % 3's state, then is observed.
            1 => {
                let from = (i + x as usize) % 3;
                let merged: Vec<u64> = state[from].iter().copied().collect();
                state[i].extend(merged);
                let cur = &state[i];
                let prev = last[i].clone().unwrap_or_default();
                let changed: Vec<u64> = cur.difference(&prev).copied().collect();
                let may = |k: u64| cur.contains(&k);
                ts[0].observed(nodes[i], now, Filter::All, holds(cur));
                ts[1].observed(nodes[i], now, Filter::Changed(&changed), holds(cur));
                ts[2].observed(nodes[i], now, Filter::MayContain(&may), holds(cur));
                last[i] = Some(cur.clone());
            }
            // Time passes.
            _ => {
                for t in ts.iter_mut() {
                    t.tick(now);
                }
            }
        }
    }
    ts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_index_filters_agree_with_linear_scan(
        ops in proptest::collection::vec((0u8..3, 0u64..30, 0u8..3, 0u32..60_000), 1..200),
    ) {
        let [all, changed, may] = replay(&ops);
        let strip = |t: &Tracker<Add>| {
            let mut s = t.stats();
            s.witness_checks = 0;
            (s, t.records().clone())
        };
        let want = strip(&all);
        prop_assert_eq!(&strip(&changed), &want);
        prop_assert_eq!(&strip(&may), &want);
        prop_assert!(changed.stats().witness_checks <= all.stats().witness_checks);
        prop_assert!(may.stats().witness_checks <= all.stats().witness_checks);
    }
}
