//! The term abstraction every lattice is written against.
//!
//! The lattices never own the elements, actors or tokens they store: they
//! hold handles of type `T: Term` and only compare them. Inside the VM, `T`
//! is a handle to the caller's own Erlang term, so a merge copies no element
//! and its result shares every element with its inputs. In `cargo test`, the
//! simulator and the tracker, `T` is [`OwnedTerm`](crate::owned::OwnedTerm),
//! a plain Rust value that follows the same ordering rules.
//!
//! Two relations matter, exactly as in Erlang:
//! - [`Term::compare`] is the standard term order with *arithmetic* equality
//!   (`==`): `1` and `1.0` compare equal. `ordsets` and `orddict` use it.
//! - [`Term::identical`] is exact equality (`=:=`). Causal dot maps match
//!   keys with it, and the ivar merge accepts only identical values.

use std::cmp::Ordering;

/// The broad class of a term, enough to validate CRDT payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fixnum or bignum.
    Integer,
    /// A float.
    Float,
    /// An atom.
    Atom,
    /// A reference.
    Reference,
    /// A fun.
    Fun,
    /// A port.
    Port,
    /// A pid.
    Pid,
    /// A tuple.
    Tuple,
    /// A map.
    Map,
    /// The empty list `[]`.
    Nil,
    /// A non-empty list cell (proper or not).
    List,
    /// A binary or bitstring.
    Binary,
}

/// One step of walking a list.
#[derive(Debug, Clone)]
pub enum Cell<T> {
    /// `[]`: the end of a proper list.
    Nil,
    /// `[Head | Tail]`.
    Cons(T, T),
    /// Anything else: the list was improper, or this was never a list.
    NotList,
}

/// Defines [`Atom`], its text and the list of all of them from one table,
/// so the three cannot drift apart (the NIF indexes its atom table by
/// discriminant, in this order).
macro_rules! known_atoms {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The atoms the core needs to recognise or to produce.
        ///
        /// These are the only atoms the core ever asks for: it never creates
        /// an atom from caller data.
        #[allow(missing_docs)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Atom {
            $($variant),*
        }

        impl Atom {
            /// The atom's text, as Erlang prints it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Atom::$variant => $name),*
                }
            }

            /// Every atom, in declaration (discriminant) order.
            pub const ALL: &'static [Atom] = &[$(Atom::$variant),*];
        }
    };
}

known_atoms! {
    True => "true",
    False => "false",
    Undefined => "undefined",
    Ok => "ok",
    Error => "error",
    Vclock => "vclock",
    StateGcounter => "state_gcounter",
    StatePncounter => "state_pncounter",
    StateGset => "state_gset",
    StateTwopset => "state_twopset",
    StateOrset => "state_orset",
    StateAwset => "state_awset",
    StateLwwregister => "state_lwwregister",
    StateBoolean => "state_boolean",
    StateIvar => "state_ivar",
    StateMaxInt => "state_max_int",
    StateMvregister => "state_mvregister",
    StateEwflag => "state_ewflag",
    StateDwflag => "state_dwflag",
    StateLexcounter => "state_lexcounter",
    StateBcounter => "state_bcounter",
    StateGmap => "state_gmap",
    StatePair => "state_pair",
    StateAwmap => "state_awmap",
    StateAwsetPs => "state_awset_ps",
    Increment => "increment",
    Decrement => "decrement",
    Add => "add",
    AddAll => "add_all",
    AddByToken => "add_by_token",
    Rmv => "rmv",
    RmvAll => "rmv_all",
    Set => "set",
    Enable => "enable",
    Disable => "disable",
    Apply => "apply",
    AddBy => "add_by",
    RmvBy => "rmv_by",
    Move => "move",
    Fst => "fst",
    Snd => "snd",
    Badcrdt => "badcrdt",
    NotACrdt => "not_a_crdt",
    UnknownType => "unknown_type",
    TypeMismatch => "type_mismatch",
    Malformed => "malformed",
    Unsorted => "unsorted",
    ImproperList => "improper_list",
    TooDeep => "too_deep",
    TooLarge => "too_large",
    Conflict => "conflict",
    NotIdentical => "not_identical",
    UnknownOp => "unknown_op",
    BadActor => "bad_actor",
    Precondition => "precondition",
    NonEnoughPermissions => "non_enough_permissions",
    NotPresent => "not_present",
    NotImplemented => "not_implemented",
    BadBinary => "bad_binary",
    Truncated => "truncated",
    BadMagic => "bad_magic",
    BadVersion => "bad_version",
    Unsupported => "unsupported",
}

