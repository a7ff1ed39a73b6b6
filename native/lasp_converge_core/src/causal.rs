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

use std::cmp::Ordering;

use crate::decode::{Decoder, Limits};
use crate::error::{BadCrdt, Result};
use crate::lattice::Merged;
use crate::term::{Atom, Builder, Cell, Term};

/// A dot `{Actor, Seq}`: `actor` indexes the state's [`Actors`] table.
///
/// `seq` is at least 1 and at most `i64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dot {
    /// Index into the actor table.
    pub actor: u32,
    /// The sequence number.
    pub seq: u64,
}

/// A dot resolved against a unified actor table: compared by `(rank, seq)`
/// (Erlang `==`), identical when `(uid, seq)` match (`=:=`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct UDot {
    rank: u32,
    uid: u32,
    seq: u64,
}

impl UDot {
    #[inline]
    fn cmp(&self, o: &UDot) -> Ordering {
        self.rank.cmp(&o.rank).then(self.seq.cmp(&o.seq))
    }
    #[inline]
    fn same(&self, o: &UDot) -> bool {
        self.uid == o.uid && self.seq == o.seq
    }
    #[inline]
    fn dot(&self) -> Dot {
        Dot {
            actor: self.uid,
            seq: self.seq,
        }
    }
}

/// Largest sequence number: sequences are encoded as `i64`.
const MAX_SEQ: u64 = i64::MAX as u64;

/// No provenance.
const NONE: usize = usize::MAX;

/// Keys one side must win in a row before the dot-map walk gallops.
const GALLOP: usize = 7;

// ---------------------------------------------------------------------------
// Actors
// ---------------------------------------------------------------------------

/// The distinct (`=:=`) actor terms of a state, sorted in term order.
///
/// `rank[i]` numbers the `==` classes in order: two actors share a rank
/// exactly when they compare equal (e.g. `1` and `1.0`).
#[derive(Debug, Clone)]
pub struct Actors<T> {
    terms: Vec<T>,
    rank: Vec<u32>,
}

impl<T: Term> Actors<T> {
    fn empty() -> Self {
        Actors {
            terms: Vec::new(),
            rank: Vec::new(),
        }
    }

    /// Number of distinct actor terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The actor term at `index`.
    pub fn term(&self, index: u32) -> &T {
        &self.terms[index as usize]
    }

    fn nranks(&self) -> usize {
        self.rank.last().map_or(0, |r| *r as usize + 1)
    }

    fn group_end(&self, i: usize) -> usize {
        let mut e = i;
        while e < self.rank.len() && self.rank[e] == self.rank[i] {
            e += 1;
        }
        e
    }

    /// The first index of each rank.
    fn representatives(&self) -> Vec<u32> {
        let mut rep = Vec::with_capacity(self.nranks());
        for (i, r) in self.rank.iter().enumerate() {
            if *r as usize == rep.len() {
                rep.push(i as u32);
            }
        }
        rep
    }
}

/// How many recently seen actors the interner checks with `identical`
/// before searching by term order: replicas use few actors, and checking
/// an identical term (often the very same term) is cheaper than comparing.
const RECENT: usize = 8;

/// Interns actor terms while decoding: stable indices in arrival order and
/// an index sorted by term order.
struct Interner<T> {
    terms: Vec<T>,
    sorted: Vec<u32>,
    /// Most recently used first.
    recent: [u32; RECENT],
    nrecent: usize,
}

impl<T: Term> Interner<T> {
    fn new() -> Self {
        Interner {
            terms: Vec::new(),
            sorted: Vec::new(),
            recent: [0; RECENT],
            nrecent: 0,
        }
    }

    /// The index of `t`, adding it if no identical term is known.
    fn intern(&mut self, t: &T) -> Result<u32> {
        for k in 0..self.nrecent {
            let id = self.recent[k];
            if self.terms[id as usize].identical(t) {
                self.recent.copy_within(0..k, 1);
                self.recent[0] = id;
                return Ok(id);
            }
        }
        let id = self.lookup_or_insert(t)?;
        let n = self.nrecent.min(RECENT - 1);
        self.recent.copy_within(0..n, 1);
        self.recent[0] = id;
        self.nrecent = n + 1;
        Ok(id)
    }

    fn lookup_or_insert(&mut self, t: &T) -> Result<u32> {
        let terms = &self.terms;
        let at = match self
            .sorted
            .binary_search_by(|&id| terms[id as usize].compare(t))
        {
            Ok(pos) => {
                if terms[self.sorted[pos] as usize].identical(t) {
                    return Ok(self.sorted[pos]);
                }
                // Rare: a term `==` to `t` but not `=:=`. Scan the class.
                let mut lo = pos;
                while lo > 0 && terms[self.sorted[lo - 1] as usize].compare(t) == Ordering::Equal {
                    lo -= 1;
                }
                let mut hi = pos + 1;
                while hi < self.sorted.len()
                    && terms[self.sorted[hi] as usize].compare(t) == Ordering::Equal
                {
                    hi += 1;
                }
                if let Some(k) = (lo..hi).find(|&k| terms[self.sorted[k] as usize].identical(t)) {
                    return Ok(self.sorted[k]);
                }
                hi
            }
            Err(pos) => pos,
        };
        let id = u32::try_from(self.terms.len()).map_err(|_| BadCrdt::TooLarge)?;
        self.terms.push(t.clone());
        self.sorted.insert(at, id);
        Ok(id)
    }

    /// The sorted table and, per arrival index, its index in that table.
    fn finish(self) -> (Actors<T>, Vec<u32>) {
        let mut remap = vec![0u32; self.terms.len()];
        let mut terms = Vec::with_capacity(self.terms.len());
        let mut rank = Vec::with_capacity(self.terms.len());
        let mut r = 0u32;
        for (pos, &id) in self.sorted.iter().enumerate() {
            let t = &self.terms[id as usize];
            if pos > 0 {
                let prev: &T = &terms[pos - 1];
                if prev.compare(t) != Ordering::Equal {
                    r += 1;
                }
            }
            remap[id as usize] = pos as u32;
            terms.push(t.clone());
            rank.push(r);
        }
        (Actors { terms, rank }, remap)
    }
}

/// Two actor tables merged into one, and where each side's actors went.
struct Unified<T> {
    actors: Actors<T>,
    map_a: Vec<u32>,
    map_b: Vec<u32>,
}

impl<T: Term> Unified<T> {
    #[inline]
    fn ua(&self, d: Dot) -> UDot {
        let uid = self.map_a[d.actor as usize];
        UDot {
            rank: self.actors.rank[uid as usize],
            uid,
            seq: d.seq,
        }
    }
    #[inline]
    fn ub(&self, d: Dot) -> UDot {
        let uid = self.map_b[d.actor as usize];
        UDot {
            rank: self.actors.rank[uid as usize],
            uid,
            seq: d.seq,
        }
    }
    fn rank_of_a(&self, actor: u32) -> u32 {
        self.actors.rank[self.map_a[actor as usize] as usize]
    }
    fn rank_of_b(&self, actor: u32) -> u32 {
        self.actors.rank[self.map_b[actor as usize] as usize]
    }
}

/// Merge two sorted actor tables: `O(len)` term comparisons.
fn unify<T: Term>(a: &Actors<T>, b: &Actors<T>) -> Unified<T> {
    let mut terms = Vec::with_capacity(a.len().max(b.len()));
    let mut rank = Vec::with_capacity(a.len().max(b.len()));
    let mut map_a = vec![0u32; a.len()];
    let mut map_b = vec![0u32; b.len()];
    let (mut i, mut j) = (0, 0);
    let mut r = 0u32;
    while i < a.len() || j < b.len() {
        let ord = if i == a.len() {
            Ordering::Greater
        } else if j == b.len() {
            Ordering::Less
        } else {
            a.terms[i].compare(&b.terms[j])
        };
        match ord {
            Ordering::Less => {
                let ie = a.group_end(i);
                for (k, m) in map_a.iter_mut().enumerate().take(ie).skip(i) {
                    *m = terms.len() as u32;
                    terms.push(a.terms[k].clone());
                    rank.push(r);
                }
                i = ie;
            }
            Ordering::Greater => {
                let je = b.group_end(j);
                for (k, m) in map_b.iter_mut().enumerate().take(je).skip(j) {
                    *m = terms.len() as u32;
                    terms.push(b.terms[k].clone());
                    rank.push(r);
                }
                j = je;
            }
            Ordering::Equal => {
                let (ie, je) = (a.group_end(i), b.group_end(j));
                let start = terms.len();
                for (k, m) in map_a.iter_mut().enumerate().take(ie).skip(i) {
                    *m = terms.len() as u32;
                    terms.push(a.terms[k].clone());
                    rank.push(r);
                }
                for (k, m) in map_b.iter_mut().enumerate().take(je).skip(j) {
                    let bt = &b.terms[k];
                    match (start..terms.len()).find(|&x| terms[x].identical(bt)) {
                        Some(x) => *m = x as u32,
                        None => {
                            *m = terms.len() as u32;
                            terms.push(bt.clone());
                            rank.push(r);
                        }
                    }
                }
                i = ie;
                j = je;
            }
        }
        r += 1;
    }
    Unified {
        actors: Actors { terms, rank },
        map_a,
        map_b,
    }
}

// ---------------------------------------------------------------------------
// Causal context
// ---------------------------------------------------------------------------

/// A causal context `{Compressed, Cloud}` over an actor table.
#[derive(Debug, Clone, Default)]
pub struct Cc {
    /// `(actor, max_seq)`, strictly ascending by actor rank.
    compressed: Vec<(u32, u64)>,
    /// Dots strictly ascending by `(rank, seq)`.
    cloud: Vec<Dot>,
}

impl Cc {
    /// Whether the context is empty (`{[], []}`).
    pub fn is_empty(&self) -> bool {
        self.compressed.is_empty() && self.cloud.is_empty()
    }

    fn encode<T: Term, B: Builder<T = T>>(&self, actors: &Actors<T>, b: &B) -> T {
        let mut comp = b.nil();
        for &(a, n) in self.compressed.iter().rev() {
            comp = b.cons(b.pair(actors.term(a).clone(), seq_term(b, n)), comp);
        }
        let cloud = encode_dots(&self.cloud, actors, b);
        b.pair(comp, cloud)
    }

