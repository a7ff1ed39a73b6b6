//! A plain-Rust Erlang term, for tests and tools.
//!
//! [`OwnedTerm`] follows the Erlang VM (OTP 25) exactly where the lattices
//! can see it:
//!
//! - [`Term::compare`] is the standard term order with arithmetic equality:
//!   number < atom < reference < fun < port < pid < tuple < map < `[]` <
//!   list < bitstring. Integers and floats compare by their exact numeric
//!   value, so `1 == 1.0` and `9007199254740993 > 9007199254740992.0`.
//! - [`Term::identical`] is `=:=`: `1 =/= 1.0`, recursively.
//! - Maps compare by size, then by their keys in *map key order* (the term
//!   order where every integer sorts before every float), then by their
//!   values in that key order.
//!
//! A list is stored as a shared slice of elements plus a tail, so a list of
//! a million elements is one allocation, walking it allocates nothing, and
//! dropping it does not recurse once per cell.
//!
//! # Examples
//!
//! ```
//! use lasp_converge_core::owned::OwnedTerm as T;
//! use lasp_converge_core::term::Term;
//!
//! assert!(T::int(1).equal(&T::float(1.0)));
//! assert!(!T::int(1).identical(&T::float(1.0)));
//! assert!(T::atom("a").compare(&T::tuple([])).is_lt());
//! assert_eq!(T::list([T::int(1), T::bin(b"x")]).to_string(), "[1,<<\"x\">>]");
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::term::{Atom, Builder, Cell, Kind, Term};

/// An Erlang term owned by Rust.
///
/// Construct it with the helpers ([`OwnedTerm::int`], [`OwnedTerm::atom`],
/// [`OwnedTerm::tuple`], [`OwnedTerm::list`], ...) or with
/// [`OwnedBuilder`]; they keep the invariants documented on each variant.
#[derive(Clone)]
pub enum OwnedTerm {
    /// An integer that fits in an `i128`.
    Int(i128),
    /// An integer that does not fit in an `i128` (never holds one that does).
    BigInt(Arc<BigInt>),
    /// A float (finite, as in Erlang).
    Float(f64),
    /// An atom, by its text.
    Atom(Arc<str>),
    /// A reference.
    Reference(Arc<RefTerm>),
    /// A fun (local or external).
    Fun(Arc<FunTerm>),
    /// A port.
    Port(Arc<PortTerm>),
    /// A pid.
    Pid(Arc<PidTerm>),
    /// A tuple.
    Tuple(Arc<[OwnedTerm]>),
    /// A map: pairs sorted in map key order, no two keys `=:=`.
    Map(Arc<[(OwnedTerm, OwnedTerm)]>),
    /// `[]`.
    Nil,
    /// A non-empty list (proper or improper).
    List(ListTerm),
    /// A binary (a whole number of bytes).
    Binary(Arc<[u8]>),
    /// A bitstring that is not a binary: `bytes` holds every bit, and only
    /// the high `bits` bits (1 to 7) of the last byte are used; the unused
    /// low bits are zero.
    BitString {
        /// The bytes, the last one partly used.
        bytes: Arc<[u8]>,
        /// How many high bits of the last byte are used: 1 to 7.
        bits: u8,
    },
}

// ---------------------------------------------------------------------------
// Bignums
// ---------------------------------------------------------------------------

/// An integer outside the `i128` range: a sign and a magnitude.
#[derive(Clone, PartialEq, Eq)]
pub struct BigInt {
    neg: bool,
    /// Little-endian 32-bit limbs, no high zero limb.
    mag: Box<[u32]>,
}

impl BigInt {
    /// Whether the value is negative.
    pub fn is_negative(&self) -> bool {
        self.neg
    }

    /// The magnitude as little-endian bytes, without high zero bytes.
    pub fn magnitude_le_bytes(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.mag.iter().flat_map(|l| l.to_le_bytes()).collect();
        while out.last() == Some(&0) {
            out.pop();
        }
        out
    }

    fn cmp_magnitude(a: &[u32], b: &[u32]) -> Ordering {
        a.len()
            .cmp(&b.len())
            .then_with(|| a.iter().rev().cmp(b.iter().rev()))
    }

    fn cmp_big(&self, other: &BigInt) -> Ordering {
        match (self.neg, other.neg) {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => Self::cmp_magnitude(&self.mag, &other.mag),
            (true, true) => Self::cmp_magnitude(&other.mag, &self.mag),
        }
    }

    /// The decimal digits of the magnitude.
    fn magnitude_decimal(&self) -> String {
        let mut limbs: Vec<u32> = self.mag.to_vec();
        let mut chunks = Vec::new();
        while !limbs.is_empty() {
            let mut rem: u64 = 0;
            for l in limbs.iter_mut().rev() {
                let cur = (rem << 32) | u64::from(*l);
                *l = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            chunks.push(rem as u32);
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
        }
        let mut s = String::new();
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&c.to_string());
            } else {
                s.push_str(&format!("{c:09}"));
            }
        }
        s
    }
}

/// Little-endian limbs of a magnitude given as little-endian bytes, trimmed.
fn limbs_from_le_bytes(bytes: &[u8]) -> Vec<u32> {
    let mut limbs: Vec<u32> = bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect();
    while limbs.last() == Some(&0) {
        limbs.pop();
    }
    limbs
}

/// 2^127 as a float (exact).
const TWO_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;

/// The exact magnitude of an integral float, as little-endian limbs.
fn float_magnitude(f: f64) -> Vec<u32> {
    let bits = f.abs().to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        // Zero or subnormal: below 1, so no integral magnitude but zero.
        return Vec::new();
    }
    let mant = frac | (1u64 << 52);
    let shift = exp - 1075;
    if shift <= 0 {
        let v = if shift <= -64 { 0 } else { mant >> (-shift) };
        return limbs_from_le_bytes(&v.to_le_bytes());
    }
    let shift = shift as usize;
    let (word, bit) = (shift / 32, shift % 32);
    let wide = u128::from(mant) << bit;
    let mut limbs = vec![0u32; word];
    limbs.extend_from_slice(&limbs_from_le_bytes(&wide.to_le_bytes()));
    limbs
}

