//! `state_ewflag`: an enable-wins flag.
//!
//! Payload: `{DotSet, CC}`, where `DotSet` is an ordset of dots and
//! `CC = {Compressed, Cloud}` is a causal context (see [`crate::causal`]).
//! Bottom `{[], {[], []}}`: the flag starts disabled.
//!
//! - Merge: identical payloads give the first argument as is. Otherwise the
//!   context is `CCunion(CCA, CCB)` and the dot set is
//!   `U(I(DA, DB), U(DA \ CCB, DB \ CCA))`.
//! - Equal: `PayloadA == PayloadB`. Inflation: generic,
//!   `equal(merge(A, B), B)`. Bottom: `== new()`.
//! - Query: `true` when the dot set is not empty.
//! - `delta(A, B)`: the join of A's join-irreducible parts that strictly
//!   inflate B (each dot B has not seen, and the context dots B lacks or
//!   still holds although A covered them).
//! - Operations: `enable` adds a fresh dot of the actor, with a delta
//!   context covering the current dots and the new one; `disable` is a
//!   delta with no dot whose context covers the current dots. A concurrent
//!   `enable` therefore wins.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker, Carlos Baquero, *Delta State
//! Replicated Data Types* (2016).

use crate::types::flag::Flag;

/// An enable-wins flag: `Flag<T, true>`.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::lattice::{Lattice, MutateCx};
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::EWFlag;
///
/// struct Cx(OwnedBuilder);
/// impl MutateCx<T> for Cx {
///     type B = OwnedBuilder;
///     fn builder(&self) -> &OwnedBuilder { &self.0 }
///     fn token(&mut self) -> T { self.0.binary(&[0; 20]) }
/// }
/// let (b, mut cx) = (OwnedBuilder, Cx(OwnedBuilder));
///
/// let f0 = EWFlag::<T>::bottom();
/// assert_eq!(f0.query(&b).unwrap(), b.bool(false));
/// let on = f0.mutate(&T::atom("enable"), &T::atom("alice"), &mut cx).unwrap();
/// assert_eq!(on.query(&b).unwrap(), b.bool(true));
/// // Carol covers what she has seen while Alice enables again: Alice wins.
/// let carol = on.mutate(&T::atom("disable"), &T::atom("carol"), &mut cx).unwrap();
/// let alice = on.mutate(&T::atom("enable"), &T::atom("alice"), &mut cx).unwrap();
/// let m = carol.merge(&alice).unwrap().into_state(&carol, &alice);
/// assert_eq!(m.query(&b).unwrap(), b.bool(true));
/// ```
pub type EWFlag<T> = Flag<T, true>;

#[cfg(test)]
mod test {
    use super::*;
    use crate::error::{BadCrdt, MutateError};
    use crate::lattice::{Lattice, Merged};
    use crate::term::Atom;

    const TAG: Atom = Atom::StateEwflag;
    use crate::causal::testing::{dec, enc, merged, same, t, Cx, Rng, TB, TT};

    fn f(p: &str) -> EWFlag<TT> {
        dec(p).unwrap()
    }

    fn mutate(x: &EWFlag<TT>, op: &str, actor: &str) -> EWFlag<TT> {
        x.mutate(&t(op), &t(actor), &mut Cx).unwrap()
    }

    fn delta_mutate(x: &EWFlag<TT>, op: &str, actor: &str) -> TT {
        enc(&x.delta_mutate(&t(op), &t(actor), &mut Cx).unwrap())
    }

    #[test]
    fn decode_roundtrip_test() {
        let p = "{[{a, 1}, {b, 3}], {[{a, 1}], [{b, 3}]}}";
        same(&enc(&f(p)), &t(p));
        same(&enc(&EWFlag::<TT>::bottom()), &t("{[], {[], []}}"));
        assert!(EWFlag::<TT>::bottom().is_bottom());
        assert!(!f("{[], {[{2, 3}], []}}").is_bottom());
    }

