//! Resident replicas: a CRDT state kept decoded between calls, and its
//! binary wire format.
//!
//! A [`Replica`] is a *mutable* state: [`Replica::merge`] and
//! [`Replica::mutate`] change it in place. `state_gset` and
//! `state_gcounter` are held in ordered maps keyed by their elements' (or
//! actors') [`wire`] keys, so merging `m` incoming entries into `n` resident
//! ones costs `O(m log n)`; `state_twopset` ([`TwoPSet`], two such sets),
//! `state_orset` ([`ORSet`]) and `state_awset` ([`AwSet`], with a dot
//! index) likewise; every other type, and one whose
//! terms have no key (pids, maps, bignums ...), is held as the core's decoded
//! [`Crdt`], where a merge is the core's merge, `O(n + m)`.
//!
//! Every answer is term for term what lasp-lang/types gives for the same
//! terms: [`Replica::merge`] is `merge(State, Incoming)` (the resident state
//! is the first argument, so on `==` entries its terms are kept, and the
//! role swap of `ordsets:union/2` is followed), and [`Replica::mutate`] is
//! types' `mutate`: `merge(Delta, State)` of the `delta_mutate` delta.
//!
//! # Binary format (version 1)
//!
//! `"LCR"`, the version byte `1`, a layout byte, then:
//!
//! - layout `1`, `state_gset`: the element count as 4 bytes big-endian, then
//!   each element's [`wire`] key, strictly ascending (`memcmp` of the keys'
//!   primary parts, which is the term order, so no two elements are `==`);
//! - layout `2`, `state_gcounter`: the actor count, then per actor its key
//!   (strictly ascending as above) and its count as 8 bytes big-endian
//!   two's complement;
//! - layout `0`, any type: `term_to_binary({Type, Payload})` (the external
//!   term format, read by the core's [`etf`] reader and validated as a
//!   state term is).
//!
//! Anything else, a truncation, bytes left over, an unsorted or malformed
//! entry, is refused with [`BadCrdt::BadBinary`].

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

use crate::crdt::Crdt;
use crate::decode::{Decoder, Limits};
use crate::error::{BadCrdt, MutateError, Result};
use crate::etf;
use crate::lattice::MutateCx;
use crate::owned::{OwnedBuilder, OwnedTerm};
use crate::term::{Atom, Term};
use crate::types::{GCounter, GSet};
use crate::wire;

mod awset;
pub mod bytes;
mod flat;
mod orset;
mod twopset;
pub use awset::AwSet;
pub use flat::{Encoded, Patch};
pub use orset::ORSet;
pub use twopset::TwoPSet;

/// The first bytes of every binary.
pub const MAGIC: &[u8; 3] = b"LCR";
/// The format version written and read.
pub const VERSION: u8 = 1;

const GENERIC: u8 = 0;
const GSET: u8 = 1;
const GCOUNTER: u8 = 2;

/// A term with its [`wire`] key: the primary part is the map key, the exact
/// part (one byte per number) is kept here.
#[derive(Debug, Clone)]
pub struct Elem {
    term: OwnedTerm,
    exact: Box<[u8]>,
}

type Key = Box<[u8]>;

/// Split a term's key into the primary part and the rest.
fn keyed(t: &OwnedTerm) -> Option<(Key, Elem)> {
    let mut v = Vec::new();
    wire::encode(t, &mut v).ok()?;
    let p = wire::primary_len(&v).ok()?;
    let exact = v[p..].into();
    v.truncate(p);
    Some((
        v.into_boxed_slice(),
        Elem {
            term: t.clone(),
            exact,
        },
    ))
}

/// A CRDT state held between calls. See the module documentation.
#[derive(Debug, Clone)]
pub enum Replica {
    /// A `state_gset`, element key to element.
    GSet(BTreeMap<Key, Elem>),
    /// A `state_gcounter`, actor key to actor and count.
    GCounter(BTreeMap<Key, (Elem, i64)>),
    /// A `state_orset`, element key to element and tokens.
    ORSet(Box<ORSet>),
    /// A `state_awset`: dot map keyed by element, dot index, context.
    AWSet(Box<AwSet>),
    /// A `state_twopset`: its added and removed sets, keyed by element.
    TwoPSet(Box<TwoPSet>),
    /// Any other state, decoded by the core.
    Generic(Crdt<OwnedTerm>),
}

/// Which side's term survives when two `==` entries meet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum First {
    Resident,
    Incoming,
}

impl Replica {
    /// Hold a decoded state.
    pub fn from_crdt(c: Crdt<OwnedTerm>) -> Self {
        match &c {
            Crdt::GSet(g) => {
                // Ascending in term order, so in key order: built in bulk.
                let v: Option<Vec<_>> = g.elems.iter().map(keyed).collect();
                v.map_or(Replica::Generic(c), |v| {
                    Replica::GSet(v.into_iter().collect())
                })
            }
            Crdt::GCounter(g) => {
                let v: Option<Vec<_>> = g
                    .entries
                    .iter()
                    .map(|(a, n)| keyed(a).map(|(k, e)| (k, (e, *n))))
                    .collect();
                v.map_or(Replica::Generic(c), |v| {
                    Replica::GCounter(v.into_iter().collect())
                })
            }
            Crdt::ORSet(_) => {
                let t = c.encode(&OwnedBuilder);
                match t.tuple_elem(1).and_then(|p| ORSet::from_payload(&p)) {
                    Some(o) => Replica::ORSet(Box::new(o)),
                    None => Replica::Generic(c),
                }
            }
            Crdt::AWSet(_) => {
                let t = c.encode(&OwnedBuilder);
                match t.tuple_elem(1).and_then(|p| AwSet::from_payload(&p)) {
                    Some(a) => Replica::AWSet(Box::new(a)),
                    None => Replica::Generic(c),
                }
            }
            Crdt::TwoPSet(t) => match TwoPSet::from_core(t) {
                Some(k) => Replica::TwoPSet(Box::new(k)),
                None => Replica::Generic(c),
            },
            _ => Replica::Generic(c),
        }
    }

    /// Decode and hold a state term.
    pub fn from_term(t: &OwnedTerm) -> Result<Self> {
        let c = Crdt::decode(t, &mut Decoder::new(Limits::dirty()))?;
        Ok(Self::from_crdt(c))
    }

    /// The bottom state of a type.
    pub fn new(ty: &OwnedTerm) -> Result<Self> {
        Ok(Self::from_crdt(Crdt::bottom(ty)?))
    }

    /// The type atom.
    pub fn tag(&self) -> Atom {
        match self {
            Replica::GSet(_) => Atom::StateGset,
            Replica::GCounter(_) => Atom::StateGcounter,
            Replica::ORSet(_) => Atom::StateOrset,
            Replica::AWSet(_) => Atom::StateAwset,
            Replica::TwoPSet(_) => Atom::StateTwopset,
            Replica::Generic(c) => c.tag(),
        }
    }

    /// Whether the state is held in a keyed map (merges cost
    /// `O(m log n)`) rather than as a core state.
    pub fn is_keyed(&self) -> bool {
        !matches!(self, Replica::Generic(_))
    }

    /// The state as the core's decoded representation (copies handles, `O(n)`).
    pub fn to_crdt(&self) -> Crdt<OwnedTerm> {
        match self {
            Replica::GSet(m) => Crdt::GSet(GSet {
                elems: m.values().map(|e| e.term.clone()).collect(),
            }),
            Replica::GCounter(m) => Crdt::GCounter(GCounter {
                entries: m.values().map(|(e, n)| (e.term.clone(), *n)).collect(),
            }),
            Replica::ORSet(o) => Crdt::decode(&o.to_term(), &mut Decoder::new(Limits::dirty()))
                .unwrap_or_else(|_| Crdt::ORSet(Box::new(crate::lattice::Lattice::bottom()))),
            Replica::AWSet(a) => Crdt::decode(&a.to_term(), &mut Decoder::new(Limits::dirty()))
                .unwrap_or_else(|_| Crdt::AWSet(Box::new(crate::lattice::Lattice::bottom()))),
            Replica::TwoPSet(t) => Crdt::TwoPSet(t.to_core()),
            Replica::Generic(c) => c.clone(),
        }
    }

    /// The state term, exactly as types holds it.
    pub fn to_term(&self) -> OwnedTerm {
        match self {
            Replica::AWSet(a) => a.to_term(),
            Replica::ORSet(o) => o.to_term(),
            _ => self.to_crdt().encode(&OwnedBuilder),
        }
    }