/// Exact order of an integer against a float.
fn cmp_int_float(i: i128, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Equal;
    }
    if f >= TWO_127 {
        return Ordering::Less;
    }
    if f < -TWO_127 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // Exact: |t| <= 2^127 and `t` is integral.
    let ti = t as i128;
    i.cmp(&ti).then_with(|| {
        let frac = f - t;
        if frac > 0.0 {
            Ordering::Less
        } else if frac < 0.0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    })
}

/// Exact order of a bignum against a float.
fn cmp_big_float(b: &BigInt, f: f64) -> Ordering {
    let by_sign = if b.neg {
        Ordering::Less
    } else {
        Ordering::Greater
    };
    if f.is_nan() || f.abs() < TWO_127 {
        // A bignum is at least 2^127 in magnitude.
        return by_sign;
    }
    if b.neg != (f < 0.0) {
        return by_sign;
    }
    if f.is_infinite() {
        return by_sign.reverse();
    }
    let fm = float_magnitude(f);
    let m = BigInt::cmp_magnitude(&b.mag, &fm);
    if b.neg {
        m.reverse()
    } else {
        m
    }
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or_else(|| a.total_cmp(&b))
}

// ---------------------------------------------------------------------------
// Opaque terms: references, funs, ports, pids
// ---------------------------------------------------------------------------

/// The node part of a pid, port or reference: its name and creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node name atom's text, e.g. `nonode@nohost`.
    pub name: Arc<str>,
    /// The node's creation.
    pub creation: u32,
}

impl Node {
    /// As the VM compares nodes: by name, then by creation.
    fn cmp_node(&self, other: &Node) -> Ordering {
        self.name
            .as_bytes()
            .cmp(other.name.as_bytes())
            .then(self.creation.cmp(&other.creation))
    }
}

/// A reference: a node and up to five 32-bit numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefTerm {
    /// The node.
    pub node: Node,
    /// The numbers, least significant first (as in the external format).
    pub ids: Vec<u32>,
}

impl RefTerm {
    /// As the VM: node first, then the numbers from the most significant,
    /// high zero words ignored.
    fn cmp_ref(&self, other: &RefTerm) -> Ordering {
        self.node.cmp_node(&other.node).then_with(|| {
            let trim = |v: &[u32]| {
                let mut n = v.len();
                while n > 0 && v[n - 1] == 0 {
                    n -= 1;
                }
                n
            };
            let (na, nb) = (trim(&self.ids), trim(&other.ids));
            na.cmp(&nb).then_with(|| {
                self.ids[..na]
                    .iter()
                    .rev()
                    .cmp(other.ids[..nb].iter().rev())
            })
        })
    }
}

/// A port: a node and a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortTerm {
    /// The node.
    pub node: Node,
    /// The port number.
    pub id: u64,
}

impl PortTerm {
    fn cmp_port(&self, other: &PortTerm) -> Ordering {
        self.node.cmp_node(&other.node).then(self.id.cmp(&other.id))
    }
}

/// A pid: a node, a number and a serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidTerm {
    /// The node.
    pub node: Node,
    /// The process number.
    pub id: u32,
    /// The serial.
    pub serial: u32,
}

impl PidTerm {
    /// As the VM: the pid data (serial, then number) first, then the node.
    fn cmp_pid(&self, other: &PidTerm) -> Ordering {
        (self.serial, self.id)
            .cmp(&(other.serial, other.id))
            .then_with(|| self.node.cmp_node(&other.node))
    }
}

/// A fun: local (a closure) or external (`fun M:F/A`).
#[derive(Debug, Clone)]
pub enum FunTerm {
    /// A local fun, as `NEW_FUN_EXT` carries it.
    Local {
        /// The module defining it.
        module: Arc<str>,
        /// Its arity.
        arity: u8,
        /// The MD5 of the module's code.
        uniq: [u8; 16],
        /// Its index in the module's fun table.
        index: u32,
        /// The old index.
        old_index: i64,
        /// The old uniq (a hash of the fun's code).
        old_uniq: i64,
        /// The pid that created it.
        pid: OwnedTerm,
        /// The captured free variables.
        env: Arc<[OwnedTerm]>,
    },
    /// `fun M:F/A`.
    Export {
        /// The module.
        module: Arc<str>,
        /// The function.
        function: Arc<str>,
        /// The arity.
        arity: u8,
    },
}

fn cmp_fun(a: &FunTerm, b: &FunTerm, exact: bool) -> Ordering {
    use FunTerm::*;
    match (a, b) {
        (
            Local {
                module: ma,
                old_index: ia,
                old_uniq: ua,
                env: ea,
                ..
            },
            Local {
                module: mb,
                old_index: ib,
                old_uniq: ub,
                env: eb,
                ..
            },
        ) => ma
            .as_bytes()
            .cmp(mb.as_bytes())
            .then(ia.cmp(ib))
            .then(ua.cmp(ub))
            .then(ea.len().cmp(&eb.len()))
            .then_with(|| cmp_slices(ea, eb, exact)),
        (
            Export {
                module: ma,
                function: fa,
                arity: aa,
            },
            Export {
                module: mb,
                function: fb,
                arity: ab,
            },
        ) => ma
            .as_bytes()
            .cmp(mb.as_bytes())
            .then_with(|| fa.as_bytes().cmp(fb.as_bytes()))
            .then(aa.cmp(ab)),
        // Every local fun sorts before every external fun.
        (Local { .. }, Export { .. }) => Ordering::Less,
        (Export { .. }, Local { .. }) => Ordering::Greater,
    }
}

