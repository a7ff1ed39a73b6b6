//! A tracker of one variable with what it knows of each node's state:
//! updates come with their witness (a delta), observations with a node's
//! whole state or with what it gained since its last one.
//!
//! Per node it keeps the join of the states the node was observed to hold,
//! as a resident [`Replica`] (a gset, gcounter, twopset, orset or awset is keyed, so
//! joining a change of `m` entries into `n` costs `O(m log n)`; other types
//! are held as decoded states, where a join costs `O(n + m)`), with the
//! ranks of that state ([`View`]). An observation then costs:
//!
//! - a delta: its join into the node's state, the rank ranges its atoms
//!   open ([`View::changed`]), and one check per witness in those ranges;
//!   for a type whose ranks decide ([`witness::ranks_decide`]) the check
//!   reads only the ranks, otherwise it is [`Replica::holds`], which for a
//!   gset or gcounter reads only the entries under the witness's keys;
//! - a whole state: decoding it (`O(n)`), and for a type whose ranks decide
//!   a state that holds the node's last one, its ranks above the node's as
//!   the change; otherwise `delta(State, Last)` and a join.
//!
//! On a node's first observation every pending witness is checked; one
//! delivered out of order (earlier than the node's latest) is checked alone
//! (so first-seen times move back only for what it holds itself) and joined.

use std::collections::HashMap;

use crate::crdt::Crdt;
use crate::decode::{self, Decoder, Limits};
use crate::error::BadCrdt;
use crate::owned::OwnedTerm;
use crate::replica::Replica;
use crate::term::Atom;

use super::witness::{self, IndexAtom, View};
use super::{Config, Filter, NodeId, Observed, Registered, Tracker, Witness};

/// The witness of one update: its delta, decoded and owned, with its index
/// atoms ([`witness::witness_atoms`]).
#[derive(Debug)]
pub struct CrdtWitness {
    delta: Crdt<OwnedTerm>,
    atoms: Option<Vec<IndexAtom>>,
}

impl CrdtWitness {
    /// The witness of a delta.
    pub fn new(delta: Crdt<OwnedTerm>) -> Self {
        let atoms = match &delta {
            Crdt::AWSetPS(a) if !a.is_full() => Some(vec![witness::identical_only()]),
            _ => witness::witness_atoms(&delta),
        };
        CrdtWitness { delta, atoms }
    }

    /// The delta.
    pub fn delta(&self) -> &Crdt<OwnedTerm> {
        &self.delta
    }
}

impl Witness for CrdtWitness {
    fn atoms(&self) -> Option<Vec<(u64, u64)>> {
        self.atoms
            .as_ref()
            .map(|a| a.iter().map(|x| (x.pos, x.rank)).collect())
    }
}

/// Why an update or an observation was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// Not a state (or not one of the variable's type).
    Bad(BadCrdt),
    /// The node would be one more than `max_nodes`.
    TooManyNodes,
}

impl From<BadCrdt> for Refused {
    fn from(e: BadCrdt) -> Self {
        Refused::Bad(e)
    }
}

/// What is known of one node's state.
struct NodeState {
    // The join of the states it was observed to hold.
    state: Replica,
    // Its clock at its latest observation.
    ts: i64,
    // The ranks of `state`, and whether they are complete (every atom of
    // `state` listed).
    view: View,
    complete: bool,
    // For a state held decoded (not keyed): a bound of its term's weight
    // ([`decode::weight`]) while that is at most [`SMALL`], `None` past it.
    weight: Option<usize>,
}

/// The heaviest state held decoded whose joins still count as light
/// ([`Tracked::light`]): a join costs about what the two terms weigh, as a
/// merge on a normal scheduler does (`Limits::NORMAL_WEIGHT`).
pub const SMALL: usize = Limits::NORMAL_WEIGHT;

/// Most index atoms of a change observed on the calling scheduler
/// ([`Tracked::light_change`]).
pub const LIGHT_ATOMS: usize = Limits::NORMAL_WEIGHT;

