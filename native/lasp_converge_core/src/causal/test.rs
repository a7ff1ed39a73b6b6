use super::testing::*;
use super::*;

const TAG: Atom = Atom::StateAwset;

fn awset(s: &str) -> Result<Causal<TT>> {
    Causal::decode(
        &t(s),
        &Kind::Map(Box::new(Kind::Set)),
        &mut Decoder::new(Limits::dirty()),
        TAG,
    )
}

fn mvreg(s: &str) -> Result<Causal<TT>> {
    Causal::decode(&t(s), &Kind::Fun, &mut Decoder::new(Limits::dirty()), TAG)
}

fn m(a: &Causal<TT>, b: &Causal<TT>) -> Result<TT> {
    Ok(match a.merge(b, TAG)? {
        Merged::Left => a.encode(&TB),
        Merged::Right => b.encode(&TB),
        Merged::New(s) => s.encode(&TB),
    })
}

#[test]
fn cc_union_compresses_contiguous_cloud_dots() {
    let a = awset("{[], {[{a, 2}], [{a, 4}, {b, 1}, {c, 3}]}}").unwrap();
    let b = awset("{[], {[{a, 1}], [{a, 3}, {c, 2}]}}").unwrap();
    same(
        &m(&a, &b).unwrap(),
        &t("{[], {[{a, 4}, {b, 1}], [{c, 2}, {c, 3}]}}"),
    );
}

#[test]
fn cc_union_drops_covered_cloud_dots() {
    let a = awset("{[], {[{a, 5}], []}}").unwrap();
    let b = awset("{[], {[], [{a, 3}, {a, 7}]}}").unwrap();
    same(&m(&a, &b).unwrap(), &t("{[], {[{a, 5}], [{a, 7}]}}"));
    same(&m(&b, &a).unwrap(), &t("{[], {[{a, 5}], [{a, 7}]}}"));
}

#[test]
fn compression_takes_the_actor_term_from_the_dot() {
    // `orddict:store` replaces the `==` key: 1.0 from the dot wins.
    let a = awset("{[], {[{1, 1}], []}}").unwrap();
    let b = awset("{[], {[], [{1.0, 2}]}}").unwrap();
    same(&m(&a, &b).unwrap(), &t("{[], {[{1.0, 2}], []}}"));
    // Without compression the orddict merge keeps A's key.
    let c = awset("{[], {[{1.0, 3}], []}}").unwrap();
    same(&m(&a, &c).unwrap(), &t("{[], {[{1, 3}], []}}"));
}

#[test]
fn identical_payloads_are_returned_uncompressed() {
    let a = awset("{[], {[], [{a, 1}]}}").unwrap();
    let b = awset("{[], {[], [{a, 1}]}}").unwrap();
    assert!(matches!(a.merge(&b, TAG).unwrap(), Merged::Left));
    let bottom = Causal::bottom(&Kind::Map(Box::new(Kind::Set)));
    same(&m(&a, &bottom).unwrap(), &t("{[], {[{a, 1}], []}}"));
}

#[test]
fn dot_set_merge_removes_seen_dots() {
    let a = awset("{[{x, [{a, 1}]}, {y, [{a, 2}]}], {[{a, 2}], []}}").unwrap();
    let b = awset("{[{x, [{a, 1}]}, {z, [{b, 1}]}], {[{a, 2}, {b, 1}], []}}").unwrap();
    same(
        &m(&a, &b).unwrap(),
        &t("{[{x, [{a, 1}]}, {z, [{b, 1}]}], {[{a, 2}, {b, 1}], []}}"),
    );
    assert!(matches!(a.merge(&b, TAG).unwrap(), Merged::Right));
}

#[test]
fn union_role_swap_keeps_the_first_seen_term() {
    // Dots are `==` across actors 1 and 1.0; which term survives follows
    // ordsets' role swap.
    let a = awset("{[{x, [{1, 1}, {2, 1}]}], {[], [{1, 1}, {2, 1}]}}").unwrap();
    let b = awset("{[{x, [{0, 1}, {1.0, 1}]}], {[], [{0, 1}, {1.0, 1}]}}").unwrap();
    // U(A, B) emits {0,1} from B, which then leads: {1.0,1} wins over
    // {1,1}, then {2,1}. Every cloud dot then compresses.
    same(
        &m(&a, &b).unwrap(),
        &t("{[{x, [{0, 1}, {1.0, 1}, {2, 1}]}], {[{0, 1}, {1.0, 1}, {2, 1}], []}}"),
    );
    // Without the swap (A's head first) A's term is kept.
    let c = awset("{[{x, [{1.0, 1}, {2, 1}]}], {[], [{1.0, 1}, {2, 1}]}}").unwrap();
    same(
        &m(&a, &c).unwrap(),
        &t("{[{x, [{1, 1}, {2, 1}]}], {[{1, 1}, {2, 1}], []}}"),
    );
}

