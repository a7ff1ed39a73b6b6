//! Causal CRDTs: dots, causal contexts and dot stores, as lasp-lang/types
//! 0.1.8 merges them (Almeida, Shoker, Baquero: *Delta State Replicated Data
//! Types*, 2016).
//!
//! A causal payload is `{DotStore, CC}`:
//! - a *dot* is `{Actor, Seq}` with `Seq >= 1`;
//! - the causal context `CC = {Compressed, Cloud}` holds an orddict
//!   `Actor -> MaxSeq` (all of `1..MaxSeq` seen) and an ordset of further
//!   dots;
//! - a dot store is a *dot set* (ordset of dots), a *dot fun* (orddict
//!   `Dot -> Value`) or a *dot map* (orddict `Key -> DotStore`), and dot maps
//!   nest ([`Kind`]).
//!
//! The rules (`conformance/README.md`, "Causal types") are followed term for
//! term: `CCunion` with compression, the dot-set formula
//! `U(I(DA, DB), U(DA \ CCB, DB \ CCA))`, the dot-fun ivar merge and store
//! order, dot-map keys matched by `=:=` (keys `==` but not `=:=` raise
//! [`BadCrdt::NotIdentical`]), the role swap of `ordsets:union/2` and
//! `ordsets:intersection/2`, and the identity shortcut at the top only.
//!
//! # Layout
//!
//! Merging large states is the point of this crate, so the layout avoids
//! term comparisons and allocations per element:
//! - Each state interns its actors once into an [`Actors`] table sorted in
//!   term order. A dot is then two integers ([`Dot`]): the actor's index and
//!   the sequence. Actors that compare `==` share a *rank*, so dots compare
//!   as `(rank, seq)` integer pairs, and stay distinct by index, so the term
//!   kept from two `==` actors is still the one `types` keeps.
//! - A merge first unifies the two (small) actor tables, then indexes each
//!   causal context by rank: the compressed part is an array, the cloud a
//!   sorted run of sequences per rank. "Is this dot in CC" is one array read
//!   and, only past the compressed prefix, a binary search.
//! - Dot stores are columns ([`Store`]): all dot sets of a dot map share one
//!   flat `Vec<Dot>` with bounds per value, and a nested dot map keeps its
//!   keys flat too. No element owns an allocation.
//! - Dot-map keys are walked with galloping, so merging a large state with a
//!   small delta compares `O(m log n)` key terms; the dots of the untouched
//!   keys are only filtered against the other context, with integer work.
//! - A merge result that is exactly (`=:=`) one input is returned as
//!   [`Merged::Left`]/[`Merged::Right`], so nothing is encoded. Otherwise a
//!   dot-map entry identical to an input's reuses that input's `{Key, Value}`
//!   term, and the longest run of final entries that ends an input's list
//!   reuses that list's tail: merging a small delta into a large state
//!   builds only the entries before the last one it changed.

mod actors;
mod context;
mod delta;
mod merge;
mod store;
#[cfg(test)]
mod test;
// The crate's test support, still reachable as `causal::testing`.
#[cfg(test)]
pub(crate) use crate::testing;

use std::cmp::Ordering;

use crate::decode::{Decoder, Limits};
use crate::error::{BadCrdt, Result};
use crate::lattice::Merged;
use crate::term::{Atom, Builder, Cell, Term};

use actors::*;
use context::*;
use delta::*;
use merge::*;
use store::*;

pub(crate) use actors::UDot;
pub use actors::{Actors, Dot};
pub use context::Cc;
pub(crate) use context::{add_element, cc_add_dot, cc_from_dots};
pub use store::{FunCol, Kind, MapCol, SetCol, Store};

/// The elements of a list given as an operation argument: not a list is an
/// unknown operation, an improper one is refused as such.
pub(crate) fn op_list<T: Term>(list: &T, tag: Atom) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut cur = list.clone();
    loop {
        match cur.cell() {
            Cell::Nil => return Ok(out),
            Cell::Cons(h, tl) => {
                out.push(h);
                cur = tl;
            }
            Cell::NotList if out.is_empty() => return Err(BadCrdt::UnknownOp(tag)),
            Cell::NotList => return Err(BadCrdt::ImproperList(tag)),
        }
    }
}

