//! `state_lwwregister`: a last-writer-wins register.
//!
//! Payload: `{Timestamp, Value}`. Bottom is `{0, undefined}`. The caller
//! supplies timestamps, which must be unique and consistent with causality;
//! any integer is accepted, negative ones included.
//!
//! - Merge: A's pair when `TsA > TsB`, otherwise B's pair, so **on a tie the
//!   second argument wins**.
//! - Equal: the pairs are `==`. Inflation: `TsB >= TsA`.
//! - Query: the value.
//! - `delta(A, B)`: types' join decomposition is `[A]`, so the delta is `A`
//!   when `TsA > TsB` and bottom otherwise. When `TsB < 0` (below bottom's
//!   timestamp) bottom would win nothing back, so `A` itself is returned and
//!   `merge(delta(A, B), B)` still equals `merge(A, B)`.
//! - The one operation is `{set, Timestamp, Value}` with an integer
//!   timestamp; its delta is `{Timestamp, Value}` whatever the state holds.
//!
//! A `set` takes any integer timestamp, bignums included (types' guard is
//! `is_integer/1`); a `set` with a non-integer timestamp is an unknown
//! operation, as in types. A payload's timestamp is kept as the term it is
//! and compared in Erlang term order, as types' `>`/`>=` do: a bignum past
//! 64 bits, a negative one or a float equal to an integer merge, compare and
//! decide `is_bottom` exactly as in types.
//!
//! Reference: Marc Shapiro, Nuno Preguiça, Carlos Baquero and Marek
//! Zawirski, *A comprehensive study of Convergent and Commutative Replicated
//! Data Types* (2011), <http://hal.upmc.fr/file/index/docid/555588/filename/techreport.pdf>.

use std::cmp::Ordering;

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Kind, Term};

const TAG: Atom = Atom::StateLwwregister;

/// A last-writer-wins register.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::{Lattice, Merged};
/// use lasp_converge_core::types::LWWRegister;
///
/// use lasp_converge_core::types::lwwregister::Timestamp;
///
/// let a = LWWRegister { ts: Timestamp::Term(T::int(1234)), value: Some(T::atom("a")) };
/// let b = LWWRegister { ts: Timestamp::Term(T::int(1235)), value: Some(T::atom("b")) };
/// assert!(matches!(a.merge(&b).unwrap(), Merged::Right));
/// assert!(matches!(b.merge(&a).unwrap(), Merged::Left));
/// // On equal timestamps the second argument wins.
/// let c = LWWRegister { ts: Timestamp::Term(T::int(1235)), value: Some(T::atom("c")) };
/// // Timestamps past 64 bits order as Erlang orders them.
/// let d = LWWRegister { ts: Timestamp::Term(T::int(1i128 << 70)), value: None };
/// assert!(matches!(d.merge(&c).unwrap(), Merged::Left));
/// assert!(matches!(b.merge(&c).unwrap(), Merged::Right));
/// assert_eq!(b.query(&OwnedBuilder).unwrap(), T::atom("b"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LWWRegister<T> {
    /// The timestamp.
    pub ts: Timestamp<T>,
    /// The value; `None` is the atom `undefined`.
    pub value: Option<T>,
}

/// A timestamp: the integer `0` of the bottom state, or the term a payload
/// or a `set` holds (any integer, bignums included; any term in a payload,
/// which types' comparisons accept too).
#[derive(Debug, Clone, PartialEq)]
pub enum Timestamp<T> {
    /// The integer `0` of `new()`.
    Zero,
    /// A term, compared in Erlang term order.
    Term(T),
}

impl<T: Term> Timestamp<T> {
    /// Erlang's term order (`<`, `==`, `>`) between two timestamps.
    pub fn compare(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Timestamp::Zero, Timestamp::Zero) => Ordering::Equal,
            (Timestamp::Term(a), Timestamp::Term(b)) => a.compare(b),
            (Timestamp::Term(a), Timestamp::Zero) => a.compare_int(0),
            (Timestamp::Zero, Timestamp::Term(b)) => b.compare_int(0).reverse(),
        }
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        match self {
            Timestamp::Zero => b.int(0),
            Timestamp::Term(t) => t.clone(),
        }
    }
}

/// Whether a stored value is the atom `undefined`.
fn is_undefined<T: Term>(v: &Option<T>) -> bool {
    v.as_ref().is_none_or(|t| t.is_atom(Atom::Undefined))
}

/// `==` on stored values.
fn value_eq<T: Term>(a: &Option<T>, b: &Option<T>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x.equal(y),
        (None, v) | (v, None) => is_undefined(v),
    }
}

