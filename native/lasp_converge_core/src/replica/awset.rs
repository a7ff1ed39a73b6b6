//! A resident `state_awset`: the dot map keyed by element, an index from
//! each dot to its element, and the causal context as a term.
//!
//! A merge of an incoming state (or delta) `D` touches only the elements `D`
//! names and the elements holding a dot that `D`'s context covers (found
//! through the dot index): every other element's dots are `DA \ CCD = DA`,
//! unchanged. So the merge projects the resident state onto those elements
//! (plus one untouched element, so that the projection is never `=:=` to
//! `D` when the whole state is not), keeps the whole context, lets the core
//! merge the projection with `D`, and writes the result's elements and
//! context back: O((m + k) log n + |CC|) for `k` covered elements.
//! `mutate` projects onto the operation's elements the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::Included;

use super::{keyed, Elem, First, Key};
use crate::crdt::Crdt;
use crate::decode::{Decoder, Limits};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::MutateCx;
use crate::owned::{OwnedBuilder, OwnedTerm};
use crate::term::{Atom, Builder, Term};

/// One element: its term, its dot set (the term) and its dots' index keys.
#[derive(Debug, Clone)]
pub struct AwEntry {
    elem: Elem,
    dots: OwnedTerm,
    index: Vec<Box<[u8]>>,
}

/// A keyed `state_awset`.
#[derive(Debug, Clone)]
pub struct AwSet {
    elems: BTreeMap<Key, AwEntry>,
    dots: BTreeMap<Box<[u8]>, Key>,
    cc: OwnedTerm,
}

/// Index key of a dot `{Actor, Seq}`: the actor's primary key, then the
/// sequence number big-endian (so an actor's dots are one range).
fn dot_key(dot: &OwnedTerm) -> Option<Box<[u8]>> {
    let (actor, seq) = dot.as_pair()?;
    let seq = match seq {
        OwnedTerm::Int(s) => u64::try_from(s).ok()?,
        _ => return None,
    };
    let (mut k, _) = keyed(&actor)?;
    let mut v = std::mem::take(&mut k).into_vec();
    v.extend_from_slice(&seq.to_be_bytes());
    Some(v.into_boxed_slice())
}

fn actor_prefix(actor: &OwnedTerm) -> Option<Vec<u8>> {
    keyed(actor).map(|(k, _)| k.into_vec())
}

fn list(t: &OwnedTerm) -> Option<Vec<OwnedTerm>> {
    t.list_elems()
}

impl AwSet {
    /// From a validated payload `{DotMap, CC}`; `None` when a term has no key.
    pub(super) fn from_payload(payload: &OwnedTerm) -> Option<Self> {
        Self::from_payload_with(payload, true)
    }

    /// As [`from_payload`](Self::from_payload); the context's actors are
    /// checked for keys only when `check_cc` (a merge's result has the
    /// actors of two checked contexts).
    fn from_payload_with(payload: &OwnedTerm, check_cc: bool) -> Option<Self> {
        let (dm, cc) = payload.as_pair()?;
        let mut elems = Vec::new();
        let mut dots = Vec::new();
        for entry in list(&dm)? {
            let (e, ds) = entry.as_pair()?;
            let (k, elem) = keyed(&e)?;
            let mut index = Vec::new();
            for d in list(&ds)? {
                let dk = dot_key(&d)?;
                dots.push((dk.clone(), k.clone()));
                index.push(dk);
            }
            elems.push((
                k,
                AwEntry {
                    elem,
                    dots: ds,
                    index,
                },
            ));
        }
        // Validate the context's actors too: covered-dot lookups need keys.
        if check_cc {
            let (compressed, cloud) = cc.as_pair()?;
            for c in list(&compressed)? {
                actor_prefix(&c.as_pair()?.0)?;
            }
            for d in list(&cloud)? {
                dot_key(&d)?;
            }
        }
        Some(AwSet {
            elems: elems.into_iter().collect(),
            dots: dots.into_iter().collect(),
            cc,
        })
    }