fn identical_fun(a: &FunTerm, b: &FunTerm) -> bool {
    if cmp_fun(a, b, true) != Ordering::Equal {
        return false;
    }
    match (a, b) {
        (
            FunTerm::Local {
                arity: aa,
                uniq: ua,
                index: ia,
                pid: pa,
                ..
            },
            FunTerm::Local {
                arity: ab,
                uniq: ub,
                index: ib,
                pid: pb,
                ..
            },
        ) => aa == ab && ua == ub && ia == ib && pa.identical(pb),
        _ => true,
    }
}

// ---------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------

/// A non-empty list: `elems[start..]` followed by `tail`.
///
/// `tail` is `None` for a proper list; otherwise any term, possibly another
/// list (as `[H | T]` built cell by cell gives). Dropping walks a chain of
/// such tails in a loop, so even a list built one cell at a time can be
/// long without overflowing the stack.
#[derive(Clone)]
pub struct ListTerm {
    elems: Arc<[OwnedTerm]>,
    start: usize,
    tail: Option<Arc<OwnedTerm>>,
}

impl ListTerm {
    /// The elements stored in this chunk (before the tail).
    pub fn chunk(&self) -> &[OwnedTerm] {
        &self.elems[self.start..]
    }

    /// The tail after this chunk: `None` for `[]`.
    pub fn tail(&self) -> Option<&OwnedTerm> {
        self.tail.as_deref()
    }
}

impl Drop for ListTerm {
    fn drop(&mut self) {
        let mut next = self.tail.take();
        while let Some(arc) = next {
            match Arc::try_unwrap(arc) {
                Ok(OwnedTerm::List(mut l)) => next = l.tail.take(),
                // Not a list (dropped normally), or still shared.
                _ => break,
            }
        }
    }
}

/// Walks a list without allocating: the elements, then the tail.
#[derive(Clone)]
struct ListCursor<'a> {
    chunk: &'a [OwnedTerm],
    tail: Option<&'a OwnedTerm>,
}

/// One step of a [`ListCursor`].
enum Step<'a> {
    Elem(&'a OwnedTerm),
    /// The proper end.
    Nil,
    /// An improper tail.
    Tail(&'a OwnedTerm),
}

impl<'a> ListCursor<'a> {
    fn new(l: &'a ListTerm) -> Self {
        ListCursor {
            chunk: l.chunk(),
            tail: l.tail(),
        }
    }

    fn step(&mut self) -> Step<'a> {
        loop {
            if let Some((h, rest)) = self.chunk.split_first() {
                self.chunk = rest;
                return Step::Elem(h);
            }
            match self.tail {
                None => return Step::Nil,
                Some(OwnedTerm::List(l)) => {
                    self.chunk = l.chunk();
                    self.tail = l.tail();
                }
                Some(OwnedTerm::Nil) => return Step::Nil,
                Some(t) => return Step::Tail(t),
            }
        }
    }
}

fn cmp_lists(a: &ListTerm, b: &ListTerm, exact: bool) -> Ordering {
    let (mut ca, mut cb) = (ListCursor::new(a), ListCursor::new(b));
    loop {
        match (ca.step(), cb.step()) {
            (Step::Elem(x), Step::Elem(y)) => {
                let o = cmp_terms(x, y, exact);
                if o.is_ne() {
                    return o;
                }
            }
            // The shorter side's tail against a non-empty list (rank 9).
            (Step::Elem(_), Step::Nil) => return Ordering::Greater,
            (Step::Nil, Step::Elem(_)) => return Ordering::Less,
            (Step::Elem(_), Step::Tail(t)) => return LIST_RANK.cmp(&rank(t)),
            (Step::Tail(t), Step::Elem(_)) => return rank(t).cmp(&LIST_RANK),
            (Step::Nil, Step::Nil) => return Ordering::Equal,
            (Step::Nil, Step::Tail(t)) => return NIL_RANK.cmp(&rank(t)),
            (Step::Tail(t), Step::Nil) => return rank(t).cmp(&NIL_RANK),
            (Step::Tail(x), Step::Tail(y)) => return cmp_terms(x, y, exact),
        }
    }
}

// ---------------------------------------------------------------------------
// Bitstrings
// ---------------------------------------------------------------------------

/// The bytes and the total number of bits of a bitstring.
fn bit_parts(t: &OwnedTerm) -> Option<(&[u8], u64)> {
    match t {
        OwnedTerm::Binary(b) => Some((b, b.len() as u64 * 8)),
        OwnedTerm::BitString { bytes, bits } => {
            Some((bytes, (bytes.len() as u64 - 1) * 8 + u64::from(*bits)))
        }
        _ => None,
    }
}

/// Bit by bit over the common length, then by length.
fn cmp_bits(a: (&[u8], u64), b: (&[u8], u64)) -> Ordering {
    let min = a.1.min(b.1);
    let whole = (min / 8) as usize;
    a.0[..whole]
        .cmp(&b.0[..whole])
        .then_with(|| {
            let rest = (min % 8) as u32;
            if rest == 0 {
                return Ordering::Equal;
            }
            let mask = 0xffu8 << (8 - rest);
            (a.0[whole] & mask).cmp(&(b.0[whole] & mask))
        })
        .then(a.1.cmp(&b.1))
}

// ---------------------------------------------------------------------------
// Order
// ---------------------------------------------------------------------------

const NIL_RANK: u8 = 8;
const LIST_RANK: u8 = 9;

/// The class of a term in the standard order.
fn rank(t: &OwnedTerm) -> u8 {
    use OwnedTerm::*;
    match t {
        Int(_) | BigInt(_) | Float(_) => 0,
        Atom(_) => 1,
        Reference(_) => 2,
        Fun(_) => 3,
        Port(_) => 4,
        Pid(_) => 5,
        Tuple(_) => 6,
        Map(_) => 7,
        Nil => NIL_RANK,
        List(_) => LIST_RANK,
        Binary(_) | BitString { .. } => 10,
    }
}

