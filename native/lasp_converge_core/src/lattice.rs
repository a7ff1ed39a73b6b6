//! The interface every CRDT type implements.

use crate::decode::Decoder;
use crate::error::{MutateError, Result};
use crate::term::{Atom, Builder, Term};

/// The outcome of a merge: an input unchanged, or a new state.
///
/// Returning `Left`/`Right` lets the glue hand back the caller's own input
/// term, so a merge that adds nothing allocates nothing.
#[derive(Debug, Clone)]
pub enum Merged<S> {
    /// The result is exactly (`=:=`) the first argument.
    Left,
    /// The result is exactly (`=:=`) the second argument.
    Right,
    /// A new state.
    New(S),
}

impl<S: Clone> Merged<S> {
    /// The merged state itself.
    pub fn into_state(self, left: &S, right: &S) -> S {
        match self {
            Merged::Left => left.clone(),
            Merged::Right => right.clone(),
            Merged::New(s) => s,
        }
    }
}

/// What a mutation may need from its caller.
pub trait MutateCx<T: Term> {
    /// The builder for new terms.
    type B: Builder<T = T>;
    /// The builder.
    fn builder(&self) -> &Self::B;
    /// A fresh unique token: a 20-byte random binary, as
    /// `crypto:strong_rand_bytes(20)` gives in lasp-lang/types.
    fn token(&mut self) -> T;
}

/// A state-based CRDT (a join-semilattice) over terms of type `T`.
///
/// Payload shapes and every rule are those of lasp-lang/types 0.1.8 as
/// written down in `conformance/README.md`.
pub trait Lattice<T: Term>: Sized + Clone {
    /// The type atom, e.g. `state_gcounter`.
    const TAG: Atom;

    /// Decode and validate a payload (the second element of `{Type, Payload}`).
    fn decode(payload: &T, d: &mut Decoder) -> Result<Self>;
    /// Encode the payload.
    fn encode<B: Builder<T = T>>(&self, b: &B) -> T;
    /// The bottom state, `Type:new()`.
    fn bottom() -> Self;
    /// `Type:merge(Self, Other)`, term for term.
    fn merge(&self, other: &Self) -> Result<Merged<Self>>;
    /// `Type:equal(Self, Other)`.
    fn equal(&self, other: &Self) -> Result<bool>;
    /// `Type:is_inflation(Self, Other)`: `Other` is at least `Self`.
    fn is_inflation(&self, other: &Self) -> Result<bool>;
    /// `Type:is_strict_inflation(Self, Other)`; generic by default.
    fn is_strict_inflation(&self, other: &Self) -> Result<bool> {
        Ok(self.is_inflation(other)? && !self.equal(other)?)
    }
    /// `Type:is_bottom(Self)`.
    fn is_bottom(&self) -> bool;
    /// `Type:query(Self)`. Set-valued types return a proper list sorted in
    /// term order; the Erlang side turns it into a `sets` set.
    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T>;
    /// The join of the join-irreducible parts of `self` that strictly inflate
    /// `other` (types' `delta(Self, {state, Other})`):
    /// `merge(delta(A, B), B)` equals `merge(A, B)`.
    fn delta(&self, other: &Self) -> Result<Self>;
    /// `Type:delta_mutate(Op, Actor, Self)`: the delta of one operation.
    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>>;
    /// `Type:mutate(Op, Actor, Self)`: as types' `state_type:mutate/3`, the
    /// delta merged into the state (`merge(Delta, State)`, in that order).
    fn mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let delta = self.delta_mutate(op, actor, cx)?;
        Ok(delta.merge(self)?.into_state(&delta, self))
    }
}
