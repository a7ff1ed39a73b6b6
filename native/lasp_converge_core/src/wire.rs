//! Order-preserving keys: one term as bytes whose `memcmp` order is the
//! Erlang term order.
//!
//! A key is `Primary ++ Exact`:
//!
//! - `Primary` encodes the term up to `==`: two terms have the same primary
//!   bytes exactly when they compare `==`, and `memcmp` of two primaries
//!   orders them as the standard term order does (number < atom < tuple <
//!   `[]` < list < binary here). Primaries are self-delimiting, so a key can
//!   be followed by anything.
//! - `Exact` is one byte per number in the term, in pre-order: `0` for an
//!   integer, `1` for a float. It tells `1` from `1.0`, so keys round-trip
//!   `=:=`, and it breaks `==` ties after everything else, so the order of
//!   whole keys is a total order on terms up to `=:=` that refines the term
//!   order.
//!
//! Encodings of the primary:
//!
//! | term | bytes |
//! | --- | --- |
//! | number | `0x10`, sign (`1` negative, `2` zero, `3` positive), then for non-zero numbers the exponent `floor(log2 abs(N)) + 2^31` as 4 bytes big-endian and the bits after the leading one, 7 per byte with the high bit set, trailing zero bits dropped, ended by `0x00`; every byte after the sign inverted for negative numbers |
//! | atom | `0x20`, the UTF-8 text escaped (`0x00` as `0x00 0xFF`), ended by `0x00 0x00` |
//! | tuple | `0x70`, the arity as 4 bytes big-endian, the elements |
//! | `[]` | `0x90` |
//! | `[H \| T]` | `0xA0`, H, T |
//! | binary | `0xB0`, the bytes escaped as for atoms |
//!
//! Integers must fit in an `i128` and floats are finite (as in Erlang;
//! `-0.0` is stored as `0.0`, which is `=:=` to it on OTP 25). Maps,
//! pids, ports, references, funs, bitstrings that are not binaries and
//! bignums have no key: [`encode`] refuses them with [`Unsupported`], and
//! the callers keep such terms in another representation.
//!
//! # Examples
//!
//! ```
//! use lasp_converge_core::owned::OwnedTerm as T;
//! use lasp_converge_core::wire;
//!
//! let key = |t: &T| { let mut v = Vec::new(); wire::encode(t, &mut v).unwrap(); v };
//! // memcmp order is term order: 2 < 10 < a < {} < <<>>.
//! let ts = [T::int(2), T::int(10), T::atom("a"), T::tuple([]), T::bin(b"")];
//! for w in ts.windows(2) { assert!(key(&w[0]) < key(&w[1])); }
//! // 1 and 1.0 share a primary, and decode back exactly.
//! let (one, onef) = (key(&T::int(1)), key(&T::float(1.0)));
//! assert!(one < onef);
//! assert_eq!(wire::primary_len(&one).unwrap(), wire::primary_len(&onef).unwrap());
//! let (back, used) = wire::decode(&onef).unwrap();
//! assert_eq!(used, onef.len());
//! assert!(matches!(back, T::Float(f) if f == 1.0));
//! ```

use crate::owned::OwnedTerm;

/// A term kind that has no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported;

/// Why bytes are not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// The bytes end inside a key.
    Truncated,
    /// The bytes are not a key this module writes.
    Malformed,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Most tuples and list heads nested in one another in a key.
pub const MAX_DEPTH: usize = 100;

const NUM: u8 = 0x10;
const ATOM: u8 = 0x20;
const TUPLE: u8 = 0x70;
const NIL: u8 = 0x90;
const LIST: u8 = 0xA0;
const BIN: u8 = 0xB0;

const NEG: u8 = 1;
const ZERO: u8 = 2;
const POS: u8 = 3;

const EXP_BIAS: i64 = 1 << 31;

/// Append `t`'s key (primary and exact parts) to `out`.
pub fn encode(t: &OwnedTerm, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    let mut exact = Vec::new();
    primary(t, out, &mut exact, 0)?;
    out.extend_from_slice(&exact);
    Ok(())
}

fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Sign, exponent and the bits after the leading one (left-aligned in a
/// `u128`) of a non-zero magnitude given as `mag * 2^shift`.
fn number(neg: bool, mag: u128, shift: i64, out: &mut Vec<u8>) {
    out.push(NUM);
    if mag == 0 {
        out.push(ZERO);
        return;
    }
    out.push(if neg { NEG } else { POS });
    let start = out.len();
    let lz = mag.leading_zeros();
    let exp = i64::from(127 - lz) + shift + EXP_BIAS;
    out.extend_from_slice(&(exp as u32).to_be_bytes());
    let mut rest = if lz >= 127 { 0 } else { mag << (lz + 1) };
    while rest != 0 {
        out.push(0x80 | (rest >> 121) as u8);
        rest <<= 7;
    }
    out.push(0);
    if neg {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
}

fn float_parts(f: f64) -> (bool, u128, i64) {
    let bits = f.to_bits();
    let neg = bits >> 63 == 1;
    let e = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    if e == 0 {
        (neg, u128::from(frac), -1074)
    } else {
        (neg, u128::from(frac | (1u64 << 52)), e - 1075)
    }
}

fn primary(
    t: &OwnedTerm,
    out: &mut Vec<u8>,
    exact: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Unsupported> {
    if depth > MAX_DEPTH {
        return Err(Unsupported);
    }
    match t {
        OwnedTerm::Int(i) => {
            number(*i < 0, i.unsigned_abs(), 0, out);
            exact.push(0);
        }
        OwnedTerm::Float(f) if f.is_finite() => {
            let (neg, mag, shift) = float_parts(*f);
            number(neg, mag, shift, out);
            exact.push(1);
        }
        OwnedTerm::Atom(a) => {
            out.push(ATOM);
            escaped(a.as_bytes(), out);
        }
        OwnedTerm::Binary(b) => {
            out.push(BIN);
            escaped(b, out);
        }
        OwnedTerm::Tuple(es) => {
            out.push(TUPLE);
            let n = u32::try_from(es.len()).map_err(|_| Unsupported)?;
            out.extend_from_slice(&n.to_be_bytes());
            for e in es.iter() {
                primary(e, out, exact, depth + 1)?;
            }
        }
        OwnedTerm::Nil => out.push(NIL),
        OwnedTerm::List(_) => {
            let (elems, tail) = t.list_parts().ok_or(Unsupported)?;
            for e in elems {
                out.push(LIST);
                primary(e, out, exact, depth + 1)?;
            }
            if matches!(tail, OwnedTerm::List(_)) {
                return Err(Unsupported);
            }
            primary(tail, out, exact, depth + 1)?;
        }
        _ => return Err(Unsupported),
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Exact-part bytes, or `None` on the first (scanning) pass.
    exact: Option<&'a [u8]>,
    numbers: usize,
}

type R<T> = Result<T, KeyError>;

impl<'a> Reader<'a> {
    fn byte(&mut self) -> R<u8> {
        let b = *self.bytes.get(self.pos).ok_or(KeyError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(KeyError::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(KeyError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn unescape(&mut self) -> R<Vec<u8>> {
        let mut v = Vec::new();
        loop {
            match self.byte()? {
                0 => match self.byte()? {
                    0 => return Ok(v),
                    0xFF => v.push(0),
                    _ => return Err(KeyError::Malformed),
                },
                b => v.push(b),
            }
        }
    }

    /// Step over escaped text, checking only its escapes: the scanning
    /// pass allocates nothing (the building pass reads the text itself).
    fn skip_escaped(&mut self) -> R<()> {
        loop {
            let rest = &self.bytes[self.pos..];
            let z = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(KeyError::Truncated)?;
            self.pos += z + 1;
            match self.byte()? {
                0 => return Ok(()),
                0xFF => {}
                _ => return Err(KeyError::Malformed),
            }
        }
    }

    fn number(&mut self) -> R<Option<OwnedTerm>> {
        // Sign, exponent of the leading one, and the bits after it
        // (left-aligned, `sig` of them significant).
        let sign = self.byte()?;
        let (neg, exp, rest, sig) = match sign {
            ZERO => (false, 0i64, 0u128, 0u32),
            NEG | POS => {
                let neg = sign == NEG;
                let flip = |b: u8| if neg { !b } else { b };
                let mut e = [0u8; 4];
                for x in &mut e {
                    *x = flip(self.byte()?);
                }
                let exp = i64::from(u32::from_be_bytes(e)) - EXP_BIAS;
                let mut rest: u128 = 0;
                let mut nbits = 0u32;
                loop {
                    let b = flip(self.byte()?);
                    if b == 0 {
                        break;
                    }
                    if b & 0x80 == 0 || nbits + 7 > 126 {
                        return Err(KeyError::Malformed);
                    }
                    rest |= u128::from(b & 0x7f) << (121 - nbits);
                    nbits += 7;
                }
                let sig = if rest == 0 {
                    0
                } else {
                    128 - rest.trailing_zeros()
                };
                (neg, exp, rest, sig)
            }
            _ => return Err(KeyError::Malformed),
        };
        let k = self.numbers;
        self.numbers += 1;
        let Some(exact) = self.exact else {
            return Ok(None);
        };
        let zero = sign == ZERO;
        let t = match *exact.get(k).ok_or(KeyError::Truncated)? {
            0 if zero => OwnedTerm::Int(0),
            0 => {
                // (1 . rest) * 2^exp must be an integer within i128.
                if exp < i64::from(sig) || exp > 127 {
                    return Err(KeyError::Malformed);
                }
                let frac = if sig == 0 { 0 } else { rest >> (128 - sig) };
                let m = (1u128 << sig) | frac;
                let v = m << (exp - i64::from(sig));
                if neg {
                    if v > 1u128 << 127 {
                        return Err(KeyError::Malformed);
                    }
                    OwnedTerm::Int((v as i128).wrapping_neg())
                } else {
                    OwnedTerm::Int(i128::try_from(v).map_err(|_| KeyError::Malformed)?)
                }
            }
            1 if zero => OwnedTerm::Float(0.0),
            1 => {
                if sig > 52 || !(-1074..=1023).contains(&exp) {
                    return Err(KeyError::Malformed);
                }
                let frac = (rest >> 76) as u64;
                let f = if exp >= -1022 {
                    f64::from_bits((((exp + 1023) as u64) << 52) | frac)
                } else {
                    // Subnormal: the value in units of 2^-1074.
                    let low = exp - i64::from(sig) + 1074;
                    if low < 0 {
                        return Err(KeyError::Malformed);
                    }
                    let m = (1u64 << sig) | if sig == 0 { 0 } else { frac >> (52 - sig) };
                    f64::from_bits(m << low)
                };
                OwnedTerm::Float(if neg { -f } else { f })
            }
            _ => return Err(KeyError::Malformed),
        };
        Ok(Some(t))
    }

    fn term(&mut self, depth: usize) -> R<Option<OwnedTerm>> {
        if depth > MAX_DEPTH {
            return Err(KeyError::TooDeep);
        }
        let build = self.exact.is_some();
        match self.byte()? {
            NUM => self.number(),
            ATOM | BIN if !build => self.skip_escaped().map(|()| None),
            ATOM => {
                let v = self.unescape()?;
                let s = std::str::from_utf8(&v).map_err(|_| KeyError::Malformed)?;
                if s.chars().count() > 255 {
                    return Err(KeyError::Malformed);
                }
                Ok(build.then(|| OwnedTerm::atom(s)))
            }
            BIN => {
                let v = self.unescape()?;
                Ok(build.then(|| OwnedTerm::bin(&v)))
            }
            TUPLE => {
                let n =
                    u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| KeyError::Truncated)?)
                        as usize;
                // Each element takes at least one byte: refuse arities the
                // input cannot hold before allocating for them.
                if n > self.bytes.len() - self.pos {
                    return Err(KeyError::Truncated);
                }
                let mut es = Vec::with_capacity(if build { n } else { 0 });
                for _ in 0..n {
                    if let Some(e) = self.term(depth + 1)? {
                        es.push(e);
                    }
                }
                Ok(build.then(|| OwnedTerm::tuple(es)))
            }
            NIL => Ok(build.then_some(OwnedTerm::Nil)),
            LIST => {
                let mut es = Vec::new();
                loop {
                    if let Some(e) = self.term(depth + 1)? {
                        es.push(e);
                    }
                    if self.bytes.get(self.pos) == Some(&LIST) {
                        self.pos += 1;
                        continue;
                    }
                    let tail = self.term(depth + 1)?;
                    return Ok(tail.map(|t| OwnedTerm::list_with_tail(es, t)));
                }
            }
            _ => Err(KeyError::Malformed),
        }
    }
}

/// Decode one key at the start of `bytes`: the term and the bytes used.
///
/// Refuses anything [`encode`] would not write for the returned term, so a
/// key has exactly one spelling.
pub fn decode(bytes: &[u8]) -> Result<(OwnedTerm, usize), KeyError> {
    let mut scan = Reader {
        bytes,
        pos: 0,
        exact: None,
        numbers: 0,
    };
    scan.term(0)?;
    let (plen, n) = (scan.pos, scan.numbers);
    let exact = bytes.get(plen..plen + n).ok_or(KeyError::Truncated)?;
    let mut build = Reader {
        bytes: &bytes[..plen],
        pos: 0,
        exact: Some(exact),
        numbers: 0,
    };
    let t = build.term(0)?.ok_or(KeyError::Malformed)?;
    let used = plen + n;
    let mut again = Vec::with_capacity(used);
    encode(&t, &mut again).map_err(|_| KeyError::Malformed)?;
    if again != bytes[..used] {
        return Err(KeyError::Malformed);
    }
    Ok((t, used))
}

/// The length of the primary part of the key at the start of `bytes`.
pub fn primary_len(bytes: &[u8]) -> Result<usize, KeyError> {
    let mut scan = Reader {
        bytes,
        pos: 0,
        exact: None,
        numbers: 0,
    };
    scan.term(0)?;
    Ok(scan.pos)
}

/// The length of the whole key (primary and exact parts) at the start of
/// `bytes`, without building the term.
pub fn key_len(bytes: &[u8]) -> Result<(usize, usize), KeyError> {
    let mut scan = Reader {
        bytes,
        pos: 0,
        exact: None,
        numbers: 0,
    };
    scan.term(0)?;
    let total = scan.pos + scan.numbers;
    if total > bytes.len() {
        return Err(KeyError::Truncated);
    }
    Ok((scan.pos, total))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::term::Term;
    use std::cmp::Ordering;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn number(r: &mut Rng) -> OwnedTerm {
        match r.below(8) {
            0 => OwnedTerm::int(r.below(5) as i64 - 2),
            1 => OwnedTerm::float(r.below(5) as f64 - 2.0),
            2 => OwnedTerm::Int(((r.next() as i128) << 64 | r.next() as i128) >> r.below(127)),
            3 => OwnedTerm::float(
                f64::from_bits(r.next() >> 2) * if r.below(2) == 0 { 1.0 } else { -1.0 },
            ),
            4 => OwnedTerm::float(f64::from_bits(r.below(1 << 20))),
            5 => OwnedTerm::float((r.below(1000) as f64 - 500.0) / 8.0),
            6 => OwnedTerm::Int(i128::MIN + r.below(3) as i128),
            _ => OwnedTerm::Int(i128::MAX - r.below(3) as i128),
        }
    }

    fn term(r: &mut Rng, depth: u32) -> OwnedTerm {
        let leaf = depth > 2;
        match r.below(if leaf { 4 } else { 7 }) {
            0 => number(r),
            1 => OwnedTerm::atom(["a", "b", "ab", "é", "a\u{0}"][r.below(5) as usize]),
            2 => {
                let bytes: Vec<u8> = (0..r.below(4))
                    .map(|_| [0u8, 1, 0xff, b'a'][r.below(4) as usize])
                    .collect();
                OwnedTerm::bin(&bytes)
            }
            3 => OwnedTerm::Nil,
            4 => OwnedTerm::tuple(
                (0..r.below(3))
                    .map(|_| term(r, depth + 1))
                    .collect::<Vec<_>>(),
            ),
            5 => OwnedTerm::list(
                (0..r.below(3))
                    .map(|_| term(r, depth + 1))
                    .collect::<Vec<_>>(),
            ),
            _ => {
                let es: Vec<_> = (0..1 + r.below(2)).map(|_| term(r, depth + 1)).collect();
                let tail = term(r, 3);
                if matches!(tail, OwnedTerm::Nil | OwnedTerm::List(_)) {
                    OwnedTerm::list(es)
                } else {
                    OwnedTerm::list_with_tail(es, tail)
                }
            }
        }
    }

    fn key(t: &OwnedTerm) -> Vec<u8> {
        let mut v = Vec::new();
        encode(t, &mut v).unwrap();
        v
    }

    #[test]
    fn memcmp_refines_term_order_test() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let (a, b) = (term(&mut r, 0), term(&mut r, 0));
            let (ka, kb) = (key(&a), key(&b));
            let (pa, pb) = (primary_len(&ka).unwrap(), primary_len(&kb).unwrap());
            match a.compare(&b) {
                Ordering::Equal => {
                    assert_eq!(ka[..pa], kb[..pb], "{a} == {b}");
                    assert_eq!(a.identical(&b), ka == kb, "{a} =:= {b}");
                }
                o => {
                    assert_eq!(ka[..pa].cmp(&kb[..pb]), o, "{a} vs {b}");
                    assert_eq!(ka.cmp(&kb), o, "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn roundtrip_exact_test() {
        let mut r = Rng(12345);
        for _ in 0..20_000 {
            let t = term(&mut r, 0);
            let mut k = key(&t);
            let n = k.len();
            assert_eq!(key_len(&k).unwrap().1, n);
            k.extend_from_slice(b"tail");
            let (back, used) = decode(&k).unwrap();
            assert_eq!(used, n);
            assert!(back.identical(&t), "{back} =/= {t}");
        }
    }

    #[test]
    fn every_truncation_and_garbage_is_refused_test() {
        let mut r = Rng(777);
        for _ in 0..2_000 {
            let t = term(&mut r, 0);
            let k = key(&t);
            for cut in 0..k.len() {
                assert!(decode(&k[..cut]).is_err(), "{t} cut at {cut}");
            }
            let mut bad = k.clone();
            let i = r.below(k.len() as u64) as usize;
            bad[i] ^= 1 << r.below(8);
            // Either refused, or a different valid key: never a panic.
            if let Ok((u, used)) = decode(&bad) {
                assert_eq!(key(&u), bad[..used]);
            }
        }
        for _ in 0..20_000 {
            let g: Vec<u8> = (0..r.below(24)).map(|_| r.next() as u8).collect();
            if let Ok((u, used)) = decode(&g) {
                assert_eq!(key(&u), g[..used]);
            }
        }
    }

    #[test]
    fn unsupported_kinds_test() {
        let mut v = Vec::new();
        assert_eq!(
            encode(&OwnedTerm::pid("n@h", 1, 2, 3), &mut v),
            Err(Unsupported)
        );
        assert_eq!(encode(&OwnedTerm::map([]), &mut v), Err(Unsupported));
        let deep = (0..200).fold(OwnedTerm::Nil, |t, _| OwnedTerm::tuple([t]));
        assert_eq!(encode(&deep, &mut Vec::new()), Err(Unsupported));
    }
}
