// `lasp_converge_core::Term` over the caller's own terms. The lattices hold
// these handles and never copy an element, token or actor: results share
// them with the inputs.
use std::cmp::Ordering;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use lasp_converge_core::{Atom, Builder, Cell, Kind, MutateCx, Term};
use rustler::sys::{self, ErlNifTerm};
use rustler::{Encoder, Env, NewBinary};

use crate::atoms;

#[derive(Clone, Copy)]
pub struct ExTerm<'a>(pub rustler::Term<'a>);

impl std::fmt::Debug for ExTerm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

// The BEAM's tagging scheme (erts/emulator/beam/erl_term.h, unchanged since
// R7): the two low bits 0b11 mark an immediate, and the four low bits 0b1111
// a small integer stored as `(Value << 4) | 0xF`. Reading them only speeds up
// comparisons of immediates; every other term goes through enif_compare.
const TAG_PRIMARY_MASK: u64 = 0b11;
const TAG_PRIMARY_IMMED1: u64 = 0b11;
const TAG_IMMED1_MASK: u64 = 0b1111;
const TAG_IMMED1_SMALL: u64 = 0b1111;

// Lists and tuples are read straight from their words when the running VM
// lays them out as erl_term.h describes (a cons cell is `ptr | 0b01` to
// [Head, Tail]; a tuple is `ptr | 0b10` to a header `Arity << 6` and its
// elements; [] is 0x3B). `check_layout` verifies that on load against the
// enif_* answers for terms it builds; if anything differs, every read goes
// through enif_* instead. One enif call per list cell or tuple is most of
// the cost of decoding a large state.
const TAG_PRIMARY_LIST: u64 = 0b01;
const TAG_PRIMARY_BOXED: u64 = 0b10;
const HEADER_ARITYVAL_MASK: u64 = 0x3F;
const NIL_WORD: u64 = 0x3B;
const TAG_IMMED2_MASK: u64 = 0x3F;
const TAG_IMMED2_ATOM: u64 = 0x0B;

static RAW_LAYOUT: AtomicBool = AtomicBool::new(false);

// Binaries read straight from their words too (erl_binary.h, OTP 21 to 26):
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

static RAW_BINARY: AtomicBool = AtomicBool::new(false);

// Bignums (erl_term.h): a header with subtag 0x08 (positive) or 0x0C
// (negative) and the number of digit words as its arity, then the digits.
// Only their size is read, to weigh them; `check_bignums` verifies it on
// load, and without it every bignum weighs `UNKNOWN_BIGNUM_WEIGHT`.
const POS_BIG_SUBTAG: u64 = 0x2 << 2;
const NEG_BIG_SUBTAG: u64 = 0x3 << 2;
const UNKNOWN_BIGNUM_WEIGHT: usize = 64;

static RAW_BIGNUM: AtomicBool = AtomicBool::new(false);

#[inline]
fn raw_bignum() -> bool {
    RAW_BIGNUM.load(AtomicOrdering::Relaxed)
}

// How deep `cmp_words` follows tuples and lists before handing the pair to
// enif_compare, which compares at any depth without recursing on the C
// stack.
const CMP_DEPTH: u32 = 24;

#[inline]
fn raw_layout() -> bool {
    RAW_LAYOUT.load(AtomicOrdering::Relaxed)
}