/// How a node's state changed, for [`NodeState::reweigh`].
#[derive(Clone, Copy)]
enum Change<'a> {
    /// This term was joined into it.
    Joined(&'a OwnedTerm),
    /// It is this term now.
    Became(&'a OwnedTerm),
}

impl NodeState {
    // A node's state held as `state`, whose term is `term`.
    fn new(state: Replica, term: &OwnedTerm, ts: i64) -> Self {
        let mut n = NodeState {
            state,
            ts,
            view: View::default(),
            complete: false,
            weight: None,
        };
        n.relist_from(term);
        n.reweigh(Change::Became(term));
        n
    }

    // Keep `weight` after the state changed. A term is weighed only up to
    // `SMALL`, and the state is read again only when both it and what
    // joined it were small (their join weighs at most the sum): a heavy
    // state, or one joined with a heavy term, stays heavy until it becomes
    // a light term.
    fn reweigh(&mut self, how: Change<'_>) {
        if self.state.is_keyed() {
            self.weight = None;
            return;
        }
        self.weight = match how {
            Change::Became(t) => decode::weight(&[t], SMALL),
            Change::Joined(x) => match (self.weight, decode::weight(&[x], SMALL)) {
                (Some(w), Some(a)) if w.saturating_add(a) <= SMALL => Some(w + a),
                (Some(_), Some(_)) => decode::weight(&[&self.state.to_term()], SMALL),
                _ => None,
            },
        };
    }

    // List the ranks again from the whole state.
    fn relist(&mut self) {
        self.relist_from(&self.state.to_term());
    }

    // List the ranks again from `term`, the state's term.
    fn relist_from(&mut self, term: &OwnedTerm) {
        match witness::atoms_of_term(term) {
            Some(a) => {
                self.view = View::of(&a);
                self.complete = true;
            }
            None => {
                self.view = View::default();
                self.complete = false;
            }
        }
    }

    // Whether the state may hold witnesses that only an identical state
    // holds ([`witness::identical_only`]): an awset_ps that is itself a
    // delta. Every pending witness is then checked.
    fn identical_only(&self) -> bool {
        matches!(&self.state, Replica::Generic(Crdt::AWSetPS(a)) if !a.is_full())
    }

    // Whether the state holds `w`: from the ranks alone when they decide (a
    // type whose ranks decide, a complete view, no saturated rank), else
    // from the resident state.
    fn holds(&self, tag: Option<Atom>, w: &CrdtWitness) -> bool {
        let decided = w.atoms.as_deref().and_then(|atoms| {
            let decides =
                self.complete && tag.is_some_and(witness::ranks_decide) && View::decides(atoms);
            decides.then(|| self.view.covers(atoms))
        });
        // Same type (checked when observed), decoded states: cannot fail.
        decided.unwrap_or_else(|| self.state.holds(&w.delta).unwrap_or(false))
    }
}

/// A [`Tracker`] of one variable with the states of its nodes. See the
/// module documentation.
pub struct Tracked {
    /// The tracker itself (clock, members, figures).
    pub tracker: Tracker<CrdtWitness>,
    // The variable's type, fixed by its first update or observation.
    tag: Option<Atom>,
    nodes: HashMap<NodeId, NodeState>,
}

fn decode(t: &OwnedTerm) -> Result<Crdt<OwnedTerm>, BadCrdt> {
    Crdt::decode(t, &mut Decoder::new(Limits::dirty()))
}

impl Tracked {
    /// A tracker with no node state yet.
    pub fn new(config: Config) -> Self {
        Tracked {
            tracker: Tracker::new(config),
            tag: None,
            nodes: HashMap::new(),
        }
    }

    /// The variable's type, once an update or an observation fixed it.
    pub fn tag(&self) -> Option<Atom> {
        self.tag
    }

    /// Nodes whose state is kept.
    pub fn last_states(&self) -> usize {
        self.nodes.len()
    }

    /// [`Tracker::set_members`], forgetting the states of the nodes that
    /// left; `false` (nothing done) when that would be more than
    /// `max_nodes` nodes.
    pub fn set_members(&mut self, ts_us: i64, members: &[NodeId]) -> bool {
        if !self.tracker.admits_all(members) {
            return false;
        }
        self.tracker.set_members(ts_us, members);
        let live = self.tracker.members();
        self.nodes.retain(|n, _| live.contains(n));
        true
    }

    /// A new measurement: [`Tracker::reset`], and every node state dropped.
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.nodes.clear();
    }

    fn check_tag(&mut self, c: &Crdt<OwnedTerm>) -> Result<(), BadCrdt> {
        match self.tag {
            Some(t) if t != c.tag() => Err(BadCrdt::TypeMismatch(t, c.tag())),
            Some(_) => Ok(()),
            None => {
                self.tag = Some(c.tag());
                Ok(())
            }
        }
    }

    /// Whether an observed delta of node `n` is applied in time bounded by
    /// the delta: for a type whose ranks decide (checks read the ranks),
    /// with complete ranks, a state held keyed (joins in `O(m log n)`,
    /// whatever its size) or a small one held decoded (a join of at most
    /// [`SMALL`] weight units and the delta's). A node not seen yet is not:
    /// its first observation checks every pending update.
    pub fn light(&self, n: NodeId) -> bool {
        let decide = self.tag.is_some_and(witness::ranks_decide);
        self.nodes
            .get(&n)
            .is_some_and(|s| decide && s.complete && (s.state.is_keyed() || s.weight.is_some()))
    }

    /// Whether an observed change is small enough for the calling
    /// scheduler, besides its weight: its index atoms number at most
    /// [`LIGHT_ATOMS`] (a change whose compressed causal context covers many
    /// dots lists one atom per dot, and joins and checks cost as much).
    pub fn light_change(change: &OwnedTerm) -> bool {
        witness::atoms_within(change, LIGHT_ATOMS)
    }

    /// Update `(origin, seq)` made at `ts_us` (origin's clock), whose
    /// witness is `witness`: a node whose kept state already holds it has
    /// seen it at its last observation.
    pub fn updated(
        &mut self,
        origin: NodeId,
        seq: u64,
        ts_us: i64,
        witness: &OwnedTerm,
    ) -> Result<Registered, Refused> {
        let w = decode(witness)?;
        self.check_tag(&w)?;
        if !self.tracker.admits(origin) {
            return Err(Refused::TooManyNodes);
        }
        let w = CrdtWitness::new(w);
        let (tag, nodes) = (self.tag, &self.nodes);
        let reg = if nodes.is_empty() {
            self.tracker.updated(origin, seq, ts_us, w)
        } else {
            self.tracker.updated_with(origin, seq, ts_us, w, |n, w| {
                nodes.get(&n).is_some_and(|s| s.holds(tag, w))
            })
        };
        match reg {
            Registered::TooManyNodes => Err(Refused::TooManyNodes),
            r => Ok(r),
        }
    }

    /// Node `n` held `state` at `ts_us` (its clock), or, when `is_delta`,
    /// gained `state` since its previous observation (its state is then the
    /// join of everything observed).
    pub fn observed(
        &mut self,
        n: NodeId,
        ts_us: i64,
        state: &OwnedTerm,
        is_delta: bool,
    ) -> Result<Observed, Refused> {
        let x = decode(state)?;
        self.check_tag(&x)?;
        if !self.tracker.admits(n) {
            return Err(Refused::TooManyNodes);
        }
        let tag = self.tag;
        let decide = tag.is_some_and(witness::ranks_decide);
        let Some(mut ns) = self.nodes.remove(&n) else {
            // The first: every pending witness is checked against it.
            let ns = NodeState::new(Replica::from_crdt(x), state, ts_us);
            let obs = self
                .tracker
                .observed(n, ts_us, Filter::All, |w| ns.holds(tag, w));
            self.nodes.insert(n, ns);
            return Ok(obs);
        };
        if ns.ts > ts_us {
            // Out of order: checked against itself alone, then joined.
            if let Some(a) = witness::atoms_of_term(state) {
                ns.view.changed(&a);
            }
            let obs = self.tracker.observed(n, ts_us, Filter::All, |w| {
                w.delta.is_inflation(&x).unwrap_or(false)
            });
            if ns.state.merge_crdt_ref(&x).is_err() {
                ns = NodeState::new(Replica::from_crdt(x), state, ns.ts);
            } else {
                ns.reweigh(Change::Joined(state));
            }
            self.nodes.insert(n, ns);
            return Ok(obs);
        }
        // A whole state that holds the node's last one, for a type whose
        // ranks decide: its ranks above the node's are the change, and it
        // is the node's state now (no delta, no join).
        let held = match (is_delta, decide && ns.complete) {
            (false, true) => {
                witness::atoms_of_term(state).filter(|xa| ns.view.within(&View::of(xa)))
            }
            _ => None,
        };
        let (change, relist) = match held {
            Some(xa) => {
                ns.state = Replica::from_crdt(x);
                ns.reweigh(Change::Became(state));
                (Some(xa), false)
            }
            None => {
                let change = if is_delta {
                    witness::atoms_of_term(state)
                } else {
                    x.delta(&ns.state.to_crdt())
                        .ok()
                        .and_then(|d| witness::atoms(&d))
                };
                match ns.state.merge_crdt_ref(&x) {
                    Ok(()) => {
                        ns.reweigh(Change::Joined(state));
                        (change, false)
                    }
                    Err(_) => {
                        // Not joinable with what it held (types raises on
                        // such a merge): the node holds this state now.
                        ns.state = Replica::from_crdt(x);
                        ns.reweigh(Change::Became(state));
                        (change, true)
                    }
                }
            }
        };
        ns.ts = ts_us;
        // The ranges the change opens, from the node's ranks before it.
        let ranges = change.as_ref().map(|d| ns.view.changed(d));
        if ranges.is_none() || !ns.complete || relist {
            ns.relist();
        }
        let filter = match &ranges {
            Some(r) if !ns.identical_only() => Filter::Ranges(r),
            _ => Filter::All,
        };
        let obs = self
            .tracker
            .observed(n, ts_us, filter, |w| ns.holds(tag, w));
        self.nodes.insert(n, ns);
        Ok(obs)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::api;
    use crate::owned::OwnedBuilder;
    use crate::term::{Builder, Term};

    const N0: NodeId = NodeId(0);
    const N1: NodeId = NodeId(1);
    const N2: NodeId = NodeId(2);

    fn tracked() -> Tracked {
        let mut t = Tracked::new(Config::default());
        t.tracker.clock_mut().set_exact(N0);
        t.tracker.clock_mut().set_exact(N1);
        assert!(t.set_members(0, &[N0, N1]));
        t
    }

    fn set(ty: &str, es: &[OwnedTerm]) -> OwnedTerm {
        let mut es = es.to_vec();
        es.sort_by(|a, b| a.compare(b));
        OwnedBuilder.pair(OwnedTerm::atom(ty), OwnedBuilder.list(&es))
    }

    fn e(i: i64) -> OwnedTerm {
        match i % 3 {
            0 => OwnedTerm::int(i),
            1 => OwnedTerm::bin(format!("e{i}").as_bytes()),
            _ => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::int(i)]),
        }
    }

    // An awset state and the deltas of the adds that built it, by actor.
    fn awset_history(n: i64) -> (Vec<OwnedTerm>, OwnedTerm) {
        struct Cx;
        impl crate::lattice::MutateCx<OwnedTerm> for Cx {
            type B = OwnedBuilder;
            fn builder(&self) -> &OwnedBuilder {
                &OwnedBuilder
            }
            fn token(&mut self) -> OwnedTerm {
                OwnedBuilder.binary(&[1; 20])
            }
        }
        let b = OwnedBuilder;
        let mut s = api::new(&b, &OwnedTerm::atom("state_awset")).unwrap();
        let mut deltas = Vec::new();
        for i in 0..n {
            let op = b.pair(OwnedTerm::atom("add"), e(i));
            let actor = OwnedTerm::atom(["a", "b", "c"][(i % 3) as usize]);
            let r = api::mutate_delta(&mut Cx, &op, &actor, &s, Limits::dirty()).unwrap();
            s = r.tuple_elem(1).unwrap();
            deltas.push(r.tuple_elem(2).unwrap());
        }
        (deltas, s)
    }

    // Node 1 learns the updates of node 0 one by one: reported as deltas or
    // as whole states, every update converges at the observation that
    // brings it, and a delta observation checks only the updates it brings.
    #[test]
    fn deltas_and_states_see_the_same_test() {
        let (deltas, _) = awset_history(60);
        let b = OwnedBuilder;
        for by_delta in [true, false] {
            let mut t = tracked();
            // Node 1 starts from the first 20 (a whole state).
            let mut s1 = api::new(&b, &OwnedTerm::atom("state_awset")).unwrap();
            for d in &deltas[..20] {
                s1 = api::merge(&b, &s1, d, Limits::dirty()).unwrap();
            }
            t.observed(N1, 1, &s1, false).unwrap();
            for (i, d) in deltas.iter().enumerate().skip(20) {
                t.updated(N0, i as u64, 10, d).unwrap();
            }
            assert_eq!(t.tracker.stats().pending, 40);
            for (i, d) in deltas.iter().enumerate().skip(20) {
                s1 = api::merge(&b, &s1, d, Limits::dirty()).unwrap();
                let obs = if by_delta {
                    t.observed(N1, 20 + i as i64, d, true).unwrap()
                } else {
                    t.observed(N1, 20 + i as i64, &s1, false).unwrap()
                };
                assert_eq!((obs.newly_seen, obs.converged), (1, 1), "{i}");
                assert_eq!(obs.checked, 1, "{i}");
            }
            let st = t.tracker.stats();
            assert_eq!((st.converged, st.pending), (40, 0));
        }
    }

    // An update whose witness a node already holds (observed before the
    // announcement) is seen by it at once; one it does not hold is pending.
    #[test]
    fn announcement_after_observation_test() {
        let mut t = tracked();
        t.observed(N1, 5, &set("state_gset", &[e(1), e(2)]), false)
            .unwrap();
        t.observed(N1, 6, &set("state_gset", &[e(3)]), true)
            .unwrap();
        for (seq, x) in [(1, 3), (2, 4)] {
            t.updated(N0, seq, 7, &set("state_gset", &[e(x)])).unwrap();
        }
        let st = t.tracker.stats();
        assert_eq!((st.updates, st.converged, st.pending), (2, 1, 1));
        assert_eq!(t.last_states(), 1);
    }

    // A delta delivered out of order is checked alone and joined; a state
    // of another type and an unknown node past `max_nodes` are refused.
    #[test]
    fn out_of_order_and_refusals_test() {
        let mut t = tracked();
        t.updated(N0, 1, 1, &set("state_gset", &[e(1)])).unwrap();
        t.updated(N0, 2, 1, &set("state_gset", &[e(2)])).unwrap();
        t.observed(N1, 50, &set("state_gset", &[e(2)]), true)
            .unwrap();
        let obs = t
            .observed(N1, 40, &set("state_gset", &[e(1)]), true)
            .unwrap();
        assert_eq!(obs.newly_seen, 1);
        // Joined: a later whole state holding both changes nothing.
        let obs = t
            .observed(N1, 60, &set("state_gset", &[e(1), e(2)]), false)
            .unwrap();
        assert_eq!(obs.newly_seen, 0);
        assert_eq!(t.tracker.stats().converged, 2);
        let mut lw = tracked();
        let lww = |ts: i64| {
            OwnedBuilder.pair(
                OwnedTerm::atom("state_lwwregister"),
                OwnedBuilder.pair(OwnedTerm::int(ts), OwnedTerm::atom("v")),
            )
        };
        lw.observed(N1, 1, &lww(3), false).unwrap();
        // Held as a small decoded state: a join costs what the two weigh.
        assert!(lw.light(N1));
        // A pncounter of 1,000 actors is decoded and heavy: a join costs
        // O(state); it stays so through changes, until a whole state
        // weighs little again.
        let b = OwnedBuilder;
        let pn = |n: i64, k: i64| {
            let es: Vec<_> = (0..n)
                .map(|i| {
                    b.pair(
                        OwnedTerm::int(i),
                        b.pair(OwnedTerm::int(k), OwnedTerm::int(0)),
                    )
                })
                .collect();
            b.pair(OwnedTerm::atom("state_pncounter"), b.list(&es))
        };
        let mut p = tracked();
        p.observed(N1, 1, &pn(1000, 1), false).unwrap();
        assert!(!p.light(N1));
        p.observed(N1, 2, &pn(1, 2), true).unwrap();
        assert!(!p.light(N1));
        let mut p = tracked();
        p.observed(N1, 1, &pn(10, 1), false).unwrap();
        assert!(p.light(N1));
        // Light through many small changes (the bound is weighed again).
        for k in 2..200 {
            p.observed(N1, k, &pn(10, k), true).unwrap();
            assert!(p.light(N1));
        }
        p.observed(N1, 300, &pn(1000, 300), true).unwrap();
        assert!(!p.light(N1));
        let bad = t.observed(N1, 70, &set("state_gcounter", &[]), false);
        assert!(matches!(bad, Err(Refused::Bad(BadCrdt::TypeMismatch(..)))));
        let mut small = Tracked::new(Config {
            max_nodes: 1,
            ..Config::default()
        });
        small
            .observed(N0, 1, &set("state_gset", &[e(1)]), false)
            .unwrap();
        assert_eq!(
            small.observed(N1, 1, &set("state_gset", &[e(1)]), false),
            Err(Refused::TooManyNodes)
        );
    }

    const TYPES: [&str; 19] = [
        "state_gset",
        "state_twopset",
        "state_gcounter",
        "state_pncounter",
        "state_orset",
        "state_awset",
        "state_ewflag",
        "state_dwflag",
        "state_max_int",
        "state_boolean",
        "state_lexcounter",
        "state_lwwregister",
        "state_mvregister",
        "state_awmap",
        "state_ivar",
        "state_pair",
        "state_gmap",
        "state_bcounter",
        "state_awset_ps",
    ];

    // An operation of type `ty` (as the tracker's Erlang brute-force test
    // draws them). No `1.0` beside `1`: on such dot stores types raises
    // (`not_identical`) where the ranks answer.
    fn bf_op(ty: &str, r: &mut crate::testing::Rng) -> OwnedTerm {
        let b = OwnedBuilder;
        let a = OwnedTerm::atom;
        let el = match r.next(5) {
            0 | 1 => OwnedTerm::int(1),
            2 => OwnedTerm::bin(&[r.next(4) as u8]),
            3 => OwnedTerm::tuple([OwnedTerm::int(r.next(3) as i64), a("x")]),
            _ => OwnedTerm::int(r.next(6) as i64),
        };
        let rmv = r.next(4) == 3;
        match ty {
            "state_gcounter" | "state_max_int" => a("increment"),
            "state_pncounter" | "state_lexcounter" | "state_bcounter" if rmv => a("decrement"),
            "state_pncounter" | "state_lexcounter" | "state_bcounter" => a("increment"),
            "state_boolean" => a("true"),
            "state_ewflag" | "state_dwflag" if r.next(2) == 0 => a("enable"),
            "state_ewflag" | "state_dwflag" => a("disable"),
            "state_gset" => b.pair(a("add"), el),
            "state_twopset" | "state_orset" | "state_awset" | "state_awset_ps" if rmv => {
                b.pair(a("rmv"), el)
            }
            "state_twopset" | "state_orset" | "state_awset" | "state_awset_ps" => {
                b.pair(a("add"), el)
            }
            "state_ivar" => b.pair(a("set"), el),
            "state_lwwregister" | "state_mvregister" => {
                b.tuple(&[a("set"), OwnedTerm::int(r.next(9) as i64), el])
            }
            "state_gmap" => b.tuple(&[a("apply"), el, a("increment")]),
            "state_pair" if r.next(2) == 0 => b.pair(a("fst"), b.pair(a("set"), el)),
            "state_pair" => b.pair(a("snd"), b.pair(a("set"), el)),
            "state_awmap" if rmv => b.pair(a("rmv"), el),
            _ => b.tuple(&[
                a("apply"),
                el,
                b.pair(a("add"), OwnedTerm::int(r.next(3) as i64)),
            ]),
        }
    }

    // 60 updates of a type by three replicas that merge now and then: the
    // deltas of `delta_mutate` (the previous delta where an operation is
    // refused).
    fn bf_deltas(ty: &str, r: &mut crate::testing::Rng) -> Vec<OwnedTerm> {
        let b = OwnedBuilder;
        let lim = Limits::dirty();
        let actors = [
            OwnedTerm::atom("a"),
            OwnedTerm::bin(b"b"),
            OwnedTerm::tuple([OwnedTerm::atom("c"), OwnedTerm::int(1)]),
        ];
        let bottom = api::new(&b, &OwnedTerm::atom(ty)).unwrap();
        let mut reps = vec![bottom.clone(); 3];
        let mut cx = crate::testing::Cx(0);
        let mut prev = bottom;
        let mut out = Vec::new();
        while out.len() < 60 {
            let i = r.next(3) as usize;
            if r.next(5) == 0 {
                let j = r.next(3) as usize;
                reps[i] = api::merge(&b, &reps[i], &reps[j], lim).unwrap_or(reps[i].clone());
                continue;
            }
            let actor = if ty == "state_awset_ps" {
                OwnedTerm::tuple([OwnedTerm::bin(b"obj"), actors[i].clone()])
            } else {
                actors[i].clone()
            };
            let d = match api::delta_mutate(&mut cx, &bf_op(ty, r), &actor, &reps[i], lim) {
                Ok(x) if x.tuple_elem(0).is_some_and(|t| t.atom_name() == Some("ok")) => {
                    x.tuple_elem(1).unwrap()
                }
                _ => prev.clone(),
            };
            reps[i] = api::merge(&b, &reps[i], &d, lim).unwrap_or(reps[i].clone());
            prev = d.clone();
            out.push(d);
        }
        out
    }

    // Whether `s` holds `w`, as types says (a raise counts as not).
    fn bf_holds(w: &OwnedTerm, s: &OwnedTerm) -> bool {
        api::is_inflation(w, s, Limits::dirty()).unwrap_or(false)
    }

    // For every type: updates registered in batches, node 1 reporting whole
    // states, node 2 what its state gained since its previous report; after
    // each batch every node's pending count is the number of registered
    // deltas its state does not hold (types' `is_inflation`), whatever the
    // index narrowed. Returns the checks made (each row's total).
    fn brute_force(ty: &str, seed: u64) -> usize {
        let b = OwnedBuilder;
        let lim = Limits::dirty();
        let mut r = crate::testing::Rng(seed);
        let ds = bf_deltas(ty, &mut r);
        let mut t = tracked();
        t.tracker.clock_mut().set_exact(NodeId(2));
        assert!(t.set_members(0, &[N0, N1, NodeId(2)]));
        let bottom = api::new(&b, &OwnedTerm::atom(ty)).unwrap();
        let (mut n1, mut n2) = (bottom.clone(), bottom);
        let mut sent2: Option<OwnedTerm> = None;
        let mut checks = 0;
        for batch in 1..=10usize {
            for (i, d) in ds.iter().enumerate().take(6 * batch).skip(6 * batch - 6) {
                t.updated(N0, i as u64 + 1, 1, d).unwrap();
            }
            let pool = &ds[..(6 * batch + 3).min(ds.len())];
            for s in [&mut n1, &mut n2] {
                for _ in 0..=r.next(4) {
                    let d = &pool[r.next(pool.len() as u64) as usize];
                    *s = api::merge(&b, s, d, lim).unwrap_or(s.clone());
                }
            }
            let ts = 1000 + 10 * batch as i64;
            checks += t.observed(N1, ts, &n1, false).unwrap().checked;
            let gain = match &sent2 {
                None => n2.clone(),
                Some(last) => api::delta(&b, &n2, last, lim).unwrap(),
            };
            checks += t.observed(NodeId(2), ts, &gain, true).unwrap().checked;
            sent2 = Some(n2.clone());
            let reg = &ds[..6 * batch];
            let st = t.tracker.stats();
            for (node, s) in [(N1, &n1), (NodeId(2), &n2)] {
                let want = reg.iter().filter(|w| !bf_holds(w, s)).count() as u64;
                let got = st.per_node.iter().find(|x| x.node == node).unwrap().pending;
                assert_eq!(got, want, "{ty} seed {seed} batch {batch} node {node:?}");
            }
        }
        checks
    }

    #[test]
    fn every_type_matches_brute_force_test() {
        for ty in TYPES {
            for seed in 0..12 {
                brute_force(ty, 100 + seed);
            }
        }
    }

    // An awset_ps delta is held only by a state identical to it (types'
    // `is_inflation` needs vclocks on both sides): a node whose state is a
    // full one never checks such a witness; one whose state is itself a
    // delta checks every pending witness, and holds the identical one.
    #[test]
    fn awset_ps_deltas_are_held_only_identically_test() {
        let mut r = crate::testing::Rng(7);
        let ds = bf_deltas("state_awset_ps", &mut r);
        let b = OwnedBuilder;
        let mut t = tracked();
        t.tracker.clock_mut().set_exact(N2);
        assert!(t.set_members(0, &[N0, N1, N2]));
        let mut full = api::new(&b, &OwnedTerm::atom("state_awset_ps")).unwrap();
        t.observed(N1, 1, &full, false).unwrap();
        for (i, d) in ds.iter().enumerate() {
            t.updated(N0, i as u64 + 1, 2, d).unwrap();
        }
        for (i, d) in ds.iter().enumerate() {
            full = api::merge(&b, &full, d, Limits::dirty()).unwrap();
            let o = t.observed(N1, 3 + i as i64, d, true).unwrap();
            assert_eq!((o.checked, o.newly_seen), (0, 0));
        }
        let o = t.observed(N1, 100, &full, false).unwrap();
        assert_eq!((o.checked, o.newly_seen), (0, 0));
        // Node 2's first observation is the 6th delta itself.
        let o = t.observed(N2, 100, &ds[5], false).unwrap();
        assert_eq!(o.checked, ds.len());
        let held = ds.iter().filter(|w| bf_holds(w, &ds[5])).count();
        assert_eq!(o.newly_seen, held);
        assert!(held >= 1);
        // Still a delta after joining another: every witness is checked.
        let o = t.observed(N2, 101, &ds[7], true).unwrap();
        assert_eq!(o.checked, ds.len() - held);
    }

    // The node states are resident replicas: the keyed types stay keyed
    // through delta observations, so a join costs O(m log n).
    #[test]
    fn keyed_types_stay_keyed_test() {
        let (deltas, s) = awset_history(30);
        let mut t = tracked();
        t.observed(N1, 1, &deltas[0], false).unwrap();
        for (i, d) in deltas.iter().enumerate().skip(1) {
            t.observed(N1, 1 + i as i64, d, true).unwrap();
        }
        assert!(t.light(N1));
        assert!(!t.light(N0));
        let ns = &t.nodes[&N1];
        assert!(ns.state.is_keyed());
        assert!(ns.complete);
        assert!(ns.state.to_term().equal(&s));
        t.reset();
        assert_eq!(t.last_states(), 0);
    }
}
