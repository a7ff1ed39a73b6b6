//! Resident replicas: a CRDT state kept decoded between calls, and its
//! binary wire format.
//!
//! A [`Replica`] is a *mutable* state: [`Replica::merge`] and
//! [`Replica::mutate`] change it in place. `state_gset` and
//! `state_gcounter` are held in ordered maps keyed by their elements' (or
//! actors') [`wire`] keys, so merging `m` incoming entries into `n` resident
//! ones costs `O(m log n)`; every other type, and a gset or gcounter whose
//! terms have no key (pids, maps, bignums ...), is held as the core's decoded
//! [`Crdt`], where a merge is the core's merge, `O(n + m)`.
//!
//! Every answer is term for term what lasp-lang/types gives for the same
//! terms: [`Replica::merge`] is `merge(State, Incoming)` (the resident state
//! is the first argument, so on `==` entries its terms are kept, and the
//! role swap of `ordsets:union/2` is followed), and [`Replica::mutate`] is
//! types' `mutate`: `merge(Delta, State)` of the `delta_mutate` delta.
//!
//! # Binary format (version 1)
//!
//! `"LCR"`, the version byte `1`, a layout byte, then:
//!
//! - layout `1`, `state_gset`: the element count as 4 bytes big-endian, then
//!   each element's [`wire`] key, strictly ascending (`memcmp` of the keys'
//!   primary parts, which is the term order, so no two elements are `==`);
//! - layout `2`, `state_gcounter`: the actor count, then per actor its key
//!   (strictly ascending as above) and its count as 8 bytes big-endian
//!   two's complement;
//! - layout `0`, any type: `term_to_binary({Type, Payload})` (the external
//!   term format, read by the core's [`etf`] reader and validated as a
//!   state term is).
//!
//! Anything else, a truncation, bytes left over, an unsorted or malformed
//! entry, is refused with [`BadCrdt::BadBinary`].

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

use crate::crdt::Crdt;
use crate::decode::{Decoder, Limits};
use crate::error::{BadCrdt, MutateError, Result};
use crate::etf;
use crate::lattice::MutateCx;
use crate::owned::{OwnedBuilder, OwnedTerm};
use crate::term::{Atom, Term};
use crate::types::{GCounter, GSet};
use crate::wire;

/// The first bytes of every binary.
pub const MAGIC: &[u8; 3] = b"LCR";
/// The format version written and read.
pub const VERSION: u8 = 1;

const GENERIC: u8 = 0;
const GSET: u8 = 1;
const GCOUNTER: u8 = 2;

/// A term with its [`wire`] key: the primary part is the map key, the exact
/// part (one byte per number) is kept here.
#[derive(Debug, Clone)]
pub struct Elem {
    term: OwnedTerm,
    exact: Box<[u8]>,
}

type Key = Box<[u8]>;

/// Split a term's key into the primary part and the rest.
fn keyed(t: &OwnedTerm) -> Option<(Key, Elem)> {
    let mut v = Vec::new();
    wire::encode(t, &mut v).ok()?;
    let p = wire::primary_len(&v).ok()?;
    let exact = v[p..].into();
    v.truncate(p);
    Some((
        v.into_boxed_slice(),
        Elem {
            term: t.clone(),
            exact,
        },
    ))
}

/// A CRDT state held between calls. See the module documentation.
#[derive(Debug, Clone)]
pub enum Replica {
    /// A `state_gset`, element key to element.
    GSet(BTreeMap<Key, Elem>),
    /// A `state_gcounter`, actor key to actor and count.
    GCounter(BTreeMap<Key, (Elem, i64)>),
    /// Any other state, decoded by the core.
    Generic(Crdt<OwnedTerm>),
}

/// Which side's term survives when two `==` entries meet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum First {
    Resident,
    Incoming,
}

impl Replica {
    /// Hold a decoded state.
    pub fn from_crdt(c: Crdt<OwnedTerm>) -> Self {
        match &c {
            Crdt::GSet(g) => {
                let m: Option<BTreeMap<_, _>> = g.elems.iter().map(keyed).collect();
                m.map_or(Replica::Generic(c), Replica::GSet)
            }
            Crdt::GCounter(g) => {
                let m: Option<BTreeMap<_, _>> = g
                    .entries
                    .iter()
                    .map(|(a, n)| keyed(a).map(|(k, e)| (k, (e, *n))))
                    .collect();
                m.map_or(Replica::Generic(c), Replica::GCounter)
            }
            _ => Replica::Generic(c),
        }
    }