// ---------------------------------------------------------------------------
// Causal states
// ---------------------------------------------------------------------------

/// A causal payload `{DotStore, CC}`: the shared representation of awset,
/// mvregister, ewflag, dwflag (and awmap).
#[derive(Debug, Clone)]
pub struct Causal<T> {
    actors: Actors<T>,
    /// Exactly one value.
    store: Store<T>,
    cc: Cc,
    /// The payload term this state was decoded from.
    orig: Option<T>,
    /// The store term, when `store` is identical to one decoded.
    store_orig: Option<T>,
    /// The CC term, when `cc` is identical to one decoded.
    cc_orig: Option<T>,
}

/// A state's actor table extended with one more actor (for mutations).
pub(crate) struct Extended<T> {
    actors: Actors<T>,
    map: Vec<u32>,
    uid: u32,
}

impl<T: Term> Extended<T> {
    /// The operation's actor as a resolved dot with sequence `seq`.
    pub(crate) fn dot(&self, seq: u64) -> UDot {
        UDot {
            rank: self.actors.rank[self.uid as usize],
            uid: self.uid,
            seq,
        }
    }

    /// A dot of the original state, resolved.
    pub(crate) fn resolve(&self, d: Dot) -> UDot {
        let uid = self.map[d.actor as usize];
        UDot {
            rank: self.actors.rank[uid as usize],
            uid,
            seq: d.seq,
        }
    }

    /// The extended table's ranks.
    pub(crate) fn rank(&self) -> &[u32] {
        &self.actors.rank
    }
}

impl<T: Term> Causal<T> {
    /// The bottom state `{[], {[], []}}` of a store kind.
    pub fn bottom(kind: &Kind) -> Self {
        let mut store = Store::new(kind);
        match &mut store {
            Store::Set(c) => c.bounds.push(0),
            Store::Fun(c) => c.bounds.push(0),
            Store::Map(c) => {
                c.bounds.push(0);
                c.shared.push(0);
            }
        }
        Self::from_parts(Actors::empty(), store, Cc::default())
    }

    /// Decode and validate a payload `{DotStore, CC}` whose store has the
    /// given kind. Errors name `tag`.
    pub fn decode(payload: &T, kind: &Kind, d: &mut Decoder, tag: Atom) -> Result<Self> {
        let (st, ct) = payload.as_pair().ok_or(BadCrdt::Malformed(tag))?;
        let mut it = Interner::new();
        let mut store = Store::new(kind);
        store.decode_value(&st, d, &mut it, tag)?;
        let mut cc = decode_cc(&ct, d, &mut it, tag)?;
        let (actors, remap) = it.finish();
        store.remap_check(&remap, &actors.rank, tag)?;
        cc.remap_check(&remap, &actors.rank, tag)?;
        Ok(Causal {
            actors,
            store,
            cc,
            orig: Some(payload.clone()),
            store_orig: Some(st),
            cc_orig: Some(ct),
        })
    }