    /// Entries held: elements of a gset, actors of a gcounter; for other
    /// types the length of the first list in the payload, looking into
    /// tuples up to two levels (`{DotMap, Context}`, `{CType, Entries}`),
    /// or 1 when there is none (registers, flags).
    pub fn size(&self) -> usize {
        match self {
            Replica::GSet(m) => m.len(),
            Replica::GCounter(m) => m.len(),
            Replica::AWSet(a) => a.len(),
            Replica::ORSet(o) => o.len(),
            Replica::TwoPSet(t) => t.len(),
            Replica::Generic(c) => {
                // The first list in the payload, looking one or two tuple
                // levels down: `{DotMap, CC}`, `{CType, Entries}`, ...
                fn count(t: &OwnedTerm, depth: usize) -> Option<usize> {
                    match t {
                        OwnedTerm::Nil => Some(0),
                        OwnedTerm::List(_) => t.list_parts().map(|(es, _)| es.len()),
                        OwnedTerm::Tuple(es) if depth < 2 => {
                            es.iter().find_map(|e| count(e, depth + 1))
                        }
                        _ => None,
                    }
                }
                let t = c.encode(&OwnedBuilder);
                t.tuple_elem(1).and_then(|p| count(&p, 0)).unwrap_or(1)
            }
        }
    }

    /// `is_inflation(W, Self)`: whether this state holds `w`, without
    /// materialising the state where it can. A gset or gcounter reads only
    /// its entries under `w`'s keys (`O(|w| log n)`); the other states, and
    /// a `w` with a term that has no key, are compared whole (an orset or
    /// awset is materialised first, `O(n)`).
    pub fn holds(&self, w: &Crdt<OwnedTerm>) -> Result<bool> {
        // The resident entries under `w`'s keys, in `w`'s (term) order:
        // `None` when a term of `w` has no key.
        let projected = match (self, w) {
            (Replica::GSet(m), Crdt::GSet(g)) => g
                .elems
                .iter()
                .map(|e| keyed(e).map(|(k, _)| m.get(&k).map(|x| x.term.clone())))
                .collect::<Option<Vec<_>>>()
                .map(|v| {
                    Crdt::GSet(GSet {
                        elems: v.into_iter().flatten().collect(),
                    })
                }),
            (Replica::GCounter(m), Crdt::GCounter(g)) => g
                .entries
                .iter()
                .map(|(a, _)| keyed(a).map(|(k, _)| m.get(&k).map(|(e, n)| (e.term.clone(), *n))))
                .collect::<Option<Vec<_>>>()
                .map(|v| {
                    Crdt::GCounter(GCounter {
                        entries: v.into_iter().flatten().collect(),
                    })
                }),
            (Replica::TwoPSet(s), Crdt::TwoPSet(t)) => {
                s.project(&t.added, &t.removed).map(Crdt::TwoPSet)
            }
            (Replica::Generic(c), _) => return w.is_inflation(c),
            _ => None,
        };
        match projected {
            Some(p) => w.is_inflation(&p),
            None => w.is_inflation(&self.to_crdt()),
        }
    }

    /// Fall back to the core representation (for terms with no key).
    fn generalise(&mut self) {
        if self.is_keyed() {
            *self = Replica::Generic(self.to_crdt());
        }
    }

    /// `merge(Self, Incoming)`, in place.
    pub fn merge(&mut self, incoming: &Replica) -> Result<()> {
        self.merge_as(incoming, First::Resident)
    }

    /// `merge(Self, Incoming)` of a decoded state, in place.
    pub fn merge_crdt(&mut self, incoming: Crdt<OwnedTerm>) -> Result<()> {
        self.merge(&Replica::from_crdt(incoming))
    }

    /// `merge(Self, Incoming)` of a decoded state, in place, leaving it to
    /// the caller: an awset's incoming state is not decoded a second time.
    pub fn merge_crdt_ref(&mut self, incoming: &Crdt<OwnedTerm>) -> Result<()> {
        if let (Replica::AWSet(a), Crdt::AWSet(_)) = (&mut *self, incoming) {
            let t = incoming.encode(&OwnedBuilder);
            if let Some(inc) = t.tuple_elem(1).and_then(|p| AwSet::from_payload(&p)) {
                return a.merge_decoded(&inc, incoming, First::Resident);
            }
        }
        self.merge(&Replica::from_crdt(incoming.clone()))
    }

    fn merge_as(&mut self, incoming: &Replica, first: First) -> Result<()> {
        if self.tag() != incoming.tag() {
            return Err(BadCrdt::TypeMismatch(self.tag(), incoming.tag()));
        }
        match (&mut *self, incoming) {
            (Replica::GSet(m), Replica::GSet(inc)) => {
                union(m, inc, first);
                Ok(())
            }
            (Replica::GCounter(m), Replica::GCounter(inc)) => {
                let ins: Vec<In> = inc
                    .iter()
                    .map(|(k, (e, n))| In {
                        key: k,
                        exact: &e.exact,
                        count: *n,
                    })
                    .collect();
                let elems: Vec<&Elem> = inc.values().map(|(e, _)| e).collect();
                for (i, act) in plan_counter(m, &ins, first) {
                    if act != Act::Check {
                        write_count(m, ins[i].key, elems[i].clone(), ins[i].count, first);
                    }
                }
                Ok(())
            }
            (Replica::AWSet(a), Replica::AWSet(inc)) => a.merge(inc, first),
            (Replica::ORSet(o), Replica::ORSet(inc)) => o.merge(inc, first),
            (Replica::TwoPSet(t), Replica::TwoPSet(inc)) => {
                t.merge(inc, first);
                Ok(())
            }
            _ => {
                self.generalise();
                let Replica::Generic(c) = &*self else {
                    return Err(BadCrdt::NotACrdt);
                };
                let other = incoming.to_crdt();
                let merged = match first {
                    First::Resident => c.merge(&other)?.into_state(c, &other),
                    First::Incoming => other.merge(c)?.into_state(&other, c),
                };
                *self = Replica::from_crdt(merged);
                Ok(())
            }
        }
    }

    /// types' `mutate(Op, Actor, State)`, in place; returns the delta of
    /// `delta_mutate(Op, Actor, State)`.
    ///
    /// For gsets and gcounters the delta is computed by the core over the
    /// state restricted to the operation's element or actor (all a
    /// `delta_mutate` of these types reads), so a mutation costs
    /// `O(log n)`.
    pub fn mutate<C: MutateCx<OwnedTerm>>(
        &mut self,
        op: &OwnedTerm,
        actor: &OwnedTerm,
        cx: &mut C,
    ) -> std::result::Result<Crdt<OwnedTerm>, MutateError<OwnedTerm>> {
        let projected = match &*self {
            Replica::GSet(m) => {
                let elem = op
                    .as_pair()
                    .filter(|(n, _)| n.is_atom(Atom::Add))
                    .map(|(_, e)| e);
                match elem.map(|e| keyed(&e)) {
                    Some(None) => None,
                    Some(Some((k, _))) => Some(Crdt::GSet(GSet {
                        elems: m.get(&k).map(|e| e.term.clone()).into_iter().collect(),
                    })),
                    None => Some(Crdt::GSet(GSet { elems: Vec::new() })),
                }
            }
            Replica::GCounter(m) => keyed(actor).map(|(k, _)| {
                Crdt::GCounter(GCounter {
                    entries: m
                        .get(&k)
                        .map(|(e, n)| (e.term.clone(), *n))
                        .into_iter()
                        .collect(),
                })
            }),
            Replica::ORSet(_) => {
                let keyable =
                    ORSet::named(op).is_some_and(|es| es.iter().all(|e| keyed(e).is_some()));
                if keyable {
                    if let Replica::ORSet(o) = self {
                        return o.mutate(op, actor, cx);
                    }
                }
                None
            }
            Replica::AWSet(_) => {
                let named = match op.as_pair() {
                    Some((_, OwnedTerm::List(l))) => OwnedTerm::List(l).list_elems(),
                    Some((_, e)) => Some(vec![e]),
                    None => Some(Vec::new()),
                };
                let keyable = keyed(actor).is_some()
                    && named.is_some_and(|es| es.iter().all(|e| keyed(e).is_some()));
                if keyable {
                    if let Replica::AWSet(a) = self {
                        return a.mutate(op, actor, cx);
                    }
                }
                None
            }
            Replica::TwoPSet(t) => t.project_op(op).map(Crdt::TwoPSet),
            Replica::Generic(_) => None,
        };
        let delta = match projected {
            Some(p) => p.delta_mutate(op, actor, cx)?,
            None => {
                self.generalise();
                match &*self {
                    Replica::Generic(c) => c.delta_mutate(op, actor, cx)?,
                    _ => return Err(BadCrdt::NotACrdt.into()),
                }
            }
        };
        self.merge_as(&Replica::from_crdt(delta.clone()), First::Incoming)?;
        Ok(delta)
    }

