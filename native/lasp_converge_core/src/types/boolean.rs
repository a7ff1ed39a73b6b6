//! `state_boolean`: a flag that can only be turned on.
//!
//! Payload: the integer `0` (false, the bottom) or `1` (true). Any other
//! payload, including `0.0` or `1.0`, is refused as
//! `{malformed, state_boolean}`.
//!
//! - Merge is `max/2` (logical or); equal is `==`; inflation is "equal, or
//!   0 to 1".
//! - Query is the atom `true` when the payload is 1, else `false`.
//! - `delta(A, B)` is `A` when A is 1 and B is 0, else bottom (types' join
//!   decomposition is `[A]`).
//! - The one operation is `true`, whose delta is `1`.
//!
//! Reference: Carlos Baquero, Paulo Sérgio Almeida, Alcino Cunha and Carla
//! Ferreira, *Composition of State-based CRDTs* (2015),
//! <http://haslab.uminho.pt/cbm/files/crdtcompositionreport.pdf>.

use std::marker::PhantomData;

use crate::decode::{self, Decoder};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Term};

const TAG: Atom = Atom::StateBoolean;

/// A grow-only boolean.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::{Lattice, Merged};
/// use lasp_converge_core::types::Boolean;
///
/// let off = Boolean::<T>::new(false);
/// let on = Boolean::<T>::new(true);
/// assert!(matches!(off.merge(&on).unwrap(), Merged::Right));
/// assert!(off.is_strict_inflation(&on).unwrap());
/// assert_eq!(on.query(&OwnedBuilder).unwrap(), T::atom("true"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Boolean<T> {
    /// Whether the flag is on (payload `1`).
    pub value: bool,
    _term: PhantomData<T>,
}

impl<T> Boolean<T> {
    /// A state holding `value`.
    pub fn new(value: bool) -> Self {
        Boolean {
            value,
            _term: PhantomData,
        }
    }
}

impl<T: Term> Lattice<T> for Boolean<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, _d: &mut Decoder) -> Result<Self> {
        match decode::int(TAG, payload)? {
            0 => Ok(Self::new(false)),
            1 => Ok(Self::new(true)),
            _ => Err(BadCrdt::Malformed(TAG)),
        }
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        b.int(i64::from(self.value))
    }

    fn bottom() -> Self {
        Self::new(false)
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
        !self.value
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(b.bool(self.value))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        Ok(Self::new(self.value && !other.value))
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        _actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        if !op.is_atom(Atom::True) {
            return Err(BadCrdt::UnknownOp(TAG).into());
        }
        Ok(Self::new(true))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};
    use crate::testing::Cx;

    fn bl(v: bool) -> Boolean<T> {
        Boolean::new(v)
    }

    fn decode(t: &T) -> Result<Boolean<T>> {
        Boolean::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    #[test]
    fn decode_test() {
        assert_eq!(decode(&T::Int(0)), Ok(bl(false)));
        assert_eq!(decode(&T::Int(1)), Ok(bl(true)));
        assert_eq!(bl(true).encode(&OwnedBuilder), T::Int(1));
        assert_eq!(bl(false).encode(&OwnedBuilder), T::Int(0));
        for bad in [
            T::Int(2),
            T::Int(-1),
            T::Float(1.0),
            T::atom("true"),
            T::Nil,
        ] {
            assert_eq!(decode(&bad), Err(BadCrdt::Malformed(TAG)));
        }
    }

    #[test]
    fn merge_keeps_input_test() {
        assert!(matches!(bl(false).merge(&bl(false)).unwrap(), Merged::Left));
        assert!(matches!(bl(false).merge(&bl(true)).unwrap(), Merged::Right));
        assert!(matches!(bl(true).merge(&bl(false)).unwrap(), Merged::Left));
        assert!(matches!(bl(true).merge(&bl(true)).unwrap(), Merged::Left));
    }

    #[test]
    fn lattice_test() {
        assert!(bl(false).is_inflation(&bl(false)).unwrap());
        assert!(bl(false).is_inflation(&bl(true)).unwrap());
        assert!(!bl(true).is_inflation(&bl(false)).unwrap());
        assert!(bl(true).is_inflation(&bl(true)).unwrap());
        assert!(bl(false).is_strict_inflation(&bl(true)).unwrap());
        assert!(!bl(true).is_strict_inflation(&bl(true)).unwrap());
        assert!(bl(false).equal(&bl(false)).unwrap());
        assert!(!bl(false).equal(&bl(true)).unwrap());
        assert!(bl(false).is_bottom());
        assert!(!bl(true).is_bottom());
        assert_eq!(bl(false).query(&OwnedBuilder).unwrap(), T::atom("false"));
        assert_eq!(bl(true).delta(&bl(false)).unwrap(), bl(true));
        assert_eq!(bl(true).delta(&bl(true)).unwrap(), bl(false));
        assert_eq!(bl(false).delta(&bl(true)).unwrap(), bl(false));
    }

    #[test]
    fn mutate_test() {
        let s = bl(false);
        assert_eq!(
            s.delta_mutate(&T::atom("true"), &T::Int(1), &mut Cx::default())
                .unwrap(),
            bl(true)
        );
        assert_eq!(
            s.mutate(&T::atom("true"), &T::Int(1), &mut Cx::default())
                .unwrap(),
            bl(true)
        );
        assert!(matches!(
            s.delta_mutate(&T::atom("false"), &T::Int(1), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
        ));
    }
}
