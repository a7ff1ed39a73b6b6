//! Erlang's External Term Format: what `term_to_binary/1,2` writes and
//! `binary_to_term/1` reads, to and from [`OwnedTerm`].
//!
//! [`decode`] reads the version byte 131 and one term, including a
//! zlib-compressed one (tag 80, `term_to_binary(T, [compressed])`). It never
//! panics: bad input gives an [`EtfError`]. [`encode`] writes what OTP 25's
//! `term_to_binary/1` writes for the same term, except that map pairs come
//! out in key order (OTP writes maps of more than 32 keys in hash order);
//! the conformance vectors re-encode byte for byte.
//!
//! # Examples
//!
//! ```
//! use lasp_converge_core::etf;
//! use lasp_converge_core::owned::OwnedTerm as T;
//!
//! // term_to_binary({ok, [1, <<"x">>]})
//! let bytes = [131, 104, 2, 100, 0, 2, b'o', b'k', 108, 0, 0, 0, 2, 97, 1, 109, 0, 0, 0, 1, b'x', 106];
//! assert_eq!(etf::encode(&etf::decode(&bytes).unwrap()), bytes);
//! let t = etf::decode(&bytes).unwrap();
//! assert_eq!(t, T::tuple([T::atom("ok"), T::list([T::int(1), T::bin(b"x")])]));
//! assert_eq!(etf::decode(&etf::encode(&t)).unwrap(), t);
//! ```

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use crate::owned::{FunTerm, Node, OwnedTerm, PidTerm, PortTerm, RefTerm};

/// The version byte that starts every external term.
pub const VERSION: u8 = 131;
/// Deepest nesting [`decode`] accepts (terms nest in tuples, lists' heads,
/// maps and funs); deeper input is refused rather than overflowing the stack.
pub const MAX_DEPTH: usize = 512;
/// Largest uncompressed size a compressed term may declare.
pub const MAX_INFLATED: usize = 1 << 30;

const COMPRESSED: u8 = 80;
const NEW_FLOAT_EXT: u8 = 70;
const BIT_BINARY_EXT: u8 = 77;
const NEW_PID_EXT: u8 = 88;
const NEW_PORT_EXT: u8 = 89;
const NEWER_REFERENCE_EXT: u8 = 90;
const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const FLOAT_EXT: u8 = 99;
const ATOM_EXT: u8 = 100;
const REFERENCE_EXT: u8 = 101;
const PORT_EXT: u8 = 102;
const PID_EXT: u8 = 103;
const SMALL_TUPLE_EXT: u8 = 104;
const LARGE_TUPLE_EXT: u8 = 105;
const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
const LIST_EXT: u8 = 108;
const BINARY_EXT: u8 = 109;
const SMALL_BIG_EXT: u8 = 110;
const LARGE_BIG_EXT: u8 = 111;
const NEW_FUN_EXT: u8 = 112;
const EXPORT_EXT: u8 = 113;
const NEW_REFERENCE_EXT: u8 = 114;
const SMALL_ATOM_EXT: u8 = 115;
const MAP_EXT: u8 = 116;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;
const V4_PORT_EXT: u8 = 120;

/// Why bytes are not an external term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtfError {
    /// The input ended inside a term.
    UnexpectedEnd,
    /// The first byte is not 131.
    BadVersion(u8),
    /// A tag this decoder does not know (or that only the distribution
    /// protocol uses, such as `ATOM_CACHE_REF`).
    UnknownTag(u8),
    /// An atom is not valid UTF-8, or longer than 255 characters.
    BadAtom,
    /// A float is not a finite number.
    BadFloat,
    /// The zlib stream is broken or does not inflate to the declared size.
    BadCompressed,
    /// The declared uncompressed size is over [`MAX_INFLATED`].
    TooLarge,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bytes left after the term.
    TrailingBytes(usize),
    /// A map holds two `=:=` keys.
    DuplicateMapKey,
    /// A field has a value the format does not allow.
    Invalid(&'static str),
}