    /// The binary of this state (see the module documentation).
    pub fn to_binary(&self) -> Vec<u8> {
        if let Some(enc) = self.encoded() {
            return enc.bytes;
        }
        let mut out = Vec::with_capacity(16 + 16 * self.size());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        match self {
            Replica::GSet(_) | Replica::GCounter(_) => {}
            Replica::AWSet(a) => {
                out.push(GENERIC);
                out.extend_from_slice(&etf::encode(&a.to_term())[1..]);
            }
            Replica::ORSet(o) => {
                out.push(GENERIC);
                out.extend_from_slice(&etf::encode(&o.to_term())[1..]);
            }
            Replica::TwoPSet(t) => {
                out.push(GENERIC);
                out.extend_from_slice(&etf::encode(&t.to_term())[1..]);
            }
            Replica::Generic(c) => {
                out.push(GENERIC);
                let t = c.encode(&OwnedBuilder);
                out.extend_from_slice(&etf::encode(&t)[1..]);
            }
        }
        out
    }

    /// A keyed gset's or gcounter's binary with its entry table, which
    /// [`Replica::merge_binary_with`] walks; `None` for other replicas.
    pub fn encoded(&self) -> Option<Encoded> {
        // Twice the key bytes of a small element is a fair first guess.
        match self {
            Replica::GSet(m) => {
                let mut enc = Encoded::start(GSET, m.len(), 16 * m.len());
                for (k, e) in m {
                    enc.push(k, &e.exact, &[]);
                }
                Some(enc.finish())
            }
            Replica::GCounter(m) => {
                let mut enc = Encoded::start(GCOUNTER, m.len(), 24 * m.len());
                for (k, (e, n)) in m {
                    enc.push(k, &e.exact, &n.to_be_bytes());
                }
                Some(enc.finish())
            }
            _ => None,
        }
    }

    /// The entries of this keyed gset or gcounter under the elements or
    /// actors `delta` names, as they are now: with them
    /// [`Encoded::patched`] turns the binary of the state before a change
    /// that wrote only those keys (a mutation, a delta) into this state's.
    /// `None` when this replica or `delta` is not of that kind.
    pub fn patches_for(&self, delta: &Crdt<OwnedTerm>) -> Option<Vec<Patch>> {
        let keys: Vec<&OwnedTerm> = match delta {
            Crdt::GSet(g) => g.elems.iter().collect(),
            Crdt::GCounter(g) => g.entries.iter().map(|(a, _)| a).collect(),
            _ => return None,
        };
        let mut out = Vec::with_capacity(keys.len());
        for t in keys {
            let (k, _) = keyed(t)?;
            let (exact, count) = match self {
                Replica::GSet(m) => (&m.get(&k)?.exact, 0),
                Replica::GCounter(m) => {
                    let (e, n) = m.get(&k)?;
                    (&e.exact, *n)
                }
                _ => return None,
            };
            out.push(Patch {
                key: k,
                exact: exact.clone(),
                count,
            });
        }
        Some(out)
    }

    /// Read a binary written by [`Replica::to_binary`], validating it.
    pub fn from_binary(bytes: &[u8]) -> Result<Self> {
        let bad = |why| BadCrdt::BadBinary(why);
        let layout = layout_of(bytes)?;
        let body = &bytes[5..];
        match layout {
            GSET | GCOUNTER => {
                let gset = bytes[4] == GSET;
                let ins = scan_entries(body, if gset { 0 } else { 8 })?;
                let mut out = Vec::with_capacity(ins.len());
                for x in &ins {
                    out.push((Box::<[u8]>::from(x.key), decode_entry(body, x)?));
                }
                Ok(if gset {
                    Replica::GSet(out.into_iter().collect())
                } else {
                    Replica::GCounter(
                        out.into_iter()
                            .zip(&ins)
                            .map(|((k, e), x)| (k, (e, x.count)))
                            .collect(),
                    )
                })
            }
            GENERIC => {
                let mut etf_bytes = Vec::with_capacity(body.len() + 1);
                etf_bytes.push(131);
                etf_bytes.extend_from_slice(body);
                let t = etf::decode(&etf_bytes).map_err(|_| bad(Atom::Malformed))?;
                Self::from_term(&t)
            }
            _ => Err(bad(Atom::Malformed)),
        }
    }

    /// Whether every atom in the state satisfies `known` (the NIF refuses
    /// binaries naming atoms the VM does not have, as `binary_to_term(B,
    /// [safe])` does).
    pub fn atoms_known(&self, known: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Replica::GSet(m) => m.values().all(|e| term_atoms_ok(&e.term, known)),
            Replica::GCounter(m) => m.values().all(|(e, _)| term_atoms_ok(&e.term, known)),
            Replica::AWSet(a) => term_atoms_ok(&a.terms(), known),
            Replica::ORSet(o) => term_atoms_ok(&o.to_term(), known),
            Replica::TwoPSet(t) => term_atoms_ok(&t.terms(), known),
            Replica::Generic(c) => term_atoms_ok(&c.encode(&OwnedBuilder), known),
        }
    }
}

/// The layout byte of a binary whose magic and version are right.
fn layout_of(bytes: &[u8]) -> Result<u8> {
    let bad = BadCrdt::BadBinary;
    if bytes.len() < 5 {
        return Err(bad(if MAGIC.starts_with(bytes) {
            Atom::Truncated
        } else {
            Atom::BadMagic
        }));
    }
    if &bytes[..3] != MAGIC {
        return Err(bad(Atom::BadMagic));
    }
    if bytes[3] != VERSION {
        return Err(bad(Atom::BadVersion));
    }
    Ok(bytes[4])
}

/// One incoming entry, by its bytes: the primary key, the exact part and
/// (gcounter) the count.
#[derive(Clone, Copy)]
struct In<'a> {
    key: &'a [u8],
    exact: &'a [u8],
    count: i64,
}

/// What a merge does with an incoming entry: add it, overwrite the
/// resident entry with it, or only check it (it matches a resident key but
/// its exact part differs and the resident term is kept: a binary's entry
/// is then decoded to validate it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Insert,
    Replace,
    Check,
}

/// Below this ratio of incoming to resident entries a merge looks each
/// incoming key up (O(m log n)); above it, it walks both in order (O(n + m)),
/// which reads keys sequentially instead of chasing tree pointers.
const WALK_RATIO: usize = 8;

/// `ordsets:union(X, Y)` planned against `m`, where the resident set is `X`
/// when `first` is `Resident` (else `Y`). On `==` elements the union keeps
/// the "current first" list's term, and the current first is whichever side
/// last emitted an element the other lacks (initially `X`).
fn plan_set<V: HasExact>(m: &BTreeMap<Key, V>, inc: &[In], first: First) -> Vec<(usize, Act)> {
    let mut plan = Vec::new();
    let mut cur = first;
    let mut on_match = |i: usize, resident: &V, x: &In, cur: First| {
        if resident.exact() != x.exact {
            plan.push((
                i,
                if cur == First::Incoming {
                    Act::Replace
                } else {
                    Act::Check
                },
            ));
        }
    };
    let mut inserts = Vec::new();
    if inc.len() * WALK_RATIO >= m.len() {
        let mut it = m.iter();
        let mut next = it.next();
        for (i, x) in inc.iter().enumerate() {
            loop {
                match next {
                    Some((k, v)) => match (**k).cmp(x.key) {
                        Ordering::Less => {
                            cur = First::Resident;
                            next = it.next();
                        }
                        Ordering::Equal => {
                            on_match(i, v, x, cur);
                            next = it.next();
                            break;
                        }
                        Ordering::Greater => {
                            inserts.push(i);
                            cur = First::Incoming;
                            break;
                        }
                    },
                    None => {
                        inserts.push(i);
                        cur = First::Incoming;
                        break;
                    }
                }
            }
        }
    } else {
        let mut prev: Option<&[u8]> = None;
        for (i, x) in inc.iter().enumerate() {
            let lo = prev.map_or(Unbounded, Excluded);
            if m.range::<[u8], _>((lo, Excluded(x.key))).next().is_some() {
                cur = First::Resident;
            }
            match m.get(x.key) {
                Some(v) => on_match(i, v, x, cur),
                None => {
                    inserts.push(i);
                    cur = First::Incoming;
                }
            }
            prev = Some(x.key);
        }
    }
    plan.extend(inserts.into_iter().map(|i| (i, Act::Insert)));
    plan
}

