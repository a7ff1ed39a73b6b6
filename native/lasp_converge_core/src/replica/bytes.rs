//! Lattice operations on two binaries of the wire format, binary in,
//! binary out: the engine of binary payloads in a Lasp node (a variable
//! holding `{state_gset, Bin}`).
//!
//! Both inputs are scanned once for structure (`scan_entries`: lengths,
//! key shapes, strictly ascending primaries, nothing left over) and then
//! walked in lockstep, comparing keys with `memcmp`. No entry is decoded to
//! a term except those the result of a merge takes from a side the caller
//! does not vouch for, which are decoded in full (and their atoms checked)
//! before anything is returned.
//!
//! Term for term, the result decodes to what lasp-lang/types gives for the
//! decoded inputs:
//!
//! - gset `merge(A, B)` is `ordsets:union(A, B)`: on `==` elements (`1` and
//!   `1.0`) the term of the "current first" side survives, the side that
//!   last emitted an element the other lacks, starting with `A`;
//! - gcounter `merge(A, B)` is `orddict:merge` with `max`: `A`'s actor term
//!   on `==` actors, the larger count;
//! - `is_inflation`, `equal` and `is_strict_inflation` compare primaries
//!   (`==`) and counts, as types' `ordsets`/`orddict` walks do.

use std::cmp::Ordering;

use super::{decode_entry, scan_entries, term_atoms_ok, In, GCOUNTER, GSET};
use crate::error::{BadCrdt, Result};
use crate::owned::OwnedTerm;
use crate::term::{Atom, Term};
use crate::wire;

/// The layout byte and body of a keyed binary (gset or gcounter).
fn body(bytes: &[u8]) -> Result<(u8, &[u8])> {
    match super::layout_of(bytes)? {
        l @ (GSET | GCOUNTER) => Ok((l, &bytes[5..])),
        _ => Err(BadCrdt::BadBinary(Atom::Malformed)),
    }
}

fn tag(layout: u8) -> Atom {
    if layout == GSET {
        Atom::StateGset
    } else {
        Atom::StateGcounter
    }
}

fn tail_len(layout: u8) -> usize {
    if layout == GSET {
        0
    } else {
        8
    }
}

/// The type of a keyed binary: `state_gset` or `state_gcounter`.
pub fn type_of(bytes: &[u8]) -> Result<Atom> {
    body(bytes).map(|(l, _)| tag(l))
}

/// Both inputs' layout and scanned entries, checked to be of one type.
fn scan_both<'a>(a: &'a [u8], b: &'a [u8]) -> Result<(u8, Scanned<'a>, Scanned<'a>)> {
    let (la, ba) = body(a)?;
    let (lb, bb) = body(b)?;
    if la != lb {
        return Err(BadCrdt::TypeMismatch(tag(la), tag(lb)));
    }
    let sa = Scanned {
        body: ba,
        entries: scan_entries(ba, tail_len(la))?,
    };
    let sb = Scanned {
        body: bb,
        entries: scan_entries(bb, tail_len(lb))?,
    };
    Ok((la, sa, sb))
}

struct Scanned<'a> {
    body: &'a [u8],
    entries: Vec<In<'a>>,
}

/// Which inputs' entries a merge decodes in full when it takes them, and
/// how many bytes of entries it may decode before giving up with
/// [`BadCrdt::Yield`] (a caller on a normal scheduler retries on a dirty
/// one: decoding costs about 40 ns a byte, the structural scan 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decode {
    /// Decode the entries taken from the first input.
    pub first: bool,
    /// Decode the entries taken from the second input.
    pub second: bool,
    /// The most bytes of entries decoded, `usize::MAX` for no bound.
    pub budget: usize,
}

impl Decode {
    /// The first input is a state this library wrote (a Lasp variable's
    /// stored value); the second was received.
    pub const SECOND: Decode = Decode {
        first: false,
        second: true,
        budget: usize::MAX,
    };

    /// The same with at most `bytes` of entries decoded.
    pub fn within(self, bytes: usize) -> Decode {
        Decode {
            budget: bytes,
            ..self
        }
    }
}

