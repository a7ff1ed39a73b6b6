// Reads of the running VM's term layout: the fast path of `ExTerm`.
//
// Everything here reads the words behind an `ERL_NIF_TERM` as
// erts/emulator/beam/erl_term.h and erl_binary.h lay them out, instead of
// asking enif_* for each list cell, tuple or binary (one enif call per
// cell is most of the cost of decoding a large state). It is the only
// file of the crate that follows a pointer taken from a term's word.
//
// Nothing here is trusted blindly. `load` runs once when the library
// loads: it builds terms of every shape the readers handle and enables a
// family of reads only if the readers agree, word for word, with what
// enif_* answers for them. Setting `LASP_CONVERGE_SAFE_TERMS=1` in the
// VM's environment before it loads the library turns the fast path off
// altogether: every read then goes through enif_*. `path()` tells which
// one is in force (`lasp_converge_nif:term_path/0`).
//
// The rest of the crate sees only safe functions. They take a `Fast`
// token, which exists only while the checks have passed and the safe
// path is not forced, and `rustler::Term<'a>`, which is a live term of an
// environment that outlives the call: together these are the conditions
// every SAFETY comment below relies on.
use std::cmp::Ordering;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use lasp_converge_core::{Cell, Kind, Term};
use rustler::sys::{self, ErlNifTerm};
use rustler::{Encoder, Env, NewBinary};

use super::ExTerm;

/// The environment variable that forces the safe path (`1` or `true`).
pub const SAFE_TERMS_ENV: &str = "LASP_CONVERGE_SAFE_TERMS";

// The BEAM's tagging scheme (erl_term.h, unchanged since R7): the two low
// bits 0b11 mark an immediate, and the four low bits 0b1111 a small
// integer stored as `(Value << 4) | 0xF`.
const TAG_PRIMARY_MASK: u64 = 0b11;
const TAG_PRIMARY_IMMED1: u64 = 0b11;
const TAG_IMMED1_MASK: u64 = 0b1111;
const TAG_IMMED1_SMALL: u64 = 0b1111;

// Lists and tuples: a cons cell is `ptr | 0b01` to [Head, Tail]; a tuple
// is `ptr | 0b10` to a header `Arity << 6` and its elements; [] is 0x3B;
// an atom is an immediate with the six low bits 0x0B.
const TAG_PRIMARY_LIST: u64 = 0b01;
const TAG_PRIMARY_BOXED: u64 = 0b10;
const HEADER_ARITYVAL_MASK: u64 = 0x3F;
const NIL_WORD: u64 = 0x3B;
const TAG_IMMED2_MASK: u64 = 0x3F;
const TAG_IMMED2_ATOM: u64 = 0x0B;

// Binaries (erl_binary.h, OTP 21 to 26):
// - a heap binary: header (subtag 0x24), byte size, the bytes;
// - a refc binary (ProcBin): header (subtag 0x20), byte size, two words,
//   a pointer to the bytes;
// - a sub-binary: header (subtag 0x28), byte size, byte offset, a word whose
//   two low bytes are its bit size and bit offset, the original binary.
// Anything else, or a sub-binary with bits, goes through enif_compare.
// Enabled only when `check_binaries` finds that these reads agree with
// enif_inspect_binary (OTP 27 lays binaries out differently and fails it).
const HEADER_SUBTAG_MASK: u64 = 0x3F;
const REFC_BINARY_SUBTAG: u64 = 0x8 << 2;
const HEAP_BINARY_SUBTAG: u64 = 0x9 << 2;
const SUB_BINARY_SUBTAG: u64 = 0xA << 2;

// Bignums: a header with subtag 0x08 (positive) or 0x0C (negative) and the
// number of digit words as its arity, then the digits. Only their size is
// read, to weigh them; `check_bignums` verifies it on load, and without it
// every bignum weighs `UNKNOWN_BIGNUM_WEIGHT`.
const POS_BIG_SUBTAG: u64 = 0x2 << 2;
const NEG_BIG_SUBTAG: u64 = 0x3 << 2;
const UNKNOWN_BIGNUM_WEIGHT: usize = 64;

// How deep `cmp_words` follows tuples and lists before handing the pair to
// enif_compare, which compares at any depth without recursing on the C
// stack.
const CMP_DEPTH: u32 = 24;

