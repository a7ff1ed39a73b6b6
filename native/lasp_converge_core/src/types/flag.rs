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
