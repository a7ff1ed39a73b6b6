//! The two causal flags, `state_ewflag` and `state_dwflag`: one lattice,
//! parameterised by which operation wins.
//!
//! Payload: `{DotSet, CC}`, where `DotSet` is an ordset of dots and
//! `CC = {Compressed, Cloud}` is a causal context (see [`crate::causal`]).
//! Bottom `{[], {[], []}}`.
//!
//! - Merge: identical payloads give the first argument as is. Otherwise the
//!   context is `CCunion(CCA, CCB)` and the dot set is
//!   `U(I(DA, DB), U(DA \ CCB, DB \ CCA))`.
//! - Equal: `PayloadA == PayloadB`. Inflation: generic,
//!   `equal(merge(A, B), B)`. Bottom: `== new()`.
//! - `delta(A, B)`: the join of A's join-irreducible parts that strictly
//!   inflate B (each dot B has not seen, and the context dots B lacks or
//!   still holds although A covered them).
//! - Operations: the winning one (`enable` for ewflag, `disable` for
//!   dwflag) adds a fresh dot of the actor, with a delta context covering
//!   the current dots and the new one; the other is a delta with no dot
//!   whose context covers the current dots. A concurrent winning operation
//!   therefore wins.
//! - Query: ewflag is enabled when the dot set is not empty; dwflag when it
//!   is empty.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker, Carlos Baquero, *Delta State
//! Replicated Data Types* (2016).

use crate::causal::{Causal, Kind};
use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Term};

/// The type atom of a flag.
const fn tag(enable_wins: bool) -> Atom {
    if enable_wins {
        Atom::StateEwflag
    } else {
        Atom::StateDwflag
    }
}

/// A causal flag: enable-wins when `ENABLE_WINS`, disable-wins otherwise.
/// Use it through [`EWFlag`](crate::types::EWFlag) and
/// [`DWFlag`](crate::types::DWFlag).
#[derive(Debug, Clone)]
pub struct Flag<T, const ENABLE_WINS: bool> {
    state: Causal<T>,
}

impl<T: Term, const ENABLE_WINS: bool> Flag<T, ENABLE_WINS> {
    /// The causal state.
    pub fn causal(&self) -> &Causal<T> {
        &self.state
    }

    /// The flag's value: `not dot_set:is_empty(Dots)` for ewflag,
    /// `dot_set:is_empty(Dots)` for dwflag.
    pub fn value(&self) -> bool {
        let empty = self.state.store().value_len(0) == 0;
        empty != ENABLE_WINS
    }
}

