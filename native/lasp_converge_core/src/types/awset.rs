//! `state_awset`: an add-wins observed-remove set without tombstones.
//!
//! Payload: `{DotMap, CC}`, where `DotMap` is an orddict
//! `Elem -> non-empty ordset of dots` and `CC = {Compressed, Cloud}` is a
//! causal context (see [`crate::causal`]). Bottom `{[], {[], []}}`.
//!
//! - Merge: identical payloads give the first argument as is. Otherwise the
//!   context is `CCunion(CCA, CCB)` and the dot map is merged key by key
//!   (keys matched by `=:=`; two keys `==` but not `=:=` make types raise
//!   `function_clause`, refused here as `{not_identical, state_awset}`):
//!   each element keeps `U(I(DA, DB), U(DA \ CCB, DB \ CCA))`, and an
//!   element left with no dot is dropped.
//! - Equal: `PayloadA == PayloadB`. Inflation: generic,
//!   `equal(merge(A, B), B)`. Bottom: `== new()`.
//! - Query: the elements (dot-map keys), in term order.
//! - `delta(A, B)`: the join of A's join-irreducible parts that strictly
//!   inflate B: each `(element, dot)` B has not seen, and each context dot B
//!   lacks or still holds although A removed it.
//! - Operations: `{add, E}` (a fresh dot of the actor, whose delta context
//!   also covers E's current dots), `{add_all, Es}`, `{rmv, E}` (a delta
//!   covering E's dots; an absent element gives the empty delta, as in types
//!   0.1.8) and `{rmv_all, Es}`. The list operations fold the single ones,
//!   merging each delta into the state and into the delta group.
//!
//! Layout: all the dot sets share one flat vector (see [`crate::causal`]),
//! so decoding allocates per state, not per element, and merging a large set
//! with a small delta compares few element terms.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker, Carlos Baquero, *Delta State
//! Replicated Data Types* (2016).

use crate::causal::{cc_add_dot, cc_from_dots, op_list, Causal, Kind};
use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Term};

const TAG: Atom = Atom::StateAwset;

fn kind() -> Kind {
    Kind::Map(Box::new(Kind::Set))
}

/// An add-wins set.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::lattice::{Lattice, MutateCx};
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::AWSet;
///
/// struct Cx(OwnedBuilder);
/// impl MutateCx<T> for Cx {
///     type B = OwnedBuilder;
///     fn builder(&self) -> &OwnedBuilder { &self.0 }
///     fn token(&mut self) -> T { self.0.binary(&[0; 20]) }
/// }
/// let (b, mut cx) = (OwnedBuilder, Cx(OwnedBuilder));
/// let op = |name: &str, e: T| b.pair(T::atom(name), e);
///
/// let s0 = AWSet::<T>::bottom();
/// let a = s0.mutate(&op("add", T::atom("x")), &T::atom("alice"), &mut cx).unwrap();
/// let c = s0.mutate(&op("add", T::atom("y")), &T::atom("carol"), &mut cx).unwrap();
/// // Alice removes x while Carol concurrently adds y.
/// let a = a.mutate(&op("rmv", T::atom("x")), &T::atom("alice"), &mut cx).unwrap();
/// let m = a.merge(&c).unwrap().into_state(&a, &c);
/// assert_eq!(m.query(&b).unwrap(), b.list(&[T::atom("y")]));
/// assert!(a.is_inflation(&m).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct AWSet<T> {
    state: Causal<T>,
}

impl<T: Term> AWSet<T> {
    /// The causal state.
    pub fn causal(&self) -> &Causal<T> {
        &self.state
    }

    /// The elements, in term order.
    pub fn elements(&self) -> &[T] {
        self.state.top_keys()
    }

    /// `delta_mutate({add, Elem}, Actor, Self)`.
    fn add(&self, elem: &T, actor: &T) -> Result<Self> {
        let ext = self.state.extend(actor);
        let next = ext.dot(self.state.next_seq(&ext)?);
        let mut cc = cc_from_dots(&self.state.key_dots(elem, &ext), ext.rank());
        cc_add_dot(&mut cc, next, ext.rank());
        Ok(AWSet {
            state: Causal::new_map_of_sets(ext, vec![(elem.clone(), vec![next])], cc),
        })
    }

