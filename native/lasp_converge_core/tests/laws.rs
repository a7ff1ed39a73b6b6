//! Lattice laws of every type, checked on random histories.
//!
//! A history forks two or three replicas, each with its own actor (an atom,
//! a binary or a tuple), runs random operations from the type's op table
//! through `api::mutate`, and merges random pairs in either argument order.
//! Every state a replica passes through (and bottom) goes into a pool; each
//! law is then checked on states picked from that pool, so it sees both
//! divergent replicas and a state against its own later self:
//!
//! - `prop_merge_commutative_*`: `merge(A, B)` equals `merge(B, A)`;
//! - `prop_merge_associative_*`: `merge(merge(A, B), C)` equals
//!   `merge(A, merge(B, C))`;
//! - `prop_merge_idempotent_*`: `merge(A, A)` equals `A`;
//! - `prop_merge_inflates_*`: `merge(A, B)` inflates both `A` and `B`;
//! - `prop_inflation_is_merge_*`: `is_inflation(A, B)` exactly when
//!   `merge(A, B)` equals `B`;
//! - `prop_delta_merge_*`: `merge(delta(A, B), B)` equals `merge(A, B)`;
//! - `prop_bottom_identity_*`: `new()` is bottom and `merge` with it gives
//!   back an equal state, on either side.
//!
//! "Equals" is the type's own `equal`. One exception is the reference's
//! own: lwwregister keeps the second argument on a timestamp tie, so its
//! commutativity is checked only between different timestamps.
//! Where lasp-lang/types raises on a
//! merge (two different ivar values, `==` but not `=:=` dot-map keys), the
//! core refuses it too, and the laws say nothing about that pair; the same
//! goes for an `equal` or `is_inflation` that types raises on (bcounter
//! once both sides hold the same transfer). A type
//! whose lattice is still a stub is skipped with a note.
//!
//! Runs are deterministic (a fixed seed); `LASP_LAW_CASES` sets the number
//! of histories per test (default 256).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use lasp_converge_core::api;
use lasp_converge_core::lattice::MutateCx;
use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
use lasp_converge_core::tracker::witness::{
    atoms_of_term, ranks_decide, witness_atoms_of_term, View,
};
use lasp_converge_core::{BadCrdt, Limits, Term};

/// Most states a history keeps for the law checks.
const POOL_MAX: usize = 64;

// ---------------------------------------------------------------------------
// Deterministic mutation context
// ---------------------------------------------------------------------------

/// Tokens are 20-byte binaries, as `crypto:strong_rand_bytes(20)` gives,
/// drawn from a counter through splitmix64 so they sort in no particular
/// order but every run makes the same ones.
#[derive(Clone)]
struct Cx {
    next: u64,
}

impl MutateCx<T> for Cx {
    type B = OwnedBuilder;
    fn builder(&self) -> &OwnedBuilder {
        &OwnedBuilder
    }
    fn token(&mut self) -> T {
        let mut bytes = Vec::with_capacity(24);
        for _ in 0..3 {
            self.next = self.next.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.next;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
        }
        bytes.truncate(20);
        T::bin(&bytes)
    }
}

// ---------------------------------------------------------------------------
// Histories
// ---------------------------------------------------------------------------

fn actors() -> Vec<T> {
    vec![
        T::atom("node1@127.0.0.1"),
        T::bin(b"actor-2"),
        T::tuple([T::atom("lasp3@host"), T::int(3)]),
        T::atom("node4@127.0.0.1"),
        T::bin(b"actor-5"),
        T::tuple([T::atom("lasp6@host"), T::int(6)]),
    ]
}

/// Elements, values and keys: ints, binaries, atoms, tuples, a list.
fn elems() -> Vec<T> {
    vec![
        T::int(0),
        T::int(1),
        T::int(-7),
        T::bin(b"x"),
        T::bin(b"y"),
        T::atom("a"),
        T::atom("b"),
        T::tuple([T::int(1), T::atom("a")]),
        T::tuple([T::bin(b"z"), T::list([T::int(1), T::int(2)])]),
        T::list([T::atom("a")]),
        // `==` to 1 but not `=:=`: only for the types that take it (see
        // `float_ok`); elsewhere it is replaced by `1`.
        T::float(1.0),
    ]
}

/// Types whose ops may mix `1` and `1.0`: their merges accept `==`
/// elements. awset (and ivar values across replicas) would raise, as types
/// does; ivar keeps the float so that its conflicts are exercised.
fn float_ok(ty: &str) -> bool {
    matches!(
        ty,
        "state_gset"
            | "state_twopset"
            | "state_orset"
            | "state_lwwregister"
            | "state_mvregister"
            | "state_ivar"
    )
}

