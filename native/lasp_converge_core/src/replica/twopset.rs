//! A resident `state_twopset`: its added and removed sets, each held as a
//! resident gset is (element key to element), so a join of `m` entries
//! into `n` costs `O(m log n)`.
//!
//! types' `merge` is `{ordsets:union(A1, A2), ordsets:union(R1, R2)}`
//! (its shortcuts return one side when that side already is the union),
//! so each set joins exactly as a gset does, the role swap of
//! `ordsets:union/2` on `==` elements included.

use std::collections::BTreeMap;

use crate::crdt::Crdt;
use crate::owned::{OwnedBuilder, OwnedTerm};
use crate::term::{Atom, Builder, Term};
use crate::types::TwoPSet as Core;

use super::{keyed, union, Elem, First, Key};

/// A `state_twopset` held keyed.
#[derive(Debug, Clone, Default)]
pub struct TwoPSet {
    added: BTreeMap<Key, Elem>,
    removed: BTreeMap<Key, Elem>,
}

/// A set keyed, or `None` when a term has no key.
fn keyed_set(es: &[OwnedTerm]) -> Option<BTreeMap<Key, Elem>> {
    // Ascending in term order, so in key order.
    es.iter().map(keyed).collect()
}

/// The entries of `m` under the keys of `es`, in `es`'s (term) order;
/// `None` when a term has no key.
fn under(m: &BTreeMap<Key, Elem>, es: &[OwnedTerm]) -> Option<Vec<OwnedTerm>> {
    let mut out = Vec::new();
    for e in es {
        let (k, _) = keyed(e)?;
        out.extend(m.get(&k).map(|x| x.term.clone()));
    }
    Some(out)
}

impl TwoPSet {
    /// Hold a decoded state; `None` when a term has no key.
    pub fn from_core(c: &Core<OwnedTerm>) -> Option<Self> {
        Some(TwoPSet {
            added: keyed_set(&c.added)?,
            removed: keyed_set(&c.removed)?,
        })
    }

    /// The core's decoded state (`O(n)`).
    pub fn to_core(&self) -> Core<OwnedTerm> {
        let terms = |m: &BTreeMap<Key, Elem>| m.values().map(|e| e.term.clone()).collect();
        Core {
            added: terms(&self.added),
            removed: terms(&self.removed),
        }
    }

    /// The state term, exactly as types holds it.
    pub fn to_term(&self) -> OwnedTerm {
        Crdt::TwoPSet(self.to_core()).encode(&OwnedBuilder)
    }

    /// Elements ever added.
    pub fn len(&self) -> usize {
        self.added.len()
    }

    /// Whether nothing was ever added.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
    }

    /// `merge(Self, Incoming)` in place (`Incoming` first when `first` is
    /// `Incoming`).
    pub(super) fn merge(&mut self, inc: &TwoPSet, first: First) {
        union(&mut self.added, &inc.added, first);
        union(&mut self.removed, &inc.removed, first);
    }

    /// The state restricted to the elements of `c` (a witness or an
    /// operation's elements): what `is_inflation(C, State)` and a
    /// `delta_mutate` read. `None` when a term has no key.
    pub fn project(&self, added: &[OwnedTerm], removed: &[OwnedTerm]) -> Option<Core<OwnedTerm>> {
        Some(Core {
            added: under(&self.added, added)?,
            removed: under(&self.removed, removed)?,
        })
    }

    /// The state restricted to what `delta_mutate(Op, _, State)` reads: the
    /// entries under the element of `{add, E}` or `{rmv, E}`. `None` when
    /// the operation names an element with no key; an unknown operation
    /// reads nothing.
    pub fn project_op(&self, op: &OwnedTerm) -> Option<Core<OwnedTerm>> {
        match op.as_pair() {
            Some((n, e)) if n.is_atom(Atom::Add) || n.is_atom(Atom::Rmv) => {
                let es = [e];
                self.project(&es, &es)
            }
            _ => Some(Core {
                added: Vec::new(),
                removed: Vec::new(),
            }),
        }
    }

    /// Every term held, as one list (for atom checks).
    pub fn terms(&self) -> OwnedTerm {
        let es: Vec<OwnedTerm> = self
            .added
            .values()
            .chain(self.removed.values())
            .map(|e| e.term.clone())
            .collect();
        OwnedBuilder.list(&es)
    }
}