impl<T: Term> Lattice<T> for LWWRegister<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, _d: &mut Decoder) -> Result<Self> {
        let (ts, value) = payload.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let value = if value.is_atom(Atom::Undefined) {
            None
        } else {
            Some(value)
        };
        Ok(LWWRegister {
            ts: Timestamp::Term(ts),
            value,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        let value = self
            .value
            .clone()
            .unwrap_or_else(|| b.atom(Atom::Undefined));
        b.pair(self.ts.encode(b), value)
    }

    fn bottom() -> Self {
        LWWRegister {
            ts: Timestamp::Zero,
            value: None,
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        Ok(if self.ts.compare(&other.ts).is_gt() {
            Merged::Left
        } else {
            Merged::Right
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.ts.compare(&other.ts).is_eq() && value_eq(&self.value, &other.value))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        Ok(other.ts.compare(&self.ts).is_ge())
    }

    fn is_bottom(&self) -> bool {
        self.ts.compare(&Timestamp::Zero).is_eq() && is_undefined(&self.value)
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(self
            .value
            .clone()
            .unwrap_or_else(|| b.atom(Atom::Undefined)))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(
            if self.ts.compare(&other.ts).is_gt() || other.ts.compare(&Timestamp::Zero).is_lt() {
                self.clone()
            } else {
                Self::bottom()
            },
        )
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        _actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let unknown = || MutateError::from(BadCrdt::UnknownOp(TAG));
        if op.tuple_arity() != Some(3) || !op.tuple_elem(0).is_some_and(|t| t.is_atom(Atom::Set)) {
            return Err(unknown());
        }
        let ts = op.tuple_elem(1).ok_or_else(unknown)?;
        let value = op.tuple_elem(2).ok_or_else(unknown)?;
        if ts.kind() != Kind::Integer {
            return Err(unknown());
        }
        let value = if value.is_atom(Atom::Undefined) {
            None
        } else {
            Some(value)
        };
        Ok(LWWRegister {
            ts: Timestamp::Term(ts),
            value,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};
    use crate::testing::Cx;

    fn r(ts: i128, v: &str) -> LWWRegister<T> {
        LWWRegister {
            ts: Timestamp::Term(T::int(ts)),
            value: Some(T::atom(v)),
        }
    }

    fn decode(t: &T) -> Result<LWWRegister<T>> {
        LWWRegister::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    fn set(ts: T, v: T) -> T {
        OwnedBuilder.tuple(&[T::atom("set"), ts, v])
    }

    #[test]
    fn decode_test() {
        let b = OwnedBuilder;
        let t = b.pair(T::Int(1234), b.list(&[T::Int(97)]));
        let s = decode(&t).unwrap();
        assert_eq!(s.ts, Timestamp::Term(T::Int(1234)));
        assert_eq!(s.encode(&b), t);
        let bottom = b.pair(T::Int(0), T::atom("undefined"));
        assert!(decode(&bottom).unwrap().is_bottom());
        assert_eq!(LWWRegister::<T>::bottom().encode(&b), bottom);
        // Any timestamp term is kept as it is: types' comparisons take it.
        for ts in [T::Int(-5), T::Int(1 << 64), T::Float(1.0), T::atom("a")] {
            let p = b.pair(ts.clone(), T::Nil);
            assert_eq!(decode(&p).unwrap().ts, Timestamp::Term(ts));
            assert_eq!(decode(&p).unwrap().encode(&b), p);
        }
        // `{0.0, undefined} == new()`: bottom, as types' is_bottom says.
        assert!(decode(&b.pair(T::Float(0.0), T::atom("undefined")))
            .unwrap()
            .is_bottom());
        for bad in [
            T::Int(1),
            b.list(&[T::Int(1), T::Int(2)]),
            b.tuple(&[T::Int(1), T::Int(2), T::Int(3)]),
        ] {
            assert_eq!(decode(&bad), Err(BadCrdt::Malformed(TAG)));
        }
    }

    #[test]
    fn merge_keeps_input_test() {
        assert!(matches!(
            r(1235, "b").merge(&r(1234, "a")).unwrap(),
            Merged::Left
        ));
        assert!(matches!(
            r(1234, "a").merge(&r(1235, "b")).unwrap(),
            Merged::Right
        ));
        // Tie: the second argument wins, even over an identical first one.
        assert!(matches!(
            r(1234, "a").merge(&r(1234, "b")).unwrap(),
            Merged::Right
        ));
        assert!(matches!(
            r(1234, "a").merge(&r(1234, "a")).unwrap(),
            Merged::Right
        ));
    }

    #[test]
    fn bignum_timestamps_test() {
        // Past 64 bits, either sign, against small ones and bottom.
        let (hi, hi1, lo) = (
            r(1 << 70, "hi"),
            r((1 << 70) + 1, "hi1"),
            r(-(1 << 70), "lo"),
        );
        assert!(matches!(hi.merge(&hi1).unwrap(), Merged::Right));
        assert!(matches!(hi1.merge(&hi).unwrap(), Merged::Left));
        assert!(matches!(hi.merge(&r(5, "a")).unwrap(), Merged::Left));
        assert!(matches!(lo.merge(&r(-5, "a")).unwrap(), Merged::Right));
        let bottom = LWWRegister::<T>::bottom();
        assert!(matches!(bottom.merge(&lo).unwrap(), Merged::Left));
        assert!(matches!(lo.merge(&bottom).unwrap(), Merged::Right));
        assert!(matches!(hi.merge(&bottom).unwrap(), Merged::Left));
        assert!(hi.is_inflation(&hi1).unwrap());
        assert!(!hi1.is_inflation(&hi).unwrap());
        assert!(!bottom.is_inflation(&lo).unwrap());
        assert!(bottom.is_inflation(&hi).unwrap());
        assert!(hi.equal(&r(1 << 70, "hi")).unwrap());
        assert!(!hi.equal(&hi1).unwrap());
        let s = bottom
            .mutate(
                &set(T::int(1i128 << 100), T::atom("v")),
                &T::Int(1),
                &mut Cx::default(),
            )
            .unwrap();
        assert_eq!(s, r(1 << 100, "v"));
        // A float timestamp in a payload compares by value: 2^70 == 2^70.0.
        let f = LWWRegister {
            ts: Timestamp::Term(T::Float((1u128 << 70) as f64)),
            value: Some(T::atom("hi")),
        };
        assert!(f.equal(&hi).unwrap());
        assert!(matches!(f.merge(&hi).unwrap(), Merged::Right));
        assert!(matches!(hi.merge(&f).unwrap(), Merged::Right));
    }

    #[test]
    fn lattice_test() {
        let r1 = r(1234, "a");
        let r2 = r(1235, "b");
        assert!(r1.equal(&r1).unwrap());
        assert!(!r1.equal(&r2).unwrap());
        assert!(!r1.equal(&r(1234, "b")).unwrap());
        assert!(r1.is_inflation(&r2).unwrap());
        assert!(!r2.is_inflation(&r1).unwrap());
        assert!(r1.is_strict_inflation(&r2).unwrap());
        assert!(!r1.is_strict_inflation(&r1).unwrap());
        // Same timestamp, different value: an inflation, and a strict one.
        assert!(r1.is_inflation(&r(1234, "b")).unwrap());
        assert!(r1.is_strict_inflation(&r(1234, "b")).unwrap());
        assert!(LWWRegister::<T>::bottom().is_bottom());
        assert!(!r1.is_bottom());
        assert!(!r(0, "a").is_bottom());
        assert_eq!(
            LWWRegister::<T>::bottom().query(&OwnedBuilder).unwrap(),
            T::atom("undefined")
        );
        assert_eq!(r1.query(&OwnedBuilder).unwrap(), T::atom("a"));
    }

    #[test]
    fn delta_test() {
        assert_eq!(r(5, "a").delta(&r(3, "b")).unwrap(), r(5, "a"));
        assert_eq!(r(3, "a").delta(&r(5, "b")).unwrap(), LWWRegister::bottom());
        assert_eq!(r(-7, "a").delta(&r(-5, "b")).unwrap(), r(-7, "a"));
    }

    #[test]
    fn mutate_test() {
        let s0 = LWWRegister::bottom();
        let d1 = s0
            .delta_mutate(
                &set(T::Int(1234), T::atom("a")),
                &T::Int(1),
                &mut Cx::default(),
            )
            .unwrap();
        assert_eq!(d1, r(1234, "a"));
        let s1 = s0
            .mutate(
                &set(T::Int(1234), T::atom("a")),
                &T::Int(1),
                &mut Cx::default(),
            )
            .unwrap();
        let s2 = s1
            .mutate(
                &set(T::Int(1235), T::atom("b")),
                &T::Int(1),
                &mut Cx::default(),
            )
            .unwrap();
        assert_eq!(s2, r(1235, "b"));
        // An older set still gives its delta; the merge ignores it.
        let s3 = s2
            .mutate(
                &set(T::Int(1), T::atom("c")),
                &T::Int(1),
                &mut Cx::default(),
            )
            .unwrap();
        assert_eq!(s3, r(1235, "b"));
        for bad in [
            set(T::Float(1.0), T::atom("a")),
            OwnedBuilder.pair(T::atom("set"), T::atom("a")),
            T::atom("set"),
        ] {
            assert!(matches!(
                s0.delta_mutate(&bad, &T::Int(1), &mut Cx::default()),
                Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
            ));
        }
        assert_eq!(
            s0.delta_mutate(
                &set(T::Int(1 << 64), T::atom("a")),
                &T::Int(1),
                &mut Cx::default()
            )
            .unwrap(),
            r(1 << 64, "a")
        );
    }
}
