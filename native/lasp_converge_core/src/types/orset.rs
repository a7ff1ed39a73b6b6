//! `state_orset`: an observed-remove set with tombstones.
//!
//! Payload: an orddict `[{Elem, Tokens}]` where `Tokens` is an orddict
//! `[{Token, Active}]` and `Active` is `true` or `false`. Both levels are
//! strictly ascending by key. Bottom is `[]`. Every add tags the element with
//! a fresh token (`true`); a remove turns every token it has seen to `false`.
//! A `false` token is a tombstone, kept for ever, and an element whose tokens
//! are all `false` stays in the payload.
//!
//! - Merge: `orddict:merge/3` over elements, and inside it `orddict:merge/3`
//!   over tokens with `ActiveA andalso ActiveB`; on `==` keys the first
//!   argument's key term is kept, at both levels.
//! - Equal: the payloads are `==`.
//! - Inflation: every element and token of A is in B, with the same
//!   activeness or `true` going to `false`.
//! - Query: the elements with at least one `true` token, as a proper list in
//!   term order.
//! - `delta(A, B)`: as types, the join of the irreducibles
//!   `[{Elem, [{Token, Active}]}]` of A that strictly inflate B: a token B
//!   lacks (or an element B lacks), or one B holds `true` that A holds
//!   `false`. An element of A with no tokens at all, which types never
//!   produces, is shipped too when B lacks it, so that
//!   `merge(delta(A, B), B)` always equals `merge(A, B)`.
//! - Operations, as types 0.1.8:
//!   - `{add, Elem}`: `[{Elem, [{Token, true}]}]` with a fresh token;
//!   - `{add_all, Elems}`: one fresh token per list element, in list order;
//!     a repeated element keeps the last occurrence (term and token), as
//!     `orddict:store/3` does;
//!   - `{rmv, Elem}`: `[{Elem, [{Token, false}, ...]}]` over the tokens the
//!     state has for `Elem` (none when absent);
//!   - `{rmv_all, Elems}`: the join of the `rmv` deltas, in list order.
//!   - `{add_by_token, Token, Elem}`: `[{Elem, [{Token, true}]}]` with the
//!     caller's token.
//!
//! # Keeping a merge cheap
//!
//! Most of a merge's result is its inputs' own terms, so a state keeps
//! handles to them rather than rebuilding:
//!
//! - Decoding walks the payload once, validating as `Decoder::orddict` does
//!   (same errors found in the same order, every cell charged to the
//!   [`Decoder`]). Per element it keeps the `{Elem, Tokens}` term itself,
//!   the number of tokens and whether one is `true`; the tokens of the
//!   whole state go to one flat vector (no vector per element), which
//!   merge results share instead of copying. Every `STRIDE` elements it
//!   also keeps the list cell that starts there.
//! - The merge walks the elements as `orddict:merge/3` does, one
//!   comparison per element on short runs and galloping on long ones, so a
//!   small delta costs O(delta · log n) comparisons past validation. It
//!   remembers which input's terms each result entry is: an element on one
//!   side only, or whose token merge gives one side's list back, is emitted
//!   as that input's own term; only new entries build tuples and lists.
//! - When the result ends with an unchanged run of one input's entries up to
//!   that input's end, the result is a new head ending in the input's own
//!   list cell, as `orddict:merge/3` ends in Erlang.
//! - `Merged::Left`/`Right` come out of the same walk, and until both are
//!   ruled out nothing is copied.
//! - `equal` of two decoded states is one `==` of the payload terms in the
//!   VM; `is_inflation`, `delta` and `query` read the flat tokens and the
//!   per-element flags, never the token lists again.
//!
//! What is left is mostly validation: checking every token list ascending
//! compares token binaries that an Erlang `orddict:merge/3` never reads, so
//! decoding a large state costs more than Erlang merging a small delta
//! into it.
//!
//! Reference: Marc Shapiro, Nuno Preguiça, Carlos Baquero and Marek
//! Zawirski, *A comprehensive study of Convergent and Commutative Replicated
//! Data Types* (2011), <http://hal.upmc.fr/inria-00555588/>.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Cell, Term};
use crate::types::gset::op_arg;

const TAG: Atom = Atom::StateOrset;

/// The tokens of one element: `(Token, Active)`, ascending by token.
pub type Tokens<T> = Vec<(T, bool)>;

/// Which term an entry is, for building the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    /// `term` is the entry's own `{Elem, Tokens}` term in an input.
    Orig,
    /// `term` is an input's `[{Token, Active}]` list, to pair with `elem`.
    List,
    /// New: `{Elem, Tokens}` is built from the tokens (`term` is unused).
    Built,
}

/// One element and its tokens. Entries are copied in bulk, so they are
/// kept small (48 bytes in the NIF).
#[derive(Debug, Clone)]
struct Entry<T> {
    elem: T,
    /// See `Src`; for `Built`, a copy of `elem`.
    term: T,
    /// The tokens are `[start..start + len]` of token store `store`.
    start: u32,
    len: u32,
    store: u32,
    src: Src,
    /// Whether a token is `true`.
    active: bool,
}

/// The store of the tokens a state built itself (its `toks`).
const OWN: u32 = u32::MAX;

/// Every how many entries a decoded state keeps the list cell that starts
/// there, to find the cell of any entry by walking fewer cells than this.
const STRIDE: usize = 16;

/// A token count or index as stored in an entry.
fn index(n: usize) -> Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| *n != OWN)
        .ok_or(BadCrdt::TooLarge)
}

/// An observed-remove set with tombstones.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::lattice::{Lattice, Merged};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::ORSet;
///
/// let tok = |s: &str| T::bin(s.as_bytes());
/// let a = ORSet::from_entries(vec![(T::atom("x"), vec![(tok("t1"), true)])]);
/// // Concurrently, another replica removed x (token t1 became false).
/// let b = ORSet::from_entries(vec![(T::atom("x"), vec![(tok("t1"), false)])]);
/// assert!(matches!(a.merge(&b).unwrap(), Merged::Right));
/// let empty = OwnedBuilder.list(&[]);
/// assert_eq!(b.query(&OwnedBuilder).unwrap(), empty);
/// assert_eq!(a.query(&OwnedBuilder).unwrap(), OwnedBuilder.list(&[T::atom("x")]));
/// ```
#[derive(Debug, Clone)]
pub struct ORSet<T> {
    /// Ascending by element.
    entries: Vec<Entry<T>>,
    /// Token stores of the states this one was decoded or merged from,
    /// shared rather than copied.
    stores: Vec<Arc<Vec<(T, bool)>>>,
    /// The tokens of the entries this state built itself (store `OWN`).
    toks: Vec<(T, bool)>,
    /// `entries[tail_from..]` (when not empty) are exactly an input's list
    /// from one of its cells on: see `ORSet::cell_at`.
    tail_from: usize,
    /// Cells of that input's list, every `STRIDE` entries of it from its
    /// first; entry `k` of this state is entry `k + shift` of that list.
    anchors: Vec<T>,
    shift: isize,
    /// The whole payload term, for a state decoded from one.
    payload: Option<T>,
}

impl<T: Term + PartialEq> PartialEq for ORSet<T> {
    fn eq(&self, other: &Self) -> bool {
        self.to_entries() == other.to_entries()
    }
}

