//! Index atoms: where in a state a witness lives, so that an observation
//! checks only the pending updates whose part of the state changed.
//!
//! Every type's state is read as a product of small lattices, one per
//! *position*: a set element, a counter's actor, a dot of a causal context,
//! a map key followed by the positions of its value, and so on. At each
//! position a state has a *rank*, a `u64` that only grows as the state
//! inflates (0: nothing there). [`atoms`] lists the positions a state
//! mentions with their ranks; it is computed from the encoded term and
//! dispatches once on the type.
//!
//! What the tracker relies on (checked for all 19 types by
//! `prop_index_complete_*` in `tests/laws.rs`): if a witness `W` is not
//! held by `Last` but is held by `S = Last ⊔ D`, then some atom `(p, r)` of
//! `W` has its position `p` among the atoms of `D`, with
//! `lo ≤ r ≤ hi` for the range [`View::changed`] gives for `p`. The index
//! only narrows the candidates: each candidate is still checked with the
//! type's own `is_inflation`, so a hash collision or a saturated rank costs
//! an extra check, never a wrong answer.
//!
//! Positions are hashes of the terms that name them. Terms that are `==`
//! hash alike (numbers are hashed by their `f64` value), so `1` and `1.0`
//! meet at one position, as they do in an orddict.
//!
//! When the atoms of a state would be too many ([`ATOM_LIMIT`], e.g. a
//! compressed causal context covering a million dots) or the term is not
//! understood, [`atoms`] gives `None`: the witness is then checked on every
//! observation, and an observation with such a change checks everything.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::owned::{OwnedBuilder, OwnedTerm};
use crate::Crdt;

/// Most atoms [`atoms`] lists for one state.
pub const ATOM_LIMIT: usize = 1 << 18;

/// One position of a state and its rank there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexAtom {
    /// The position, a hash of the terms naming it.
    pub pos: u64,
    /// The rank at the position (0: nothing there); grows as the state inflates.
    pub rank: u64,
    /// Whether a witness not held at this position has a rank above the
    /// state's there, so that a change opens only the ranks above the old
    /// one. Not so where types' inflation is not by position (awset_ps
    /// event ids: its inflation stops at the first smaller counter).
    pub narrows: bool,
}

/// The index atoms of a state (see the module docs), or `None`: every
/// position it mentions, for a node's state or its change.
pub fn atoms(c: &Crdt<OwnedTerm>) -> Option<Vec<IndexAtom>> {
    atoms_of_term(&c.encode(&OwnedBuilder))
}

/// The index atoms of a witness: as [`atoms`], without the positions a
/// witness needs no atom at (a gmap key whose value has atoms of its own).
pub fn witness_atoms(c: &Crdt<OwnedTerm>) -> Option<Vec<IndexAtom>> {
    witness_atoms_of_term(&c.encode(&OwnedBuilder))
}

/// [`atoms`] of an encoded `{Type, Payload}` term.
pub fn atoms_of_term(t: &OwnedTerm) -> Option<Vec<IndexAtom>> {
    walk(t, false)
}

/// [`witness_atoms`] of an encoded `{Type, Payload}` term.
pub fn witness_atoms_of_term(t: &OwnedTerm) -> Option<Vec<IndexAtom>> {
    walk(t, true)
}

/// Whether the atoms of an encoded state (or change) number at most
/// `limit` (and are understood): a small term whose compressed causal
/// context covers many dots lists one atom per dot. Costs at most about
/// `limit` steps beyond reading the term.
pub fn atoms_within(t: &OwnedTerm, limit: usize) -> bool {
    walk_within(t, false, limit.min(ATOM_LIMIT)).is_some()
}

fn walk(t: &OwnedTerm, witness: bool) -> Option<Vec<IndexAtom>> {
    walk_within(t, witness, ATOM_LIMIT)
}

fn walk_within(t: &OwnedTerm, witness: bool, limit: usize) -> Option<Vec<IndexAtom>> {
    let mut out = Vec::new();
    let mut cx = Cx {
        out: &mut out,
        depth: 0,
        witness,
        limit,
    };
    cx.crdt(0, t)?;
    Some(out)
}

