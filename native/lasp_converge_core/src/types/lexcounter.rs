//! `state_lexcounter`: a lexicographic counter.
//!
//! Payload: an orddict `[{Actor, {Left, Right}}]`, strictly ascending by
//! actor. Bottom is `[]`. The value is the sum of the `Right`s; an actor
//! decrements by bumping its `Left` (a new epoch) and lowering `Right`, so
//! each entry only ever grows in lexicographic order.
//!
//! - Merge is `orddict:merge/3` (first argument's key term on `==` actors)
//!   with the lexicographic join: the pair with the larger `Left` wins
//!   outright; on equal `Left` the result is `{LeftA, max(RightA, RightB)}`.
//! - Equal: same size, and every actor of A is in B with both fields `==`.
//! - Inflation: every actor of A is in B with `LeftB > LeftA`, or
//!   `LeftA == LeftB` and `RightB >= RightA`.
//! - Query: the sum of the `Right`s (128-bit, never wraps).
//! - `delta(A, B)`: types' join decomposition of a lexcounter is `[A]`
//!   itself, so the delta is `A` when `merge(A, B)` differs from `B`, and
//!   bottom otherwise.
//! - Operations: `increment` gives `[{Actor, {L, R + 1}}]`, `decrement`
//!   gives `[{Actor, {L + 1, R - 1}}]`, from the actor's current pair
//!   (`{0, 0}` when absent).
//!
//! `Left` and `Right` must be integers that fit in an `i64`: anything else,
//! bignums included, is refused as `{malformed, state_lexcounter}`. A step
//! past the `i64` range is refused as `too_large`.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker and Carlos Baquero, *Delta
//! State Replicated Data Types* (2016), <http://arxiv.org/pdf/1603.01529v1.pdf>.

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Term};
use crate::types::pncounter::{decode_int_pairs, encode_int_pairs};

const TAG: Atom = Atom::StateLexcounter;

/// A lexicographic counter: one `(Left, Right)` pair per actor.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::Lattice;
/// use lasp_converge_core::types::LexCounter;
///
/// let a = LexCounter { entries: vec![(T::atom("a"), (6, 2))] };
/// let b = LexCounter { entries: vec![(T::atom("a"), (5, 30)), (T::atom("b"), (0, 1))] };
/// let m = a.merge(&b).unwrap().into_state(&a, &b);
/// assert_eq!(m.entries, vec![(T::atom("a"), (6, 2)), (T::atom("b"), (0, 1))]);
/// assert_eq!(m.query(&OwnedBuilder).unwrap(), T::Int(3));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LexCounter<T> {
    /// `(Actor, (Left, Right))` in ascending actor order.
    pub entries: Vec<(T, (i64, i64))>,
}

/// Whether the pair `b` is at least the pair `a` in the lexicographic order.
fn lex_ge(b: (i64, i64), a: (i64, i64)) -> bool {
    b.0 > a.0 || (b.0 == a.0 && b.1 >= a.1)
}

/// The join of two pairs, as types' `join/2`.
fn join(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    match a.0.cmp(&b.0) {
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Less => b,
        std::cmp::Ordering::Equal => (a.0, a.1.max(b.1)),
    }
}

impl<T: Term> LexCounter<T> {
    fn find(&self, actor: &T) -> Option<(i64, i64)> {
        ord::find(&self.entries, actor).copied()
    }
}

