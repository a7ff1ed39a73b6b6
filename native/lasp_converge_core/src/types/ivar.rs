//! `state_ivar`: a single-assignment variable.
//!
//! Payload: the atom `undefined` (bottom) or the value, any term.
//!
//! - Merge: `undefined` with anything gives the other side; two identical
//!   (`=:=`) values give that value; anything else (two different values, or
//!   `1` against `1.0`) makes types raise `function_clause`, and is refused
//!   here as `{conflict, state_ivar}`.
//! - Equal: `==`. Inflation: from `undefined` always; to `undefined` (from a
//!   value) never; otherwise equal.
//! - Query: the value (`undefined` when unset).
//! - `delta(A, B)`: types' join decomposition is `[A]`; the delta is `A` when
//!   A is set and B is not, bottom otherwise, and a conflict when the merge
//!   would raise.
//! - The one operation is `{set, Value}`, accepted only on an unset
//!   variable; setting a variable twice raises in types and is refused here
//!   as `{conflict, state_ivar}`.
//!
//! Reference: types' module gives no `@reference`; this is the
//! single-assignment dataflow variable of Christopher Meiklejohn and Peter
//! Van Roy, *Lasp: A Language for Distributed, Coordination-Free
//! Programming* (PPDP 2015).

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Term};
use crate::types::gset::op_arg;

const TAG: Atom = Atom::StateIvar;

/// A write-once register.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::{Lattice, Merged};
/// use lasp_converge_core::types::IVar;
///
/// let unset = IVar::<T> { value: None };
/// let a = IVar { value: Some(T::atom("a")) };
/// let b = IVar { value: Some(T::atom("b")) };
/// assert!(matches!(unset.merge(&a).unwrap(), Merged::Right));
/// assert!(matches!(a.merge(&a.clone()).unwrap(), Merged::Left));
/// assert!(a.merge(&b).is_err()); // two different values: types raises
/// assert_eq!(a.query(&OwnedBuilder).unwrap(), T::atom("a"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct IVar<T> {
    /// The value; `None` is the atom `undefined`.
    pub value: Option<T>,
}

impl<T: Term> IVar<T> {
    /// The value, unless it is `undefined`.
    fn set_value(&self) -> Option<&T> {
        self.value.as_ref().filter(|t| !t.is_atom(Atom::Undefined))
    }
}

impl<T: Term> Lattice<T> for IVar<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, _d: &mut Decoder) -> Result<Self> {
        Ok(IVar {
            value: if payload.is_atom(Atom::Undefined) {
                None
            } else {
                Some(payload.clone())
            },
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        self.value
            .clone()
            .unwrap_or_else(|| b.atom(Atom::Undefined))
    }

    fn bottom() -> Self {
        IVar { value: None }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        match (self.set_value(), other.set_value()) {
            (_, None) => Ok(Merged::Left),
            (None, Some(_)) => Ok(Merged::Right),
            (Some(a), Some(b)) if a.identical(b) => Ok(Merged::Left),
            (Some(_), Some(_)) => Err(BadCrdt::Conflict(TAG)),
        }
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(match (self.set_value(), other.set_value()) {
            (None, None) => true,
            (Some(a), Some(b)) => a.equal(b),
            _ => false,
        })
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        Ok(match (self.set_value(), other.set_value()) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a.equal(b),
        })
    }

    fn is_bottom(&self) -> bool {
        self.set_value().is_none()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(self.encode(b))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        // types merges first, so a conflict raises here too.
        self.merge(other)?;
        Ok(
            if self.set_value().is_some() && other.set_value().is_none() {
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
        let value = op_arg(op, Atom::Set).ok_or(BadCrdt::UnknownOp(TAG))?;
        if self.set_value().is_some() {
            return Err(BadCrdt::Conflict(TAG).into());
        }
        Ok(IVar {
            value: if value.is_atom(Atom::Undefined) {
                None
            } else {
                Some(value)
            },
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};
    use crate::testing::Cx;

    fn v(s: &str) -> IVar<T> {
        IVar {
            value: Some(OwnedBuilder.list(&[OwnedBuilder.binary(s.as_bytes())])),
        }
    }

    fn unset() -> IVar<T> {
        IVar::bottom()
    }

    fn decode(t: &T) -> Result<IVar<T>> {
        IVar::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    #[test]
    fn decode_test() {
        assert_eq!(decode(&T::atom("undefined")), Ok(unset()));
        let t = OwnedBuilder.cons(T::Int(1), T::Int(2)); // any term is a value
        let s = decode(&t).unwrap();
        assert_eq!(s.encode(&OwnedBuilder), t);
        assert_eq!(unset().encode(&OwnedBuilder), T::atom("undefined"));
    }

    #[test]
    fn merge_keeps_input_test() {
        assert!(matches!(unset().merge(&unset()).unwrap(), Merged::Left));
        assert!(matches!(v("a").merge(&unset()).unwrap(), Merged::Left));
        assert!(matches!(unset().merge(&v("a")).unwrap(), Merged::Right));
        assert!(matches!(v("a").merge(&v("a")).unwrap(), Merged::Left));
    }

    #[test]
    fn merge_conflict_test() {
        assert_eq!(v("a").merge(&v("b")).err(), Some(BadCrdt::Conflict(TAG)));
        assert_eq!(v("a").delta(&v("b")).err(), Some(BadCrdt::Conflict(TAG)));
    }

    #[test]
    fn lattice_test() {
        assert!(unset().equal(&unset()).unwrap());
        assert!(!unset().equal(&v("a")).unwrap());
        assert!(v("a").equal(&v("a")).unwrap());
        assert!(!v("a").equal(&v("b")).unwrap());
        assert!(unset().is_inflation(&unset()).unwrap());
        assert!(unset().is_inflation(&v("a")).unwrap());
        assert!(v("a").is_inflation(&v("a")).unwrap());
        assert!(!v("a").is_inflation(&v("b")).unwrap());
        assert!(!v("a").is_inflation(&unset()).unwrap());
        assert!(unset().is_strict_inflation(&v("a")).unwrap());
        assert!(!v("a").is_strict_inflation(&v("a")).unwrap());
        assert!(!v("a").is_strict_inflation(&v("b")).unwrap());
        assert!(unset().is_bottom());
        assert!(!v("a").is_bottom());
        assert_eq!(unset().query(&OwnedBuilder).unwrap(), T::atom("undefined"));
        assert_eq!(v("a").delta(&unset()).unwrap(), v("a"));
        assert_eq!(v("a").delta(&v("a")).unwrap(), unset());
        assert_eq!(unset().delta(&v("a")).unwrap(), unset());
    }

    #[test]
    fn mutate_test() {
        let set = OwnedBuilder.pair(T::atom("set"), T::atom("x"));
        let s1 = unset()
            .mutate(&set, &T::Int(1), &mut Cx::default())
            .unwrap();
        assert_eq!(s1.value, Some(T::atom("x")));
        assert_eq!(
            unset()
                .delta_mutate(&set, &T::Int(1), &mut Cx::default())
                .unwrap(),
            s1
        );
        assert!(matches!(
            s1.delta_mutate(&set, &T::Int(1), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::Conflict(TAG)))
        ));
        assert!(matches!(
            unset().delta_mutate(&T::atom("set"), &T::Int(1), &mut Cx::default()),
            Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
        ));
    }
}