/// The one atom of a witness that no state holds unless it is identical
/// to the witness: an awset_ps delta (its `AllEvents` a bare event set;
/// types' `is_inflation` needs vclocks on both sides). Its position is one
/// no state lists, so such a witness is checked only where every pending
/// witness is ([`Filter::All`](super::Filter::All): a node's first
/// observation, one out of order, or a node state that is itself such a
/// delta).
pub fn identical_only() -> IndexAtom {
    IndexAtom {
        pos: pos(0, 32, &[]).unwrap_or(u64::MAX),
        rank: 1,
        narrows: true,
    }
}

/// Whether, for states of type `tag` (lasp-lang/types' own, built by its
/// operations and merges), a state holds a witness exactly when its rank
/// is at least the witness's at each of the witness's positions
/// (`prop_ranks_decide_*` in `tests/laws.rs`). Then [`View::covers`]
/// answers for `is_inflation` without reading the state. Not so for
/// awset_ps (its inflation stops at the first smaller counter), ivar and
/// pair (values are compared), gmap (its values may be of any type) and
/// bcounter (its `is_inflation` raises on a shared transfer).
pub fn ranks_decide(tag: crate::Atom) -> bool {
    use crate::Atom as A;
    matches!(
        tag,
        A::StateGset
            | A::StateTwopset
            | A::StateGcounter
            | A::StatePncounter
            | A::StateOrset
            | A::StateAwset
            | A::StateEwflag
            | A::StateDwflag
            | A::StateMaxInt
            | A::StateBoolean
            | A::StateLexcounter
            | A::StateLwwregister
            | A::StateMvregister
            | A::StateAwmap
    )
}

/// Per node: the rank of its state at every position it mentioned.
#[derive(Debug, Default, Clone)]
pub struct View {
    ranks: HashMap<u64, u64>,
}

impl View {
    /// The view of a whole state's atoms.
    pub fn of(atoms: &[IndexAtom]) -> View {
        let mut v = View::default();
        v.changed(atoms);
        v
    }

    /// The ranges of ranks a change `d` (the atoms of what the node's state
    /// gained) opens, as `(pos, lo, hi)`: a witness atom at `pos` whose rank
    /// is within `lo..=hi` may have become held. Remembers the new ranks (a
    /// join keeps the larger rank at each position).
    pub fn changed(&mut self, d: &[IndexAtom]) -> Vec<(u64, u64, u64)> {
        let mut out = Vec::with_capacity(d.len());
        for a in d {
            let old = self.ranks.get(&a.pos).copied().unwrap_or(0);
            if a.rank > old {
                self.ranks.insert(a.pos, a.rank);
                // A witness not held at `pos` before had a rank above `old`
                // (equal when the rank saturated).
                let lo = match (a.narrows, old) {
                    (false, _) => 0,
                    (true, u64::MAX) => old,
                    (true, _) => old + 1,
                };
                out.push((a.pos, lo.min(a.rank), a.rank));
            }
        }
        out
    }

    /// Whether the ranks cover every atom of `w`: for a type whose ranks
    /// decide ([`ranks_decide`]), whether the state holds the witness
    /// (unless a rank saturated: see [`View::decides`]); for any type, a
    /// necessary condition.
    pub fn covers(&self, w: &[IndexAtom]) -> bool {
        w.iter()
            .all(|a| self.ranks.get(&a.pos).copied().unwrap_or(0) >= a.rank)
    }

    /// Whether [`covers`](View::covers) can be trusted for `w` on a type
    /// whose ranks decide: no rank of `w` saturated.
    pub fn decides(w: &[IndexAtom]) -> bool {
        w.iter().all(|a| a.rank < u64::MAX)
    }

    /// Whether every rank remembered here is at most `other`'s: for a type
    /// whose ranks decide, whether `other`'s state holds this one's.
    pub fn within(&self, other: &View) -> bool {
        self.ranks.len() <= other.ranks.len()
            && self
                .ranks
                .iter()
                .all(|(p, r)| other.ranks.get(p).is_some_and(|o| o >= r))
    }

    /// Positions remembered.
    pub fn len(&self) -> usize {
        self.ranks.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }
}

// ---- hashing ----

