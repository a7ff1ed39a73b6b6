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