/// The output under construction.
struct Out<'x> {
    buf: Vec<u8>,
    count: usize,
    atom_ok: &'x dyn Fn(&str) -> bool,
    // Bytes of entries that may still be decoded.
    budget: usize,
}

impl Out<'_> {
    /// Append one entry (key, exact part, and `count` for a gcounter),
    /// decoding it first when `check`.
    fn push(&mut self, s: &Scanned, x: &In, count: Option<i64>, check: bool) -> Result<()> {
        if check {
            let len = x.key.len() + x.exact.len();
            self.budget = self.budget.checked_sub(len).ok_or(BadCrdt::Yield)?;
            let e = decode_entry(s.body, x)?;
            if !term_atoms_ok(&e.term, self.atom_ok) {
                return Err(BadCrdt::BadBinary(Atom::Unsupported));
            }
        }
        self.buf.extend_from_slice(x.key);
        self.buf.extend_from_slice(x.exact);
        if let Some(n) = count {
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
        self.count += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>> {
        let n = u32::try_from(self.count).map_err(|_| BadCrdt::BadBinary(Atom::Malformed))?;
        self.buf[5..9].copy_from_slice(&n.to_be_bytes());
        Ok(self.buf)
    }
}

/// What [`merge`] gives: the binary of `merge(A, B)`, and whether it holds
/// more than `A` (`not equal(A, Merged)`, so `is_strict_inflation(A,
/// Merged)`, `A` being at most `Merged` by construction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The merged state's binary.
    pub bytes: Vec<u8>,
    /// Whether it holds an element, actor or count `A` lacks.
    pub grew: bool,
}

/// types' `merge(A, B)` of two binaries of one keyed type, as a new binary.
/// Entries the result takes from a side `decode` names are decoded in
/// full (and `atom_ok` asked about their atoms); the others are copied as
/// bytes after the structural scan. Two identical binaries (replicas that
/// agree) are scanned once and give `A`.
pub fn merge(a: &[u8], b: &[u8], decode: Decode, atom_ok: &dyn Fn(&str) -> bool) -> Result<Merged> {
    if a == b && !decode.first {
        let (layout, body) = body(a)?;
        scan_entries(body, tail_len(layout))?;
        return Ok(Merged {
            bytes: a.to_vec(),
            grew: false,
        });
    }
    let (layout, sa, sb) = scan_both(a, b)?;
    merge_scanned(layout, &a[..5], &sa, &sb, decode, atom_ok)
}

fn merge_scanned(
    layout: u8,
    header: &[u8],
    sa: &Scanned,
    sb: &Scanned,
    decode: Decode,
    atom_ok: &dyn Fn(&str) -> bool,
) -> Result<Merged> {
    let mut out = Out {
        buf: Vec::with_capacity(sa.body.len().max(sb.body.len()) + 16),
        count: 0,
        atom_ok,
        budget: decode.budget,
    };
    out.buf.extend_from_slice(header);
    out.buf.extend_from_slice(&[0; 4]);
    let mut grew = false;
    let (ea, eb) = (&sa.entries, &sb.entries);
    let (mut i, mut j) = (0, 0);
    let counter = layout == GCOUNTER;
    let cnt = |x: &In| if counter { Some(x.count) } else { None };
    // ordsets:union: the side whose term survives on `==` elements.
    let mut a_first = true;
    while i < ea.len() && j < eb.len() {
        let (x, y) = (&ea[i], &eb[j]);
        match x.key.cmp(y.key) {
            Ordering::Less => {
                out.push(sa, x, cnt(x), decode.first)?;
                a_first = true;
                i += 1;
            }
            Ordering::Greater => {
                out.push(sb, y, cnt(y), decode.second)?;
                a_first = false;
                grew = true;
                j += 1;
            }
            Ordering::Equal => {
                if counter {
                    // orddict:merge keeps the first's key, max of counts.
                    grew |= y.count > x.count;
                    out.push(sa, x, Some(x.count.max(y.count)), decode.first)?;
                } else if a_first || x.exact == y.exact {
                    out.push(sa, x, None, decode.first)?;
                } else {
                    out.push(sb, y, None, decode.second)?;
                }
                i += 1;
                j += 1;
            }
        }
    }
    for x in &ea[i..] {
        out.push(sa, x, cnt(x), decode.first)?;
    }
    for y in &eb[j..] {
        out.push(sb, y, cnt(y), decode.second)?;
        grew = true;
    }
    Ok(Merged {
        bytes: out.finish()?,
        grew,
    })
}

