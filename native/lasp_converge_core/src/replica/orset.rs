//! A resident `state_orset`: element key to element and its token list.
//!
//! types' orset merge is `orddict:merge/3` over elements (and over each
//! element's tokens inside): an element only one side holds comes out as
//! that side's entry, unchanged. So a merge projects the resident state onto
//! the elements the incoming state names, lets the core merge the two
//! projections (keeping its rules on which `==` key term survives), and
//! writes those elements back: O(m log n). `mutate` projects onto the
//! operation's elements the same way.

use std::collections::BTreeMap;

use super::{keyed, Elem, First, Key};
use crate::crdt::Crdt;
use crate::decode::{Decoder, Limits};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::MutateCx;
use crate::owned::{OwnedBuilder, OwnedTerm};
use crate::term::{Atom, Builder, Term};

/// A keyed `state_orset`.
#[derive(Debug, Clone)]
pub struct ORSet {
    elems: BTreeMap<Key, (Elem, OwnedTerm)>,
}

impl ORSet {
    /// From a validated payload `[{Elem, Tokens}]`; `None` when an element
    /// has no key.
    pub(super) fn from_payload(payload: &OwnedTerm) -> Option<Self> {
        let mut v = Vec::new();
        for entry in payload.list_elems()? {
            let (e, tokens) = entry.as_pair()?;
            let (k, elem) = keyed(&e)?;
            v.push((k, (elem, tokens)));
        }
        Some(ORSet {
            elems: v.into_iter().collect(),
        })
    }

    fn term_of<'a>(entries: impl Iterator<Item = &'a (Elem, OwnedTerm)>) -> OwnedTerm {
        let b = OwnedBuilder;
        let items: Vec<OwnedTerm> = entries
            .map(|(e, ts)| b.pair(e.term.clone(), ts.clone()))
            .collect();
        b.pair(b.atom(Atom::StateOrset), b.list(&items))
    }

    /// The state term.
    pub fn to_term(&self) -> OwnedTerm {
        Self::term_of(self.elems.values())
    }

    pub(super) fn len(&self) -> usize {
        self.elems.len()
    }

    fn project<'a>(
        &self,
        keys: impl Iterator<Item = &'a Key>,
    ) -> Result<(Vec<Key>, Crdt<OwnedTerm>)> {
        // Ascending and without duplicates, as the payload must be.
        let keys: std::collections::BTreeSet<Key> = keys
            .filter(|k| self.elems.contains_key(*k))
            .cloned()
            .collect();
        let keys: Vec<Key> = keys.into_iter().collect();
        let t = Self::term_of(keys.iter().filter_map(|k| self.elems.get(k)));
        Ok((keys, Crdt::decode(&t, &mut Decoder::new(Limits::dirty()))?))
    }

    fn write_back(&mut self, keys: &[Key], result: &Crdt<OwnedTerm>) -> Result<()> {
        let t = result.encode(&OwnedBuilder);
        let r = t
            .tuple_elem(1)
            .and_then(|p| ORSet::from_payload(&p))
            .ok_or(BadCrdt::Malformed(Atom::StateOrset))?;
        for k in keys {
            self.elems.remove(k);
        }
        self.elems.extend(r.elems);
        Ok(())
    }

    /// `merge(Self, Inc)` (or `merge(Inc, Self)` when `first` is
    /// `Incoming`), in place.
    pub(super) fn merge(&mut self, inc: &ORSet, first: First) -> Result<()> {
        let (keys, a) = self.project(inc.elems.keys())?;
        let b = Crdt::decode(&inc.to_term(), &mut Decoder::new(Limits::dirty()))?;
        let merged = match first {
            First::Resident => a.merge(&b)?.into_state(&a, &b),
            First::Incoming => b.merge(&a)?.into_state(&b, &a),
        };
        self.write_back(&keys, &merged)
    }

    /// The elements an operation names: `{add, E}`, `{rmv, E}`,
    /// `{add_all, Es}`, `{rmv_all, Es}`, `{add_by_token, T, E}`.
    pub(super) fn named(op: &OwnedTerm) -> Option<Vec<OwnedTerm>> {
        match op {
            OwnedTerm::Tuple(es) if es.len() == 2 => {
                if es[0].is_atom(Atom::AddAll) || es[0].is_atom(Atom::RmvAll) {
                    es[1].list_elems()
                } else {
                    Some(vec![es[1].clone()])
                }
            }
            OwnedTerm::Tuple(es) if es.len() == 3 => Some(vec![es[2].clone()]),
            _ => Some(Vec::new()),
        }
    }

    /// types' `mutate`, in place; returns the `delta_mutate` delta.
    pub(super) fn mutate<C: MutateCx<OwnedTerm>>(
        &mut self,
        op: &OwnedTerm,
        actor: &OwnedTerm,
        cx: &mut C,
    ) -> std::result::Result<Crdt<OwnedTerm>, MutateError<OwnedTerm>> {
        let named: Vec<Key> = Self::named(op)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| keyed(e).map(|(k, _)| k))
            .collect();
        let (_, proj) = self.project(named.iter())?;
        let delta = proj.delta_mutate(op, actor, cx)?;
        let t = delta.encode(&OwnedBuilder);
        let inc = t
            .tuple_elem(1)
            .and_then(|p| ORSet::from_payload(&p))
            .ok_or(BadCrdt::Malformed(Atom::StateOrset))?;
        self.merge(&inc, First::Incoming)?;
        Ok(delta)
    }
}