#[derive(Debug, Clone)]
enum Step {
    /// Replica `replica` runs op number `kind` of the type's table, with
    /// `elem`/`elems` indexing `elems()` and `ts` as a timestamp.
    Op {
        replica: usize,
        kind: u8,
        elem: usize,
        elems: Vec<usize>,
        ts: i64,
    },
    /// `to := merge(to, from)`, or `merge(from, to)` when `flip`.
    Merge { from: usize, to: usize, flip: bool },
}

#[derive(Debug, Clone)]
struct History {
    replicas: usize,
    actor_offset: usize,
    steps: Vec<Step>,
    picks: [Index; 3],
}

fn step() -> impl Strategy<Value = Step> {
    let n = elems().len();
    prop_oneof![
        3 => (0..3usize, any::<u8>(), 0..n, prop::collection::vec(0..n, 0..4), -3i64..8).prop_map(
            |(replica, kind, elem, elems, ts)| Step::Op {
                replica,
                kind,
                elem,
                elems,
                ts,
            }
        ),
        1 => (0..3usize, 0..3usize, any::<bool>())
            .prop_map(|(from, to, flip)| Step::Merge { from, to, flip }),
    ]
}

fn history() -> impl Strategy<Value = History> {
    (
        2..=3usize,
        0..actors().len(),
        prop::collection::vec(step(), 0..24),
        prop::array::uniform3(any::<Index>()),
    )
        .prop_map(|(replicas, actor_offset, steps, picks)| History {
            replicas,
            actor_offset,
            steps,
            picks,
        })
}

/// The op term for one step, per lasp-lang/types 0.1.8's op forms.
fn op(ty: &str, kind: u8, elem: &T, elems: Vec<T>, ts: i64) -> T {
    let a = T::atom;
    let tagged = |name: &str, arg: T| T::tuple([a(name), arg]);
    match ty {
        "state_gcounter" | "state_max_int" => a("increment"),
        "state_pncounter" | "state_lexcounter" => a(if kind.is_multiple_of(2) {
            "increment"
        } else {
            "decrement"
        }),
        "state_boolean" => a("true"),
        "state_ewflag" | "state_dwflag" => a(if kind.is_multiple_of(2) {
            "enable"
        } else {
            "disable"
        }),
        "state_gset" => tagged("add", elem.clone()),
        "state_twopset" => tagged(
            if kind.is_multiple_of(2) { "add" } else { "rmv" },
            elem.clone(),
        ),
        "state_orset" | "state_awset" | "state_awset_ps" => match kind % 4 {
            0 => tagged("add", elem.clone()),
            1 => tagged("rmv", elem.clone()),
            2 => tagged("add_all", T::list(elems)),
            _ => tagged("rmv_all", T::list(elems)),
        },
        "state_ivar" => tagged("set", elem.clone()),
        "state_lwwregister" => T::tuple([a("set"), T::int(ts), elem.clone()]),
        // The timestamp is ignored by types but must be a non-negative integer.
        "state_mvregister" => T::tuple([a("set"), T::int(ts.max(0)), elem.clone()]),
        // The default gmap holds max_ints.
        "state_gmap" => T::tuple([a("apply"), elem.clone(), a("increment")]),
        // The default pair holds two ivars: setting one twice raises.
        "state_pair" => tagged(
            if kind.is_multiple_of(2) { "fst" } else { "snd" },
            tagged("set", elem.clone()),
        ),
        // The default awmap holds awsets.
        "state_awmap" => {
            let e = elems.first().cloned().unwrap_or_else(|| elem.clone());
            match kind % 3 {
                0 => T::tuple([a("apply"), elem.clone(), tagged("add", e)]),
                1 => T::tuple([a("apply"), elem.clone(), tagged("rmv", e)]),
                _ => tagged("rmv", elem.clone()),
            }
        }
        "state_bcounter" => match kind % 3 {
            0 => a("increment"),
            1 => a("decrement"),
            // Rights move to one of the history's actors.
            _ => T::tuple([
                a("move"),
                T::int(1),
                actors()[usize::from(kind) % 3].clone(),
            ]),
        },
        other => panic!("no op table for {other}"),
    }
}

/// Why a history or a check could not go on.
enum Stop {
    /// The type is still a stub.
    NotImplemented,
    /// lasp-lang/types raises on this `equal`/`is_inflation` too (bcounter
    /// once both sides hold the same transfer): the pair is outside the
    /// lattice and the law says nothing about it.
    Raises,
    /// A real failure.
    Fail(String),
}

fn lim() -> Limits {
    Limits::dirty()
}

/// Whether lasp-lang/types raises on this call too (so the core refusing it
/// is expected and the pair is outside the lattice).
fn types_raises(e: &BadCrdt) -> bool {
    matches!(e, BadCrdt::Conflict(_) | BadCrdt::NotIdentical(_))
}

fn bad(what: &str, e: BadCrdt) -> Stop {
    match e {
        BadCrdt::NotImplemented(_) => Stop::NotImplemented,
        e => Stop::Fail(format!("{what}: {e:?}")),
    }
}