impl fmt::Display for EtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtfError::UnexpectedEnd => f.write_str("unexpected end of input"),
            EtfError::BadVersion(v) => write!(f, "bad version byte {v} (expected 131)"),
            EtfError::UnknownTag(t) => write!(f, "unknown or unsupported tag {t}"),
            EtfError::BadAtom => f.write_str("bad atom text"),
            EtfError::BadFloat => f.write_str("bad float"),
            EtfError::BadCompressed => f.write_str("bad compressed term"),
            EtfError::TooLarge => f.write_str("compressed term too large"),
            EtfError::TooDeep => write!(f, "term nested deeper than {MAX_DEPTH}"),
            EtfError::TrailingBytes(n) => write!(f, "{n} bytes after the term"),
            EtfError::DuplicateMapKey => f.write_str("duplicate map key"),
            EtfError::Invalid(what) => write!(f, "invalid {what}"),
        }
    }
}

impl std::error::Error for EtfError {}

type Result<X> = std::result::Result<X, EtfError>;

/// `binary_to_term/1`: one term, with nothing after it.
pub fn decode(bytes: &[u8]) -> Result<OwnedTerm> {
    let (&version, rest) = bytes.split_first().ok_or(EtfError::UnexpectedEnd)?;
    if version != VERSION {
        return Err(EtfError::BadVersion(version));
    }
    if rest.first() == Some(&COMPRESSED) {
        let inflated = inflate(&rest[1..])?;
        return decode_body(&inflated);
    }
    decode_body(rest)
}

/// The uncompressed form of an external term: `bytes` itself, or, for a
/// compressed term (tag 80), the version byte followed by the inflated body.
pub fn uncompressed(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    match bytes {
        [VERSION, COMPRESSED, rest @ ..] => {
            let mut out = vec![VERSION];
            out.extend_from_slice(&inflate(rest)?);
            Ok(out.into())
        }
        [VERSION, ..] => Ok(bytes.into()),
        [v, ..] => Err(EtfError::BadVersion(*v)),
        [] => Err(EtfError::UnexpectedEnd),
    }
}

/// One term without the version byte, with nothing after it.
fn decode_body(body: &[u8]) -> Result<OwnedTerm> {
    let mut r = Reader { buf: body, pos: 0 };
    let t = r.term(0)?;
    match body.len() - r.pos {
        0 => Ok(t),
        n => Err(EtfError::TrailingBytes(n)),
    }
}