fn cmp_slices(a: &[OwnedTerm], b: &[OwnedTerm], exact: bool) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp_terms(x, y, exact))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The term order. With `exact`, numbers of different types never compare
/// equal: every integer sorts before every float. That is the order of map
/// keys, and `exact` order being `Equal` is `=:=`.
fn cmp_terms(a: &OwnedTerm, b: &OwnedTerm, exact: bool) -> Ordering {
    use OwnedTerm::*;
    match (a, b) {
        (Int(x), Int(y)) => x.cmp(y),
        (Int(_), BigInt(y)) => {
            if y.neg {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (BigInt(x), Int(_)) => {
            if x.neg {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (BigInt(x), BigInt(y)) => x.cmp_big(y),
        (Float(x), Float(y)) => cmp_f64(*x, *y),
        (Int(_) | BigInt(_), Float(_)) if exact => Ordering::Less,
        (Float(_), Int(_) | BigInt(_)) if exact => Ordering::Greater,
        (Int(x), Float(y)) => cmp_int_float(*x, *y),
        (Float(x), Int(y)) => cmp_int_float(*y, *x).reverse(),
        (BigInt(x), Float(y)) => cmp_big_float(x, *y),
        (Float(x), BigInt(y)) => cmp_big_float(y, *x).reverse(),
        (Atom(x), Atom(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Reference(x), Reference(y)) => x.cmp_ref(y),
        (Fun(x), Fun(y)) => cmp_fun(x, y, exact),
        (Port(x), Port(y)) => x.cmp_port(y),
        (Pid(x), Pid(y)) => x.cmp_pid(y),
        (Tuple(x), Tuple(y)) => x.len().cmp(&y.len()).then_with(|| cmp_slices(x, y, exact)),
        (Map(x), Map(y)) => x
            .len()
            .cmp(&y.len())
            .then_with(|| {
                x.iter()
                    .zip(y.iter())
                    .map(|((kx, _), (ky, _))| cmp_terms(kx, ky, true))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
            .then_with(|| {
                x.iter()
                    .zip(y.iter())
                    .map(|((_, vx), (_, vy))| cmp_terms(vx, vy, exact))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            }),
        (Nil, Nil) => Ordering::Equal,
        (List(x), List(y)) => cmp_lists(x, y, exact),
        (Binary(x), Binary(y)) => x.cmp(y),
        _ => match (bit_parts(a), bit_parts(b)) {
            (Some(x), Some(y)) => cmp_bits(x, y),
            _ => rank(a).cmp(&rank(b)),
        },
    }
}

// ---------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------

impl OwnedTerm {
    /// An integer.
    pub fn int(value: impl Into<i128>) -> Self {
        OwnedTerm::Int(value.into())
    }

    /// An integer of any size, from its sign and its magnitude as
    /// little-endian bytes (the layout of `SMALL_BIG_EXT`).
    pub fn big(negative: bool, magnitude_le: &[u8]) -> Self {
        let mag = limbs_from_le_bytes(magnitude_le);
        if mag.len() <= 4 {
            let mut v: u128 = 0;
            for (i, l) in mag.iter().enumerate() {
                v |= u128::from(*l) << (32 * i);
            }
            if !negative && v <= i128::MAX as u128 {
                return OwnedTerm::Int(v as i128);
            }
            if negative && v <= i128::MIN.unsigned_abs() {
                return OwnedTerm::Int((v as i128).wrapping_neg());
            }
        }
        OwnedTerm::BigInt(Arc::new(BigInt {
            neg: negative,
            mag: mag.into_boxed_slice(),
        }))
    }

    /// A float. Erlang has no NaN nor infinities; do not pass them.
    pub fn float(value: f64) -> Self {
        OwnedTerm::Float(value)
    }

    /// An atom.
    pub fn atom(name: &str) -> Self {
        OwnedTerm::Atom(name.into())
    }

    /// A binary.
    pub fn bin(bytes: &[u8]) -> Self {
        OwnedTerm::Binary(bytes.into())
    }

    /// A bitstring of `bit_len` bits taken from the start of `bytes` (the
    /// high bits of a partial last byte). A binary when `bit_len` is a
    /// multiple of 8.
    ///
    /// # Panics
    ///
    /// When `bytes` holds fewer than `bit_len` bits.
    pub fn bitstring(bytes: &[u8], bit_len: usize) -> Self {
        let nbytes = bit_len.div_ceil(8);
        assert!(bytes.len() >= nbytes, "bitstring: too few bytes");
        let rest = (bit_len % 8) as u8;
        if rest == 0 {
            return OwnedTerm::Binary(bytes[..nbytes].into());
        }
        let mut v = bytes[..nbytes].to_vec();
        if let Some(last) = v.last_mut() {
            *last &= 0xffu8 << (8 - rest);
        }
        OwnedTerm::BitString {
            bytes: v.into(),
            bits: rest,
        }
    }

    /// A tuple.
    pub fn tuple(elems: impl IntoIterator<Item = OwnedTerm>) -> Self {
        OwnedTerm::Tuple(elems.into_iter().collect())
    }

    /// A proper list.
    pub fn list(elems: impl IntoIterator<Item = OwnedTerm>) -> Self {
        Self::list_with_tail(elems, OwnedTerm::Nil)
    }

    /// `elems ++ tail`: an improper list when `tail` is not a list.
    pub fn list_with_tail(elems: impl IntoIterator<Item = OwnedTerm>, tail: OwnedTerm) -> Self {
        let elems: Arc<[OwnedTerm]> = elems.into_iter().collect();
        if elems.is_empty() {
            return tail;
        }
        let tail = match tail {
            OwnedTerm::Nil => None,
            t => Some(Arc::new(t)),
        };
        OwnedTerm::List(ListTerm {
            elems,
            start: 0,
            tail,
        })
    }

    /// A map; on keys that are `=:=`, the last pair wins (`maps:from_list/1`).
    pub fn map(pairs: impl IntoIterator<Item = (OwnedTerm, OwnedTerm)>) -> Self {
        let mut v: Vec<(OwnedTerm, OwnedTerm)> = Vec::new();
        for (k, val) in pairs {
            match v.binary_search_by(|(x, _)| cmp_terms(x, &k, true)) {
                Ok(i) => v[i] = (k, val),
                Err(i) => v.insert(i, (k, val)),
            }
        }
        OwnedTerm::Map(v.into())
    }

    /// A pid on node `node`.
    pub fn pid(node: &str, id: u32, serial: u32, creation: u32) -> Self {
        OwnedTerm::Pid(Arc::new(PidTerm {
            node: Node {
                name: node.into(),
                creation,
            },
            id,
            serial,
        }))
    }

    /// A port on node `node`.
    pub fn port(node: &str, id: u64, creation: u32) -> Self {
        OwnedTerm::Port(Arc::new(PortTerm {
            node: Node {
                name: node.into(),
                creation,
            },
            id,
        }))
    }

    /// A reference on node `node`, numbers least significant first.
    pub fn reference(node: &str, creation: u32, ids: &[u32]) -> Self {
        OwnedTerm::Reference(Arc::new(RefTerm {
            node: Node {
                name: node.into(),
                creation,
            },
            ids: ids.to_vec(),
        }))
    }

    /// `fun Module:Function/Arity`.
    pub fn export_fun(module: &str, function: &str, arity: u8) -> Self {
        OwnedTerm::Fun(Arc::new(FunTerm::Export {
            module: module.into(),
            function: function.into(),
            arity,
        }))
    }

    /// The elements of a proper list, or `None` when this is not one.
    pub fn list_elems(&self) -> Option<Vec<OwnedTerm>> {
        match self {
            OwnedTerm::Nil => Some(Vec::new()),
            OwnedTerm::List(l) => {
                let mut c = ListCursor::new(l);
                let mut out = Vec::new();
                loop {
                    match c.step() {
                        Step::Elem(e) => out.push(e.clone()),
                        Step::Nil => return Some(out),
                        Step::Tail(_) => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// A list's elements and its tail (`[]` for a proper list), walking
    /// every chunk; `None` when this is neither `[]` nor a list cell.
    pub fn list_parts(&self) -> Option<(Vec<&OwnedTerm>, &OwnedTerm)> {
        static NIL: OwnedTerm = OwnedTerm::Nil;
        match self {
            OwnedTerm::Nil => Some((Vec::new(), self)),
            OwnedTerm::List(l) => {
                let mut c = ListCursor::new(l);
                let mut out = Vec::new();
                loop {
                    match c.step() {
                        Step::Elem(e) => out.push(e),
                        Step::Nil => return Some((out, &NIL)),
                        Step::Tail(t) => return Some((out, t)),
                    }
                }
            }
            _ => None,
        }
    }

    /// The atom's text, if this is an atom.
    pub fn atom_name(&self) -> Option<&str> {
        match self {
            OwnedTerm::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// The value of a map key (matched with `=:=`), if this is a map.
    pub fn map_get(&self, key: &OwnedTerm) -> Option<&OwnedTerm> {
        match self {
            OwnedTerm::Map(m) => m
                .binary_search_by(|(k, _)| cmp_terms(k, key, true))
                .ok()
                .map(|i| &m[i].1),
            _ => None,
        }
    }
}

impl PartialEq for OwnedTerm {
    /// `=:=`.
    fn eq(&self, other: &Self) -> bool {
        self.identical(other)
    }
}

impl Term for OwnedTerm {
    fn kind(&self) -> Kind {
        use OwnedTerm::*;
        match self {
            Int(_) | BigInt(_) => Kind::Integer,
            Float(_) => Kind::Float,
            Atom(_) => Kind::Atom,
            Reference(_) => Kind::Reference,
            Fun(_) => Kind::Fun,
            Port(_) => Kind::Port,
            Pid(_) => Kind::Pid,
            Tuple(_) => Kind::Tuple,
            Map(_) => Kind::Map,
            Nil => Kind::Nil,
            List(_) => Kind::List,
            Binary(_) | BitString { .. } => Kind::Binary,
        }
    }

    fn compare(&self, other: &Self) -> Ordering {
        cmp_terms(self, other, false)
    }

    fn compare_int(&self, n: i64) -> Ordering {
        cmp_terms(self, &OwnedTerm::Int(n.into()), false)
    }

    fn identical(&self, other: &Self) -> bool {
        match (self, other) {
            (OwnedTerm::Fun(a), OwnedTerm::Fun(b)) => identical_fun(a, b),
            _ => cmp_terms(self, other, true) == Ordering::Equal,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            OwnedTerm::Int(i) => i64::try_from(*i).ok(),
            _ => None,
        }
    }

    fn binary_size(&self) -> Option<usize> {
        match self {
            OwnedTerm::Binary(b) => Some(b.len()),
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
            OwnedTerm::List(l) => {
                let head = l.elems[l.start].clone();
                let tail = if l.start + 1 < l.elems.len() {
                    OwnedTerm::List(ListTerm {
                        elems: l.elems.clone(),
                        start: l.start + 1,
                        tail: l.tail.clone(),
                    })
                } else {
                    match &l.tail {
                        None => OwnedTerm::Nil,
                        Some(t) => (**t).clone(),
                    }
                };
                Cell::Cons(head, tail)
            }
            _ => Cell::NotList,
        }
    }
}

// ---------------------------------------------------------------------------
// Display, in Erlang syntax (as `~w` prints)
// ---------------------------------------------------------------------------

const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "else", "end", "fun", "if", "let", "maybe", "not", "of", "or",
    "orelse", "receive", "rem", "try", "when", "xor",
];

fn write_atom(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let bare = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
        && !RESERVED.contains(&name);
    if bare {
        return f.write_str(name);
    }
    f.write_str("'")?;
    for c in name.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            c if (c as u32) < 0x20 => write!(f, "\\x{{{:X}}}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("'")
}

fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    let s = format!("{x:?}");
    match s.split_once('e') {
        Some((m, e)) if !m.contains('.') => write!(f, "{m}.0e{e}"),
        _ => f.write_str(&s),
    }
}

fn write_bits(f: &mut fmt::Formatter<'_>, bytes: &[u8], bits: u8) -> fmt::Result {
    let whole = if bits == 8 {
        bytes
    } else {
        &bytes[..bytes.len() - 1]
    };
    f.write_str("<<")?;
    let printable =
        bits == 8 && !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7f).contains(b));
    if printable {
        f.write_str("\"")?;
        for b in bytes {
            match b {
                b'"' => f.write_str("\\\"")?,
                b'\\' => f.write_str("\\\\")?,
                b => write!(f, "{}", *b as char)?,
            }
        }
        f.write_str("\"")?;
    } else {
        for (i, b) in whole.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{b}")?;
        }
        if bits != 8 {
            if !whole.is_empty() {
                f.write_str(",")?;
            }
            let last = bytes[bytes.len() - 1] >> (8 - bits);
            write!(f, "{last}:{bits}")?;
        }
    }
    f.write_str(">>")
}

fn write_seq(f: &mut fmt::Formatter<'_>, items: &[OwnedTerm]) -> fmt::Result {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{t}")?;
    }
    Ok(())
}

impl fmt::Display for OwnedTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use OwnedTerm::*;
        match self {
            Int(i) => write!(f, "{i}"),
            BigInt(b) => {
                if b.neg {
                    f.write_str("-")?;
                }
                f.write_str(&b.magnitude_decimal())
            }
            Float(x) => write_float(f, *x),
            Atom(a) => write_atom(f, a),
            Reference(r) => {
                f.write_str("#Ref<")?;
                write_atom(f, &r.node.name)?;
                for id in r.ids.iter().rev() {
                    write!(f, ".{id}")?;
                }
                f.write_str(">")
            }
            Fun(fun) => match &**fun {
                FunTerm::Local {
                    module,
                    index,
                    old_uniq,
                    ..
                } => {
                    f.write_str("#Fun<")?;
                    write_atom(f, module)?;
                    write!(f, ".{index}.{old_uniq}>")
                }
                FunTerm::Export {
                    module,
                    function,
                    arity,
                } => {
                    f.write_str("fun ")?;
                    write_atom(f, module)?;
                    f.write_str(":")?;
                    write_atom(f, function)?;
                    write!(f, "/{arity}")
                }
            },
            Port(p) => {
                f.write_str("#Port<")?;
                write_atom(f, &p.node.name)?;
                write!(f, ".{}>", p.id)
            }
            Pid(p) => {
                f.write_str("<")?;
                write_atom(f, &p.node.name)?;
                write!(f, ".{}.{}>", p.id, p.serial)
            }
            Tuple(t) => {
                f.write_str("{")?;
                write_seq(f, t)?;
                f.write_str("}")
            }
            Map(m) => {
                f.write_str("#{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k} => {v}")?;
                }
                f.write_str("}")
            }
            Nil => f.write_str("[]"),
            List(l) => {
                f.write_str("[")?;
                let mut c = ListCursor::new(l);
                let mut first = true;
                loop {
                    match c.step() {
                        Step::Elem(e) => {
                            if !first {
                                f.write_str(",")?;
                            }
                            first = false;
                            write!(f, "{e}")?;
                        }
                        Step::Nil => break,
                        Step::Tail(t) => {
                            write!(f, "|{t}")?;
                            break;
                        }
                    }
                }
                f.write_str("]")
            }
            Binary(b) => write_bits(f, b, 8),
            BitString { bytes, bits } => write_bits(f, bytes, *bits),
        }
    }
}

impl fmt::Debug for OwnedTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for ListTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&OwnedTerm::List(self.clone()), f)
    }
}

impl fmt::Debug for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&OwnedTerm::BigInt(Arc::new(self.clone())), f)
    }
}