    /// `delta_mutate({rmv, Elem}, Actor, Self)`: no store, E's dots as the
    /// context.
    fn rmv(&self, elem: &T, actor: &T) -> Self {
        let ext = self.state.extend(actor);
        let cc = cc_from_dots(&self.state.key_dots(elem, &ext), ext.rank());
        AWSet {
            state: Causal::new_map_of_sets(ext, Vec::new(), cc),
        }
    }

    /// The fold of `add_all`/`rmv_all`: each delta is merged into the state
    /// (`merge(Delta, S)`) and into the group (`merge(Delta, Group)`).
    ///
    /// The fold only reads the context and the dots of the listed elements,
    /// so it runs over the state restricted to those elements: `O(n + k²)`
    /// rather than `k` merges of the whole state.
    fn fold(&self, elems: &T, mut one: impl FnMut(&Self, &T) -> Result<Self>) -> Result<Self> {
        let elems = op_list(elems, TAG)?;
        let mut state = AWSet {
            state: self.state.project_keys(&elems),
        };
        let mut group = Self::bottom();
        for e in elems {
            let delta = one(&state, &e)?;
            state = delta.merge(&state)?.into_state(&delta, &state);
            group = delta.merge(&group)?.into_state(&delta, &group);
        }
        Ok(group)
    }
}