#[test]
fn keys_equal_but_not_identical_raise() {
    let a = awset("{[{1, [{a, 1}]}], {[{a, 1}], []}}").unwrap();
    let b = awset("{[{1.0, [{b, 1}]}], {[{b, 1}], []}}").unwrap();
    assert_eq!(a.merge(&b, TAG).unwrap_err(), BadCrdt::NotIdentical(TAG));
}

#[test]
fn galloping_merge_matches_a_linear_one() {
    let mut rng = Rng(7);
    for round in 0..40 {
        let n = 1 + rng.next(60);
        let mut ka = String::new();
        let mut kb = String::new();
        let (mut sa, mut sb) = (1u64, 1u64);
        for k in 0..n {
            match rng.next(if round % 2 == 0 { 3 } else { 20 }) {
                0 => {
                    ka.push_str(&format!("{{{k}, [{{a, {sa}}}]}},"));
                    sa += 1;
                }
                1 => {
                    kb.push_str(&format!("{{{k}, [{{b, {sb}}}]}},"));
                    sb += 1;
                }
                _ => {
                    if rng.next(2) == 0 {
                        ka.push_str(&format!("{{{k}, [{{a, {sa}}}]}},"));
                        sa += 1;
                    } else {
                        kb.push_str(&format!("{{{k}, [{{b, {sb}}}]}},"));
                        sb += 1;
                    }
                }
            }
        }
        ka.pop();
        kb.pop();
        let a =
            awset(&format!("{{[{ka}], {{[{{a, {}}}], []}}}}", sa - 1).replace("{a, 0}", "{a, 1}"))
                .unwrap();
        let b =
            awset(&format!("{{[{kb}], {{[{{b, {}}}], []}}}}", sb - 1).replace("{b, 0}", "{b, 1}"))
                .unwrap();
        let r = a.merge(&b, TAG).unwrap().into_state(&a, &b);
        // Every key of both survives: neither saw the other's dots.
        assert_eq!(r.top_keys().len(), a.top_keys().len() + b.top_keys().len());
        let ks = r.top_keys();
        assert!(ks.windows(2).all(|w| w[0].compare(&w[1]) == Ordering::Less));
    }
}

#[test]
fn dot_fun_merge_uses_ivar_and_store_order() {
    let a = mvreg("{[{{a, 1}, x}, {{b, 1}, y}], {[{a, 1}, {b, 1}], []}}").unwrap();
    let b = mvreg("{[{{a, 1}, x}, {{c, 1}, z}], {[{a, 1}, {c, 1}], []}}").unwrap();
    same(
        &m(&a, &b).unwrap(),
        &t("{[{{a, 1}, x}, {{b, 1}, y}, {{c, 1}, z}], {[{a, 1}, {b, 1}, {c, 1}], []}}"),
    );
    let c = mvreg("{[{{a, 1}, w}], {[{a, 1}], []}}").unwrap();
    assert_eq!(a.merge(&c, TAG).unwrap_err(), BadCrdt::Conflict(TAG));
    let u = mvreg("{[{{a, 1}, undefined}], {[{a, 1}], []}}").unwrap();
    same(&m(&u, &c).unwrap(), &t("{[{{a, 1}, w}], {[{a, 1}], []}}"));
    same(&m(&c, &u).unwrap(), &t("{[{{a, 1}, w}], {[{a, 1}], []}}"));
}