// ---------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------

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
        OwnedTerm::list_with_tail([head], tail)
    }
    fn binary(&self, bytes: &[u8]) -> OwnedTerm {
        OwnedTerm::bin(bytes)
    }
    fn list(&self, elems: &[OwnedTerm]) -> OwnedTerm {
        OwnedTerm::list(elems.iter().cloned())
    }
    fn list_with_tail(&self, elems: &[OwnedTerm], tail: OwnedTerm) -> OwnedTerm {
        OwnedTerm::list_with_tail(elems.iter().cloned(), tail)
    }
}

#[cfg(test)]
mod test {
    use super::OwnedTerm as T;
    use super::*;

    fn lt(a: &T, b: &T) {
        assert_eq!(a.compare(b), Ordering::Less, "{a} < {b}");
        assert_eq!(b.compare(a), Ordering::Greater, "{b} > {a}");
        assert!(!a.identical(b));
    }

    fn eq_not_identical(a: &T, b: &T) {
        assert_eq!(a.compare(b), Ordering::Equal, "{a} == {b}");
        assert_eq!(b.compare(a), Ordering::Equal, "{b} == {a}");
        assert!(!a.identical(b), "{a} =/= {b}");
    }

    fn pow2(n: u32) -> T {
        let mut bytes = vec![0u8; (n / 8) as usize + 1];
        bytes[(n / 8) as usize] = 1 << (n % 8);
        T::big(false, &bytes)
    }