/// A read-only handle to an Erlang term.
///
/// Cloning must be cheap: the NIF's implementation is a copyable handle.
pub trait Term: Clone + std::fmt::Debug {
    /// The term's class.
    fn kind(&self) -> Kind;
    /// Erlang's standard term order, with `==` as equality.
    fn compare(&self, other: &Self) -> Ordering;
    /// Exact equality, `=:=`.
    fn identical(&self, other: &Self) -> bool;
    /// The value of an integer that fits in an `i64`.
    fn as_i64(&self) -> Option<i64>;
    /// Erlang's term order between this term and the integer `n`, for any
    /// term (bignums and floats by exact value; every non-number is
    /// greater than every number).
    fn compare_int(&self, n: i64) -> Ordering;
    /// `true` or `false`.
    fn as_bool(&self) -> Option<bool> {
        if self.is_atom(Atom::True) {
            Some(true)
        } else if self.is_atom(Atom::False) {
            Some(false)
        } else {
            None
        }
    }
    /// Whether this term is the given atom.
    fn is_atom(&self, atom: Atom) -> bool;
    /// The tuple's arity, or `None` when the term is not a tuple.
    fn tuple_arity(&self) -> Option<usize>;
    /// Element `i` (0-based) of a tuple; `None` when out of range or not a tuple.
    fn tuple_elem(&self, i: usize) -> Option<Self>;
    /// Walk one list cell.
    fn cell(&self) -> Cell<Self>;

    /// The byte size of a binary; `None` for other terms and for bitstrings
    /// that are not a whole number of bytes.
    fn binary_size(&self) -> Option<usize> {
        None
    }

    /// The two elements of a 2-tuple.
    fn as_pair(&self) -> Option<(Self, Self)> {
        if self.tuple_arity()? != 2 {
            return None;
        }
        Some((self.tuple_elem(0)?, self.tuple_elem(1)?))
    }

    /// Whether `self == other` (arithmetic equality).
    fn equal(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }

    /// Whether `terms` weigh more than `limit` (see
    /// [`crate::decode::too_heavy`], which is the default). An
    /// implementation may answer faster from its own representation, with
    /// the same weights.
    fn too_heavy(terms: &[&Self], limit: usize) -> bool
    where
        Self: Sized,
    {
        crate::decode::too_heavy(terms, limit)
    }

    /// Which known atom this is, if any. Linear in the number of known atoms.
    fn known_atom(&self) -> Option<Atom> {
        if self.kind() != Kind::Atom {
            return None;
        }
        Atom::ALL.iter().copied().find(|a| self.is_atom(*a))
    }
}

/// Builds terms in the environment that will own the result.
pub trait Builder {
    /// The term type built.
    type T: Term;
    /// A known atom.
    fn atom(&self, atom: Atom) -> Self::T;
    /// An integer.
    fn int(&self, value: i64) -> Self::T;
    /// A tuple of the given elements.
    fn tuple(&self, elems: &[Self::T]) -> Self::T;
    /// An integer that may not fit in an `i64` (a sum of counts).
    fn int128(&self, value: i128) -> Self::T;
    /// `[]`.
    fn nil(&self) -> Self::T;
    /// `[Head | Tail]`.
    fn cons(&self, head: Self::T, tail: Self::T) -> Self::T;
    /// A binary holding `bytes`.
    fn binary(&self, bytes: &[u8]) -> Self::T;

    /// `true` or `false`.
    fn bool(&self, value: bool) -> Self::T {
        self.atom(if value { Atom::True } else { Atom::False })
    }
    /// A proper list of `elems`.
    fn list(&self, elems: &[Self::T]) -> Self::T {
        self.list_with_tail(elems, self.nil())
    }
    /// `elems ++ Tail`, with `tail` shared rather than copied.
    fn list_with_tail(&self, elems: &[Self::T], tail: Self::T) -> Self::T {
        elems
            .iter()
            .rev()
            .fold(tail, |acc, h| self.cons(h.clone(), acc))
    }
    /// A 2-tuple.
    fn pair(&self, a: Self::T, b: Self::T) -> Self::T {
        self.tuple(&[a, b])
    }
}