/// `(is_inflation(A, B), equal(A, B))` of two binaries of one keyed type,
/// in one walk. `is_strict_inflation(A, B)` is the first and not the second.
pub fn compare(a: &[u8], b: &[u8]) -> Result<(bool, bool)> {
    let (layout, sa, sb) = scan_both(a, b)?;
    let counter = layout == GCOUNTER;
    let (ea, eb) = (&sa.entries, &sb.entries);
    let (mut inflation, mut equal) = (true, ea.len() == eb.len());
    let (mut i, mut j) = (0, 0);
    while i < ea.len() && j < eb.len() && (inflation || equal) {
        let (x, y) = (&ea[i], &eb[j]);
        match x.key.cmp(y.key) {
            Ordering::Less => return Ok((false, false)),
            Ordering::Greater => {
                equal = false;
                j += 1;
            }
            Ordering::Equal => {
                if counter {
                    inflation &= x.count <= y.count;
                    equal &= x.count == y.count;
                }
                i += 1;
                j += 1;
            }
        }
    }
    if i < ea.len() {
        // A key of `A` that `B` lacks (or both answers already false).
        return Ok((false, false));
    }
    Ok((inflation, equal))
}

/// What a keyed binary holds: entries and whether it is empty, after a
/// structural scan.
pub fn size(bytes: &[u8]) -> Result<usize> {
    let (layout, body) = body(bytes)?;
    Ok(scan_entries(body, tail_len(layout))?.len())
}

/// types' `delta_mutate(Op, Actor, State)` on a binary state, as a binary
/// delta: gset `{add, E}`, gcounter `increment`. `None` for any other
/// operation, an element or actor with no key (a pid, a map ...) or a count
/// past 64 bits: the caller answers those from the term.
pub fn delta_mutate(op: &OwnedTerm, actor: &OwnedTerm, state: &[u8]) -> Result<Option<Vec<u8>>> {
    let (layout, body) = body(state)?;
    let entries = scan_entries(body, tail_len(layout))?;
    delta_scanned(op, actor, layout, &state[..5], &entries)
}

fn delta_scanned(
    op: &OwnedTerm,
    actor: &OwnedTerm,
    layout: u8,
    header: &[u8],
    entries: &[In],
) -> Result<Option<Vec<u8>>> {
    let named = if layout == GSET {
        match op.as_pair() {
            Some((n, e)) if n.is_atom(Atom::Add) => e,
            _ => return Ok(None),
        }
    } else if op.is_atom(Atom::Increment) {
        actor.clone()
    } else {
        return Ok(None);
    };
    let mut key = Vec::new();
    if wire::encode(&named, &mut key).is_err() {
        return Ok(None);
    }
    let p = wire::primary_len(&key).map_err(|_| BadCrdt::BadBinary(Atom::Malformed))?;
    let found = entries
        .binary_search_by(|x| x.key.cmp(&key[..p]))
        .ok()
        .map(|i| entries[i].count);
    let mut out = Vec::with_capacity(key.len() + 17);
    out.extend_from_slice(header);
    if layout == GSET {
        if found.is_some() {
            out.extend_from_slice(&0u32.to_be_bytes());
        } else {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&key);
        }
    } else {
        let Some(n) = found.unwrap_or(0).checked_add(1) else {
            return Ok(None);
        };
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&key);
        out.extend_from_slice(&n.to_be_bytes());
    }
    Ok(Some(out))
}