    fn neg_pow2(n: u32) -> T {
        let mut bytes = vec![0u8; (n / 8) as usize + 1];
        bytes[(n / 8) as usize] = 1 << (n % 8);
        T::big(true, &bytes)
    }

    #[test]
    fn class_order() {
        let ordered = [
            T::int(5),
            T::atom("a"),
            T::reference("n@h", 1, &[1, 2, 3]),
            T::export_fun("m", "f", 1),
            T::port("n@h", 1, 1),
            T::pid("n@h", 1, 0, 1),
            T::tuple([]),
            T::map([]),
            T::Nil,
            T::list([T::int(1)]),
            T::bitstring(&[0x80], 1),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for b in &ordered[i + 1..] {
                lt(a, b);
            }
            assert!(a.identical(a));
        }
        // A float is a number: below any atom.
        lt(&T::float(1e300), &T::atom(""));
    }

    #[test]
    fn int_float_exact() {
        // 2^53 + 1 against 2^53 as a float.
        lt(
            &T::float(9_007_199_254_740_992.0),
            &T::int(9_007_199_254_740_993i64),
        );
        eq_not_identical(
            &T::int(9_007_199_254_740_992i64),
            &T::float(9_007_199_254_740_992.0),
        );
        eq_not_identical(&T::int(1), &T::float(1.0));
        eq_not_identical(&T::int(0), &T::float(-0.0));
        lt(&T::int(1), &T::float(1.5));
        lt(&T::float(1.5), &T::int(2));
        lt(&T::int(-2), &T::float(-1.5));
        lt(&T::float(-2.5), &T::int(-2));
        // 2^64 as an integer and as a float.
        eq_not_identical(
            &T::int(1i128 << 64),
            &T::float(18_446_744_073_709_551_616.0),
        );
        lt(
            &T::float(18_446_744_073_709_551_616.0),
            &T::int((1i128 << 64) + 1),
        );
        // i128 extremes and floats beyond them.
        lt(&T::int(i128::MAX), &T::float(TWO_127));
        eq_not_identical(&T::int(i128::MIN), &T::float(-TWO_127));
        lt(&T::float(-TWO_127 * 2.0), &T::int(i128::MIN));
        assert!(T::float(1.0).identical(&T::float(1.0)));
    }