impl<T: Term> Lattice<T> for LexCounter<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        Ok(LexCounter {
            entries: decode_int_pairs(TAG, payload, d)?,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        encode_int_pairs(&self.entries, b)
    }

    fn bottom() -> Self {
        LexCounter {
            entries: Vec::new(),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        // When our pair is lexicographically at least theirs the join gives
        // our pair back (`{LeftA, max(R, R)}` on a tie is the same integers);
        // `orddict:merge/3` keeps our key terms.
        if ord::covers(&self.entries, &other.entries, false, |a, b| lex_ge(*a, *b)) {
            return Ok(Merged::Left);
        }
        if ord::covers(&other.entries, &self.entries, true, |a, b| lex_ge(*a, *b)) {
            return Ok(Merged::Right);
        }
        let entries = ord::orddict_merge(&self.entries, &other.entries, |_, a, b| {
            Ok::<_, BadCrdt>(join(*a, *b))
        })?;
        Ok(Merged::New(LexCounter { entries }))
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        ord::same_entries(&self.entries, &other.entries, |a, b| Ok(a == b))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        ord::all_found(&self.entries, &other.entries, |a, b| Ok(lex_ge(*b, *a)))
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        let sum: i128 = self.entries.iter().map(|(_, (_, r))| i128::from(*r)).sum();
        Ok(b.int128(sum))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        // types: join_decomposition(A) = [A], so A goes whole when it strictly
        // inflates B (`merge(A, B)` is always an inflation of B here).
        let m = self.merge(other)?.into_state(self, other);
        Ok(if m.equal(other)? {
            Self::bottom()
        } else {
            self.clone()
        })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let (l, r) = self.find(actor).unwrap_or((0, 0));
        let value = if op.is_atom(Atom::Increment) {
            (l, r.checked_add(1).ok_or(BadCrdt::TooLarge)?)
        } else if op.is_atom(Atom::Decrement) {
            (
                l.checked_add(1).ok_or(BadCrdt::TooLarge)?,
                r.checked_sub(1).ok_or(BadCrdt::TooLarge)?,
            )
        } else {
            return Err(BadCrdt::UnknownOp(TAG).into());
        };
        Ok(LexCounter {
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

    fn lex(es: &[(&str, (i64, i64))]) -> LexCounter<T> {
        LexCounter {
            entries: es.iter().map(|(k, v)| (T::atom(k), *v)).collect(),
        }
    }

    fn decode(t: &T) -> Result<LexCounter<T>> {
        LexCounter::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    fn entry(k: &str, l: i128, r: i128) -> T {
        let b = OwnedBuilder;
        b.pair(T::atom(k), b.pair(T::Int(l), T::Int(r)))
    }

    #[test]
    fn decode_roundtrip_test() {
        let b = OwnedBuilder;
        let t = b.list(&[entry("a", 1, 2), entry("b", 1, -13)]);
        let s = decode(&t).unwrap();
        assert_eq!(s, lex(&[("a", (1, 2)), ("b", (1, -13))]));
        assert_eq!(s.encode(&b), t);
    }

    #[test]
    fn decode_rejects_bad_payload_test() {
        let b = OwnedBuilder;
        let unsorted = b.list(&[entry("b", 1, 2), entry("a", 1, 2)]);
        assert_eq!(decode(&unsorted), Err(BadCrdt::Unsorted(TAG)));
        let improper = b.cons(entry("a", 1, 2), entry("b", 1, 2));
        assert_eq!(decode(&improper), Err(BadCrdt::ImproperList(TAG)));
        assert_eq!(
            decode(&b.list(&[entry("a", 1 << 64, 0)])),
            Err(BadCrdt::Malformed(TAG))
        );
        assert_eq!(
            decode(&b.list(&[T::atom("a")])),
            Err(BadCrdt::Malformed(TAG))
        );
    }

    #[test]
    fn merge_test() {
        let c1 = lex(&[("5", (6, 2))]);
        let c2 = lex(&[("5", (5, 3))]);
        let c3 = lex(&[("5", (5, 10))]);
        assert!(matches!(c1.merge(&c1).unwrap(), Merged::Left));
        assert!(matches!(c1.merge(&c2).unwrap(), Merged::Left));
        assert!(matches!(c2.merge(&c1).unwrap(), Merged::Right));
        assert!(matches!(c2.merge(&c3).unwrap(), Merged::Right));
        let d1 = lex(&[("1", (2, 4))]);
        let d2 = lex(&[("1", (2, 3)), ("3", (1, 2))]);
        match d1.merge(&d2).unwrap() {
            Merged::New(m) => assert_eq!(m, lex(&[("1", (2, 4)), ("3", (1, 2))])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn equal_inflation_test() {
        let c1 = lex(&[("1", (2, 0))]);
        let c2 = lex(&[("1", (2, 0)), ("2", (1, -1))]);
        let c3 = lex(&[("1", (2, 1))]);
        let c4 = lex(&[("1", (3, -2))]);
        let c5 = lex(&[("1", (2, -1))]);
        assert!(c1.is_inflation(&c1).unwrap());
        assert!(c1.is_inflation(&c2).unwrap());
        assert!(!c2.is_inflation(&c1).unwrap());
        assert!(c1.is_inflation(&c3).unwrap());
        assert!(c1.is_inflation(&c4).unwrap());
        assert!(!c1.is_inflation(&c5).unwrap());
        assert!(!c1.is_strict_inflation(&c1).unwrap());
        assert!(c1.is_strict_inflation(&c4).unwrap());
        assert!(c1.equal(&c1).unwrap());
        assert!(!c1.equal(&c3).unwrap());
        assert!(LexCounter::<T>::bottom().is_bottom());
    }

    #[test]
    fn delta_test() {
        let a = lex(&[("1", (2, 4)), ("2", (0, 1))]);
        let b = lex(&[("1", (2, 3))]);
        assert_eq!(a.delta(&b).unwrap(), a);
        assert!(b.delta(&a).unwrap().is_bottom());
    }

    #[test]
    fn mutate_test() {
        let c0 = LexCounter::bottom();
        let c1 = c0
            .mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
            .unwrap();
        let d2 = c1
            .delta_mutate(&T::atom("decrement"), &T::Int(2), &mut Cx::default())
            .unwrap();
        assert_eq!(d2.entries, vec![(T::Int(2), (1, -1))]);
        let c2 = c1
            .mutate(&T::atom("decrement"), &T::Int(2), &mut Cx::default())
            .unwrap();
        let c3 = c2
            .mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
            .unwrap();
        assert_eq!(c3.entries, vec![(T::Int(1), (0, 2)), (T::Int(2), (1, -1))]);
        assert_eq!(c3.query(&OwnedBuilder).unwrap(), T::Int(1));
        assert!(matches!(
            c3.delta_mutate(&T::atom("add"), &T::Int(1), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
        ));
    }
}