fn inflate(data: &[u8]) -> Result<Vec<u8>> {
    let size_bytes: [u8; 4] = data
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(EtfError::UnexpectedEnd)?;
    let size = u32::from_be_bytes(size_bytes) as usize;
    if size > MAX_INFLATED {
        return Err(EtfError::TooLarge);
    }
    let mut out = Vec::with_capacity(size.min(1 << 24));
    flate2::read::ZlibDecoder::new(&data[4..])
        .take(size as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| EtfError::BadCompressed)?;
    if out.len() != size {
        return Err(EtfError::BadCompressed);
    }
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(EtfError::UnexpectedEnd)?;
        let s = self.buf.get(self.pos..end).ok_or(EtfError::UnexpectedEnd)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A count of items each at least `min_size` bytes long: refuse counts
    /// the input cannot hold, so a forged count cannot allocate much.
    fn count(&self, n: u32, min_size: usize) -> Result<usize> {
        let n = n as usize;
        if n.saturating_mul(min_size) > self.remaining() {
            return Err(EtfError::UnexpectedEnd);
        }
        Ok(n)
    }

    fn atom_body(&mut self, tag: u8) -> Result<Arc<str>> {
        let len = match tag {
            ATOM_EXT | ATOM_UTF8_EXT => usize::from(self.u16()?),
            _ => usize::from(self.u8()?),
        };
        let raw = self.bytes(len)?;
        let text: String = match tag {
            ATOM_EXT | SMALL_ATOM_EXT => raw.iter().map(|&b| char::from(b)).collect(),
            _ => std::str::from_utf8(raw)
                .map_err(|_| EtfError::BadAtom)?
                .to_owned(),
        };
        if text.chars().count() > 255 {
            return Err(EtfError::BadAtom);
        }
        Ok(text.into())
    }

    /// An atom term, as node and module names are encoded.
    fn atom(&mut self) -> Result<Arc<str>> {
        match self.u8()? {
            tag @ (ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT) => {
                self.atom_body(tag)
            }
            _ => Err(EtfError::Invalid("atom")),
        }
    }

    fn node(&mut self, creation_u32: bool) -> Result<Node> {
        let name = self.atom()?;
        let creation = if creation_u32 {
            self.u32()?
        } else {
            u32::from(self.u8()?)
        };
        Ok(Node { name, creation })
    }

    fn small_int(&mut self, depth: usize) -> Result<i64> {
        match self.term(depth)? {
            OwnedTerm::Int(i) => i64::try_from(i).map_err(|_| EtfError::Invalid("integer")),
            _ => Err(EtfError::Invalid("integer")),
        }
    }

    /// One term. Kept small: every arm that needs locals is a function of
    /// its own, so that deep nesting costs little stack per level.
    fn term(&mut self, depth: usize) -> Result<OwnedTerm> {
        if depth >= MAX_DEPTH {
            return Err(EtfError::TooDeep);
        }
        let tag = self.u8()?;
        let d = depth + 1;
        match tag {
            SMALL_TUPLE_EXT => {
                let n = u32::from(self.u8()?);
                self.tuple(n, d)
            }
            LARGE_TUPLE_EXT => {
                let n = self.u32()?;
                self.tuple(n, d)
            }
            LIST_EXT => self.list(d),
            MAP_EXT => self.map(d),
            NIL_EXT => Ok(OwnedTerm::Nil),
            _ => self.leaf(tag, d),
        }
    }

    #[inline(never)]
    fn tuple(&mut self, n: u32, depth: usize) -> Result<OwnedTerm> {
        let n = self.count(n, 1)?;
        let mut elems = Vec::with_capacity(n);
        for _ in 0..n {
            elems.push(self.term(depth)?);
        }
        Ok(OwnedTerm::Tuple(elems.into()))
    }

    #[inline(never)]
    fn list(&mut self, depth: usize) -> Result<OwnedTerm> {
        let n = self.u32()?;
        let n = self.count(n, 1)?;
        let mut elems = Vec::with_capacity(n);
        for _ in 0..n {
            elems.push(self.term(depth)?);
        }
        let tail = self.term(depth)?;
        Ok(OwnedTerm::list_with_tail(elems, tail))
    }

    #[inline(never)]
    fn map(&mut self, depth: usize) -> Result<OwnedTerm> {
        let n = self.u32()?;
        let n = self.count(n, 2)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.term(depth)?;
            let v = self.term(depth)?;
            pairs.push((k, v));
        }
        let m = OwnedTerm::map(pairs);
        match &m {
            OwnedTerm::Map(p) if p.len() == n => Ok(m),
            _ => Err(EtfError::DuplicateMapKey),
        }
    }

    /// Every tag but the containers above.
    #[inline(never)]
    fn leaf(&mut self, tag: u8, depth: usize) -> Result<OwnedTerm> {
        Ok(match tag {
            SMALL_INTEGER_EXT => OwnedTerm::Int(self.u8()?.into()),
            INTEGER_EXT => OwnedTerm::Int(i32::from_be_bytes(self.array()?).into()),
            SMALL_BIG_EXT | LARGE_BIG_EXT => {
                let n = if tag == SMALL_BIG_EXT {
                    usize::from(self.u8()?)
                } else {
                    self.u32()? as usize
                };
                let negative = match self.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(EtfError::Invalid("bignum sign")),
                };
                OwnedTerm::big(negative, self.bytes(n)?)
            }
            NEW_FLOAT_EXT => {
                let f = f64::from_bits(self.u64()?);
                if !f.is_finite() {
                    return Err(EtfError::BadFloat);
                }
                OwnedTerm::Float(f)
            }
            FLOAT_EXT => {
                let raw = self.bytes(31)?;
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                let text = std::str::from_utf8(&raw[..end]).map_err(|_| EtfError::BadFloat)?;
                let f: f64 = text.trim().parse().map_err(|_| EtfError::BadFloat)?;
                if !f.is_finite() {
                    return Err(EtfError::BadFloat);
                }
                OwnedTerm::Float(f)
            }
            ATOM_EXT | SMALL_ATOM_EXT | ATOM_UTF8_EXT | SMALL_ATOM_UTF8_EXT => {
                OwnedTerm::Atom(self.atom_body(tag)?)
            }
            STRING_EXT => {
                let n = usize::from(self.u16()?);
                let bytes = self.bytes(n)?;
                OwnedTerm::list(bytes.iter().map(|&b| OwnedTerm::Int(b.into())))
            }
            BINARY_EXT => {
                let n = self.u32()? as usize;
                OwnedTerm::bin(self.bytes(n)?)
            }
            BIT_BINARY_EXT => {
                let n = self.u32()? as usize;
                let bits = self.u8()?;
                if bits == 0 || bits > 8 {
                    return Err(EtfError::Invalid("bit count"));
                }
                let bytes = self.bytes(n)?;
                if n == 0 {
                    OwnedTerm::bin(b"")
                } else {
                    OwnedTerm::bitstring(bytes, (n - 1) * 8 + usize::from(bits))
                }
            }
            PID_EXT | NEW_PID_EXT => {
                let name = self.atom()?;
                let id = self.u32()?;
                let serial = self.u32()?;
                let creation = if tag == NEW_PID_EXT {
                    self.u32()?
                } else {
                    u32::from(self.u8()?)
                };
                OwnedTerm::Pid(Arc::new(PidTerm {
                    node: Node { name, creation },
                    id,
                    serial,
                }))
            }
            PORT_EXT | NEW_PORT_EXT | V4_PORT_EXT => {
                let name = self.atom()?;
                let id = if tag == V4_PORT_EXT {
                    self.u64()?
                } else {
                    u64::from(self.u32()?)
                };
                let creation = if tag == PORT_EXT {
                    u32::from(self.u8()?)
                } else {
                    self.u32()?
                };
                OwnedTerm::Port(Arc::new(PortTerm {
                    node: Node { name, creation },
                    id,
                }))
            }
            REFERENCE_EXT => {
                let name = self.atom()?;
                let id = self.u32()?;
                let creation = u32::from(self.u8()?);
                OwnedTerm::Reference(Arc::new(RefTerm {
                    node: Node { name, creation },
                    ids: vec![id],
                }))
            }
            NEW_REFERENCE_EXT | NEWER_REFERENCE_EXT => {
                let len = usize::from(self.u16()?);
                if len == 0 || len > 5 {
                    return Err(EtfError::Invalid("reference length"));
                }
                let node = self.node(tag == NEWER_REFERENCE_EXT)?;
                let mut ids = Vec::with_capacity(len);
                for _ in 0..len {
                    ids.push(self.u32()?);
                }
                OwnedTerm::Reference(Arc::new(RefTerm { node, ids }))
            }
            EXPORT_EXT => {
                let module = self.atom()?;
                let function = self.atom()?;
                let arity = match self.term(depth)? {
                    OwnedTerm::Int(a) => u8::try_from(a).map_err(|_| EtfError::Invalid("arity"))?,
                    _ => return Err(EtfError::Invalid("arity")),
                };
                OwnedTerm::Fun(Arc::new(FunTerm::Export {
                    module,
                    function,
                    arity,
                }))
            }
            NEW_FUN_EXT => self.fun(depth)?,
            other => return Err(EtfError::UnknownTag(other)),
        })
    }

    #[inline(never)]
    fn fun(&mut self, depth: usize) -> Result<OwnedTerm> {
        let start = self.pos;
        let size = self.u32()? as usize;
        let arity = self.u8()?;
        let uniq = self.array::<16>()?;
        let index = self.u32()?;
        let num_free = self.u32()?;
        let num_free = self.count(num_free, 1)?;
        let module = self.atom()?;
        let old_index = self.small_int(depth)?;
        let old_uniq = self.small_int(depth)?;
        let pid = self.term(depth)?;
        if !matches!(pid, OwnedTerm::Pid(_)) {
            return Err(EtfError::Invalid("fun pid"));
        }
        let mut env = Vec::with_capacity(num_free);
        for _ in 0..num_free {
            env.push(self.term(depth)?);
        }
        if self.pos - start != size {
            return Err(EtfError::Invalid("fun size"));
        }
        Ok(OwnedTerm::Fun(Arc::new(FunTerm::Local {
            module,
            arity,
            uniq,
            index,
            old_index,
            old_uniq,
            pid,
            env: env.into(),
        })))
    }
}