    fn remap_check(&mut self, remap: &[u32], rank: &[u32], tag: Atom) -> Result<()> {
        for e in &mut self.compressed {
            e.0 = remap[e.0 as usize];
        }
        for w in self.compressed.windows(2) {
            if rank[w[0].0 as usize] >= rank[w[1].0 as usize] {
                return Err(BadCrdt::Unsorted(tag));
            }
        }
        remap_check_dots(&mut self.cloud, remap, rank, tag)
    }
}

/// `ordsets`-style index of one causal context by unified rank.
struct CcIndex {
    /// Compressed maximum per rank (0 when absent).
    comp: Vec<u64>,
    /// Cloud sequences of rank `r` are `seqs[start[r]..start[r + 1]]`.
    start: Vec<usize>,
    seqs: Vec<u64>,
}

impl CcIndex {
    fn new(cc: &Cc, rank_of: impl Fn(u32) -> u32, nranks: usize) -> Self {
        let mut comp = vec![0u64; nranks];
        for &(a, n) in &cc.compressed {
            comp[rank_of(a) as usize] = n;
        }
        let mut start = vec![0usize; nranks + 1];
        for d in &cc.cloud {
            start[rank_of(d.actor) as usize + 1] += 1;
        }
        for r in 0..nranks {
            start[r + 1] += start[r];
        }
        let seqs = cc.cloud.iter().map(|d| d.seq).collect();
        CcIndex { comp, start, seqs }
    }

    #[inline]
    fn cloud(&self, rank: u32) -> &[u64] {
        let r = rank as usize;
        &self.seqs[self.start[r]..self.start[r + 1]]
    }

    /// `causal_context:is_element/2`.
    #[inline]
    fn contains(&self, rank: u32, seq: u64) -> bool {
        seq <= self.comp[rank as usize] || {
            let c = self.cloud(rank);
            !c.is_empty() && c.binary_search(&seq).is_ok()
        }
    }
}

/// `causal_context:add_dot/2` (0.1.8): extend the compressed entry when the
/// dot is next (`orddict:store`, so the key term becomes the dot's actor),
/// keep it in the cloud when it is further ahead (`ordsets:add_element`),
/// drop it otherwise. `cc` is over a table whose ranks are `rank`.
pub(crate) fn cc_add_dot(cc: &mut Cc, d: UDot, rank: &[u32]) {
    let pos = cc
        .compressed
        .binary_search_by(|&(a, _)| rank[a as usize].cmp(&d.rank));
    let cur = match pos {
        Ok(p) => cc.compressed[p].1,
        Err(_) => 0,
    };
    if d.seq == cur + 1 {
        match pos {
            Ok(p) => cc.compressed[p] = (d.uid, d.seq),
            Err(p) => cc.compressed.insert(p, (d.uid, d.seq)),
        }
    } else if d.seq > cur + 1 {
        let found = cc
            .cloud
            .binary_search_by(|x| rank[x.actor as usize].cmp(&d.rank).then(x.seq.cmp(&d.seq)));
        if let Err(p) = found {
            cc.cloud.insert(p, d.dot());
        }
    }
}

/// `causal_context:from_dot_set/1`: `add_dot` over ascending dots, from
/// the empty context.
pub(crate) fn cc_from_dots(dots: &[UDot], rank: &[u32]) -> Cc {
    let mut cc = Cc::default();
    for d in dots {
        cc_add_dot(&mut cc, *d, rank);
    }
    cc
}

