//! `state_mvregister`: a multi-value register.
//!
//! Payload: `{DotFun, CC}`, where `DotFun` is an orddict `Dot -> Value` and
//! `CC = {Compressed, Cloud}` is a causal context (see [`crate::causal`]).
//! Bottom `{[], {[], []}}`.
//!
//! - Merge: identical payloads give the first argument as is. Otherwise the
//!   context is `CCunion(CCA, CCB)`, and the dot fun is built as types
//!   does: for each dot of `I(dots(A), dots(B))`, in ascending order, the
//!   `state_ivar` merge of the two values (two different values make types
//!   raise, refused here as `{conflict, state_mvregister}`); then
//!   `orddict:store` of every entry of `A \ CCB`, then of `B \ CCA`.
//! - Equal: `PayloadA == PayloadB`. Inflation: generic,
//!   `equal(merge(A, B), B)`. Bottom: `== new()`.
//! - Query: the values, sorted in term order, `=:=` duplicates removed (types
//!   returns a `sets` set).
//! - `delta(A, B)`: the join of A's join-irreducible parts that strictly
//!   inflate B (each `(dot, value)` B has not seen, and the context dots B
//!   lacks or still holds although A overwrote them).
//! - Operation: `{set, Timestamp, Value}` (the timestamp is ignored): a
//!   fresh dot of the actor holding `Value`, with a delta context covering
//!   every current dot.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker, Carlos Baquero, *Delta State
//! Replicated Data Types* (2016).

use std::cmp::Ordering;

use crate::causal::{add_element, cc_from_dots, Causal, Kind};
use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Term};

const TAG: Atom = Atom::StateMvregister;

/// A multi-value register: concurrent writes are all kept.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::lattice::{Lattice, MutateCx};
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::MVRegister;
///
/// struct Cx(OwnedBuilder);
/// impl MutateCx<T> for Cx {
///     type B = OwnedBuilder;
///     fn builder(&self) -> &OwnedBuilder { &self.0 }
///     fn token(&mut self) -> T { self.0.binary(&[0; 20]) }
/// }
/// let (b, mut cx) = (OwnedBuilder, Cx(OwnedBuilder));
/// let set = |v: &str| b.tuple(&[T::atom("set"), b.int(0), T::atom(v)]);
///
/// let r0 = MVRegister::<T>::bottom();
/// let a = r0.mutate(&set("x"), &T::atom("alice"), &mut cx).unwrap();
/// let c = r0.mutate(&set("y"), &T::atom("carol"), &mut cx).unwrap();
/// let m = a.merge(&c).unwrap().into_state(&a, &c);
/// assert_eq!(m.query(&b).unwrap(), b.list(&[T::atom("x"), T::atom("y")]));
/// // A later write overwrites both.
/// let m = m.mutate(&set("z"), &T::atom("alice"), &mut cx).unwrap();
/// assert_eq!(m.query(&b).unwrap(), b.list(&[T::atom("z")]));
/// ```
#[derive(Debug, Clone)]
pub struct MVRegister<T> {
    state: Causal<T>,
}

impl<T: Term> MVRegister<T> {
    /// The causal state.
    pub fn causal(&self) -> &Causal<T> {
        &self.state
    }

    /// The stored values, in dot order.
    pub fn values(&self) -> &[T] {
        self.state.fun_values()
    }
}