    fn payload_of<'a>(&self, entries: impl Iterator<Item = &'a AwEntry>) -> OwnedTerm {
        let b = OwnedBuilder;
        let dm: Vec<OwnedTerm> = entries
            .map(|e| b.pair(e.elem.term.clone(), e.dots.clone()))
            .collect();
        b.pair(b.list(&dm), self.cc.clone())
    }

    /// The state term.
    pub fn to_term(&self) -> OwnedTerm {
        let b = OwnedBuilder;
        b.pair(
            b.atom(Atom::StateAwset),
            self.payload_of(self.elems.values()),
        )
    }

    /// Elements held.
    pub(super) fn len(&self) -> usize {
        self.elems.len()
    }

    /// The terms held (for atom checks).
    pub fn terms(&self) -> OwnedTerm {
        self.to_term()
    }

    /// The elements a merge with `inc` can change.
    fn affected(&self, inc: &AwSet) -> BTreeSet<Key> {
        let mut keys: BTreeSet<Key> = inc
            .elems
            .keys()
            .filter(|k| self.elems.contains_key(*k))
            .cloned()
            .collect();
        if let Some((compressed, cloud)) = inc.cc.as_pair() {
            for c in list(&compressed).unwrap_or_default() {
                let Some((actor, n)) = c.as_pair() else {
                    continue;
                };
                let (Some(p), OwnedTerm::Int(n)) = (actor_prefix(&actor), n) else {
                    continue;
                };
                let n = u64::try_from(n).unwrap_or(0);
                let lo: Box<[u8]> = [&p[..], &0u64.to_be_bytes()].concat().into();
                let hi: Box<[u8]> = [&p[..], &n.to_be_bytes()].concat().into();
                keys.extend(
                    self.dots
                        .range::<Box<[u8]>, _>((Included(&lo), Included(&hi)))
                        .map(|(_, k)| k.clone()),
                );
            }
            for d in list(&cloud).unwrap_or_default() {
                if let Some(k) = dot_key(&d).and_then(|dk| self.dots.get(&dk)) {
                    keys.insert(k.clone());
                }
            }
        }
        // One untouched element, so that a projection is `=:=` to the
        // incoming payload only when the whole state is.
        if let Some(k) = self.elems.keys().find(|k| !keys.contains(*k)) {
            keys.insert(k.clone());
        }
        keys
    }

    fn project(&self, keys: &BTreeSet<Key>) -> Result<Crdt<OwnedTerm>> {
        let payload = self.payload_of(keys.iter().filter_map(|k| self.elems.get(k)));
        let b = OwnedBuilder;
        let t = b.pair(b.atom(Atom::StateAwset), payload);
        Crdt::decode(&t, &mut Decoder::new(Limits::dirty()))
    }

    /// Replace the elements `keys` by those of `result` and take its context.
    fn write_back(&mut self, keys: &BTreeSet<Key>, result: &Crdt<OwnedTerm>) -> Result<()> {
        let t = result.encode(&OwnedBuilder);
        let payload = t
            .tuple_elem(1)
            .ok_or(BadCrdt::Malformed(Atom::StateAwset))?;
        let r = AwSet::from_payload_with(&payload, false)
            .ok_or(BadCrdt::Malformed(Atom::StateAwset))?;
        for k in keys {
            if let Some(e) = self.elems.remove(k) {
                for dk in &e.index {
                    self.dots.remove(dk);
                }
            }
        }
        for (k, e) in r.elems {
            for dk in &e.index {
                self.dots.insert(dk.clone(), k.clone());
            }
            self.elems.insert(k, e);
        }
        self.cc = r.cc;
        Ok(())
    }

    /// `merge(Self, Inc)` (or `merge(Inc, Self)` when `first` is
    /// `Incoming`), in place.
    pub(super) fn merge(&mut self, inc: &AwSet, first: First) -> Result<()> {
        let b = Crdt::decode(&inc.to_term(), &mut Decoder::new(Limits::dirty()))?;
        self.merge_decoded(inc, &b, first)
    }

    /// As [`merge`](Self::merge), with `b` the core's decoding of `inc`
    /// (so it is not decoded again).
    pub(super) fn merge_decoded(
        &mut self,
        inc: &AwSet,
        b: &Crdt<OwnedTerm>,
        first: First,
    ) -> Result<()> {
        let keys = self.affected(inc);
        let a = self.project(&keys)?;
        let merged = match first {
            First::Resident => a.merge(b)?.into_state(&a, b),
            First::Incoming => b.merge(&a)?.into_state(b, &a),
        };
        self.write_back(&keys, &merged)
    }

    /// types' `mutate`, in place; returns the `delta_mutate` delta.
    pub(super) fn mutate<C: MutateCx<OwnedTerm>>(
        &mut self,
        op: &OwnedTerm,
        actor: &OwnedTerm,
        cx: &mut C,
    ) -> std::result::Result<Crdt<OwnedTerm>, MutateError<OwnedTerm>> {
        // The elements the operation names (all delta_mutate reads besides
        // the context).
        let named: Vec<OwnedTerm> = match op.as_pair() {
            Some((name, arg)) if name.is_atom(Atom::Add) || name.is_atom(Atom::Rmv) => vec![arg],
            Some((name, arg)) if name.is_atom(Atom::AddAll) || name.is_atom(Atom::RmvAll) => {
                arg.list_elems().unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let keys: BTreeSet<Key> = named
            .iter()
            .filter_map(|e| keyed(e).map(|(k, _)| k))
            .filter(|k| self.elems.contains_key(k))
            .collect();
        let proj = self.project(&keys)?;
        let delta = proj.delta_mutate(op, actor, cx)?;
        let t = delta.encode(&OwnedBuilder);
        let inc = t
            .tuple_elem(1)
            .and_then(|p| AwSet::from_payload(&p))
            .ok_or(BadCrdt::Malformed(Atom::StateAwset))?;
        self.merge(&inc, First::Incoming)?;
        Ok(delta)
    }
}