/// `causal_context:union/2`: `M(max)` of the compressed parts, `U` of the
/// clouds, then compression by folding the cloud in ascending order. Also
/// says whether the result is identical to A's or B's context.
fn cc_union<T: Term>(a: &Cc, b: &Cc, u: &Unified<T>) -> (Cc, bool, bool) {
    let rank = &u.actors.rank;
    // Step 1: orddict:merge(max): on `==` actors the key comes from A and
    // `max/2` keeps A's value on a tie.
    let mut m: Vec<(u32, u64)> = Vec::with_capacity(a.compressed.len().max(b.compressed.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.compressed.len() && j < b.compressed.len() {
        let (xa, na) = a.compressed[i];
        let (xb, nb) = b.compressed[j];
        match u.rank_of_a(xa).cmp(&u.rank_of_b(xb)) {
            Ordering::Less => {
                m.push((u.map_a[xa as usize], na));
                i += 1;
            }
            Ordering::Greater => {
                m.push((u.map_b[xb as usize], nb));
                j += 1;
            }
            Ordering::Equal => {
                m.push((u.map_a[xa as usize], na.max(nb)));
                i += 1;
                j += 1;
            }
        }
    }
    m.extend(
        a.compressed[i..]
            .iter()
            .map(|&(x, n)| (u.map_a[x as usize], n)),
    );
    m.extend(
        b.compressed[j..]
            .iter()
            .map(|&(x, n)| (u.map_b[x as usize], n)),
    );
    let ca: Vec<UDot> = a.cloud.iter().map(|&d| u.ua(d)).collect();
    let cb: Vec<UDot> = b.cloud.iter().map(|&d| u.ub(d)).collect();
    let mut cloud = Vec::with_capacity(ca.len() + cb.len());
    union_into(&ca, &cb, &mut cloud);

    // Step 2: compress.
    let mut comp: Vec<(u32, u64)> = Vec::with_capacity(m.len());
    let mut rest: Vec<Dot> = Vec::new();
    let mut ci = 0;
    for d in &cloud {
        while ci < m.len() && rank[m[ci].0 as usize] < d.rank {
            comp.push(m[ci]);
            ci += 1;
        }
        if ci < m.len() && rank[m[ci].0 as usize] == d.rank {
            comp.push(m[ci]);
            ci += 1;
        }
        let last = comp.last_mut().filter(|e| rank[e.0 as usize] == d.rank);
        let cur = last.as_ref().map_or(0, |e| e.1);
        if d.seq == cur + 1 {
            match last {
                Some(e) => *e = (d.uid, d.seq),
                None => comp.push((d.uid, d.seq)),
            }
        } else if d.seq > cur + 1 {
            rest.push(d.dot());
        }
    }
    comp.extend_from_slice(&m[ci..]);
    let out = Cc {
        compressed: comp,
        cloud: rest,
    };
    let same_a = cc_same(&out, a, &u.map_a);
    let same_b = cc_same(&out, b, &u.map_b);
    (out, same_a, same_b)
}

/// Whether `out` (unified uids) is identical to `x` (mapped by `map`).
fn cc_same(out: &Cc, x: &Cc, map: &[u32]) -> bool {
    out.compressed.len() == x.compressed.len()
        && out.cloud.len() == x.cloud.len()
        && out
            .compressed
            .iter()
            .zip(&x.compressed)
            .all(|(o, e)| o.0 == map[e.0 as usize] && o.1 == e.1)
        && dots_same(&out.cloud, &x.cloud, map)
}

fn dots_same(out: &[Dot], x: &[Dot], map: &[u32]) -> bool {
    out.len() == x.len()
        && out
            .iter()
            .zip(x)
            .all(|(o, e)| o.seq == e.seq && o.actor == map[e.actor as usize])
}

// ---------------------------------------------------------------------------
// ordsets on resolved dots, with OTP's role swap
// ---------------------------------------------------------------------------

/// `ordsets:union/2`: on `>` the rest of the second list becomes the first.
fn union_into(x: &[UDot], y: &[UDot], out: &mut Vec<UDot>) {
    let (mut first, mut second) = (x, y);
    loop {
        match (first.first(), second.first()) {
            (Some(a), Some(b)) => match a.cmp(b) {
                Ordering::Less => {
                    out.push(*a);
                    first = &first[1..];
                }
                Ordering::Greater => {
                    out.push(*b);
                    let rest = &second[1..];
                    second = first;
                    first = rest;
                }
                Ordering::Equal => {
                    out.push(*a);
                    first = &first[1..];
                    second = &second[1..];
                }
            },
            (None, _) => {
                out.extend_from_slice(second);
                return;
            }
            (Some(_), None) => {
                out.extend_from_slice(first);
                return;
            }
        }
    }
}

/// `ordsets:intersection/2`, with the same role swap.
fn intersection_into(x: &[UDot], y: &[UDot], out: &mut Vec<UDot>) {
    let (mut first, mut second) = (x, y);
    while let (Some(a), Some(b)) = (first.first(), second.first()) {
        match a.cmp(b) {
            Ordering::Less => first = &first[1..],
            Ordering::Greater => {
                let rest = &second[1..];
                second = first;
                first = rest;
            }
            Ordering::Equal => {
                out.push(*a);
                first = &first[1..];
                second = &second[1..];
            }
        }
    }
}

/// `ordsets:add_element/2`: an existing `==` dot is kept.
pub(crate) fn add_element(s: &mut Vec<UDot>, d: UDot) {
    if let Err(p) = s.binary_search_by(|x| x.cmp(&d)) {
        s.insert(p, d);
    }
}

// ---------------------------------------------------------------------------
// Dot stores
// ---------------------------------------------------------------------------

/// The shape of a dot store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A dot set: an ordset of dots (ewflag, dwflag, awset values).
    Set,
    /// A dot fun: an orddict `Dot -> Value` (mvregister).
    Fun,
    /// A dot map: an orddict `Key -> DotStore` of the inner kind (awset,
    /// awmap). Its values are never empty: a merge drops empty ones.
    Map(Box<Kind>),
}

/// A column of dot-store values of one [`Kind`]. Value `i` of a column
/// spans `bounds[i]..bounds[i + 1]` of its entries.
#[derive(Debug, Clone)]
pub enum Store<T> {
    /// Dot sets.
    Set(SetCol<T>),
    /// Dot funs.
    Fun(FunCol<T>),
    /// Dot maps.
    Map(MapCol<T>),
}

/// A column of dot sets.
#[derive(Debug, Clone)]
pub struct SetCol<T> {
    dots: Vec<Dot>,
    bounds: Vec<usize>,
    _t: std::marker::PhantomData<T>,
}

/// A column of dot funs.
#[derive(Debug, Clone)]
pub struct FunCol<T> {
    dots: Vec<Dot>,
    vals: Vec<T>,
    bounds: Vec<usize>,
}

/// A column of dot maps: entry `e` (over all values) has key `keys[e]` and
/// sub-store value `e` of `inner`.
///
/// `cells[e]`, when set, is a list cell of an input whose head is identical
/// to entry `e` (`{Key, SubStore}`), so encoding reuses that term. From
/// entry `shared[i]` on, the cells of value `i` are also identical to the
/// rest of the value, so encoding stops there and reuses the input's tail.
#[derive(Debug, Clone)]
pub struct MapCol<T> {
    keys: Vec<T>,
    cells: Vec<Option<T>>,
    inner: Box<Store<T>>,
    bounds: Vec<usize>,
    shared: Vec<usize>,
}

impl<T> SetCol<T> {
    fn value(&self, i: usize) -> &[Dot] {
        &self.dots[self.bounds[i]..self.bounds[i + 1]]
    }
}

impl<T> FunCol<T> {
    fn value(&self, i: usize) -> (&[Dot], &[T]) {
        let r = self.bounds[i]..self.bounds[i + 1];
        (&self.dots[r.clone()], &self.vals[r])
    }
}

impl<T> MapCol<T> {
    fn keys_of(&self, i: usize) -> &[T] {
        &self.keys[self.bounds[i]..self.bounds[i + 1]]
    }
}

impl<T: Term> Store<T> {
    /// An empty column of the given kind.
    pub fn new(kind: &Kind) -> Self {
        match kind {
            Kind::Set => Store::Set(SetCol {
                dots: Vec::new(),
                bounds: vec![0],
                _t: std::marker::PhantomData,
            }),
            Kind::Fun => Store::Fun(FunCol {
                dots: Vec::new(),
                vals: Vec::new(),
                bounds: vec![0],
            }),
            Kind::Map(inner) => Store::Map(MapCol {
                keys: Vec::new(),
                cells: Vec::new(),
                inner: Box::new(Store::new(inner)),
                bounds: vec![0],
                shared: Vec::new(),
            }),
        }
    }

    /// The column's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Store::Set(_) => Kind::Set,
            Store::Fun(_) => Kind::Fun,
            Store::Map(m) => Kind::Map(Box::new(m.inner.kind())),
        }
    }

    fn bounds(&self) -> &[usize] {
        match self {
            Store::Set(c) => &c.bounds,
            Store::Fun(c) => &c.bounds,
            Store::Map(c) => &c.bounds,
        }
    }

    /// Number of values in the column.
    pub fn values(&self) -> usize {
        self.bounds().len() - 1
    }

    /// Number of entries (dots, or keys) of value `i`.
    pub fn value_len(&self, i: usize) -> usize {
        let b = self.bounds();
        b[i + 1] - b[i]
    }

    /// Reserve room for a merge of `a` and `b` into this (empty) column, so
    /// the output never reallocates.
    fn reserve_for(&mut self, a: &Store<T>, b: &Store<T>) {
        match (self, a, b) {
            (Store::Set(o), Store::Set(x), Store::Set(y)) => {
                o.dots.reserve(x.dots.len() + y.dots.len());
                o.bounds.reserve(x.bounds.len() + y.bounds.len());
            }
            (Store::Fun(o), Store::Fun(x), Store::Fun(y)) => {
                o.dots.reserve(x.dots.len() + y.dots.len());
                o.vals.reserve(x.dots.len() + y.dots.len());
                o.bounds.reserve(x.bounds.len() + y.bounds.len());
            }
            (Store::Map(o), Store::Map(x), Store::Map(y)) => {
                o.keys.reserve(x.keys.len() + y.keys.len());
                o.cells.reserve(x.keys.len() + y.keys.len());
                o.bounds.reserve(x.bounds.len() + y.bounds.len());
                o.shared.reserve(x.bounds.len() + y.bounds.len());
                o.inner.reserve_for(&x.inner, &y.inner);
            }
            _ => {}
        }
    }

    /// Append a copy of value `i` of `src` (same kind) to this column.
    fn copy_value(&mut self, src: &Store<T>, i: usize) {
        match (self, src) {
            (Store::Set(o), Store::Set(c)) => {
                o.dots.extend_from_slice(c.value(i));
                o.bounds.push(o.dots.len());
            }
            (Store::Fun(o), Store::Fun(c)) => {
                let (ds, vs) = c.value(i);
                o.dots.extend_from_slice(ds);
                o.vals.extend_from_slice(vs);
                o.bounds.push(o.dots.len());
            }
            (Store::Map(o), Store::Map(c)) => {
                for e in c.bounds[i]..c.bounds[i + 1] {
                    o.keys.push(c.keys[e].clone());
                    o.cells.push(c.cells[e].clone());
                    o.inner.copy_value(&c.inner, e);
                }
                o.bounds.push(o.keys.len());
                o.shared.push(o.keys.len());
            }
            _ => {}
        }
    }

    /// Remove the last value, which must be empty.
    fn pop_empty_value(&mut self) {
        match self {
            Store::Set(c) => {
                c.bounds.pop();
            }
            Store::Fun(c) => {
                c.bounds.pop();
            }
            Store::Map(c) => {
                c.bounds.pop();
                c.shared.pop();
            }
        }
    }

    /// Append one value decoded from `t`.
    fn decode_value(
        &mut self,
        t: &T,
        d: &mut Decoder,
        it: &mut Interner<T>,
        tag: Atom,
    ) -> Result<()> {
        match self {
            Store::Set(c) => {
                walk_list(t, d, tag, |_, e, _| {
                    c.dots.push(decode_dot(&e, it, tag)?);
                    Ok(())
                })?;
                c.bounds.push(c.dots.len());
            }
            Store::Fun(c) => {
                walk_list(t, d, tag, |_, e, _| {
                    let (dt, v) = e.as_pair().ok_or(BadCrdt::Malformed(tag))?;
                    c.dots.push(decode_dot(&dt, it, tag)?);
                    c.vals.push(v);
                    Ok(())
                })?;
                c.bounds.push(c.dots.len());
            }
            Store::Map(c) => {
                let start = c.keys.len();
                let (keys, cells, inner) = (&mut c.keys, &mut c.cells, &mut c.inner);
                d.nested(|d| {
                    walk_list(t, d, tag, |d, e, cell| {
                        let (k, v) = e.as_pair().ok_or(BadCrdt::Malformed(tag))?;
                        if keys.len() > start {
                            if let Some(prev) = keys.last() {
                                if prev.compare(&k) != Ordering::Less {
                                    return Err(BadCrdt::Unsorted(tag));
                                }
                            }
                        }
                        inner.decode_value(&v, d, it, tag)?;
                        if inner.value_len(inner.values() - 1) == 0 {
                            return Err(BadCrdt::Malformed(tag));
                        }
                        keys.push(k);
                        cells.push(Some(cell.clone()));
                        Ok(())
                    })
                })?;
                c.bounds.push(c.keys.len());
                c.shared.push(start);
            }
        }
        Ok(())
    }

    /// Rewrite actor indices after interning and check every dot set and dot
    /// fun is strictly ascending.
    fn remap_check(&mut self, remap: &[u32], rank: &[u32], tag: Atom) -> Result<()> {
        match self {
            Store::Set(c) => {
                for w in c.bounds.windows(2) {
                    remap_check_dots(&mut c.dots[w[0]..w[1]], remap, rank, tag)?;
                }
                Ok(())
            }
            Store::Fun(c) => {
                for w in c.bounds.windows(2) {
                    remap_check_dots(&mut c.dots[w[0]..w[1]], remap, rank, tag)?;
                }
                Ok(())
            }
            Store::Map(c) => c.inner.remap_check(remap, rank, tag),
        }
    }

    /// Encode value `i`.
    fn encode_value<B: Builder<T = T>>(&self, i: usize, actors: &Actors<T>, b: &B) -> T {
        match self {
            Store::Set(c) => encode_dots(c.value(i), actors, b),
            Store::Fun(c) => {
                let (dots, vals) = c.value(i);
                let items: Vec<T> = dots
                    .iter()
                    .zip(vals)
                    .map(|(d, v)| b.pair(dot_term(d, actors, b), v.clone()))
                    .collect();
                b.list(&items)
            }
            Store::Map(c) => {
                let (start, end, shared) = (c.bounds[i], c.bounds[i + 1], c.shared[i]);
                let items: Vec<T> = (start..shared)
                    .map(|e| match c.cells[e].as_ref().map(Term::cell) {
                        Some(Cell::Cons(entry, _)) => entry,
                        _ => b.pair(c.keys[e].clone(), c.inner.encode_value(e, actors, b)),
                    })
                    .collect();
                match c
                    .cells
                    .get(shared)
                    .filter(|_| shared < end)
                    .cloned()
                    .flatten()
                {
                    Some(tail) => b.list_with_tail(&items, tail),
                    None => b.list(&items),
                }
            }
        }
    }
}

fn remap_check_dots(dots: &mut [Dot], remap: &[u32], rank: &[u32], tag: Atom) -> Result<()> {
    for d in dots.iter_mut() {
        d.actor = remap[d.actor as usize];
    }
    for w in dots.windows(2) {
        let (x, y) = (w[0], w[1]);
        let ord = rank[x.actor as usize]
            .cmp(&rank[y.actor as usize])
            .then(x.seq.cmp(&y.seq));
        if ord != Ordering::Less {
            return Err(BadCrdt::Unsorted(tag));
        }
    }
    Ok(())
}

/// Walk a proper list, spending one cell of budget per element.
fn walk_list<T: Term>(
    t: &T,
    d: &mut Decoder,
    tag: Atom,
    mut f: impl FnMut(&mut Decoder, T, &T) -> Result<()>,
) -> Result<()> {
    let mut cur = t.clone();
    let mut first = true;
    loop {
        match cur.cell() {
            Cell::Nil => return Ok(()),
            Cell::Cons(h, tl) => {
                d.spend(1)?;
                f(d, h, &cur)?;
                cur = tl;
                first = false;
            }
            Cell::NotList => {
                return Err(if first {
                    BadCrdt::Malformed(tag)
                } else {
                    BadCrdt::ImproperList(tag)
                })
            }
        }
    }
}

/// A positive integer that fits in an `i64`.
fn pos_seq<T: Term>(t: &T, tag: Atom) -> Result<u64> {
    match t.as_i64() {
        Some(n) if n >= 1 => Ok(n as u64),
        _ => Err(BadCrdt::Malformed(tag)),
    }
}