/// Whether the raw list/tuple reads are enabled.
pub fn raw_layout_enabled() -> bool {
    raw_layout()
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
    Some((*p, *p.add(1)))
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

/// Where the bytes of a heap or refc binary are, from its header pointer.
///
/// # Safety
/// `p` must point to the header of a live boxed term.
#[inline]
unsafe fn raw_whole_binary(p: *const u64) -> Option<(*const u8, usize)> {
    match *p & HEADER_SUBTAG_MASK {
        HEAP_BINARY_SUBTAG => Some((p.add(2) as *const u8, *p.add(1) as usize)),
        REFC_BINARY_SUBTAG => Some((*p.add(4) as *const u8, *p.add(1) as usize)),
        _ => None,
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
            let h = *((w - TAG_PRIMARY_BOXED) as *const u64) & HEADER_SUBTAG_MASK;
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

/// `decode::too_heavy` read from the words: the same weights (a list cell,
/// a tuple, an immediate or any other term 1; a binary 1 per 64 bytes, plus
/// 1; a map or a bitstring too heavy), with immediates counted where they
/// are met rather than stacked.
///
/// # Safety
/// Live terms; list, tuple and binary layouts verified on load.
unsafe fn raw_too_heavy(terms: &[&ExTerm], limit: usize) -> bool {
    let mut left = limit;
    let mut stack: Vec<u64> = Vec::with_capacity(32);
    stack.extend(terms.iter().map(|t| t.raw_word()));
    while let Some(mut w) = stack.pop() {
        loop {
            if left == 0 {
                return true;
            }
            left -= 1;
            match w & TAG_PRIMARY_MASK {
                TAG_PRIMARY_LIST => {
                    let p = (w - TAG_PRIMARY_LIST) as *const u64;
                    let h = *p;
                    if h & TAG_PRIMARY_MASK != TAG_PRIMARY_IMMED1 {
                        stack.push(h);
                    } else if left == 0 {
                        return true;
                    } else {
                        left -= 1;
                    }
                    w = *p.add(1);
                    continue;
                }
                TAG_PRIMARY_BOXED => {
                    let p = (w - TAG_PRIMARY_BOXED) as *const u64;
                    let header = *p;
                    match header & HEADER_SUBTAG_MASK {
                        0 => {
                            let arity = (header >> 6) as usize;
                            for i in 1..=arity {
                                let e = *p.add(i);
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
                            match raw_binary(w) {
                                Some(b) if b.len() / 64 <= left => left -= b.len() / 64,
                                _ => return true,
                            }
                        }
                        // A bignum weighs 1 per 8 digit words (64 bytes, as
                        // a binary): comparing two that differ only in their
                        // last digit reads them whole.
                        POS_BIG_SUBTAG | NEG_BIG_SUBTAG if raw_bignum() => {
                            let extra = ((header >> 6) as usize) / 8;
                            if extra > left {
                                return true;
                            }
                            left -= extra;
                        }
                        // Maps (and anything else boxed) as the generic walk
                        // classes them.
                        _ => {
                            let t = ExTerm(rustler::Term::new(terms[0].env(), word_term(w)));
                            match t.kind() {
                                // A fun compares by its environment too,
                                // which can be any size.
                                Kind::Map | Kind::Fun => return true,
                                // A bignum whose layout was not verified:
                                // as heavy as a 4 kB binary.
                                Kind::Integer if UNKNOWN_BIGNUM_WEIGHT > left => return true,
                                Kind::Integer => left -= UNKNOWN_BIGNUM_WEIGHT,
                                _ => {}
                            }
                        }
                    }
                }
                _ => {}
            }
            break;
        }
    }
    false
}

#[inline]
fn term_word(t: ErlNifTerm) -> u64 {
    // SAFETY: ERL_NIF_TERM is a word-sized integer newtype.
    unsafe { std::mem::transmute::<ErlNifTerm, u64>(t) }
}

#[inline]
fn word_term(w: u64) -> ErlNifTerm {
    // SAFETY: as above.
    unsafe { std::mem::transmute::<u64, ErlNifTerm>(w) }
}

fn word(t: rustler::Term) -> u64 {
    // SAFETY: ERL_NIF_TERM is a word-sized integer newtype.
    unsafe { std::mem::transmute::<ErlNifTerm, u64>(t.as_c_arg()) }
}

/// Check, once per load, that the raw reads agree with enif_* on terms of
/// every shape the decoders walk; enable them only if they do.
pub fn check_layout(env: Env) -> bool {
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
        ok &= tuple.map(|s| {
            s.iter()
                .map(|e| unsafe { std::mem::transmute::<ErlNifTerm, u64>(*e) })
                .collect::<Vec<_>>()
        }) == want_tuple;
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
    ok &= w == NIL_WORD;
    RAW_LAYOUT.store(ok, AtomicOrdering::Relaxed);
    RAW_BINARY.store(ok && check_binaries(env), AtomicOrdering::Relaxed);
    RAW_BIGNUM.store(ok && check_bignums(env), AtomicOrdering::Relaxed);
    ok
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

/// Whether bignums are weighed by their size (see `check_bignums`).
pub fn raw_bignum_enabled() -> bool {
    raw_bignum()
}

/// Whether binaries are read from their words (see `check_binaries`).
pub fn raw_binary_enabled() -> bool {
    RAW_BINARY.load(AtomicOrdering::Relaxed)
}

#[inline]
fn is_immediate(w: u64) -> bool {
    w & TAG_PRIMARY_MASK == TAG_PRIMARY_IMMED1
}

#[inline]
fn is_small(w: u64) -> bool {
    w & TAG_IMMED1_MASK == TAG_IMMED1_SMALL
}

impl<'a> ExTerm<'a> {
    #[inline]
    fn raw(&self) -> ErlNifTerm {
        self.0.as_c_arg()
    }
    #[inline]
    fn raw_word(&self) -> u64 {
        // SAFETY: ERL_NIF_TERM is a word-sized integer newtype.
        unsafe { std::mem::transmute::<ErlNifTerm, u64>(self.0.as_c_arg()) }
    }
    #[inline]
    fn env(&self) -> Env<'a> {
        self.0.get_env()
    }
    #[inline]
    fn tuple_slice(&self) -> Option<&'a [ErlNifTerm]> {
        if raw_layout() {
            // SAFETY: a live term; layout verified on load.
            return unsafe { raw_tuple(self.raw_word()) };
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
    fn wrap_word(&self, w: u64) -> Self {
        // SAFETY: `w` was read from a term of this environment.
        self.wrap(unsafe { std::mem::transmute::<u64, ErlNifTerm>(w) })
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
        if raw_layout() {
            // The common classes straight from the tag bits (verified on
            // load); the rest through enif_term_type.
            let w = self.raw_word();
            match w & TAG_PRIMARY_MASK {
                TAG_PRIMARY_LIST => return Kind::List,
                TAG_PRIMARY_IMMED1 if is_small(w) => return Kind::Integer,
                TAG_PRIMARY_IMMED1 if w == NIL_WORD => return Kind::Nil,
                TAG_PRIMARY_IMMED1 if w & TAG_IMMED2_MASK == TAG_IMMED2_ATOM => return Kind::Atom,
                // SAFETY: a live term; layout verified on load.
                TAG_PRIMARY_BOXED if unsafe { raw_tuple(w) }.is_some() => return Kind::Tuple,
                // SAFETY: as above.
                TAG_PRIMARY_BOXED if unsafe { class(w) } == Some(CLASS_BINARY) => {
                    return Kind::Binary
                }
                _ => {}
            }
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
        let (a, b) = (self.raw_word(), other.raw_word());
        if a == b {
            // The same word is the same term (an immediate, or one boxed
            // term shared by both sides).
            return Ordering::Equal;
        }
        if is_small(a) && is_small(b) {
            // Two small integers: equal tags, so the tagged words order as
            // the integers do.
            return (a as i64).cmp(&(b as i64));
        }
        if raw_layout() {
            // SAFETY: live terms; layout verified on load.
            return unsafe { cmp_words(a, b, CMP_DEPTH) };
        }
        // enif_compare: standard term order, arithmetic equality.
        self.0.cmp(&other.0)
    }
    fn compare_int(&self, n: i64) -> Ordering {
        let w = self.raw_word();
        if is_small(w) {
            return ((w as i64) >> 4).cmp(&n);
        }
        // Anything else (a bignum, a float, a non-number): against `n` built
        // in this term's environment, by the same comparison.
        self.compare(&ExTerm(n.encode(self.env())))
    }
    #[inline]
    fn identical(&self, other: &Self) -> bool {
        let (a, b) = (self.raw_word(), other.raw_word());
        if a == b {
            return true;
        }
        if is_immediate(a) && is_immediate(b) {
            // Distinct immediates (small integers, atoms, [], local pids
            // and ports) are never =:=.
            return false;
        }
        // enif_is_identical: =:=.
        self.0 == other.0
    }
    #[inline]
    fn as_i64(&self) -> Option<i64> {
        let w = self.raw_word();
        if is_small(w) {
            return Some((w as i64) >> 4);
        }
        let mut v: i64 = 0;
        // SAFETY: reads an integer term.
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
        if raw_layout() && raw_binary_enabled() {
            // SAFETY: a live term; binary layout verified on load.
            if let Some(b) = unsafe { raw_binary(self.raw_word()) } {
                return Some(b.len());
            }
        }
        // Inspecting a binary reads its size without copying it; a bitstring
        // that is not whole bytes answers None.
        self.0.decode_as_binary().ok().map(|b| b.len())
    }
    fn too_heavy(terms: &[&Self], limit: usize) -> bool {
        if !(raw_layout() && raw_binary_enabled()) {
            return lasp_converge_core::decode::too_heavy(terms, limit);
        }
        // SAFETY: live terms; layouts verified on load.
        unsafe { raw_too_heavy(terms, limit) }
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
        if raw_layout() {
            let w = self.raw_word();
            // SAFETY: a live term; layout verified on load.
            return match unsafe { raw_cell(w) } {
                Some((h, t)) => Cell::Cons(self.wrap_word(h), self.wrap_word(t)),
                None if w == NIL_WORD => Cell::Nil,
                None => Cell::NotList,
            };
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
