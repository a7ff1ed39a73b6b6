//! `state_gset`: a grow-only set.
//!
//! Payload: an ordset `[Elem]`, strictly ascending in term order with no two
//! elements `==`. Bottom is `[]`.
//!
//! - Merge is `ordsets:union/2`, including its role swap (which of two `==`
//!   elements survives depends on the walk; see `conformance/README.md` §4).
//! - Equal is subset both ways; inflation is `ordsets:is_subset/2`.
//! - Query is the set of elements, returned as the ordset itself (a proper
//!   list sorted in term order).
//! - `delta(A, B)` is the elements of `A` not in `B` (each element is a
//!   join-irreducible).
//! - The one operation is `{add, Elem}`: its delta is `[Elem]`, or `[]` when
//!   an `==` element is already present.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker and Carlos Baquero, *Delta
//! State Replicated Data Types* (2016), <http://arxiv.org/pdf/1603.01529v1.pdf>.

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Term};

const TAG: Atom = Atom::StateGset;

/// A grow-only set.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::{Lattice, Merged};
/// use lasp_converge_core::types::GSet;
///
/// let a = GSet { elems: vec![T::atom("a"), T::atom("c")] };
/// let b = GSet { elems: vec![T::atom("b")] };
/// let m = a.merge(&b).unwrap().into_state(&a, &b);
/// assert_eq!(m.elems, vec![T::atom("a"), T::atom("b"), T::atom("c")]);
/// assert!(a.is_inflation(&m).unwrap());
/// // Merging a subset hands back the first argument unchanged.
/// assert!(matches!(m.merge(&a).unwrap(), Merged::Left));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GSet<T> {
    /// The elements, strictly ascending in term order.
    pub elems: Vec<T>,
}

/// Whether two lists hold exactly (`=:=`) the same terms in the same order.
pub(crate) fn identical_list<T: Term>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.identical(y))
}

/// `ordsets:union(X, Y)` and whether the result is exactly `X` or `Y`.
pub(crate) fn union_merged<T: Term>(x: &[T], y: &[T]) -> Merged<Vec<T>> {
    let (u, is_x) = ord::union(x, y);
    if is_x {
        Merged::Left
    } else if identical_list(&u, y) {
        Merged::Right
    } else {
        Merged::New(u)
    }
}

/// The op `{Name, Arg}` when `op` is a 2-tuple whose first element is `name`.
pub(crate) fn op_arg<T: Term>(op: &T, name: Atom) -> Option<T> {
    if op.tuple_arity()? != 2 || !op.tuple_elem(0)?.is_atom(name) {
        return None;
    }
    op.tuple_elem(1)
}

