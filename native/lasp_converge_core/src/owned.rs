//! A plain-Rust Erlang term, for tests and tools. (Minimal version.)

use std::cmp::Ordering;
use std::sync::Arc;

use crate::term::{Atom, Builder, Cell, Kind, Term};

/// An Erlang term owned by Rust.
#[derive(Debug, Clone)]
pub enum OwnedTerm {
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// An atom.
    Atom(Arc<str>),
    /// A tuple.
    Tuple(Arc<[OwnedTerm]>),
    /// `[]`.
    Nil,
    /// A list cell.
    Cons(Arc<(OwnedTerm, OwnedTerm)>),
    /// A binary.
    Binary(Arc<[u8]>),
}

impl OwnedTerm {
    /// An atom.
    pub fn atom(name: &str) -> Self {
        OwnedTerm::Atom(name.into())
    }
}

impl PartialEq for OwnedTerm {
    fn eq(&self, other: &Self) -> bool {
        self.identical(other)
    }
}

impl Term for OwnedTerm {
    fn kind(&self) -> Kind {
        match self {
            OwnedTerm::Int(_) => Kind::Integer,
            OwnedTerm::Float(_) => Kind::Float,
            OwnedTerm::Atom(_) => Kind::Atom,
            OwnedTerm::Tuple(_) => Kind::Tuple,
            OwnedTerm::Nil => Kind::Nil,
            OwnedTerm::Cons(_) => Kind::List,
            OwnedTerm::Binary(_) => Kind::Binary,
        }
    }
    fn compare(&self, other: &Self) -> Ordering {
        use OwnedTerm::*;
        match (self, other) {
            (Int(a), Int(b)) => a.cmp(b),
            (Atom(a), Atom(b)) => a.cmp(b),
            (Binary(a), Binary(b)) => a.cmp(b),
            (Tuple(a), Tuple(b)) => a.len().cmp(&b.len()).then_with(|| {
                a.iter().zip(b.iter()).map(|(x, y)| x.compare(y)).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
            }),
            (Cons(a), Cons(b)) => a.0.compare(&b.0).then_with(|| a.1.compare(&b.1)),
            (Nil, Nil) => Ordering::Equal,
            _ => rank(self).cmp(&rank(other)),
        }
    }
    fn identical(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
    fn as_i64(&self) -> Option<i64> {
        match self {
            OwnedTerm::Int(i) => i64::try_from(*i).ok(),
            _ => None,
        }
    }
    fn is_atom(&self, atom: Atom) -> bool {
        matches!(self, OwnedTerm::Atom(a) if &**a == atom.name())
    }
    fn tuple_arity(&self) -> Option<usize> {
        match self {
            OwnedTerm::Tuple(t) => Some(t.len()),
            _ => None,
        }
    }
    fn tuple_elem(&self, i: usize) -> Option<Self> {
        match self {
            OwnedTerm::Tuple(t) => t.get(i).cloned(),
            _ => None,
        }
    }
    fn cell(&self) -> Cell<Self> {
        match self {
            OwnedTerm::Nil => Cell::Nil,
            OwnedTerm::Cons(c) => Cell::Cons(c.0.clone(), c.1.clone()),
            _ => Cell::NotList,
        }
    }
}

fn rank(t: &OwnedTerm) -> u8 {
    match t {
        OwnedTerm::Int(_) | OwnedTerm::Float(_) => 0,
        OwnedTerm::Atom(_) => 1,
        OwnedTerm::Tuple(_) => 6,
        OwnedTerm::Nil => 8,
        OwnedTerm::Cons(_) => 9,
        OwnedTerm::Binary(_) => 10,
    }
}

/// Builds [`OwnedTerm`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnedBuilder;

impl Builder for OwnedBuilder {
    type T = OwnedTerm;
    fn atom(&self, atom: Atom) -> OwnedTerm {
        OwnedTerm::atom(atom.name())
    }
    fn int(&self, value: i64) -> OwnedTerm {
        OwnedTerm::Int(value.into())
    }
    fn int128(&self, value: i128) -> OwnedTerm {
        OwnedTerm::Int(value)
    }
    fn tuple(&self, elems: &[OwnedTerm]) -> OwnedTerm {
        OwnedTerm::Tuple(elems.into())
    }
    fn nil(&self) -> OwnedTerm {
        OwnedTerm::Nil
    }
    fn cons(&self, head: OwnedTerm, tail: OwnedTerm) -> OwnedTerm {
        OwnedTerm::Cons(Arc::new((head, tail)))
    }
    fn binary(&self, bytes: &[u8]) -> OwnedTerm {
        OwnedTerm::Binary(bytes.into())
    }
}
