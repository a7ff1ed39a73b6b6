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
//! Timestamps must be integers that fit in an `i64` (Erlang's nanosecond
//! system time does, until 2262): a payload with any other timestamp is
//! refused as `{malformed, state_lwwregister}`, and so is a `set` whose
//! integer timestamp is a bignum. A `set` with a non-integer timestamp is an
//! unknown operation, as in types.
//!
//! Reference: Marc Shapiro, Nuno Preguiça, Carlos Baquero and Marek
//! Zawirski, *A comprehensive study of Convergent and Commutative Replicated
//! Data Types* (2011), <http://hal.upmc.fr/file/index/docid/555588/filename/techreport.pdf>.

use crate::decode::{self, Decoder};
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
/// let a = LWWRegister { ts: 1234, value: Some(T::atom("a")) };
/// let b = LWWRegister { ts: 1235, value: Some(T::atom("b")) };
/// assert!(matches!(a.merge(&b).unwrap(), Merged::Right));
/// assert!(matches!(b.merge(&a).unwrap(), Merged::Left));
/// // On equal timestamps the second argument wins.
/// let c = LWWRegister { ts: 1235, value: Some(T::atom("c")) };
/// assert!(matches!(b.merge(&c).unwrap(), Merged::Right));
/// assert_eq!(b.query(&OwnedBuilder).unwrap(), T::atom("b"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LWWRegister<T> {
    /// The timestamp.
    pub ts: i64,
    /// The value; `None` is the atom `undefined`.
    pub value: Option<T>,
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
        let ts = decode::int(TAG, &ts)?;
        let value = if value.is_atom(Atom::Undefined) {
            None
        } else {
            Some(value)
        };
        Ok(LWWRegister { ts, value })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        let value = self
            .value
            .clone()
            .unwrap_or_else(|| b.atom(Atom::Undefined));
        b.pair(b.int(self.ts), value)
    }

    fn bottom() -> Self {
        LWWRegister { ts: 0, value: None }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        Ok(if self.ts > other.ts {
            Merged::Left
        } else {
            Merged::Right
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.ts == other.ts && value_eq(&self.value, &other.value))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        Ok(other.ts >= self.ts)
    }

    fn is_bottom(&self) -> bool {
        self.ts == 0 && is_undefined(&self.value)
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(self
            .value
            .clone()
            .unwrap_or_else(|| b.atom(Atom::Undefined)))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(if self.ts > other.ts || other.ts < 0 {
            self.clone()
        } else {
            Self::bottom()
        })
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
        let ts = decode::int(TAG, &ts)?;
        let value = if value.is_atom(Atom::Undefined) {
            None
        } else {
            Some(value)
        };
        Ok(LWWRegister { ts, value })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};

    struct Cx;
    impl MutateCx<T> for Cx {
        type B = OwnedBuilder;
        fn builder(&self) -> &OwnedBuilder {
            &OwnedBuilder
        }
        fn token(&mut self) -> T {
            OwnedBuilder.binary(&[0; 20])
        }
    }

    fn r(ts: i64, v: &str) -> LWWRegister<T> {
        LWWRegister {
            ts,
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
        assert_eq!(s.ts, 1234);
        assert_eq!(s.encode(&b), t);
        let bottom = b.pair(T::Int(0), T::atom("undefined"));
        assert_eq!(decode(&bottom), Ok(LWWRegister::bottom()));
        assert_eq!(LWWRegister::<T>::bottom().encode(&b), bottom);
        assert_eq!(decode(&b.pair(T::Int(-5), T::Nil)).unwrap().ts, -5);
        for bad in [
            T::Int(1),
            b.list(&[T::Int(1), T::Int(2)]),
            b.tuple(&[T::Int(1), T::Int(2), T::Int(3)]),
            b.pair(T::Float(1.0), T::Int(2)),
            b.pair(T::atom("a"), T::Int(2)),
            b.pair(T::Int(1 << 64), T::Int(2)),
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
            .delta_mutate(&set(T::Int(1234), T::atom("a")), &T::Int(1), &mut Cx)
            .unwrap();
        assert_eq!(d1, r(1234, "a"));
        let s1 = s0
            .mutate(&set(T::Int(1234), T::atom("a")), &T::Int(1), &mut Cx)
            .unwrap();
        let s2 = s1
            .mutate(&set(T::Int(1235), T::atom("b")), &T::Int(1), &mut Cx)
            .unwrap();
        assert_eq!(s2, r(1235, "b"));
        // An older set still gives its delta; the merge ignores it.
        let s3 = s2
            .mutate(&set(T::Int(1), T::atom("c")), &T::Int(1), &mut Cx)
            .unwrap();
        assert_eq!(s3, r(1235, "b"));
        for bad in [
            set(T::Float(1.0), T::atom("a")),
            OwnedBuilder.pair(T::atom("set"), T::atom("a")),
            T::atom("set"),
        ] {
            assert!(matches!(
                s0.delta_mutate(&bad, &T::Int(1), &mut Cx),
                Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
            ));
        }
        assert!(matches!(
            s0.delta_mutate(&set(T::Int(1 << 64), T::atom("a")), &T::Int(1), &mut Cx),
            Err(MutateError::Bad(BadCrdt::Malformed(TAG)))
        ));
    }
}