/// `ordsets:union(M, Inc)` into `m` (`M` first when `first` is
/// `Resident`): a gset's merge, and each of a twopset's two sets'.
fn union(m: &mut BTreeMap<Key, Elem>, inc: &BTreeMap<Key, Elem>, first: First) {
    let ins: Vec<In> = inc
        .iter()
        .map(|(k, e)| In {
            key: k,
            exact: &e.exact,
            count: 0,
        })
        .collect();
    let elems: Vec<&Elem> = inc.values().collect();
    for (i, act) in plan_set(m, &ins, first) {
        if act != Act::Check {
            m.insert(ins[i].key.into(), elems[i].clone());
        }
    }
}

/// `orddict:merge` with `max` planned against `m`: the entries that change
/// something (a new actor, a larger count, or the incoming key term when the
/// incoming side is first).
fn plan_counter(m: &BTreeMap<Key, (Elem, i64)>, inc: &[In], first: First) -> Vec<(usize, Act)> {
    let judge = |x: &In, (e, v): &(Elem, i64)| {
        let other_term = e.exact[..] != *x.exact;
        if x.count > *v || (other_term && first == First::Incoming) {
            Some(Act::Replace)
        } else if other_term {
            Some(Act::Check)
        } else {
            None
        }
    };
    let mut plan = Vec::new();
    if inc.len() * WALK_RATIO >= m.len() {
        let mut it = m.iter();
        let mut next = it.next();
        for (i, x) in inc.iter().enumerate() {
            loop {
                match next.map(|(k, v)| ((**k).cmp(x.key), v)) {
                    Some((Ordering::Less, _)) => next = it.next(),
                    Some((Ordering::Equal, v)) => {
                        plan.extend(judge(x, v).map(|a| (i, a)));
                        next = it.next();
                        break;
                    }
                    _ => {
                        plan.push((i, Act::Insert));
                        break;
                    }
                }
            }
        }
    } else {
        for (i, x) in inc.iter().enumerate() {
            match m.get(x.key) {
                Some(v) => plan.extend(judge(x, v).map(|a| (i, a))),
                None => plan.push((i, Act::Insert)),
            }
        }
    }
    plan
}

/// Write one planned gcounter entry: the larger count, and the incoming
/// key term when the incoming side is first (or the actor is new).
fn write_count(m: &mut BTreeMap<Key, (Elem, i64)>, key: &[u8], e: Elem, n: i64, first: First) {
    match m.get_mut(key) {
        Some((old, v)) => {
            if first == First::Incoming {
                *old = e;
            }
            *v = (*v).max(n);
        }
        None => {
            m.insert(key.into(), (e, n));
        }
    }
}

/// The exact part of a resident entry.
trait HasExact {
    fn exact(&self) -> &[u8];
}

impl HasExact for Elem {
    fn exact(&self) -> &[u8] {
        &self.exact
    }
}

/// Scan a keyed body: `count` entries of `key ++ tail_len bytes`, primaries
/// strictly ascending, nothing left over. Keys are checked for structure
/// only; [`decode_entry`] validates one fully.
fn scan_entries(body: &[u8], tail_len: usize) -> Result<Vec<In<'_>>> {
    let bad = BadCrdt::BadBinary;
    let n = body.get(..4).ok_or(bad(Atom::Truncated))?;
    let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize;
    // Each entry takes at least two bytes: refuse counts the body cannot hold.
    if n > body.len() / 2 {
        return Err(bad(Atom::Truncated));
    }
    let mut out: Vec<In> = Vec::with_capacity(n);
    let mut pos = 4;
    for _ in 0..n {
        let rest = &body[pos..];
        let (plen, used) = wire::key_len(rest).map_err(|e| {
            bad(match e {
                wire::KeyError::Truncated => Atom::Truncated,
                _ => Atom::Malformed,
            })
        })?;
        let tail = rest
            .get(used..used + tail_len)
            .ok_or(bad(Atom::Truncated))?;
        let count = if tail_len == 8 {
            let mut c = [0u8; 8];
            c.copy_from_slice(tail);
            i64::from_be_bytes(c)
        } else {
            0
        };
        let x = In {
            key: &rest[..plen],
            exact: &rest[plen..used],
            count,
        };
        if out.last().is_some_and(|p| p.key >= x.key) {
            return Err(bad(Atom::Unsorted));
        }
        out.push(x);
        pos += used + tail_len;
    }
    if pos != body.len() {
        return Err(bad(Atom::Malformed));
    }
    Ok(out)
}

/// Decode and fully validate one scanned entry.
fn decode_entry(body: &[u8], x: &In) -> Result<Elem> {
    // `x.key` borrows from `body`: its offset is where the entry starts.
    let at = x.key.as_ptr() as usize - body.as_ptr() as usize;
    let len = x.key.len() + x.exact.len();
    let (term, used) = wire::decode(&body[at..at + len]).map_err(|e| {
        BadCrdt::BadBinary(match e {
            wire::KeyError::Truncated => Atom::Truncated,
            _ => Atom::Malformed,
        })
    })?;
    if used != len {
        return Err(BadCrdt::BadBinary(Atom::Malformed));
    }
    Ok(Elem {
        term,
        exact: x.exact.into(),
    })
}

impl Replica {
    /// `merge(Self, Incoming)` straight from a binary, in place. When both
    /// are keyed gsets or gcounters, only the entries the merge writes (and
    /// those matching a resident key with another exact term) are decoded;
    /// the others are checked by their bytes. `atom_ok` is asked about every
    /// atom of a decoded entry. Otherwise the binary is read whole first.
    pub fn merge_binary(&mut self, bytes: &[u8], atom_ok: &dyn Fn(&str) -> bool) -> Result<()> {
        self.merge_binary_with(bytes, None, None, atom_ok)
            .map(|_| ())
    }

    /// Whether [`Replica::merge_binary_with`] walks this replica's
    /// [`Encoded`] form to merge `bytes`: a keyed gset or gcounter and a
    /// binary of its layout holding at least an eighth as many entries.
    /// Smaller binaries look each entry up instead, O(m log n).
    pub fn walks(&self, bytes: &[u8]) -> bool {
        let keyed = matches!(
            (self, bytes.get(..5)),
            (Replica::GSet(_), Some([b'L', b'C', b'R', VERSION, GSET]))
                | (
                    Replica::GCounter(_),
                    Some([b'L', b'C', b'R', VERSION, GCOUNTER])
                )
        );
        if !keyed {
            return false;
        }
        match bytes.get(5..9) {
            Some(n) => {
                let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize;
                n.saturating_mul(WALK_RATIO) >= self.size()
            }
            None => false,
        }
    }

    /// [`Replica::merge_binary`], given this replica's [`Encoded`] form
    /// when the caller keeps it (it must be `self.encoded()`; it is built
    /// here when [`Replica::walks`] says so). Returns whether the state
    /// changed, and its binary after the merge when the merge knows it.
    ///
    /// With a `budget`, a walk that would decode more entries than that
    /// returns [`BadCrdt::Yield`] before writing anything (a caller on a
    /// scheduler with little time tries again where it has more).
    pub fn merge_binary_with(
        &mut self,
        bytes: &[u8],
        enc: Option<&Encoded>,
        budget: Option<usize>,
        atom_ok: &dyn Fn(&str) -> bool,
    ) -> Result<(bool, After)> {
        if self.keyed_layout(bytes).is_none() {
            let inc = Replica::from_binary(bytes)?;
            if !inc.atoms_known(atom_ok) {
                return Err(BadCrdt::BadBinary(Atom::Unsupported));
            }
            self.merge(&inc)?;
            return Ok((true, After::Unknown));
        }
        self.merge_keyed(bytes, enc, budget, atom_ok, None)
    }

