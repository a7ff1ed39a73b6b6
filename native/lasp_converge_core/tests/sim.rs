//! The gossip simulator (`lasp_converge_core::sim`) against its own laws and
//! against the theory of push gossip.
//!
//! - `prop_same_seed_same_run`: a spec and a seed give one run.
//! - `prop_every_update_counted_once`: `updates == converged + unconverged +
//!   pending`, and every node's visibility count adds up to what the others
//!   made.
//! - `prop_no_loss_no_partition_converges`: without loss or partition every
//!   update reaches every node, in both modes.
//! - `prop_partition_holds_until_heal`: while a partition lasts, nothing
//!   made on one side is seen on the other; after it heals, everything is.
//! - `push_gossip_rounds_follow_theory`: with fanout 1 and synchronous
//!   rounds, one update reaches all of N nodes in about log2(N) + ln(N)
//!   rounds (Frieze and Grimmett 1985; Pittel, "On spreading a rumor", SIAM
//!   J. Appl. Math. 1987), within 10% for N = 16 ... 4096.
//! - `timer_offsets_set_the_first_ticks`, `round_cost_lengthens_every_period`,
//!   `service_time_queues_messages_at_a_node`,
//!   `ack_latency_applies_to_acknowledgements`: the measured-cluster inputs
//!   do what they say, on small cases worked out by hand; the properties
//!   above also run with service times, round costs and timer offsets.

use lasp_converge_core::sim::{
    run, Detail, Fanout, Field, LatencyDist, Mode, Partition, SimError, Spec, Updates,
};
use proptest::prelude::*;