// Set once by `load`, read on every call.
static RAW_LAYOUT: AtomicBool = AtomicBool::new(false);
static RAW_BINARY: AtomicBool = AtomicBool::new(false);
static RAW_BIGNUM: AtomicBool = AtomicBool::new(false);
static FORCED_SAFE: AtomicBool = AtomicBool::new(false);

/// Which reads are in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Lists, tuples, small integers and atoms (and, where verified,
    /// binaries and bignum sizes) are read from their words.
    Fast,
    /// Every read goes through enif_*: forced, or the layout check failed.
    Safe,
}

/// What the library found on load, as `lasp_converge_nif:nif_info/0`
/// reports it.
pub struct Info {
    pub raw_layout: bool,
    pub raw_binary: bool,
    pub raw_bignum: bool,
    pub safe_forced: bool,
}

/// Decide, once per load, which reads may be used: none if the safe path is
/// forced, else those whose check passes.
pub fn load(env: Env) {
    let forced = safe_forced_by_env();
    FORCED_SAFE.store(forced, AtomicOrdering::Relaxed);
    let layout = !forced && check_layout(env);
    RAW_LAYOUT.store(layout, AtomicOrdering::Relaxed);
    RAW_BINARY.store(layout && check_binaries(env), AtomicOrdering::Relaxed);
    RAW_BIGNUM.store(layout && check_bignums(env), AtomicOrdering::Relaxed);
}

fn safe_forced_by_env() -> bool {
    std::env::var(SAFE_TERMS_ENV)
        .map(|v| matches!(v.trim(), "1" | "true"))
        .unwrap_or(false)
}

/// The path in force.
pub fn path() -> Path {
    if Fast::get().is_some() {
        Path::Fast
    } else {
        Path::Safe
    }
}

/// The flags set by `load`.
pub fn info() -> Info {
    Info {
        raw_layout: RAW_LAYOUT.load(AtomicOrdering::Relaxed),
        raw_binary: RAW_BINARY.load(AtomicOrdering::Relaxed),
        raw_bignum: RAW_BIGNUM.load(AtomicOrdering::Relaxed),
        safe_forced: FORCED_SAFE.load(AtomicOrdering::Relaxed),
    }
}

#[inline]
fn word(t: rustler::Term) -> u64 {
    term_word(t.as_c_arg())
}

#[inline]
fn term_word(t: ErlNifTerm) -> u64 {
    // SAFETY: ERL_NIF_TERM is a `#[repr(transparent)]` newtype of a
    // word-sized unsigned integer (size_t); every bit pattern is a u64 on
    // the 64-bit targets the layout checks accept.
    unsafe { std::mem::transmute::<ErlNifTerm, u64>(t) }
}

#[inline]
fn word_term(w: u64) -> ErlNifTerm {
    // SAFETY: as for `term_word`, the other way round.
    unsafe { std::mem::transmute::<u64, ErlNifTerm>(w) }
}

#[inline]
fn is_small(w: u64) -> bool {
    w & TAG_IMMED1_MASK == TAG_IMMED1_SMALL
}

#[inline]
fn is_immediate(w: u64) -> bool {
    w & TAG_PRIMARY_MASK == TAG_PRIMARY_IMMED1
}

/// Proof that the list, tuple and immediate reads were verified on load and
/// the safe path is not forced. Only `Fast::get` makes one.
#[derive(Clone, Copy)]
pub struct Fast(());

impl Fast {
    #[inline]
    pub fn get() -> Option<Fast> {
        if RAW_LAYOUT.load(AtomicOrdering::Relaxed) {
            Some(Fast(()))
        } else {
            None
        }
    }

    #[inline]
    fn binaries(self) -> bool {
        RAW_BINARY.load(AtomicOrdering::Relaxed)
    }

    #[inline]
    fn bignums(self) -> bool {
        RAW_BIGNUM.load(AtomicOrdering::Relaxed)
    }

    /// A small integer's value; `None` for any other term.
    #[inline]
    pub fn small(self, t: rustler::Term) -> Option<i64> {
        let w = word(t);
        is_small(w).then_some((w as i64) >> 4)
    }

    /// Whether a term is an immediate (small integer, atom, [], local pid
    /// or port): distinct immediates are never `=:=`.
    #[inline]
    pub fn is_immediate(self, t: rustler::Term) -> bool {
        is_immediate(word(t))
    }