fn decode_dot<T: Term>(t: &T, it: &mut Interner<T>, tag: Atom) -> Result<Dot> {
    let (a, s) = t.as_pair().ok_or(BadCrdt::Malformed(tag))?;
    let seq = pos_seq(&s, tag)?;
    Ok(Dot {
        actor: it.intern(&a)?,
        seq,
    })
}

fn decode_cc<T: Term>(t: &T, d: &mut Decoder, it: &mut Interner<T>, tag: Atom) -> Result<Cc> {
    let (ct, cl) = t.as_pair().ok_or(BadCrdt::Malformed(tag))?;
    let mut compressed = Vec::new();
    walk_list(&ct, d, tag, |_, e, _| {
        let (a, n) = e.as_pair().ok_or(BadCrdt::Malformed(tag))?;
        let n = pos_seq(&n, tag)?;
        compressed.push((it.intern(&a)?, n));
        Ok(())
    })?;
    let mut cloud = Vec::new();
    walk_list(&cl, d, tag, |_, e, _| {
        cloud.push(decode_dot(&e, it, tag)?);
        Ok(())
    })?;
    Ok(Cc { compressed, cloud })
}

#[inline]
fn seq_term<T: Term, B: Builder<T = T>>(b: &B, s: u64) -> T {
    // Sequences never exceed `MAX_SEQ`, so this is exact.
    b.int(s.min(MAX_SEQ) as i64)
}

fn dot_term<T: Term, B: Builder<T = T>>(d: &Dot, actors: &Actors<T>, b: &B) -> T {
    b.pair(actors.term(d.actor).clone(), seq_term(b, d.seq))
}

fn encode_dots<T: Term, B: Builder<T = T>>(dots: &[Dot], actors: &Actors<T>, b: &B) -> T {
    match dots {
        [] => b.nil(),
        [d] => b.cons(dot_term(d, actors, b), b.nil()),
        _ => {
            let items: Vec<T> = dots.iter().map(|d| dot_term(d, actors, b)).collect();
            b.list(&items)
        }
    }
}

/// `state_ivar:merge/2` on the values of one dot: `undefined` gives way,
/// identical values merge, anything else raises in types.
fn ivar_merge<T: Term>(va: &T, vb: &T, tag: Atom) -> Result<T> {
    if vb.is_atom(Atom::Undefined) {
        Ok(va.clone())
    } else if va.is_atom(Atom::Undefined) || va.identical(vb) {
        Ok(vb.clone())
    } else {
        Err(BadCrdt::Conflict(tag))
    }
}

// ---------------------------------------------------------------------------
// Merge
// ---------------------------------------------------------------------------

/// Reused buffers for dot-set merges.
#[derive(Default)]
struct Scratch {
    a: Vec<UDot>,
    b: Vec<UDot>,
    i: Vec<UDot>,
    sa: Vec<UDot>,
    sb: Vec<UDot>,
    u: Vec<UDot>,
    r: Vec<UDot>,
}

/// Everything a recursive store merge needs. All sub-merges use the
/// top-level contexts.
struct MergeCx<'a, T> {
    u: &'a Unified<T>,
    cc_a: &'a CcIndex,
    cc_b: &'a CcIndex,
    tag: Atom,
    scratch: Scratch,
}

type Side<'s, T> = Option<(&'s Store<T>, usize)>;

/// Whether a merged value is identical to A's, and to B's (a missing value
/// is `[]`).
type Same = (bool, bool);