impl<T: Term> Lattice<T> for GSet<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        Ok(GSet {
            elems: d.ordset(TAG, payload)?,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        b.list(&self.elems)
    }

    fn bottom() -> Self {
        GSet { elems: Vec::new() }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        Ok(match union_merged(&self.elems, &other.elems) {
            Merged::Left => Merged::Left,
            Merged::Right => Merged::Right,
            Merged::New(elems) => Merged::New(GSet { elems }),
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(ord::is_subset(&self.elems, &other.elems) && ord::is_subset(&other.elems, &self.elems))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        Ok(ord::is_subset(&self.elems, &other.elems))
    }

    fn is_bottom(&self) -> bool {
        self.elems.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(b.list(&self.elems))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(GSet {
            elems: ord::subtract(&self.elems, &other.elems),
        })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        _actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let elem = op_arg(op, Atom::Add).ok_or(BadCrdt::UnknownOp(TAG))?;
        let elems = if ord::is_element(&self.elems, &elem) {
            Vec::new()
        } else {
            vec![elem]
        };
        Ok(GSet { elems })
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

    fn set(es: &[T]) -> GSet<T> {
        GSet { elems: es.to_vec() }
    }

    fn decode(t: &T) -> Result<GSet<T>> {
        GSet::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    fn op(name: &str, arg: T) -> T {
        OwnedBuilder.pair(a(name), arg)
    }

    #[test]
    fn decode_roundtrip_test() {
        let b = OwnedBuilder;
        let t = b.list(&[T::Int(1), a("x"), b.binary(b"z")]);
        let s = decode(&t).unwrap();
        assert_eq!(s.elems.len(), 3);
        assert_eq!(s.encode(&b), t);
    }

    #[test]
    fn decode_rejects_unsorted_test() {
        let b = OwnedBuilder;
        assert_eq!(
            decode(&b.list(&[a("b"), a("a")])),
            Err(BadCrdt::Unsorted(TAG))
        );
        assert_eq!(
            decode(&b.list(&[a("a"), a("a")])),
            Err(BadCrdt::Unsorted(TAG))
        );
    }

    #[test]
    fn decode_rejects_improper_test() {
        let b = OwnedBuilder;
        assert_eq!(
            decode(&b.cons(a("a"), a("b"))),
            Err(BadCrdt::ImproperList(TAG))
        );
        assert_eq!(decode(&a("b")), Err(BadCrdt::Malformed(TAG)));
    }

    #[test]
    fn decode_yields_on_budget_test() {
        let b = OwnedBuilder;
        let es: Vec<T> = (0..5000).map(T::Int).collect();
        let r = GSet::decode(&b.list(&es), &mut Decoder::new(Limits::normal()));
        assert_eq!(r, Err(BadCrdt::Yield));
    }

    #[test]
    fn merge_keeps_input_test() {
        let x = set(&[a("a"), a("b")]);
        let y = set(&[a("a")]);
        assert!(matches!(x.merge(&y).unwrap(), Merged::Left));
        assert!(matches!(y.merge(&x).unwrap(), Merged::Right));
        assert!(matches!(x.merge(&x).unwrap(), Merged::Left));
        let e = GSet::bottom();
        assert!(matches!(e.merge(&e).unwrap(), Merged::Left));
        assert!(matches!(e.merge(&x).unwrap(), Merged::Right));
    }

    #[test]
    fn merge_union_test() {
        let x = set(&[a("a"), a("c")]);
        let y = set(&[a("b"), a("c")]);
        match x.merge(&y).unwrap() {
            Merged::New(m) => assert_eq!(m.elems, vec![a("a"), a("b"), a("c")]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn equal_inflation_test() {
        let x = set(&[a("a")]);
        let y = set(&[a("a"), a("b")]);
        assert!(x.equal(&x).unwrap());
        assert!(!x.equal(&y).unwrap());
        assert!(x.is_inflation(&y).unwrap());
        assert!(!y.is_inflation(&x).unwrap());
        assert!(x.is_strict_inflation(&y).unwrap());
        assert!(!x.is_strict_inflation(&x).unwrap());
        assert!(GSet::<T>::bottom().is_bottom());
        assert!(!x.is_bottom());
    }

    #[test]
    fn query_test() {
        let y = set(&[a("a"), a("b")]);
        assert_eq!(
            y.query(&OwnedBuilder).unwrap(),
            OwnedBuilder.list(&[a("a"), a("b")])
        );
    }

    #[test]
    fn delta_test() {
        let x = set(&[a("a"), a("b"), a("c")]);
        let y = set(&[a("b"), a("d")]);
        let d = x.delta(&y).unwrap();
        assert_eq!(d.elems, vec![a("a"), a("c")]);
        let lhs = d.merge(&y).unwrap().into_state(&d, &y);
        let rhs = x.merge(&y).unwrap().into_state(&x, &y);
        assert!(lhs.equal(&rhs).unwrap());
    }

    #[test]
    fn delta_mutate_test() {
        let s0 = GSet::bottom();
        let d1 = s0
            .delta_mutate(&op("add", a("a")), &a("n"), &mut Cx::default())
            .unwrap();
        assert_eq!(d1.elems, vec![a("a")]);
        let s1 = s0
            .mutate(&op("add", a("a")), &a("n"), &mut Cx::default())
            .unwrap();
        assert_eq!(s1.elems, vec![a("a")]);
        let d2 = s1
            .delta_mutate(&op("add", a("a")), &a("n"), &mut Cx::default())
            .unwrap();
        assert!(d2.elems.is_empty());
        let s2 = s1
            .mutate(&op("add", a("b")), &a("n"), &mut Cx::default())
            .unwrap();
        assert_eq!(s2.elems, vec![a("a"), a("b")]);
    }

    #[test]
    fn delta_mutate_unknown_op_test() {
        let s = GSet::<T>::bottom();
        for bad in [
            a("add"),
            op("rmv", a("a")),
            OwnedBuilder.tuple(&[a("add"), a("a"), a("b")]),
        ] {
            assert!(matches!(
                s.delta_mutate(&bad, &a("n"), &mut Cx::default()),
                Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
            ));
        }
    }
}
