//! `state_bcounter`: a bounded counter (a counter that never goes below
//! zero, by moving decrement rights between replicas).
//!
//! Payload: `{{state_pncounter, PN}, {state_gmap, {state_max_int, T}}}`,
//! where `T` is an orddict `{From, To} -> Integer` of rights moved. The
//! values of `T` are raw integers, not `{state_max_int, N}` states, so
//! types' gmap raises `function_clause` as soon as both sides of a merge,
//! `equal` or `is_inflation` hold the same `{From, To}` key (even for
//! `merge(X, X)` once X has a transfer); refused here as
//! `{conflict, state_bcounter}`.
//!
//! - Merge: the pncounter merge, then the gmap merge (CTypes `=:=`; keys
//!   only on one side are kept).
//! - Equal: pncounter `equal` andalso gmap `equal` (same size, then the
//!   first key of A: absent in B gives false, present raises).
//! - Inflation: pncounter andalso gmap (raises as soon as A holds a
//!   transfer: types' gmap matches each of A's values as a `{Type, _}`
//!   state). Strict: as a pair's, `(strict1 andalso
//!   infl2) orelse (infl1 andalso strict2)`.
//! - Query: the pncounter's. Bottom: both components bottom.
//! - Operations: `increment`; `decrement` while the actor holds a right
//!   (its increments minus decrements, plus rights received, minus rights
//!   given); `{move, Count, To}` when it holds `Count` rights. Without
//!   enough rights: `{error, {precondition, non_enough_permissions}}`.
//!
//! types' own `equal` and `is_inflation` raise on two states holding the
//! same transfer (the transfer map's values are raw integers, not max_int
//! states); so do ours, raising `{badcrdt, {conflict, state_bcounter}}`,
//! and laws that need `equal` fall back to comparing payloads.
//!
//! Reference: Valter Balegas et al., *Extending Eventually Consistent Cloud
//! Databases for Enforcing Numeric Invariants* (2015).

use crate::crdt::Crdt;
use crate::decode::{self, Decoder};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Term};
use crate::types::gmap::{CType, Value};
use crate::types::PNCounter;

const TAG: Atom = Atom::StateBcounter;

/// A bounded counter.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::lattice::{Lattice, MutateCx};
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::BCounter;
///
/// struct Cx(OwnedBuilder);
/// impl MutateCx<T> for Cx {
///     type B = OwnedBuilder;
///     fn builder(&self) -> &OwnedBuilder { &self.0 }
///     fn token(&mut self) -> T { self.0.binary(&[0; 20]) }
/// }
/// let (b, mut cx) = (OwnedBuilder, Cx(OwnedBuilder));
/// let (alice, carol) = (T::atom("alice"), T::atom("carol"));
/// let c0 = BCounter::<T>::bottom();
/// // Carol holds no right to decrement yet.
/// assert!(c0.mutate(&T::atom("decrement"), &carol, &mut cx).is_err());
/// let c1 = c0.mutate(&T::atom("increment"), &alice, &mut cx).unwrap();
/// let mv = T::tuple([T::atom("move"), T::int(1), carol.clone()]);
/// let c2 = c1.mutate(&mv, &alice, &mut cx).unwrap();
/// let c3 = c2.mutate(&T::atom("decrement"), &carol, &mut cx).unwrap();
/// assert_eq!(c3.query(&b).unwrap(), T::int(0));
/// ```
#[derive(Debug, Clone)]
pub struct BCounter<T: Term> {
    /// The `{state_pncounter, _}` component.
    pn: Box<Value<T>>,
    /// The gmap's CType (`state_max_int`).
    ctype: CType<T>,
    /// `({From, To}, Rights)` in ascending key order.
    moved: Vec<(T, i64)>,
}

fn conflict() -> BadCrdt {
    BadCrdt::Conflict(TAG)
}

impl<T: Term> BCounter<T> {
    fn pn(&self) -> Result<&PNCounter<T>> {
        match &*self.pn.crdt {
            Crdt::PNCounter(p) => Ok(p),
            _ => Err(BadCrdt::Malformed(TAG)),
        }
    }

    fn same_ctype(&self, other: &Self) -> Result<()> {
        if self.ctype.identical(&other.ctype) {
            Ok(())
        } else {
            Err(conflict())
        }
    }

    /// types' gmap `equal/2` on the raw integers.
    fn moved_equal(&self, other: &Self) -> Result<bool> {
        self.same_ctype(other)?;
        if self.moved.len() != other.moved.len() {
            return Ok(false);
        }
        match self.moved.first() {
            None => Ok(true),
            Some((k, _)) if ord::find(&other.moved, k).is_some() => Err(conflict()),
            Some(_) => Ok(false),
        }
    }