fn bottom(ty: &str) -> Result<T, Stop> {
    api::new(&OwnedBuilder, &T::atom(ty)).map_err(|e| bad("new", e))
}

/// `merge(A, B)`, or `None` where types raises too.
fn merge(a: &T, b: &T) -> Result<Option<T>, Stop> {
    match api::merge(&OwnedBuilder, a, b, lim()) {
        Ok(m) => Ok(Some(m)),
        Err(e) if types_raises(&e) => Ok(None),
        Err(e) => Err(bad(&format!("merge({a}, {b})"), e)),
    }
}

fn equal(a: &T, b: &T) -> Result<bool, Stop> {
    api::equal(a, b, lim()).map_err(|e| match e {
        e if types_raises(&e) => Stop::Raises,
        e => bad(&format!("equal({a}, {b})"), e),
    })
}

fn is_inflation(a: &T, b: &T) -> Result<bool, Stop> {
    api::is_inflation(a, b, lim()).map_err(|e| match e {
        e if types_raises(&e) => Stop::Raises,
        e => bad(&format!("is_inflation({a}, {b})"), e),
    })
}

/// Run a history; every state seen, bottom first.
fn simulate(ty: &str, h: &History) -> Result<Vec<T>, Stop> {
    let pool_actors = actors();
    let pool_elems: Vec<T> = elems()
        .into_iter()
        .map(|e| {
            if matches!(e, T::Float(_)) && !float_ok(ty) {
                T::int(1)
            } else {
                e
            }
        })
        .collect();
    let bot = bottom(ty)?;
    let mut cx = Cx { next: 0 };
    let mut replicas = vec![bot.clone(); h.replicas];
    let mut seen = vec![bot];
    for s in &h.steps {
        match s {
            Step::Op {
                replica,
                kind,
                elem,
                elems,
                ts,
            } => {
                let r = replica % h.replicas;
                let actor = &pool_actors[(h.actor_offset + r) % pool_actors.len()];
                let es = elems.iter().map(|i| pool_elems[*i].clone()).collect();
                let o = op(ty, *kind, &pool_elems[*elem], es, *ts);
                // `mutate_delta` (one decode) gives what `mutate` and
                // `delta_mutate` give, from the same tokens.
                let fused = api::mutate_delta(&mut cx.clone(), &o, actor, &replicas[r], lim());
                let parts = (
                    api::mutate(&mut cx.clone(), &o, actor, &replicas[r], lim()),
                    api::delta_mutate(&mut cx.clone(), &o, actor, &replicas[r], lim()),
                );
                mutate_delta_agrees(&o, &replicas[r], fused, parts)?;
                let out = match api::mutate(&mut cx, &o, actor, &replicas[r], lim()) {
                    Ok(out) => out,
                    // e.g. setting an ivar twice: types raises, nothing changes.
                    Err(e) if types_raises(&e) => continue,
                    Err(e) => {
                        return Err(bad(&format!("mutate({o}, {actor}, {})", replicas[r]), e))
                    }
                };
                match out.as_pair() {
                    Some((tag, s1)) if tag.atom_name() == Some("ok") => replicas[r] = s1,
                    // `{error, Reason}` (a precondition): the state stays.
                    Some((tag, _)) if tag.atom_name() == Some("error") => continue,
                    _ => return Err(Stop::Fail(format!("mutate({o}) gave {out}"))),
                }
                seen.push(replicas[r].clone());
            }
            Step::Merge { from, to, flip } => {
                let (f, t) = (from % h.replicas, to % h.replicas);
                let (x, y) = if *flip {
                    (&replicas[f], &replicas[t])
                } else {
                    (&replicas[t], &replicas[f])
                };
                if let Some(m) = merge(x, y)? {
                    replicas[t] = m;
                    seen.push(replicas[t].clone());
                }
            }
        }
    }
    seen.extend(replicas);
    if seen.len() > POOL_MAX {
        let n = seen.len();
        seen.drain(1..n - POOL_MAX + 1);
    }
    Ok(seen)
}

/// `mutate_delta(Op, S)` is `{ok, mutate, delta_mutate}` term for term, or
/// the same `{error, _}`, or fails where they fail.
fn mutate_delta_agrees(
    o: &T,
    s: &T,
    fused: Result<T, BadCrdt>,
    (m, d): (Result<T, BadCrdt>, Result<T, BadCrdt>),
) -> Result<(), Stop> {
    let same = match (&fused, &m, &d) {
        (Ok(f), Ok(m), Ok(d)) => match (m.as_pair(), d.as_pair()) {
            (Some((ok, post)), Some((_, delta))) if ok.atom_name() == Some("ok") => {
                f.identical(&T::tuple([T::atom("ok"), post, delta]))
            }
            _ => f.identical(m),
        },
        (Err(a), Err(b), _) => format!("{a:?}") == format!("{b:?}"),
        _ => false,
    };
    if same {
        return Ok(());
    }
    fail(format!(
        "Op = {o}\nS = {s}\nmutate_delta = {fused:?}\nmutate = {m:?}\ndelta_mutate = {d:?}"
    ))
}