/// Validate a token list in place: a proper list of `{Token, true | false}`
/// strictly ascending by token, each cell charged to `d`, the tokens pushed
/// onto `out`. Gives whether one is `true`. The errors, and the order they
/// are found in, are those of `Decoder::orddict`.
#[inline]
fn check_tokens<T: Term>(list: T, d: &mut Decoder, out: &mut Vec<(T, bool)>) -> Result<bool> {
    let first = out.len();
    let mut cur = list;
    let mut active = false;
    let mut unsorted = false;
    loop {
        match cur.cell() {
            Cell::Nil => break,
            Cell::Cons(h, t) => {
                d.spend(1)?;
                let (k, v) = h.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
                let v = v.as_bool().ok_or(BadCrdt::Malformed(TAG))?;
                active |= v;
                if !unsorted && out.len() > first {
                    unsorted = out[out.len() - 1].0.compare(&k) != Ordering::Less;
                }
                out.push((k, v));
                cur = t;
            }
            Cell::NotList => {
                return Err(if out.len() == first {
                    BadCrdt::Malformed(TAG)
                } else {
                    BadCrdt::ImproperList(TAG)
                })
            }
        }
    }
    if unsorted {
        return Err(BadCrdt::Unsorted(TAG));
    }
    Ok(active)
}

impl<T: Term> ORSet<T> {
    fn empty() -> Self {
        ORSet {
            entries: Vec::new(),
            stores: Vec::new(),
            toks: Vec::new(),
            tail_from: 0,
            anchors: Vec::new(),
            shift: 0,
            payload: None,
        }
    }

    /// A state of `(Elem, Tokens)` pairs, which must be ascending by
    /// element with each token list ascending by token (not checked), and
    /// fewer than `u32::MAX` tokens in all.
    pub fn from_entries(entries: Vec<(T, Tokens<T>)>) -> Self {
        let mut s = Self::empty();
        for (elem, tokens) in entries {
            let start = s.toks.len();
            s.toks.extend(tokens);
            s.push_built(elem, start, s.toks.len() - start);
        }
        s.tail_from = s.entries.len();
        s
    }

    /// The state as `(Elem, Tokens)` pairs, ascending by element.
    pub fn to_entries(&self) -> Vec<(T, Tokens<T>)> {
        self.entries
            .iter()
            .map(|e| (e.elem.clone(), self.tokens(e).to_vec()))
            .collect()
    }

    /// The delta of `{add_by_token, Token, Elem}`: `[{Elem, [{Token, true}]}]`.
    pub fn add_by_token(token: T, elem: T) -> Self {
        Self::from_entries(vec![(elem, vec![(token, true)])])
    }

    /// A new entry for `elem` whose tokens are `toks[start..start + len]`
    /// (both below `u32::MAX`: checked by the callers that could exceed it).
    fn push_built(&mut self, elem: T, start: usize, len: usize) {
        let (start, len) = (start as u32, len as u32);
        let mut e = Entry {
            term: elem.clone(),
            elem,
            start,
            len,
            store: OWN,
            src: Src::Built,
            active: false,
        };
        e.active = self.tokens(&e).iter().any(|(_, a)| *a);
        self.entries.push(e);
    }

    /// The number of tokens in this state's stores (at least as many as
    /// its entries hold).
    fn token_count(&self) -> usize {
        self.toks.len() + self.stores.iter().map(|s| s.len()).sum::<usize>()
    }

    /// The tokens of one of this state's entries.
    #[inline]
    fn tokens(&self, e: &Entry<T>) -> &[(T, bool)] {
        let store: &[(T, bool)] = match e.store {
            OWN => &self.toks,
            s => self.stores.get(s as usize).map_or(&[], |v| v.as_slice()),
        };
        let start = e.start as usize;
        store.get(start..start + e.len as usize).unwrap_or(&[])
    }

    /// The input's list cell that starts at entry `k` (`k >= tail_from`).
    fn cell_at(&self, k: usize) -> Option<T> {
        let g = usize::try_from(k as isize + self.shift).ok()?;
        let mut cell = self.anchors.get(g / STRIDE)?.clone();
        for _ in 0..g % STRIDE {
            match cell.cell() {
                Cell::Cons(_, t) => cell = t,
                _ => return None,
            }
        }
        Some(cell)
    }

    fn find(&self, elem: &T) -> Option<&Entry<T>> {
        self.entries
            .binary_search_by(|e| e.elem.compare(elem))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Where `elem` is in `entries[*j..]`, moving `*j` to the first entry
    /// not below it (galloping).
    fn seek(&self, j: &mut usize, elem: &T) -> Option<&Entry<T>> {
        loop {
            let e = self.entries.get(*j)?;
            match e.elem.compare(elem) {
                Ordering::Less => {
                    *j += ord::run_below(&self.entries[*j..], elem, |e| &e.elem);
                }
                Ordering::Equal => return Some(e),
                Ordering::Greater => return None,
            }
        }
    }

    /// The delta of `{rmv, Elem}`: every token of `Elem` turned `false`,
    /// under the op's own element term.
    fn rmv_entry(&self, elem: T) -> Option<(T, Tokens<T>)> {
        let e = self.find(&elem)?;
        let tokens = self.tokens(e).iter().map(|(t, _)| (t.clone(), false));
        Some((elem, tokens.collect()))
    }

    /// The term of one entry.
    fn entry_term<B: Builder<T = T>>(&self, b: &B, e: &Entry<T>) -> T {
        match e.src {
            Src::Orig => e.term.clone(),
            Src::List => b.pair(e.elem.clone(), e.term.clone()),
            Src::Built => {
                let list = self.tokens(e).iter().rev().fold(b.nil(), |acc, (t, a)| {
                    b.cons(b.pair(t.clone(), b.bool(*a)), acc)
                });
                b.pair(e.elem.clone(), list)
            }
        }
    }
}

/// Appends entries of one state to another, unchanged.
struct Copier {
    /// The destination's index of each store of the source.
    map: Vec<u32>,
    /// Whether `map` is the identity and the source built no tokens.
    plain: bool,
}

impl Copier {
    /// Share the stores of `src` with `dst`.
    fn new<T: Term>(dst: &mut ORSet<T>, src: &ORSet<T>) -> Result<Self> {
        let mut map = Vec::with_capacity(src.stores.len());
        for s in &src.stores {
            let i = match dst.stores.iter().position(|d| Arc::ptr_eq(d, s)) {
                Some(i) => i,
                None => {
                    dst.stores.push(s.clone());
                    dst.stores.len() - 1
                }
            };
            map.push(index(i)?);
        }
        let plain = src.toks.is_empty() && map.iter().enumerate().all(|(i, m)| *m as usize == i);
        Ok(Copier { map, plain })
    }

    /// Where the tokens of `e`, an entry of `src`, are in `dst`.
    fn place<T: Term>(&self, dst: &mut ORSet<T>, src: &ORSet<T>, e: &mut Entry<T>) {
        if e.store == OWN {
            let start = dst.toks.len();
            dst.toks.extend_from_slice(src.tokens(e));
            // Below `u32::MAX`: `Merge::new` checked the sum of both sides.
            e.start = start as u32;
        } else {
            e.store = self.map.get(e.store as usize).copied().unwrap_or(OWN);
        }
    }

    fn entry<T: Term>(&self, dst: &mut ORSet<T>, src: &ORSet<T>, e: &Entry<T>) {
        let mut e = e.clone();
        self.place(dst, src, &mut e);
        dst.entries.push(e);
    }