    /// types' gmap `is_inflation/2` on the raw integers: its fun matches
    /// `{Key, {Type, _}}` on A's first entry, which a raw integer fails.
    fn moved_inflation(&self, other: &Self) -> Result<bool> {
        self.same_ctype(other)?;
        if self.moved.is_empty() {
            Ok(true)
        } else {
            Err(conflict())
        }
    }

    /// The rights `actor` holds: its increments minus decrements, plus
    /// rights received, minus rights given (`From`/`To` matched by `==`).
    fn permissions(&self, actor: &T) -> Result<i128> {
        let local = ord::find(&self.pn()?.entries, actor)
            .map_or(0, |(i, d)| i128::from(*i) - i128::from(*d));
        let mut total = local;
        for (k, v) in &self.moved {
            let (from, to) = k.as_pair().ok_or(conflict())?;
            if to.equal(actor) {
                total += i128::from(*v);
            }
            if from.equal(actor) {
                total -= i128::from(*v);
            }
        }
        Ok(total)
    }

    fn with_pn(&self, pn: Crdt<T>, moved: Vec<(T, i64)>) -> Self {
        BCounter {
            pn: Box::new(Value::new(pn)),
            ctype: self.ctype.clone(),
            moved,
        }
    }

    /// `{error, {precondition, non_enough_permissions}}`.
    fn no_rights<C: MutateCx<T>>(cx: &C) -> MutateError<T> {
        let b = cx.builder();
        MutateError::Reason(b.pair(
            b.atom(Atom::Precondition),
            b.atom(Atom::NonEnoughPermissions),
        ))
    }
}