    /// Decode and hold a state term.
    pub fn from_term(t: &OwnedTerm) -> Result<Self> {
        let c = Crdt::decode(t, &mut Decoder::new(Limits::dirty()))?;
        Ok(Self::from_crdt(c))
    }

    /// The bottom state of a type.
    pub fn new(ty: &OwnedTerm) -> Result<Self> {
        Ok(Self::from_crdt(Crdt::bottom(ty)?))
    }

    /// The type atom.
    pub fn tag(&self) -> Atom {
        match self {
            Replica::GSet(_) => Atom::StateGset,
            Replica::GCounter(_) => Atom::StateGcounter,
            Replica::Generic(c) => c.tag(),
        }
    }

    /// Whether the state is held in a keyed map (merges cost
    /// `O(m log n)`) rather than as a core state.
    pub fn is_keyed(&self) -> bool {
        !matches!(self, Replica::Generic(_))
    }

    /// The state as the core's decoded representation (copies handles, `O(n)`).
    pub fn to_crdt(&self) -> Crdt<OwnedTerm> {
        match self {
            Replica::GSet(m) => Crdt::GSet(GSet {
                elems: m.values().map(|e| e.term.clone()).collect(),
            }),
            Replica::GCounter(m) => Crdt::GCounter(GCounter {
                entries: m.values().map(|(e, n)| (e.term.clone(), *n)).collect(),
            }),
            Replica::Generic(c) => c.clone(),
        }
    }

    /// The state term, exactly as types holds it.
    pub fn to_term(&self) -> OwnedTerm {
        self.to_crdt().encode(&OwnedBuilder)
    }

    /// Entries held: elements of a gset, actors of a gcounter; for other
    /// types the length of the first list in the payload, looking into
    /// tuples up to two levels (`{DotMap, Context}`, `{CType, Entries}`),
    /// or 1 when there is none (registers, flags).
    pub fn size(&self) -> usize {
        match self {
            Replica::GSet(m) => m.len(),
            Replica::GCounter(m) => m.len(),
            Replica::Generic(c) => {
                // The first list in the payload, looking one or two tuple
                // levels down: `{DotMap, CC}`, `{CType, Entries}`, ...
                fn count(t: &OwnedTerm, depth: usize) -> Option<usize> {
                    match t {
                        OwnedTerm::Nil => Some(0),
                        OwnedTerm::List(_) => t.list_parts().map(|(es, _)| es.len()),
                        OwnedTerm::Tuple(es) if depth < 2 => {
                            es.iter().find_map(|e| count(e, depth + 1))
                        }
                        _ => None,
                    }
                }
                let t = c.encode(&OwnedBuilder);
                t.tuple_elem(1).and_then(|p| count(&p, 0)).unwrap_or(1)
            }
        }
    }

    /// Fall back to the core representation (for terms with no key).
    fn generalise(&mut self) {
        if self.is_keyed() {
            *self = Replica::Generic(self.to_crdt());
        }
    }

    /// `merge(Self, Incoming)`, in place.
    pub fn merge(&mut self, incoming: &Replica) -> Result<()> {
        self.merge_as(incoming, First::Resident)
    }

    /// `merge(Self, Incoming)` of a decoded state, in place.
    pub fn merge_crdt(&mut self, incoming: Crdt<OwnedTerm>) -> Result<()> {
        self.merge(&Replica::from_crdt(incoming))
    }