#[test]
fn decode_rejects_bad_shapes() {
    assert_eq!(
        awset("{[], {[], []}, x}").unwrap_err(),
        BadCrdt::Malformed(TAG)
    );
    assert_eq!(
        awset("{[{x, []}], {[], []}}").unwrap_err(),
        BadCrdt::Malformed(TAG)
    );
    assert_eq!(
        awset("{[{x, [{a, 0}]}], {[], []}}").unwrap_err(),
        BadCrdt::Malformed(TAG)
    );
    assert_eq!(
        awset("{[{x, [{a, 1.0}]}], {[], []}}").unwrap_err(),
        BadCrdt::Malformed(TAG)
    );
    assert_eq!(
        awset("{[{x, [{a, 2}, {a, 1}]}], {[], []}}").unwrap_err(),
        BadCrdt::Unsorted(TAG)
    );
    assert_eq!(
        awset("{[{x, [{1, 1}, {1.0, 1}]}], {[], []}}").unwrap_err(),
        BadCrdt::Unsorted(TAG)
    );
    assert_eq!(
        awset("{[{y, [{a, 1}]}, {x, [{a, 2}]}], {[], []}}").unwrap_err(),
        BadCrdt::Unsorted(TAG)
    );
    assert_eq!(
        awset("{[{1, [{a, 1}]}, {1.0, [{a, 2}]}], {[], []}}").unwrap_err(),
        BadCrdt::Unsorted(TAG)
    );
    assert_eq!(
        awset("{[], {[{b, 1}, {a, 1}], []}}").unwrap_err(),
        BadCrdt::Unsorted(TAG)
    );
    assert_eq!(
        awset("{[], {[{a, 0}], []}}").unwrap_err(),
        BadCrdt::Malformed(TAG)
    );
    assert_eq!(
        awset("{[], {[], [{a, 2}, {a, 2}]}}").unwrap_err(),
        BadCrdt::Unsorted(TAG)
    );
    assert_eq!(
        awset("{[{x, [{a, 1} | y]}], {[], []}}").unwrap_err(),
        BadCrdt::ImproperList(TAG)
    );
    assert_eq!(
        awset("{[], {[], [{a, 1} | z]}}").unwrap_err(),
        BadCrdt::ImproperList(TAG)
    );
    assert_eq!(awset("{x, {[], []}}").unwrap_err(), BadCrdt::Malformed(TAG));
}

#[test]
fn decode_yields_when_the_budget_runs_out() {
    let mut d = Decoder::new(Limits {
        max_cells: 3,
        max_depth: 4,
        on_exhaust: BadCrdt::Yield,
    });
    let r = Causal::decode(
        &t("{[{x, [{a, 1}]}, {y, [{a, 2}]}], {[{a, 2}], []}}"),
        &Kind::Map(Box::new(Kind::Set)),
        &mut d,
        TAG,
    );
    assert_eq!(r.unwrap_err(), BadCrdt::Yield);
}

#[test]
fn nested_maps_count_depth() {
    let kind = Kind::Map(Box::new(Kind::Map(Box::new(Kind::Set))));
    let p = t("{[{k, [{x, [{a, 1}]}]}], {[{a, 1}], []}}");
    let mut d = Decoder::new(Limits {
        max_cells: 100,
        max_depth: 1,
        on_exhaust: BadCrdt::TooLarge,
    });
    assert_eq!(
        Causal::decode(&p, &kind, &mut d, TAG).unwrap_err(),
        BadCrdt::TooDeep
    );
    let ok = Causal::decode(&p, &kind, &mut Decoder::new(Limits::dirty()), TAG).unwrap();
    let q = Causal::decode(
        &t("{[{k, [{x, [{a, 1}]}, {y, [{b, 1}]}]}], {[{a, 1}, {b, 1}], []}}"),
        &kind,
        &mut Decoder::new(Limits::dirty()),
        TAG,
    )
    .unwrap();
    // Nested merge: both inner keys stay.
    same(
        &m(&ok, &q).unwrap(),
        &t("{[{k, [{x, [{a, 1}]}, {y, [{b, 1}]}]}], {[{a, 1}, {b, 1}], []}}"),
    );
    // A nested key removed in Q (its dot seen, not held) disappears.
    let r = Causal::decode(
        &t("{[{k, [{y, [{b, 1}]}]}], {[{a, 1}, {b, 1}], []}}"),
        &kind,
        &mut Decoder::new(Limits::dirty()),
        TAG,
    )
    .unwrap();
    same(
        &m(&ok, &r).unwrap(),
        &t("{[{k, [{y, [{b, 1}]}]}], {[{a, 1}, {b, 1}], []}}"),
    );
}

#[test]
fn encode_reuses_unchanged_terms() {
    let a = awset("{[{x, [{a, 1}]}, {y, [{a, 2}]}], {[{a, 2}], []}}").unwrap();
    let b = awset("{[{z, [{b, 1}]}], {[{b, 1}], []}}").unwrap();
    let r = a.merge(&b, TAG).unwrap().into_state(&a, &b);
    same(
        &r.encode(&TB),
        &t("{[{x, [{a, 1}]}, {y, [{a, 2}]}, {z, [{b, 1}]}], {[{a, 2}, {b, 1}], []}}"),
    );
    match &r.store {
        Store::Map(mc) => {
            assert!(mc.cells.iter().all(Option::is_some));
            // z ends B's list: the encoding stops there.
            assert_eq!(mc.shared, vec![2]);
        }
        _ => unreachable!(),
    }
}