    #[test]
    fn bignums() {
        let p127 = pow2(127);
        assert!(matches!(p127, T::BigInt(_)));
        assert!(matches!(neg_pow2(127), T::Int(i128::MIN)));
        assert!(matches!(T::big(false, &[5]), T::Int(5)));
        lt(&T::int(i128::MAX), &p127);
        lt(&p127, &pow2(128));
        lt(&neg_pow2(200), &neg_pow2(128));
        lt(&neg_pow2(128), &T::int(i128::MIN));
        eq_not_identical(&p127, &T::float(TWO_127));
        eq_not_identical(&pow2(200), &T::float(2f64.powi(200)));
        eq_not_identical(&neg_pow2(200), &T::float(-(2f64.powi(200))));
        lt(&T::float(2f64.powi(199)), &pow2(200));
        lt(&pow2(200), &T::float(2f64.powi(201)));
        lt(&T::float(-(2f64.powi(201))), &neg_pow2(200));
        lt(&neg_pow2(200), &T::float(-(2f64.powi(199))));
        // 2^200 + 1 is above 2^200.0.
        let mut bytes = vec![0u8; 26];
        bytes[25] = 1;
        bytes[0] = 1;
        lt(&T::float(2f64.powi(200)), &T::big(false, &bytes));
        lt(&pow2(300), &T::atom("a"));
        assert_eq!(
            pow2(128).to_string(),
            "340282366920938463463374607431768211456"
        );
        assert_eq!(
            neg_pow2(130).to_string(),
            "-1361129467683753853853498429727072845824"
        );
    }

    #[test]
    fn tuples_by_size_then_elements() {
        lt(&T::tuple([T::int(9)]), &T::tuple([T::int(1), T::int(1)]));
        lt(
            &T::tuple([T::int(1), T::atom("a")]),
            &T::tuple([T::int(1), T::atom("b")]),
        );
        eq_not_identical(&T::tuple([T::int(1)]), &T::tuple([T::float(1.0)]));
    }

    #[test]
    fn lists_elementwise_then_tails() {
        let l12 = T::list([T::int(1), T::int(2)]);
        let l123 = T::list([T::int(1), T::int(2), T::int(3)]);
        lt(&T::Nil, &l12);
        lt(&l12, &l123);
        lt(&T::list([T::int(1), T::int(3)]), &T::list([T::int(2)]));
        // [1,2|3] < [1,2] since 3 < [].
        let improper = T::list_with_tail([T::int(1), T::int(2)], T::int(3));
        lt(&improper, &l12);
        // [1,2|<<>>] > [1,2,3] since a bitstring > a list.
        lt(
            &l123,
            &T::list_with_tail([T::int(1), T::int(2)], T::bin(b"")),
        );
        // [1|a] < [1|b].
        lt(
            &T::list_with_tail([T::int(1)], T::atom("a")),
            &T::list_with_tail([T::int(1)], T::atom("b")),
        );
        eq_not_identical(&T::list([T::int(1)]), &T::list([T::float(1.0)]));
        // Cell-by-cell and flat construction agree.
        let b = OwnedBuilder;
        let consed = b.cons(T::int(1), b.cons(T::int(2), b.cons(T::int(3), T::Nil)));
        assert!(consed.identical(&l123));
        assert_eq!(consed.to_string(), "[1,2,3]");
        assert_eq!(improper.to_string(), "[1,2|3]");
    }

    #[test]
    fn maps_keys_exact_then_values() {
        let m = |pairs: Vec<(T, T)>| T::map(pairs);
        // Size first.
        lt(
            &m(vec![(T::int(9), T::int(9))]),
            &m(vec![(T::int(1), T::int(1)), (T::int(2), T::int(2))]),
        );
        // An integer key sorts before a float key of equal value.
        lt(
            &m(vec![(T::int(1), T::atom("a"))]),
            &m(vec![(T::float(1.0), T::atom("a"))]),
        );
        // In map key order every integer is below every float.
        lt(
            &m(vec![(T::int(2), T::atom("a"))]),
            &m(vec![(T::float(1.5), T::atom("a"))]),
        );
        // Values compare arithmetically.
        eq_not_identical(
            &m(vec![(T::atom("k"), T::int(1))]),
            &m(vec![(T::atom("k"), T::float(1.0))]),
        );
        // Keys decide before values.
        lt(
            &m(vec![(T::atom("a"), T::int(9)), (T::atom("b"), T::int(0))]),
            &m(vec![(T::atom("a"), T::int(0)), (T::atom("c"), T::int(0))]),
        );
        // Values in key order.
        lt(
            &m(vec![(T::atom("a"), T::int(0)), (T::atom("b"), T::int(9))]),
            &m(vec![(T::atom("a"), T::int(1)), (T::atom("b"), T::int(0))]),
        );
        // Keys in exact order, so int 2 comes before float 1.5 inside.
        let mixed = m(vec![
            (T::float(1.5), T::atom("f")),
            (T::int(2), T::atom("i")),
        ]);
        assert_eq!(mixed.to_string(), "#{2 => i,1.5 => f}");
        // Last pair wins on =:= keys.
        let dup = m(vec![(T::int(1), T::atom("a")), (T::int(1), T::atom("b"))]);
        assert_eq!(dup.to_string(), "#{1 => b}");
    }