/// types' `mutate(Op, Actor, State)` on a binary state: `merge(Delta,
/// State)` of [`delta_mutate`]'s delta. The state is one this library
/// wrote: its entries are copied, not decoded. `None` as for
/// [`delta_mutate`].
pub fn mutate(op: &OwnedTerm, actor: &OwnedTerm, state: &[u8]) -> Result<Option<Vec<u8>>> {
    let (layout, body) = body(state)?;
    let tail = tail_len(layout);
    let ss = Scanned {
        body,
        entries: scan_entries(body, tail)?,
    };
    let Some(d) = delta_scanned(op, actor, layout, &state[..5], &ss.entries)? else {
        return Ok(None);
    };
    let sd = Scanned {
        body: &d[5..],
        entries: scan_entries(&d[5..], tail)?,
    };
    let trusted = Decode {
        first: false,
        second: false,
        budget: usize::MAX,
    };
    let m = merge_scanned(layout, &state[..5], &sd, &ss, trusted, &|_| true)?;
    Ok(Some(m.bytes))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::{Decoder, Limits};
    use crate::owned::OwnedBuilder;
    use crate::replica::Replica;
    use crate::term::Builder;
    use crate::testing::{Cx, Rng};

    // Lasp-like elements and actors, with `==`-but-not-`=:=` pairs.
    fn elem(r: &mut Rng) -> OwnedTerm {
        let n = r.next(24) as i64;
        match r.next(6) {
            0 => OwnedTerm::int(n),
            1 => OwnedTerm::float(n as f64),
            2 => OwnedTerm::bin(format!("e{n}").as_bytes()),
            3 => OwnedTerm::atom(["a", "b", "c"][(n % 3) as usize]),
            4 => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::int(n)]),
            _ => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::float(n as f64)]),
        }
    }

    fn gset(r: &mut Rng) -> OwnedTerm {
        let n = if r.next(4) == 0 { 60 } else { 8 };
        crate::testing::gset_of(r, n, elem)
    }

    fn gcounter(r: &mut Rng) -> OwnedTerm {
        let n = if r.next(4) == 0 { 60 } else { 8 };
        crate::testing::gcounter_of(r, n, elem, |r| 1 + r.next(4) as i64)
    }

    fn bin(t: &OwnedTerm) -> Vec<u8> {
        Replica::from_term(t).unwrap().to_binary()
    }

    fn term(b: &[u8]) -> OwnedTerm {
        Replica::from_binary(b).unwrap().to_term()
    }

    fn lim() -> Limits {
        Limits::dirty()
    }

    // Against the decoded path: the core's term merge and comparisons,
    // which the conformance vectors tie to types.
    fn agrees(gen: fn(&mut Rng) -> OwnedTerm, seed: u64) {
        let mut r = Rng(seed);
        let (mut held, mut eq) = (0, 0);
        for i in 0..4000 {
            let x = gen(&mut r);
            // Often a state and its merge with another, so that inflations
            // and equal states come up.
            let y = match i % 3 {
                0 => gen(&mut r),
                1 => crate::api::merge(&OwnedBuilder, &x, &gen(&mut r), lim()).unwrap(),
                _ => x.clone(),
            };
            let (bx, by) = (bin(&x), bin(&y));
            for (a, b, ba, bb) in [(&x, &y, &bx, &by), (&y, &x, &by, &bx)] {
                let want = crate::api::merge(&OwnedBuilder, a, b, lim()).unwrap();
                for d in [
                    Decode::SECOND,
                    Decode {
                        first: true,
                        second: false,
                        budget: usize::MAX,
                    },
                ] {
                    let got = merge(ba, bb, d, &|_| true).unwrap();
                    assert!(
                        term(&got.bytes).identical(&want),
                        "merge({a}, {b}) = {want}"
                    );
                    assert_eq!(got.bytes, bin(&want));
                    let strict = crate::api::is_strict_inflation(a, &want, lim()).unwrap();
                    assert_eq!(got.grew, strict, "merge({a}, {b}) grew");
                }
                let infl = crate::api::is_inflation(a, b, lim()).unwrap();
                let equal = crate::api::equal(a, b, lim()).unwrap();
                assert_eq!(compare(ba, bb).unwrap(), (infl, equal), "{a} <= {b}");
                held += usize::from(infl);
                eq += usize::from(equal);
            }
        }
        assert!(held > 1000 && eq > 500, "{held} {eq}");
    }

    // The same property with proptest's shrinking: states built from
    // element codes (kind, number), so a failure shrinks to small states.
    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn code_elem((kind, n): (u8, u8)) -> OwnedTerm {
            let n = i64::from(n);
            match kind {
                0 => OwnedTerm::int(n),
                1 => OwnedTerm::float(n as f64),
                2 => OwnedTerm::bin(format!("e{n}").as_bytes()),
                3 => OwnedTerm::atom(["a", "b", "c"][(n % 3) as usize]),
                4 => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::int(n)]),
                _ => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::float(n as f64)]),
            }
        }

        fn state(counter: bool, codes: &[((u8, u8), u8)]) -> OwnedTerm {
            let mut es: Vec<(OwnedTerm, i64)> = Vec::new();
            for &(c, v) in codes {
                let e = code_elem(c);
                if !es.iter().any(|(x, _)| x.equal(&e)) {
                    es.push((e, 1 + i64::from(v)));
                }
            }
            es.sort_by(|a, b| a.0.compare(&b.0));
            let b = OwnedBuilder;
            if counter {
                let items: Vec<_> = es
                    .iter()
                    .map(|(a, n)| b.pair(a.clone(), b.int(*n)))
                    .collect();
                b.pair(OwnedTerm::atom("state_gcounter"), b.list(&items))
            } else {
                let items: Vec<_> = es.into_iter().map(|(e, _)| e).collect();
                b.pair(OwnedTerm::atom("state_gset"), b.list(&items))
            }
        }

        fn codes() -> impl Strategy<Value = Vec<((u8, u8), u8)>> {
            proptest::collection::vec(((0u8..6, 0u8..12), 0u8..4), 0..24)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]
            #[test]
            fn bytes_agree_with_decoded_prop(counter in any::<bool>(), xs in codes(), ys in codes(),
                                             merged in any::<bool>()) {
                let x = state(counter, &xs);
                let mut y = state(counter, &ys);
                if merged {
                    y = crate::api::merge(&OwnedBuilder, &x, &y, lim()).unwrap();
                }
                let (bx, by) = (bin(&x), bin(&y));
                let want = crate::api::merge(&OwnedBuilder, &x, &y, lim()).unwrap();
                let got = merge(&bx, &by, Decode::SECOND, &|_| true).unwrap();
                prop_assert!(term(&got.bytes).identical(&want), "merge({}, {}) = {}", x, y, want);
                prop_assert_eq!(
                    got.grew,
                    crate::api::is_strict_inflation(&x, &want, lim()).unwrap()
                );
                prop_assert_eq!(
                    compare(&bx, &by).unwrap(),
                    (
                        crate::api::is_inflation(&x, &y, lim()).unwrap(),
                        crate::api::equal(&x, &y, lim()).unwrap()
                    )
                );
            }
        }
    }

    #[test]
    fn gset_bytes_agree_test() {
        agrees(gset, 71);
    }

    #[test]
    fn gcounter_bytes_agree_test() {
        agrees(gcounter, 72);
    }

    #[test]
    fn mutate_bytes_agree_test() {
        let mut r = Rng(73);
        let b = OwnedBuilder;
        for i in 0..3000 {
            let (s, op, actor) = if i % 2 == 0 {
                (
                    gset(&mut r),
                    b.pair(OwnedTerm::atom("add"), elem(&mut r)),
                    OwnedTerm::atom("a"),
                )
            } else {
                (gcounter(&mut r), OwnedTerm::atom("increment"), elem(&mut r))
            };
            let ok = |t: OwnedTerm| b.pair(OwnedTerm::atom("ok"), t);
            let want_d =
                crate::api::delta_mutate(&mut Cx::default(), &op, &actor, &s, lim()).unwrap();
            let want = crate::api::mutate(&mut Cx::default(), &op, &actor, &s, lim()).unwrap();
            let d = delta_mutate(&op, &actor, &bin(&s)).unwrap().unwrap();
            assert!(ok(term(&d)).identical(&want_d), "{op} {actor} on {s}");
            let m = mutate(&op, &actor, &bin(&s)).unwrap().unwrap();
            assert!(ok(term(&m)).identical(&want), "{op} {actor} on {s}");
        }
        // What is left to the term path.
        let s = bin(&gset(&mut r));
        let pid = OwnedTerm::pid("n@h", 1, 2, 3);
        let add_pid = b.pair(OwnedTerm::atom("add"), pid);
        assert_eq!(delta_mutate(&add_pid, &OwnedTerm::atom("a"), &s), Ok(None));
        let inc = OwnedTerm::atom("increment");
        assert_eq!(delta_mutate(&inc, &OwnedTerm::atom("a"), &s), Ok(None));
    }

    #[test]
    fn bad_input_test() {
        let mut r = Rng(74);
        let (g, c) = (bin(&gset(&mut r)), bin(&gcounter(&mut r)));
        assert_eq!(
            merge(&g, &c, Decode::SECOND, &|_| true),
            Err(BadCrdt::TypeMismatch(Atom::StateGset, Atom::StateGcounter))
        );
        // Every truncation and a generic-layout binary are refused.
        for cut in 0..g.len() {
            assert!(merge(&g, &g[..cut], Decode::SECOND, &|_| true).is_err());
            assert!(compare(&g[..cut], &g).is_err());
        }
        let generic = Replica::from_term(
            &OwnedBuilder.pair(OwnedTerm::atom("state_pncounter"), OwnedTerm::Nil),
        )
        .unwrap()
        .to_binary();
        assert!(compare(&generic, &generic).is_err());
        // An unknown atom taken from the received side is refused; from
        // the first (trusted) side it is copied.
        let with_atom = bin(&OwnedBuilder.pair(
            OwnedTerm::atom("state_gset"),
            OwnedBuilder.list(&[OwnedTerm::atom("zz")]),
        ));
        let empty = bin(&OwnedBuilder.pair(OwnedTerm::atom("state_gset"), OwnedTerm::Nil));
        let no_zz = |a: &str| a != "zz";
        assert_eq!(
            merge(&empty, &with_atom, Decode::SECOND, &no_zz),
            Err(BadCrdt::BadBinary(Atom::Unsupported))
        );
        let m = merge(&with_atom, &empty, Decode::SECOND, &no_zz).unwrap();
        assert_eq!((m.bytes, m.grew), (with_atom.clone(), false));
        // A decode budget: refused with Yield past it, same answer within.
        let big = bin(&OwnedBuilder.pair(
            OwnedTerm::atom("state_gset"),
            OwnedBuilder.list(&(0..100).map(OwnedTerm::int).collect::<Vec<_>>()),
        ));
        let want = merge(&empty, &big, Decode::SECOND, &|_| true).unwrap();
        assert_eq!(
            merge(&empty, &big, Decode::SECOND.within(50), &|_| true),
            Err(BadCrdt::Yield)
        );
        let within = Decode::SECOND.within(big.len());
        assert_eq!(merge(&empty, &big, within, &|_| true).unwrap(), want);
        assert_eq!(
            merge(&big, &empty, Decode::SECOND.within(0), &|_| true)
                .unwrap()
                .bytes,
            big
        );
        // Identical binaries: the first, scanned.
        let m = merge(&g, &g, Decode::SECOND, &|_| true).unwrap();
        assert_eq!((m.bytes, m.grew), (g.clone(), false));
        let mut cut = g.clone();
        cut.pop();
        assert!(merge(&cut, &cut, Decode::SECOND, &|_| true).is_err());
        // Random bytes never panic, and what is accepted is canonical.
        for _ in 0..2000 {
            let mut bad = g.clone();
            let at = r.next(bad.len() as u64) as usize;
            bad[at] = r.next(256) as u8;
            if let Ok(m) = merge(&empty, &bad, Decode::SECOND, &|_| true) {
                let back = Replica::from_binary(&m.bytes).unwrap();
                assert_eq!(back.to_binary(), m.bytes);
            }
            let _ = compare(&bad, &g);
        }
        let _ = Decoder::new(lim());
    }
}