    /// [`Replica::merge_binary_with`] for a keyed gset or gcounter and a
    /// binary of its layout, also giving what the binary added:
    /// `delta(Incoming, Resident)` as types computes it (the elements the
    /// replica lacked; the actors it lacked or held with a lower count),
    /// `None` when nothing. `Ok(None)` when the pair is not of that kind
    /// (nothing is done).
    #[allow(clippy::type_complexity)]
    pub fn merge_binary_added(
        &mut self,
        bytes: &[u8],
        enc: Option<&Encoded>,
        budget: Option<usize>,
        atom_ok: &dyn Fn(&str) -> bool,
    ) -> Result<Option<(bool, Option<Crdt<OwnedTerm>>, After)>> {
        let Some(layout) = self.keyed_layout(bytes) else {
            return Ok(None);
        };
        let mut added = Vec::new();
        let (changed, after) = self.merge_keyed(bytes, enc, budget, atom_ok, Some(&mut added))?;
        let delta = (!added.is_empty()).then(|| {
            if layout == GSET {
                Crdt::GSet(GSet {
                    elems: added.into_iter().map(|(t, _)| t).collect(),
                })
            } else {
                Crdt::GCounter(GCounter { entries: added })
            }
        });
        Ok(Some((changed, delta, after)))
    }

    /// The layout of `bytes` when both it and this replica are a keyed gset
    /// or gcounter of the same type.
    pub fn keyed_layout(&self, bytes: &[u8]) -> Option<u8> {
        match (self, bytes.get(..5)) {
            (Replica::GSet(_), Some([b'L', b'C', b'R', VERSION, GSET])) => Some(GSET),
            (Replica::GCounter(_), Some([b'L', b'C', b'R', VERSION, GCOUNTER])) => Some(GCOUNTER),
            _ => None,
        }
    }

    /// Merge a keyed binary: walked against `enc` (or this replica's own
    /// binary, built here) when [`Replica::walks`], else looked up entry
    /// by entry. Every entry written is decoded and checked before anything
    /// is written.
    fn merge_keyed(
        &mut self,
        bytes: &[u8],
        enc: Option<&Encoded>,
        budget: Option<usize>,
        atom_ok: &dyn Fn(&str) -> bool,
        added: Option<&mut Vec<(OwnedTerm, i64)>>,
    ) -> Result<(bool, After)> {
        let gset = matches!(self, Replica::GSet(_));
        let body = &bytes[flat::HEADER..];
        let mut built = None;
        let walked = enc.is_some() || self.walks(bytes);
        let plan: Vec<(In, Act, usize)> = if walked {
            let enc = match enc {
                Some(e) => e,
                None => built.insert(self.encoded().ok_or(BadCrdt::NotACrdt)?),
            };
            // Entries read key by key cost a few times less than a decode.
            flat::plan(enc, bytes, budget.map(|b| b.saturating_mul(4)))?
        } else {
            let ins = scan_entries(body, if gset { 0 } else { 8 })?;
            let mut plan: Vec<(In, Act, usize)> = match &*self {
                Replica::GSet(m) => plan_set(m, &ins, First::Resident),
                Replica::GCounter(m) => plan_counter(m, &ins, First::Resident),
                _ => Vec::new(),
            }
            .into_iter()
            .map(|(i, a)| (ins[i], a, 0))
            .collect();
            // In the binary's order (a set's inserts are planned last).
            plan.sort_by_key(|(x, _, _)| x.key.as_ptr() as usize);
            plan
        };
        if budget.is_some_and(|b| plan.len() > b) {
            return Err(BadCrdt::Yield);
        }
        // Decode and check everything before writing anything.
        let mut writes = Vec::with_capacity(plan.len());
        let mut elems = Vec::with_capacity(plan.len());
        for (x, act, at) in &plan {
            let e = decode_entry(body, x)?;
            if !term_atoms_ok(&e.term, atom_ok) {
                return Err(BadCrdt::BadBinary(Atom::Unsupported));
            }
            if *act != Act::Check {
                writes.push((*x, *act, *at));
                elems.push(e);
            }
        }
        if let Some(added) = added {
            for ((x, act, _), e) in writes.iter().zip(&elems) {
                if *act == Act::Insert || !gset {
                    added.push((e.term.clone(), x.count));
                }
            }
        }
        let changed = !writes.is_empty();
        // The binary after the merge: the same, or the old one spliced (a
        // copy of the bytes the walk has just read anyway).
        let after = match (walked, changed) {
            (false, false) => After::Kept,
            (false, true) => After::Unknown,
            (true, false) => built.map_or(After::Kept, After::New),
            (true, true) => {
                let old = enc.or(built.as_ref()).ok_or(BadCrdt::NotACrdt)?;
                After::New(old.splice(&writes))
            }
        };
        match self {
            Replica::GSet(m) => {
                for ((x, _, _), e) in writes.into_iter().zip(elems) {
                    m.insert(x.key.into(), e);
                }
            }
            Replica::GCounter(m) => {
                for ((x, _, _), e) in writes.into_iter().zip(elems) {
                    write_count(m, x.key, e, x.count, First::Resident);
                }
            }
            _ => {}
        }
        Ok((changed, after))
    }
}

/// A replica's binary after a merge of a binary, as far as the merge knows.
#[derive(Debug)]
pub enum After {
    /// The binary given to the merge still is the state's.
    Kept,
    /// The state's binary, built or spliced by the merge.
    New(Encoded),
    /// Not known: build it again when needed.
    Unknown,
}