    fn merge_as(&mut self, incoming: &Replica, first: First) -> Result<()> {
        if self.tag() != incoming.tag() {
            return Err(BadCrdt::TypeMismatch(self.tag(), incoming.tag()));
        }
        match (&mut *self, incoming) {
            (Replica::GSet(m), Replica::GSet(inc)) => {
                union(m, inc, first);
                Ok(())
            }
            (Replica::GCounter(m), Replica::GCounter(inc)) => {
                for (k, (e, n)) in inc {
                    match m.get_mut(k) {
                        Some((old, v)) => {
                            if first == First::Incoming {
                                *old = e.clone();
                            }
                            *v = (*v).max(*n);
                        }
                        None => {
                            m.insert(k.clone(), (e.clone(), *n));
                        }
                    }
                }
                Ok(())
            }
            _ => {
                self.generalise();
                let Replica::Generic(c) = &*self else {
                    return Err(BadCrdt::NotACrdt);
                };
                let other = incoming.to_crdt();
                let merged = match first {
                    First::Resident => c.merge(&other)?.into_state(c, &other),
                    First::Incoming => other.merge(c)?.into_state(&other, c),
                };
                *self = Replica::from_crdt(merged);
                Ok(())
            }
        }
    }

    /// types' `mutate(Op, Actor, State)`, in place; returns the delta of
    /// `delta_mutate(Op, Actor, State)`.
    ///
    /// For gsets and gcounters the delta is computed by the core over the
    /// state restricted to the operation's element or actor (all a
    /// `delta_mutate` of these types reads), so a mutation costs
    /// `O(log n)`.
    pub fn mutate<C: MutateCx<OwnedTerm>>(
        &mut self,
        op: &OwnedTerm,
        actor: &OwnedTerm,
        cx: &mut C,
    ) -> std::result::Result<Crdt<OwnedTerm>, MutateError<OwnedTerm>> {
        let projected = match &*self {
            Replica::GSet(m) => {
                let elem = op
                    .as_pair()
                    .filter(|(n, _)| n.is_atom(Atom::Add))
                    .map(|(_, e)| e);
                match elem.map(|e| keyed(&e)) {
                    Some(None) => None,
                    Some(Some((k, _))) => Some(Crdt::GSet(GSet {
                        elems: m.get(&k).map(|e| e.term.clone()).into_iter().collect(),
                    })),
                    None => Some(Crdt::GSet(GSet { elems: Vec::new() })),
                }
            }
            Replica::GCounter(m) => keyed(actor).map(|(k, _)| {
                Crdt::GCounter(GCounter {
                    entries: m
                        .get(&k)
                        .map(|(e, n)| (e.term.clone(), *n))
                        .into_iter()
                        .collect(),
                })
            }),
            Replica::Generic(_) => None,
        };
        let delta = match projected {
            Some(p) => p.delta_mutate(op, actor, cx)?,
            None => {
                self.generalise();
                match &*self {
                    Replica::Generic(c) => c.delta_mutate(op, actor, cx)?,
                    _ => return Err(BadCrdt::NotACrdt.into()),
                }
            }
        };
        self.merge_as(&Replica::from_crdt(delta.clone()), First::Incoming)?;
        Ok(delta)
    }

