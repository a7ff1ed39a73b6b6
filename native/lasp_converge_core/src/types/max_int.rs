//! `state_max_int`: an integer that only grows.
//!
//! Payload: an integer `N`. Bottom is `0`.
//!
//! - Merge is `max/2` (the first argument on a tie); inflation is `A =< B`;
//!   equal is `==`; query is `N`.
//! - `delta(A, B)`: types' join decomposition is `[A]`, so the delta is `A`
//!   when `A > B` and bottom otherwise. When `B < 0` (a state types never
//!   produces) bottom would not be below `B`, so `A` itself is returned, and
//!   `merge(delta(A, B), B)` still equals `merge(A, B)`.
//! - The one operation is `increment`, whose delta is `N + 1`.
//!
//! `N` must be an integer that fits in an `i64`: anything else, bignums
//! included, is refused as `{malformed, state_max_int}`. An increment past
//! `i64::MAX` is refused as `too_large`.
//!
//! Reference: Carlos Baquero, Paulo Sérgio Almeida, Alcino Cunha and Carla
//! Ferreira, *Composition of State-based CRDTs* (2015),
//! <http://haslab.uminho.pt/cbm/files/crdtcompositionreport.pdf>.

use std::marker::PhantomData;

use crate::decode::{self, Decoder};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Term};

const TAG: Atom = Atom::StateMaxInt;

/// A max register over integers.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::{Lattice, Merged};
/// use lasp_converge_core::types::MaxInt;
///
/// let a = MaxInt::<T>::new(17);
/// let b = MaxInt::<T>::new(23);
/// assert!(matches!(a.merge(&b).unwrap(), Merged::Right));
/// assert!(a.is_strict_inflation(&b).unwrap());
/// assert_eq!(b.query(&OwnedBuilder).unwrap(), T::Int(23));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MaxInt<T> {
    /// The value.
    pub value: i64,
    _term: PhantomData<T>,
}

impl<T> MaxInt<T> {
    /// A state holding `value`.
    pub fn new(value: i64) -> Self {
        MaxInt {
            value,
            _term: PhantomData,
        }
    }
}

impl<T: Term> Lattice<T> for MaxInt<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, _d: &mut Decoder) -> Result<Self> {
        Ok(Self::new(decode::int(TAG, payload)?))
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        b.int(self.value)
    }

    fn bottom() -> Self {
        Self::new(0)
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        Ok(if self.value >= other.value {
            Merged::Left
        } else {
            Merged::Right
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.value == other.value)
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        Ok(self.value <= other.value)
    }

    fn is_bottom(&self) -> bool {
        self.value == 0
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(b.int(self.value))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(if self.value > other.value || other.value < 0 {
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
        if !op.is_atom(Atom::Increment) {
            return Err(BadCrdt::UnknownOp(TAG).into());
        }
        Ok(Self::new(
            self.value.checked_add(1).ok_or(BadCrdt::TooLarge)?,
        ))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};
    use crate::testing::Cx;

    fn m(v: i64) -> MaxInt<T> {
        MaxInt::new(v)
    }

    fn decode(t: &T) -> Result<MaxInt<T>> {
        MaxInt::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    #[test]
    fn decode_test() {
        assert_eq!(decode(&T::Int(17)), Ok(m(17)));
        assert_eq!(m(17).encode(&OwnedBuilder), T::Int(17));
        assert_eq!(decode(&T::Int(1 << 64)), Err(BadCrdt::Malformed(TAG)));
        assert_eq!(decode(&T::atom("a")), Err(BadCrdt::Malformed(TAG)));
        assert_eq!(decode(&T::Float(1.0)), Err(BadCrdt::Malformed(TAG)));
        assert_eq!(
            decode(&OwnedBuilder.list(&[T::Int(1)])),
            Err(BadCrdt::Malformed(TAG))
        );
    }

    #[test]
    fn merge_keeps_input_test() {
        assert!(matches!(m(17).merge(&m(1)).unwrap(), Merged::Left));
        assert!(matches!(m(1).merge(&m(17)).unwrap(), Merged::Right));
        assert!(matches!(m(17).merge(&m(17)).unwrap(), Merged::Left));
    }

    #[test]
    fn lattice_test() {
        assert!(m(17).equal(&m(17)).unwrap());
        assert!(!m(17).equal(&m(23)).unwrap());
        assert!(m(23).is_inflation(&m(42)).unwrap());
        assert!(!m(42).is_inflation(&m(23)).unwrap());
        assert!(m(23).is_strict_inflation(&m(42)).unwrap());
        assert!(!m(23).is_strict_inflation(&m(23)).unwrap());
        assert!(MaxInt::<T>::bottom().is_bottom());
        assert!(!m(1).is_bottom());
        assert_eq!(m(17).query(&OwnedBuilder).unwrap(), T::Int(17));
    }

    #[test]
    fn delta_test() {
        assert_eq!(m(5).delta(&m(3)).unwrap(), m(5));
        assert_eq!(m(3).delta(&m(5)).unwrap(), m(0));
        // Below bottom: A itself keeps merge(delta, B) == merge(A, B).
        assert_eq!(m(-7).delta(&m(-5)).unwrap(), m(-7));
    }

    #[test]
    fn mutate_test() {
        let s = m(15);
        assert_eq!(
            s.delta_mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
                .unwrap(),
            m(16)
        );
        let s1 = s
            .mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
            .unwrap();
        let s2 = s1
            .mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default())
            .unwrap();
        assert_eq!(s2, m(17));
        assert!(matches!(
            s.delta_mutate(&T::atom("decrement"), &T::Int(1), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
        ));
        assert!(matches!(
            m(i64::MAX).delta_mutate(&T::atom("increment"), &T::Int(1), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::TooLarge))
        ));
    }
}