impl<T: Term, const ENABLE_WINS: bool> Lattice<T> for Flag<T, ENABLE_WINS> {
    const TAG: Atom = tag(ENABLE_WINS);

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        Ok(Flag {
            state: Causal::decode(payload, &Kind::Set, d, Self::TAG)?,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        self.state.encode(b)
    }

    fn bottom() -> Self {
        Flag {
            state: Causal::bottom(&Kind::Set),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        Ok(match self.state.merge(&other.state, Self::TAG)? {
            Merged::Left => Merged::Left,
            Merged::Right => Merged::Right,
            Merged::New(state) => Merged::New(Flag { state }),
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.state.equal(&other.state))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        self.state.is_inflation(&other.state, Self::TAG)
    }

    fn is_bottom(&self) -> bool {
        self.state.is_bottom()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(b.bool(self.value()))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(Flag {
            state: self.state.delta(&other.state, Self::TAG)?,
        })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        // The winning operation adds a fresh dot; the other covers the dots
        // seen so far.
        let (wins, loses) = if ENABLE_WINS {
            (Atom::Enable, Atom::Disable)
        } else {
            (Atom::Disable, Atom::Enable)
        };
        let state = if op.is_atom(wins) {
            self.state.set_add_dot(actor)?
        } else if op.is_atom(loses) {
            self.state.set_cover(actor)
        } else {
            return Err(BadCrdt::UnknownOp(Self::TAG).into());
        };
        Ok(Flag { state })
    }
}

#[cfg(test)]
mod test {
    //! Every check runs on both flags: the payloads are the same, only the
    //! names of the winning and the losing operation and the value read
    //! from the dot set change.
    use super::*;
    use crate::testing::{dec, enc, merged, same, t, Cx, Rng, TB, TT};

    /// (winning operation, losing operation)
    fn ops<const W: bool>() -> (&'static str, &'static str) {
        if W {
            ("enable", "disable")
        } else {
            ("disable", "enable")
        }
    }

    fn f<const W: bool>(p: &str) -> Flag<TT, W> {
        dec(p).unwrap()
    }

    fn mutate<const W: bool>(x: &Flag<TT, W>, op: &str, actor: &str) -> Flag<TT, W> {
        x.mutate(&t(op), &t(actor), &mut Cx::default()).unwrap()
    }

    fn delta_mutate<const W: bool>(x: &Flag<TT, W>, op: &str, actor: &str) -> TT {
        enc(&x
            .delta_mutate(&t(op), &t(actor), &mut Cx::default())
            .unwrap())
    }

    fn roundtrip<const W: bool>() {
        let p = "{[{a, 1}, {b, 3}], {[{a, 1}], [{b, 3}]}}";
        same(&enc(&f::<W>(p)), &t(p));
        same(&enc(&Flag::<TT, W>::bottom()), &t("{[], {[], []}}"));
        assert!(Flag::<TT, W>::bottom().is_bottom());
        assert!(!f::<W>("{[], {[{2, 3}], []}}").is_bottom());
    }

    #[test]
    fn decode_roundtrip_test() {
        roundtrip::<true>();
        roundtrip::<false>();
    }

    fn rejects<const W: bool>() {
        let bad = |p: &str| dec::<Flag<TT, W>>(p).unwrap_err();
        let tag = tag(W);
        assert_eq!(bad("{[a], {[], []}}"), BadCrdt::Malformed(tag));
        assert_eq!(bad("{[{a, 0}], {[], []}}"), BadCrdt::Malformed(tag));
        assert_eq!(bad("{[{a, x}], {[], []}}"), BadCrdt::Malformed(tag));
        assert_eq!(bad("{[{b, 1}, {a, 1}], {[], []}}"), BadCrdt::Unsorted(tag));
        assert_eq!(
            bad("{[{1, 1}, {1.0, 1}], {[], []}}"),
            BadCrdt::Unsorted(tag)
        );
        assert_eq!(bad("{[], {[{a, 1}, {a, 2}], []}}"), BadCrdt::Unsorted(tag));
        assert_eq!(bad("{[{a, 1} | x], {[], []}}"), BadCrdt::ImproperList(tag));
        assert_eq!(bad("{[], {x, []}}"), BadCrdt::Malformed(tag));
        assert_eq!(bad("{[], {[], []}, x}"), BadCrdt::Malformed(tag));
    }

    #[test]
    fn decode_rejects_bad_payload_test() {
        rejects::<true>();
        rejects::<false>();
    }

    // types' delta_mutate_test, actors 1 and 2, with the winning and the
    // losing operation in the places of ewflag's enable and disable.
    fn mutates<const W: bool>() {
        let (wins, loses) = ops::<W>();
        let f0 = Flag::<TT, W>::bottom();
        same(
            &delta_mutate(&f0, wins, "1"),
            &t("{[{1, 1}], {[{1, 1}], []}}"),
        );
        let f1 = mutate(&f0, wins, "1");
        same(
            &delta_mutate(&f1, wins, "2"),
            &t("{[{2, 1}], {[{1, 1}, {2, 1}], []}}"),
        );
        let f2 = mutate(&f1, wins, "2");
        same(&enc(&f2), &t("{[{2, 1}], {[{1, 1}, {2, 1}], []}}"));
        same(&delta_mutate(&f2, loses, "2"), &t("{[], {[{2, 1}], []}}"));
        let f3 = mutate(&f2, loses, "2");
        same(&enc(&f3), &t("{[], {[{1, 1}, {2, 1}], []}}"));
        same(
            &delta_mutate(&f3, wins, "2"),
            &t("{[{2, 2}], {[], [{2, 2}]}}"),
        );
        let f4 = mutate(&f3, wins, "2");
        same(&enc(&f4), &t("{[{2, 2}], {[{1, 1}, {2, 2}], []}}"));
        // ewflag starts disabled and is enabled by a dot; dwflag the reverse.
        assert_eq!(f0.value(), !W);
        assert_eq!(f4.value(), W);
        same(
            &f3.query(&TB).unwrap(),
            &t(if W { "false" } else { "true" }),
        );
    }

    #[test]
    fn mutate_test() {
        mutates::<true>();
        mutates::<false>();
    }

    fn merges<const W: bool>() {
        let f1 = f::<W>("{[], {[{1, 1}], []}}");
        let f2 = f::<W>("{[{2, 3}], {[{1, 1}, {2, 3}], []}}");
        let f3 = f::<W>("{[{1, 1}, {2, 3}], {[{1, 1}, {2, 3}], []}}");
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
        let d1 = f::<W>("{[], {[{1, 1}], []}}");
        let d2 = f::<W>("{[], {[{2, 3}], []}}");
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
    fn merge_test() {
        merges::<true>();
        merges::<false>();
    }

    fn compresses<const W: bool>() {
        let a = f::<W>("{[{a, 3}], {[{a, 1}], [{a, 3}]}}");
        let b = f::<W>("{[{a, 2}], {[], [{a, 2}]}}");
        same(
            &merged(&a, &b).unwrap(),
            &t("{[{a, 2}, {a, 3}], {[{a, 3}], []}}"),
        );
        // The identity shortcut leaves an uncompressed context as it is.
        let c = f::<W>("{[], {[], [{a, 1}]}}");
        same(&merged(&c, &c.clone()).unwrap(), &t("{[], {[], [{a, 1}]}}"));
        same(
            &merged(&c, &Flag::bottom()).unwrap(),
            &t("{[], {[{a, 1}], []}}"),
        );
    }

    #[test]
    fn merge_compresses_the_context_test() {
        compresses::<true>();
        compresses::<false>();
    }

    fn inflations<const W: bool>() {
        let f1 = f::<W>("{[{1, 1}, {2, 3}], {[{1, 1}, {2, 3}], []}}");
        let f2 = f::<W>("{[{2, 3}], {[{1, 1}, {2, 3}], []}}");
        let f3 = f::<W>("{[{1, 1}], {[{1, 1}, {2, 3}], []}}");
        assert!(f1.is_inflation(&f1).unwrap());
        assert!(f1.is_inflation(&f2).unwrap());
        assert!(!f2.is_inflation(&f1).unwrap());
        assert!(f1.is_inflation(&f3).unwrap());
        assert!(!f2.is_inflation(&f3).unwrap());
        assert!(!f3.is_inflation(&f2).unwrap());
        assert!(f1.is_strict_inflation(&f2).unwrap());
        assert!(!f1.is_strict_inflation(&f1).unwrap());
        assert!(!f1.equal(&f2).unwrap());
        assert!(f::<W>("{[{1, 1}], {[{1, 1}], []}}")
            .equal(&f::<W>("{[{1.0, 1}], {[{1, 1}], []}}"))
            .unwrap());
    }

    #[test]
    fn equal_inflation_test() {
        inflations::<true>();
        inflations::<false>();
    }

    fn mutate_errors<const W: bool>() {
        let f0 = Flag::<TT, W>::bottom();
        let arg = format!("{{{}, x}}", ops::<W>().0);
        for o in ["toggle", arg.as_str(), "1"] {
            match f0.delta_mutate(&t(o), &t("a"), &mut Cx::default()) {
                Err(MutateError::Bad(e)) => assert_eq!(e, BadCrdt::UnknownOp(tag(W))),
                other => panic!("{o}: {other:?}"),
            }
        }
    }

    #[test]
    fn mutate_errors_test() {
        mutate_errors::<true>();
        mutate_errors::<false>();
    }

    fn laws<const W: bool>() {
        let (wins, loses) = ops::<W>();
        let mut rng = Rng(5);
        let actors = ["a", "b", "c"];
        let mut reps = vec![Flag::<TT, W>::bottom(); 3];
        for _ in 0..300 {
            let i = rng.next(3) as usize;
            match rng.next(3) {
                0 => reps[i] = mutate(&reps[i], wins, actors[i]),
                1 => reps[i] = mutate(&reps[i], loses, actors[i]),
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

    #[test]
    fn delta_and_laws_test() {
        laws::<true>();
        laws::<false>();
    }
}
