// `lasp_converge_core::Term` over the caller's own terms. The lattices hold
// these handles and never copy an element, token or actor: results share
// them with the inputs.
//
// Each read has two ways: the fast one in `raw` (the VM's term layout,
// verified when the library loads) and enif_* here, used when `raw` is off
// (`LASP_CONVERGE_SAFE_TERMS=1`, or a layout the check does not accept).
// The unsafe code left in this file calls enif_* and wraps the terms those
// calls return (rustler's `Term::new`); it never reads a term's words.
pub mod raw;

use std::cmp::Ordering;
use std::mem::MaybeUninit;

use lasp_converge_core::{Atom, Builder, Cell, Kind, MutateCx, Term};
use rustler::sys::{self, ErlNifTerm};
use rustler::{Encoder, Env, NewBinary};

use crate::atoms;
use raw::Fast;

#[derive(Clone, Copy)]
pub struct ExTerm<'a>(pub rustler::Term<'a>);

impl std::fmt::Debug for ExTerm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'a> ExTerm<'a> {
    #[inline]
    fn raw(&self) -> ErlNifTerm {
        self.0.as_c_arg()
    }
    #[inline]
    fn env(&self) -> Env<'a> {
        self.0.get_env()
    }
    #[inline]
    fn tuple_slice(&self) -> Option<&'a [ErlNifTerm]> {
        if let Some(fast) = Fast::get() {
            return fast.tuple(self.0);
        }
        let mut arity = 0;
        let mut ptr = MaybeUninit::uninit();
        // SAFETY: enif_get_tuple only reads the term; on success the array
        // lives as long as the term's environment.
        unsafe {
            if sys::enif_get_tuple(
                self.env().as_c_arg(),
                self.raw(),
                &mut arity,
                ptr.as_mut_ptr(),
            ) != 1
            {
                return None;
            }
            Some(std::slice::from_raw_parts(
                ptr.assume_init(),
                arity as usize,
            ))
        }
    }
    #[inline]
    fn wrap(&self, t: ErlNifTerm) -> Self {
        // SAFETY: `t` comes from this term's environment.
        ExTerm(unsafe { rustler::Term::new(self.env(), t) })
    }
}

impl<'a> Term for ExTerm<'a> {
    #[inline]
    fn kind(&self) -> Kind {
        if let Some(k) = Fast::get().and_then(|f| f.kind(self.0)) {
            return k;
        }
        use rustler::TermType as T;
        match self.0.get_type() {
            T::Atom => Kind::Atom,
            T::Binary => Kind::Binary,
            T::Float => Kind::Float,
            T::Fun => Kind::Fun,
            T::Integer => Kind::Integer,
            T::List => {
                if self.0.is_empty_list() {
                    Kind::Nil
                } else {
                    Kind::List
                }
            }
            T::Map => Kind::Map,
            T::Pid => Kind::Pid,
            T::Port => Kind::Port,
            T::Ref => Kind::Reference,
            T::Tuple => Kind::Tuple,
            _ => Kind::Reference,
        }
    }
    #[inline]
    fn compare(&self, other: &Self) -> Ordering {
        if self.raw() == other.raw() {
            // The same word is the same term (an immediate, or one boxed
            // term shared by both sides).
            return Ordering::Equal;
        }
        if let Some(fast) = Fast::get() {
            return fast.compare(self.0, other.0);
        }
        // enif_compare: standard term order, arithmetic equality.
        self.0.cmp(&other.0)
    }
    fn compare_int(&self, n: i64) -> Ordering {
        if let Some(v) = Fast::get().and_then(|f| f.small(self.0)) {
            return v.cmp(&n);
        }
        // Anything else (a bignum, a float, a non-number): against `n` built
        // in this term's environment, by the same comparison.
        self.compare(&ExTerm(n.encode(self.env())))
    }
    #[inline]
    fn identical(&self, other: &Self) -> bool {
        if self.raw() == other.raw() {
            return true;
        }
        if let Some(fast) = Fast::get() {
            if fast.is_immediate(self.0) && fast.is_immediate(other.0) {
                // Distinct immediates (small integers, atoms, [], local
                // pids and ports) are never =:=.
                return false;
            }
        }
        // enif_is_identical: =:=.
        self.0 == other.0
    }
    #[inline]
    fn as_i64(&self) -> Option<i64> {
        if let Some(v) = Fast::get().and_then(|f| f.small(self.0)) {
            return Some(v);
        }
        let mut v: i64 = 0;
        // SAFETY: enif_get_int64 reads an integer term of this environment
        // and writes `v` only on success.
        if unsafe { sys::enif_get_int64(self.env().as_c_arg(), self.raw(), &mut v) } == 1 {
            Some(v)
        } else {
            None
        }
    }
    #[inline]
    fn as_bool(&self) -> Option<bool> {
        if self.raw() == atoms::get(Atom::True).as_c_arg() {
            Some(true)
        } else if self.raw() == atoms::get(Atom::False).as_c_arg() {
            Some(false)
        } else {
            None
        }
    }
    fn binary_size(&self) -> Option<usize> {
        if let Some(b) = Fast::get().and_then(|f| f.binary(self.0)) {
            return Some(b.len());
        }
        // Inspecting a binary reads its size without copying it; a bitstring
        // that is not whole bytes answers None.
        self.0.decode_as_binary().ok().map(|b| b.len())
    }
    fn too_heavy(terms: &[&Self], limit: usize) -> bool {
        match Fast::get().and_then(|f| f.too_heavy(terms, limit)) {
            Some(heavy) => heavy,
            None => lasp_converge_core::decode::too_heavy(terms, limit),
        }
    }
    #[inline]
    fn is_atom(&self, atom: Atom) -> bool {
        // Atoms are immediates: equal atoms are equal words.
        self.raw() == atoms::get(atom).as_c_arg()
    }
    #[inline]
    fn tuple_arity(&self) -> Option<usize> {
        self.tuple_slice().map(|s| s.len())
    }
    #[inline]
    fn tuple_elem(&self, i: usize) -> Option<Self> {
        self.tuple_slice()
            .and_then(|s| s.get(i))
            .map(|t| self.wrap(*t))
    }
    #[inline]
    fn as_pair(&self) -> Option<(Self, Self)> {
        match self.tuple_slice()? {
            [a, b] => Some((self.wrap(*a), self.wrap(*b))),
            _ => None,
        }
    }
    #[inline]
    fn cell(&self) -> Cell<Self> {
        if let Some(fast) = Fast::get() {
            return fast.cell(*self);
        }
        let mut h = MaybeUninit::uninit();
        let mut t = MaybeUninit::uninit();
        // SAFETY: reads a list cell; on success both outputs are written.
        if unsafe {
            sys::enif_get_list_cell(
                self.env().as_c_arg(),
                self.raw(),
                h.as_mut_ptr(),
                t.as_mut_ptr(),
            )
        } == 1
        {
            // SAFETY: written by the successful call above.
            let (h, t) = unsafe { (h.assume_init(), t.assume_init()) };
            Cell::Cons(self.wrap(h), self.wrap(t))
        } else if self.0.is_empty_list() {
            Cell::Nil
        } else {
            Cell::NotList
        }
    }
}