/// A hash of `t` under which `==` terms agree.
fn term_hash<H: Hasher>(t: &OwnedTerm, h: &mut H, depth: usize) -> Option<()> {
    // Terms nested deeper are not indexed (the witness is then checked on
    // every observation): hashing stays within a bounded stack.
    if depth > MAX_TERM_DEPTH {
        return None;
    }
    match t {
        OwnedTerm::Int(i) => {
            0u8.hash(h);
            num_bits(*i as f64).hash(h);
        }
        // A float beyond the i128 range can only equal a bignum.
        OwnedTerm::Float(f) if f.abs() >= 1.7e38 => {
            1u8.hash(h);
            (*f < 0.0).hash(h);
        }
        OwnedTerm::Float(f) => {
            0u8.hash(h);
            num_bits(*f).hash(h);
        }
        // Bignums meet every other bignum (or huge float) of their sign.
        OwnedTerm::BigInt(b) => {
            1u8.hash(h);
            b.is_negative().hash(h);
        }
        OwnedTerm::Tuple(es) => {
            2u8.hash(h);
            es.len().hash(h);
            for e in es.iter() {
                term_hash(e, h, depth + 1)?;
            }
        }
        OwnedTerm::Nil => 3u8.hash(h),
        OwnedTerm::List(_) => {
            4u8.hash(h);
            match t.list_parts() {
                Some((es, tail)) => {
                    es.len().hash(h);
                    for e in es {
                        term_hash(e, h, depth + 1)?;
                    }
                    term_hash(tail, h, depth + 1)?;
                }
                None => 5u8.hash(h),
            }
        }
        OwnedTerm::Map(ps) => {
            6u8.hash(h);
            for (k, v) in ps.iter() {
                term_hash(k, h, depth + 1)?;
                term_hash(v, h, depth + 1)?;
            }
        }
        // Everything else is equal only when identical: its encoding names it.
        other => {
            7u8.hash(h);
            crate::etf::encode(other).hash(h);
        }
    }
    Some(())
}

fn num_bits(f: f64) -> u64 {
    if f == 0.0 {
        0
    } else {
        f.to_bits()
    }
}

fn pos(parent: u64, tag: u8, terms: &[&OwnedTerm]) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parent.hash(&mut h);
    tag.hash(&mut h);
    for t in terms {
        term_hash(t, &mut h, 0)?;
    }
    Some(h.finish())
}

fn pos_n(parent: u64, tag: u8, t: &OwnedTerm, n: u64) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parent.hash(&mut h);
    tag.hash(&mut h);
    term_hash(t, &mut h, 0)?;
    n.hash(&mut h);
    Some(h.finish())
}

// ---- ranks ----

/// `1 + n` for a non-negative integer, saturating; `None` if negative.
fn count_rank(t: &OwnedTerm) -> Option<u64> {
    match t {
        OwnedTerm::Int(i) if *i >= 0 => {
            Some(u64::try_from(*i).unwrap_or(u64::MAX).saturating_add(1))
        }
        OwnedTerm::BigInt(b) if !b.is_negative() => Some(u64::MAX),
        _ => None,
    }
}

/// An order-preserving rank of any integer (for timestamps), `>= 1`.
fn int_rank(t: &OwnedTerm) -> Option<u64> {
    let v = match t {
        OwnedTerm::Int(i) => (*i).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        OwnedTerm::BigInt(b) if b.is_negative() => i64::MIN,
        OwnedTerm::BigInt(_) => i64::MAX,
        _ => return None,
    };
    Some(((v as u64) ^ (1 << 63)).saturating_add(1).max(1))
}

// ---- walking states ----

fn list(t: &OwnedTerm) -> Option<Vec<&OwnedTerm>> {
    match t {
        OwnedTerm::Nil => Some(Vec::new()),
        OwnedTerm::List(_) => {
            let (es, tail) = t.list_parts()?;
            matches!(tail, OwnedTerm::Nil).then_some(es)
        }
        _ => None,
    }
}

fn pair(t: &OwnedTerm) -> Option<(&OwnedTerm, &OwnedTerm)> {
    match t {
        OwnedTerm::Tuple(es) if es.len() == 2 => Some((&es[0], &es[1])),
        _ => None,
    }
}

fn is_atom(t: &OwnedTerm, name: &str) -> bool {
    t.atom_name() == Some(name)
}

/// How a causal dot store nests (awmap's value types).
#[derive(Clone, Copy)]
enum Store<'a> {
    /// A dot set (ewflag, dwflag, an awset's values).
    Set,
    /// A dot fun (mvregister).
    Fun,
    /// A dot map of `Key -> store` (awset: of dot sets; awmap: of its values).
    Map(&'a OwnedTerm),
}

