//! Lasp's state-based CRDTs (lasp-lang/types 0.1.8), term for term.
//!
//! Every lattice is generic over [`term::Term`], a read-only handle to an
//! Erlang term. The NIF crate implements it over the caller's own terms;
//! [`owned::OwnedTerm`] implements it in plain Rust for tests and tools.
//!
//! Entry points for the NIF are in [`api`]: each takes terms and returns a
//! term, so a NIF body decodes its arguments, calls one function and encodes.
#![deny(missing_docs)]

pub mod api;
pub mod causal;
pub mod crdt;
pub mod decode;
pub mod error;
pub mod etf;
pub(crate) mod latency;
pub mod lattice;
pub mod ord;
pub mod owned;
pub mod replica;
pub mod sim;
pub mod term;
#[cfg(test)]
pub(crate) mod testing;
pub mod tracker;
pub mod types;
pub mod wire;

pub use crdt::Crdt;
pub use decode::Limits;
pub use error::{BadCrdt, MutateError};
pub use lattice::{Lattice, Merged, MutateCx};
pub use term::{Atom, Builder, Cell, Kind, Term};
