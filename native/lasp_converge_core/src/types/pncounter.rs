//! `state_pncounter`: a counter that can go up and down.
//!
//! Payload: an orddict `[{Actor, {Inc, Dec}}]`, strictly ascending by actor.
//! Bottom is `[]`. Each actor only ever raises its own two counts.
//!
//! - Merge is `orddict:merge/3` with `{max(IncA, IncB), max(DecA, DecB)}`;
//!   on `==` actors the key term of the first argument is kept.
//! - Equal: same size, and every actor of A is in B with both counts `==`.
//! - Inflation: every actor of A is in B with both counts `=<`.
//! - Query: the sum of `Inc - Dec` (computed in 128 bits, so it never wraps).
//! - `delta(A, B)`: as types, the join of the irreducibles `{Actor, {Inc, 0}}`
//!   and `{Actor, {0, Dec}}` of A that B lacks. Two cases that types never
//!   produces (an entry of A whose actor B lacks but whose counts are both
//!   `=< 0`, and negative counts in B) would make types' delta lose part of
//!   the join; there the whole entry of A is shipped instead, so
//!   `merge(delta(A, B), B)` always equals `merge(A, B)`.
//! - Operations: `increment` gives `[{Actor, {Inc + 1, 0}}]`, `decrement`
//!   gives `[{Actor, {0, Dec + 1}}]` (types 0.1.8 has no `{increment, N}`).
//!
//! Counts must be integers that fit in an `i64`: anything else, bignums
//! included, is refused as `{malformed, state_pncounter}`. A count that would
//! pass `i64::MAX` is refused as `too_large`.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker and Carlos Baquero, *Delta
//! State Replicated Data Types* (2016), <http://arxiv.org/pdf/1603.01529v1.pdf>.

use crate::decode::{self, Decoder};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Term};

const TAG: Atom = Atom::StatePncounter;

/// A positive-negative counter: `(increments, decrements)` per actor.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::Lattice;
/// use lasp_converge_core::types::PNCounter;
///
/// let a = PNCounter { entries: vec![(T::atom("a"), (5, 1))] };
/// let b = PNCounter { entries: vec![(T::atom("a"), (3, 4)), (T::atom("b"), (0, 2))] };
/// let m = a.merge(&b).unwrap().into_state(&a, &b);
/// assert_eq!(m.entries, vec![(T::atom("a"), (5, 4)), (T::atom("b"), (0, 2))]);
/// assert_eq!(m.query(&OwnedBuilder).unwrap(), T::Int(-1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PNCounter<T> {
    /// `(Actor, (Inc, Dec))` in ascending actor order.
    pub entries: Vec<(T, (i64, i64))>,
}

/// An orddict `[{Key, {Int, Int}}]` (pncounter, lexcounter), each integer
/// fitting in an `i64`.
pub(crate) fn decode_int_pairs<T: Term>(
    ty: Atom,
    payload: &T,
    d: &mut Decoder,
) -> Result<Vec<(T, (i64, i64))>> {
    d.orddict(ty, payload, |_, v| {
        let (x, y) = v.as_pair().ok_or(BadCrdt::Malformed(ty))?;
        Ok((decode::int(ty, &x)?, decode::int(ty, &y)?))
    })
}

/// `[{Key, {Int, Int}}]` from its entries.
pub(crate) fn encode_int_pairs<B: Builder>(entries: &[(B::T, (i64, i64))], b: &B) -> B::T {
    let items: Vec<B::T> = entries
        .iter()
        .map(|(k, (x, y))| b.pair(k.clone(), b.pair(b.int(*x), b.int(*y))))
        .collect();
    b.list(&items)
}

impl<T: Term> PNCounter<T> {
    fn find(&self, actor: &T) -> Option<(i64, i64)> {
        ord::find(&self.entries, actor).copied()
    }
}