struct Cx<'a> {
    out: &'a mut Vec<IndexAtom>,
    depth: usize,
    /// Listing a witness's atoms (see [`witness_atoms`]).
    witness: bool,
    /// Most atoms listed ([`ATOM_LIMIT`] unless asked for fewer).
    limit: usize,
}

const MAX_DEPTH: usize = 64;

/// Deepest element term hashed.
const MAX_TERM_DEPTH: usize = 256;

impl Cx<'_> {
    fn push(&mut self, pos: u64, rank: u64, narrows: bool) -> Option<()> {
        if self.out.len() >= self.limit {
            return None;
        }
        self.out.push(IndexAtom { pos, rank, narrows });
        Some(())
    }

    /// A whole `{Type, Payload}` under position `p`.
    fn crdt(&mut self, p: u64, t: &OwnedTerm) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let (tag, payload) = pair(t)?;
        let r = self.payload(p, tag.atom_name()?, payload);
        self.depth -= 1;
        r
    }

    fn payload(&mut self, p: u64, ty: &str, x: &OwnedTerm) -> Option<()> {
        match ty {
            "state_gset" => {
                for e in list(x)? {
                    self.push(pos(p, 1, &[e])?, 1, true)?;
                }
            }
            "state_twopset" => {
                let (adds, rmvs) = pair(x)?;
                for e in list(adds)? {
                    self.push(pos(p, 2, &[e])?, 1, true)?;
                }
                for e in list(rmvs)? {
                    self.push(pos(p, 3, &[e])?, 1, true)?;
                }
            }
            "state_gcounter" => {
                for e in list(x)? {
                    let (actor, n) = pair(e)?;
                    self.push(pos(p, 4, &[actor])?, count_rank(n)?, true)?;
                }
            }
            "state_pncounter" => self.pncounter(p, x)?,
            "state_lexcounter" => {
                for e in list(x)? {
                    let (actor, lr) = pair(e)?;
                    let (l, r) = pair(lr)?;
                    self.push(pos(p, 7, &[actor])?, lex_rank(l, r)?, true)?;
                }
            }
            "state_max_int" => self.push(pos(p, 8, &[])?, count_rank(x)?, true)?,
            "state_boolean" => self.push(pos(p, 9, &[])?, count_rank(x)?, true)?,
            "state_lwwregister" => {
                let (ts, _) = pair(x)?;
                self.push(pos(p, 10, &[])?, int_rank(ts)?, true)?;
            }
            "state_ivar" => {
                let r = if is_atom(x, "undefined") { 1 } else { 2 };
                self.push(pos(p, 11, &[])?, r, true)?;
            }
            "state_orset" => {
                for e in list(x)? {
                    let (elem, tokens) = pair(e)?;
                    for tk in list(tokens)? {
                        let (token, active) = pair(tk)?;
                        // A removed token (`false`) is above an active one.
                        let r = match active.atom_name()? {
                            "true" => 1,
                            "false" => 2,
                            _ => return None,
                        };
                        self.push(pos(p, 12, &[elem, token])?, r, true)?;
                    }
                }
            }
            "state_awset" => self.causal(p, x, Store::Map(&NIL))?,
            "state_ewflag" | "state_dwflag" => self.causal(p, x, Store::Set)?,
            "state_mvregister" => self.causal(p, x, Store::Fun)?,
            "state_awmap" => {
                let (ctype, dsc) = pair(x)?;
                self.causal(p, dsc, Store::Map(ctype))?;
            }
            "state_gmap" => {
                let (_ctype, entries) = pair(x)?;
                for e in list(entries)? {
                    let (k, v) = pair(e)?;
                    let kp = pos(p, 13, &[k])?;
                    // The key itself: a change under it shows here too; a
                    // witness needs it only when its value has no atoms.
                    let before = self.out.len();
                    self.crdt(kp, v)?;
                    if !self.witness || self.out.len() == before {
                        self.push(kp, 1, true)?;
                    }
                }
            }
            "state_pair" => {
                let (a, b) = pair(x)?;
                self.crdt(pos(p, 14, &[])?, a)?;
                self.crdt(pos(p, 15, &[])?, b)?;
            }
            "state_bcounter" => {
                let (pn, g) = pair(x)?;
                let (pn_tag, pn) = pair(pn)?;
                let (g_tag, g) = pair(g)?;
                if !is_atom(pn_tag, "state_pncounter") || !is_atom(g_tag, "state_gmap") {
                    return None;
                }
                self.pncounter(pos(p, 16, &[])?, pn)?;
                let (_, transfers) = pair(g)?;
                for e in list(transfers)? {
                    let (k, n) = pair(e)?;
                    self.push(pos(p, 17, &[k])?, count_rank(n)?, true)?;
                }
            }
            "state_awset_ps" => self.awset_ps(p, x)?,
            _ => return None,
        }
        Some(())
    }

    fn pncounter(&mut self, p: u64, x: &OwnedTerm) -> Option<()> {
        for e in list(x)? {
            let (actor, pn) = pair(e)?;
            let (inc, dec) = pair(pn)?;
            self.push(pos(p, 5, &[actor])?, count_rank(inc)?, true)?;
            self.push(pos(p, 6, &[actor])?, count_rank(dec)?, true)?;
        }
        Some(())
    }

    /// A causal state `{Store, {Compressed, Cloud}}`: one position per dot
    /// of the context, rank 1 while the dot is in the store, 2 once removed
    /// (a causal join keeps, per dot, the larger of the two).
    fn causal(&mut self, p: u64, x: &OwnedTerm, kind: Store<'_>) -> Option<()> {
        let (store, cc) = pair(x)?;
        let mut live: HashMap<u64, ()> = HashMap::new();
        self.store_dots(p, store, kind, &mut live, 0)?;
        let (compressed, cloud) = pair(cc)?;
        let mut n = 0usize;
        for e in list(compressed)? {
            let (actor, max) = pair(e)?;
            let max = match max {
                OwnedTerm::Int(m) if *m >= 0 => u64::try_from(*m).ok()?,
                _ => return None,
            };
            n = n.saturating_add(usize::try_from(max).ok()?);
            if n > self.limit {
                return None;
            }
            for s in 1..=max {
                let dp = pos_n(p, 20, actor, s)?;
                let r = if live.contains_key(&dp) { 1 } else { 2 };
                self.push(dp, r, true)?;
            }
        }
        for d in list(cloud)? {
            let dp = dot_pos(p, d)?;
            let r = if live.contains_key(&dp) { 1 } else { 2 };
            self.push(dp, r, true)?;
        }
        Some(())
    }

    fn store_dots(
        &mut self,
        p: u64,
        store: &OwnedTerm,
        kind: Store<'_>,
        live: &mut HashMap<u64, ()>,
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_DEPTH || live.len() > self.limit {
            return None;
        }
        match kind {
            Store::Set => {
                for d in list(store)? {
                    live.insert(dot_pos(p, d)?, ());
                }
            }
            Store::Fun => {
                for e in list(store)? {
                    let (d, _) = pair(e)?;
                    live.insert(dot_pos(p, d)?, ());
                }
            }
            Store::Map(ctype) => {
                let inner = value_store(ctype)?;
                for e in list(store)? {
                    let (_, sub) = pair(e)?;
                    self.store_dots(p, sub, inner, live, depth + 1)?;
                }
            }
        }
        Some(())
    }

    /// awset_ps: per event id, its counter in `AllEvents` (a chain); per
    /// event that `AllEvents` holds but neither the event store nor the
    /// filtered-out set does (a removed event), a position of rank 2. A live
    /// event needs none: `AllEvents` covers it.
    fn awset_ps(&mut self, p: u64, x: &OwnedTerm) -> Option<()> {
        let (ds, filtered, all) = match x {
            OwnedTerm::Tuple(es) if es.len() == 3 => (&es[0], &es[1], &es[2]),
            _ => return None,
        };
        let (_, event_store) = pair(ds)?;
        // Live event counters per id position.
        let mut live: HashMap<u64, Vec<u64>> = HashMap::new();
        let mut add_live = |ev: &OwnedTerm| -> Option<()> {
            let (id, n) = pair(ev)?;
            live.entry(pos(p, 30, &[id])?).or_default().push(seq_of(n)?);
            Some(())
        };
        for e in list(event_store)? {
            add_live(pair(e)?.0)?;
        }
        for ev in list(filtered)? {
            add_live(ev)?;
        }
        for v in live.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        match pair(all) {
            Some((tag, vc)) if is_atom(tag, "vclock") => {
                for e in list(vc)? {
                    let (id, c) = pair(e)?;
                    self.push(pos(p, 30, &[id])?, count_rank(c)?, false)?;
                    let c = seq_of(c)?;
                    let ls = live.get(&pos(p, 30, &[id])?).map_or(&[][..], |v| &v[..]);
                    // The gaps of 1..=c between live counters.
                    let mut next = 1u64;
                    for &l in ls.iter().filter(|&&l| l <= c) {
                        for n in next..l {
                            self.push(pos_n(p, 31, id, n)?, 2, true)?;
                        }
                        next = l + 1;
                    }
                    for n in next..=c {
                        self.push(pos_n(p, 31, id, n)?, 2, true)?;
                    }
                }
            }
            _ => {
                let mut max: HashMap<u64, (&OwnedTerm, u64)> = HashMap::new();
                for ev in list(all)? {
                    let (id, c) = pair(ev)?;
                    let n = seq_of(c)?;
                    let ip = pos(p, 30, &[id])?;
                    if live.get(&ip).is_none_or(|v| v.binary_search(&n).is_err()) {
                        self.push(pos_n(p, 31, id, n)?, 2, true)?;
                    }
                    let e = max.entry(ip).or_insert((c, n));
                    if n > e.1 {
                        *e = (c, n);
                    }
                }
                let mut max: Vec<_> = max.into_iter().collect();
                max.sort_unstable_by_key(|x| x.0);
                for (ip, (c, _)) in max {
                    self.push(ip, count_rank(c)?, false)?;
                }
            }
        }
        Some(())
    }
}

