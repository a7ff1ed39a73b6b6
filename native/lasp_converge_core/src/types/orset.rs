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
//! Reference: Marc Shapiro, Nuno Preguiça, Carlos Baquero and Marek
//! Zawirski, *A comprehensive study of Convergent and Commutative Replicated
//! Data Types* (2011), <http://hal.upmc.fr/inria-00555588/>.

use std::cmp::Ordering;

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Cell, Term};
use crate::types::gset::op_arg;

const TAG: Atom = Atom::StateOrset;

/// The tokens of one element: `(Token, Active)`, ascending by token.
pub type Tokens<T> = Vec<(T, bool)>;

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
/// let a = ORSet { entries: vec![(T::atom("x"), vec![(tok("t1"), true)])] };
/// // Concurrently, another replica removed x (token t1 became false).
/// let b = ORSet { entries: vec![(T::atom("x"), vec![(tok("t1"), false)])] };
/// assert!(matches!(a.merge(&b).unwrap(), Merged::Right));
/// let empty = OwnedBuilder.list(&[]);
/// assert_eq!(b.query(&OwnedBuilder).unwrap(), empty);
/// assert_eq!(a.query(&OwnedBuilder).unwrap(), OwnedBuilder.list(&[T::atom("x")]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ORSet<T> {
    /// `(Elem, Tokens)` in ascending element order.
    pub entries: Vec<(T, Tokens<T>)>,
}

impl<T: Term> ORSet<T> {
    fn find(&self, elem: &T) -> Option<&Tokens<T>> {
        ord::find(&self.entries, elem)
    }

    /// The delta of `{add_by_token, Token, Elem}`: `[{Elem, [{Token, true}]}]`.
    pub fn add_by_token(token: T, elem: T) -> Self {
        ORSet {
            entries: vec![(elem, vec![(token, true)])],
        }
    }

    /// The delta of `{rmv, Elem}`: every token of `Elem` turned `false`,
    /// under the op's own element term.
    fn rmv_entry(&self, elem: T) -> Option<(T, Tokens<T>)> {
        let tokens = self.find(&elem)?;
        Some((
            elem,
            tokens.iter().map(|(t, _)| (t.clone(), false)).collect(),
        ))
    }
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

/// Whether merging `y` into `x` gives `x` back exactly: every element and
/// token of `y` is in `x` (whose key terms are kept), and no `true` of `x`
/// meets a `false` of `y`.
fn covers_left<T: Term>(x: &ORSet<T>, y: &ORSet<T>) -> bool {
    y.entries.iter().all(|(e, ty)| {
        x.find(e).is_some_and(|tx| {
            ty.iter()
                .all(|(t, ay)| ord::find(tx, t).is_some_and(|ax| !*ax || *ay))
        })
    })
}

/// Whether merging `y` into `x` gives `y` back exactly: every element and
/// token of `x` is in `y` under an identical key term, and no `false` of
/// `x` meets a `true` of `y`.
fn covers_right<T: Term>(x: &ORSet<T>, y: &ORSet<T>) -> bool {
    fn find_identical<'a, T: Term, V>(d: &'a [(T, V)], k: &T) -> Option<&'a V> {
        let i = d.binary_search_by(|(key, _)| key.compare(k)).ok()?;
        d[i].0.identical(k).then_some(&d[i].1)
    }
    x.entries.iter().all(|(e, tx)| {
        find_identical(&y.entries, e).is_some_and(|ty| {
            tx.iter()
                .all(|(t, ax)| find_identical(ty, t).is_some_and(|ay| *ax || !*ay))
        })
    })
}