/// `term_to_binary/1`, as OTP 25 writes it (atoms in Latin-1 when they
/// can be, otherwise UTF-8).
pub fn encode(term: &OwnedTerm) -> Vec<u8> {
    let mut out = vec![VERSION];
    write_term(&mut out, term);
    out
}

/// `term_to_binary(T, [compressed])`: zlib at the default level.
pub fn encode_compressed(term: &OwnedTerm) -> Vec<u8> {
    use std::io::Write;
    let mut body = Vec::new();
    write_term(&mut body, term);
    let mut out = vec![VERSION, COMPRESSED];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&body);
    z.finish().unwrap_or_default()
}

/// OTP 25 writes a Latin-1 atom as `ATOM_EXT` (two-byte length, even when
/// short), and any other atom as UTF-8.
fn write_atom(out: &mut Vec<u8>, name: &str) {
    let latin1: Option<Vec<u8>> = name
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect();
    match latin1 {
        Some(bytes) => {
            out.push(ATOM_EXT);
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        None if name.len() < 256 => {
            out.push(SMALL_ATOM_UTF8_EXT);
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
        None => {
            out.push(ATOM_UTF8_EXT);
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name.as_bytes());
        }
    }
}

fn write_big(out: &mut Vec<u8>, negative: bool, mag: &[u8]) {
    if mag.len() < 256 {
        out.push(SMALL_BIG_EXT);
        out.push(mag.len() as u8);
    } else {
        out.push(LARGE_BIG_EXT);
        out.extend_from_slice(&(mag.len() as u32).to_be_bytes());
    }
    out.push(u8::from(negative));
    out.extend_from_slice(mag);
}

fn write_node(out: &mut Vec<u8>, node: &Node) {
    write_atom(out, &node.name);
}

fn write_term(out: &mut Vec<u8>, term: &OwnedTerm) {
    match term {
        OwnedTerm::Int(i) => {
            if let Ok(b) = u8::try_from(*i) {
                out.push(SMALL_INTEGER_EXT);
                out.push(b);
            } else if let Ok(w) = i32::try_from(*i) {
                out.push(INTEGER_EXT);
                out.extend_from_slice(&w.to_be_bytes());
            } else {
                let mut mag = i.unsigned_abs().to_le_bytes().to_vec();
                while mag.last() == Some(&0) {
                    mag.pop();
                }
                write_big(out, *i < 0, &mag);
            }
        }
        OwnedTerm::BigInt(b) => write_big(out, b.is_negative(), &b.magnitude_le_bytes()),
        OwnedTerm::Float(f) => {
            out.push(NEW_FLOAT_EXT);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        OwnedTerm::Atom(a) => write_atom(out, a),
        OwnedTerm::Reference(r) => {
            out.push(NEWER_REFERENCE_EXT);
            out.extend_from_slice(&(r.ids.len() as u16).to_be_bytes());
            write_node(out, &r.node);
            out.extend_from_slice(&r.node.creation.to_be_bytes());
            for id in &r.ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        OwnedTerm::Fun(f) => match &**f {
            FunTerm::Export {
                module,
                function,
                arity,
            } => {
                out.push(EXPORT_EXT);
                write_atom(out, module);
                write_atom(out, function);
                out.push(SMALL_INTEGER_EXT);
                out.push(*arity);
            }
            FunTerm::Local {
                module,
                arity,
                uniq,
                index,
                old_index,
                old_uniq,
                pid,
                env,
            } => {
                out.push(NEW_FUN_EXT);
                let start = out.len();
                out.extend_from_slice(&[0; 4]);
                out.push(*arity);
                out.extend_from_slice(uniq);
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&(env.len() as u32).to_be_bytes());
                write_atom(out, module);
                write_term(out, &OwnedTerm::Int((*old_index).into()));
                write_term(out, &OwnedTerm::Int((*old_uniq).into()));
                write_term(out, pid);
                for v in env.iter() {
                    write_term(out, v);
                }
                let size = (out.len() - start) as u32;
                out[start..start + 4].copy_from_slice(&size.to_be_bytes());
            }
        },
        OwnedTerm::Port(p) => {
            if let Ok(id) = u32::try_from(p.id) {
                out.push(NEW_PORT_EXT);
                write_node(out, &p.node);
                out.extend_from_slice(&id.to_be_bytes());
            } else {
                out.push(V4_PORT_EXT);
                write_node(out, &p.node);
                out.extend_from_slice(&p.id.to_be_bytes());
            }
            out.extend_from_slice(&p.node.creation.to_be_bytes());
        }
        OwnedTerm::Pid(p) => {
            out.push(NEW_PID_EXT);
            write_node(out, &p.node);
            out.extend_from_slice(&p.id.to_be_bytes());
            out.extend_from_slice(&p.serial.to_be_bytes());
            out.extend_from_slice(&p.node.creation.to_be_bytes());
        }
        OwnedTerm::Tuple(t) => {
            if t.len() < 256 {
                out.push(SMALL_TUPLE_EXT);
                out.push(t.len() as u8);
            } else {
                out.push(LARGE_TUPLE_EXT);
                out.extend_from_slice(&(t.len() as u32).to_be_bytes());
            }
            for e in t.iter() {
                write_term(out, e);
            }
        }
        OwnedTerm::Map(m) => {
            out.push(MAP_EXT);
            out.extend_from_slice(&(m.len() as u32).to_be_bytes());
            for (k, v) in m.iter() {
                write_term(out, k);
                write_term(out, v);
            }
        }
        OwnedTerm::Nil => out.push(NIL_EXT),
        OwnedTerm::List(_) => {
            let Some((elems, tail)) = term.list_parts() else {
                return;
            };
            let bytes: Option<Vec<u8>> = elems
                .iter()
                .map(|e| match e {
                    OwnedTerm::Int(i) => u8::try_from(*i).ok(),
                    _ => None,
                })
                .collect();
            match bytes {
                Some(b) if matches!(tail, OwnedTerm::Nil) && b.len() <= 0xffff => {
                    out.push(STRING_EXT);
                    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
                    out.extend_from_slice(&b);
                }
                _ => {
                    out.push(LIST_EXT);
                    out.extend_from_slice(&(elems.len() as u32).to_be_bytes());
                    for e in elems {
                        write_term(out, e);
                    }
                    write_term(out, tail);
                }
            }
        }
        OwnedTerm::Binary(b) => {
            out.push(BINARY_EXT);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        OwnedTerm::BitString { bytes, bits } => {
            out.push(BIT_BINARY_EXT);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.push(*bits);
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::term::Term;
    use OwnedTerm as T;

    fn roundtrip(t: &T) {
        let plain = encode(t);
        let back = decode(&plain).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(back.identical(t), "{t} came back as {back}");
        assert_eq!(encode(&back), plain);
        let compressed = encode_compressed(t);
        let packed = decode(&compressed).unwrap();
        assert!(packed.identical(t));
        assert_eq!(&*uncompressed(&compressed).unwrap(), &plain[..]);
    }

    #[test]
    fn known_bytes() {
        // term_to_binary(-1), (300), (1.5), ('é'), ("ab"), (<<1:3>>), ([a|b])
        assert_eq!(decode(&[131, 98, 255, 255, 255, 255]).unwrap(), T::int(-1));
        assert_eq!(encode(&T::int(300)), [131, 98, 0, 0, 1, 44]);
        assert_eq!(
            encode(&T::float(1.5)),
            [131, 70, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(encode(&T::atom("é")), [131, 100, 0, 1, 0xe9]);
        assert_eq!(encode(&T::atom("✓")), [131, 119, 3, 0xe2, 0x9c, 0x93]);
        assert_eq!(decode(&[131, 115, 1, 0xe9]).unwrap(), T::atom("é"));
        assert_eq!(decode(&[131, 119, 2, 0xc3, 0xa9]).unwrap(), T::atom("é"));
        assert_eq!(
            encode(&T::list([T::int(97), T::int(98)])),
            [131, 107, 0, 2, 97, 98]
        );
        assert_eq!(
            encode(&T::bitstring(&[0x20], 3)),
            [131, 77, 0, 0, 0, 1, 3, 0x20]
        );
        assert_eq!(
            encode(&T::list_with_tail([T::atom("a")], T::atom("b"))),
            [131, 108, 0, 0, 0, 1, 100, 0, 1, b'a', 100, 0, 1, b'b']
        );
        // 2^64: SMALL_BIG_EXT.
        assert_eq!(
            decode(&[131, 110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap(),
            T::int(1i128 << 64)
        );
        // Old-style string float.
        let mut old = vec![131, 99];
        let mut digits = b"1.50000000000000000000e+00".to_vec();
        digits.resize(31, 0);
        old.extend_from_slice(&digits);
        assert_eq!(decode(&old).unwrap(), T::float(1.5));
    }

    #[test]
    fn roundtrips() {
        let pid = T::pid("n@h", 85, 0, 3);
        let local = T::Fun(Arc::new(FunTerm::Local {
            module: "m".into(),
            arity: 1,
            uniq: [7; 16],
            index: 2,
            old_index: 2,
            old_uniq: 12345,
            pid: pid.clone(),
            env: vec![T::int(1), T::atom("x")].into(),
        }));
        let mut huge = vec![0u8; 300];
        huge[299] = 1;
        for t in [
            T::int(0),
            T::int(255),
            T::int(256),
            T::int(-2_147_483_648i64),
            T::int(2_147_483_648i64),
            T::int(i128::MIN),
            T::int(i128::MAX),
            T::big(true, &huge),
            T::float(-0.25),
            T::atom(""),
            T::atom("ünïcødé✓"),
            T::atom(&"a".repeat(255)),
            T::tuple((0..300).map(T::int)),
            T::map([(T::int(1), T::atom("a")), (T::float(1.0), T::atom("b"))]),
            T::Nil,
            T::list((0..70_000).map(|i| T::int(i % 256))),
            T::list_with_tail([T::int(1), T::int(1000)], T::bin(b"t")),
            T::bin(b""),
            T::bin(&[0, 255]),
            T::bitstring(&[1, 0xc0], 10),
            pid,
            T::port("n@h", 7, 1),
            T::port("n@h", 1 << 40, 1),
            T::reference("n@h", 2, &[1, 2, 3]),
            T::export_fun("lists", "map", 2),
            local,
        ] {
            roundtrip(&t);
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let cases: &[&[u8]] = &[
            &[],
            &[130, 97, 1],
            &[131],
            &[131, 97],
            &[131, 97, 1, 0],
            &[131, 104, 3, 97, 1],
            &[131, 108, 255, 255, 255, 255, 106],
            &[131, 116, 255, 255, 255, 255],
            &[131, 116, 0, 0, 0, 2, 97, 1, 97, 1, 97, 1, 97, 2],
            &[131, 109, 0, 0, 0, 5, 1],
            &[131, 77, 0, 0, 0, 1, 0, 1],
            &[131, 70, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
            &[131, 119, 1, 0xff],
            &[131, 110, 1, 2, 1],
            &[131, 82, 0],
            &[131, 80, 0, 0, 0, 5, 1, 2, 3],
            &[131, 80, 0xff, 0xff, 0xff, 0xff],
            &[131, 90, 0, 0, 115, 1, b'n', 0, 0, 0, 0],
            &[131, 113, 115, 1, b'm', 115, 1, b'f', 97],
        ];
        for c in cases {
            assert!(decode(c).is_err(), "{c:?} decoded");
        }
        // Deep nesting is refused, not a stack overflow.
        let mut deep = vec![131];
        for _ in 0..100_000 {
            deep.extend_from_slice(&[104, 1]);
        }
        deep.push(106);
        assert_eq!(decode(&deep), Err(EtfError::TooDeep));
        // Just under the limit decodes, and compares, prints and drops
        // within a test thread's stack.
        let mut ok = vec![131];
        for i in 0..MAX_DEPTH - 1 {
            ok.extend_from_slice(if i % 2 == 0 {
                &[104, 1]
            } else {
                &[108, 0, 0, 0, 1]
            });
        }
        ok.push(106);
        ok.extend(std::iter::repeat_n(106, (MAX_DEPTH - 1) / 2));
        let t = decode(&ok).unwrap();
        assert!(t.identical(&t.clone()));
        assert!(t.to_string().len() > MAX_DEPTH);
        assert_eq!(encode(&t), ok);
        // A compressed term whose stream inflates to a different size.
        let mut c = encode_compressed(&T::atom("hello"));
        c[5] = c[5].wrapping_add(1);
        assert!(decode(&c).is_err());
    }

    #[test]
    fn truncations_never_panic() {
        let t = T::tuple([
            T::map([(T::atom("k"), T::list([T::int(1), T::float(2.0)]))]),
            T::reference("n@h", 2, &[1, 2, 3]),
            T::bitstring(&[1, 0xc0], 10),
            T::int(1i128 << 100),
        ]);
        let bytes = encode(&t);
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err());
        }
        for i in 1..bytes.len() {
            for v in [0u8, 1, 77, 104, 255] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = decode(&b);
            }
        }
    }
}