    fn run<T: Term>(&self, dst: &mut ORSet<T>, src: &ORSet<T>, run: &[Entry<T>]) {
        if self.plain {
            dst.entries.extend_from_slice(run);
        } else {
            for e in run {
                self.entry(dst, src, e);
            }
        }
    }
}

/// Which input a run of the result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    X,
    Y,
}

/// The merge of two states, walked once.
struct Merge<'a, T> {
    x: &'a ORSet<T>,
    y: &'a ORSet<T>,
    cx: Copier,
    cy: Copier,
    out: ORSet<T>,
    /// The next entries of `x` and `y`.
    i: usize,
    j: usize,
    /// The number of entries of the result so far.
    n: usize,
    /// Whether the result so far is exactly `x.entries[..i]`, and whether
    /// it is exactly `y.entries[..j]`.
    all_x: bool,
    all_y: bool,
    /// Whether `out` holds the result so far: false while it is still one
    /// of the inputs' prefixes.
    building: bool,
    /// The result's last run of entries that are unchanged consecutive
    /// entries of one input: (side, first result index, first index there).
    streak: Option<(Side, usize, usize)>,
}

impl<'a, T: Term> Merge<'a, T> {
    fn new(x: &'a ORSet<T>, y: &'a ORSet<T>) -> Result<Self> {
        // Every token index of the result fits in an entry.
        index(x.token_count() + y.token_count())?;
        let mut out = ORSet::empty();
        let cx = Copier::new(&mut out, x)?;
        let cy = Copier::new(&mut out, y)?;
        Ok(Merge {
            x,
            y,
            cx,
            cy,
            out,
            i: 0,
            j: 0,
            n: 0,
            all_x: true,
            all_y: true,
            building: false,
            streak: None,
        })
    }

    fn side(&self, side: Side) -> &'a ORSet<T> {
        match side {
            Side::X => self.x,
            Side::Y => self.y,
        }
    }

    /// Update the flags before emitting the next entries; the first time
    /// the result is neither input's prefix, copy the prefix it was.
    #[inline]
    fn settle(&mut self, all_x: bool, all_y: bool) {
        if !self.building && !all_x && !all_y {
            // At most every remaining entry of both sides follows.
            let rest = (self.x.entries.len() - self.i) + (self.y.entries.len() - self.j);
            self.out.entries.reserve(self.n + rest);
            if self.all_x {
                self.cx
                    .run(&mut self.out, self.x, &self.x.entries[..self.i]);
            } else {
                self.cy
                    .run(&mut self.out, self.y, &self.y.entries[..self.j]);
            }
            self.building = true;
        }
        self.all_x = all_x;
        self.all_y = all_y;
    }

    /// Whether the streak continues with entry `at` of `side`.
    #[inline]
    fn continues(&self, side: Side, at: usize) -> bool {
        matches!(self.streak, Some((s, n0, src0)) if s == side && src0 + (self.n - n0) == at)
    }

    /// Count `k` result entries that are entries `at..at + k` of `side`.
    #[inline]
    fn unchanged(&mut self, side: Side, at: usize, k: usize) {
        if !self.continues(side, at) {
            self.streak = Some((side, self.n, at));
        }
        self.n += k;
    }

    /// Entries `i..i + k` of X are below every remaining entry of Y.
    fn run_x(&mut self, k: usize) {
        if k == 0 {
            return;
        }
        self.settle(self.all_x, false);
        let i = self.i;
        if self.building {
            self.cx
                .run(&mut self.out, self.x, &self.x.entries[i..i + k]);
        }
        self.unchanged(Side::X, i, k);
        self.i += k;
    }

    /// Entries `j..j + k` of Y are below every remaining entry of X.
    fn run_y(&mut self, k: usize) {
        if k == 0 {
            return;
        }
        self.settle(false, self.all_y);
        let j = self.j;
        if self.building {
            self.cy
                .run(&mut self.out, self.y, &self.y.entries[j..j + k]);
        }
        self.unchanged(Side::Y, j, k);
        self.j += k;
    }

    /// Entry `i` of X and entry `j` of Y hold `==` elements.
    fn both(&mut self) {
        let (x, y, i, j) = (self.x, self.y, self.i, self.j);
        let (xe, ye) = (&x.entries[i], &y.entries[j]);
        let mark = self.out.toks.len();
        let toks = merge_tokens(x.tokens(xe), y.tokens(ye), self.all_y, &mut self.out.toks);
        // New tokens are `toks[mark..mark + fresh]`; copying a prefix below
        // may append after them.
        let fresh = self.out.toks.len() - mark;
        // Y's entry exactly: Y's tokens under an identical element term
        // (decided only where it can matter).
        let is_x = toks.x;
        let is_y = toks.y && (self.all_y || !is_x) && xe.elem.identical(&ye.elem);
        self.settle(self.all_x && is_x, self.all_y && is_y);
        // Both exact: prefer the side whose run goes on, for the tail.
        let side = if is_y && (!is_x || self.continues(Side::Y, j)) {
            Some(Side::Y)
        } else if is_x {
            Some(Side::X)
        } else {
            None
        };
        if self.building {
            match side {
                Some(Side::X) => self.cx.entry(&mut self.out, x, xe),
                Some(Side::Y) => self.cy.entry(&mut self.out, y, ye),
                None if toks.y => {
                    // X's element term over Y's tokens (and Y's own token
                    // list term, when it has one).
                    let mut e = ye.clone();
                    e.elem = xe.elem.clone();
                    (e.src, e.term) = match ye.src {
                        Src::Orig => match ye.term.tuple_elem(1) {
                            Some(list) => (Src::List, list),
                            None => (Src::Built, xe.elem.clone()),
                        },
                        Src::List => (Src::List, ye.term.clone()),
                        Src::Built => (Src::Built, xe.elem.clone()),
                    };
                    self.cy.place(&mut self.out, y, &mut e);
                    self.out.entries.push(e);
                }
                None => self.out.push_built(xe.elem.clone(), mark, fresh),
            }
        }
        match side {
            Some(Side::X) => self.unchanged(Side::X, i, 1),
            Some(Side::Y) => self.unchanged(Side::Y, j, 1),
            None => {
                self.streak = None;
                self.n += 1;
            }
        }
        self.i += 1;
        self.j += 1;
    }

    fn finish(mut self) -> Merged<ORSet<T>> {
        if self.all_x {
            return Merged::Left;
        }
        if self.all_y {
            return Merged::Right;
        }
        let n = self.n;
        self.out.tail_from = n;
        if let Some((side, n0, src0)) = self.streak {
            // The streak reaches the end of its input: from the first of
            // its entries with a known cell on, the result is that input's
            // own list.
            let src = self.side(side);
            let end = src0 + (n - n0);
            let t = src0.max(src.tail_from);
            if end == src.entries.len() && t < end {
                // Entry `k` of the result is entry `k + t - s` of `src`.
                let s = n0 + (t - src0);
                self.out.tail_from = s;
                self.out.anchors = src.anchors.clone();
                self.out.shift = src.shift + t as isize - s as isize;
            }
        }
        Merged::New(self.out)
    }
}

/// `merge_tokens`' verdict on one element both sides hold; neither means
/// new tokens, pushed onto the result's `toks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Toks {
    /// The merged tokens are X's (keys and activeness).
    x: bool,
    /// The merged tokens are exactly (`=:=`) Y's. Decided only when
    /// `need_y` or they are not X's.
    y: bool,
}

