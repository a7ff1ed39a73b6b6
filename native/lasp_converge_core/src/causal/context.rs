//! Causal contexts `{Compressed, Cloud}`, their union with compression,
//! and the ordsets operations on resolved dots.

use super::*;

// ---------------------------------------------------------------------------
// Causal context
// ---------------------------------------------------------------------------

/// A causal context `{Compressed, Cloud}` over an actor table.
#[derive(Debug, Clone, Default)]
pub struct Cc {
    /// `(actor, max_seq)`, strictly ascending by actor rank.
    pub(super) compressed: Vec<(u32, u64)>,
    /// Dots strictly ascending by `(rank, seq)`.
    pub(super) cloud: Vec<Dot>,
}

impl Cc {
    /// Whether the context is empty (`{[], []}`).
    pub fn is_empty(&self) -> bool {
        self.compressed.is_empty() && self.cloud.is_empty()
    }

    pub(super) fn encode<T: Term, B: Builder<T = T>>(&self, actors: &Actors<T>, b: &B) -> T {
        let mut comp = b.nil();
        for &(a, n) in self.compressed.iter().rev() {
            comp = b.cons(b.pair(actors.term(a).clone(), seq_term(b, n)), comp);
        }
        let cloud = encode_dots(&self.cloud, actors, b);
        b.pair(comp, cloud)
    }

    pub(super) fn remap_check(&mut self, remap: &[u32], rank: &[u32], tag: Atom) -> Result<()> {
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
pub(super) struct CcIndex {
    /// Compressed maximum per rank (0 when absent).
    pub(super) comp: Vec<u64>,
    /// Cloud sequences of rank `r` are `seqs[start[r]..start[r + 1]]`.
    pub(super) start: Vec<usize>,
    pub(super) seqs: Vec<u64>,
}

impl CcIndex {
    pub(super) fn new(cc: &Cc, rank_of: impl Fn(u32) -> u32, nranks: usize) -> Self {
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
    pub(super) fn cloud(&self, rank: u32) -> &[u64] {
        let r = rank as usize;
        &self.seqs[self.start[r]..self.start[r + 1]]
    }

    /// `causal_context:is_element/2`.
    #[inline]
    pub(super) fn contains(&self, rank: u32, seq: u64) -> bool {
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
pub(super) fn cc_union<T: Term>(a: &Cc, b: &Cc, u: &Unified<T>) -> (Cc, bool, bool) {
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
pub(super) fn cc_same(out: &Cc, x: &Cc, map: &[u32]) -> bool {
    out.compressed.len() == x.compressed.len()
        && out.cloud.len() == x.cloud.len()
        && out
            .compressed
            .iter()
            .zip(&x.compressed)
            .all(|(o, e)| o.0 == map[e.0 as usize] && o.1 == e.1)
        && dots_same(&out.cloud, &x.cloud, map)
}

pub(super) fn dots_same(out: &[Dot], x: &[Dot], map: &[u32]) -> bool {
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
pub(super) fn union_into(x: &[UDot], y: &[UDot], out: &mut Vec<UDot>) {
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
pub(super) fn intersection_into(x: &[UDot], y: &[UDot], out: &mut Vec<UDot>) {
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