#[derive(Clone, Copy)]
pub struct ExBuilder<'a> {
    pub env: Env<'a>,
}

impl<'a> ExBuilder<'a> {
    #[inline]
    fn wrap(&self, t: ErlNifTerm) -> ExTerm<'a> {
        // SAFETY: `t` was made in `self.env`.
        ExTerm(unsafe { rustler::Term::new(self.env, t) })
    }
}

impl<'a> Builder for ExBuilder<'a> {
    type T = ExTerm<'a>;
    #[inline]
    fn atom(&self, atom: Atom) -> ExTerm<'a> {
        ExTerm(atoms::get(atom).to_term(self.env))
    }
    #[inline]
    fn int(&self, value: i64) -> ExTerm<'a> {
        ExTerm(value.encode(self.env))
    }
    fn int128(&self, value: i128) -> ExTerm<'a> {
        ExTerm(value.encode(self.env))
    }
    fn tuple(&self, elems: &[ExTerm<'a>]) -> ExTerm<'a> {
        let raw: Vec<ErlNifTerm> = elems.iter().map(|e| e.0.as_c_arg()).collect();
        // SAFETY: every element belongs to this environment.
        self.wrap(unsafe {
            sys::enif_make_tuple_from_array(self.env.as_c_arg(), raw.as_ptr(), raw.len() as u32)
        })
    }
    #[inline]
    fn pair(&self, a: ExTerm<'a>, b: ExTerm<'a>) -> ExTerm<'a> {
        let raw = [a.0.as_c_arg(), b.0.as_c_arg()];
        // SAFETY: as above.
        self.wrap(unsafe { sys::enif_make_tuple_from_array(self.env.as_c_arg(), raw.as_ptr(), 2) })
    }
    #[inline]
    fn nil(&self) -> ExTerm<'a> {
        ExTerm(rustler::Term::list_new_empty(self.env))
    }
    #[inline]
    fn cons(&self, head: ExTerm<'a>, tail: ExTerm<'a>) -> ExTerm<'a> {
        // SAFETY: as above.
        self.wrap(unsafe {
            sys::enif_make_list_cell(self.env.as_c_arg(), head.0.as_c_arg(), tail.0.as_c_arg())
        })
    }
    fn list(&self, elems: &[ExTerm<'a>]) -> ExTerm<'a> {
        let raw: Vec<ErlNifTerm> = elems.iter().map(|e| e.0.as_c_arg()).collect();
        // SAFETY: as above.
        self.wrap(unsafe {
            sys::enif_make_list_from_array(self.env.as_c_arg(), raw.as_ptr(), raw.len() as u32)
        })
    }
    fn binary(&self, bytes: &[u8]) -> ExTerm<'a> {
        let mut b = NewBinary::new(self.env, bytes.len());
        b.as_mut_slice().copy_from_slice(bytes);
        ExTerm(b.into())
    }
}

/// Mutations draw fresh tokens from the operating system's CSPRNG, as
/// lasp-lang/types draws `crypto:strong_rand_bytes(20)`.
pub struct ExMutate<'a> {
    pub b: ExBuilder<'a>,
}

impl<'a> MutateCx<ExTerm<'a>> for ExMutate<'a> {
    type B = ExBuilder<'a>;
    fn builder(&self) -> &ExBuilder<'a> {
        &self.b
    }
    fn token(&mut self) -> ExTerm<'a> {
        let mut bytes = [0u8; 20];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness: fall back to a time- and counter-based token,
            // still unique within this VM.
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            bytes[..8].copy_from_slice(&n.to_le_bytes());
            bytes[8..20].copy_from_slice(&t.to_le_bytes()[..12]);
        }
        self.b.binary(&bytes)
    }
}
