//! A tracker of one variable with what it knows of each node's state:
//! updates come with their witness (a delta), observations with a node's
//! whole state or with what it gained since its last one.
//!
//! Per node it keeps the join of the states the node was observed to hold,
//! as a resident [`Replica`] (a gset, gcounter, orset or awset is keyed, so
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
use crate::decode::{Decoder, Limits};
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
        let atoms = witness::witness_atoms(&delta);
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
}

impl NodeState {
    fn new(state: Replica, ts: i64) -> Self {
        let mut n = NodeState {
            state,
            ts,
            view: View::default(),
            complete: false,
        };
        n.relist();
        n
    }

    // List the ranks again from the whole state.
    fn relist(&mut self) {
        match witness::atoms_of_term(&self.state.to_term()) {
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
    /// the delta, whatever the size of the node's state: its state is held
    /// keyed, with complete ranks, for a type whose ranks decide (joins in
    /// `O(m log n)`, checks from the ranks). A node not seen yet is not:
    /// its first observation checks every pending update.
    pub fn light(&self, n: NodeId) -> bool {
        let decide = self.tag.is_some_and(witness::ranks_decide);
        self.nodes
            .get(&n)
            .is_some_and(|s| decide && s.complete && s.state.is_keyed())
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
            let ns = NodeState::new(Replica::from_crdt(x), ts_us);
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
                ns = NodeState::new(Replica::from_crdt(x), ns.ts);
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
                    Ok(()) => (change, false),
                    Err(_) => {
                        // Not joinable with what it held (types raises on
                        // such a merge): the node holds this state now.
                        ns.state = Replica::from_crdt(x);
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
            Some(r) => Filter::Ranges(r),
            None => Filter::All,
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
        // Held as a decoded state: a join costs O(state).
        assert!(!lw.light(N1));
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