impl<T: Term> MergeCx<'_, T> {
    /// Merge value `a` with value `b` and append the result to `out`.
    fn value(&mut self, a: Side<'_, T>, b: Side<'_, T>, out: &mut Store<T>) -> Result<Same> {
        let tag = self.tag;
        match out {
            Store::Set(o) => {
                let da = match a {
                    None => &[][..],
                    Some((Store::Set(c), i)) => c.value(i),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let db = match b {
                    None => &[][..],
                    Some((Store::Set(c), i)) => c.value(i),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let same = self.merge_sets(da, db, &mut o.dots);
                o.bounds.push(o.dots.len());
                Ok(same)
            }
            Store::Fun(o) => {
                let fa = match a {
                    None => (&[][..], &[][..]),
                    Some((Store::Fun(c), i)) => c.value(i),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let fb = match b {
                    None => (&[][..], &[][..]),
                    Some((Store::Fun(c), i)) => c.value(i),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let same = self.merge_funs(fa, fb, o)?;
                o.bounds.push(o.dots.len());
                Ok(same)
            }
            Store::Map(o) => {
                let ma = match a {
                    None => None,
                    Some((Store::Map(c), i)) => Some((c, i)),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let mb = match b {
                    None => None,
                    Some((Store::Map(c), i)) => Some((c, i)),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let same = self.merge_maps(ma, mb, o)?;
                o.bounds.push(o.keys.len());
                Ok(same)
            }
        }
    }

    /// Dot set: `U(I(DA, DB), U(DA \ CCB, DB \ CCA))`.
    fn merge_sets(&mut self, da: &[Dot], db: &[Dot], out: &mut Vec<Dot>) -> Same {
        let u = self.u;
        let start = out.len();
        if db.is_empty() {
            // `U([], U(DA \ CCB, []))` is `DA \ CCB` as is.
            for &d in da {
                let x = u.ua(d);
                if !self.cc_b.contains(x.rank, x.seq) {
                    out.push(x.dot());
                }
            }
            let n = out.len() - start;
            return (n == da.len(), n == 0);
        }
        if da.is_empty() {
            for &d in db {
                let x = u.ub(d);
                if !self.cc_a.contains(x.rank, x.seq) {
                    out.push(x.dot());
                }
            }
            let n = out.len() - start;
            return (n == 0, n == db.len());
        }
        if da.len() == db.len()
            && da.iter().zip(db).all(|(x, y)| {
                x.seq == y.seq && u.map_a[x.actor as usize] == u.map_b[y.actor as usize]
            })
        {
            // Identical sets: the intersection is DA and the two differences
            // are subsets of it, so the union never swaps roles.
            out.extend(da.iter().map(|&d| u.ua(d).dot()));
            return (true, true);
        }
        let mut s = std::mem::take(&mut self.scratch);
        s.a.clear();
        s.a.extend(da.iter().map(|&d| u.ua(d)));
        s.b.clear();
        s.b.extend(db.iter().map(|&d| u.ub(d)));
        s.i.clear();
        intersection_into(&s.a, &s.b, &mut s.i);
        s.sa.clear();
        s.sa.extend(s.a.iter().filter(|x| !self.cc_b.contains(x.rank, x.seq)));
        s.sb.clear();
        s.sb.extend(s.b.iter().filter(|x| !self.cc_a.contains(x.rank, x.seq)));
        s.u.clear();
        union_into(&s.sa, &s.sb, &mut s.u);
        s.r.clear();
        union_into(&s.i, &s.u, &mut s.r);
        out.extend(s.r.iter().map(UDot::dot));
        let same_a = s.r.len() == s.a.len() && s.r.iter().zip(&s.a).all(|(x, y)| x.same(y));
        let same_b = s.r.len() == s.b.len() && s.r.iter().zip(&s.b).all(|(x, y)| x.same(y));
        self.scratch = s;
        (same_a, same_b)
    }

    /// Dot fun: the ivar merge of the common dots (in intersection order),
    /// then `orddict:store` of `A \ CCB` and then of `B \ CCA`.
    fn merge_funs(
        &mut self,
        (da, va): (&[Dot], &[T]),
        (db, vb): (&[Dot], &[T]),
        out: &mut FunCol<T>,
    ) -> Result<Same> {
        let u = self.u;
        let start = out.dots.len();
        if db.is_empty() || da.is_empty() {
            let (ds, vs, cc, a_side) = if db.is_empty() {
                (da, va, self.cc_b, true)
            } else {
                (db, vb, self.cc_a, false)
            };
            for (&d, v) in ds.iter().zip(vs) {
                let x = if a_side { u.ua(d) } else { u.ub(d) };
                if !cc.contains(x.rank, x.seq) {
                    out.dots.push(x.dot());
                    out.vals.push(v.clone());
                }
            }
            let n = out.dots.len() - start;
            return Ok(if a_side {
                (n == da.len(), n == 0)
            } else {
                (n == 0, n == db.len())
            });
        }
        // Step 1: the intersection, role swap included; the values are
        // fetched by `==` from each side.
        let mut inter: Vec<(UDot, T)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        let mut a_first = true;
        while i < da.len() && j < db.len() {
            let (x, y) = (u.ua(da[i]), u.ub(db[j]));
            let (f, s) = if a_first { (x, y) } else { (y, x) };
            match f.cmp(&s) {
                Ordering::Less => {
                    if a_first {
                        i += 1
                    } else {
                        j += 1
                    }
                }
                Ordering::Greater => {
                    if a_first {
                        j += 1
                    } else {
                        i += 1
                    }
                    a_first = !a_first;
                }
                Ordering::Equal => {
                    inter.push((f, ivar_merge(&va[i], &vb[j], self.tag)?));
                    i += 1;
                    j += 1;
                }
            }
        }
        // Step 2: later stores win, key term and value alike.
        let la: Vec<(UDot, &T)> = da
            .iter()
            .zip(va)
            .map(|(&d, v)| (u.ua(d), v))
            .filter(|(x, _)| !self.cc_b.contains(x.rank, x.seq))
            .collect();
        let lb: Vec<(UDot, &T)> = db
            .iter()
            .zip(vb)
            .map(|(&d, v)| (u.ub(d), v))
            .filter(|(x, _)| !self.cc_a.contains(x.rank, x.seq))
            .collect();
        let (mut p0, mut p1, mut p2) = (0, 0, 0);
        loop {
            let h0 = inter.get(p0).map(|e| e.0);
            let h1 = la.get(p1).map(|e| e.0);
            let h2 = lb.get(p2).map(|e| e.0);
            let min = [h0, h1, h2].into_iter().flatten().min_by(|x, y| x.cmp(y));
            let Some(m) = min else { break };
            let eq = |h: Option<UDot>| h.is_some_and(|h| h.cmp(&m) == Ordering::Equal);
            let (e0, e1, e2) = (eq(h0), eq(h1), eq(h2));
            let (d, v) = if e2 {
                (lb[p2].0, lb[p2].1.clone())
            } else if e1 {
                (la[p1].0, la[p1].1.clone())
            } else {
                (inter[p0].0, inter[p0].1.clone())
            };
            out.dots.push(d.dot());
            out.vals.push(v);
            p0 += usize::from(e0);
            p1 += usize::from(e1);
            p2 += usize::from(e2);
        }
        let (od, ov) = (&out.dots[start..], &out.vals[start..]);
        let same_a = dots_same(od, da, &u.map_a) && ov.iter().zip(va).all(|(x, y)| x.identical(y));
        let same_b = dots_same(od, db, &u.map_b) && ov.iter().zip(vb).all(|(x, y)| x.identical(y));
        Ok((same_a, same_b))
    }

    /// Dot map: keys matched by `=:=`, otherwise by `<`/`>`; a key whose
    /// merged value is empty is dropped.
    fn merge_maps(
        &mut self,
        a: Option<(&MapCol<T>, usize)>,
        b: Option<(&MapCol<T>, usize)>,
        out: &mut MapCol<T>,
    ) -> Result<Same> {
        let (ka, abase, ain) = match a {
            Some((m, i)) => (m.keys_of(i), m.bounds[i], Some(&*m.inner)),
            None => (&[][..], 0, None),
        };
        let (kb, bbase, bin) = match b {
            Some((m, i)) => (m.keys_of(i), m.bounds[i], Some(&*m.inner)),
            None => (&[][..], 0, None),
        };
        let sub_a = |k: usize| ain.map(|s| (s, abase + k));
        let sub_b = |k: usize| bin.map(|s| (s, bbase + k));
        let mut same = (true, true);
        let out_start = out.keys.len();
        let mut prov: Vec<(usize, usize)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        let (mut run_a, mut run_b) = (0, 0);
        while i < ka.len() && j < kb.len() {
            match ka[i].compare(&kb[j]) {
                Ordering::Less => {
                    let n = if run_a >= GALLOP {
                        1 + gallop(&ka[i + 1..], &kb[j])
                    } else {
                        1
                    };
                    for (k, key) in ka.iter().enumerate().skip(i).take(n) {
                        self.entry(sub_a(k), None, key, out, &mut same, &mut prov)?;
                    }
                    i += n;
                    run_a += 1;
                    run_b = 0;
                }
                Ordering::Greater => {
                    let n = if run_b >= GALLOP {
                        1 + gallop(&kb[j + 1..], &ka[i])
                    } else {
                        1
                    };
                    for (k, key) in kb.iter().enumerate().skip(j).take(n) {
                        self.entry(None, sub_b(k), key, out, &mut same, &mut prov)?;
                    }
                    j += n;
                    run_b += 1;
                    run_a = 0;
                }
                Ordering::Equal => {
                    if !ka[i].identical(&kb[j]) {
                        // No clause of dot_map:merge/4 matches.
                        return Err(BadCrdt::NotIdentical(self.tag));
                    }
                    self.entry(sub_a(i), sub_b(j), &ka[i], out, &mut same, &mut prov)?;
                    i += 1;
                    j += 1;
                    run_a = 0;
                    run_b = 0;
                }
            }
        }
        for (k, key) in ka.iter().enumerate().skip(i) {
            self.entry(sub_a(k), None, key, out, &mut same, &mut prov)?;
        }
        for (k, key) in kb.iter().enumerate().skip(j) {
            self.entry(None, sub_b(k), key, out, &mut same, &mut prov)?;
        }
        // Entries identical to an input's reuse its entry term.
        for (k, &(pa, pb)) in prov.iter().enumerate() {
            let cell = match (a, b) {
                (Some((m, _)), _) if pa != NONE => m.cells[pa].clone(),
                (_, Some((m, _))) if pb != NONE => m.cells[pb].clone(),
                _ => None,
            };
            out.cells[out_start + k] = cell;
        }
        // Share the longest run of final entries that is also the end of an
        // input's list: encoding then stops at that input's list cell.
        let suffix = |m: Option<(&MapCol<T>, usize)>, pick: fn(&(usize, usize)) -> usize| {
            let Some((m, i)) = m else { return (0, 0) };
            let (mut n, mut x) = (0, m.bounds[i + 1]);
            while n < prov.len() && x > m.shared[i] && pick(&prov[prov.len() - 1 - n]) == x - 1 {
                n += 1;
                x -= 1;
            }
            (n, x)
        };
        let (na, xa) = suffix(a, |p| p.0);
        let (nb, xb) = suffix(b, |p| p.1);
        let (n, x, m) = if na >= nb { (na, xa, a) } else { (nb, xb, b) };
        let first = out_start + prov.len() - n;
        if let (true, Some((m, _))) = (n > 0, m) {
            out.cells[first..first + n].clone_from_slice(&m.cells[x..x + n]);
        }
        out.shared.push(first);
        Ok(same)
    }

    /// Merge one key's values and append the entry unless it is empty.
    /// `prov` records, per appended entry, the A and B entries it is
    /// identical to (`NONE` when it is not).
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        a: Side<'_, T>,
        b: Side<'_, T>,
        key: &T,
        out: &mut MapCol<T>,
        same: &mut Same,
        prov: &mut Vec<(usize, usize)>,
    ) -> Result<()> {
        let (sa, sb) = self.value(a, b, &mut out.inner)?;
        let last = out.inner.values() - 1;
        if out.inner.value_len(last) == 0 {
            out.inner.pop_empty_value();
            same.0 &= a.is_none();
            same.1 &= b.is_none();
        } else {
            out.keys.push(key.clone());
            out.cells.push(None);
            same.0 &= a.is_some() && sa;
            same.1 &= b.is_some() && sb;
            let pa = a.filter(|_| sa).map_or(NONE, |(_, i)| i);
            let pb = b.filter(|_| sb).map_or(NONE, |(_, i)| i);
            prov.push((pa, pb));
        }
        Ok(())
    }
}

/// How many leading elements of the ascending `s` are `< t`: exponential
/// then binary search, `O(log answer)` comparisons.
fn gallop<T: Term>(s: &[T], t: &T) -> usize {
    let (mut lo, mut step) = (0, 1);
    while lo + step <= s.len() && s[lo + step - 1].compare(t) == Ordering::Less {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step - 1).min(s.len());
    lo + s[lo..hi].partition_point(|x| x.compare(t) == Ordering::Less)
}

// ---------------------------------------------------------------------------
// Structural comparisons
// ---------------------------------------------------------------------------

/// Value `ia` of `a` `=:=` value `ib` of `b` (`exact`), or `==` (`!exact`).
fn store_cmp<T: Term>(
    a: &Store<T>,
    ia: usize,
    b: &Store<T>,
    ib: usize,
    u: &Unified<T>,
    exact: bool,
) -> bool {
    let dots_eq = |x: &[Dot], y: &[Dot]| {
        x.len() == y.len()
            && x.iter().zip(y).all(|(p, q)| {
                p.seq == q.seq
                    && if exact {
                        u.map_a[p.actor as usize] == u.map_b[q.actor as usize]
                    } else {
                        u.rank_of_a(p.actor) == u.rank_of_b(q.actor)
                    }
            })
    };
    let term_eq = |x: &T, y: &T| {
        if exact {
            x.identical(y)
        } else {
            x.compare(y) == Ordering::Equal
        }
    };
    match (a, b) {
        (Store::Set(x), Store::Set(y)) => dots_eq(x.value(ia), y.value(ib)),
        (Store::Fun(x), Store::Fun(y)) => {
            let ((dx, vx), (dy, vy)) = (x.value(ia), y.value(ib));
            dots_eq(dx, dy) && vx.iter().zip(vy).all(|(p, q)| term_eq(p, q))
        }
        (Store::Map(x), Store::Map(y)) => {
            let (kx, ky) = (x.keys_of(ia), y.keys_of(ib));
            kx.len() == ky.len()
                && kx.iter().zip(ky).enumerate().all(|(k, (p, q))| {
                    term_eq(p, q)
                        && store_cmp(
                            &x.inner,
                            x.bounds[ia] + k,
                            &y.inner,
                            y.bounds[ib] + k,
                            u,
                            exact,
                        )
                })
        }
        _ => false,
    }
}

fn cc_cmp<T: Term>(a: &Cc, b: &Cc, u: &Unified<T>, exact: bool) -> bool {
    let actor_eq = |x: u32, y: u32| {
        if exact {
            u.map_a[x as usize] == u.map_b[y as usize]
        } else {
            u.rank_of_a(x) == u.rank_of_b(y)
        }
    };
    a.compressed.len() == b.compressed.len()
        && a.cloud.len() == b.cloud.len()
        && a.compressed
            .iter()
            .zip(&b.compressed)
            .all(|(x, y)| x.1 == y.1 && actor_eq(x.0, y.0))
        && a.cloud
            .iter()
            .zip(&b.cloud)
            .all(|(x, y)| x.seq == y.seq && actor_eq(x.actor, y.actor))
}

// ---------------------------------------------------------------------------
// Delta
// ---------------------------------------------------------------------------

struct DeltaCx<'a, T> {
    u: &'a Unified<T>,
    cc_a: &'a CcIndex,
    cc_b: &'a CcIndex,
    tag: Atom,
}

/// Whether the resolved dot `x` is `==` to one of the ascending `ys`.
fn udot_in(ys: &[UDot], x: &UDot) -> bool {
    ys.binary_search_by(|y| y.cmp(x)).is_ok()
}

impl<T: Term> DeltaCx<'_, T> {
    fn resolve_a(&self, ds: &[Dot]) -> Vec<UDot> {
        ds.iter().map(|&d| self.u.ua(d)).collect()
    }
    fn resolve_b(&self, ds: &[Dot]) -> Vec<UDot> {
        ds.iter().map(|&d| self.u.ub(d)).collect()
    }

    /// Collect the dots of B that A has seen (in CCA) but does not hold
    /// under the same key path: A's context removes them from B.
    fn removed_in_a(&self, a: Side<'_, T>, b: Side<'_, T>, acc: &mut Vec<UDot>) {
        let Some((sb, ib)) = b else { return };
        let dots_a: Vec<UDot> = match a {
            Some((Store::Set(c), i)) => self.resolve_a(c.value(i)),
            Some((Store::Fun(c), i)) => self.resolve_a(c.value(i).0),
            _ => Vec::new(),
        };
        let dots_b: &[Dot] = match sb {
            Store::Set(c) => c.value(ib),
            Store::Fun(c) => c.value(ib).0,
            Store::Map(mb) => {
                let ma = match a {
                    Some((Store::Map(m), i)) => Some((m, i)),
                    _ => None,
                };
                let kb = mb.keys_of(ib);
                let ka = ma.map_or(&[][..], |(m, i)| m.keys_of(i));
                let mut i = 0;
                for (k, key) in kb.iter().enumerate() {
                    while i < ka.len() && ka[i].compare(key) == Ordering::Less {
                        i += 1;
                    }
                    let sub_a = match ma {
                        Some((m, ia)) if i < ka.len() && ka[i].compare(key) == Ordering::Equal => {
                            Some((&*m.inner, m.bounds[ia] + i))
                        }
                        _ => None,
                    };
                    self.removed_in_a(sub_a, Some((&mb.inner, mb.bounds[ib] + k)), acc);
                }
                return;
            }
        };
        for x in self.resolve_b(dots_b) {
            if self.cc_a.contains(x.rank, x.seq) && !udot_in(&dots_a, &x) {
                acc.push(x);
            }
        }
    }

    /// A's store, keeping a dot when B has not seen it, or when B holds it
    /// under the same key path and the delta's context covers it.
    fn filter(
        &self,
        a: (&Store<T>, usize),
        b: Side<'_, T>,
        cc_d: &CcIndex,
        out: &mut Store<T>,
    ) -> Result<bool> {
        let (sa, ia) = a;
        let keep = |x: &UDot, held_by_b: &[UDot]| {
            !self.cc_b.contains(x.rank, x.seq)
                || (udot_in(held_by_b, x) && cc_d.contains(x.rank, x.seq))
        };
        let same = match (sa, out) {
            (Store::Set(c), Store::Set(o)) => {
                let held: Vec<UDot> = match b {
                    Some((Store::Set(cb), i)) => self.resolve_b(cb.value(i)),
                    _ => Vec::new(),
                };
                let ds = c.value(ia);
                let start = o.dots.len();
                for &d in ds {
                    let x = self.u.ua(d);
                    if keep(&x, &held) {
                        o.dots.push(x.dot());
                    }
                }
                let same = o.dots.len() - start == ds.len();
                o.bounds.push(o.dots.len());
                same
            }
            (Store::Fun(c), Store::Fun(o)) => {
                let held: Vec<UDot> = match b {
                    Some((Store::Fun(cb), i)) => self.resolve_b(cb.value(i).0),
                    _ => Vec::new(),
                };
                let (ds, vs) = c.value(ia);
                let start = o.dots.len();
                for (&d, v) in ds.iter().zip(vs) {
                    let x = self.u.ua(d);
                    if keep(&x, &held) {
                        o.dots.push(x.dot());
                        o.vals.push(v.clone());
                    }
                }
                let same = o.dots.len() - start == ds.len();
                o.bounds.push(o.dots.len());
                same
            }
            (Store::Map(c), Store::Map(o)) => {
                let mb = match b {
                    Some((Store::Map(m), i)) => Some((m, i)),
                    _ => None,
                };
                let ka = c.keys_of(ia);
                let kb = mb.map_or(&[][..], |(m, i)| m.keys_of(i));
                let mut same = true;
                let mut j = 0;
                for (k, key) in ka.iter().enumerate() {
                    while j < kb.len() && kb[j].compare(key) == Ordering::Less {
                        j += 1;
                    }
                    let sub_b = match mb {
                        Some((m, ib)) if j < kb.len() && kb[j].compare(key) == Ordering::Equal => {
                            Some((&*m.inner, m.bounds[ib] + j))
                        }
                        _ => None,
                    };
                    let sub_same =
                        self.filter((&c.inner, c.bounds[ia] + k), sub_b, cc_d, &mut o.inner)?;
                    let last = o.inner.values() - 1;
                    if o.inner.value_len(last) == 0 {
                        o.inner.pop_empty_value();
                        same = false;
                    } else {
                        o.keys.push(key.clone());
                        o.cells.push(if sub_same {
                            c.cells[c.bounds[ia] + k].clone()
                        } else {
                            None
                        });
                        same &= sub_same;
                    }
                }
                o.bounds.push(o.keys.len());
                o.shared.push(o.keys.len());
                same
            }
            _ => return Err(BadCrdt::Malformed(self.tag)),
        };
        Ok(same)
    }
}

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

#[cfg(test)]
pub(crate) mod testing {
    //! A test term with floats (so `==` and `=:=` differ), an Erlang-syntax
    //! reader, and a mutation context.

    use std::cmp::Ordering;
    use std::rc::Rc;

    use crate::decode::{Decoder, Limits};
    use crate::error::Result;
    use crate::lattice::{Lattice, MutateCx};
    use crate::term::{Atom, Builder, Cell, Kind, Term};

    /// A test term.
    #[derive(Debug, Clone)]
    pub enum TT {
        Int(i64),
        Float(f64),
        Atom(Rc<str>),
        Tuple(Rc<[TT]>),
        Nil,
        Cons(Rc<(TT, TT)>),
        Bin(Rc<[u8]>),
    }

    impl PartialEq for TT {
        fn eq(&self, other: &Self) -> bool {
            self.identical(other)
        }
    }

    fn class(t: &TT) -> u8 {
        match t {
            TT::Int(_) | TT::Float(_) => 0,
            TT::Atom(_) => 1,
            TT::Tuple(_) => 6,
            TT::Nil => 8,
            TT::Cons(_) => 9,
            TT::Bin(_) => 10,
        }
    }

    impl Term for TT {
        fn kind(&self) -> Kind {
            match self {
                TT::Int(_) => Kind::Integer,
                TT::Float(_) => Kind::Float,
                TT::Atom(_) => Kind::Atom,
                TT::Tuple(_) => Kind::Tuple,
                TT::Nil => Kind::Nil,
                TT::Cons(_) => Kind::List,
                TT::Bin(_) => Kind::Binary,
            }
        }
        fn compare(&self, other: &Self) -> Ordering {
            use TT::*;
            match (self, other) {
                (Int(a), Int(b)) => a.cmp(b),
                (Int(a), Float(b)) => (*a as f64).partial_cmp(b).unwrap_or(Ordering::Equal),
                (Float(a), Int(b)) => a.partial_cmp(&(*b as f64)).unwrap_or(Ordering::Equal),
                (Float(a), Float(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
                (Atom(a), Atom(b)) => a.cmp(b),
                (Bin(a), Bin(b)) => a.cmp(b),
                (Tuple(a), Tuple(b)) => a.len().cmp(&b.len()).then_with(|| {
                    a.iter()
                        .zip(b.iter())
                        .map(|(x, y)| x.compare(y))
                        .find(|o| o.is_ne())
                        .unwrap_or(Ordering::Equal)
                }),
                (Cons(a), Cons(b)) => a.0.compare(&b.0).then_with(|| a.1.compare(&b.1)),
                (Nil, Nil) => Ordering::Equal,
                _ => class(self).cmp(&class(other)),
            }
        }
        fn identical(&self, other: &Self) -> bool {
            use TT::*;
            match (self, other) {
                (Int(a), Int(b)) => a == b,
                (Float(a), Float(b)) => a == b,
                (Atom(a), Atom(b)) => a == b,
                (Bin(a), Bin(b)) => a == b,
                (Tuple(a), Tuple(b)) => {
                    a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.identical(y))
                }
                (Cons(a), Cons(b)) => a.0.identical(&b.0) && a.1.identical(&b.1),
                (Nil, Nil) => true,
                _ => false,
            }
        }
        fn as_i64(&self) -> Option<i64> {
            match self {
                TT::Int(i) => Some(*i),
                _ => None,
            }
        }
        fn compare_int(&self, n: i64) -> Ordering {
            self.compare(&TT::Int(n))
        }
        fn is_atom(&self, atom: Atom) -> bool {
            matches!(self, TT::Atom(a) if &**a == atom.name())
        }
        fn tuple_arity(&self) -> Option<usize> {
            match self {
                TT::Tuple(t) => Some(t.len()),
                _ => None,
            }
        }
        fn tuple_elem(&self, i: usize) -> Option<Self> {
            match self {
                TT::Tuple(t) => t.get(i).cloned(),
                _ => None,
            }
        }
        fn cell(&self) -> Cell<Self> {
            match self {
                TT::Nil => Cell::Nil,
                TT::Cons(c) => Cell::Cons(c.0.clone(), c.1.clone()),
                _ => Cell::NotList,
            }
        }
    }

    /// Builds [`TT`]s.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct TB;

    impl Builder for TB {
        type T = TT;
        fn atom(&self, atom: Atom) -> TT {
            TT::Atom(atom.name().into())
        }
        fn int(&self, value: i64) -> TT {
            TT::Int(value)
        }
        fn int128(&self, value: i128) -> TT {
            TT::Int(value as i64)
        }
        fn tuple(&self, elems: &[TT]) -> TT {
            TT::Tuple(elems.into())
        }
        fn nil(&self) -> TT {
            TT::Nil
        }
        fn cons(&self, head: TT, tail: TT) -> TT {
            TT::Cons(Rc::new((head, tail)))
        }
        fn binary(&self, bytes: &[u8]) -> TT {
            TT::Bin(bytes.into())
        }
    }

    /// Read an Erlang term: integers, floats, atoms (bare or quoted),
    /// `<<"bin">>`, tuples, lists and `[H | T]`.
    pub fn t(s: &str) -> TT {
        let mut p = P {
            s: s.as_bytes(),
            i: 0,
        };
        let v = p.term();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing input in {s}");
        v
    }

    struct P<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) -> bool {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                true
            } else {
                false
            }
        }
        fn term(&mut self) -> TT {
            self.ws();
            let c = self.s[self.i];
            match c {
                b'{' => {
                    self.i += 1;
                    let mut v = Vec::new();
                    if !self.eat(b'}') {
                        loop {
                            v.push(self.term());
                            if self.eat(b'}') {
                                break;
                            }
                            assert!(self.eat(b','));
                        }
                    }
                    TT::Tuple(v.into())
                }
                b'[' => {
                    self.i += 1;
                    let mut v = Vec::new();
                    let mut tail = TT::Nil;
                    if !self.eat(b']') {
                        loop {
                            v.push(self.term());
                            if self.eat(b']') {
                                break;
                            }
                            if self.eat(b'|') {
                                tail = self.term();
                                assert!(self.eat(b']'));
                                break;
                            }
                            assert!(self.eat(b','));
                        }
                    }
                    v.into_iter()
                        .rev()
                        .fold(tail, |acc, h| TT::Cons(Rc::new((h, acc))))
                }
                b'<' => {
                    assert!(self.s[self.i..].starts_with(b"<<\""));
                    self.i += 3;
                    let st = self.i;
                    while self.s[self.i] != b'"' {
                        self.i += 1;
                    }
                    let b = self.s[st..self.i].to_vec();
                    self.i += 1;
                    assert!(self.s[self.i..].starts_with(b">>"));
                    self.i += 2;
                    TT::Bin(b.into())
                }
                b'\'' => {
                    self.i += 1;
                    let st = self.i;
                    while self.s[self.i] != b'\'' {
                        self.i += 1;
                    }
                    let a = std::str::from_utf8(&self.s[st..self.i])
                        .unwrap()
                        .to_string();
                    self.i += 1;
                    TT::Atom(a.into())
                }
                b'-' | b'0'..=b'9' => {
                    let st = self.i;
                    self.i += 1;
                    while self.i < self.s.len()
                        && (self.s[self.i].is_ascii_digit()
                            || self.s[self.i] == b'.'
                            || self.s[self.i] == b'e')
                    {
                        self.i += 1;
                    }
                    let n = std::str::from_utf8(&self.s[st..self.i]).unwrap();
                    if n.contains('.') {
                        TT::Float(n.parse().unwrap())
                    } else {
                        TT::Int(n.parse().unwrap())
                    }
                }
                _ => {
                    let st = self.i;
                    while self.i < self.s.len()
                        && (self.s[self.i].is_ascii_alphanumeric()
                            || self.s[self.i] == b'_'
                            || self.s[self.i] == b'@')
                    {
                        self.i += 1;
                    }
                    assert!(self.i > st, "bad term at {}", self.i);
                    let a = std::str::from_utf8(&self.s[st..self.i])
                        .unwrap()
                        .to_string();
                    TT::Atom(a.into())
                }
            }
        }
    }

    /// A mutation context over [`TB`].
    pub struct Cx;

    impl MutateCx<TT> for Cx {
        type B = TB;
        fn builder(&self) -> &TB {
            &TB
        }
        fn token(&mut self) -> TT {
            TB.binary(&[7; 20])
        }
    }

    /// Decode a payload written in Erlang syntax.
    pub fn dec<L: Lattice<TT>>(s: &str) -> Result<L> {
        L::decode(&t(s), &mut Decoder::new(Limits::dirty()))
    }

    /// Encode a state.
    pub fn enc<L: Lattice<TT>>(l: &L) -> TT {
        l.encode(&TB)
    }

    /// `merge(A, B)` as a payload term.
    pub fn merged<L: Lattice<TT>>(a: &L, b: &L) -> Result<TT> {
        Ok(enc(&a.merge(b)?.into_state(a, b)))
    }

    /// Assert two terms are identical, printing both otherwise.
    #[track_caller]
    pub fn same(x: &TT, y: &TT) {
        assert!(x.identical(y), "\n  left: {x:?}\n right: {y:?}");
    }

    /// A tiny deterministic generator for randomized tests.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n.max(1)
        }
    }
}

