//! `state_gcounter`: a grow-only counter.
//!
//! Payload: an orddict `[{Actor, Count}]`. Merge keeps the larger count of
//! each actor (Almeida, Shoker, Baquero: *Delta State Replicated Data
//! Types*, 2016).

use crate::decode::{self, Decoder};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Term};

const TAG: Atom = Atom::StateGcounter;

/// A grow-only counter: one count per actor.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::{Lattice, Merged};
/// use lasp_converge_core::types::GCounter;
///
/// let a = GCounter { entries: vec![(T::atom("a"), 2)] };
/// let b = GCounter { entries: vec![(T::atom("a"), 1), (T::atom("b"), 5)] };
/// let m = a.merge(&b).unwrap().into_state(&a, &b);
/// assert_eq!(m.entries, vec![(T::atom("a"), 2), (T::atom("b"), 5)]);
/// assert_eq!(m.query(&OwnedBuilder).unwrap(), T::Int(7));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GCounter<T> {
    /// `(Actor, Count)` in ascending actor order.
    pub entries: Vec<(T, i64)>,
}

impl<T: Term> GCounter<T> {
    fn find(&self, actor: &T) -> Option<i64> {
        ord::find(&self.entries, actor).copied()
    }
}

impl<T: Term> Lattice<T> for GCounter<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        let entries = d.orddict(TAG, payload, |_, v| decode::int(TAG, &v))?;
        Ok(GCounter { entries })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        let items: Vec<T> = self
            .entries
            .iter()
            .map(|(k, v)| b.pair(k.clone(), b.int(*v)))
            .collect();
        b.list(&items)
    }

    fn bottom() -> Self {
        GCounter {
            entries: Vec::new(),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        // Left when every entry of `other` is matched by a count at least as
        // large; `max/2` keeps the first argument on a tie.
        if ord::covers(&self.entries, &other.entries, false, |a, b| a >= b) {
            return Ok(Merged::Left);
        }
        // Right when `other` covers `self` strictly (a tie keeps our value,
        // equal as an integer) with identical actor terms.
        if ord::covers(&other.entries, &self.entries, true, |a, b| a >= b) {
            return Ok(Merged::Right);
        }
        let entries = ord::orddict_merge(&self.entries, &other.entries, |_, a, b| {
            Ok::<_, BadCrdt>(if a < b { *b } else { *a })
        })?;
        Ok(Merged::New(GCounter { entries }))
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        ord::same_entries(&self.entries, &other.entries, |a, b| Ok(a == b))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        ord::all_found(&self.entries, &other.entries, |a, b| Ok(a <= b))
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        let sum: i128 = self.entries.iter().map(|(_, v)| i128::from(*v)).sum();
        Ok(b.int128(sum))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        let entries = self
            .entries
            .iter()
            .filter(|(k, v)| other.find(k).is_none_or(|vb| vb < *v))
            .cloned()
            .collect();
        Ok(GCounter { entries })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        if !op.is_atom(Atom::Increment) {
            return Err(BadCrdt::UnknownOp(TAG).into());
        }
        let count = self.find(actor).unwrap_or(0);
        let next = count.checked_add(1).ok_or(BadCrdt::TooLarge)?;
        Ok(GCounter {
            entries: vec![(actor.clone(), next)],
        })
    }
}