impl<T: Term> Lattice<T> for BCounter<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        let (pn_t, gmap_t) = payload.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let (pn_tag, pn_payload) = pn_t.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        if !pn_tag.is_atom(Atom::StatePncounter) {
            return Err(BadCrdt::Malformed(TAG));
        }
        let pn = d.nested(|d| PNCounter::decode(&pn_payload, d))?;
        let (g_tag, g_payload) = gmap_t.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        if !g_tag.is_atom(Atom::StateGmap) {
            return Err(BadCrdt::Malformed(TAG));
        }
        let (ct, list) = g_payload.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let moved = d.orddict(TAG, &list, |_, v| decode::int(TAG, &v))?;
        Ok(BCounter {
            pn: Box::new(Value {
                crdt: std::sync::Arc::new(Crdt::PNCounter(pn)),
                term: Some(pn_t),
                entry: None,
            }),
            ctype: CType::Term(ct),
            moved,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        let items: Vec<T> = self
            .moved
            .iter()
            .map(|(k, v)| b.pair(k.clone(), b.int(*v)))
            .collect();
        let gmap = b.pair(
            b.atom(Atom::StateGmap),
            b.pair(self.ctype.encode(b), b.list(&items)),
        );
        b.pair(self.pn.encode(b), gmap)
    }

    fn bottom() -> Self {
        BCounter {
            pn: Box::new(Value::new(Crdt::PNCounter(PNCounter::bottom()))),
            ctype: CType::Atom(Atom::StateMaxInt),
            moved: Vec::new(),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        let (pn, pa, pb) = self.pn.merge(&other.pn)?;
        self.same_ctype(other)?;
        let moved = ord::orddict_merge(&self.moved, &other.moved, |_, _, _| Err(conflict()))?;
        if pa && other.moved.is_empty() {
            return Ok(Merged::Left);
        }
        if pb && self.moved.is_empty() {
            return Ok(Merged::Right);
        }
        Ok(Merged::New(BCounter {
            pn: Box::new(pn),
            ctype: self.ctype.clone(),
            moved,
        }))
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.pn.crdt.equal(&other.pn.crdt)? && self.moved_equal(other)?)
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        Ok(self.pn.crdt.is_inflation(&other.pn.crdt)? && self.moved_inflation(other)?)
    }

    fn is_strict_inflation(&self, other: &Self) -> Result<bool> {
        let (p1, p2) = (&self.pn.crdt, &other.pn.crdt);
        let moved_strict = |x: &Self, y: &Self| -> Result<bool> {
            Ok(x.moved_inflation(y)? && !x.moved_equal(y)?)
        };
        Ok(
            (p1.is_strict_inflation(p2)? && self.moved_inflation(other)?)
                || (p1.is_inflation(p2)? && moved_strict(self, other)?),
        )
    }

    fn is_bottom(&self) -> bool {
        self.pn.crdt.is_bottom() && self.moved.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        self.pn.crdt.query(b)
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        self.same_ctype(other)?;
        let pn = self.pn.crdt.delta(&other.pn.crdt)?;
        // Transfers the other side lacks (a shared one makes merge raise).
        let moved = self
            .moved
            .iter()
            .filter(|(k, _)| ord::find(&other.moved, k).is_none())
            .cloned()
            .collect();
        Ok(self.with_pn(pn, moved))
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let pn_bottom = || Crdt::PNCounter(PNCounter::bottom());
        if op.is_atom(Atom::Increment) {
            let d = self.pn.crdt.delta_mutate(op, actor, cx)?;
            return Ok(self.with_pn(d, Vec::new()));
        }
        if op.is_atom(Atom::Decrement) {
            if self.permissions(actor)? <= 0 {
                return Err(Self::no_rights(cx));
            }
            let d = self.pn.crdt.delta_mutate(op, actor, cx)?;
            return Ok(self.with_pn(d, Vec::new()));
        }
        let is_move =
            op.tuple_arity() == Some(3) && op.tuple_elem(0).is_some_and(|t| t.is_atom(Atom::Move));
        let (Some(count), Some(to)) = (op.tuple_elem(1), op.tuple_elem(2)) else {
            return Err(BadCrdt::UnknownOp(TAG).into());
        };
        if !is_move {
            return Err(BadCrdt::UnknownOp(TAG).into());
        }
        // The pattern `{state_gmap, {state_max_int, _}}` of types.
        if !self.ctype.identical(&CType::Atom(Atom::StateMaxInt)) {
            return Err(conflict().into());
        }
        let count = count.as_i64().ok_or(BadCrdt::UnknownOp(TAG))?;
        if i128::from(count) > self.permissions(actor)? {
            return Err(Self::no_rights(cx));
        }
        let key = cx.builder().pair(actor.clone(), to);
        let current = ord::find(&self.moved, &key).copied().unwrap_or(0);
        let next = current.checked_add(count).ok_or(BadCrdt::TooLarge)?;
        Ok(self.with_pn(pn_bottom(), vec![(key, next)]))
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testing::{dec, enc, merged, same, t, Cx, TB, TT};

    fn s(p: &str) -> BCounter<TT> {
        dec(p).unwrap()
    }

    fn mutate(x: &BCounter<TT>, op: &str, actor: &str) -> BCounter<TT> {
        x.mutate(&t(op), &t(actor), &mut Cx::default()).unwrap()
    }

    fn refused(x: &BCounter<TT>, op: &str, actor: &str) -> bool {
        matches!(
            x.delta_mutate(&t(op), &t(actor), &mut Cx::default()),
            Err(MutateError::Reason(_))
        )
    }

    #[test]
    fn move_follows_types_test() {
        // types' delta_move_test, From = 1, To = 2.
        let b0 = BCounter::<TT>::bottom();
        assert!(refused(&b0, "{move, 1, 2}", "1"));
        let b2 = mutate(&mutate(&b0, "increment", "1"), "increment", "1");
        assert!(refused(&b2, "{move, 3, 2}", "1"));
        assert!(refused(&b2, "decrement", "2"));
        let b3 = mutate(&b2, "{move, 2, 2}", "1");
        same(
            &enc(&b3),
            &t("{{state_pncounter, [{1, {2, 0}}]}, {state_gmap, {state_max_int, [{{1, 2}, 2}]}}}"),
        );
        assert!(refused(&b3, "{move, 1, 2}", "1"));
        let b4 = mutate(&b3, "decrement", "2");
        assert!(refused(&b4, "decrement", "1"));
        assert!(refused(&b4, "{move, 2, 1}", "2"));
        let b5 = mutate(&b4, "{move, 1, 1}", "2");
        let b6 = mutate(&b5, "decrement", "1");
        same(
            &enc(&b6),
            &t("{{state_pncounter, [{1, {2, 1}}, {2, {0, 1}}]}, {state_gmap, {state_max_int, [{{1, 2}, 2}, {{2, 1}, 1}]}}}"),
        );
        same(&b6.query(&TB).unwrap(), &t("0"));
    }

    #[test]
    fn shared_transfer_keys_raise_test() {
        let x =
            s("{{state_pncounter, [{1, {2, 0}}]}, {state_gmap, {state_max_int, [{{1, 2}, 2}]}}}");
        assert_eq!(x.merge(&x.clone()).unwrap_err(), BadCrdt::Conflict(TAG));
        assert_eq!(x.equal(&x.clone()).unwrap_err(), BadCrdt::Conflict(TAG));
        let y = s("{{state_pncounter, [{1, {2, 0}}]}, {state_gmap, {state_max_int, []}}}");
        same(&merged(&x, &y).unwrap(), &enc(&x));
        assert!(y.is_inflation(&x).unwrap());
        assert!(x.is_inflation(&y).is_err());
        assert!(y.is_strict_inflation(&x).unwrap());
    }
}