#[cfg(test)]
mod test {
    use super::testing::*;
    use super::*;

    const TAG: Atom = Atom::StateAwset;

    fn awset(s: &str) -> Result<Causal<TT>> {
        Causal::decode(
            &t(s),
            &Kind::Map(Box::new(Kind::Set)),
            &mut Decoder::new(Limits::dirty()),
            TAG,
        )
    }

    fn mvreg(s: &str) -> Result<Causal<TT>> {
        Causal::decode(&t(s), &Kind::Fun, &mut Decoder::new(Limits::dirty()), TAG)
    }

    fn m(a: &Causal<TT>, b: &Causal<TT>) -> Result<TT> {
        Ok(match a.merge(b, TAG)? {
            Merged::Left => a.encode(&TB),
            Merged::Right => b.encode(&TB),
            Merged::New(s) => s.encode(&TB),
        })
    }

    #[test]
    fn cc_union_compresses_contiguous_cloud_dots() {
        let a = awset("{[], {[{a, 2}], [{a, 4}, {b, 1}, {c, 3}]}}").unwrap();
        let b = awset("{[], {[{a, 1}], [{a, 3}, {c, 2}]}}").unwrap();
        same(
            &m(&a, &b).unwrap(),
            &t("{[], {[{a, 4}, {b, 1}], [{c, 2}, {c, 3}]}}"),
        );
    }

