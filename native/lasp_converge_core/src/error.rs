//! Errors: why a term is not a CRDT this library accepts.

use crate::term::{Atom, Builder, Term};

/// Why an input was rejected. Raised to Erlang as `error:{badcrdt, Why}`.
///
/// Every variant renders to a term made only of known atoms (see
/// [`BadCrdt::to_term`]), so an error never creates an atom from input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadCrdt {
    /// Not a `{Type, Payload}` 2-tuple whose first element is an atom.
    NotACrdt,
    /// The type atom names no type this library implements.
    UnknownType,
    /// Two states of different types were combined.
    TypeMismatch(Atom, Atom),
    /// The payload does not have the shape of this type.
    Malformed(Atom),
    /// An ordset or orddict in the payload is not strictly ascending.
    Unsorted(Atom),
    /// A list in the payload is improper.
    ImproperList(Atom),
    /// Nesting deeper than the documented limit.
    TooDeep,
    /// More list cells than the documented limit.
    TooLarge,
    /// lasp-lang/types raises on this well-formed input (e.g. two different
    /// ivar values); we refuse it too, so that no node accepts what a node
    /// running types rejects.
    Conflict(Atom),
    /// Two keys compare `==` but are not `=:=` where types matches exactly.
    NotIdentical(Atom),
    /// The operation is not one this type accepts.
    UnknownOp(Atom),
    /// This function is not implemented for this type yet.
    NotImplemented(Atom),
    /// A binary is not one `lasp_converge_replica:to_binary/1` writes: the
    /// atom says why (`bad_magic`, `bad_version`, `truncated`, `unsorted`,
    /// `malformed`).
    BadBinary(Atom),
    /// Not an error: the input is larger than the normal-scheduler budget,
    /// and the caller should retry on a dirty scheduler.
    Yield,
}

impl BadCrdt {
    /// The `Why` term of `{badcrdt, Why}`.
    pub fn to_term<B: Builder>(&self, b: &B) -> B::T {
        let tagged = |tag: Atom, ty: Atom| b.pair(b.atom(tag), b.atom(ty));
        match *self {
            BadCrdt::NotACrdt => b.atom(Atom::NotACrdt),
            BadCrdt::UnknownType => b.atom(Atom::UnknownType),
            BadCrdt::TypeMismatch(x, y) => {
                b.tuple(&[b.atom(Atom::TypeMismatch), b.atom(x), b.atom(y)])
            }
            BadCrdt::Malformed(t) => tagged(Atom::Malformed, t),
            BadCrdt::Unsorted(t) => tagged(Atom::Unsorted, t),
            BadCrdt::ImproperList(t) => tagged(Atom::ImproperList, t),
            BadCrdt::TooDeep => b.atom(Atom::TooDeep),
            BadCrdt::TooLarge => b.atom(Atom::TooLarge),
            BadCrdt::Conflict(t) => tagged(Atom::Conflict, t),
            BadCrdt::NotIdentical(t) => tagged(Atom::NotIdentical, t),
            BadCrdt::UnknownOp(t) => tagged(Atom::UnknownOp, t),
            BadCrdt::NotImplemented(t) => tagged(Atom::NotImplemented, t),
            BadCrdt::BadBinary(why) => tagged(Atom::BadBinary, why),
            BadCrdt::Yield => b.atom(Atom::TooLarge),
        }
    }
}

impl std::fmt::Display for BadCrdt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for BadCrdt {}

/// Why a mutation failed.
#[derive(Debug, Clone)]
pub enum MutateError<T> {
    /// The state or the operation is bad input: raised as `{badcrdt, Why}`.
    Bad(BadCrdt),
    /// types answers `{error, Reason}` (e.g. a precondition): returned as is.
    Reason(T),
}

impl<T> From<BadCrdt> for MutateError<T> {
    fn from(e: BadCrdt) -> Self {
        MutateError::Bad(e)
    }
}

/// A result whose error is [`BadCrdt`].
pub type Result<X> = std::result::Result<X, BadCrdt>;

/// Marker so that `Term` stays used in this module's public surface.
#[allow(dead_code)]
fn _assert_term<T: Term>() {}