impl<T: Term> Lattice<T> for ORSet<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        let entries = d.orddict(TAG, payload, |d, tokens| {
            d.orddict(TAG, &tokens, |_, active| {
                active.as_bool().ok_or(BadCrdt::Malformed(TAG))
            })
        })?;
        Ok(ORSet { entries })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        let items: Vec<T> = self
            .entries
            .iter()
            .map(|(e, tokens)| {
                let tokens: Vec<T> = tokens
                    .iter()
                    .map(|(t, a)| b.pair(t.clone(), b.bool(*a)))
                    .collect();
                b.pair(e.clone(), b.list(&tokens))
            })
            .collect();
        b.list(&items)
    }

    fn bottom() -> Self {
        ORSet {
            entries: Vec::new(),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        if covers_left(self, other) {
            return Ok(Merged::Left);
        }
        if covers_right(self, other) {
            return Ok(Merged::Right);
        }
        let entries = ord::orddict_merge(&self.entries, &other.entries, |_, tx, ty| {
            ord::orddict_merge(tx, ty, |_, ax, ay| Ok::<_, BadCrdt>(*ax && *ay))
        })?;
        Ok(Merged::New(ORSet { entries }))
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|((ea, ta), (eb, tb))| {
                    ea.equal(eb)
                        && ta.len() == tb.len()
                        && ta
                            .iter()
                            .zip(tb)
                            .all(|((xa, aa), (xb, ab))| aa == ab && xa.equal(xb))
                }))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        Ok(self.entries.iter().all(|(e, ta)| {
            other.find(e).is_some_and(|tb| {
                ta.iter()
                    .all(|(t, aa)| ord::find(tb, t).is_some_and(|ab| aa == ab || (*aa && !*ab)))
            })
        }))
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        let elems: Vec<T> = self
            .entries
            .iter()
            .filter(|(_, tokens)| tokens.iter().any(|(_, a)| *a))
            .map(|(e, _)| e.clone())
            .collect();
        Ok(b.list(&elems))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        let mut entries = Vec::new();
        for (e, ta) in &self.entries {
            match other.find(e) {
                None => entries.push((e.clone(), ta.clone())),
                Some(tb) => {
                    let tokens: Tokens<T> = ta
                        .iter()
                        .filter(|(t, aa)| ord::find(tb, t).is_none_or(|ab| *ab && !*aa))
                        .cloned()
                        .collect();
                    if !tokens.is_empty() {
                        entries.push((e.clone(), tokens));
                    }
                }
            }
        }
        Ok(ORSet { entries })
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
            return Ok(ORSet {
                entries: store_all(items),
            });
        }
        if let Some(elem) = op_arg(op, Atom::Rmv) {
            return Ok(ORSet {
                entries: self.rmv_entry(elem).into_iter().collect(),
            });
        }
        if let Some(elems) = op_arg(op, Atom::RmvAll) {
            // Each `rmv` delta is merged into the group as the first
            // argument, so a later `==` element's term wins; its tokens are
            // the same state tokens, all `false`.
            let items = op_list(&elems)?
                .into_iter()
                .filter_map(|e| self.rmv_entry(e))
                .collect();
            return Ok(ORSet {
                entries: store_all(items),
            });
        }
        Err(BadCrdt::UnknownOp(TAG).into())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::decode::Limits;
    use crate::owned::{OwnedBuilder, OwnedTerm as T};

    /// Hands out tokens `<<1>>`, `<<2>>`, ...
    struct Cx(u8);
    impl MutateCx<T> for Cx {
        type B = OwnedBuilder;
        fn builder(&self) -> &OwnedBuilder {
            &OwnedBuilder
        }
        fn token(&mut self) -> T {
            self.0 += 1;
            OwnedBuilder.binary(&[self.0])
        }
    }

    fn a(s: &str) -> T {
        T::atom(s)
    }

    fn tok(n: u8) -> T {
        OwnedBuilder.binary(&[n])
    }

    fn or(es: &[(&str, &[(u8, bool)])]) -> ORSet<T> {
        ORSet {
            entries: es
                .iter()
                .map(|(e, ts)| (a(e), ts.iter().map(|(t, b)| (tok(*t), *b)).collect()))
                .collect(),
        }
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
            .map(|d| d.entries);
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
}