    #[test]
    fn cc_union_drops_covered_cloud_dots() {
        let a = awset("{[], {[{a, 5}], []}}").unwrap();
        let b = awset("{[], {[], [{a, 3}, {a, 7}]}}").unwrap();
        same(&m(&a, &b).unwrap(), &t("{[], {[{a, 5}], [{a, 7}]}}"));
        same(&m(&b, &a).unwrap(), &t("{[], {[{a, 5}], [{a, 7}]}}"));
    }

    #[test]
    fn compression_takes_the_actor_term_from_the_dot() {
        // `orddict:store` replaces the `==` key: 1.0 from the dot wins.
        let a = awset("{[], {[{1, 1}], []}}").unwrap();
        let b = awset("{[], {[], [{1.0, 2}]}}").unwrap();
        same(&m(&a, &b).unwrap(), &t("{[], {[{1.0, 2}], []}}"));
        // Without compression the orddict merge keeps A's key.
        let c = awset("{[], {[{1.0, 3}], []}}").unwrap();
        same(&m(&a, &c).unwrap(), &t("{[], {[{1, 3}], []}}"));
    }

    #[test]
    fn identical_payloads_are_returned_uncompressed() {
        let a = awset("{[], {[], [{a, 1}]}}").unwrap();
        let b = awset("{[], {[], [{a, 1}]}}").unwrap();
        assert!(matches!(a.merge(&b, TAG).unwrap(), Merged::Left));
        let bottom = Causal::bottom(&Kind::Map(Box::new(Kind::Set)));
        same(&m(&a, &bottom).unwrap(), &t("{[], {[{a, 1}], []}}"));
    }

    #[test]
    fn dot_set_merge_removes_seen_dots() {
        let a = awset("{[{x, [{a, 1}]}, {y, [{a, 2}]}], {[{a, 2}], []}}").unwrap();
        let b = awset("{[{x, [{a, 1}]}, {z, [{b, 1}]}], {[{a, 2}, {b, 1}], []}}").unwrap();
        same(
            &m(&a, &b).unwrap(),
            &t("{[{x, [{a, 1}]}, {z, [{b, 1}]}], {[{a, 2}, {b, 1}], []}}"),
        );
        assert!(matches!(a.merge(&b, TAG).unwrap(), Merged::Right));
    }

    #[test]
    fn union_role_swap_keeps_the_first_seen_term() {
        // Dots are `==` across actors 1 and 1.0; which term survives follows
        // ordsets' role swap.
        let a = awset("{[{x, [{1, 1}, {2, 1}]}], {[], [{1, 1}, {2, 1}]}}").unwrap();
        let b = awset("{[{x, [{0, 1}, {1.0, 1}]}], {[], [{0, 1}, {1.0, 1}]}}").unwrap();
        // U(A, B) emits {0,1} from B, which then leads: {1.0,1} wins over
        // {1,1}, then {2,1}. Every cloud dot then compresses.
        same(
            &m(&a, &b).unwrap(),
            &t("{[{x, [{0, 1}, {1.0, 1}, {2, 1}]}], {[{0, 1}, {1.0, 1}, {2, 1}], []}}"),
        );
        // Without the swap (A's head first) A's term is kept.
        let c = awset("{[{x, [{1.0, 1}, {2, 1}]}], {[], [{1.0, 1}, {2, 1}]}}").unwrap();
        same(
            &m(&a, &c).unwrap(),
            &t("{[{x, [{1, 1}, {2, 1}]}], {[{1, 1}, {2, 1}], []}}"),
        );
    }

    #[test]
    fn keys_equal_but_not_identical_raise() {
        let a = awset("{[{1, [{a, 1}]}], {[{a, 1}], []}}").unwrap();
        let b = awset("{[{1.0, [{b, 1}]}], {[{b, 1}], []}}").unwrap();
        assert_eq!(a.merge(&b, TAG).unwrap_err(), BadCrdt::NotIdentical(TAG));
    }

    #[test]
    fn galloping_merge_matches_a_linear_one() {
        let mut rng = Rng(7);
        for round in 0..40 {
            let n = 1 + rng.next(60);
            let mut ka = String::new();
            let mut kb = String::new();
            let (mut sa, mut sb) = (1u64, 1u64);
            for k in 0..n {
                match rng.next(if round % 2 == 0 { 3 } else { 20 }) {
                    0 => {
                        ka.push_str(&format!("{{{k}, [{{a, {sa}}}]}},"));
                        sa += 1;
                    }
                    1 => {
                        kb.push_str(&format!("{{{k}, [{{b, {sb}}}]}},"));
                        sb += 1;
                    }
                    _ => {
                        if rng.next(2) == 0 {
                            ka.push_str(&format!("{{{k}, [{{a, {sa}}}]}},"));
                            sa += 1;
                        } else {
                            kb.push_str(&format!("{{{k}, [{{b, {sb}}}]}},"));
                            sb += 1;
                        }
                    }
                }
            }
            ka.pop();
            kb.pop();
            let a = awset(
                &format!("{{[{ka}], {{[{{a, {}}}], []}}}}", sa - 1).replace("{a, 0}", "{a, 1}"),
            )
            .unwrap();
            let b = awset(
                &format!("{{[{kb}], {{[{{b, {}}}], []}}}}", sb - 1).replace("{b, 0}", "{b, 1}"),
            )
            .unwrap();
            let r = a.merge(&b, TAG).unwrap().into_state(&a, &b);
            // Every key of both survives: neither saw the other's dots.
            assert_eq!(r.top_keys().len(), a.top_keys().len() + b.top_keys().len());
            let ks = r.top_keys();
            assert!(ks.windows(2).all(|w| w[0].compare(&w[1]) == Ordering::Less));
        }
    }