fn arb_spec() -> impl Strategy<Value = Spec> {
    (
        2u32..40,
        prop_oneof![Just(Mode::StateBased), Just(Mode::DeltaBased)],
        prop_oneof![Just(Fanout::All), (1u32..5).prop_map(Fanout::Count)],
        10u64..200,
        any::<bool>(),
        0u32..50,
        prop_oneof![
            (0u64..5000).prop_map(LatencyDist::Constant),
            (0u64..5000).prop_map(|a| LatencyDist::Uniform(a, a * 3)),
            (0.0f64..5000.0).prop_map(|m| LatencyDist::Normal(m, m / 2.0)),
            (3.0f64..9.0).prop_map(|mu| LatencyDist::LogNormal(mu, 0.7)),
            prop::collection::vec(0u64..20_000, 1..10).prop_map(LatencyDist::Empirical),
        ],
        (0.0f64..100.0, 100u64..2000),
        1u32..20,
        any::<u64>(),
        // Processing: none; service times and round costs; those and
        // given timer offsets.
        0u32..3,
    )
        .prop_map(
            |(
                nodes,
                mode,
                fanout,
                interval_ms,
                pou,
                jitter,
                latency,
                (rate, dur_ms),
                buf,
                seed,
                processing,
            )| {
                let interval_us = interval_ms * 1000;
                let (service_time, round_cost) = if processing == 0 {
                    (LatencyDist::Constant(0), LatencyDist::Constant(0))
                } else {
                    (
                        LatencyDist::Uniform(0, interval_us / 50),
                        LatencyDist::Uniform(0, interval_us / 10),
                    )
                };
                let timer_offsets_us = (processing == 2).then(|| {
                    (0..u64::from(nodes))
                        .map(|i| i * 7919 % interval_us)
                        .collect()
                });
                Spec {
                    nodes,
                    mode,
                    fanout,
                    state_interval_us: interval_us,
                    propagate_on_update: pou,
                    jitter_percent: jitter,
                    latency,
                    updates: Updates::Poisson {
                        rate_per_s: rate,
                        duration_us: dur_ms * 1000,
                    },
                    delta_buffer: buf,
                    service_time,
                    round_cost,
                    timer_offsets_us,
                    horizon_us: 600_000_000,
                    detail: Some(Detail::Full),
                    max_samples: 50,
                    seed,
                    ..Spec::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_same_seed_same_run(spec in arb_spec(), loss in 0.0f64..0.5) {
        let spec = Spec { loss, ..spec };
        let a = run(&spec).unwrap();
        prop_assert_eq!(&a, &run(&spec).unwrap());
    }

    #[test]
    fn prop_every_update_counted_once(spec in arb_spec(), loss in 0.0f64..0.6, horizon_ms in 50u64..2000) {
        let spec = Spec { loss, horizon_us: horizon_ms * 1000, ..spec };
        let r = run(&spec).unwrap();
        let s = &r.stats;
        prop_assert_eq!(s.updates, s.converged + s.unconverged + s.pending);
        prop_assert_eq!(s.pending, 0, "no `until`: every update ends converged or expired");
        let counted: u64 = s.per_node.iter().map(|n| n.latency.count).sum();
        // Every converged update was seen once by each node but its origin.
        prop_assert!(counted >= s.converged * u64::from(spec.nodes - 1));
        prop_assert!(counted <= s.updates * u64::from(spec.nodes - 1));
        prop_assert_eq!(r.messages, r.full_states + r.deltas + r.acks);
        prop_assert!(r.dropped <= r.messages);
        if let Some(last) = r.divergence.last() {
            prop_assert!(last.t_us <= r.end_us);
        }
    }

    #[test]
    fn prop_no_loss_no_partition_converges(spec in arb_spec()) {
        let r = run(&spec).unwrap();
        let s = &r.stats;
        prop_assert_eq!(s.converged, s.updates);
        prop_assert_eq!(s.unconverged, 0);
        prop_assert_eq!(r.dropped, 0);
        for n in &s.per_node {
            prop_assert_eq!(n.pending, 0);
        }
        if s.updates > 0 {
            // Nothing is seen faster than a message travels, and every
            // update is seen within rounds of the interval.
            prop_assert!(s.latency.max_us.unwrap() >= s.latency.p50_us.unwrap());
        }
    }

    #[test]
    fn prop_partition_holds_until_heal(
        spec in arb_spec(),
        split in 1u32..39,
        heal_ms in 200u64..3000,
    ) {
        let n = spec.nodes;
        let split = split.min(n - 1);
        let heal = heal_ms * 1000;
        let spec = Spec {
            partitions: vec![Partition {
                start_us: 0,
                end_us: heal,
                groups: vec![(0..split).collect(), (split..n).collect()],
            }],
            // Updates only on the first side, all during the partition.
            updates: Updates::At((0..20).map(|i| (i * heal / 40, i as u32 % split)).collect()),
            sample_every_us: Some(10_000),
            max_samples: 20_000,
            ..spec
        };
        let r = run(&spec).unwrap();
        let made_before = |t: u64| {
            let Updates::At(ref v) = spec.updates else { unreachable!() };
            v.iter().filter(|&&(ts, _)| ts < t).count() as u64
        };
        let mut checked = 0;
        for sample in r.divergence.iter().filter(|s| s.t_us <= heal) {
            for lag in sample.nodes.iter().filter(|l| l.node >= split) {
                prop_assert_eq!(lag.unseen, made_before(sample.t_us), "node {} at {}", lag.node, sample.t_us);
                checked += 1;
            }
        }
        prop_assert!(checked > 0);
        prop_assert_eq!(r.stats.converged, r.stats.updates);
        // Nothing converged before the heal.
        let Updates::At(ref v) = spec.updates else { unreachable!() };
        let last = v.iter().map(|&(t, _)| t).max().unwrap();
        prop_assert!(r.stats.latency.max_us.unwrap() >= heal - last);
        prop_assert!(r.stats.latency.p50_us.unwrap() as f64 >= (heal - heal / 2) as f64 * 0.99);
    }
}

#[test]
fn push_gossip_rounds_follow_theory() {
    let mut n = 16u32;
    while n <= 4096 {
        // The spread of the rounds does not grow with N: fewer runs suffice
        // for the larger clusters (and keep the debug build quick).
        let runs = (25_600 / n).clamp(24, 200);
        let mut sum = 0u64;
        for seed in 0..u64::from(runs) {
            let spec = Spec {
                nodes: n,
                fanout: Fanout::Count(1),
                state_interval_us: 1_000_000,
                aligned_timers: true,
                latency: LatencyDist::Constant(1),
                updates: Updates::At(vec![(0, 0)]),
                horizon_us: 100_000_000,
                max_samples: 0,
                seed,
                ..Spec::default()
            };
            let r = run(&spec).unwrap();
            assert_eq!(r.stats.converged, 1);
            // Informed in round r: at r intervals plus the 1 us link.
            sum += r.stats.latency.max_us.unwrap() / 1_000_000;
        }
        let mean = sum as f64 / f64::from(runs);
        let theory = f64::from(n).log2() + f64::from(n).ln();
        let err = (mean - theory).abs() / theory;
        println!(
            "N = {n}: mean rounds {mean:.2}, log2 N + ln N = {theory:.2}, off by {:.1}%",
            err * 100.0
        );
        assert!(err < 0.10, "N = {n}: {mean} rounds against {theory}");
        n *= 2;
    }
}

#[test]
fn loss_of_everything_converges_nothing() {
    for mode in [Mode::StateBased, Mode::DeltaBased] {
        let spec = Spec {
            nodes: 5,
            mode,
            state_interval_us: 100_000,
            loss: 1.0,
            horizon_us: 1_000_000,
            updates: Updates::At(vec![(0, 0), (10, 3)]),
            ..Spec::default()
        };
        let r = run(&spec).unwrap();
        assert_eq!((r.stats.converged, r.stats.unconverged), (0, 2));
        assert_eq!(r.dropped, r.messages);
        assert_eq!(r.stats.latency.p50_us, None);
    }
}

#[test]
fn state_messages_weigh_what_they_carry() {
    // Two nodes, one update on node 0 at 0; ticks at 1 s and 2 s.
    let spec = Spec {
        nodes: 2,
        state_interval_us: 1_000_000,
        aligned_timers: true,
        latency: LatencyDist::Constant(500),
        updates: Updates::At(vec![(0, 0)]),
        message_bytes: 100,
        update_bytes: 10,
        ..Spec::default()
    };
    let r = run(&spec).unwrap();
    assert_eq!(r.stats.latency.max_us, Some(1_000_500));
    // Node 0 sends {u0} (110 B) and node 1 sends {} (100 B) at 1 s.
    assert_eq!((r.messages, r.bytes), (2, 210));
    assert_eq!(r.messages_per_update, 2.0);
}

#[test]
fn propagate_on_update_sends_at_once() {
    let spec = Spec {
        nodes: 8,
        state_interval_us: 10_000_000,
        propagate_on_update: true,
        latency: LatencyDist::Constant(700),
        updates: Updates::At(vec![(5_000, 2)]),
        ..Spec::default()
    };
    let r = run(&spec).unwrap();
    assert_eq!(r.stats.latency.max_us, Some(700));
    assert_eq!(
        r.stats.per_node[2].latency.count, 0,
        "its own update is not a visibility latency"
    );
    assert_eq!(r.stats.per_node[0].latency.p50_us, Some(700));
}

#[test]
fn delta_based_sends_fewer_bytes_than_state_based() {
    let base = Spec {
        nodes: 6,
        state_interval_us: 100_000,
        latency: LatencyDist::Uniform(200, 2000),
        updates: Updates::Poisson {
            rate_per_s: 200.0,
            duration_us: 5_000_000,
        },
        ..Spec::default()
    };
    let st = run(&base).unwrap();
    let de = run(&Spec {
        mode: Mode::DeltaBased,
        ..base.clone()
    })
    .unwrap();
    assert_eq!(
        st.stats.updates, de.stats.updates,
        "same updates for one seed"
    );
    assert_eq!(de.stats.converged, de.stats.updates);
    assert!(de.deltas > 0 && de.acks > 0);
    assert!(
        de.bytes * 5 < st.bytes,
        "delta {} B, state {} B",
        de.bytes,
        st.bytes
    );
}

#[test]
fn a_partition_longer_than_the_horizon_leaves_updates_unconverged() {
    let spec = Spec {
        nodes: 4,
        state_interval_us: 50_000,
        partitions: vec![Partition {
            start_us: 0,
            end_us: 3_000_000,
            groups: vec![vec![0, 1], vec![2, 3]],
        }],
        updates: Updates::At(vec![(1000, 0), (2_500_000, 1)]),
        horizon_us: 1_000_000,
        ..Spec::default()
    };
    let r = run(&spec).unwrap();
    assert_eq!((r.stats.converged, r.stats.unconverged), (1, 1));
    // The first expired at 1.001 s; the second converged after the heal.
    assert!(r.stats.latency.max_us.unwrap() >= 500_000);
}

#[test]
fn until_stops_the_run_with_updates_pending() {
    let spec = Spec {
        nodes: 4,
        state_interval_us: 1_000_000,
        updates: Updates::At(vec![(0, 0), (10_000_000, 1)]),
        until_us: Some(500),
        ..Spec::default()
    };
    let r = run(&spec).unwrap();
    assert_eq!(r.end_us, 500);
    assert_eq!((r.stats.updates, r.stats.pending), (1, 1));
    assert_eq!(r.stats.per_node[3].pending, 1);
}

#[test]
fn divergence_samples_track_unseen_updates() {
    let spec = Spec {
        nodes: 3,
        state_interval_us: 1_000_000,
        aligned_timers: true,
        fanout: Fanout::All,
        latency: LatencyDist::Constant(1000),
        updates: Updates::At(vec![(0, 0)]),
        sample_every_us: Some(250_000),
        ..Spec::default()
    };
    let r = run(&spec).unwrap();
    let at = |t: u64| r.divergence.iter().find(|s| s.t_us == t).unwrap();
    let s = at(500_000);
    assert_eq!((s.unseen_total, s.unseen_max), (2, 1));
    assert_eq!(s.oldest_unseen_age_us, Some(500_000));
    assert!((s.up_to_date - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(s.nodes[1].oldest_unseen_age_us, Some(500_000));
    assert_eq!(s.nodes[0].oldest_unseen_age_us, None);
    assert_eq!(r.end_us, 1_001_000);
    assert_eq!(r.divergence.last().unwrap().t_us, 1_000_000);
}

#[test]
fn timer_offsets_set_the_first_ticks() {
    // Node 1 ticks first at 250 ms: the update node 0 made at 0 waits for
    // node 0's tick at 400 ms, then travels 100 us.
    let spec = Spec {
        nodes: 2,
        state_interval_us: 1_000_000,
        timer_offsets_us: Some(vec![400_000, 250_000]),
        latency: LatencyDist::Constant(100),
        updates: Updates::At(vec![(0, 0)]),
        ..Spec::default()
    };
    let r = run(&spec).unwrap();
    assert_eq!(r.stats.latency.max_us, Some(400_100));
    for bad in [Some(vec![0]), Some(vec![0, 1, 2]), Some(vec![0, u64::MAX])] {
        let spec = Spec {
            timer_offsets_us: bad,
            ..spec.clone()
        };
        assert_eq!(run(&spec), Err(SimError::Bad(Field::TimerOffsets)));
    }
    let both = Spec {
        aligned_timers: true,
        ..spec
    };
    assert_eq!(run(&both), Err(SimError::Bad(Field::TimerOffsets)));
}

#[test]
fn round_cost_lengthens_every_period() {
    // Ticks at 0, then every 100 ms plus the 50 ms round cost: the update
    // made at 10 us goes out at 150 ms and arrives 100 us later.
    let spec = Spec {
        nodes: 2,
        state_interval_us: 100_000,
        timer_offsets_us: Some(vec![0, 0]),
        round_cost: LatencyDist::Constant(50_000),
        latency: LatencyDist::Constant(100),
        updates: Updates::At(vec![(10, 0)]),
        ..Spec::default()
    };
    let r = run(&spec).unwrap();
    assert_eq!(r.stats.latency.max_us, Some(150_090));
    let free = Spec {
        round_cost: LatencyDist::Constant(0),
        ..spec
    };
    assert_eq!(run(&free).unwrap().stats.latency.max_us, Some(100_090));
}

#[test]
fn service_time_queues_messages_at_a_node() {
    // Updates at 0 on nodes 0 and 1, pushed at once (after the 1 ms an
    // update takes) to the others, 100 us away. Node 2 gets both messages
    // at 1.1 ms and serves them one after the other: the first at 2.1 ms,
    // the second at 3.1 ms.
    let spec = Spec {
        nodes: 3,
        propagate_on_update: true,
        service_time: LatencyDist::Constant(1000),
        latency: LatencyDist::Constant(100),
        updates: Updates::At(vec![(0, 0), (0, 1)]),
        ..Spec::default()
    };
    let r = run(&spec).unwrap();
    assert_eq!(r.stats.converged, 2);
    assert_eq!(r.stats.latency.max_us, Some(3100));
    assert_eq!(r.stats.per_node[0].latency.max_us, Some(2100));
    assert_eq!(r.stats.per_node[2].latency.max_us, Some(3100));
    // Without a service time both arrive, and count, at 100 us.
    let instant = Spec {
        service_time: LatencyDist::Constant(0),
        ..spec.clone()
    };
    assert_eq!(run(&instant).unwrap().stats.latency.max_us, Some(100));
    // A tick that falls due while its node is busy waits for it: node 0
    // ticks at 0, as it makes an update that keeps it busy until 1 ms, so
    // the round goes out then and is served on node 1 from 1.1 to 2.1 ms.
    let ticking = Spec {
        nodes: 2,
        propagate_on_update: false,
        state_interval_us: 1_000_000,
        timer_offsets_us: Some(vec![0, 500]),
        updates: Updates::At(vec![(0, 0)]),
        ..spec
    };
    assert_eq!(run(&ticking).unwrap().stats.latency.max_us, Some(2100));
}

#[test]
fn ack_latency_applies_to_acknowledgements() {
    // Acknowledgements that never arrive in time: every message is a full
    // state; with quick ones, deltas follow.
    let spec = Spec {
        nodes: 3,
        mode: Mode::DeltaBased,
        state_interval_us: 100_000,
        latency: LatencyDist::Constant(100),
        updates: Updates::Poisson {
            rate_per_s: 20.0,
            duration_us: 2_000_000,
        },
        ..Spec::default()
    };
    let slow = Spec {
        ack_latency: Some(LatencyDist::Constant(60_000_000)),
        horizon_us: 10_000_000,
        ..spec.clone()
    };
    let r = run(&slow).unwrap();
    assert_eq!(r.deltas, 0);
    assert!(r.full_states > 0);
    assert!(run(&spec).unwrap().deltas > 0);
    let bad = Spec {
        ack_latency: Some(LatencyDist::Uniform(3, 2)),
        ..spec
    };
    assert_eq!(run(&bad), Err(SimError::Bad(Field::AckLatency)));
}

#[test]
fn bad_specs_name_the_field() {
    let ok = Spec::default();
    let cases: Vec<(Spec, SimError)> = vec![
        (
            Spec {
                nodes: 0,
                ..ok.clone()
            },
            SimError::Bad(Field::Nodes),
        ),
        (
            Spec {
                nodes: 1_000_000,
                ..ok.clone()
            },
            SimError::TooLarge(Field::Nodes),
        ),
        (
            Spec {
                state_interval_us: 10,
                ..ok.clone()
            },
            SimError::Bad(Field::StateInterval),
        ),
        (
            Spec {
                fanout: Fanout::Count(0),
                ..ok.clone()
            },
            SimError::Bad(Field::Fanout),
        ),
        (
            Spec {
                jitter_percent: 101,
                ..ok.clone()
            },
            SimError::Bad(Field::JitterPercent),
        ),
        (
            Spec {
                delta_buffer: 0,
                ..ok.clone()
            },
            SimError::Bad(Field::DeltaBuffer),
        ),
        (
            Spec {
                latency: LatencyDist::Uniform(5, 1),
                ..ok.clone()
            },
            SimError::Bad(Field::Latency),
        ),
        (
            Spec {
                latency: LatencyDist::Normal(f64::NAN, 1.0),
                ..ok.clone()
            },
            SimError::Bad(Field::Latency),
        ),
        (
            Spec {
                latency: LatencyDist::LogNormal(1.0, -1.0),
                ..ok.clone()
            },
            SimError::Bad(Field::Latency),
        ),
        (
            Spec {
                service_time: LatencyDist::Normal(-1.0, 1.0),
                ..ok.clone()
            },
            SimError::Bad(Field::ServiceTime),
        ),
        (
            Spec {
                service_time: LatencyDist::Empirical(vec![]),
                ..ok.clone()
            },
            SimError::Bad(Field::ServiceTime),
        ),
        (
            Spec {
                round_cost: LatencyDist::Constant(u64::MAX),
                ..ok.clone()
            },
            SimError::Bad(Field::RoundCost),
        ),
        (
            Spec {
                latency: LatencyDist::Empirical(vec![]),
                ..ok.clone()
            },
            SimError::Bad(Field::Latency),
        ),
        (
            Spec {
                loss: 1.5,
                ..ok.clone()
            },
            SimError::Bad(Field::Loss),
        ),
        (
            Spec {
                partitions: vec![Partition {
                    start_us: 0,
                    end_us: 1,
                    groups: vec![vec![0], vec![0]],
                }],
                ..ok.clone()
            },
            SimError::Bad(Field::Partitions),
        ),
        (
            Spec {
                partitions: vec![Partition {
                    start_us: 0,
                    end_us: 1,
                    groups: vec![vec![10]],
                }],
                ..ok.clone()
            },
            SimError::Bad(Field::Partitions),
        ),
        (
            Spec {
                partitions: vec![Partition {
                    start_us: 2,
                    end_us: 1,
                    groups: vec![],
                }],
                ..ok.clone()
            },
            SimError::Bad(Field::Partitions),
        ),
        (
            Spec {
                updates: Updates::At(vec![(0, 10)]),
                ..ok.clone()
            },
            SimError::Bad(Field::Updates),
        ),
        (
            Spec {
                updates: Updates::Poisson {
                    rate_per_s: -1.0,
                    duration_us: 1,
                },
                ..ok.clone()
            },
            SimError::Bad(Field::Updates),
        ),
        (
            Spec {
                updates: Updates::Poisson {
                    rate_per_s: 1e9,
                    duration_us: 10_000_000,
                },
                ..ok.clone()
            },
            SimError::TooLarge(Field::Updates),
        ),
        (
            Spec {
                horizon_us: 0,
                ..ok.clone()
            },
            SimError::Bad(Field::Horizon),
        ),
        (
            Spec {
                sample_every_us: Some(1),
                ..ok.clone()
            },
            SimError::Bad(Field::SampleEvery),
        ),
        (
            Spec {
                max_samples: u32::MAX,
                ..ok.clone()
            },
            SimError::TooLarge(Field::MaxSamples),
        ),
        (
            Spec {
                nodes: 20_000,
                state_interval_us: 1000,
                ..ok.clone()
            },
            SimError::TooLarge(Field::Messages),
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(run(&spec).err(), Some(want), "{spec:?}");
    }
}

#[test]
fn one_node_converges_at_once() {
    let r = run(&Spec {
        nodes: 1,
        ..Spec::default()
    })
    .unwrap();
    assert_eq!(r.stats.converged, r.stats.updates);
    assert_eq!(r.stats.latency.max_us, Some(0));
    assert_eq!(r.messages, 0);
}

#[test]
fn a_raised_cancel_flag_stops_a_long_run() {
    use lasp_converge_core::sim::run_cancellable;
    use std::sync::atomic::{AtomicBool, Ordering};
    // About 4e8 events: minutes of computing.
    let long = Spec {
        nodes: 20_000,
        fanout: Fanout::Count(3),
        state_interval_us: 1_000_000,
        updates: Updates::At(Vec::new()),
        until_us: Some(4_999_000_000),
        ..Spec::default()
    };
    let cancel = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        let h = s.spawn(|| run_cancellable(&long, &cancel));
        std::thread::sleep(std::time::Duration::from_millis(50));
        cancel.store(true, Ordering::Relaxed);
        h.join().unwrap()
    });
    assert_eq!(r, Err(SimError::Cancelled));
    // Unraised, the flag changes nothing.
    let small = Spec {
        nodes: 30,
        seed: 9,
        ..Spec::default()
    };
    assert_eq!(
        run_cancellable(&small, &AtomicBool::new(false)),
        run(&small)
    );
}