/// `orddict:merge/3` with `andalso` over the tokens of an element both
/// sides hold. New tokens are pushed onto `out`; when the result is X's or
/// Y's, `out` is left as it was.
#[inline]
fn merge_tokens<T: Term>(
    xs: &[(T, bool)],
    ys: &[(T, bool)],
    need_y: bool,
    out: &mut Vec<(T, bool)>,
) -> Toks {
    let mark = out.len();
    // Whether the result is X's tokens; whether it is Y's exactly (every
    // token of X in Y under an identical key, keeping Y's activeness).
    let (mut is_x, mut is_y) = (true, true);
    let (mut a, mut b) = (0, 0);
    while a < xs.len() && b < ys.len() {
        let ((ta, aa), (tb, ab)) = (&xs[a], &ys[b]);
        match ta.compare(tb) {
            Ordering::Less => {
                out.push((ta.clone(), *aa));
                is_y = false;
                a += 1;
            }
            Ordering::Greater => {
                out.push((tb.clone(), *ab));
                is_x = false;
                b += 1;
            }
            Ordering::Equal => {
                let v = *aa && *ab;
                is_x &= v == *aa;
                is_y = is_y && v == *ab && ta.identical(tb);
                out.push((ta.clone(), v));
                a += 1;
                b += 1;
            }
        }
    }
    if a < xs.len() {
        out.extend_from_slice(&xs[a..]);
        is_y = false;
    }
    if b < ys.len() {
        out.extend_from_slice(&ys[b..]);
        is_x = false;
    }
    let is_y = is_y && (need_y || !is_x);
    if is_x || is_y {
        out.truncate(mark);
    }
    Toks { x: is_x, y: is_y }
}

/// The activeness of `t` in `tokens[*b..]`, ascending by token, moving
/// `*b` past the tokens below `t`.
#[inline]
fn lookup<T: Term>(tokens: &[(T, bool)], b: &mut usize, t: &T) -> Option<bool> {
    while let Some((u, active)) = tokens.get(*b) {
        match u.compare(t) {
            Ordering::Less => *b += 1,
            Ordering::Equal => return Some(*active),
            Ordering::Greater => return None,
        }
    }
    None
}

/// Walk a proper list given as an operation argument.
fn op_list<T: Term>(list: &T) -> std::result::Result<Vec<T>, BadCrdt> {
    let mut out = Vec::new();
    let mut cur = list.clone();
    loop {
        match cur.cell() {
            Cell::Nil => return Ok(out),
            Cell::Cons(h, t) => {
                out.push(h);
                cur = t;
            }
            Cell::NotList if out.is_empty() => return Err(BadCrdt::UnknownOp(TAG)),
            Cell::NotList => return Err(BadCrdt::ImproperList(TAG)),
        }
    }
}

/// `orddict:store/3` applied in list order: sort by key, and of every run of
/// `==` keys keep the last one stored.
fn store_all<T: Term, V>(mut items: Vec<(T, V)>) -> Vec<(T, V)> {
    items.sort_by(|(a, _), (b, _)| a.compare(b)); // stable
    let mut out: Vec<(T, V)> = Vec::with_capacity(items.len());
    for (k, v) in items {
        match out.last_mut() {
            Some(last) if last.0.compare(&k) == Ordering::Equal => *last = (k, v),
            _ => out.push((k, v)),
        }
    }
    out
}