impl<T: Term> Lattice<T> for MVRegister<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        Ok(MVRegister {
            state: Causal::decode(payload, &Kind::Fun, d, TAG)?,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        self.state.encode(b)
    }

    fn bottom() -> Self {
        MVRegister {
            state: Causal::bottom(&Kind::Fun),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        Ok(match self.state.merge(&other.state, TAG)? {
            Merged::Left => Merged::Left,
            Merged::Right => Merged::Right,
            Merged::New(state) => Merged::New(MVRegister { state }),
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
        // types builds its set from the values in dot order
        // (`sets:from_list/1`), and a `sets` set's term depends on the
        // order its elements came in. So the values go out in dot order,
        // each `=:=` duplicate after its first occurrence dropped (adding
        // it again would not change the set); `==` values that differ (1
        // and 1.0) both stay. Duplicates are found by sorting positions.
        let vals = self.values();
        let mut order: Vec<usize> = (0..vals.len()).collect();
        order.sort_by(|&x, &y| vals[x].compare(&vals[y]).then(x.cmp(&y)));
        let mut dropped = vec![false; vals.len()];
        let mut class = 0;
        for i in 1..order.len() {
            let v = &vals[order[i]];
            if vals[order[class]].compare(v) != Ordering::Equal {
                class = i;
                continue;
            }
            // Same `==` class: earlier positions come first in `order`.
            if order[class..i]
                .iter()
                .any(|&j| !dropped[j] && vals[j].identical(v))
            {
                dropped[order[i]] = true;
            }
        }
        let out: Vec<T> = vals
            .iter()
            .zip(&dropped)
            .filter(|(_, &d)| !d)
            .map(|(v, _)| v.clone())
            .collect();
        Ok(b.list(&out))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(MVRegister {
            state: self.state.delta(&other.state, TAG)?,
        })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let is_set =
            op.tuple_arity() == Some(3) && op.tuple_elem(0).is_some_and(|n| n.is_atom(Atom::Set));
        let value = match op.tuple_elem(2) {
            Some(v) if is_set => v,
            _ => return Err(BadCrdt::UnknownOp(TAG).into()),
        };
        let ext = self.state.extend(actor);
        let next = ext.dot(self.state.next_seq(&ext)?);
        // `from_dot_set(add_element(Next, dots(Fun)))`.
        let mut dots = self.state.top_dots(&ext);
        add_element(&mut dots, next);
        let cc = cc_from_dots(&dots, ext.rank());
        Ok(MVRegister {
            state: Causal::new_fun(ext, vec![(next, value)], cc),
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testing::{dec, enc, merged, same, t, Cx, Rng, TB, TT};

    fn r(p: &str) -> MVRegister<TT> {
        dec(p).unwrap()
    }

    fn set(x: &MVRegister<TT>, v: &str, actor: &str) -> MVRegister<TT> {
        x.mutate(
            &t(&format!("{{set, 0, {v}}}")),
            &t(actor),
            &mut Cx::default(),
        )
        .unwrap()
    }

    fn delta_set(x: &MVRegister<TT>, v: &str, actor: &str) -> TT {
        enc(&x
            .delta_mutate(
                &t(&format!("{{set, 0, {v}}}")),
                &t(actor),
                &mut Cx::default(),
            )
            .unwrap())
    }

    #[test]
    fn decode_roundtrip_test() {
        let p = "{[{{a, 1}, x}, {{b, 3}, [1, 2]}], {[{a, 1}], [{b, 3}]}}";
        same(&enc(&r(p)), &t(p));
        same(&enc(&MVRegister::<TT>::bottom()), &t("{[], {[], []}}"));
        assert!(MVRegister::<TT>::bottom().is_bottom());
        assert!(!r("{[], {[{a, 1}], []}}").is_bottom());
    }

    #[test]
    fn decode_rejects_bad_payload_test() {
        let bad = |p: &str| dec::<MVRegister<TT>>(p).unwrap_err();
        assert_eq!(bad("{[{a, 1}], {[], []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(bad("{[{{a, 0}, x}], {[], []}}"), BadCrdt::Malformed(TAG));
        assert_eq!(
            bad("{[{{b, 1}, x}, {{a, 1}, y}], {[], []}}"),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            bad("{[{{a, 1}, x}, {{a, 1}, y}], {[], []}}"),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            bad("{[{{a, 1}, x} | z], {[], []}}"),
            BadCrdt::ImproperList(TAG)
        );
        assert_eq!(bad("{[], {[], [{a, 1} | z]}}"), BadCrdt::ImproperList(TAG));
        assert_eq!(bad("{[], {[], []}, x}"), BadCrdt::Malformed(TAG));
    }

    #[test]
    fn mutate_test() {
        // types' own mutate_test, actors 1 and 2.
        let r0 = MVRegister::<TT>::bottom();
        same(
            &delta_set(&r0, "x", "1"),
            &t("{[{{1, 1}, x}], {[{1, 1}], []}}"),
        );
        let r1 = set(&r0, "x", "1");
        same(&enc(&r1), &t("{[{{1, 1}, x}], {[{1, 1}], []}}"));
        same(
            &delta_set(&r1, "y", "2"),
            &t("{[{{2, 1}, y}], {[{1, 1}, {2, 1}], []}}"),
        );
        let r2 = set(&r1, "y", "2");
        same(&enc(&r2), &t("{[{{2, 1}, y}], {[{1, 1}, {2, 1}], []}}"));
        same(
            &delta_set(&r2, "x", "2"),
            &t("{[{{2, 2}, x}], {[{2, 2}], []}}"),
        );
        let r3 = set(&r2, "x", "2");
        same(&enc(&r3), &t("{[{{2, 2}, x}], {[{1, 1}, {2, 2}], []}}"));
    }

    #[test]
    fn merge_test() {
        let r1 = r("{[{{1, 1}, x}], {[{1, 1}], []}}");
        let r2 = r("{[{{1, 1}, x}, {{2, 1}, y}], {[{1, 1}, {2, 1}], []}}");
        let r3 = r("{[{{2, 1}, y}], {[{2, 1}], []}}");
        for (a, b) in [
            (&r1, &r2),
            (&r2, &r1),
            (&r1, &r3),
            (&r3, &r1),
            (&r2, &r3),
            (&r3, &r2),
        ] {
            same(&merged(a, b).unwrap(), &enc(&r2));
        }
        assert!(matches!(r1.merge(&r2).unwrap(), Merged::Right));
        assert!(matches!(r2.merge(&r3).unwrap(), Merged::Left));
        // Two different values on one dot: types raises.
        let c = r("{[{{1, 1}, z}], {[{1, 1}], []}}");
        assert_eq!(r1.merge(&c).unwrap_err(), BadCrdt::Conflict(TAG));
        let f = r("{[{{1, 1}, 1.0}], {[{1, 1}], []}}");
        let i = r("{[{{1, 1}, 1}], {[{1, 1}], []}}");
        assert_eq!(f.merge(&i).unwrap_err(), BadCrdt::Conflict(TAG));
        assert!(f.equal(&i).unwrap());
    }

    #[test]
    fn merge_store_order_test() {
        // A dot held by both but unseen by B's context: the intersection's
        // ivar value is overwritten by A's entry, then by B's (undefined
        // gives way in the first step only).
        let a = r("{[{{1, 1}, undefined}], {[], []}}");
        let b = r("{[{{1, 1}, v}], {[], []}}");
        same(&merged(&a, &b).unwrap(), &t("{[{{1, 1}, v}], {[], []}}"));
        same(
            &merged(&b, &a).unwrap(),
            &t("{[{{1, 1}, undefined}], {[], []}}"),
        );
    }

    #[test]
    fn query_test() {
        same(&MVRegister::<TT>::bottom().query(&TB).unwrap(), &t("[]"));
        let x = r("{[{{a, 1}, z}, {{b, 1}, 1.0}, {{c, 1}, z}, {{d, 1}, 1}, {{e, 1}, a}], {[{a, 1}, {b, 1}, {c, 1}, {d, 1}, {e, 1}], []}}");
        // Dot order, the second `z` dropped, `1.0` and `1` both kept.
        same(&x.query(&TB).unwrap(), &t("[z, 1.0, 1, a]"));
    }

    #[test]
    fn equal_inflation_test() {
        let r1 = r("{[{{1, 1}, x}], {[{1, 1}], []}}");
        let r2 = r("{[{{1, 1}, x}, {{2, 1}, y}], {[{1, 1}, {2, 1}], []}}");
        let r3 = r("{[{{2, 1}, y}], {[{2, 1}], []}}");
        assert!(r1.is_inflation(&r1).unwrap());
        assert!(r1.is_inflation(&r2).unwrap());
        assert!(!r2.is_inflation(&r1).unwrap());
        assert!(!r1.is_inflation(&r3).unwrap());
        assert!(r3.is_inflation(&r2).unwrap());
        assert!(r1.is_strict_inflation(&r2).unwrap());
        assert!(!r1.equal(&r2).unwrap());
    }

    #[test]
    fn mutate_errors_test() {
        let r0 = MVRegister::<TT>::bottom();
        for o in ["{set, x}", "set", "{put, 0, x}", "{set, 0, x, y}"] {
            match r0.delta_mutate(&t(o), &t("a"), &mut Cx::default()) {
                Err(MutateError::Bad(e)) => assert_eq!(e, BadCrdt::UnknownOp(TAG)),
                other => panic!("{o}: {other:?}"),
            }
        }
    }

    #[test]
    fn delta_and_laws_test() {
        let mut rng = Rng(11);
        let actors = ["a", "b", "c"];
        let mut reps = vec![MVRegister::<TT>::bottom(); 3];
        for _ in 0..300 {
            let i = rng.next(3) as usize;
            if rng.next(2) == 0 {
                reps[i] = set(&reps[i], &format!("{}", rng.next(4)), actors[i]);
            } else {
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