#[test]
fn merging_a_delta_shares_the_state_tail() {
    let st = t("{[{a, [{x, 1}]}, {b, [{x, 2}]}, {c, [{x, 3}]}, {d, [{x, 4}]}, {e, [{x, 5}]}], {[{x, 5}], []}}");
    let s = Causal::decode(
        &st,
        &Kind::Map(Box::new(Kind::Set)),
        &mut Decoder::new(Limits::dirty()),
        TAG,
    )
    .unwrap();
    // A delta adding `bb` (after b) and removing a's dot.
    let d = awset("{[{bb, [{y, 1}]}], {[{y, 1}], [{x, 1}]}}").unwrap();
    let r = d.merge(&s, TAG).unwrap().into_state(&d, &s);
    let out = r.encode(&TB);
    same(
        &out,
        &t("{[{b, [{x, 2}]}, {bb, [{y, 1}]}, {c, [{x, 3}]}, {d, [{x, 4}]}, {e, [{x, 5}]}], {[{x, 5}, {y, 1}], []}}"),
    );
    // The tail from c on is the state's own list cell, b its own entry.
    let nth_cell = |l: &TT, n: usize| {
        let mut cur = l.clone();
        for _ in 0..n {
            cur = match cur.cell() {
                Cell::Cons(_, tail) => tail,
                _ => cur,
            };
        }
        cur
    };
    let (TT::Tuple(o), TT::Tuple(i)) = (&out, &st) else {
        unreachable!()
    };
    match (nth_cell(&o[0], 2), nth_cell(&i[0], 2)) {
        (TT::List(x), TT::List(y)) => {
            assert!(std::ptr::eq(x.chunk(), y.chunk()) && x.tail().is_none())
        }
        other => panic!("{other:?}"),
    }
    match (nth_cell(&o[0], 0).cell(), nth_cell(&i[0], 1).cell()) {
        (Cell::Cons(TT::Tuple(p), _), Cell::Cons(TT::Tuple(q), _)) => {
            assert!(std::sync::Arc::ptr_eq(&p, &q))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn delta_law_holds_on_random_states() {
    let mut rng = Rng(42);
    for _ in 0..300 {
        let a = random_awset(&mut rng);
        let b = random_awset(&mut rng);
        let d = a.delta(&b, TAG).unwrap();
        let x = a.merge(&b, TAG).unwrap().into_state(&a, &b);
        let y = d.merge(&b, TAG).unwrap().into_state(&d, &b);
        assert!(
            x.equal(&y),
            "a={:?}\nb={:?}\nd={:?}",
            a.encode(&TB),
            b.encode(&TB),
            d.encode(&TB)
        );
        // The delta of a state against itself adds nothing.
        let z = a.delta(&a, TAG).unwrap();
        assert!(z.merge(&a, TAG).unwrap().into_state(&z, &a).equal(&a));
    }
}

/// A replica-like awset: a few actors adding and removing small keys.
fn random_awset(rng: &mut Rng) -> Causal<TT> {
    let kind = Kind::Map(Box::new(Kind::Set));
    let mut s = Causal::bottom(&kind);
    let actors = [t("a"), t("b"), t("{n, 1}")];
    for _ in 0..rng.next(12) {
        let actor = &actors[rng.next(3) as usize];
        let key = TT::int(rng.next(5) as i64);
        let ext = s.extend(actor);
        let delta = if rng.next(3) == 0 {
            let cur = s.key_dots(&key, &ext);
            let cc = cc_from_dots(&cur, ext.rank());
            Causal::new_map_of_sets(ext, vec![], cc)
        } else {
            let seq = s.next_seq(&ext).unwrap() + rng.next(2);
            let next = ext.dot(seq);
            let cur = s.key_dots(&key, &ext);
            let mut cc = cc_from_dots(&cur, ext.rank());
            cc_add_dot(&mut cc, next, ext.rank());
            Causal::new_map_of_sets(ext, vec![(key, vec![next])], cc)
        };
        // Sometimes keep only the delta, as a replica that lost state.
        s = if rng.next(5) == 0 {
            delta
        } else {
            delta.merge(&s, TAG).unwrap().into_state(&delta, &s)
        };
    }
    s
}