impl<T: Term> Lattice<T> for ORSet<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        // As `Decoder::orddict`: the first bad cell's error, and the order
        // of the elements checked only once the whole list is read.
        let mut entries: Vec<Entry<T>> = Vec::new();
        let mut toks = Vec::new();
        let mut anchors = Vec::new();
        let mut unsorted = false;
        let mut cur = payload.clone();
        loop {
            match cur.cell() {
                Cell::Nil => break,
                Cell::Cons(h, t) => {
                    d.spend(1)?;
                    let (elem, tokens) = h.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
                    let start = toks.len();
                    let active = check_tokens(tokens, d, &mut toks)?;
                    if !unsorted {
                        if let Some(prev) = entries.last() {
                            unsorted = prev.elem.compare(&elem) != Ordering::Less;
                        }
                    }
                    if entries.len().is_multiple_of(STRIDE) {
                        anchors.push(cur);
                    }
                    cur = t;
                    entries.push(Entry {
                        elem,
                        term: h,
                        start: index(start)?,
                        len: index(toks.len() - start)?,
                        store: 0,
                        src: Src::Orig,
                        active,
                    });
                }
                Cell::NotList => {
                    return Err(if entries.is_empty() {
                        BadCrdt::Malformed(TAG)
                    } else {
                        BadCrdt::ImproperList(TAG)
                    })
                }
            }
        }
        if unsorted {
            return Err(BadCrdt::Unsorted(TAG));
        }
        Ok(ORSet {
            entries,
            stores: vec![Arc::new(toks)],
            toks: Vec::new(),
            tail_from: 0,
            anchors,
            shift: 0,
            payload: Some(payload.clone()),
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        if let Some(p) = &self.payload {
            return p.clone();
        }
        let split = self.tail_from.min(self.entries.len());
        let tail = if split < self.entries.len() {
            self.cell_at(split)
        } else {
            None
        };
        // Without the tail's cell (which cannot happen), build it all.
        let split = if tail.is_some() {
            split
        } else {
            self.entries.len()
        };
        let head: Vec<T> = self.entries[..split]
            .iter()
            .map(|e| self.entry_term(b, e))
            .collect();
        match tail {
            Some(tail) => b.list_with_tail(&head, tail),
            None => b.list(&head),
        }
    }

    fn bottom() -> Self {
        Self::empty()
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        let mut m = Merge::new(self, other)?;
        let (xs, ys) = (&self.entries, &other.entries);
        // How X's next element compares with Y's, when a run found out.
        let mut known = None;
        while m.i < xs.len() && m.j < ys.len() {
            let (i, j) = (m.i, m.j);
            let c = known
                .take()
                .unwrap_or_else(|| xs[i].elem.compare(&ys[j].elem));
            match c {
                Ordering::Less => {
                    let (k, next) = ord::run_below_known(&xs[i..], &ys[j].elem, |e| &e.elem);
                    m.run_x(k);
                    known = next;
                }
                Ordering::Greater => {
                    let (k, next) = ord::run_below_known(&ys[j..], &xs[i].elem, |e| &e.elem);
                    m.run_y(k);
                    known = next.map(Ordering::reverse);
                }
                Ordering::Equal => m.both(),
            }
        }
        m.run_x(xs.len() - m.i);
        m.run_y(ys.len() - m.j);
        Ok(m.finish())
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        if let (Some(a), Some(b)) = (&self.payload, &other.payload) {
            // Validated payloads: `==` on the terms is `==` on the states.
            return Ok(a.equal(b));
        }
        Ok(self.entries.len() == other.entries.len()
            && self.entries.iter().zip(&other.entries).all(|(a, b)| {
                let (ta, tb) = (self.tokens(a), other.tokens(b));
                a.elem.equal(&b.elem)
                    && ta.len() == tb.len()
                    && ta
                        .iter()
                        .zip(tb)
                        .all(|((xa, aa), (xb, ab))| aa == ab && xa.equal(xb))
            }))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        let mut j = 0;
        for a in &self.entries {
            let Some(b) = other.seek(&mut j, &a.elem) else {
                return Ok(false);
            };
            j += 1;
            // Every token of A in B, `true` in A or `false` in B.
            let tb = other.tokens(b);
            let mut k = 0;
            if !self
                .tokens(a)
                .iter()
                .all(|(t, aa)| lookup(tb, &mut k, t).is_some_and(|ab| *aa || !ab))
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        let elems: Vec<T> = self
            .entries
            .iter()
            .filter(|e| e.active)
            .map(|e| e.elem.clone())
            .collect();
        Ok(b.list(&elems))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        let mut out = Self::empty();
        let copier = Copier::new(&mut out, self)?;
        let mut j = 0;
        for a in &self.entries {
            let Some(b) = other.seek(&mut j, &a.elem) else {
                copier.entry(&mut out, self, a);
                continue;
            };
            j += 1;
            // A's tokens that B lacks, or holds `true` where A has `false`.
            let (ta, tb) = (self.tokens(a), other.tokens(b));
            let mark = out.toks.len();
            let mut k = 0;
            for (t, aa) in ta {
                if lookup(tb, &mut k, t).is_none_or(|ab| ab && !aa) {
                    out.toks.push((t.clone(), *aa));
                }
            }
            match out.toks.len() - mark {
                0 => {}
                n if n == ta.len() => {
                    out.toks.truncate(mark);
                    copier.entry(&mut out, self, a);
                }
                n => {
                    index(out.toks.len())?;
                    out.push_built(a.elem.clone(), mark, n);
                }
            }
        }
        out.tail_from = out.entries.len();
        Ok(out)
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        _actor: &T,
        cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        if let Some(elem) = op_arg(op, Atom::Add) {
            return Ok(Self::add_by_token(cx.token(), elem));
        }
        if op.tuple_arity() == Some(3)
            && op
                .tuple_elem(0)
                .is_some_and(|t| t.is_atom(Atom::AddByToken))
        {
            if let (Some(token), Some(elem)) = (op.tuple_elem(1), op.tuple_elem(2)) {
                return Ok(Self::add_by_token(token, elem));
            }
        }
        if let Some(elems) = op_arg(op, Atom::AddAll) {
            let items = op_list(&elems)?
                .into_iter()
                .map(|e| (e, vec![(cx.token(), true)]))
                .collect();
            return Ok(Self::from_entries(store_all(items)));
        }
        if let Some(elem) = op_arg(op, Atom::Rmv) {
            return Ok(Self::from_entries(
                self.rmv_entry(elem).into_iter().collect(),
            ));
        }
        if let Some(elems) = op_arg(op, Atom::RmvAll) {
            // Each `rmv` delta is merged into the group as the first
            // argument, so a later `==` element's term wins; its tokens are
            // the same state tokens, all `false`.
            let items = op_list(&elems)?
                .into_iter()
                .filter_map(|e| self.rmv_entry(e))
                .collect();
            return Ok(Self::from_entries(store_all(items)));
        }
        Err(BadCrdt::UnknownOp(TAG).into())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};
    use crate::testing::Cx;

    fn a(s: &str) -> T {
        T::atom(s)
    }

    fn tok(n: u8) -> T {
        OwnedBuilder.binary(&[n])
    }

    fn or(es: &[(&str, &[(u8, bool)])]) -> ORSet<T> {
        ORSet::from_entries(
            es.iter()
                .map(|(e, ts)| (a(e), ts.iter().map(|(t, b)| (tok(*t), *b)).collect()))
                .collect(),
        )
    }

    fn decode(t: &T) -> Result<ORSet<T>> {
        ORSet::decode(t, &mut Decoder::new(Limits::dirty()))
    }

    fn op(name: &str, arg: T) -> T {
        OwnedBuilder.pair(a(name), arg)
    }

    fn merged(x: &ORSet<T>, y: &ORSet<T>) -> ORSet<T> {
        x.merge(y).unwrap().into_state(x, y)
    }

    #[test]
    fn decode_roundtrip_test() {
        let s = or(&[("a", &[(1, true), (2, false)]), ("b", &[(3, false)])]);
        let t = s.encode(&OwnedBuilder);
        assert_eq!(decode(&t), Ok(s));
    }

    #[test]
    fn decode_rejects_bad_payload_test() {
        let b = OwnedBuilder;
        let toks = |v: &[(u8, T)]| {
            b.list(
                &v.iter()
                    .map(|(t, x)| b.pair(tok(*t), x.clone()))
                    .collect::<Vec<_>>(),
            )
        };
        let good = toks(&[(1, a("true"))]);
        // Unsorted elements, unsorted tokens.
        let t = b.list(&[b.pair(a("b"), good.clone()), b.pair(a("a"), good.clone())]);
        assert_eq!(decode(&t), Err(BadCrdt::Unsorted(TAG)));
        let t = b.list(&[b.pair(a("a"), toks(&[(2, a("true")), (1, a("true"))]))]);
        assert_eq!(decode(&t), Err(BadCrdt::Unsorted(TAG)));
        // Improper outer and inner lists.
        let t = b.cons(b.pair(a("a"), good.clone()), a("b"));
        assert_eq!(decode(&t), Err(BadCrdt::ImproperList(TAG)));
        let t = b.list(&[b.pair(a("a"), b.cons(b.pair(tok(1), a("true")), T::Int(1)))]);
        assert_eq!(decode(&t), Err(BadCrdt::ImproperList(TAG)));
        // Activeness other than true/false.
        let t = b.list(&[b.pair(a("a"), toks(&[(1, T::Int(1))]))]);
        assert_eq!(decode(&t), Err(BadCrdt::Malformed(TAG)));
        // Tokens not a list.
        let t = b.list(&[b.pair(a("a"), a("true"))]);
        assert_eq!(decode(&t), Err(BadCrdt::Malformed(TAG)));
    }

    #[test]
    fn merge_test() {
        let s1 = or(&[("a", &[(1, false)])]);
        let s2 = or(&[("b", &[(2, true)])]);
        let s3 = or(&[("a", &[(1, true)]), ("b", &[(2, false)])]);
        let s1_2 = or(&[("a", &[(1, false)]), ("b", &[(2, true)])]);
        let s1_3 = or(&[("a", &[(1, false)]), ("b", &[(2, false)])]);
        assert_eq!(merged(&s1, &s2), s1_2);
        assert_eq!(merged(&s2, &s1), s1_2);
        assert_eq!(merged(&s1, &s3), s1_3);
        assert_eq!(merged(&s3, &s1), s1_3);
        assert_eq!(merged(&s2, &s3), s3);
        assert_eq!(merged(&s3, &s2), s3);
        assert_eq!(merged(&s1, &merged(&s2, &s3)), s1_3);
    }

    #[test]
    fn merge_keeps_input_test() {
        let x = or(&[("a", &[(1, false), (2, true)]), ("b", &[(3, true)])]);
        let y = or(&[("a", &[(1, true)])]);
        assert!(matches!(x.merge(&y).unwrap(), Merged::Left));
        assert!(matches!(y.merge(&x).unwrap(), Merged::Right));
        assert!(matches!(x.merge(&x).unwrap(), Merged::Left));
        // A `true` of ours meeting their `false` is no longer ours.
        let z = or(&[("b", &[(3, false)])]);
        assert!(matches!(x.merge(&z).unwrap(), Merged::New(_)));
        assert!(matches!(z.merge(&x).unwrap(), Merged::New(_)));
        let e = ORSet::bottom();
        assert!(matches!(e.merge(&x).unwrap(), Merged::Right));
    }

    #[test]
    fn equal_inflation_query_test() {
        let s1 = or(&[("a", &[(1, true)])]);
        let s2 = or(&[("a", &[(1, false)])]);
        let s3 = or(&[("a", &[(1, true), (2, true)]), ("b", &[(3, false)])]);
        assert!(s1.equal(&s1).unwrap());
        assert!(!s1.equal(&s2).unwrap());
        assert!(s1.is_inflation(&s2).unwrap());
        assert!(!s2.is_inflation(&s1).unwrap());
        assert!(s1.is_inflation(&s3).unwrap());
        assert!(!s3.is_inflation(&s1).unwrap());
        assert!(s1.is_strict_inflation(&s2).unwrap());
        assert!(!s1.is_strict_inflation(&s1).unwrap());
        assert_eq!(
            s3.query(&OwnedBuilder).unwrap(),
            OwnedBuilder.list(&[a("a")])
        );
        assert_eq!(s2.query(&OwnedBuilder).unwrap(), T::Nil);
        assert!(ORSet::<T>::bottom().is_bottom());
        assert!(!s2.is_bottom());
    }

    #[test]
    fn delta_test() {
        let x = or(&[
            ("a", &[(1, false), (2, true), (3, true)]),
            ("b", &[(4, true)]),
            ("c", &[]),
        ]);
        let y = or(&[("a", &[(1, true), (2, true)]), ("b", &[(4, true)])]);
        let d = x.delta(&y).unwrap();
        assert_eq!(d, or(&[("a", &[(1, false), (3, true)]), ("c", &[])]));
        assert!(merged(&d, &y).equal(&merged(&x, &y)).unwrap());
        assert!(y.delta(&merged(&x, &y)).unwrap().is_bottom());
    }

    #[test]
    fn mutate_test() {
        let mut cx = Cx(0);
        let s0 = ORSet::bottom();
        let d1 = s0
            .delta_mutate(&op("add", a("a")), &a("n"), &mut cx)
            .unwrap();
        assert_eq!(d1, or(&[("a", &[(1, true)])]));
        let s1 = merged(&d1, &s0);
        let s2 = s1.mutate(&op("add", a("a")), &a("n"), &mut cx).unwrap();
        assert_eq!(s2, or(&[("a", &[(1, true), (2, true)])]));
        // Removing an absent element is a no-op delta.
        let d = s2
            .delta_mutate(&op("rmv", a("b")), &a("n"), &mut cx)
            .unwrap();
        assert!(d.is_bottom());
        let s3 = s2.mutate(&op("rmv", a("a")), &a("n"), &mut cx).unwrap();
        assert_eq!(s3, or(&[("a", &[(1, false), (2, false)])]));
        assert_eq!(s3.query(&OwnedBuilder).unwrap(), T::Nil);
    }

    #[test]
    fn add_all_rmv_all_test() {
        let b = OwnedBuilder;
        let mut cx = Cx(0);
        let s0 = ORSet::bottom();
        assert!(s0
            .mutate(&op("add_all", T::Nil), &a("n"), &mut cx)
            .unwrap()
            .is_bottom());
        // One token per list element; the repeated `a` keeps its last token.
        let d = s0
            .delta_mutate(
                &op("add_all", b.list(&[a("b"), a("a"), a("b")])),
                &a("n"),
                &mut cx,
            )
            .unwrap();
        assert_eq!(d, or(&[("a", &[(2, true)]), ("b", &[(3, true)])]));
        let s1 = merged(&d, &s0);
        let s2 = s1
            .mutate(&op("add_all", b.list(&[a("c")])), &a("n"), &mut cx)
            .unwrap();
        let s3 = s2
            .mutate(
                &op("rmv_all", b.list(&[a("c"), a("a"), a("d"), a("c")])),
                &a("n"),
                &mut cx,
            )
            .unwrap();
        assert_eq!(s3.query(&b).unwrap(), b.list(&[a("b")]));
        let d = s2
            .delta_mutate(&op("rmv_all", b.list(&[a("c"), a("a")])), &a("n"), &mut cx)
            .unwrap();
        assert_eq!(d, or(&[("a", &[(2, false)]), ("c", &[(4, false)])]));
    }

    #[test]
    fn add_by_token_uses_the_callers_token_test() {
        let b = OwnedBuilder;
        let mut cx = Cx(0);
        let s = or(&[("a", &[(1, true)])]);
        let d = s
            .delta_mutate(
                &b.tuple(&[a("add_by_token"), tok(9), a("b")]),
                &a("n"),
                &mut cx,
            )
            .ok()
            .map(|d| d.to_entries());
        assert_eq!(d, Some(vec![(a("b"), vec![(tok(9), true)])]));
    }

    #[test]
    fn mutate_errors_test() {
        let b = OwnedBuilder;
        let mut cx = Cx(0);
        let s = or(&[("a", &[(1, true)])]);
        for bad in [
            op("add_all", a("a")),
            op("rmv_all", T::Int(1)),
            a("add"),
            b.tuple(&[a("add_by_token"), tok(9)]),
        ] {
            assert!(matches!(
                s.delta_mutate(&bad, &a("n"), &mut cx),
                Err(MutateError::Bad(BadCrdt::UnknownOp(TAG)))
            ));
        }
        assert!(matches!(
            s.delta_mutate(&op("add_all", b.cons(a("a"), a("b"))), &a("n"), &mut cx),
            Err(MutateError::Bad(BadCrdt::ImproperList(TAG)))
        ));
    }

    /// The straightforward implementation this module replaced, kept as the
    /// reference the fast paths are checked against: every entry decoded
    /// into vectors, merged with `ord::orddict_merge`.
    mod reference {
        use super::*;

        pub type Es = Vec<(T, Tokens<T>)>;

        pub fn decode(p: &T, d: &mut Decoder) -> Result<Es> {
            d.orddict(TAG, p, |d, tokens| {
                d.orddict(TAG, &tokens, |_, active| {
                    active.as_bool().ok_or(BadCrdt::Malformed(TAG))
                })
            })
        }

        pub fn encode(es: &Es) -> T {
            let b = OwnedBuilder;
            let items: Vec<T> = es
                .iter()
                .map(|(e, ts)| {
                    let ts: Vec<T> = ts
                        .iter()
                        .map(|(t, a)| b.pair(t.clone(), b.bool(*a)))
                        .collect();
                    b.pair(e.clone(), b.list(&ts))
                })
                .collect();
            b.list(&items)
        }

        fn find<'a>(d: &'a [(T, Tokens<T>)], k: &T) -> Option<&'a Tokens<T>> {
            ord::find(d, k)
        }

        fn covers_left(x: &Es, y: &Es) -> bool {
            y.iter().all(|(e, ty)| {
                find(x, e).is_some_and(|tx| {
                    ty.iter()
                        .all(|(t, ay)| ord::find(tx, t).is_some_and(|ax| !*ax || *ay))
                })
            })
        }

        fn covers_right(x: &Es, y: &Es) -> bool {
            fn find_identical<'a, V>(d: &'a [(T, V)], k: &T) -> Option<&'a V> {
                let i = d.binary_search_by(|(key, _)| key.compare(k)).ok()?;
                d[i].0.identical(k).then_some(&d[i].1)
            }
            x.iter().all(|(e, tx)| {
                find_identical(y, e).is_some_and(|ty| {
                    tx.iter()
                        .all(|(t, ax)| find_identical(ty, t).is_some_and(|ay| *ax || !*ay))
                })
            })
        }

        pub fn merge(x: &Es, y: &Es) -> Merged<Es> {
            if covers_left(x, y) {
                return Merged::Left;
            }
            if covers_right(x, y) {
                return Merged::Right;
            }
            Merged::New(
                ord::orddict_merge(x, y, |_, tx, ty| {
                    ord::orddict_merge(tx, ty, |_, ax, ay| Ok::<_, BadCrdt>(*ax && *ay))
                })
                .unwrap_or_default(),
            )
        }

        pub fn equal(x: &Es, y: &Es) -> bool {
            x.len() == y.len()
                && x.iter().zip(y).all(|((ea, ta), (eb, tb))| {
                    ea.equal(eb)
                        && ta.len() == tb.len()
                        && ta
                            .iter()
                            .zip(tb)
                            .all(|((xa, aa), (xb, ab))| aa == ab && xa.equal(xb))
                })
        }

        pub fn is_inflation(x: &Es, y: &Es) -> bool {
            x.iter().all(|(e, ta)| {
                find(y, e).is_some_and(|tb| {
                    ta.iter()
                        .all(|(t, aa)| ord::find(tb, t).is_some_and(|ab| aa == ab || (*aa && !*ab)))
                })
            })
        }

        pub fn query(x: &Es) -> T {
            let elems: Vec<T> = x
                .iter()
                .filter(|(_, ts)| ts.iter().any(|(_, a)| *a))
                .map(|(e, _)| e.clone())
                .collect();
            OwnedBuilder.list(&elems)
        }

        pub fn delta(x: &Es, y: &Es) -> Es {
            let mut out = Vec::new();
            for (e, ta) in x {
                match find(y, e) {
                    None => out.push((e.clone(), ta.clone())),
                    Some(tb) => {
                        let ts: Tokens<T> = ta
                            .iter()
                            .filter(|(t, aa)| ord::find(tb, t).is_none_or(|ab| *ab && !*aa))
                            .cloned()
                            .collect();
                        if !ts.is_empty() {
                            out.push((e.clone(), ts));
                        }
                    }
                }
            }
            out
        }
    }

    /// xorshift64*, for reproducible random states.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, pct: u64) -> bool {
            self.below(100) < pct
        }
    }

    /// A key from a small pool where `1` and `1.0` (and `2`, `2.0`) are
    /// `==` but not `=:=`, and binaries are fresh terms each time.
    fn key(r: &mut Rng, pool: u64) -> T {
        let k = r.below(pool);
        match k % 4 {
            0 if k < 8 && r.chance(50) => T::Float((k / 4 + 1) as f64),
            0 if k < 8 => T::Int((k / 4 + 1) as i128),
            0 | 1 => T::Int(k as i128 + 10),
            2 => T::bin(format!("tok-{k}").as_bytes()),
            _ => OwnedBuilder.pair(a("item"), T::Int(k as i128)),
        }
    }

    /// `(K, V)` pairs sorted by key, one of each run of `==` keys kept.
    fn dict<V>(mut v: Vec<(T, V)>) -> Vec<(T, V)> {
        v.sort_by(|x, y| x.0.compare(&y.0));
        v.dedup_by(|x, y| x.0.equal(&y.0));
        v
    }

    fn random_entries(r: &mut Rng, max: u64) -> reference::Es {
        let n = r.below(max + 1);
        let es = (0..n)
            .map(|_| {
                let nt = r.below(4);
                let ts = (0..nt).map(|_| (key(r, 12), r.chance(70))).collect();
                (key(r, 24), dict(ts))
            })
            .collect();
        dict(es)
    }

    /// A state derived from `base`: entries dropped, added, their tokens
    /// changed, and keys replaced by `==` twins (or kept as the same term).
    fn variant(r: &mut Rng, base: &reference::Es) -> reference::Es {
        let twin = |r: &mut Rng, k: &T| -> T {
            match k {
                T::Int(i) if r.chance(30) => T::Float(*i as f64),
                T::Float(f) if r.chance(30) => T::Int(*f as i128),
                _ => k.clone(),
            }
        };
        let mut out: reference::Es = Vec::new();
        for (e, ts) in base {
            if r.chance(15) {
                continue;
            }
            let mut ts2 = Vec::new();
            for (t, act) in ts {
                if r.chance(10) {
                    continue;
                }
                let act = if r.chance(15) { !act } else { *act };
                let t = if r.chance(20) { twin(r, t) } else { t.clone() };
                ts2.push((t, act));
            }
            if r.chance(20) {
                ts2.push((key(r, 12), r.chance(70)));
            }
            let e = if r.chance(20) { twin(r, e) } else { e.clone() };
            out.push((e, dict(ts2)));
        }
        out.extend(random_entries(r, 3));
        dict(out)
    }

    fn dec(t: &T) -> ORSet<T> {
        decode(t).unwrap_or_else(|e| panic!("{e:?}: {t}"))
    }

    fn ref_dec(t: &T) -> reference::Es {
        reference::decode(t, &mut Decoder::new(Limits::dirty())).unwrap_or_default()
    }

    /// The term of `merge(x, y)` (the inputs' own terms for Left/Right).
    fn merge_term(x: (&ORSet<T>, &T), y: (&ORSet<T>, &T)) -> (T, &'static str) {
        match x.0.merge(y.0).unwrap() {
            Merged::Left => (x.1.clone(), "left"),
            Merged::Right => (y.1.clone(), "right"),
            Merged::New(s) => (s.encode(&OwnedBuilder), "new"),
        }
    }

    fn ref_merge_term(x: (&reference::Es, &T), y: (&reference::Es, &T)) -> (T, &'static str) {
        match reference::merge(x.0, y.0) {
            Merged::Left => (x.1.clone(), "left"),
            Merged::Right => (y.1.clone(), "right"),
            Merged::New(s) => (reference::encode(&s), "new"),
        }
    }

    /// Every operation agrees with the reference, term for term, on random
    /// pairs of related states, and on merges of merge results (whose
    /// entries point into their inputs, and whose tails are inputs' cells).
    #[test]
    fn matches_reference_test() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..4000 {
            let base = random_entries(&mut r, if round % 10 == 0 { 40 } else { 8 });
            let ex = if r.chance(50) {
                variant(&mut r, &base)
            } else {
                base.clone()
            };
            let ey = variant(&mut r, &base);
            let ez = variant(&mut r, &ex);
            let (tx, ty, tz) = (
                reference::encode(&ex),
                reference::encode(&ey),
                reference::encode(&ez),
            );
            let (x, y, z) = (dec(&tx), dec(&ty), dec(&tz));
            let (rx, ry, rz) = (ref_dec(&tx), ref_dec(&ty), ref_dec(&tz));
            for ((s, t, e), (s2, t2, e2)) in [
                ((&x, &tx, &rx), (&y, &ty, &ry)),
                ((&y, &ty, &ry), (&x, &tx, &rx)),
                ((&x, &tx, &rx), (&x, &tx, &rx)),
                ((&x, &tx, &rx), (&z, &tz, &rz)),
                ((&z, &tz, &rz), (&x, &tx, &rx)),
            ] {
                let got = merge_term((s, t), (s2, t2));
                let want = ref_merge_term((e, t), (e2, t2));
                assert!(
                    got.0.identical(&want.0) && got.1 == want.1,
                    "merge({t}, {t2}):\n got {} {}\nwant {} {}",
                    got.1,
                    got.0,
                    want.1,
                    want.0
                );
                assert_eq!(
                    s.equal(s2).unwrap(),
                    reference::equal(e, e2),
                    "equal({t}, {t2})"
                );
                assert_eq!(
                    s.is_inflation(s2).unwrap(),
                    reference::is_inflation(e, e2),
                    "is_inflation({t}, {t2})"
                );
                assert!(s
                    .query(&OwnedBuilder)
                    .unwrap()
                    .identical(&reference::query(e)));
                let d = s.delta(s2).unwrap().encode(&OwnedBuilder);
                assert!(
                    d.identical(&reference::encode(&reference::delta(e, e2))),
                    "delta({t}, {t2}) = {d}"
                );
            }
            // Merge results as inputs again, and their other operations.
            let m1 = x.merge(&y).unwrap().into_state(&x, &y);
            let rm1 = reference::merge(&rx, &ry).into_state(&rx, &ry);
            let tm1 = reference::encode(&rm1);
            assert!(m1.encode(&OwnedBuilder).identical(&tm1));
            assert_eq!(m1.to_entries().len(), rm1.len());
            for (s, t, e) in [(&z, &tz, &rz), (&x, &tx, &rx), (&y, &ty, &ry)] {
                for (p, q) in [
                    ((&m1, &tm1, &rm1), (s, t, e)),
                    ((s, t, e), (&m1, &tm1, &rm1)),
                ] {
                    let got = merge_term((p.0, p.1), (q.0, q.1));
                    let want = ref_merge_term((p.2, p.1), (q.2, q.1));
                    assert!(
                        got.0.identical(&want.0) && got.1 == want.1,
                        "merge({}, {}):\n got {} {}\nwant {} {}",
                        p.1,
                        q.1,
                        got.1,
                        got.0,
                        want.1,
                        want.0
                    );
                    // Three levels: a merge of merge results.
                    let m2 = p.0.merge(q.0).unwrap().into_state(p.0, q.0);
                    let rm2 = reference::merge(p.2, q.2).into_state(p.2, q.2);
                    let m3 = m2.merge(&m1).unwrap().into_state(&m2, &m1);
                    let rm3 = reference::merge(&rm2, &rm1).into_state(&rm2, &rm1);
                    assert!(m3.encode(&OwnedBuilder).identical(&reference::encode(&rm3)));
                    assert_eq!(p.0.equal(q.0).unwrap(), reference::equal(p.2, q.2));
                    assert_eq!(
                        p.0.is_inflation(q.0).unwrap(),
                        reference::is_inflation(p.2, q.2)
                    );
                    assert_eq!(m2.equal(&m1).unwrap(), reference::equal(&rm2, &rm1));
                    assert_eq!(
                        m2.is_inflation(&m1).unwrap(),
                        reference::is_inflation(&rm2, &rm1)
                    );
                    assert_eq!(
                        m1.is_inflation(&m2).unwrap(),
                        reference::is_inflation(&rm1, &rm2)
                    );
                    let d = m2.delta(&m1).unwrap().encode(&OwnedBuilder);
                    assert!(d.identical(&reference::encode(&reference::delta(&rm2, &rm1))));
                    assert!(m2
                        .query(&OwnedBuilder)
                        .unwrap()
                        .identical(&reference::query(&rm2)));
                }
            }
        }
    }

    /// Ways to spoil one cell of a payload.
    fn spoil(r: &mut Rng, es: &reference::Es) -> T {
        let b = OwnedBuilder;
        let mut items: Vec<T> = es
            .iter()
            .map(|(e, ts)| {
                let mut toks: Vec<T> = ts
                    .iter()
                    .map(|(t, a)| b.pair(t.clone(), b.bool(*a)))
                    .collect();
                let mut tail = T::Nil;
                if !toks.is_empty() && r.chance(15) {
                    let k = r.below(toks.len() as u64) as usize;
                    toks[k] = match r.below(5) {
                        0 => b.pair(toks[k].tuple_elem(0).unwrap_or(T::Nil), T::Int(1)),
                        1 => b.tuple(&[a("x"), a("true"), a("y")]),
                        2 => a("true"),
                        3 => toks[0].clone(),
                        _ => toks[toks.len() - 1].clone(),
                    };
                }
                if r.chance(5) {
                    tail = if r.chance(50) { T::Int(3) } else { a("oops") };
                }
                let list = b.list_with_tail(&toks, tail);
                match r.below(40) {
                    0 => b.tuple(&[e.clone(), list, T::Nil]),
                    1 => e.clone(),
                    2 => b.pair(e.clone(), a("true")),
                    _ => b.pair(e.clone(), list),
                }
            })
            .collect();
        if items.len() > 1 && r.chance(20) {
            let (i, j) = (
                r.below(items.len() as u64) as usize,
                r.below(items.len() as u64) as usize,
            );
            items.swap(i, j);
        }
        let tail = match r.below(20) {
            0 => T::Int(7),
            1 => b.tuple(&[]),
            _ => T::Nil,
        };
        if items.is_empty() && r.chance(30) {
            return a("nope");
        }
        b.list_with_tail(&items, tail)
    }

    /// Malformed, improper and unsorted payloads give the reference's error,
    /// and the budget runs out at the same cell.
    #[test]
    fn decode_errors_match_reference_test() {
        let mut r = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..6000 {
            let es = random_entries(&mut r, 10);
            let t = spoil(&mut r, &es);
            let want = reference::decode(&t, &mut Decoder::new(Limits::dirty()));
            let got = decode(&t);
            assert_eq!(got.as_ref().err(), want.as_ref().err(), "decode({t})");
            if let (Ok(got), Ok(want)) = (&got, &want) {
                assert!(got.encode(&OwnedBuilder).identical(&t));
                assert_eq!(&got.to_entries(), want);
            }
            for cells in 0..12 {
                for on_exhaust in [BadCrdt::Yield, BadCrdt::TooLarge] {
                    let lim = Limits {
                        max_cells: cells,
                        on_exhaust,
                        ..Limits::dirty()
                    };
                    let want = reference::decode(&t, &mut Decoder::new(lim));
                    let got = ORSet::decode(&t, &mut Decoder::new(lim));
                    assert_eq!(got.err(), want.err(), "decode({t}) with {cells} cells");
                }
            }
        }
    }

    /// A small delta merged into a large state reuses the state's tail:
    /// only the entries up to the delta's are rebuilt.
    #[test]
    fn merge_shares_the_tail_test() {
        let b = OwnedBuilder;
        let entry = |i: i128, act: bool| {
            b.pair(
                T::Int(i),
                b.list(&[b.pair(T::bin(&i.to_be_bytes()), b.bool(act))]),
            )
        };
        let big: Vec<T> = (0..100).map(|i| entry(2 * i, true)).collect();
        let tx = b.list(&big);
        let x = dec(&tx);
        // (delta, the result's entries up to and including the delta's)
        for (delta, head) in [
            (entry(21, true), 12),
            (entry(20, false), 11),
            (entry(-1, true), 1),
        ] {
            let ty = b.list(&[delta]);
            let y = dec(&ty);
            for (m, from) in [(x.merge(&y), "x"), (y.merge(&x), "y")] {
                let Ok(Merged::New(m)) = m else {
                    panic!("expected a new state")
                };
                // The first entry past the delta's starts the shared tail.
                assert_eq!(m.tail_from, head, "{from}");
                let t = m.encode(&b);
                let want = ref_merge_term(
                    (
                        &ref_dec(&if from == "x" { tx.clone() } else { ty.clone() }),
                        &T::Nil,
                    ),
                    (
                        &ref_dec(&if from == "x" { ty.clone() } else { tx.clone() }),
                        &T::Nil,
                    ),
                );
                assert!(t.identical(&want.0));
            }
        }
    }
}
