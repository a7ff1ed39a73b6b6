//! One enum over every type: dispatch on the type atom happens here, once.

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Term};
use crate::types::*;

macro_rules! crdts {
    ($($variant:ident($store:ty, $ty:ident)),* $(,)?) => {
        /// A decoded state of any supported type.
        #[derive(Debug, Clone)]
        pub enum Crdt<T: Term> {
            $(
                #[allow(missing_docs)]
                $variant($store),
            )*
        }

        /// The type atoms of every supported type.
        pub const TYPES: &[Atom] = &[$(<$ty<crate::owned::OwnedTerm> as Lattice<crate::owned::OwnedTerm>>::TAG),*];

        impl<T: Term> Crdt<T> {
            /// The type atom.
            pub fn tag(&self) -> Atom {
                match self {
                    $(Crdt::$variant(_) => <$ty<T> as Lattice<T>>::TAG,)*
                }
            }

            /// Which known type a type atom names.
            fn with_tag<X>(tag: &T, f: impl FnOnce(Atom) -> Result<X>) -> Result<X> {
                $(
                    if tag.is_atom(<$ty<T> as Lattice<T>>::TAG) {
                        return f(<$ty<T> as Lattice<T>>::TAG);
                    }
                )*
                Err(BadCrdt::UnknownType)
            }

            /// Decode `{Type, Payload}`.
            pub fn decode(term: &T, d: &mut Decoder) -> Result<Self> {
                let (tag, payload) = term.as_pair().ok_or(BadCrdt::NotACrdt)?;
                if tag.kind() != crate::term::Kind::Atom {
                    return Err(BadCrdt::NotACrdt);
                }
                Self::with_tag(&tag, |atom| {
                    $(
                        if atom == <$ty<T> as Lattice<T>>::TAG {
                            return Ok(Crdt::$variant(<$ty<T>>::decode(&payload, d)?.into()));
                        }
                    )*
                    Err(BadCrdt::UnknownType)
                })
            }

            /// The bottom state of the type a type atom names.
            pub fn bottom(tag: &T) -> Result<Self> {
                Self::with_tag(tag, |atom| {
                    $(
                        if atom == <$ty<T> as Lattice<T>>::TAG {
                            return Ok(Crdt::$variant(<$ty<T> as Lattice<T>>::bottom().into()));
                        }
                    )*
                    Err(BadCrdt::UnknownType)
                })
            }

            /// Encode `{Type, Payload}`.
            pub fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
                match self {
                    $(Crdt::$variant(s) => b.pair(b.atom(<$ty<T> as Lattice<T>>::TAG), s.encode(b)),)*
                }
            }

            /// `merge(Self, Other)`.
            pub fn merge(&self, other: &Self) -> Result<Merged<Self>> {
                match (self, other) {
                    $((Crdt::$variant(a), Crdt::$variant(b)) => Ok(match a.merge(b)? {
                        Merged::Left => Merged::Left,
                        Merged::Right => Merged::Right,
                        Merged::New(s) => Merged::New(Crdt::$variant(s.into())),
                    }),)*
                    _ => Err(self.mismatch(other)),
                }
            }

            /// `equal(Self, Other)`.
            pub fn equal(&self, other: &Self) -> Result<bool> {
                match (self, other) {
                    $((Crdt::$variant(a), Crdt::$variant(b)) => a.equal(b),)*
                    _ => Err(self.mismatch(other)),
                }
            }

            /// `is_inflation(Self, Other)`.
            pub fn is_inflation(&self, other: &Self) -> Result<bool> {
                match (self, other) {
                    $((Crdt::$variant(a), Crdt::$variant(b)) => a.is_inflation(b),)*
                    _ => Err(self.mismatch(other)),
                }
            }

            /// `is_strict_inflation(Self, Other)`.
            pub fn is_strict_inflation(&self, other: &Self) -> Result<bool> {
                match (self, other) {
                    $((Crdt::$variant(a), Crdt::$variant(b)) => a.is_strict_inflation(b),)*
                    _ => Err(self.mismatch(other)),
                }
            }

            /// `delta(Self, Other)`.
            pub fn delta(&self, other: &Self) -> Result<Self> {
                match (self, other) {
                    $((Crdt::$variant(a), Crdt::$variant(b)) => Ok(Crdt::$variant(a.delta(b)?.into())),)*
                    _ => Err(self.mismatch(other)),
                }
            }

            /// `is_bottom(Self)`.
            pub fn is_bottom(&self) -> bool {
                match self {
                    $(Crdt::$variant(s) => s.is_bottom(),)*
                }
            }

            /// `query(Self)`.
            pub fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
                match self {
                    $(Crdt::$variant(s) => s.query(b),)*
                }
            }

            /// `mutate(Op, Actor, Self)`.
            pub fn mutate<C: MutateCx<T>>(&self, op: &T, actor: &T, cx: &mut C) -> std::result::Result<Self, MutateError<T>> {
                match self {
                    $(Crdt::$variant(s) => Ok(Crdt::$variant(s.mutate(op, actor, cx)?.into())),)*
                }
            }

            /// `delta_mutate(Op, Actor, Self)`.
            pub fn delta_mutate<C: MutateCx<T>>(&self, op: &T, actor: &T, cx: &mut C) -> std::result::Result<Self, MutateError<T>> {
                match self {
                    $(Crdt::$variant(s) => Ok(Crdt::$variant(s.delta_mutate(op, actor, cx)?.into())),)*
                }
            }
        }
    };
}

// The larger states are boxed so that a `Crdt` stays a few words: states
// are moved by value through decode and merge, and nested ones by the
// thousand in maps.
crdts! {
    GCounter(GCounter<T>, GCounter),
    PNCounter(PNCounter<T>, PNCounter),
    GSet(GSet<T>, GSet),
    TwoPSet(TwoPSet<T>, TwoPSet),
    ORSet(Box<ORSet<T>>, ORSet),
    AWSet(Box<AWSet<T>>, AWSet),
    LWWRegister(LWWRegister<T>, LWWRegister),
    Boolean(Boolean<T>, Boolean),
    IVar(IVar<T>, IVar),
    MaxInt(MaxInt<T>, MaxInt),
    MVRegister(Box<MVRegister<T>>, MVRegister),
    EWFlag(Box<EWFlag<T>>, EWFlag),
    DWFlag(Box<DWFlag<T>>, DWFlag),
    LexCounter(LexCounter<T>, LexCounter),
    GMap(GMap<T>, GMap),
    Pair(Pair<T>, Pair),
    AWMap(Box<AWMap<T>>, AWMap),
    AWSetPS(Box<AWSetPS<T>>, AWSetPS),
    BCounter(BCounter<T>, BCounter),
}

impl<T: Term> Crdt<T> {
    fn mismatch(&self, other: &Self) -> BadCrdt {
        BadCrdt::TypeMismatch(self.tag(), other.tag())
    }

    /// `merge(Self, Other)` together with what `Other` added to `Self`,
    /// `delta(Other, Self)`; `None` when the merge adds nothing (its result
    /// is `equal` to `Self`). `merge(Self, Added)` equals the merged state.
    /// A replica that joins what it receives learns in one pass over the
    /// decoded states both its new state and the change to report or
    /// forward.
    pub fn merge_added(&self, other: &Self) -> Result<Option<(Merged<Self>, Self)>> {
        let merged = self.merge(other)?;
        let unchanged = match &merged {
            Merged::Left => true,
            Merged::Right => other.equal(self)?,
            Merged::New(s) => s.equal(self)?,
        };
        if unchanged {
            return Ok(None);
        }
        Ok(Some((merged, other.delta(self)?)))
    }
}
