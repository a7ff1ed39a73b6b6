//! `state_twopset`: a two-phase set.
//!
//! Payload: `{Added, Removed}`, two ordsets. Bottom is `{[], []}`. Once an
//! element is removed it can never come back, and `{rmv, Elem}` records the
//! element in `Removed` even when it was never added (this is not an
//! observed-remove set).
//!
//! - Merge is `ordsets:union/2` of each component (with the union's role
//!   swap, `conformance/README.md` §4).
//! - Equal and inflation are component-wise set equality / subset.
//! - Query is `Added` minus `Removed`, a proper list in term order.
//! - `delta(A, B)` is `{AddedA \ AddedB, RemovedA \ RemovedB}`: every element
//!   of either component is a join-irreducible.
//! - Operations: `{add, Elem}` and `{rmv, Elem}`. Each delta holds the element
//!   in its component, or nothing when an `==` element is already there.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker and Carlos Baquero, *Delta
//! State Replicated Data Types* (2016), <http://arxiv.org/pdf/1603.01529v1.pdf>.

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Term};
use crate::types::gset::{identical_list, op_arg};

const TAG: Atom = Atom::StateTwopset;

/// A two-phase set: an add set and a remove set, both grow-only.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::Lattice;
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::TwoPSet;
///
/// let a = TwoPSet { added: vec![T::atom("a"), T::atom("b")], removed: vec![] };
/// let b = TwoPSet { added: vec![], removed: vec![T::atom("b")] };
/// let m = a.merge(&b).unwrap().into_state(&a, &b);
/// assert_eq!(m.query(&OwnedBuilder).unwrap(), OwnedBuilder.list(&[T::atom("a")]));
/// assert!(a.is_strict_inflation(&m).unwrap());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TwoPSet<T> {
    /// Elements ever added, strictly ascending.
    pub added: Vec<T>,
    /// Elements ever removed, strictly ascending.
    pub removed: Vec<T>,
}

/// The delta that puts `elem` into `set`: `[Elem]`, or `[]` when present.
fn minimum_delta<T: Term>(elem: T, set: &[T]) -> Vec<T> {
    if ord::is_element(set, &elem) {
        Vec::new()
    } else {
        vec![elem]
    }
}