    /// Encode the payload `{DotStore, CC}`, reusing input terms where the
    /// state still holds them.
    pub fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        if let Some(o) = &self.orig {
            return o.clone();
        }
        let st = match &self.store_orig {
            Some(s) => s.clone(),
            None => self.store.encode_value(0, &self.actors, b),
        };
        let cc = match &self.cc_orig {
            Some(c) => c.clone(),
            None => self.cc.encode(&self.actors, b),
        };
        b.pair(st, cc)
    }

    /// The store column (one value, index 0).
    pub fn store(&self) -> &Store<T> {
        &self.store
    }

    /// The causal context.
    pub fn cc(&self) -> &Cc {
        &self.cc
    }

    /// The actor table.
    pub fn actors(&self) -> &Actors<T> {
        &self.actors
    }

    /// `Payload =:= Other`.
    pub fn identical(&self, other: &Self) -> bool {
        if let (Some(a), Some(b)) = (&self.orig, &other.orig) {
            return a.identical(b);
        }
        let u = unify(&self.actors, &other.actors);
        cc_cmp(&self.cc, &other.cc, &u, true)
            && store_cmp(&self.store, 0, &other.store, 0, &u, true)
    }

    /// `Payload == Other`: types' `equal/2` for causal types.
    pub fn equal(&self, other: &Self) -> bool {
        let u = unify(&self.actors, &other.actors);
        cc_cmp(&self.cc, &other.cc, &u, false)
            && store_cmp(&self.store, 0, &other.store, 0, &u, false)
    }

    /// `State == new()`.
    pub fn is_bottom(&self) -> bool {
        self.store.value_len(0) == 0 && self.cc.is_empty()
    }

    /// `state_causal_type:merge/3`, term for term.
    pub fn merge(&self, other: &Self, tag: Atom) -> Result<Merged<Self>> {
        if self.identical(other) {
            return Ok(Merged::Left);
        }
        let u = unify(&self.actors, &other.actors);
        let nr = u.actors.nranks();
        let (cc, cc_a, cc_b) = cc_union(&self.cc, &other.cc, &u);
        let ia = CcIndex::new(&self.cc, |a| u.rank_of_a(a), nr);
        let ib = CcIndex::new(&other.cc, |a| u.rank_of_b(a), nr);
        let mut out = Store::new(&self.store.kind());
        out.reserve_for(&self.store, &other.store);
        let mut cx = MergeCx {
            u: &u,
            cc_a: &ia,
            cc_b: &ib,
            tag,
            scratch: Scratch::default(),
        };
        let (st_a, st_b) = cx.value(Some((&self.store, 0)), Some((&other.store, 0)), &mut out)?;
        if st_a && cc_a {
            return Ok(Merged::Left);
        }
        if st_b && cc_b {
            return Ok(Merged::Right);
        }
        let pick = |a: bool, b: bool, x: &Option<T>, y: &Option<T>| {
            if a {
                x.clone()
            } else if b {
                y.clone()
            } else {
                None
            }
        };
        Ok(Merged::New(Causal {
            actors: u.actors,
            store: out,
            cc,
            orig: None,
            store_orig: pick(st_a, st_b, &self.store_orig, &other.store_orig),
            cc_orig: pick(cc_a, cc_b, &self.cc_orig, &other.cc_orig),
        }))
    }

    /// Generic inflation: `equal(merge(A, B), B)`.
    pub fn is_inflation(&self, other: &Self, tag: Atom) -> Result<bool> {
        Ok(match self.merge(other, tag)? {
            Merged::Left => self.equal(other),
            Merged::Right => true,
            Merged::New(m) => m.equal(other),
        })
    }

    /// The join of the join-irreducible parts of `self` that strictly
    /// inflate `other`: each `(key path, dot)` of the store that `other`
    /// has not seen, plus the context dots `other` lacks or still holds
    /// although `self` removed them. `merge(delta(A, B), B)` equals
    /// `merge(A, B)`.
    pub fn delta(&self, other: &Self, tag: Atom) -> Result<Self> {
        if self.identical(other) {
            // merge(A, A) is A itself, uncompressed.
            return Ok(self.clone());
        }
        let u = unify(&self.actors, &other.actors);
        let nr = u.actors.nranks();
        let ia = CcIndex::new(&self.cc, |a| u.rank_of_a(a), nr);
        let ib = CcIndex::new(&other.cc, |a| u.rank_of_b(a), nr);
        let dcx = DeltaCx {
            u: &u,
            cc_a: &ia,
            cc_b: &ib,
            tag,
        };
        // The context: (CCA \ CCB) as intervals per rank, plus the dots B
        // holds that A has removed.
        let mut iv: Vec<(u32, u64, u64)> = Vec::new();
        for &(a, ca) in &self.cc.compressed {
            let r = u.rank_of_a(a);
            let mut lo = ib.comp[r as usize] + 1;
            if lo > ca {
                continue;
            }
            for &s in ib.cloud(r) {
                if s < lo {
                    continue;
                }
                if s > ca {
                    break;
                }
                if s > lo {
                    iv.push((r, lo, s - 1));
                }
                lo = s + 1;
            }
            if lo <= ca {
                iv.push((r, lo, ca));
            }
        }
        for &d in &self.cc.cloud {
            let x = u.ua(d);
            if !ib.contains(x.rank, x.seq) {
                iv.push((x.rank, x.seq, x.seq));
            }
        }
        let mut removed = Vec::new();
        dcx.removed_in_a(
            Some((&self.store, 0)),
            Some((&other.store, 0)),
            &mut removed,
        );
        iv.extend(removed.iter().map(|x| (x.rank, x.seq, x.seq)));
        let cc = canonical_cc(iv, &u.actors)?;
        let id = CcIndex::new(&cc, |a| u.actors.rank[a as usize], nr);
        let mut out = Store::new(&self.store.kind());
        dcx.filter((&self.store, 0), Some((&other.store, 0)), &id, &mut out)?;
        Ok(Self::from_parts(u.actors, out, cc))
    }

    // --- building blocks for mutations ------------------------------------

    /// The state's actor table with `actor` added.
    pub(crate) fn extend(&self, actor: &T) -> Extended<T> {
        let one = Actors {
            terms: vec![actor.clone()],
            rank: vec![0],
        };
        let u = unify(&self.actors, &one);
        Extended {
            uid: u.map_b[0],
            map: u.map_a,
            actors: u.actors,
        }
    }

    /// `causal_context:next_dot/2`: one past the actor's compressed entry
    /// (found by `==`); the cloud is not consulted.
    pub(crate) fn next_seq(&self, ext: &Extended<T>) -> Result<u64> {
        let r = ext.actors.rank[ext.uid as usize];
        let cur = self
            .cc
            .compressed
            .iter()
            .find(|(a, _)| ext.actors.rank[ext.map[*a as usize] as usize] == r)
            .map_or(0, |e| e.1);
        if cur >= MAX_SEQ {
            return Err(BadCrdt::TooLarge);
        }
        Ok(cur + 1)
    }

    /// The dots of the top-level dot set (or dot-fun keys), resolved.
    pub(crate) fn top_dots(&self, ext: &Extended<T>) -> Vec<UDot> {
        let ds: &[Dot] = match &self.store {
            Store::Set(c) => c.value(0),
            Store::Fun(c) => c.value(0).0,
            Store::Map(_) => &[],
        };
        ds.iter().map(|&d| ext.resolve(d)).collect()
    }

    /// The dots of `key` (found by `==`) in a top-level map of dot sets.
    pub(crate) fn key_dots(&self, key: &T, ext: &Extended<T>) -> Vec<UDot> {
        let Store::Map(m) = &self.store else {
            return Vec::new();
        };
        let keys = m.keys_of(0);
        let Ok(k) = keys.binary_search_by(|x| x.compare(key)) else {
            return Vec::new();
        };
        match &*m.inner {
            Store::Set(c) => c
                .value(m.bounds[0] + k)
                .iter()
                .map(|&d| ext.resolve(d))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The state with its top-level dot map restricted to the entries whose
    /// keys are `==` to one of `keys`; same actors and context. Every
    /// per-key merge depends only on that key's values and the contexts, so
    /// folding operations on these keys over it reads what it would read
    /// over the whole state.
    pub(crate) fn project_keys(&self, keys: &[T]) -> Self {
        let Store::Map(m) = &self.store else {
            return self.clone();
        };
        let own = m.keys_of(0);
        let mut picked: Vec<usize> = keys
            .iter()
            .filter_map(|k| own.binary_search_by(|x| x.compare(k)).ok())
            .collect();
        picked.sort_unstable();
        picked.dedup();
        let mut store = Store::new(&self.store.kind());
        if let Store::Map(o) = &mut store {
            for k in picked {
                let e = m.bounds[0] + k;
                o.keys.push(m.keys[e].clone());
                o.cells.push(m.cells[e].clone());
                o.inner.copy_value(&m.inner, e);
            }
            o.bounds.push(o.keys.len());
            o.shared.push(o.keys.len());
        }
        let mut out = Self::from_parts(self.actors.clone(), store, self.cc.clone());
        out.cc_orig = self.cc_orig.clone();
        out
    }

    /// The top-level dot-map keys, in order.
    pub(crate) fn top_keys(&self) -> &[T] {
        match &self.store {
            Store::Map(m) => m.keys_of(0),
            _ => &[],
        }
    }

    /// The values of a top-level dot fun, in dot order.
    pub(crate) fn fun_values(&self) -> &[T] {
        match &self.store {
            Store::Fun(c) => c.value(0).1,
            _ => &[],
        }
    }

    /// For a top-level dot set: the delta of a fresh dot of `actor`, whose
    /// context is `from_dot_set(U(Dots, [Next]))` (ewflag `enable`, dwflag
    /// `disable`).
    pub(crate) fn set_add_dot(&self, actor: &T) -> Result<Self> {
        let ext = self.extend(actor);
        let next = ext.dot(self.next_seq(&ext)?);
        let mut dots = self.top_dots(&ext);
        // `U(Dots, [Next])` keeps an existing `==` dot, as add_element does.
        add_element(&mut dots, next);
        let cc = cc_from_dots(&dots, ext.rank());
        Ok(Self::new_set(ext, &[next], cc))
    }

    /// For a top-level dot set: the delta with no dot whose context is
    /// `from_dot_set(Dots)` (ewflag `disable`, dwflag `enable`).
    pub(crate) fn set_cover(&self, actor: &T) -> Self {
        let ext = self.extend(actor);
        let cc = cc_from_dots(&self.top_dots(&ext), ext.rank());
        Self::new_set(ext, &[], cc)
    }

    /// A state over an extended table: a top-level dot set.
    pub(crate) fn new_set(ext: Extended<T>, dots: &[UDot], cc: Cc) -> Self {
        let mut store = Store::new(&Kind::Set);
        if let Store::Set(c) = &mut store {
            c.dots.extend(dots.iter().map(UDot::dot));
            c.bounds.push(c.dots.len());
        }
        Self::from_parts(ext.actors, store, cc)
    }

    /// A state over an extended table: a top-level dot fun.
    pub(crate) fn new_fun(ext: Extended<T>, entries: Vec<(UDot, T)>, cc: Cc) -> Self {
        let mut store = Store::new(&Kind::Fun);
        if let Store::Fun(c) = &mut store {
            for (d, v) in entries {
                c.dots.push(d.dot());
                c.vals.push(v);
            }
            c.bounds.push(c.dots.len());
        }
        Self::from_parts(ext.actors, store, cc)
    }

    /// A state over an extended table: a top-level map of dot sets.
    pub(crate) fn new_map_of_sets(ext: Extended<T>, entries: Vec<(T, Vec<UDot>)>, cc: Cc) -> Self {
        let mut store = Store::new(&Kind::Map(Box::new(Kind::Set)));
        if let Store::Map(m) = &mut store {
            if let Store::Set(c) = &mut *m.inner {
                for (k, dots) in entries {
                    m.keys.push(k);
                    m.cells.push(None);
                    c.dots.extend(dots.iter().map(UDot::dot));
                    c.bounds.push(c.dots.len());
                }
            }
            m.bounds.push(m.keys.len());
            m.shared.push(m.keys.len());
        }
        Self::from_parts(ext.actors, store, cc)
    }

    fn from_parts(actors: Actors<T>, store: Store<T>, cc: Cc) -> Self {
        Causal {
            actors,
            store,
            cc,
            orig: None,
            store_orig: None,
            cc_orig: None,
        }
    }
}

/// A context from sorted-or-not intervals `(rank, lo, hi)` of dots: the
/// run starting at 1 becomes the compressed entry, the rest the cloud.
fn canonical_cc<T: Term>(mut iv: Vec<(u32, u64, u64)>, actors: &Actors<T>) -> Result<Cc> {
    iv.sort_unstable();
    let rep = actors.representatives();
    let mut cc = Cc::default();
    let mut budget = Limits::MAX_CELLS;
    let mut k = 0;
    while k < iv.len() {
        let r = iv[k].0;
        // Merge the intervals of this rank.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        while k < iv.len() && iv[k].0 == r {
            let (_, lo, hi) = iv[k];
            match runs.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => runs.push((lo, hi)),
            }
            k += 1;
        }
        let actor = rep[r as usize];
        let mut rest = &runs[..];
        if let Some(&(1, hi)) = runs.first() {
            cc.compressed.push((actor, hi));
            rest = &runs[1..];
        }
        for &(lo, hi) in rest {
            let n = usize::try_from(hi - lo + 1).unwrap_or(usize::MAX);
            if n > budget {
                return Err(BadCrdt::TooLarge);
            }
            budget -= n;
            cc.cloud.extend((lo..=hi).map(|seq| Dot { actor, seq }));
        }
    }
    Ok(cc)
}