    /// The binary of this state (see the module documentation).
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 16 * self.size());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        match self {
            Replica::GSet(m) => {
                out.push(GSET);
                out.extend_from_slice(&(m.len() as u32).to_be_bytes());
                for (k, e) in m {
                    out.extend_from_slice(k);
                    out.extend_from_slice(&e.exact);
                }
            }
            Replica::GCounter(m) => {
                out.push(GCOUNTER);
                out.extend_from_slice(&(m.len() as u32).to_be_bytes());
                for (k, (e, n)) in m {
                    out.extend_from_slice(k);
                    out.extend_from_slice(&e.exact);
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
            Replica::Generic(c) => {
                out.push(GENERIC);
                let t = c.encode(&OwnedBuilder);
                out.extend_from_slice(&etf::encode(&t)[1..]);
            }
        }
        out
    }

    /// Read a binary written by [`Replica::to_binary`], validating it.
    pub fn from_binary(bytes: &[u8]) -> Result<Self> {
        let bad = |why| BadCrdt::BadBinary(why);
        if bytes.len() < 5 {
            return Err(bad(if MAGIC.starts_with(bytes) {
                Atom::Truncated
            } else {
                Atom::BadMagic
            }));
        }
        if &bytes[..3] != MAGIC {
            return Err(bad(Atom::BadMagic));
        }
        if bytes[3] != VERSION {
            return Err(bad(Atom::BadVersion));
        }
        let body = &bytes[5..];
        match bytes[4] {
            GSET => {
                let mut m = BTreeMap::new();
                read_entries(body, 0, |k, e, _| {
                    m.insert(k, e);
                })?;
                Ok(Replica::GSet(m))
            }
            GCOUNTER => {
                let mut m = BTreeMap::new();
                read_entries(body, 8, |k, e, tail| {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(tail);
                    m.insert(k, (e, i64::from_be_bytes(n)));
                })?;
                Ok(Replica::GCounter(m))
            }
            GENERIC => {
                let mut etf_bytes = Vec::with_capacity(body.len() + 1);
                etf_bytes.push(131);
                etf_bytes.extend_from_slice(body);
                let t = etf::decode(&etf_bytes).map_err(|_| bad(Atom::Malformed))?;
                Self::from_term(&t)
            }
            _ => Err(bad(Atom::Malformed)),
        }
    }

    /// Whether every atom in the state satisfies `known` (the NIF refuses
    /// binaries naming atoms the VM does not have, as `binary_to_term(B,
    /// [safe])` does).
    pub fn atoms_known(&self, known: &dyn Fn(&str) -> bool) -> bool {
        fn walk(t: &OwnedTerm, known: &dyn Fn(&str) -> bool) -> bool {
            match t {
                OwnedTerm::Atom(a) => known(a),
                OwnedTerm::Tuple(es) => es.iter().all(|e| walk(e, known)),
                OwnedTerm::Map(ps) => ps.iter().all(|(k, v)| walk(k, known) && walk(v, known)),
                OwnedTerm::List(_) => t
                    .list_parts()
                    .is_some_and(|(es, tl)| es.iter().all(|e| walk(e, known)) && walk(tl, known)),
                _ => true,
            }
        }
        match self {
            Replica::GSet(m) => m.values().all(|e| walk(&e.term, known)),
            Replica::GCounter(m) => m.values().all(|(e, _)| walk(&e.term, known)),
            Replica::Generic(c) => walk(&c.encode(&OwnedBuilder), known),
        }
    }
}

/// `ordsets:union(X, Y)` into `m`, where the resident set is `X` when
/// `first` is `Resident` (else `Y`). On `==` elements the union keeps the
/// "current first" list's term, and the current first is whichever side
/// last emitted an element the other lacks (initially `X`).
fn union(m: &mut BTreeMap<Key, Elem>, inc: &BTreeMap<Key, Elem>, first: First) {
    let mut cur = first;
    let mut prev: Option<&Key> = None;
    for (k, e) in inc {
        let lo = prev.map_or(Unbounded, |p| Excluded(&p[..]));
        if m.range::<[u8], _>((lo, Excluded(&k[..]))).next().is_some() {
            cur = First::Resident;
        }
        match m.get_mut(k) {
            Some(old) => {
                if cur == First::Incoming {
                    *old = e.clone();
                }
            }
            None => {
                m.insert(k.clone(), e.clone());
                cur = First::Incoming;
            }
        }
        prev = Some(k);
    }
}