impl<T: Term> Lattice<T> for AWSet<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        Ok(AWSet {
            state: Causal::decode(payload, &kind(), d, TAG)?,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        self.state.encode(b)
    }

    fn bottom() -> Self {
        AWSet {
            state: Causal::bottom(&kind()),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        Ok(match self.state.merge(&other.state, TAG)? {
            Merged::Left => Merged::Left,
            Merged::Right => Merged::Right,
            Merged::New(state) => Merged::New(AWSet { state }),
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.state.equal(&other.state))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        self.state.is_inflation(&other.state, TAG)
    }

    fn is_bottom(&self) -> bool {
        self.state.is_bottom()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(b.list(self.elements()))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(AWSet {
            state: self.state.delta(&other.state, TAG)?,
        })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let (name, arg) = op.as_pair().ok_or(BadCrdt::UnknownOp(TAG))?;
        if name.is_atom(Atom::Add) {
            Ok(self.add(&arg, actor)?)
        } else if name.is_atom(Atom::Rmv) {
            Ok(self.rmv(&arg, actor))
        } else if name.is_atom(Atom::AddAll) {
            Ok(self.fold(&arg, |s, e| s.add(e, actor))?)
        } else if name.is_atom(Atom::RmvAll) {
            Ok(self.fold(&arg, |s, e| Ok(s.rmv(e, actor)))?)
        } else {
            Err(BadCrdt::UnknownOp(TAG).into())
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testing::{dec, enc, merged, same, t, Cx, Rng, TB, TT};

    fn s(p: &str) -> AWSet<TT> {
        dec(p).unwrap()
    }

    fn op(name: &str, arg: &str) -> TT {
        t(&format!("{{{name}, {arg}}}"))
    }

    fn delta_mutate(x: &AWSet<TT>, o: &str, arg: &str, actor: &str) -> TT {
        enc(&x
            .delta_mutate(&op(o, arg), &t(actor), &mut Cx::default())
            .unwrap())
    }

    fn mutate(x: &AWSet<TT>, o: &str, arg: &str, actor: &str) -> AWSet<TT> {
        x.mutate(&op(o, arg), &t(actor), &mut Cx::default())
            .unwrap()
    }

    #[test]
    fn decode_roundtrip_test() {
        let p = "{[{x, [{a, 1}, {b, 2}]}, {{y, 1}, [{a, 3}]}], {[{a, 3}], [{b, 2}]}}";
        same(&enc(&s(p)), &t(p));
        let b = AWSet::<TT>::bottom();
        same(&enc(&b), &t("{[], {[], []}}"));
        assert!(b.is_bottom());
        assert!(!s("{[], {[{a, 1}], []}}").is_bottom());
    }

    #[test]
    fn decode_rejects_bad_payload_test() {
        let bad = |p: &str| dec::<AWSet<TT>>(p).unwrap_err();
        assert_eq!(bad("{[], {[], []}, []}"), BadCrdt::Malformed(TAG));
        assert_eq!(bad("{[{x, []}], {[], []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(bad("{[{x, [a]}], {[], []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(bad("{[{x, [{a, 0}]}], {[], []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(
            bad("{[{x, [{a, 1}]}], {[{a, -1}], []}}"),
            BadCrdt::Malformed(TAG)
        );
        assert_eq!(
            bad("{[{y, [{a, 1}]}, {x, [{a, 2}]}], {[], []}}"),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            bad("{[{x, [{a, 2}, {a, 1}]}], {[], []}}"),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(bad("{[], {[{b, 1}, {a, 2}], []}}"), BadCrdt::Unsorted(TAG));
        assert_eq!(bad("{[], {[], [{b, 1}, {a, 2}]}}"), BadCrdt::Unsorted(TAG));
        assert_eq!(
            bad("{[{x, [{a, 1}]} | y], {[], []}}"),
            BadCrdt::ImproperList(TAG)
        );
        assert_eq!(bad("{[], {[{a, 1} | b], []}}"), BadCrdt::ImproperList(TAG));
    }

    #[test]
    fn merge_test() {
        // The README's idempotence/commutativity examples from types.
        let s1 = s("{[], {[{1, 1}], []}}");
        let s2 = s("{[{<<\"b\">>, [{2, 1}]}], {[{2, 1}], []}}");
        let s3 = s("{[{<<\"a\">>, [{1, 1}]}], {[{1, 1}, {2, 1}], []}}");
        let s12 = t("{[{<<\"b\">>, [{2, 1}]}], {[{1, 1}, {2, 1}], []}}");
        let s13 = t("{[], {[{1, 1}, {2, 1}], []}}");
        same(&merged(&s1, &s2).unwrap(), &s12);
        same(&merged(&s2, &s1).unwrap(), &s12);
        same(&merged(&s1, &s3).unwrap(), &s13);
        same(&merged(&s3, &s1).unwrap(), &s13);
        same(&merged(&s2, &s3).unwrap(), &enc(&s3));
        same(&merged(&s3, &s2).unwrap(), &enc(&s3));
        assert!(matches!(s3.merge(&s2).unwrap(), Merged::Left));
        assert!(matches!(s2.merge(&s3).unwrap(), Merged::Right));
    }

    #[test]
    fn merge_compresses_the_context_test() {
        let a = s("{[{x, [{a, 3}]}], {[{a, 1}], [{a, 3}]}}");
        let b = s("{[{y, [{a, 2}]}], {[], [{a, 2}]}}");
        same(
            &merged(&a, &b).unwrap(),
            &t("{[{x, [{a, 3}]}, {y, [{a, 2}]}], {[{a, 3}], []}}"),
        );
        // A context that is not compressed stays so under the identity
        // shortcut, and is compressed by any other merge.
        let c = s("{[], {[], [{a, 1}]}}");
        assert!(matches!(c.merge(&c.clone()).unwrap(), Merged::Left));
        same(
            &merged(&c, &AWSet::bottom()).unwrap(),
            &t("{[], {[{a, 1}], []}}"),
        );
    }

    #[test]
    fn merge_not_identical_keys_test() {
        let a = s("{[{1, [{a, 1}]}], {[{a, 1}], []}}");
        let b = s("{[{1.0, [{b, 1}]}], {[{b, 1}], []}}");
        assert_eq!(a.merge(&b).unwrap_err(), BadCrdt::NotIdentical(TAG));
        assert_eq!(b.merge(&a).unwrap_err(), BadCrdt::NotIdentical(TAG));
        assert_eq!(a.is_inflation(&b).unwrap_err(), BadCrdt::NotIdentical(TAG));
        // `==` keys compare equal for `equal/2`.
        let c = s("{[{1.0, [{a, 1}]}], {[{a, 1}], []}}");
        assert!(a.equal(&c).unwrap());
    }

    #[test]
    fn equal_inflation_query_test() {
        let a = s("{[{x, [{a, 1}]}], {[{a, 1}], []}}");
        let b = s("{[{x, [{a, 1}]}, {y, [{b, 1}]}], {[{a, 1}, {b, 1}], []}}");
        assert!(a.is_inflation(&b).unwrap());
        assert!(!b.is_inflation(&a).unwrap());
        assert!(a.is_strict_inflation(&b).unwrap());
        assert!(!a.equal(&b).unwrap());
        same(&b.query(&TB).unwrap(), &t("[x, y]"));
        same(&AWSet::<TT>::bottom().query(&TB).unwrap(), &t("[]"));
        // A removal inflates a state holding the element.
        let r = s("{[], {[{a, 1}], []}}");
        assert!(a.is_inflation(&r).unwrap());
        assert!(!r.is_inflation(&a).unwrap());
    }

    #[test]
    fn delta_mutate_test() {
        // types' own delta_add_test, with actor 1.
        let s0 = AWSet::<TT>::bottom();
        same(
            &delta_mutate(&s0, "add", "<<\"a\">>", "1"),
            &t("{[{<<\"a\">>, [{1, 1}]}], {[{1, 1}], []}}"),
        );
        let s1 = mutate(&s0, "add", "x", "1");
        same(&enc(&s1), &t("{[{x, [{1, 1}]}], {[{1, 1}], []}}"));
        same(
            &delta_mutate(&s1, "add", "x", "1"),
            &t("{[{x, [{1, 2}]}], {[{1, 2}], []}}"),
        );
        let s2 = mutate(&s1, "add", "x", "1");
        same(&enc(&s2), &t("{[{x, [{1, 2}]}], {[{1, 2}], []}}"));
        same(
            &delta_mutate(&s2, "add", "y", "1"),
            &t("{[{y, [{1, 3}]}], {[], [{1, 3}]}}"),
        );
        let s3 = mutate(&s2, "add", "y", "1");
        same(
            &enc(&s3),
            &t("{[{x, [{1, 2}]}, {y, [{1, 3}]}], {[{1, 3}], []}}"),
        );
        // Removal: the element's dots as the context.
        same(
            &delta_mutate(&s3, "rmv", "x", "2"),
            &t("{[], {[], [{1, 2}]}}"),
        );
        let s4 = mutate(&s3, "rmv", "x", "2");
        same(&enc(&s4), &t("{[{y, [{1, 3}]}], {[{1, 3}], []}}"));
        // Removing an absent element is the empty delta, and no change.
        same(&delta_mutate(&s4, "rmv", "zzz", "2"), &t("{[], {[], []}}"));
        same(&enc(&mutate(&s4, "rmv", "zzz", "2")), &enc(&s4));
    }

    #[test]
    fn delta_mutate_keeps_0_1_8_add_dot_test() {
        // README §6: an actor whose later dot came back through another
        // replica gets {[{a,1}],[{a,2}]} from 0.1.8.
        let st = s("{[{x, [{a, 2}]}], {[], [{a, 2}]}}");
        same(
            &delta_mutate(&st, "add", "x", "a"),
            &t("{[{x, [{a, 1}]}], {[{a, 1}], [{a, 2}]}}"),
        );
    }

    #[test]
    fn add_all_rmv_all_test() {
        let s0 = AWSet::<TT>::bottom();
        same(
            &delta_mutate(&s0, "add_all", "[]", "1"),
            &t("{[], {[], []}}"),
        );
        let g = delta_mutate(&s0, "add_all", "[a, b, a]", "1");
        same(&g, &t("{[{a, [{1, 3}]}, {b, [{1, 2}]}], {[{1, 3}], []}}"));
        let s1 = mutate(&s0, "add_all", "[a, b, c]", "1");
        same(&s1.query(&TB).unwrap(), &t("[a, b, c]"));
        let s2 = mutate(&s1, "rmv_all", "[a, c, d]", "1");
        same(&enc(&s2), &t("{[{b, [{1, 2}]}], {[{1, 3}], []}}"));
        same(
            &delta_mutate(&s1, "rmv_all", "[a, c]", "1"),
            &t("{[], {[{1, 1}], [{1, 3}]}}"),
        );
    }

    #[test]
    fn list_ops_fold_over_a_projection_test() {
        // The naive fold: every delta merged into the whole state.
        fn naive(
            x: &AWSet<TT>,
            es: &[TT],
            one: impl Fn(&AWSet<TT>, &TT) -> AWSet<TT>,
        ) -> AWSet<TT> {
            let (mut st, mut group) = (x.clone(), AWSet::bottom());
            for e in es {
                let d = one(&st, e);
                st = d.merge(&st).unwrap().into_state(&d, &st);
                group = d.merge(&group).unwrap().into_state(&d, &group);
            }
            group
        }
        let mut rng = Rng(17);
        let mut st = AWSet::<TT>::bottom();
        for round in 0..200 {
            let actor = t(["a", "b", "{n, 1}"][rng.next(3) as usize]);
            let es: Vec<TT> = (0..rng.next(6))
                .map(|_| TT::int(rng.next(8) as i64))
                .collect();
            let list = TB.list(&es);
            let add = rng.next(2) == 0;
            let name = if add { "add_all" } else { "rmv_all" };
            let op = TB.pair(t(name), list);
            let got = st.delta_mutate(&op, &actor, &mut Cx::default()).unwrap();
            let want = if add {
                naive(&st, &es, |s, e| s.add(e, &actor).unwrap())
            } else {
                naive(&st, &es, |s, e| s.rmv(e, &actor))
            };
            same(&enc(&got), &enc(&want));
            st = if round % 7 == 0 {
                got
            } else {
                got.merge(&st).unwrap().into_state(&got, &st)
            };
        }
    }

    #[test]
    fn mutate_errors_test() {
        let s0 = AWSet::<TT>::bottom();
        let bad = |o: TT| match s0.delta_mutate(&o, &t("a"), &mut Cx::default()) {
            Err(MutateError::Bad(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(bad(t("{inc, x}")), BadCrdt::UnknownOp(TAG));
        assert_eq!(bad(t("add")), BadCrdt::UnknownOp(TAG));
        assert_eq!(bad(t("{add, x, y}")), BadCrdt::UnknownOp(TAG));
        assert_eq!(bad(t("{add_all, x}")), BadCrdt::UnknownOp(TAG));
        assert_eq!(bad(t("{add_all, [x | y]}")), BadCrdt::ImproperList(TAG));
    }

    #[test]
    fn delta_test() {
        let a = s("{[{x, [{a, 1}]}, {y, [{a, 2}]}], {[{a, 2}], []}}");
        let b = s("{[{x, [{a, 1}]}], {[{a, 1}], []}}");
        let d = a.delta(&b).unwrap();
        same(&enc(&d), &t("{[{y, [{a, 2}]}], {[], [{a, 2}]}}"));
        // B removed x: A's delta holds nothing B lacks.
        let r = s("{[], {[{a, 1}], []}}");
        let d = b.delta(&r).unwrap();
        same(&enc(&d), &t("{[], {[], []}}"));
        // A removed x, B still holds it: the delta carries the removal.
        let d = r.delta(&b).unwrap();
        same(&enc(&d), &t("{[], {[{a, 1}], []}}"));
        assert!(b.merge(&d).unwrap().into_state(&b, &d).equal(&r).unwrap());
    }

    #[test]
    fn laws_on_random_replicas_test() {
        let mut rng = Rng(3);
        let actors = ["a", "b", "{n, 1}"];
        let mut reps = vec![AWSet::<TT>::bottom(); 3];
        for _ in 0..400 {
            let i = rng.next(3) as usize;
            let e = format!("{}", rng.next(6));
            match rng.next(4) {
                0 => reps[i] = mutate(&reps[i], "rmv", &e, actors[i]),
                1 => {
                    let j = rng.next(3) as usize;
                    let (x, y) = (reps[i].clone(), reps[j].clone());
                    let m = x.merge(&y).unwrap().into_state(&x, &y);
                    let n = y.merge(&x).unwrap().into_state(&y, &x);
                    assert!(m.equal(&n).unwrap(), "commutative");
                    assert!(x.is_inflation(&m).unwrap() && y.is_inflation(&m).unwrap());
                    let d = x.delta(&y).unwrap();
                    assert!(d.merge(&y).unwrap().into_state(&d, &y).equal(&m).unwrap());
                    reps[i] = m;
                }
                _ => reps[i] = mutate(&reps[i], "add", &e, actors[i]),
            }
        }
    }
}