// ---------------------------------------------------------------------------
// Laws
// ---------------------------------------------------------------------------

type Law = fn(&str, &T, &T, &T) -> Result<(), Stop>;

fn fail(msg: String) -> Result<(), Stop> {
    Err(Stop::Fail(msg))
}

/// The timestamp of an lwwregister state `{state_lwwregister, {Ts, V}}`.
fn lww_ts(s: &T) -> Option<T> {
    s.tuple_elem(1)?.tuple_elem(0)
}

fn commutative(ty: &str, a: &T, b: &T, _: &T) -> Result<(), Stop> {
    // types' lwwregister keeps the *second* argument on a timestamp tie, so
    // its merge commutes only between different timestamps (the
    // conformance vectors pin which side wins a tie).
    if ty == "state_lwwregister" && lww_ts(a).zip(lww_ts(b)).is_some_and(|(x, y)| x.equal(&y)) {
        return Ok(());
    }
    match (merge(a, b)?, merge(b, a)?) {
        (None, None) => Ok(()),
        (Some(ab), Some(ba)) if equal(&ab, &ba)? => Ok(()),
        (ab, ba) => fail(format!(
            "A = {a}\nB = {b}\nmerge(A, B) = {ab:?}\nmerge(B, A) = {ba:?}"
        )),
    }
}

fn associative(_: &str, a: &T, b: &T, c: &T) -> Result<(), Stop> {
    let left = match merge(a, b)? {
        Some(ab) => merge(&ab, c)?,
        None => return Ok(()),
    };
    let right = match merge(b, c)? {
        Some(bc) => merge(a, &bc)?,
        None => return Ok(()),
    };
    match (left, right) {
        (Some(l), Some(r)) if !equal(&l, &r)? => fail(format!(
            "A = {a}\nB = {b}\nC = {c}\nmerge(merge(A, B), C) = {l}\nmerge(A, merge(B, C)) = {r}"
        )),
        _ => Ok(()),
    }
}

fn idempotent(_: &str, a: &T, _: &T, _: &T) -> Result<(), Stop> {
    match merge(a, a)? {
        // types raises on merge(X, X) too (a bcounter holding a transfer).
        None => Ok(()),
        Some(aa) if equal(&aa, a)? => Ok(()),
        aa => fail(format!("A = {a}\nmerge(A, A) = {aa:?}")),
    }
}

fn inflates(_: &str, a: &T, b: &T, _: &T) -> Result<(), Stop> {
    let Some(m) = merge(a, b)? else {
        return Ok(());
    };
    if is_inflation(a, &m)? && is_inflation(b, &m)? {
        return Ok(());
    }
    fail(format!(
        "A = {a}\nB = {b}\nM = merge(A, B) = {m}\nis_inflation(A, M) = {}\nis_inflation(B, M) = {}",
        is_inflation(a, &m)?,
        is_inflation(b, &m)?
    ))
}

fn inflation_is_merge(_: &str, a: &T, b: &T, _: &T) -> Result<(), Stop> {
    let Some(m) = merge(a, b)? else {
        return Ok(());
    };
    let infl = is_inflation(a, b)?;
    let eq = equal(&m, b)?;
    if infl == eq {
        return Ok(());
    }
    fail(format!(
        "A = {a}\nB = {b}\nis_inflation(A, B) = {infl}\nmerge(A, B) = {m}\nequal(merge(A, B), B) = {eq}"
    ))
}

fn delta_merge(_: &str, a: &T, b: &T, _: &T) -> Result<(), Stop> {
    let Some(m) = merge(a, b)? else {
        return Ok(());
    };
    let d =
        api::delta(&OwnedBuilder, a, b, lim()).map_err(|e| bad(&format!("delta({a}, {b})"), e))?;
    match merge(&d, b)? {
        Some(db) if equal(&db, &m)? => Ok(()),
        db => fail(format!(
            "A = {a}\nB = {b}\ndelta(A, B) = {d}\nmerge(delta(A, B), B) = {db:?}\nmerge(A, B) = {m}"
        )),
    }
}

fn bottom_identity(ty: &str, a: &T, _: &T, _: &T) -> Result<(), Stop> {
    let bot = bottom(ty)?;
    if !api::is_bottom(&bot, lim()).map_err(|e| bad("is_bottom(new())", e))? {
        return fail(format!("is_bottom(new()) is false for {bot}"));
    }
    let left = merge(&bot, a)?;
    let right = merge(a, &bot)?;
    match (&left, &right) {
        (Some(l), Some(r)) if equal(l, a)? && equal(r, a)? => Ok(()),
        _ => fail(format!(
            "A = {a}\nmerge(new(), A) = {left:?}\nmerge(A, new()) = {right:?}"
        )),
    }
}