/// Walk `count` entries of `key ++ tail_len bytes`, strictly ascending.
fn read_entries(body: &[u8], tail_len: usize, mut put: impl FnMut(Key, Elem, &[u8])) -> Result<()> {
    let bad = |why| BadCrdt::BadBinary(why);
    let key_err = |e| {
        bad(match e {
            wire::KeyError::Truncated => Atom::Truncated,
            _ => Atom::Malformed,
        })
    };
    let n = body.get(..4).ok_or(bad(Atom::Truncated))?;
    let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize;
    let mut pos = 4;
    let mut prev: Option<(usize, usize)> = None;
    for _ in 0..n {
        let rest = body.get(pos..).ok_or(bad(Atom::Truncated))?;
        let (term, used) = wire::decode(rest).map_err(key_err)?;
        let plen = wire::primary_len(rest).map_err(key_err)?;
        if let Some((ps, pl)) = prev {
            if body[ps..ps + pl] >= rest[..plen] {
                return Err(bad(Atom::Unsorted));
            }
        }
        prev = Some((pos, plen));
        let tail = rest
            .get(used..used + tail_len)
            .ok_or(bad(Atom::Truncated))?;
        put(
            rest[..plen].into(),
            Elem {
                term,
                exact: rest[plen..used].into(),
            },
            tail,
        );
        pos += used + tail_len;
    }
    if pos != body.len() {
        return Err(bad(Atom::Malformed));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::term::Builder;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    struct Cx;
    impl MutateCx<OwnedTerm> for Cx {
        type B = OwnedBuilder;
        fn builder(&self) -> &OwnedBuilder {
            &OwnedBuilder
        }
        fn token(&mut self) -> OwnedTerm {
            OwnedBuilder.binary(&[7; 20])
        }
    }

    // Lasp-like elements, with `==`-but-not-`=:=` pairs (1 and 1.0).
    fn elem(r: &mut Rng) -> OwnedTerm {
        let n = r.below(12) as i64;
        match r.below(5) {
            0 => OwnedTerm::int(n),
            1 => OwnedTerm::float(n as f64),
            2 => OwnedTerm::bin(format!("e{n}").as_bytes()),
            3 => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::int(n)]),
            _ => OwnedTerm::tuple([OwnedTerm::atom("k"), OwnedTerm::float(n as f64)]),
        }
    }

    fn gset(r: &mut Rng) -> OwnedTerm {
        let mut es: Vec<OwnedTerm> = Vec::new();
        for _ in 0..r.below(10) {
            let e = elem(r);
            if !es.iter().any(|x| x.equal(&e)) {
                es.push(e);
            }
        }
        es.sort_by(|a, b| a.compare(b));
        OwnedBuilder.pair(OwnedTerm::atom("state_gset"), OwnedBuilder.list(&es))
    }

    fn gcounter(r: &mut Rng) -> OwnedTerm {
        let mut es: Vec<(OwnedTerm, i64)> = Vec::new();
        for _ in 0..r.below(8) {
            let a = elem(r);
            if !es.iter().any(|(x, _)| x.equal(&a)) {
                es.push((a, r.below(5) as i64));
            }
        }
        es.sort_by(|a, b| a.0.compare(&b.0));
        let b = OwnedBuilder;
        let items: Vec<_> = es
            .iter()
            .map(|(a, n)| b.pair(a.clone(), b.int(*n)))
            .collect();
        b.pair(OwnedTerm::atom("state_gcounter"), b.list(&items))
    }

    fn core_merge(a: &OwnedTerm, b: &OwnedTerm) -> OwnedTerm {
        crate::api::merge(&OwnedBuilder, a, b, Limits::dirty()).unwrap()
    }

    fn check_merges(gen: fn(&mut Rng) -> OwnedTerm, seed: u64) {
        let mut r = Rng(seed);
        for _ in 0..3000 {
            let (a, b) = (gen(&mut r), gen(&mut r));
            let mut ra = Replica::from_term(&a).unwrap();
            assert!(ra.is_keyed());
            assert!(ra.to_term().identical(&a));
            ra.merge(&Replica::from_term(&b).unwrap()).unwrap();
            let want = core_merge(&a, &b);
            assert!(
                ra.to_term().identical(&want),
                "merge({a}, {b}) = {want}, got {}",
                ra.to_term()
            );
            // Through the binary.
            let bin = Replica::from_term(&b).unwrap().to_binary();
            let back = Replica::from_binary(&bin).unwrap();
            assert!(back.to_term().identical(&b), "{b}");
            let mut rb = Replica::from_term(&a).unwrap();
            rb.merge(&back).unwrap();
            assert!(rb.to_term().identical(&want));
        }
    }

    #[test]
    fn gset_merge_matches_core_test() {
        check_merges(gset, 42);
    }

    #[test]
    fn gcounter_merge_matches_core_test() {
        check_merges(gcounter, 43);
    }

    #[test]
    fn mutate_matches_core_test() {
        let mut r = Rng(44);
        let b = OwnedBuilder;
        for _ in 0..2000 {
            let (s, op, actor) = if r.below(2) == 0 {
                (
                    gset(&mut r),
                    b.pair(OwnedTerm::atom("add"), elem(&mut r)),
                    OwnedTerm::atom("a"),
                )
            } else {
                (gcounter(&mut r), OwnedTerm::atom("increment"), elem(&mut r))
            };
            let want_delta =
                crate::api::delta_mutate(&mut Cx, &op, &actor, &s, Limits::dirty()).unwrap();
            let want = crate::api::mutate(&mut Cx, &op, &actor, &s, Limits::dirty()).unwrap();
            let mut rs = Replica::from_term(&s).unwrap();
            let d = rs.mutate(&op, &actor, &mut Cx).unwrap();
            let ok = |t: OwnedTerm| b.pair(OwnedTerm::atom("ok"), t);
            assert!(ok(d.encode(&b)).identical(&want_delta), "{op} on {s}");
            assert!(
                ok(rs.to_term()).identical(&want),
                "{op} on {s}: {want} vs {}",
                rs.to_term()
            );
        }
        let mut rs = Replica::from_term(&gset(&mut r)).unwrap();
        assert!(matches!(
            rs.mutate(
                &OwnedTerm::atom("increment"),
                &OwnedTerm::atom("a"),
                &mut Cx
            ),
            Err(MutateError::Bad(BadCrdt::UnknownOp(Atom::StateGset)))
        ));
    }

    #[test]
    fn generic_types_and_unkeyed_terms_test() {
        let b = OwnedBuilder;
        // An orset is held by the core; mutate and merge still agree.
        let mut o = Replica::new(&OwnedTerm::atom("state_orset")).unwrap();
        assert!(!o.is_keyed());
        let op = b.pair(OwnedTerm::atom("add"), OwnedTerm::int(1));
        let d = o.mutate(&op, &OwnedTerm::atom("a"), &mut Cx).unwrap();
        assert_eq!(o.size(), 1);
        let t = o.to_term();
        assert!(core_merge(&t, &d.encode(&b)).identical(&t));
        let back = Replica::from_binary(&o.to_binary()).unwrap();
        assert!(back.to_term().identical(&t));
        // A gset holding a pid falls back to the core.
        let pid = OwnedTerm::pid("n@h", 1, 2, 3);
        let s = b.pair(OwnedTerm::atom("state_gset"), b.list(&[OwnedTerm::int(1)]));
        let mut g = Replica::from_term(&s).unwrap();
        g.mutate(
            &b.pair(OwnedTerm::atom("add"), pid.clone()),
            &OwnedTerm::atom("a"),
            &mut Cx,
        )
        .unwrap();
        assert!(!g.is_keyed());
        assert_eq!(g.size(), 2);
        assert!(Replica::from_binary(&g.to_binary())
            .unwrap()
            .to_term()
            .identical(&g.to_term()));
        // Type mismatch.
        assert_eq!(
            g.merge(&o),
            Err(BadCrdt::TypeMismatch(Atom::StateGset, Atom::StateOrset))
        );
    }

    #[test]
    fn binary_fuzz_test() {
        let mut r = Rng(45);
        for i in 0..3000 {
            let t = if i % 2 == 0 {
                gset(&mut r)
            } else {
                gcounter(&mut r)
            };
            let bin = Replica::from_term(&t).unwrap().to_binary();
            for cut in 0..bin.len() {
                assert!(Replica::from_binary(&bin[..cut]).is_err());
            }
            let mut bad = bin.clone();
            let at = r.below(bin.len() as u64) as usize;
            bad[at] = r.below(256) as u8;
            if let Ok(x) = Replica::from_binary(&bad) {
                // A different valid binary: it must be canonical.
                assert_eq!(x.to_binary(), bad);
            }
            let junk: Vec<u8> = (0..r.below(40)).map(|_| r.below(256) as u8).collect();
            let _ = Replica::from_binary(&junk);
        }
        let mut bin = Replica::new(&OwnedTerm::atom("state_gset"))
            .unwrap()
            .to_binary();
        bin[3] = 2;
        assert_eq!(
            Replica::from_binary(&bin).err(),
            Some(BadCrdt::BadBinary(Atom::BadVersion))
        );
        assert_eq!(
            Replica::from_binary(b"xyz12").err(),
            Some(BadCrdt::BadBinary(Atom::BadMagic))
        );
    }
}