    #[test]
    fn decode_rejects_bad_payload_test() {
        let bad = |p: &str| dec::<EWFlag<TT>>(p).unwrap_err();
        assert_eq!(bad("{[a], {[], []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(bad("{[{a, 0}], {[], []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(bad("{[{a, x}], {[], []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(bad("{[{b, 1}, {a, 1}], {[], []}}"), BadCrdt::Unsorted(TAG));
        assert_eq!(
            bad("{[{1, 1}, {1.0, 1}], {[], []}}"),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(bad("{[], {[{a, 1}, {a, 2}], []}}"), BadCrdt::Unsorted(TAG));
        assert_eq!(bad("{[{a, 1} | x], {[], []}}"), BadCrdt::ImproperList(TAG));
        assert_eq!(bad("{[], {x, []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(bad("{[], {[], []}, x}"), BadCrdt::Malformed(TAG));
    }

    #[test]
    fn mutate_test() {
        // types' delta_mutate_test, actors 1 and 2.
        let f0 = EWFlag::<TT>::bottom();
        same(
            &delta_mutate(&f0, "enable", "1"),
            &t("{[{1, 1}], {[{1, 1}], []}}"),
        );
        let f1 = mutate(&f0, "enable", "1");
        same(
            &delta_mutate(&f1, "enable", "2"),
            &t("{[{2, 1}], {[{1, 1}, {2, 1}], []}}"),
        );
        let f2 = mutate(&f1, "enable", "2");
        same(&enc(&f2), &t("{[{2, 1}], {[{1, 1}, {2, 1}], []}}"));
        same(
            &delta_mutate(&f2, "disable", "2"),
            &t("{[], {[{2, 1}], []}}"),
        );
        let f3 = mutate(&f2, "disable", "2");
        same(&enc(&f3), &t("{[], {[{1, 1}, {2, 1}], []}}"));
        same(
            &delta_mutate(&f3, "enable", "2"),
            &t("{[{2, 2}], {[], [{2, 2}]}}"),
        );
        let f4 = mutate(&f3, "enable", "2");
        same(&enc(&f4), &t("{[{2, 2}], {[{1, 1}, {2, 2}], []}}"));
        assert!(!f0.value());
        assert!(f4.value());
        same(&f3.query(&TB).unwrap(), &t("false"));
    }

    #[test]
    fn merge_test() {
        let f1 = f("{[], {[{1, 1}], []}}");
        let f2 = f("{[{2, 3}], {[{1, 1}, {2, 3}], []}}");
        let f3 = f("{[{1, 1}, {2, 3}], {[{1, 1}, {2, 3}], []}}");
        for (a, b) in [
            (&f1, &f2),
            (&f2, &f1),
            (&f1, &f3),
            (&f3, &f1),
            (&f2, &f3),
            (&f3, &f2),
        ] {
            same(&merged(a, b).unwrap(), &enc(&f2));
        }
        for x in [&f1, &f2, &f3] {
            assert!(matches!(x.merge(&x.clone()).unwrap(), Merged::Left));
        }
        // types' merge_delta_test.
        let d1 = f("{[], {[{1, 1}], []}}");
        let d2 = f("{[], {[{2, 3}], []}}");
        same(
            &merged(&d1, &f3).unwrap(),
            &t("{[{2, 3}], {[{1, 1}, {2, 3}], []}}"),
        );
        same(
            &merged(&f3, &d2).unwrap(),
            &t("{[{1, 1}], {[{1, 1}, {2, 3}], []}}"),
        );
        same(
            &merged(&d1, &d2).unwrap(),
            &t("{[], {[{1, 1}, {2, 3}], []}}"),
        );
    }

    #[test]
    fn merge_compresses_the_context_test() {
        let a = f("{[{a, 3}], {[{a, 1}], [{a, 3}]}}");
        let b = f("{[{a, 2}], {[], [{a, 2}]}}");
        same(
            &merged(&a, &b).unwrap(),
            &t("{[{a, 2}, {a, 3}], {[{a, 3}], []}}"),
        );
        // The identity shortcut leaves an uncompressed context as it is.
        let c = f("{[], {[], [{a, 1}]}}");
        same(&merged(&c, &c.clone()).unwrap(), &t("{[], {[], [{a, 1}]}}"));
        same(
            &merged(&c, &EWFlag::bottom()).unwrap(),
            &t("{[], {[{a, 1}], []}}"),
        );
    }

    #[test]
    fn equal_inflation_test() {
        let f1 = f("{[{1, 1}, {2, 3}], {[{1, 1}, {2, 3}], []}}");
        let f2 = f("{[{2, 3}], {[{1, 1}, {2, 3}], []}}");
        let f3 = f("{[{1, 1}], {[{1, 1}, {2, 3}], []}}");
        assert!(f1.is_inflation(&f1).unwrap());
        assert!(f1.is_inflation(&f2).unwrap());
        assert!(!f2.is_inflation(&f1).unwrap());
        assert!(f1.is_inflation(&f3).unwrap());
        assert!(!f2.is_inflation(&f3).unwrap());
        assert!(!f3.is_inflation(&f2).unwrap());
        assert!(f1.is_strict_inflation(&f2).unwrap());
        assert!(!f1.is_strict_inflation(&f1).unwrap());
        assert!(!f1.equal(&f2).unwrap());
        assert!(f("{[{1, 1}], {[{1, 1}], []}}")
            .equal(&f("{[{1.0, 1}], {[{1, 1}], []}}"))
            .unwrap());
    }

    #[test]
    fn mutate_errors_test() {
        let f0 = EWFlag::<TT>::bottom();
        for o in ["toggle", "{enable, x}", "1"] {
            match f0.delta_mutate(&t(o), &t("a"), &mut Cx) {
                Err(MutateError::Bad(e)) => assert_eq!(e, BadCrdt::UnknownOp(TAG)),
                other => panic!("{o}: {other:?}"),
            }
        }
    }

    #[test]
    fn delta_and_laws_test() {
        let mut rng = Rng(5);
        let actors = ["a", "b", "c"];
        let mut reps = vec![EWFlag::<TT>::bottom(); 3];
        for _ in 0..300 {
            let i = rng.next(3) as usize;
            match rng.next(3) {
                0 => reps[i] = mutate(&reps[i], "enable", actors[i]),
                1 => reps[i] = mutate(&reps[i], "disable", actors[i]),
                _ => {
                    let j = rng.next(3) as usize;
                    let (x, y) = (reps[i].clone(), reps[j].clone());
                    let m = x.merge(&y).unwrap().into_state(&x, &y);
                    assert!(m.equal(&y.merge(&x).unwrap().into_state(&y, &x)).unwrap());
                    let d = x.delta(&y).unwrap();
                    assert!(d.merge(&y).unwrap().into_state(&d, &y).equal(&m).unwrap());
                    assert!(x.is_inflation(&m).unwrap() && y.is_inflation(&m).unwrap());
                    reps[i] = m;
                }
            }
        }
    }
}