fn seq_of(t: &OwnedTerm) -> Option<u64> {
    match t {
        OwnedTerm::Int(n) if *n >= 0 => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// `[]`: as an awmap `CType`, "the dot sets of an awset's own dot map".
static NIL: OwnedTerm = OwnedTerm::Nil;

fn dot_pos(p: u64, d: &OwnedTerm) -> Option<u64> {
    let (actor, seq) = pair(d)?;
    let s = match seq {
        OwnedTerm::Int(s) => u64::try_from(*s).ok()?,
        _ => return None,
    };
    pos_n(p, 20, actor, s)
}

/// The store kind of an awmap's values, from its `CType`.
fn value_store(ctype: &OwnedTerm) -> Option<Store<'_>> {
    // awset's own dot map holds dot sets.
    if matches!(ctype, OwnedTerm::Nil) {
        return Some(Store::Set);
    }
    let (name, args) = match ctype {
        OwnedTerm::Atom(_) => (ctype, None),
        OwnedTerm::Tuple(es) if es.len() == 2 => (&es[0], Some(&es[1])),
        _ => return None,
    };
    match name.atom_name()? {
        "state_awset" => Some(Store::Map(&NIL)),
        "state_mvregister" => Some(Store::Fun),
        "state_ewflag" | "state_dwflag" => Some(Store::Set),
        "state_awmap" => {
            let sub = match args.and_then(list) {
                Some(v) if v.len() == 1 => v[0],
                _ => return None,
            };
            Some(Store::Map(sub))
        }
        _ => None,
    }
}

/// An order-preserving rank of a lexcounter entry `{Left, Right}` (by Left,
/// then Right), `>= 1`; `None` for a negative Left.
fn lex_rank(l: &OwnedTerm, r: &OwnedTerm) -> Option<u64> {
    const L_MAX: i128 = 1 << 30;
    let l = match l {
        OwnedTerm::Int(l) if *l >= 0 => *l,
        OwnedTerm::BigInt(b) if !b.is_negative() => return Some(u64::MAX),
        _ => return None,
    };
    if l >= L_MAX {
        return Some(u64::MAX);
    }
    let r = match r {
        OwnedTerm::Int(r) => *r,
        OwnedTerm::BigInt(b) if b.is_negative() => i128::MIN,
        OwnedTerm::BigInt(_) => i128::MAX,
        _ => return None,
    };
    let r = (r.saturating_add(1 << 31)).clamp(0, (1 << 32) - 1) as u64;
    Some(((l as u64) << 32 | r) + 1)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::owned::OwnedTerm as T;

    fn ranks(t: &T) -> Vec<(u64, u64)> {
        let mut v: Vec<_> = atoms_of_term(t)
            .expect("atoms")
            .iter()
            .map(|a| (a.pos, a.rank))
            .collect();
        v.sort();
        v
    }

    fn st(ty: &str, payload: T) -> T {
        T::tuple([T::atom(ty), payload])
    }

    #[test]
    fn numbers_that_compare_equal_meet() {
        let a = st("state_gset", T::list([T::int(1)]));
        let b = st("state_gset", T::list([T::float(1.0)]));
        assert_eq!(ranks(&a), ranks(&b));
        let c = st("state_gset", T::list([T::int(2)]));
        assert_ne!(ranks(&a), ranks(&c));
    }

    #[test]
    fn counters_rank_by_count() {
        let g = |n: i128| {
            st(
                "state_gcounter",
                T::list([T::tuple([T::atom("a"), T::int(n)])]),
            )
        };
        let (r1, r5) = (ranks(&g(1)), ranks(&g(5)));
        assert_eq!(r1[0].0, r5[0].0);
        assert!(r1[0].1 < r5[0].1);
    }

    #[test]
    fn lww_timestamps_keep_their_order() {
        let l = |ts: i128| st("state_lwwregister", T::tuple([T::int(ts), T::atom("v")]));
        let rs: Vec<u64> = [-5, 0, 7, 1 << 70]
            .iter()
            .map(|&t| ranks(&l(t))[0].1)
            .collect();
        assert!(rs.windows(2).all(|w| w[0] < w[1]), "{rs:?}");
    }

    #[test]
    fn lex_ranks_order_left_then_right() {
        let r = |l: i128, x: i128| lex_rank(&T::int(l), &T::int(x)).unwrap();
        assert!(r(0, 5) < r(1, -3));
        assert!(r(1, -3) < r(1, 4));
        assert!(r(1, 4) < r(1 << 40, -9));
    }

    #[test]
    fn a_removed_dot_ranks_above_a_live_one() {
        let dot = T::tuple([T::atom("a"), T::int(1)]);
        let cc = T::tuple([T::list([T::tuple([T::atom("a"), T::int(1)])]), T::Nil]);
        let live = st(
            "state_awset",
            T::tuple([
                T::list([T::tuple([T::atom("x"), T::list([dot])])]),
                cc.clone(),
            ]),
        );
        let removed = st("state_awset", T::tuple([T::Nil, cc]));
        let (l, r) = (ranks(&live), ranks(&removed));
        assert_eq!((l.len(), r.len()), (1, 1));
        assert_eq!(l[0].0, r[0].0);
        assert_eq!((l[0].1, r[0].1), (1, 2));
    }

    #[test]
    fn deeply_nested_elements_are_not_indexed() {
        let mut e = T::atom("x");
        for _ in 0..1_000 {
            e = T::tuple([e]);
        }
        assert!(atoms_of_term(&st("state_gset", T::list([e]))).is_none());
    }

    #[test]
    fn huge_contexts_are_not_expanded() {
        let cc = T::tuple([T::list([T::tuple([T::atom("a"), T::int(1 << 30)])]), T::Nil]);
        assert!(atoms_of_term(&st("state_awset", T::tuple([T::Nil, cc]))).is_none());
        // A light term may list many atoms: a context over 5,000 dots.
        let cc = |n| T::tuple([T::list([T::tuple([T::atom("a"), T::int(n)])]), T::Nil]);
        let flag = |n| st("state_ewflag", T::tuple([T::Nil, cc(n)]));
        assert!(atoms_within(&flag(4_000), 4_096));
        assert!(!atoms_within(&flag(5_000), 4_096));
        assert_eq!(atoms_of_term(&flag(5_000)).map(|a| a.len()), Some(5_000));
    }

    #[test]
    fn a_view_opens_only_the_new_part_of_a_chain() {
        let mut v = View::default();
        let a = |rank| IndexAtom {
            pos: 9,
            rank,
            narrows: true,
        };
        assert_eq!(v.changed(&[a(3)]), vec![(9, 1, 3)]);
        assert_eq!(v.changed(&[a(7)]), vec![(9, 4, 7)]);
        assert!(v.changed(&[a(5)]).is_empty());
        assert!(v.covers(&[a(7)]) && !v.covers(&[a(8)]));
        assert!(v.within(&View::of(&[a(7)])) && !v.within(&View::of(&[a(6)])));
    }
}