/// The tracker's witness index is complete: when a node's state `Last`
/// does not hold a witness `W` and `S = Last ⊔ D` does, some atom of `W`
/// falls in a range that `D`'s atoms open (`View::changed`), so the
/// indexed observation checks `W`. `D` is `delta(S, Last)` (the change an
/// observed state brings) and `B` itself (a delta a member sends); `W` is
/// `C` and `delta(C, A)`.
fn index_complete(_: &str, a: &T, b: &T, c: &T) -> Result<(), Stop> {
    let Some(s) = merge(a, b)? else {
        return Ok(());
    };
    let delta = |x: &T, y: &T| match api::delta(&OwnedBuilder, x, y, lim()) {
        Ok(d) => Ok(Some(d)),
        Err(e) if types_raises(&e) => Ok(None),
        Err(e) => Err(bad(&format!("delta({x}, {y})"), e)),
    };
    let Some(dsa) = delta(&s, a)? else {
        return Ok(());
    };
    let dca = delta(c, a)?;
    for w in std::iter::once(c).chain(dca.as_ref()) {
        let Some(wa) = witness_atoms_of_term(w) else {
            continue;
        };
        if wa.is_empty() || is_inflation(w, a)? || !is_inflation(w, &s)? {
            continue;
        }
        for d in [&dsa, b] {
            let mut view = View::default();
            if let Some(la) = atoms_of_term(a) {
                view.changed(&la);
            }
            let Some(da) = atoms_of_term(d) else {
                continue;
            };
            let ranges = view.changed(&da);
            let found = wa.iter().any(|x| {
                ranges
                    .iter()
                    .any(|&(p, lo, hi)| p == x.pos && lo <= x.rank && x.rank <= hi)
            });
            if !found {
                return fail(format!(
                    "W = {w}\nLast = {a}\nD = {d}\nS = {s}\natoms(W) = {wa:?}\nranges(D) = {ranges:?}"
                ));
            }
        }
    }
    Ok(())
}