    #[test]
    fn dot_fun_merge_uses_ivar_and_store_order() {
        let a = mvreg("{[{{a, 1}, x}, {{b, 1}, y}], {[{a, 1}, {b, 1}], []}}").unwrap();
        let b = mvreg("{[{{a, 1}, x}, {{c, 1}, z}], {[{a, 1}, {c, 1}], []}}").unwrap();
        same(
            &m(&a, &b).unwrap(),
            &t("{[{{a, 1}, x}, {{b, 1}, y}, {{c, 1}, z}], {[{a, 1}, {b, 1}, {c, 1}], []}}"),
        );
        let c = mvreg("{[{{a, 1}, w}], {[{a, 1}], []}}").unwrap();
        assert_eq!(a.merge(&c, TAG).unwrap_err(), BadCrdt::Conflict(TAG));
        let u = mvreg("{[{{a, 1}, undefined}], {[{a, 1}], []}}").unwrap();
        same(&m(&u, &c).unwrap(), &t("{[{{a, 1}, w}], {[{a, 1}], []}}"));
        same(&m(&c, &u).unwrap(), &t("{[{{a, 1}, w}], {[{a, 1}], []}}"));
    }

    #[test]
    fn decode_rejects_bad_shapes() {
        assert_eq!(
            awset("{[], {[], []}, x}").unwrap_err(),
            BadCrdt::Malformed(TAG)
        );
        assert_eq!(
            awset("{[{x, []}], {[], []}}").unwrap_err(),
            BadCrdt::Malformed(TAG)
        );
        assert_eq!(
            awset("{[{x, [{a, 0}]}], {[], []}}").unwrap_err(),
            BadCrdt::Malformed(TAG)
        );
        assert_eq!(
            awset("{[{x, [{a, 1.0}]}], {[], []}}").unwrap_err(),
            BadCrdt::Malformed(TAG)
        );
        assert_eq!(
            awset("{[{x, [{a, 2}, {a, 1}]}], {[], []}}").unwrap_err(),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            awset("{[{x, [{1, 1}, {1.0, 1}]}], {[], []}}").unwrap_err(),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            awset("{[{y, [{a, 1}]}, {x, [{a, 2}]}], {[], []}}").unwrap_err(),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            awset("{[{1, [{a, 1}]}, {1.0, [{a, 2}]}], {[], []}}").unwrap_err(),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            awset("{[], {[{b, 1}, {a, 1}], []}}").unwrap_err(),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            awset("{[], {[{a, 0}], []}}").unwrap_err(),
            BadCrdt::Malformed(TAG)
        );
        assert_eq!(
            awset("{[], {[], [{a, 2}, {a, 2}]}}").unwrap_err(),
            BadCrdt::Unsorted(TAG)
        );
        assert_eq!(
            awset("{[{x, [{a, 1} | y]}], {[], []}}").unwrap_err(),
            BadCrdt::ImproperList(TAG)
        );
        assert_eq!(
            awset("{[], {[], [{a, 1} | z]}}").unwrap_err(),
            BadCrdt::ImproperList(TAG)
        );
        assert_eq!(awset("{x, {[], []}}").unwrap_err(), BadCrdt::Malformed(TAG));
    }

    #[test]
    fn decode_yields_when_the_budget_runs_out() {
        let mut d = Decoder::new(Limits {
            max_cells: 3,
            max_depth: 4,
            on_exhaust: BadCrdt::Yield,
        });
        let r = Causal::decode(
            &t("{[{x, [{a, 1}]}, {y, [{a, 2}]}], {[{a, 2}], []}}"),
            &Kind::Map(Box::new(Kind::Set)),
            &mut d,
            TAG,
        );
        assert_eq!(r.unwrap_err(), BadCrdt::Yield);
    }

    #[test]
    fn nested_maps_count_depth() {
        let kind = Kind::Map(Box::new(Kind::Map(Box::new(Kind::Set))));
        let p = t("{[{k, [{x, [{a, 1}]}]}], {[{a, 1}], []}}");
        let mut d = Decoder::new(Limits {
            max_cells: 100,
            max_depth: 1,
            on_exhaust: BadCrdt::TooLarge,
        });
        assert_eq!(
            Causal::decode(&p, &kind, &mut d, TAG).unwrap_err(),
            BadCrdt::TooDeep
        );
        let ok = Causal::decode(&p, &kind, &mut Decoder::new(Limits::dirty()), TAG).unwrap();
        let q = Causal::decode(
            &t("{[{k, [{x, [{a, 1}]}, {y, [{b, 1}]}]}], {[{a, 1}, {b, 1}], []}}"),
            &kind,
            &mut Decoder::new(Limits::dirty()),
            TAG,
        )
        .unwrap();
        // Nested merge: both inner keys stay.
        same(
            &m(&ok, &q).unwrap(),
            &t("{[{k, [{x, [{a, 1}]}, {y, [{b, 1}]}]}], {[{a, 1}, {b, 1}], []}}"),
        );
        // A nested key removed in Q (its dot seen, not held) disappears.
        let r = Causal::decode(
            &t("{[{k, [{y, [{b, 1}]}]}], {[{a, 1}, {b, 1}], []}}"),
            &kind,
            &mut Decoder::new(Limits::dirty()),
            TAG,
        )
        .unwrap();
        same(
            &m(&ok, &r).unwrap(),
            &t("{[{k, [{y, [{b, 1}]}]}], {[{a, 1}, {b, 1}], []}}"),
        );
    }

    #[test]
    fn encode_reuses_unchanged_terms() {
        let a = awset("{[{x, [{a, 1}]}, {y, [{a, 2}]}], {[{a, 2}], []}}").unwrap();
        let b = awset("{[{z, [{b, 1}]}], {[{b, 1}], []}}").unwrap();
        let r = a.merge(&b, TAG).unwrap().into_state(&a, &b);
        same(
            &r.encode(&TB),
            &t("{[{x, [{a, 1}]}, {y, [{a, 2}]}, {z, [{b, 1}]}], {[{a, 2}, {b, 1}], []}}"),
        );
        match &r.store {
            Store::Map(mc) => {
                assert!(mc.cells.iter().all(Option::is_some));
                // z ends B's list: the encoding stops there.
                assert_eq!(mc.shared, vec![2]);
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn merging_a_delta_shares_the_state_tail() {
        let st = t("{[{a, [{x, 1}]}, {b, [{x, 2}]}, {c, [{x, 3}]}, {d, [{x, 4}]}, {e, [{x, 5}]}], {[{x, 5}], []}}");
        let s = Causal::decode(
            &st,
            &Kind::Map(Box::new(Kind::Set)),
            &mut Decoder::new(Limits::dirty()),
            TAG,
        )
        .unwrap();
        // A delta adding `bb` (after b) and removing a's dot.
        let d = awset("{[{bb, [{y, 1}]}], {[{y, 1}], [{x, 1}]}}").unwrap();
        let r = d.merge(&s, TAG).unwrap().into_state(&d, &s);
        let out = r.encode(&TB);
        same(
            &out,
            &t("{[{b, [{x, 2}]}, {bb, [{y, 1}]}, {c, [{x, 3}]}, {d, [{x, 4}]}, {e, [{x, 5}]}], {[{x, 5}, {y, 1}], []}}"),
        );
        // The tail from c on is the state's own list cell, b its own entry.
        let nth_cell = |l: &TT, n: usize| {
            let mut cur = l.clone();
            for _ in 0..n {
                cur = match cur {
                    TT::Cons(c) => c.1.clone(),
                    other => other,
                };
            }
            cur
        };
        let (TT::Tuple(o), TT::Tuple(i)) = (&out, &st) else {
            unreachable!()
        };
        match (nth_cell(&o[0], 2), nth_cell(&i[0], 2)) {
            (TT::Cons(x), TT::Cons(y)) => assert!(std::rc::Rc::ptr_eq(&x, &y)),
            other => panic!("{other:?}"),
        }
        match (nth_cell(&o[0], 0), nth_cell(&i[0], 1)) {
            (TT::Cons(x), TT::Cons(y)) => match (&x.0, &y.0) {
                (TT::Tuple(p), TT::Tuple(q)) => assert!(std::rc::Rc::ptr_eq(p, q)),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delta_law_holds_on_random_states() {
        let mut rng = Rng(42);
        for _ in 0..300 {
            let a = random_awset(&mut rng);
            let b = random_awset(&mut rng);
            let d = a.delta(&b, TAG).unwrap();
            let x = a.merge(&b, TAG).unwrap().into_state(&a, &b);
            let y = d.merge(&b, TAG).unwrap().into_state(&d, &b);
            assert!(
                x.equal(&y),
                "a={:?}\nb={:?}\nd={:?}",
                a.encode(&TB),
                b.encode(&TB),
                d.encode(&TB)
            );
            // The delta of a state against itself adds nothing.
            let z = a.delta(&a, TAG).unwrap();
            assert!(z.merge(&a, TAG).unwrap().into_state(&z, &a).equal(&a));
        }
    }

    /// A replica-like awset: a few actors adding and removing small keys.
    fn random_awset(rng: &mut Rng) -> Causal<TT> {
        let kind = Kind::Map(Box::new(Kind::Set));
        let mut s = Causal::bottom(&kind);
        let actors = [t("a"), t("b"), t("{n, 1}")];
        for _ in 0..rng.next(12) {
            let actor = &actors[rng.next(3) as usize];
            let key = TT::Int(rng.next(5) as i64);
            let ext = s.extend(actor);
            let delta = if rng.next(3) == 0 {
                let cur = s.key_dots(&key, &ext);
                let cc = cc_from_dots(&cur, ext.rank());
                Causal::new_map_of_sets(ext, vec![], cc)
            } else {
                let seq = s.next_seq(&ext).unwrap() + rng.next(2);
                let next = ext.dot(seq);
                let cur = s.key_dots(&key, &ext);
                let mut cc = cc_from_dots(&cur, ext.rank());
                cc_add_dot(&mut cc, next, ext.rank());
                Causal::new_map_of_sets(ext, vec![(key, vec![next])], cc)
            };
            // Sometimes keep only the delta, as a replica that lost state.
            s = if rng.next(5) == 0 {
                delta
            } else {
                delta.merge(&s, TAG).unwrap().into_state(&delta, &s)
            };
        }
        s
    }
}