fn term_atoms_ok(t: &OwnedTerm, known: &dyn Fn(&str) -> bool) -> bool {
    match t {
        OwnedTerm::Atom(a) => known(a),
        OwnedTerm::Tuple(es) => es.iter().all(|e| term_atoms_ok(e, known)),
        OwnedTerm::Map(ps) => ps
            .iter()
            .all(|(k, v)| term_atoms_ok(k, known) && term_atoms_ok(v, known)),
        OwnedTerm::List(_) => t.list_parts().is_some_and(|(es, tl)| {
            es.iter().all(|e| term_atoms_ok(e, known)) && term_atoms_ok(tl, known)
        }),
        _ => true,
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::term::Builder;
    use crate::testing::Cx;

    // The core's generator for randomized tests.
    use crate::testing::Rng;

    // Lasp-like elements, with `==`-but-not-`=:=` pairs (1 and 1.0).
    fn elem(r: &mut Rng) -> OwnedTerm {
        let wide = r.next(2);
        let n = r.next(12 + 60 * wide) as i64;
        match r.next(5) {
            0 => OwnedTerm::int(n),
            1 => OwnedTerm::float(n as f64),
            2 => OwnedTerm::bin(format!("e{n}").as_bytes()),
            3 => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::int(n)]),
            _ => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::float(n as f64)]),
        }
    }

    fn gset(r: &mut Rng) -> OwnedTerm {
        // Sometimes large, so that small merges into it look keys up
        // instead of walking.
        let n = if r.next(3) == 0 { 100 } else { 10 };
        crate::testing::gset_of(r, n, elem)
    }

    fn gcounter(r: &mut Rng) -> OwnedTerm {
        let n = if r.next(3) == 0 { 100 } else { 8 };
        crate::testing::gcounter_of(r, n, elem, |r| r.next(5) as i64)
    }

    // awset states built by real operations on three replicas, with merges.
    fn awset(r: &mut Rng) -> OwnedTerm {
        let b = OwnedBuilder;
        let mut reps = vec![Crdt::bottom(&OwnedTerm::atom("state_awset")).unwrap(); 3];
        let actors = [
            OwnedTerm::atom("a"),
            OwnedTerm::bin(b"b"),
            OwnedTerm::tuple([OwnedTerm::atom("c"), OwnedTerm::int(1)]),
        ];
        let steps = if r.next(4) == 0 { 120 } else { 12 };
        for _ in 0..r.next(steps) {
            let i = r.next(3) as usize;
            let e = match r.next(3) {
                0 => OwnedTerm::int(r.next(40) as i64),
                1 => OwnedTerm::bin(format!("e{}", r.next(40)).as_bytes()),
                _ => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::int(r.next(9) as i64)]),
            };
            match r.next(6) {
                0..=2 => {
                    let op = b.pair(OwnedTerm::atom("add"), e);
                    reps[i] = reps[i].mutate(&op, &actors[i], &mut Cx::default()).unwrap();
                }
                3 => {
                    let op = b.pair(OwnedTerm::atom("rmv"), e);
                    reps[i] = reps[i].mutate(&op, &actors[i], &mut Cx::default()).unwrap();
                }
                _ => {
                    let j = r.next(3) as usize;
                    reps[i] = reps[i]
                        .merge(&reps[j])
                        .unwrap()
                        .into_state(&reps[i], &reps[j]);
                }
            }
        }
        let pick = r.next(3) as usize;
        if r.next(3) == 0 {
            // A delta instead of a whole state.
            let e = OwnedTerm::int(r.next(40) as i64);
            let op = b.pair(
                OwnedTerm::atom(if r.next(2) == 0 { "add" } else { "rmv" }),
                e,
            );
            return reps[pick]
                .delta_mutate(&op, &actors[pick], &mut Cx::default())
                .unwrap()
                .encode(&b);
        }
        reps[pick].encode(&b)
    }

    #[test]
    fn awset_merge_matches_core_test() {
        check_merges(awset, 46);
        let mut r = Rng(47);
        let b = OwnedBuilder;
        for _ in 0..1000 {
            let s = awset(&mut r);
            let e = OwnedTerm::int(r.next(40) as i64);
            let name = ["add", "rmv", "add_all", "rmv_all"][r.next(4) as usize];
            let arg = if name.ends_with("all") {
                b.list(&[e.clone(), OwnedTerm::bin(b"e3")])
            } else {
                e
            };
            let op = b.pair(OwnedTerm::atom(name), arg);
            mutate_agrees(&s, &op, |r| matches!(r, Replica::AWSet(_)));
        }
    }

    // A mutation of a keyed replica gives the delta and the state the
    // core's `delta_mutate` and `mutate` give for the same term.
    fn mutate_agrees(s: &OwnedTerm, op: &OwnedTerm, keyed: fn(&Replica) -> bool) {
        let b = OwnedBuilder;
        let actor = OwnedTerm::atom("a");
        let want_delta =
            crate::api::delta_mutate(&mut Cx::default(), op, &actor, s, Limits::dirty()).unwrap();
        let want = crate::api::mutate(&mut Cx::default(), op, &actor, s, Limits::dirty()).unwrap();
        let mut rs = Replica::from_term(s).unwrap();
        assert!(keyed(&rs));
        let d = rs.mutate(op, &actor, &mut Cx::default()).unwrap();
        let ok = |t: OwnedTerm| b.pair(OwnedTerm::atom("ok"), t);
        assert!(ok(d.encode(&b)).identical(&want_delta), "{op} on {s}");
        assert!(
            ok(rs.to_term()).identical(&want),
            "{op} on {s}: {want} vs {}",
            rs.to_term()
        );
    }

    // Fresh tokens for building orsets.
    struct Fresh(u8);
    impl MutateCx<OwnedTerm> for Fresh {
        type B = OwnedBuilder;
        fn builder(&self) -> &OwnedBuilder {
            &OwnedBuilder
        }
        fn token(&mut self) -> OwnedTerm {
            self.0 = self.0.wrapping_add(1);
            OwnedBuilder.binary(&[self.0; 3])
        }
    }

    // orset states by real operations, with `==` elements (1, 1.0).
    fn orset(r: &mut Rng) -> OwnedTerm {
        let b = OwnedBuilder;
        let mut cx = Fresh(r.next(200) as u8);
        let mut reps = vec![Crdt::bottom(&OwnedTerm::atom("state_orset")).unwrap(); 2];
        let steps = if r.next(4) == 0 { 100 } else { 10 };
        for _ in 0..r.next(steps) {
            let i = r.next(2) as usize;
            let e = elem(r);
            match r.next(5) {
                0..=2 => {
                    let op = b.pair(OwnedTerm::atom("add"), e);
                    reps[i] = reps[i].mutate(&op, &OwnedTerm::atom("a"), &mut cx).unwrap();
                }
                3 => {
                    let op = b.pair(OwnedTerm::atom("rmv"), e);
                    reps[i] = reps[i].mutate(&op, &OwnedTerm::atom("a"), &mut cx).unwrap();
                }
                _ => {
                    let j = 1 - i;
                    reps[i] = reps[i]
                        .merge(&reps[j])
                        .unwrap()
                        .into_state(&reps[i], &reps[j]);
                }
            }
        }
        reps[r.next(2) as usize].encode(&b)
    }

    #[test]
    fn orset_merge_and_mutate_match_core_test() {
        check_merges(orset, 48);
        let mut r = Rng(49);
        let b = OwnedBuilder;
        for _ in 0..1000 {
            let s = orset(&mut r);
            let e = elem(&mut r);
            let op = match r.next(5) {
                0 => b.pair(OwnedTerm::atom("add"), e),
                1 => b.pair(OwnedTerm::atom("rmv"), e),
                2 => b.pair(OwnedTerm::atom("add_all"), b.list(&[e, OwnedTerm::int(2)])),
                3 => b.pair(OwnedTerm::atom("rmv_all"), b.list(&[e, OwnedTerm::int(2)])),
                _ => b.tuple(&[OwnedTerm::atom("add_by_token"), OwnedTerm::bin(b"tk"), e]),
            };
            mutate_agrees(&s, &op, |r| matches!(r, Replica::ORSet(_)));
        }
    }

    // `holds(W)` is `is_inflation(W, State)` for every keyed type (and a
    // generic one), for witnesses drawn as states of the same kind (so
    // some are held, most are not) and as the state's own deltas.
    #[test]
    fn holds_is_inflation_test() {
        type Gen = fn(&mut Rng) -> OwnedTerm;
        let gens: [(Gen, u64); 4] = [(gset, 61), (gcounter, 62), (awset, 63), (orset, 64)];
        let lim = Limits::dirty();
        for (gen, seed) in gens {
            let mut r = Rng(seed);
            let (mut held, mut not) = (0, 0);
            for _ in 0..600 {
                let (s, x) = (gen(&mut r), gen(&mut r));
                let merged = core_merge(&s, &x);
                let own = crate::api::delta(&OwnedBuilder, &merged, &x, lim).unwrap();
                let rs = Replica::from_term(&s).unwrap();
                let rm = Replica::from_term(&merged).unwrap();
                for (w, rep, st) in [(&x, &rs, &s), (&x, &rm, &merged), (&own, &rm, &merged)] {
                    let want = crate::api::is_inflation(w, st, lim).unwrap();
                    let wc = Crdt::decode(w, &mut Decoder::new(lim)).unwrap();
                    assert_eq!(rep.holds(&wc).unwrap(), want, "{w} in {st}");
                    if want {
                        held += 1;
                    } else {
                        not += 1;
                    }
                }
            }
            assert!(held > 100 && not > 100, "{held} held, {not} not");
        }
        // A generic state answers as the core does.
        let lww = |t: i64| {
            OwnedBuilder.pair(
                OwnedTerm::atom("state_lwwregister"),
                OwnedBuilder.pair(OwnedTerm::int(t), OwnedTerm::atom("v")),
            )
        };
        let rep = Replica::from_term(&lww(5)).unwrap();
        let w = |t| Crdt::decode(&lww(t), &mut Decoder::new(lim)).unwrap();
        assert!(rep.holds(&w(4)).unwrap());
        assert!(!rep.holds(&w(6)).unwrap());
    }

    fn core_merge(a: &OwnedTerm, b: &OwnedTerm) -> OwnedTerm {
        crate::api::merge(&OwnedBuilder, a, b, Limits::dirty()).unwrap()
    }

    fn check_merges(gen: fn(&mut Rng) -> OwnedTerm, seed: u64) {
        let mut r = Rng(seed);
        for _ in 0..3000 {
            let (a, b) = (gen(&mut r), gen(&mut r));
            let mut ra = Replica::from_term(&a).unwrap();
            assert!(ra.is_keyed());
            let want = core_merge(&a, &b);
            // The same from a decoded incoming state.
            let mut rd = ra.clone();
            let bc = Crdt::decode(&b, &mut Decoder::new(Limits::dirty())).unwrap();
            rd.merge_crdt_ref(&bc).unwrap();
            assert!(rd.to_term().identical(&want), "merge_crdt_ref({a}, {b})");
            assert!(ra.to_term().identical(&a));
            ra.merge(&Replica::from_term(&b).unwrap()).unwrap();
            assert!(
                ra.to_term().identical(&want),
                "merge({a}, {b}) = {want}, got {}",
                ra.to_term()
            );
            // Through the binary.
            let bin = Replica::from_term(&b).unwrap().to_binary();
            let back = Replica::from_binary(&bin).unwrap();
            assert!(back.to_term().identical(&b), "{b}");
            let mut rb = Replica::from_term(&a).unwrap();
            rb.merge(&back).unwrap();
            assert!(rb.to_term().identical(&want));
            let mut rc = Replica::from_term(&a).unwrap();
            rc.merge_binary(&bin, &|_| true).unwrap();
            assert!(rc.to_term().identical(&want), "merge_binary({a}, {b})");
            // Refusing an atom refuses the whole binary and writes nothing.
            let mut rd = Replica::from_term(&a).unwrap();
            match rd.merge_binary(&bin, &|name| name != "k") {
                Ok(()) => assert!(rd.to_term().identical(&want)),
                Err(e) => {
                    assert_eq!(e, BadCrdt::BadBinary(Atom::Unsupported));
                    assert!(rd.to_term().identical(&a));
                }
            }
        }
    }

    #[test]
    fn gset_merge_matches_core_test() {
        check_merges(gset, 42);
    }

    #[test]
    fn gcounter_merge_matches_core_test() {
        check_merges(gcounter, 43);
    }

    #[test]
    fn mutate_matches_core_test() {
        let mut r = Rng(44);
        let b = OwnedBuilder;
        for _ in 0..2000 {
            let (s, op, actor) = if r.next(2) == 0 {
                (
                    gset(&mut r),
                    b.pair(OwnedTerm::atom("add"), elem(&mut r)),
                    OwnedTerm::atom("a"),
                )
            } else {
                (gcounter(&mut r), OwnedTerm::atom("increment"), elem(&mut r))
            };
            let want_delta =
                crate::api::delta_mutate(&mut Cx::default(), &op, &actor, &s, Limits::dirty())
                    .unwrap();
            let want =
                crate::api::mutate(&mut Cx::default(), &op, &actor, &s, Limits::dirty()).unwrap();
            let mut rs = Replica::from_term(&s).unwrap();
            let d = rs.mutate(&op, &actor, &mut Cx::default()).unwrap();
            let ok = |t: OwnedTerm| b.pair(OwnedTerm::atom("ok"), t);
            assert!(ok(d.encode(&b)).identical(&want_delta), "{op} on {s}");
            assert!(
                ok(rs.to_term()).identical(&want),
                "{op} on {s}: {want} vs {}",
                rs.to_term()
            );
        }
        let mut rs = Replica::from_term(&gset(&mut r)).unwrap();
        assert!(matches!(
            rs.mutate(
                &OwnedTerm::atom("increment"),
                &OwnedTerm::atom("a"),
                &mut Cx::default()
            ),
            Err(MutateError::Bad(BadCrdt::UnknownOp(Atom::StateGset)))
        ));
    }

    #[test]
    fn generic_types_and_unkeyed_terms_test() {
        let b = OwnedBuilder;
        // A pncounter is held by the core; mutate and merge still agree.
        let mut o = Replica::new(&OwnedTerm::atom("state_pncounter")).unwrap();
        assert!(!o.is_keyed());
        let op = OwnedTerm::atom("increment");
        let d = o
            .mutate(&op, &OwnedTerm::atom("a"), &mut Cx::default())
            .unwrap();
        assert_eq!(o.size(), 1);
        let t = o.to_term();
        assert!(core_merge(&t, &d.encode(&b)).identical(&t));
        let back = Replica::from_binary(&o.to_binary()).unwrap();
        assert!(back.to_term().identical(&t));
        // A gset holding a pid falls back to the core.
        let pid = OwnedTerm::pid("n@h", 1, 2, 3);
        let s = b.pair(OwnedTerm::atom("state_gset"), b.list(&[OwnedTerm::int(1)]));
        let mut g = Replica::from_term(&s).unwrap();
        g.mutate(
            &b.pair(OwnedTerm::atom("add"), pid.clone()),
            &OwnedTerm::atom("a"),
            &mut Cx::default(),
        )
        .unwrap();
        assert!(!g.is_keyed());
        assert_eq!(g.size(), 2);
        assert!(Replica::from_binary(&g.to_binary())
            .unwrap()
            .to_term()
            .identical(&g.to_term()));
        // Type mismatch.
        assert_eq!(
            g.merge(&o),
            Err(BadCrdt::TypeMismatch(Atom::StateGset, Atom::StatePncounter))
        );
    }

    /// A binary near the resident state (the same entries but a few, then
    /// spoiled: a byte changed, cut short, two entries swapped, grown) is
    /// merged in place exactly when `from_binary` takes it, and then as
    /// `merge` of what it reads; refused, it writes nothing.
    #[test]
    fn merge_binary_near_resident_test() {
        let mut r = Rng(46);
        let (mut refused, mut yielded) = (0, 0);
        for i in 0..4000 {
            let gen = if i % 2 == 0 { gset } else { gcounter };
            let a = gen(&mut r);
            let ra = Replica::from_term(&a).unwrap();
            // b: a's entries, some dropped, merged with a fresh state.
            let mut rb = ra.clone();
            match &mut rb {
                Replica::GSet(m) => m.retain(|_, _| r.next(5) != 0),
                Replica::GCounter(m) => m.retain(|_, _| r.next(5) != 0),
                _ => unreachable!(),
            }
            rb.merge(&Replica::from_term(&gen(&mut r)).unwrap())
                .unwrap();
            let mut bin = rb.to_binary();
            match r.next(7) {
                0 => {}
                6 => {
                    // A count one short of the entries.
                    let n = u32::from_be_bytes([bin[5], bin[6], bin[7], bin[8]]);
                    bin[5..9].copy_from_slice(&n.wrapping_sub(1).to_be_bytes());
                }
                5 => {
                    // Repeat an entry, the count raised to match.
                    if let Some(enc) = rb.encoded() {
                        let n = enc.starts.len() - 1;
                        if n >= 1 {
                            let j = r.next(n as u64) as usize;
                            let (s0, s1) = (enc.starts[j] as usize, enc.starts[j + 1] as usize);
                            let copy = bin[s0..s1].to_vec();
                            bin.splice(s1..s1, copy);
                            bin[5..9].copy_from_slice(&(n as u32 + 1).to_be_bytes());
                        }
                    }
                }
                1 => {
                    let at = r.next(bin.len() as u64) as usize;
                    bin[at] = r.next(256) as u8;
                }
                2 => bin.truncate(r.next(bin.len() as u64) as usize),
                3 => {
                    // Swap two neighbouring entries of the body.
                    if let Some(enc) = rb.encoded() {
                        let n = enc.starts.len() - 1;
                        if n >= 2 {
                            let j = r.next(n as u64 - 1) as usize;
                            let (s0, s1, s2) = (
                                enc.starts[j] as usize,
                                enc.starts[j + 1] as usize,
                                enc.starts[j + 2] as usize,
                            );
                            let mut swapped = bin[s1..s2].to_vec();
                            swapped.extend_from_slice(&bin[s0..s1]);
                            bin.splice(s0..s2, swapped);
                        }
                    }
                }
                _ => {
                    let end = (9 + r.next(4) as usize).min(bin.len());
                    bin.extend_from_within(9..end);
                }
            }
            let mut got = ra.clone();
            let enc = if i % 3 == 0 { ra.encoded() } else { None };
            // A small budget gives up before writing anything, or answers.
            let mut res = got.merge_binary_with(&bin, enc.as_ref(), Some(2), &|_| true);
            if matches!(res, Err(BadCrdt::Yield)) {
                yielded += 1;
                assert!(got.to_term().identical(&a));
                res = got.merge_binary_with(&bin, enc.as_ref(), None, &|_| true);
            }
            match Replica::from_binary(&bin) {
                Ok(inc) => {
                    let mut want = ra.clone();
                    want.merge(&inc).unwrap();
                    let Ok((changed, after)) = res else {
                        panic!("{a} <- {bin:?}: {res:?}")
                    };
                    assert!(got.to_term().identical(&want.to_term()), "{a} <- {bin:?}");
                    assert_eq!(changed, !want.to_term().identical(&a));
                    check_after(&got, after, enc.as_ref());
                }
                Err(_) => {
                    refused += 1;
                    assert!(matches!(res, Err(BadCrdt::BadBinary(_))), "{a} <- {bin:?}");
                    assert!(got.to_term().identical(&a));
                }
            }
        }
        assert!(refused > 1000, "{refused}");
        assert!(yielded > 500, "{yielded}");
    }

    /// A binary patched with what mutations and deltas wrote is the
    /// state's binary.
    #[test]
    fn patched_binary_test() {
        let mut r = Rng(48);
        for i in 0..2000 {
            let gen = if i % 2 == 0 { gset } else { gcounter };
            let mut ra = Replica::from_term(&gen(&mut r)).unwrap();
            let before = ra.encoded().unwrap();
            let mut patches = Vec::new();
            for _ in 0..r.next(4) {
                let delta = if i % 2 == 0 {
                    let op = OwnedBuilder.pair(OwnedTerm::atom("add"), elem(&mut r));
                    ra.mutate(&op, &OwnedTerm::atom("a"), &mut Fresh(0))
                        .unwrap()
                } else {
                    let op = OwnedTerm::atom("increment");
                    ra.mutate(&op, &elem(&mut r), &mut Fresh(0)).unwrap()
                };
                patches.extend(ra.patches_for(&delta).unwrap());
            }
            // A delta merged in is patched the same way.
            let d = Crdt::decode(&gen(&mut r), &mut Decoder::new(Limits::dirty())).unwrap();
            ra.merge_crdt_ref(&d).unwrap();
            patches.extend(ra.patches_for(&d).unwrap());
            let want = ra.encoded().unwrap();
            let got = before.patched(&patches);
            assert_eq!(got.bytes, want.bytes);
            assert_eq!(got.starts, want.starts);
            assert_eq!(got.plens, want.plens);
        }
    }

    /// The binary a merge says the state has is the one it has.
    fn check_after(r: &Replica, after: After, given: Option<&Encoded>) {
        let want = r.encoded().unwrap();
        let same = |e: &Encoded| {
            assert_eq!(e.bytes, want.bytes);
            assert_eq!(e.starts, want.starts);
            assert_eq!(e.plens, want.plens);
        };
        match after {
            After::Kept => {
                if let Some(e) = given {
                    same(e);
                }
            }
            After::New(e) => same(&e),
            After::Unknown => {}
        }
    }

    /// What a binary added, as the core's `merge_added` of the decoded
    /// states gives it, walked or looked up.
    #[test]
    fn merge_binary_added_matches_core_test() {
        let mut r = Rng(47);
        for i in 0..3000 {
            let gen = if i % 2 == 0 { gset } else { gcounter };
            let (a, b) = (gen(&mut r), gen(&mut r));
            let dec = |t: &OwnedTerm| Crdt::decode(t, &mut Decoder::new(Limits::dirty())).unwrap();
            let want = dec(&a).merge_added(&dec(&b)).unwrap().map(|(_, d)| d);
            let mut ra = Replica::from_term(&a).unwrap();
            let enc = if i % 3 == 0 { ra.encoded() } else { None };
            let bin = Replica::from_term(&b).unwrap().to_binary();
            let (_, got, after) = ra
                .merge_binary_added(&bin, enc.as_ref(), None, &|_| true)
                .unwrap()
                .unwrap();
            check_after(&ra, after, enc.as_ref());
            let show = |d: &Option<Crdt<OwnedTerm>>| d.as_ref().map(|d| d.encode(&OwnedBuilder));
            match (show(&want), show(&got)) {
                (None, None) => {}
                (Some(w), Some(g)) => assert!(w.identical(&g), "{a} <- {b}: {w} / {g}"),
                (w, g) => panic!("{a} <- {b}: {w:?} / {g:?}"),
            }
            assert!(ra.to_term().identical(&core_merge(&a, &b)));
        }
    }

    #[test]
    fn binary_fuzz_test() {
        let mut r = Rng(45);
        for i in 0..3000 {
            let t = if i % 2 == 0 {
                gset(&mut r)
            } else {
                gcounter(&mut r)
            };
            let bin = Replica::from_term(&t).unwrap().to_binary();
            for cut in 0..bin.len() {
                assert!(Replica::from_binary(&bin[..cut]).is_err());
            }
            let mut bad = bin.clone();
            let at = r.next(bin.len() as u64) as usize;
            bad[at] = r.next(256) as u8;
            if let Ok(x) = Replica::from_binary(&bad) {
                // A different valid binary: it must be canonical.
                assert_eq!(x.to_binary(), bad);
            }
            let junk: Vec<u8> = (0..r.next(40)).map(|_| r.next(256) as u8).collect();
            let _ = Replica::from_binary(&junk);
        }
        let mut bin = Replica::new(&OwnedTerm::atom("state_gset"))
            .unwrap()
            .to_binary();
        bin[3] = 2;
        assert_eq!(
            Replica::from_binary(&bin).err(),
            Some(BadCrdt::BadBinary(Atom::BadVersion))
        );
        assert_eq!(
            Replica::from_binary(b"xyz12").err(),
            Some(BadCrdt::BadBinary(Atom::BadMagic))
        );
    }

    // twopset states by real operations on two replicas, with `==`
    // elements (1, 1.0) on both sides.
    fn twopset(r: &mut Rng) -> OwnedTerm {
        let b = OwnedBuilder;
        let mut reps = vec![Crdt::bottom(&OwnedTerm::atom("state_twopset")).unwrap(); 2];
        let steps = if r.next(4) == 0 { 120 } else { 12 };
        for _ in 0..r.next(steps) {
            let i = r.next(2) as usize;
            let e = elem(r);
            match r.next(5) {
                0..=2 => {
                    let op = b.pair(OwnedTerm::atom("add"), e);
                    reps[i] = reps[i]
                        .mutate(&op, &OwnedTerm::atom("a"), &mut Cx::default())
                        .unwrap();
                }
                3 => {
                    let op = b.pair(OwnedTerm::atom("rmv"), e);
                    reps[i] = reps[i]
                        .mutate(&op, &OwnedTerm::atom("a"), &mut Cx::default())
                        .unwrap();
                }
                _ => {
                    let j = 1 - i;
                    reps[i] = reps[i]
                        .merge(&reps[j])
                        .unwrap()
                        .into_state(&reps[i], &reps[j]);
                }
            }
        }
        let pick = r.next(2) as usize;
        if r.next(3) == 0 {
            // A delta instead of a whole state.
            let name = if r.next(2) == 0 { "add" } else { "rmv" };
            let op = b.pair(OwnedTerm::atom(name), elem(r));
            return reps[pick]
                .delta_mutate(&op, &OwnedTerm::atom("a"), &mut Cx::default())
                .unwrap()
                .encode(&b);
        }
        reps[pick].encode(&b)
    }

    // The keyed twopset joins, mutates and answers `is_inflation` term for
    // term as the core does on its decoded state.
    #[test]
    fn twopset_merge_mutate_and_holds_match_core_test() {
        check_merges(twopset, 50);
        let mut r = Rng(51);
        let b = OwnedBuilder;
        let lim = Limits::dirty();
        for _ in 0..1000 {
            let s = twopset(&mut r);
            let name = ["add", "rmv", "add_all"][r.next(3) as usize];
            let op = b.pair(OwnedTerm::atom(name), elem(&mut r));
            let rs = Replica::from_term(&s).unwrap();
            assert!(matches!(rs, Replica::TwoPSet(_)));
            if name == "add_all" {
                // Not a twopset operation: refused as the core refuses it.
                let mut rs = rs;
                assert!(rs
                    .mutate(&op, &OwnedTerm::atom("a"), &mut Cx::default())
                    .is_err());
                assert!(crate::api::mutate(
                    &mut Cx::default(),
                    &op,
                    &OwnedTerm::atom("a"),
                    &s,
                    lim
                )
                .is_err());
                continue;
            }
            mutate_agrees(&s, &op, |r| matches!(r, Replica::TwoPSet(_)));
        }
        for _ in 0..600 {
            let (s, x) = (twopset(&mut r), twopset(&mut r));
            let merged = core_merge(&s, &x);
            for (w, st) in [(&x, &s), (&x, &merged), (&s, &merged)] {
                let want = crate::api::is_inflation(w, st, lim).unwrap();
                let wc = Crdt::decode(w, &mut Decoder::new(lim)).unwrap();
                let rep = Replica::from_term(st).unwrap();
                assert_eq!(rep.holds(&wc).unwrap(), want, "{w} in {st}");
            }
        }
    }

    // The comparison above catches a wrong join: joining with the incoming
    // side first keeps the other `==` term (1.0 for 1) on some inputs.
    #[test]
    fn twopset_wrong_join_is_caught_test() {
        let mut r = Rng(52);
        let mut caught = 0;
        for _ in 0..500 {
            let (a, x) = (twopset(&mut r), twopset(&mut r));
            let mut ra = Replica::from_term(&a).unwrap();
            ra.merge_as(&Replica::from_term(&x).unwrap(), First::Incoming)
                .unwrap();
            if !ra.to_term().identical(&core_merge(&a, &x)) {
                caught += 1;
            }
        }
        assert!(caught >= 5, "{caught}");
    }
}
