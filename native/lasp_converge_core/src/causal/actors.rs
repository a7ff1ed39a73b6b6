//! Actor tables: each state interns its actors once, so a dot is two
//! integers, and a merge unifies the two tables.

use super::*;

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
    pub(super) rank: u32,
    pub(super) uid: u32,
    pub(super) seq: u64,
}

impl UDot {
    #[inline]
    pub(super) fn cmp(&self, o: &UDot) -> Ordering {
        self.rank.cmp(&o.rank).then(self.seq.cmp(&o.seq))
    }
    #[inline]
    pub(super) fn same(&self, o: &UDot) -> bool {
        self.uid == o.uid && self.seq == o.seq
    }
    #[inline]
    pub(super) fn dot(&self) -> Dot {
        Dot {
            actor: self.uid,
            seq: self.seq,
        }
    }
}

/// Largest sequence number: sequences are encoded as `i64`.
pub(super) const MAX_SEQ: u64 = i64::MAX as u64;

/// No provenance.
pub(super) const NONE: usize = usize::MAX;

/// Keys one side must win in a row before the dot-map walk gallops.
pub(super) const GALLOP: usize = 7;

// ---------------------------------------------------------------------------
// Actors
// ---------------------------------------------------------------------------

/// The distinct (`=:=`) actor terms of a state, sorted in term order.
///
/// `rank[i]` numbers the `==` classes in order: two actors share a rank
/// exactly when they compare equal (e.g. `1` and `1.0`).
#[derive(Debug, Clone)]
pub struct Actors<T> {
    pub(super) terms: Vec<T>,
    pub(super) rank: Vec<u32>,
}

impl<T: Term> Actors<T> {
    pub(super) fn empty() -> Self {
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

    pub(super) fn nranks(&self) -> usize {
        self.rank.last().map_or(0, |r| *r as usize + 1)
    }

    pub(super) fn group_end(&self, i: usize) -> usize {
        let mut e = i;
        while e < self.rank.len() && self.rank[e] == self.rank[i] {
            e += 1;
        }
        e
    }

    /// The first index of each rank.
    pub(super) fn representatives(&self) -> Vec<u32> {
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
pub(super) const RECENT: usize = 8;

/// Interns actor terms while decoding: stable indices in arrival order and
/// an index sorted by term order.
pub(super) struct Interner<T> {
    pub(super) terms: Vec<T>,
    pub(super) sorted: Vec<u32>,
    /// Most recently used first.
    pub(super) recent: [u32; RECENT],
    pub(super) nrecent: usize,
}

impl<T: Term> Interner<T> {
    pub(super) fn new() -> Self {
        Interner {
            terms: Vec::new(),
            sorted: Vec::new(),
            recent: [0; RECENT],
            nrecent: 0,
        }
    }

    /// The index of `t`, adding it if no identical term is known.
    pub(super) fn intern(&mut self, t: &T) -> Result<u32> {
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

    pub(super) fn lookup_or_insert(&mut self, t: &T) -> Result<u32> {
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
    pub(super) fn finish(self) -> (Actors<T>, Vec<u32>) {
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
pub(super) struct Unified<T> {
    pub(super) actors: Actors<T>,
    pub(super) map_a: Vec<u32>,
    pub(super) map_b: Vec<u32>,
}

impl<T: Term> Unified<T> {
    #[inline]
    pub(super) fn ua(&self, d: Dot) -> UDot {
        let uid = self.map_a[d.actor as usize];
        UDot {
            rank: self.actors.rank[uid as usize],
            uid,
            seq: d.seq,
        }
    }
    #[inline]
    pub(super) fn ub(&self, d: Dot) -> UDot {
        let uid = self.map_b[d.actor as usize];
        UDot {
            rank: self.actors.rank[uid as usize],
            uid,
            seq: d.seq,
        }
    }
    pub(super) fn rank_of_a(&self, actor: u32) -> u32 {
        self.actors.rank[self.map_a[actor as usize] as usize]
    }
    pub(super) fn rank_of_b(&self, actor: u32) -> u32 {
        self.actors.rank[self.map_b[actor as usize] as usize]
    }
}

/// Merge two sorted actor tables: `O(len)` term comparisons.
pub(super) fn unify<T: Term>(a: &Actors<T>, b: &Actors<T>) -> Unified<T> {
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