    /// The common classes straight from the tag bits; `None` for the rest.
    #[inline]
    pub fn kind(self, t: rustler::Term) -> Option<Kind> {
        let w = word(t);
        match w & TAG_PRIMARY_MASK {
            TAG_PRIMARY_LIST => Some(Kind::List),
            TAG_PRIMARY_IMMED1 if is_small(w) => Some(Kind::Integer),
            TAG_PRIMARY_IMMED1 if w == NIL_WORD => Some(Kind::Nil),
            TAG_PRIMARY_IMMED1 if w & TAG_IMMED2_MASK == TAG_IMMED2_ATOM => Some(Kind::Atom),
            // SAFETY: a live term (`t`); layout verified on load (`self`).
            TAG_PRIMARY_BOXED if unsafe { raw_tuple(w) }.is_some() => Some(Kind::Tuple),
            // SAFETY: as above.
            TAG_PRIMARY_BOXED if unsafe { class(w) } == Some(CLASS_BINARY) => Some(Kind::Binary),
            _ => None,
        }
    }

    /// The elements of a tuple; `None` for any other term.
    #[inline]
    pub fn tuple<'a>(self, t: rustler::Term<'a>) -> Option<&'a [ErlNifTerm]> {
        // SAFETY: a live term of an environment that outlives 'a, so its
        // elements do too; layout verified on load.
        unsafe { raw_tuple(word(t)) }
    }

    /// The head and tail of a list cell, `Nil` for [], `NotList` otherwise.
    #[inline]
    pub fn cell<'a>(self, t: ExTerm<'a>) -> Cell<ExTerm<'a>> {
        let w = word(t.0);
        // SAFETY: a live term; layout verified on load.
        match unsafe { raw_cell(w) } {
            Some((h, tl)) => Cell::Cons(wrap(t, h), wrap(t, tl)),
            None if w == NIL_WORD => Cell::Nil,
            None => Cell::NotList,
        }
    }

    /// The bytes of a heap, refc or byte-aligned sub-binary; `None` for any
    /// other term, or when the binary layout was not verified.
    #[inline]
    pub fn binary<'a>(self, t: rustler::Term<'a>) -> Option<&'a [u8]> {
        if !self.binaries() {
            return None;
        }
        // SAFETY: a live term of an environment that outlives 'a (and with
        // it the binary's bytes); binary layout verified on load.
        unsafe { raw_binary(word(t)) }
    }

    /// The standard term order (with `==` for numbers), as enif_compare
    /// gives it.
    #[inline]
    pub fn compare(self, a: rustler::Term, b: rustler::Term) -> Ordering {
        // SAFETY: live terms; layout verified on load.
        unsafe { cmp_words(word(a), word(b), CMP_DEPTH) }
    }

    /// `decode::too_heavy` read from the words; `None` when binaries are
    /// not read from their words (the caller then walks the terms).
    pub fn too_heavy(self, terms: &[&ExTerm], limit: usize) -> Option<bool> {
        if !self.binaries() {
            return None;
        }
        // SAFETY: live terms; list, tuple and binary layouts verified on
        // load; bignum headers read only if `check_bignums` passed.
        Some(unsafe { raw_too_heavy(terms, limit, self.bignums()) })
    }
}

/// A term of `like`'s environment from a word read out of one of its terms.
#[inline]
fn wrap<'a>(like: ExTerm<'a>, w: u64) -> ExTerm<'a> {
    // SAFETY: `w` was read from a live term of this environment, so it is
    // a term of the same environment.
    ExTerm(unsafe { rustler::Term::new(like.0.get_env(), word_term(w)) })
}

/// The head and tail words of a cons cell.
///
/// # Safety
/// `w` must be a live term and the layout check must have passed.
#[inline]
unsafe fn raw_cell(w: u64) -> Option<(u64, u64)> {
    if w & TAG_PRIMARY_MASK != TAG_PRIMARY_LIST {
        return None;
    }
    let p = (w - TAG_PRIMARY_LIST) as *const u64;
    // SAFETY: a cons cell's pointer addresses its two words.
    unsafe { Some((*p, *p.add(1))) }
}

/// The elements of a tuple.
///
/// # Safety
/// As for `raw_cell`; the slice lives as long as the term.
#[inline]
unsafe fn raw_tuple<'t>(w: u64) -> Option<&'t [ErlNifTerm]> {
    if w & TAG_PRIMARY_MASK != TAG_PRIMARY_BOXED {
        return None;
    }
    let p = (w - TAG_PRIMARY_BOXED) as *const u64;
    // SAFETY: a boxed term's pointer addresses its header word; a header
    // with arityval 0 is a tuple's, followed by `arity` element words.
    unsafe {
        let header = *p;
        if header & HEADER_ARITYVAL_MASK != 0 {
            return None;
        }
        let arity = (header >> 6) as usize;
        Some(std::slice::from_raw_parts(
            p.add(1) as *const ErlNifTerm,
            arity,
        ))
    }
}