impl<T: Term> Lattice<T> for TwoPSet<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        let (added, removed) = payload.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        Ok(TwoPSet {
            added: d.ordset(TAG, &added)?,
            removed: d.ordset(TAG, &removed)?,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        b.pair(b.list(&self.added), b.list(&self.removed))
    }

    fn bottom() -> Self {
        TwoPSet {
            added: Vec::new(),
            removed: Vec::new(),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        let (added, add_x) = ord::union(&self.added, &other.added);
        let (removed, rem_x) = ord::union(&self.removed, &other.removed);
        Ok(if add_x && rem_x {
            Merged::Left
        } else if identical_list(&added, &other.added) && identical_list(&removed, &other.removed) {
            Merged::Right
        } else {
            Merged::New(TwoPSet { added, removed })
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        let eq = |x: &[T], y: &[T]| ord::is_subset(x, y) && ord::is_subset(y, x);
        Ok(eq(&self.added, &other.added) && eq(&self.removed, &other.removed))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        Ok(ord::is_subset(&self.added, &other.added)
            && ord::is_subset(&self.removed, &other.removed))
    }

    fn is_bottom(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(b.list(&ord::subtract(&self.added, &self.removed)))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(TwoPSet {
            added: ord::subtract(&self.added, &other.added),
            removed: ord::subtract(&self.removed, &other.removed),
        })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        _actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        if let Some(elem) = op_arg(op, Atom::Add) {
            return Ok(TwoPSet {
                added: minimum_delta(elem, &self.added),
                removed: Vec::new(),
            });
        }
        if let Some(elem) = op_arg(op, Atom::Rmv) {
            return Ok(TwoPSet {
                added: Vec::new(),
                removed: minimum_delta(elem, &self.removed),
            });
        }
        Err(BadCrdt::UnknownOp(TAG).into())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};
    use crate::testing::Cx;

    fn a(s: &str) -> T {
        T::atom(s)
    }

    fn tp(add: &[T], rem: &[T]) -> TwoPSet<T> {
        TwoPSet {
            added: add.to_vec(),
            removed: rem.to_vec(),
        }
    }

    fn decode(t: &T) -> Result<TwoPSet<T>> {
        TwoPSet::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    fn op(name: &str, arg: T) -> T {
        OwnedBuilder.pair(a(name), arg)
    }

    #[test]
    fn decode_roundtrip_test() {
        let b = OwnedBuilder;
        let t = b.pair(b.list(&[a("a"), a("c")]), b.list(&[a("a"), a("b")]));
        let s = decode(&t).unwrap();
        assert_eq!(s, tp(&[a("a"), a("c")], &[a("a"), a("b")]));
        assert_eq!(s.encode(&b), t);
    }

    #[test]
    fn decode_rejects_bad_shapes_test() {
        let b = OwnedBuilder;
        let ok = b.list(&[a("a")]);
        assert_eq!(decode(&b.list(&[])), Err(BadCrdt::Malformed(TAG)));
        assert_eq!(
            decode(&b.tuple(&[ok.clone(), ok.clone(), ok.clone()])),
            Err(BadCrdt::Malformed(TAG))
        );
        assert_eq!(
            decode(&b.pair(ok.clone(), b.list(&[a("b"), a("a")]))),
            Err(BadCrdt::Unsorted(TAG))
        );
        assert_eq!(
            decode(&b.pair(b.cons(a("a"), a("b")), ok)),
            Err(BadCrdt::ImproperList(TAG))
        );
    }

    #[test]
    fn merge_keeps_input_test() {
        let x = tp(&[a("a"), a("b")], &[a("b")]);
        let y = tp(&[a("a")], &[]);
        assert!(matches!(x.merge(&y).unwrap(), Merged::Left));
        assert!(matches!(y.merge(&x).unwrap(), Merged::Right));
        assert!(matches!(x.merge(&x).unwrap(), Merged::Left));
        let z = tp(&[a("c")], &[]);
        match x.merge(&z).unwrap() {
            Merged::New(m) => assert_eq!(m, tp(&[a("a"), a("b"), a("c")], &[a("b")])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn equal_inflation_query_test() {
        let s1 = tp(&[a("a")], &[]);
        let s2 = tp(&[a("a")], &[a("b")]);
        let s3 = tp(&[a("a"), a("b")], &[]);
        assert!(s1.equal(&s1).unwrap());
        assert!(!s1.equal(&s2).unwrap());
        assert!(s1.is_inflation(&s2).unwrap());
        assert!(!s2.is_inflation(&s1).unwrap());
        assert!(s1.is_inflation(&s3).unwrap());
        assert!(!s2.is_inflation(&s3).unwrap());
        assert!(s1.is_strict_inflation(&s2).unwrap());
        assert!(!s1.is_strict_inflation(&s1).unwrap());
        let q = tp(&[a("a"), a("c")], &[a("a"), a("b")])
            .query(&OwnedBuilder)
            .unwrap();
        assert_eq!(q, OwnedBuilder.list(&[a("c")]));
        assert!(TwoPSet::<T>::bottom().is_bottom());
        assert!(!s2.is_bottom());
    }

    #[test]
    fn delta_test() {
        let x = tp(&[a("a"), a("b")], &[a("b"), a("c")]);
        let y = tp(&[a("b")], &[a("c")]);
        let d = x.delta(&y).unwrap();
        assert_eq!(d, tp(&[a("a")], &[a("b")]));
        let lhs = d.merge(&y).unwrap().into_state(&d, &y);
        let rhs = x.merge(&y).unwrap().into_state(&x, &y);
        assert!(lhs.equal(&rhs).unwrap());
    }

    #[test]
    fn delta_mutate_test() {
        let s0 = TwoPSet::bottom();
        let s1 = s0
            .mutate(&op("add", a("a")), &a("n"), &mut Cx::default())
            .unwrap();
        let s2 = s1
            .mutate(&op("add", a("b")), &a("n"), &mut Cx::default())
            .unwrap();
        let s3 = s2
            .mutate(&op("rmv", a("b")), &a("n"), &mut Cx::default())
            .unwrap();
        assert_eq!(s3, tp(&[a("a"), a("b")], &[a("b")]));
        let d = s3
            .delta_mutate(&op("add", a("a")), &a("n"), &mut Cx::default())
            .unwrap();
        assert!(d.is_bottom());
        let d = s3
            .delta_mutate(&op("rmv", a("z")), &a("n"), &mut Cx::default())
            .unwrap();
        assert_eq!(d, tp(&[], &[a("z")]));
        assert!(matches!(
            s3.delta_mutate(&op("add_all", a("z")), &a("n"), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
        ));
    }
}