impl<T: Term> Lattice<T> for PNCounter<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        Ok(PNCounter {
            entries: decode_int_pairs(TAG, payload, d)?,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        encode_int_pairs(&self.entries, b)
    }

    fn bottom() -> Self {
        PNCounter {
            entries: Vec::new(),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        // Left: every entry of `other` is dominated by ours, whose key terms
        // `orddict:merge/3` keeps. Right: ours are dominated by `other` and
        // our key terms are identical to its own, so nothing of ours shows.
        // Counts are integers, so `max/2` keeping its first argument on a tie
        // gives an `=:=` value either way.
        if ord::covers(
            &self.entries,
            &other.entries,
            false,
            |(ix, dx), (iy, dy)| ix >= iy && dx >= dy,
        ) {
            return Ok(Merged::Left);
        }
        if ord::covers(&other.entries, &self.entries, true, |(ix, dx), (iy, dy)| {
            ix >= iy && dx >= dy
        }) {
            return Ok(Merged::Right);
        }
        let entries = ord::orddict_merge(&self.entries, &other.entries, |_, a, b| {
            Ok::<_, BadCrdt>((a.0.max(b.0), a.1.max(b.1)))
        })?;
        Ok(Merged::New(PNCounter { entries }))
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        ord::same_entries(&self.entries, &other.entries, |a, b| Ok(a == b))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        ord::all_found(&self.entries, &other.entries, |(i, d), (ib, db)| {
            Ok(i <= ib && d <= db)
        })
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        let sum: i128 = self
            .entries
            .iter()
            .map(|(_, (i, d))| i128::from(*i) - i128::from(*d))
            .sum();
        Ok(b.int128(sum))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        let mut entries = Vec::new();
        for (k, (i, d)) in &self.entries {
            match other.find(k) {
                // Every irreducible of a new actor inflates; the whole entry
                // is their join (and keeps a `{0, 0}` entry, which the
                // irreducibles would drop).
                None => entries.push((k.clone(), (*i, *d))),
                Some((ib, db)) => {
                    let (inc, dec) = (*i > ib, *d > db);
                    if !inc && !dec {
                        continue;
                    }
                    if ib >= 0 && db >= 0 {
                        entries.push((
                            k.clone(),
                            (if inc { *i } else { 0 }, if dec { *d } else { 0 }),
                        ));
                    } else {
                        entries.push((k.clone(), (*i, *d)));
                    }
                }
            }
        }
        Ok(PNCounter { entries })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let (inc, dec) = self.find(actor).unwrap_or((0, 0));
        let next = |v: i64| v.checked_add(1).ok_or(BadCrdt::TooLarge);
        let value = if op.is_atom(Atom::Increment) {
            (next(inc)?, 0)
        } else if op.is_atom(Atom::Decrement) {
            (0, next(dec)?)
        } else {
            return Err(BadCrdt::UnknownOp(TAG).into());
        };
        Ok(PNCounter {
            entries: vec![(actor.clone(), value)],
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};
    use crate::testing::Cx;

    fn pn(es: &[(i128, (i64, i64))]) -> PNCounter<T> {
        PNCounter {
            entries: es.iter().map(|(k, v)| (T::Int(*k), *v)).collect(),
        }
    }

    fn decode(t: &T) -> Result<PNCounter<T>> {
        PNCounter::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    fn entry(k: T, i: T, d: T) -> T {
        let b = OwnedBuilder;
        b.pair(k, b.pair(i, d))
    }

    #[test]
    fn decode_roundtrip_test() {
        let b = OwnedBuilder;
        let t = b.list(&[
            entry(T::Int(1), T::Int(1), T::Int(2)),
            entry(T::atom("b"), T::Int(13), T::Int(1)),
        ]);
        let s = decode(&t).unwrap();
        assert_eq!(s.encode(&b), t);
        assert_eq!(s.query(&b).unwrap(), T::Int(11));
    }

    #[test]
    fn decode_rejects_bad_payload_test() {
        let b = OwnedBuilder;
        let e1 = entry(T::Int(1), T::Int(1), T::Int(0));
        let e2 = entry(T::Int(2), T::Int(1), T::Int(0));
        assert_eq!(
            decode(&b.list(&[e2.clone(), e1.clone()])),
            Err(BadCrdt::Unsorted(TAG))
        );
        assert_eq!(
            decode(&b.cons(e1.clone(), T::Int(3))),
            Err(BadCrdt::ImproperList(TAG))
        );
        assert_eq!(decode(&T::Int(3)), Err(BadCrdt::Malformed(TAG)));
        let big = entry(T::Int(1), T::Int(1 << 70), T::Int(0));
        assert_eq!(decode(&b.list(&[big])), Err(BadCrdt::Malformed(TAG)));
        let flat = b.list(&[b.pair(T::Int(1), T::Int(1))]);
        assert_eq!(decode(&flat), Err(BadCrdt::Malformed(TAG)));
        let triple = b.list(&[b.pair(T::Int(1), b.tuple(&[T::Int(1), T::Int(1), T::Int(1)]))]);
        assert_eq!(decode(&triple), Err(BadCrdt::Malformed(TAG)));
    }

    #[test]
    fn merge_test() {
        let c1 = pn(&[(1, (2, 3)), (2, (5, 2))]);
        let c2 = pn(&[(1, (3, 2)), (2, (4, 9))]);
        match c1.merge(&c2).unwrap() {
            Merged::New(m) => assert_eq!(m, pn(&[(1, (3, 3)), (2, (5, 9))])),
            other => panic!("{other:?}"),
        }
        let d1 = pn(&[(1, (3, 2))]);
        let d2 = pn(&[(3, (1, 2))]);
        let g = d1.merge(&d2).unwrap().into_state(&d1, &d2);
        assert_eq!(g, pn(&[(1, (3, 2)), (3, (1, 2))]));
    }

    #[test]
    fn merge_keeps_input_test() {
        let big = pn(&[(1, (3, 3)), (2, (5, 9))]);
        let small = pn(&[(1, (3, 2))]);
        assert!(matches!(big.merge(&small).unwrap(), Merged::Left));
        assert!(matches!(small.merge(&big).unwrap(), Merged::Right));
        assert!(matches!(big.merge(&big).unwrap(), Merged::Left));
        let e = PNCounter::bottom();
        assert!(matches!(e.merge(&big).unwrap(), Merged::Right));
        assert!(matches!(big.merge(&e).unwrap(), Merged::Left));
    }

    #[test]
    fn equal_inflation_test() {
        let c1 = pn(&[(1, (2, 0)), (2, (1, 2)), (4, (1, 2))]);
        let c2 = pn(&[(1, (2, 0)), (2, (1, 2)), (4, (1, 2)), (5, (6, 3))]);
        let c3 = pn(&[(1, (2, 0)), (2, (2, 2)), (4, (1, 2))]);
        let c4 = pn(&[(1, (2, 1)), (2, (1, 1)), (4, (1, 2))]);
        assert!(c1.equal(&c1).unwrap());
        assert!(!c1.equal(&c2).unwrap());
        assert!(!c1.equal(&c3).unwrap());
        assert!(c1.is_inflation(&c2).unwrap());
        assert!(c1.is_inflation(&c3).unwrap());
        assert!(!c1.is_inflation(&c4).unwrap());
        assert!(c1.is_strict_inflation(&c2).unwrap());
        assert!(!c1.is_strict_inflation(&c1).unwrap());
        assert!(PNCounter::<T>::bottom().is_bottom());
        assert!(!c1.is_bottom());
    }

    #[test]
    fn delta_test() {
        let a = pn(&[(1, (3, 2)), (2, (1, 1)), (3, (0, 4)), (4, (0, 0))]);
        let b = pn(&[(1, (1, 5)), (2, (1, 1)), (3, (0, 1))]);
        let d = a.delta(&b).unwrap();
        assert_eq!(d, pn(&[(1, (3, 0)), (3, (0, 4)), (4, (0, 0))]));
        let lhs = d.merge(&b).unwrap().into_state(&d, &b);
        let rhs = a.merge(&b).unwrap().into_state(&a, &b);
        assert!(lhs.equal(&rhs).unwrap());
        // Negative counts in B: the whole entry goes.
        let b = pn(&[(1, (-1, 5))]);
        let a = pn(&[(1, (0, 6))]);
        let d = a.delta(&b).unwrap();
        let lhs = d.merge(&b).unwrap().into_state(&d, &b);
        let rhs = a.merge(&b).unwrap().into_state(&a, &b);
        assert!(lhs.equal(&rhs).unwrap());
    }

    #[test]
    fn mutate_test() {
        let c0 = PNCounter::bottom();
        let d1 = c0
            .delta_mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
            .unwrap();
        assert_eq!(d1, pn(&[(1, (1, 0))]));
        let c1 = c0
            .mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
            .unwrap();
        let c2 = c1
            .mutate(&T::atom("decrement"), &T::Int(2), &mut Cx::default())
            .unwrap();
        let d3 = c2
            .delta_mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
            .unwrap();
        assert_eq!(d3, pn(&[(1, (2, 0))]));
        let c3 = c2
            .mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
            .unwrap();
        assert_eq!(c3, pn(&[(1, (2, 0)), (2, (0, 1))]));
        let c4 = c3
            .mutate(&T::atom("decrement"), &T::Int(1), &mut Cx::default())
            .unwrap();
        assert_eq!(c4, pn(&[(1, (2, 1)), (2, (0, 1))]));
        assert_eq!(c4.query(&OwnedBuilder).unwrap(), T::Int(0));
    }

    #[test]
    fn mutate_errors_test() {
        let c = PNCounter::<T>::bottom();
        let inc_n = OwnedBuilder.pair(T::atom("increment"), T::Int(2));
        assert!(matches!(
            c.delta_mutate(&inc_n, &T::Int(1), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
        ));
        let full = pn(&[(1, (i64::MAX, 0))]);
        assert!(matches!(
            full.delta_mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::TooLarge))
        ));
    }
}