/// The bytes of a heap, refc or byte-aligned sub-binary.
///
/// # Safety
/// `w` must be a live term and `check_binaries` must have passed; the
/// slice lives as long as the term.
#[inline]
unsafe fn raw_binary<'t>(w: u64) -> Option<&'t [u8]> {
    if w & TAG_PRIMARY_MASK != TAG_PRIMARY_BOXED {
        return None;
    }
    let p = (w - TAG_PRIMARY_BOXED) as *const u64;
    // SAFETY: `p` addresses a boxed header; the words after it are read
    // only once the subtag says which binary layout follows, and the
    // original of a sub-binary is checked to be boxed before following it.
    unsafe {
        match *p & HEADER_SUBTAG_MASK {
            SUB_BINARY_SUBTAG if *p.add(3) & 0xFFFF == 0 => {
                let (size, offs) = (*p.add(1) as usize, *p.add(2) as usize);
                // The original is always a heap or refc binary.
                let orig = *p.add(4);
                if orig & TAG_PRIMARY_MASK != TAG_PRIMARY_BOXED {
                    return None;
                }
                let (ptr, len) = raw_whole_binary((orig - TAG_PRIMARY_BOXED) as *const u64)?;
                std::slice::from_raw_parts(ptr, len).get(offs..offs.checked_add(size)?)
            }
            _ => {
                let (ptr, len) = raw_whole_binary(p)?;
                Some(std::slice::from_raw_parts(ptr, len))
            }
        }
    }
}

/// Where the bytes of a heap or refc binary are, from its header pointer.
///
/// # Safety
/// `p` must point to the header of a live boxed term.
#[inline]
unsafe fn raw_whole_binary(p: *const u64) -> Option<(*const u8, usize)> {
    // SAFETY: the header is read first; a heap binary's size and bytes, or
    // a ProcBin's size and byte pointer, only once it names that layout.
    unsafe {
        match *p & HEADER_SUBTAG_MASK {
            HEAP_BINARY_SUBTAG => Some((p.add(2) as *const u8, *p.add(1) as usize)),
            REFC_BINARY_SUBTAG => Some((*p.add(4) as *const u8, *p.add(1) as usize)),
            _ => None,
        }
    }
}

/// Byte-wise order of two binaries (shorter first on a common prefix), eight
/// bytes a step: most keys differ in their first word.
#[inline]
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    // The last 0-7 bytes of each, zero-padded: zeros order below any byte,
    // so padded values order as the bytes do, and a tie is a common prefix.
    // Built a byte at a time: a copy into a buffer would be a call to
    // memcpy per comparison, most of the cost of comparing short keys.
    let tail = |s: &[u8]| {
        let r = &s[i..(i + 8).min(s.len())];
        let mut w = 0u64;
        for (k, b) in r.iter().enumerate() {
            w |= u64::from(*b) << (56 - 8 * k);
        }
        w
    };
    tail(a).cmp(&tail(b)).then(a.len().cmp(&b.len()))
}

// The classes of the standard term order that `cmp_words` tells apart by
// their tags: number < atom < ... < tuple < ... < [] < list < bitstring.
const CLASS_NUMBER: u8 = 0;
const CLASS_ATOM: u8 = 1;
const CLASS_TUPLE: u8 = 6;
const CLASS_NIL: u8 = 8;
const CLASS_LIST: u8 = 9;
const CLASS_BINARY: u8 = 10;