    #[test]
    fn binaries_bytewise_then_length() {
        lt(&T::bin(b""), &T::bin(b"\x00"));
        lt(&T::bin(b"ab"), &T::bin(b"b"));
        lt(&T::bin(b"a"), &T::bin(b"ab"));
        // <<1:1>> > <<0>> (first bit), <<0:1>> < <<0>> (shorter).
        lt(&T::bin(&[0]), &T::bitstring(&[0x80], 1));
        lt(&T::bitstring(&[0], 1), &T::bin(&[0]));
        // <<"a", 1:3>> is above <<"a">> and <<"a", 0>>, below <<"a", 16#21>>.
        lt(&T::bin(b"a"), &T::bitstring(b"a\x20", 11));
        lt(&T::bin(b"a\x00"), &T::bitstring(b"a\x20", 11));
        lt(&T::bitstring(b"a\x20", 11), &T::bin(b"a\x21"));
        assert!(T::bitstring(&[0xff], 3).identical(&T::bitstring(&[0xe0], 3)));
        assert_eq!(T::bitstring(&[1, 0xe0], 11).to_string(), "<<1,7:3>>");
        assert_eq!(T::bin(&[1, 2]).to_string(), "<<1,2>>");
    }

    #[test]
    fn atoms_opaque_and_display() {
        lt(&T::atom("a"), &T::atom("aa"));
        lt(&T::atom("Z"), &T::atom("a"));
        lt(
            &T::reference("a@h", 1, &[9, 0, 0]),
            &T::reference("b@h", 1, &[0, 0, 1]),
        );
        lt(
            &T::reference("a@h", 1, &[9, 0, 0]),
            &T::reference("a@h", 1, &[0, 0, 1]),
        );
        lt(&T::pid("z@h", 1, 0, 1), &T::pid("a@h", 2, 0, 1));
        lt(&T::port("a@h", 5, 1), &T::port("b@h", 1, 1));
        lt(&T::export_fun("a", "f", 2), &T::export_fun("a", "g", 0));
        assert_eq!(T::atom("Hello").to_string(), "'Hello'");
        assert_eq!(T::atom("node1@127.0.0.1").to_string(), "'node1@127.0.0.1'");
        assert_eq!(T::atom("ok").to_string(), "ok");
        assert_eq!(T::atom("end").to_string(), "'end'");
        assert_eq!(T::float(1e20).to_string(), "1.0e20");
        assert_eq!(T::float(0.5).to_string(), "0.5");
        assert_eq!(
            T::tuple([T::atom("a"), T::Nil, T::bin(b"x\"")]).to_string(),
            "{a,[],<<\"x\\\"\">>}"
        );
    }

    #[test]
    fn term_trait() {
        let l = T::list([T::int(1), T::int(2)]);
        let Cell::Cons(h, t) = l.cell() else { panic!() };
        assert!(h.identical(&T::int(1)));
        let Cell::Cons(h2, t2) = t.cell() else {
            panic!()
        };
        assert!(h2.identical(&T::int(2)));
        assert!(matches!(t2.cell(), Cell::Nil));
        assert!(matches!(T::atom("x").cell(), Cell::NotList));
        let imp = T::list_with_tail([T::int(1)], T::atom("x"));
        let Cell::Cons(_, t) = imp.cell() else {
            panic!()
        };
        assert!(matches!(t.cell(), Cell::NotList));
        assert_eq!(T::int(1i128 << 70).as_i64(), None);
        assert_eq!(T::int(-5).as_i64(), Some(-5));
        assert!(T::atom("true").is_atom(Atom::True));
        assert_eq!(T::atom("false").as_bool(), Some(false));
        assert_eq!(T::tuple([T::Nil]).tuple_arity(), Some(1));
        assert_eq!(T::bitstring(&[0], 3).kind(), Kind::Binary);
    }

    #[test]
    fn accessors_and_threads() {
        fn send_sync<X: Send + Sync>() {}
        send_sync::<T>();
        let imp = T::list_with_tail([T::int(1), T::int(2)], T::atom("t"));
        let (elems, tail) = imp.list_parts().unwrap();
        assert_eq!(elems.len(), 2);
        assert!(tail.identical(&T::atom("t")));
        assert_eq!(imp.list_elems(), None);
        assert_eq!(T::Nil.list_elems(), Some(vec![]));
        let m = T::map([(T::int(1), T::atom("i")), (T::float(1.0), T::atom("f"))]);
        assert_eq!(m.map_get(&T::float(1.0)), Some(&T::atom("f")));
        assert_eq!(m.map_get(&T::int(2)), None);
        assert_eq!(T::atom("x").atom_name(), Some("x"));
    }

    #[test]
    fn long_lists_do_not_overflow() {
        let n = 1_000_000;
        let flat = T::list((0..n).map(T::int));
        let b = OwnedBuilder;
        let mut consed = T::Nil;
        for i in (0..n).rev() {
            consed = b.cons(T::int(i), consed);
        }
        assert!(flat.identical(&consed));
        assert_eq!(flat.compare(&consed), Ordering::Equal);
        drop(flat);
        drop(consed);
    }
}