/// For the types whose ranks decide (`ranks_decide`), a state holds a
/// witness exactly when its ranks cover the witness's atoms: `S`'s view,
/// built whole or as the tracker builds it (`A`'s, then the change
/// `delta(S, A)`), answers `is_inflation(W, S)` for `W` in `C`,
/// `delta(C, A)`, `delta(C, B)`.
fn ranks_decide_law(ty: &str, a: &T, b: &T, c: &T) -> Result<(), Stop> {
    let tag = match lasp_converge_core::crdt::TYPES
        .iter()
        .find(|t| t.name() == ty)
    {
        Some(t) => *t,
        None => return fail(format!("unknown type {ty}")),
    };
    if !ranks_decide(tag) {
        return Ok(());
    }
    let Some(s) = merge(a, b)? else {
        return Ok(());
    };
    let delta = |x: &T, y: &T| match api::delta(&OwnedBuilder, x, y, lim()) {
        Ok(d) => Ok(Some(d)),
        Err(e) if types_raises(&e) => Ok(None),
        Err(e) => Err(bad(&format!("delta({x}, {y})"), e)),
    };
    let (Some(sa), Some(aa)) = (atoms_of_term(&s), atoms_of_term(a)) else {
        return Ok(());
    };
    let whole = View::of(&sa);
    let mut built = View::of(&aa);
    if let Some(d) = delta(&s, a)? {
        match atoms_of_term(&d) {
            Some(da) => {
                built.changed(&da);
            }
            None => built = whole.clone(),
        }
    }
    let ws = [Some(c.clone()), delta(c, a)?, delta(c, b)?];
    for w in ws.iter().flatten() {
        let Some(wa) = witness_atoms_of_term(w) else {
            continue;
        };
        if !View::decides(&wa) {
            continue;
        }
        let infl = is_inflation(w, &s)?;
        for (how, v) in [("whole", &whole), ("built", &built)] {
            if v.covers(&wa) != infl {
                return fail(format!(
                    "W = {w}\nS = {s}\nA = {a}\nis_inflation(W, S) = {infl}, {how} view covers = {}",
                    !infl
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------

fn cases() -> u32 {
    std::env::var("LASP_LAW_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

fn check(ty: &'static str, name: &str, law: Law) {
    // A stub refuses to decode even its own bottom.
    let implemented = bottom(ty)
        .and_then(|bot| api::is_bottom(&bot, lim()).map_err(|e| bad("is_bottom(new())", e)));
    match implemented {
        Err(Stop::NotImplemented) => {
            println!("{name}: skipped, {ty} is not implemented yet");
            return;
        }
        Err(Stop::Fail(msg)) => panic!("{name}: {msg}"),
        Err(Stop::Raises) => panic!("{name}: is_bottom(new()) raised"),
        Ok(_) => {}
    }
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&history(), |h| {
        let pool = match simulate(ty, &h) {
            Ok(pool) => pool,
            Err(Stop::NotImplemented | Stop::Raises) => return Ok(()),
            Err(Stop::Fail(msg)) => return Err(TestCaseError::fail(format!("history: {msg}"))),
        };
        let [i, j, k] = &h.picks;
        let (a, b, c) = (i.get(&pool), j.get(&pool), k.get(&pool));
        match law(ty, a, b, c) {
            Ok(()) | Err(Stop::NotImplemented | Stop::Raises) => Ok(()),
            Err(Stop::Fail(msg)) => Err(TestCaseError::fail(msg)),
        }
    });
    if let Err(e) = result {
        panic!("{name} ({ty}) fails:\n{e}");
    }
}

macro_rules! laws {
    ($($ty:literal: $comm:ident, $assoc:ident, $idem:ident, $infl:ident, $iff:ident, $delta:ident, $bot:ident;)*) => {
        $(
            #[test]
            fn $comm() {
                check($ty, stringify!($comm), commutative);
            }
            #[test]
            fn $assoc() {
                check($ty, stringify!($assoc), associative);
            }
            #[test]
            fn $idem() {
                check($ty, stringify!($idem), idempotent);
            }
            #[test]
            fn $infl() {
                check($ty, stringify!($infl), inflates);
            }
            #[test]
            fn $iff() {
                check($ty, stringify!($iff), inflation_is_merge);
            }
            #[test]
            fn $delta() {
                check($ty, stringify!($delta), delta_merge);
            }
            #[test]
            fn $bot() {
                check($ty, stringify!($bot), bottom_identity);
            }
        )*

        /// Every type the core registers has its laws above.
        #[test]
        fn every_type_has_laws() {
            let covered = [$($ty),*];
            for t in lasp_converge_core::crdt::TYPES {
                assert!(covered.contains(&t.name()), "no law tests for {}", t.name());
            }
        }
    };
}

laws! {
    "state_gcounter": prop_merge_commutative_gcounter, prop_merge_associative_gcounter,
        prop_merge_idempotent_gcounter, prop_merge_inflates_gcounter,
        prop_inflation_is_merge_gcounter, prop_delta_merge_gcounter,
        prop_bottom_identity_gcounter;
    "state_pncounter": prop_merge_commutative_pncounter, prop_merge_associative_pncounter,
        prop_merge_idempotent_pncounter, prop_merge_inflates_pncounter,
        prop_inflation_is_merge_pncounter, prop_delta_merge_pncounter,
        prop_bottom_identity_pncounter;
    "state_gset": prop_merge_commutative_gset, prop_merge_associative_gset,
        prop_merge_idempotent_gset, prop_merge_inflates_gset,
        prop_inflation_is_merge_gset, prop_delta_merge_gset,
        prop_bottom_identity_gset;
    "state_twopset": prop_merge_commutative_twopset, prop_merge_associative_twopset,
        prop_merge_idempotent_twopset, prop_merge_inflates_twopset,
        prop_inflation_is_merge_twopset, prop_delta_merge_twopset,
        prop_bottom_identity_twopset;
    "state_orset": prop_merge_commutative_orset, prop_merge_associative_orset,
        prop_merge_idempotent_orset, prop_merge_inflates_orset,
        prop_inflation_is_merge_orset, prop_delta_merge_orset,
        prop_bottom_identity_orset;
    "state_awset": prop_merge_commutative_awset, prop_merge_associative_awset,
        prop_merge_idempotent_awset, prop_merge_inflates_awset,
        prop_inflation_is_merge_awset, prop_delta_merge_awset,
        prop_bottom_identity_awset;
    "state_lwwregister": prop_merge_commutative_lwwregister, prop_merge_associative_lwwregister,
        prop_merge_idempotent_lwwregister, prop_merge_inflates_lwwregister,
        prop_inflation_is_merge_lwwregister, prop_delta_merge_lwwregister,
        prop_bottom_identity_lwwregister;
    "state_boolean": prop_merge_commutative_boolean, prop_merge_associative_boolean,
        prop_merge_idempotent_boolean, prop_merge_inflates_boolean,
        prop_inflation_is_merge_boolean, prop_delta_merge_boolean,
        prop_bottom_identity_boolean;
    "state_ivar": prop_merge_commutative_ivar, prop_merge_associative_ivar,
        prop_merge_idempotent_ivar, prop_merge_inflates_ivar,
        prop_inflation_is_merge_ivar, prop_delta_merge_ivar,
        prop_bottom_identity_ivar;
    "state_max_int": prop_merge_commutative_max_int, prop_merge_associative_max_int,
        prop_merge_idempotent_max_int, prop_merge_inflates_max_int,
        prop_inflation_is_merge_max_int, prop_delta_merge_max_int,
        prop_bottom_identity_max_int;
    "state_mvregister": prop_merge_commutative_mvregister, prop_merge_associative_mvregister,
        prop_merge_idempotent_mvregister, prop_merge_inflates_mvregister,
        prop_inflation_is_merge_mvregister, prop_delta_merge_mvregister,
        prop_bottom_identity_mvregister;
    "state_ewflag": prop_merge_commutative_ewflag, prop_merge_associative_ewflag,
        prop_merge_idempotent_ewflag, prop_merge_inflates_ewflag,
        prop_inflation_is_merge_ewflag, prop_delta_merge_ewflag,
        prop_bottom_identity_ewflag;
    "state_dwflag": prop_merge_commutative_dwflag, prop_merge_associative_dwflag,
        prop_merge_idempotent_dwflag, prop_merge_inflates_dwflag,
        prop_inflation_is_merge_dwflag, prop_delta_merge_dwflag,
        prop_bottom_identity_dwflag;
    "state_lexcounter": prop_merge_commutative_lexcounter, prop_merge_associative_lexcounter,
        prop_merge_idempotent_lexcounter, prop_merge_inflates_lexcounter,
        prop_inflation_is_merge_lexcounter, prop_delta_merge_lexcounter,
        prop_bottom_identity_lexcounter;
    "state_gmap": prop_merge_commutative_gmap, prop_merge_associative_gmap,
        prop_merge_idempotent_gmap, prop_merge_inflates_gmap,
        prop_inflation_is_merge_gmap, prop_delta_merge_gmap,
        prop_bottom_identity_gmap;
    "state_pair": prop_merge_commutative_pair, prop_merge_associative_pair,
        prop_merge_idempotent_pair, prop_merge_inflates_pair,
        prop_inflation_is_merge_pair, prop_delta_merge_pair,
        prop_bottom_identity_pair;
    "state_awmap": prop_merge_commutative_awmap, prop_merge_associative_awmap,
        prop_merge_idempotent_awmap, prop_merge_inflates_awmap,
        prop_inflation_is_merge_awmap, prop_delta_merge_awmap,
        prop_bottom_identity_awmap;
    "state_awset_ps": prop_merge_commutative_awset_ps, prop_merge_associative_awset_ps,
        prop_merge_idempotent_awset_ps, prop_merge_inflates_awset_ps,
        prop_inflation_is_merge_awset_ps, prop_delta_merge_awset_ps,
        prop_bottom_identity_awset_ps;
    "state_bcounter": prop_merge_commutative_bcounter, prop_merge_associative_bcounter,
        prop_merge_idempotent_bcounter, prop_merge_inflates_bcounter,
        prop_inflation_is_merge_bcounter, prop_delta_merge_bcounter,
        prop_bottom_identity_bcounter;
}

/// The harness itself: a broken "merge" is caught. Here the law is checked
/// with a deliberately wrong equality (`=:=` on two states built in
/// different orders is fine, but claiming `merge(A, B)` equals `A` is not).
#[test]
fn harness_catches_a_broken_law() {
    fn broken(_: &str, a: &T, b: &T, _: &T) -> Result<(), Stop> {
        let m = merge(a, b)?.expect("gcounter merges");
        if equal(&m, a)? {
            Ok(())
        } else {
            fail(format!("{m} is not {a}"))
        }
    }
    let r = std::panic::catch_unwind(|| check("state_gcounter", "broken", broken));
    assert!(r.is_err(), "a law that does not hold passed");
}

/// The histories are not trivial: replicas diverge, ops apply and merges
/// meet states of several actors.
#[test]
fn histories_reach_rich_states() {
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let (mut states, mut biggest, mut most_actors) = (0, 0, 0);
    for _ in 0..64 {
        let h = history()
            .new_tree(&mut runner)
            .expect("a history")
            .current();
        let Ok(pool) = simulate("state_gcounter", &h) else {
            panic!("gcounter history failed");
        };
        states += pool.len();
        for s in &pool {
            let q = api::query(&OwnedBuilder, s, lim())
                .expect("query")
                .as_i64()
                .unwrap_or(0);
            biggest = biggest.max(q);
            let actors = s
                .tuple_elem(1)
                .and_then(|p| p.list_elems())
                .map_or(0, |l| l.len());
            most_actors = most_actors.max(actors);
        }
    }
    assert!(states > 64 * 8, "only {states} states over 64 histories");
    assert!(biggest >= 10, "counts stay below {biggest}");
    assert_eq!(most_actors, 3, "merges never joined three replicas");
}

// The witness index of the tracker, for every type.
macro_rules! tracker_laws {
    ($law:ident: $($ty:literal => $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check($ty, stringify!($name), $law);
            }
        )*
    };
}

tracker_laws! {
    index_complete:
    "state_gcounter" => prop_index_complete_gcounter,
    "state_pncounter" => prop_index_complete_pncounter,
    "state_gset" => prop_index_complete_gset,
    "state_twopset" => prop_index_complete_twopset,
    "state_orset" => prop_index_complete_orset,
    "state_awset" => prop_index_complete_awset,
    "state_lwwregister" => prop_index_complete_lwwregister,
    "state_boolean" => prop_index_complete_boolean,
    "state_ivar" => prop_index_complete_ivar,
    "state_max_int" => prop_index_complete_max_int,
    "state_mvregister" => prop_index_complete_mvregister,
    "state_ewflag" => prop_index_complete_ewflag,
    "state_dwflag" => prop_index_complete_dwflag,
    "state_lexcounter" => prop_index_complete_lexcounter,
    "state_gmap" => prop_index_complete_gmap,
    "state_pair" => prop_index_complete_pair,
    "state_awmap" => prop_index_complete_awmap,
    "state_awset_ps" => prop_index_complete_awset_ps,
    "state_bcounter" => prop_index_complete_bcounter,
}

tracker_laws! {
    ranks_decide_law:
    "state_gcounter" => prop_ranks_decide_gcounter,
    "state_pncounter" => prop_ranks_decide_pncounter,
    "state_gset" => prop_ranks_decide_gset,
    "state_twopset" => prop_ranks_decide_twopset,
    "state_orset" => prop_ranks_decide_orset,
    "state_awset" => prop_ranks_decide_awset,
    "state_lwwregister" => prop_ranks_decide_lwwregister,
    "state_boolean" => prop_ranks_decide_boolean,
    "state_ivar" => prop_ranks_decide_ivar,
    "state_max_int" => prop_ranks_decide_max_int,
    "state_mvregister" => prop_ranks_decide_mvregister,
    "state_ewflag" => prop_ranks_decide_ewflag,
    "state_dwflag" => prop_ranks_decide_dwflag,
    "state_lexcounter" => prop_ranks_decide_lexcounter,
    "state_gmap" => prop_ranks_decide_gmap,
    "state_pair" => prop_ranks_decide_pair,
    "state_awmap" => prop_ranks_decide_awmap,
    "state_awset_ps" => prop_ranks_decide_awset_ps,
    "state_bcounter" => prop_ranks_decide_bcounter,
}

/// `merge_added(A, B)` is `{merge(A, B), delta(B, A)}` term for term, and
/// `merge(A, Added)` equals the merge; when the merge adds nothing it gives
/// back `A` itself with a bottom. (On an lwwregister timestamp tie the
/// merge takes `B`, which does not strictly inflate `A`: there `Added` is
/// still `delta(B, A)`, a bottom, and the join check says nothing.)
fn merge_added_law(ty: &str, a: &T, b: &T, _: &T) -> Result<(), Stop> {
    let tie =
        ty == "state_lwwregister" && lww_ts(a).zip(lww_ts(b)).is_some_and(|(x, y)| x.equal(&y));
    let Some(m) = merge(a, b)? else {
        return Ok(());
    };
    let got = api::merge_added(&OwnedBuilder, a, b, lim())
        .map_err(|e| bad(&format!("merge_added({a}, {b})"), e))?;
    let Some((gm, added)) = got.as_pair() else {
        return fail(format!("merge_added({a}, {b}) = {got}"));
    };
    if equal(&m, a)? {
        let bot = api::is_bottom(&added, lim()).map_err(|e| bad("is_bottom", e))?;
        if gm.identical(a) && bot {
            return Ok(());
        }
        return fail(format!("A = {a}\nB = {b}\nunchanged, merge_added = {got}"));
    }
    let d = api::delta(&OwnedBuilder, b, a, lim()).map_err(|e| bad("delta", e))?;
    let joined = merge(a, &added)?;
    let ok = gm.identical(&m)
        && added.identical(&d)
        && match &joined {
            Some(_) if tie => true,
            Some(j) => equal(j, &m)?,
            None => false,
        };
    if ok {
        return Ok(());
    }
    fail(format!(
        "A = {a}\nB = {b}\nmerge_added = {got}\nmerge = {m}\ndelta(B, A) = {d}\nmerge(A, Added) = {joined:?}"
    ))
}

tracker_laws! {
    merge_added_law:
    "state_gcounter" => prop_merge_added_gcounter,
    "state_pncounter" => prop_merge_added_pncounter,
    "state_gset" => prop_merge_added_gset,
    "state_twopset" => prop_merge_added_twopset,
    "state_orset" => prop_merge_added_orset,
    "state_awset" => prop_merge_added_awset,
    "state_lwwregister" => prop_merge_added_lwwregister,
    "state_boolean" => prop_merge_added_boolean,
    "state_ivar" => prop_merge_added_ivar,
    "state_max_int" => prop_merge_added_max_int,
    "state_mvregister" => prop_merge_added_mvregister,
    "state_ewflag" => prop_merge_added_ewflag,
    "state_dwflag" => prop_merge_added_dwflag,
    "state_lexcounter" => prop_merge_added_lexcounter,
    "state_gmap" => prop_merge_added_gmap,
    "state_pair" => prop_merge_added_pair,
    "state_awmap" => prop_merge_added_awmap,
    "state_awset_ps" => prop_merge_added_awset_ps,
    "state_bcounter" => prop_merge_added_bcounter,
}