/// The order class of a term, for the shapes read without enif calls;
/// `None` for the rest (floats, bignums, pids, maps, ...).
///
/// # Safety
/// As for `raw_cell`.
#[inline]
unsafe fn class(w: u64) -> Option<u8> {
    match w & TAG_PRIMARY_MASK {
        TAG_PRIMARY_LIST => Some(CLASS_LIST),
        TAG_PRIMARY_IMMED1 if is_small(w) => Some(CLASS_NUMBER),
        TAG_PRIMARY_IMMED1 if w == NIL_WORD => Some(CLASS_NIL),
        TAG_PRIMARY_IMMED1 if w & TAG_IMMED2_MASK == TAG_IMMED2_ATOM => Some(CLASS_ATOM),
        TAG_PRIMARY_BOXED => {
            // SAFETY: a boxed term's pointer addresses its header word.
            let h = unsafe { *((w - TAG_PRIMARY_BOXED) as *const u64) } & HEADER_SUBTAG_MASK;
            if h == 0 {
                Some(CLASS_TUPLE)
            } else if (h == HEAP_BINARY_SUBTAG || h == REFC_BINARY_SUBTAG || h == SUB_BINARY_SUBTAG)
                && RAW_BINARY.load(AtomicOrdering::Relaxed)
            {
                Some(CLASS_BINARY)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The standard term order (with `==` for numbers), as enif_compare gives
/// it, reading small integers, tuples, lists and whole binaries from their
/// words and asking enif_compare only for the pairs it cannot order so
/// (two different atoms, floats, bignums, pids, maps, sub-binaries, ...).
/// Tuples order by arity, then element by element; lists element by
/// element, `[]` first; binaries byte by byte, a prefix first.
///
/// # Safety
/// `a` and `b` must be live terms and the layout check must have passed.
unsafe fn cmp_words(a: u64, b: u64, depth: u32) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    if is_small(a) && is_small(b) {
        return (a as i64).cmp(&(b as i64));
    }
    // SAFETY (whole block): every word followed is `a`, `b` or one read out
    // of them by the readers above, so a live term; layout verified.
    unsafe {
        if depth > 0 {
            match (class(a), class(b)) {
                (Some(x), Some(y)) if x != y => return x.cmp(&y),
                (Some(CLASS_TUPLE), Some(CLASS_TUPLE)) => {
                    if let (Some(ta), Some(tb)) = (raw_tuple(a), raw_tuple(b)) {
                        let by_arity = ta.len().cmp(&tb.len());
                        if by_arity != Ordering::Equal {
                            return by_arity;
                        }
                        for (x, y) in ta.iter().zip(tb) {
                            let o = cmp_words(term_word(*x), term_word(*y), depth - 1);
                            if o != Ordering::Equal {
                                return o;
                            }
                        }
                        return Ordering::Equal;
                    }
                }
                (Some(CLASS_BINARY), Some(CLASS_BINARY)) => {
                    if let (Some(x), Some(y)) = (raw_binary(a), raw_binary(b)) {
                        return cmp_bytes(x, y);
                    }
                }
                (Some(CLASS_LIST), Some(CLASS_LIST)) => {
                    let (mut a, mut b) = (a, b);
                    loop {
                        match (raw_cell(a), raw_cell(b)) {
                            (Some((ha, ta)), Some((hb, tb))) => {
                                let o = cmp_words(ha, hb, depth - 1);
                                if o != Ordering::Equal {
                                    return o;
                                }
                                if ta == tb {
                                    return Ordering::Equal;
                                }
                                (a, b) = (ta, tb);
                            }
                            // A tail that is not a cons cell: [] or an
                            // improper tail, ordered as any other pair.
                            _ => return cmp_words(a, b, depth - 1),
                        }
                    }
                }
                _ => {}
            }
        }
        sys::enif_compare(word_term(a), word_term(b)).cmp(&0)
    }
}

/// `decode::too_heavy` read from the words: the same weights (a list cell,
/// a tuple, an immediate or any other term 1; a binary 1 per 64 bytes, plus
/// 1; a map or a bitstring too heavy), with immediates counted where they
/// are met rather than stacked.
///
/// # Safety
/// Live terms; list, tuple and binary layouts verified on load; bignum
/// headers verified if `bignums`.
unsafe fn raw_too_heavy(terms: &[&ExTerm], limit: usize, bignums: bool) -> bool {
    let Some(first) = terms.first() else {
        return false;
    };
    let mut left = limit;
    let mut stack: Vec<u64> = Vec::with_capacity(32);
    stack.extend(terms.iter().map(|t| word(t.0)));
    while let Some(mut w) = stack.pop() {
        loop {
            if left == 0 {
                return true;
            }
            left -= 1;
            match w & TAG_PRIMARY_MASK {
                TAG_PRIMARY_LIST => {
                    let p = (w - TAG_PRIMARY_LIST) as *const u64;
                    // SAFETY: a cons cell's pointer addresses [Head, Tail].
                    let (h, tail) = unsafe { (*p, *p.add(1)) };
                    if h & TAG_PRIMARY_MASK != TAG_PRIMARY_IMMED1 {
                        stack.push(h);
                    } else if left == 0 {
                        return true;
                    } else {
                        left -= 1;
                    }
                    w = tail;
                    continue;
                }
                TAG_PRIMARY_BOXED => {
                    let p = (w - TAG_PRIMARY_BOXED) as *const u64;
                    // SAFETY: a boxed term's pointer addresses its header.
                    let header = unsafe { *p };
                    match header & HEADER_SUBTAG_MASK {
                        0 => {
                            let arity = (header >> 6) as usize;
                            for i in 1..=arity {
                                // SAFETY: a tuple's header is followed by
                                // its `arity` elements.
                                let e = unsafe { *p.add(i) };
                                if e & TAG_PRIMARY_MASK != TAG_PRIMARY_IMMED1 {
                                    stack.push(e);
                                } else if left == 0 {
                                    return true;
                                } else {
                                    left -= 1;
                                }
                            }
                        }
                        REFC_BINARY_SUBTAG | HEAP_BINARY_SUBTAG | SUB_BINARY_SUBTAG => {
                            // SAFETY: a live binary; binary layout verified.
                            match unsafe { raw_binary(w) } {
                                Some(b) if b.len() / 64 <= left => left -= b.len() / 64,
                                _ => return true,
                            }
                        }
                        // A bignum weighs 1 per 8 digit words (64 bytes, as
                        // a binary): comparing two that differ only in their
                        // last digit reads them whole.
                        POS_BIG_SUBTAG | NEG_BIG_SUBTAG if bignums => {
                            let extra = ((header >> 6) as usize) / 8;
                            if extra > left {
                                return true;
                            }
                            left -= extra;
                        }
                        // Maps (and anything else boxed) as the generic walk
                        // classes them.
                        _ => match wrap(**first, w).kind() {
                            // A fun compares by its environment too,
                            // which can be any size.
                            Kind::Map | Kind::Fun => return true,
                            // A bignum whose layout was not verified:
                            // as heavy as a 4 kB binary.
                            Kind::Integer if UNKNOWN_BIGNUM_WEIGHT > left => return true,
                            Kind::Integer => left -= UNKNOWN_BIGNUM_WEIGHT,
                            _ => {}
                        },
                    }
                }
                _ => {}
            }
            break;
        }
    }
    false
}

/// Check that the raw list, tuple, atom and small-integer reads agree with
/// enif_* on terms of every shape the decoders walk.
fn check_layout(env: Env) -> bool {
    let ints: Vec<rustler::Term> = [-7i64, 0, 1, 1 << 40, -(1 << 59)]
        .iter()
        .map(|i| i.encode(env))
        .collect();
    let big = (1i64 << 62).encode(env);
    let list = ints.as_slice().encode(env);
    let nested = (rustler::types::atom::ok(), list, (1.5f64, big), ()).encode(env);
    let tuples = [
        ints[0],
        nested,
        rustler::Term::list_new_empty(env),
        rustler::types::atom::ok().encode(env),
        list,
        big,
    ];
    let mut ok = word(rustler::Term::list_new_empty(env)) == NIL_WORD;
    for a in [
        rustler::types::atom::ok(),
        rustler::types::atom::undefined(),
        rustler::types::atom::true_(),
    ] {
        ok &= word(a.to_term(env)) & TAG_IMMED2_MASK == TAG_IMMED2_ATOM;
    }
    // No integer, list, tuple or [] looks like an atom.
    for t in [
        ints[0],
        ints[3],
        list,
        nested,
        rustler::Term::list_new_empty(env),
        big,
    ] {
        let w = word(t);
        ok &=
            !(w & TAG_PRIMARY_MASK == TAG_PRIMARY_IMMED1 && w & TAG_IMMED2_MASK == TAG_IMMED2_ATOM);
    }
    for t in tuples.iter().chain(ints.iter()) {
        let w = word(*t);
        // SAFETY: `t` is a live term of this environment; the raw readers
        // only follow a pointer after checking its tag.
        let (cell, tuple) = unsafe { (raw_cell(w), raw_tuple(w)) };
        let want_cell = t.list_get_cell().ok().map(|(h, t)| (word(h), word(t)));
        ok &= cell == want_cell;
        let want_tuple = rustler::types::tuple::get_tuple(*t)
            .ok()
            .map(|v| v.into_iter().map(word).collect::<Vec<_>>());
        ok &= tuple.map(|s| s.iter().map(|e| term_word(*e)).collect::<Vec<_>>()) == want_tuple;
        let want_small = t.decode::<i64>().ok().filter(|_| is_small(w));
        ok &= (if is_small(w) {
            Some((w as i64) >> 4)
        } else {
            None
        }) == want_small;
    }
    // Walk the whole list both ways.
    let mut w = word(list);
    for i in &ints {
        // SAFETY: as above.
        match unsafe { raw_cell(w) } {
            Some((h, t)) => {
                ok &= h == word(*i);
                w = t;
            }
            None => ok = false,
        }
        if !ok {
            break;
        }
    }
    ok && w == NIL_WORD
}

/// Whether `raw_binary` reads the same bytes as enif_inspect_binary, for
/// small binaries (kept on the process heap), large ones (reference
/// counted) and sub-binaries of both, and recognises neither an integer nor
/// a tuple as a binary. Each word is checked against what it must hold
/// before any pointer read from it is followed.
fn check_binaries(env: Env) -> bool {
    let mut ok = true;
    let mut whole = 0;
    let mut subs = 0;
    for size in [0usize, 5, 40, 64, 65, 300] {
        let mut b = NewBinary::new(env, size);
        for (i, x) in b.as_mut_slice().iter_mut().enumerate() {
            *x = (i * 7 + size) as u8;
        }
        let t: rustler::Term = b.into();
        let Ok(want) = t.decode_as_binary() else {
            return false;
        };
        let p = (word(t) - TAG_PRIMARY_BOXED) as *const u64;
        if word(t) & TAG_PRIMARY_MASK != TAG_PRIMARY_BOXED {
            return false;
        }
        // SAFETY: `p` points to the header of this live binary.
        if let Some((ptr, len)) = unsafe { raw_whole_binary(p) } {
            if ptr != want.as_slice().as_ptr() || len != want.len() {
                return false;
            }
            whole += 1;
        }
        if size < 10 {
            continue;
        }
        let (off, len) = (3usize, 7usize);
        let Ok(sub) = want.make_subbinary(off, len) else {
            return false;
        };
        let sub: rustler::Term = sub.to_term(env);
        let Ok(want_sub) = sub.decode_as_binary() else {
            return false;
        };
        let w = word(sub);
        if w & TAG_PRIMARY_MASK != TAG_PRIMARY_BOXED {
            return false;
        }
        let q = (w - TAG_PRIMARY_BOXED) as *const u64;
        // SAFETY: `q` points to the header of this live sub-binary; the
        // words after it are read only once the header says it is one of
        // the five-word layout above.
        unsafe {
            if *q & HEADER_SUBTAG_MASK == SUB_BINARY_SUBTAG {
                ok &= *q.add(1) == len as u64
                    && *q.add(2) == off as u64
                    && *q.add(3) & 0xFFFF == 0
                    && *q.add(4) == word(t);
                if !ok {
                    return false;
                }
                ok &= raw_binary(w).map(|s| (s.as_ptr(), s.len()))
                    == Some((want_sub.as_slice().as_ptr(), want_sub.len()));
                subs += 1;
            }
        }
    }
    for t in [1i64.encode(env), (1, 2).encode(env)] {
        // SAFETY: as above; the reader checks the tag first.
        ok &= unsafe { raw_binary(word(t)) }.is_none();
    }
    ok && whole > 0 && subs > 0
}

/// Whether bignum headers read as `raw_too_heavy` expects: sign in the
/// subtag, digit words in the arity (64-bit digits).
fn check_bignums(env: Env) -> bool {
    let cases = [
        (u64::MAX.encode(env), POS_BIG_SUBTAG, 1u64),
        (i64::MIN.encode(env), NEG_BIG_SUBTAG, 1),
        (u128::MAX.encode(env), POS_BIG_SUBTAG, 2),
    ];
    cases.iter().all(|(t, subtag, words)| {
        let w = word(*t);
        if w & TAG_PRIMARY_MASK != TAG_PRIMARY_BOXED || t.get_type() != rustler::TermType::Integer {
            return false;
        }
        // SAFETY: a live boxed term; only its header word is read.
        let header = unsafe { *((w - TAG_PRIMARY_BOXED) as *const u64) };
        header & HEADER_SUBTAG_MASK == *subtag && header >> 6 == *words
    })
}
