//! `state_awmap`: an add-wins map whose values are causal CRDTs.
//!
//! Payload: `{CType, {DotMap, CC}}`. `CType` is `state_awset` (the
//! default), `state_mvregister`, `state_ewflag`, `state_dwflag` or
//! `{state_awmap, [SubCType]}`, nesting. `DotMap` maps each key to that
//! type's dot store (an awset's dot map, a dot fun, a dot set or a nested
//! dot map); one causal context `CC` covers them all (see
//! [`crate::causal`]).
//!
//! - Merge: the CTypes must be `=:=` (types raises `function_clause`
//!   otherwise, refused here as `{conflict, state_awmap}`); then the causal
//!   merge of the dot maps, term for term.
//! - Equal: `PayloadA == PayloadB`. Inflation: generic. Bottom: `==
//!   new()`, so an empty map whose CType is not `state_awset` is not bottom.
//! - Query: an orddict `Key -> query` of the value type: an awset's
//!   elements, an mvregister's values (both lists here; the Erlang wrapper
//!   makes them sets), a flag's boolean, or a nested map's orddict. None of
//!   these reads the context.
//! - Operations: `{apply, Key, Op}` runs the value type's `Op` on
//!   `{Type, {SubStore, CC}}` (the key's store, `[]` when absent) and maps
//!   the key to the delta's store (no key when that store is `[]`), with the
//!   delta's context. `{rmv, Key}` gives no store and a context covering
//!   every dot under the key.
//!
//! Reference: Paulo Sérgio Almeida, Ali Shoker, Carlos Baquero, *Delta State
//! Replicated Data Types* (2016).

use std::cmp::Ordering;

use crate::causal::{Causal, Kind};
use crate::crdt::Crdt;
use crate::decode::{Decoder, Limits};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Cell, Term};
use crate::types::gmap::CType;
use crate::types::{EWFlag, MVRegister};

const TAG: Atom = Atom::StateAwmap;

/// The value types an awmap holds.
enum ValueType<T> {
    AWSet,
    MVRegister,
    EWFlag,
    DWFlag,
    /// A nested awmap, with its own CType term.
    AWMap(T),
}

/// `state_type:extract_args/1` of a CType, as a value type.
fn value_type<T: Term>(ct: &T) -> Result<ValueType<T>> {
    if ct.is_atom(Atom::StateAwset) {
        Ok(ValueType::AWSet)
    } else if ct.is_atom(Atom::StateMvregister) {
        Ok(ValueType::MVRegister)
    } else if ct.is_atom(Atom::StateEwflag) {
        Ok(ValueType::EWFlag)
    } else if ct.is_atom(Atom::StateDwflag) {
        Ok(ValueType::DWFlag)
    } else {
        let (ty, args) = ct.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        if !ty.is_atom(TAG) {
            return Err(BadCrdt::Malformed(TAG));
        }
        match args.cell() {
            Cell::Cons(sub, rest) if matches!(rest.cell(), Cell::Nil) => Ok(ValueType::AWMap(sub)),
            _ => Err(BadCrdt::Malformed(TAG)),
        }
    }
}

/// The dot-store kind of a CType's values; nested CTypes go one level
/// deeper each.
fn kind_of<T: Term>(ct: &T, d: &mut Decoder) -> Result<Kind> {
    Ok(match value_type(ct)? {
        ValueType::AWSet => Kind::Map(Box::new(Kind::Set)),
        ValueType::MVRegister => Kind::Fun,
        ValueType::EWFlag | ValueType::DWFlag => Kind::Set,
        ValueType::AWMap(sub) => Kind::Map(Box::new(d.nested(|d| kind_of(&sub, d))?)),
    })
}

/// The elements of a proper list (already validated by decoding).
fn elems<T: Term>(list: &T) -> Vec<T> {
    let mut out = Vec::new();
    let mut cur = list.clone();
    while let Cell::Cons(h, t) = cur.cell() {
        out.push(h);
        cur = t;
    }
    out
}

/// `dot_map:fetch(Key, DotMap, [])`: the store of `key` (found by `==`).
fn fetch<T: Term, B: Builder<T = T>>(dot_map: &T, key: &T, b: &B) -> T {
    for e in elems(dot_map) {
        if let Some((k, v)) = e.as_pair() {
            match k.compare(key) {
                Ordering::Equal => return v,
                Ordering::Greater => break,
                Ordering::Less => {}
            }
        }
    }
    b.nil()
}

/// Every dot of a dot store of the given value type.
fn dots<T: Term>(vt: &ValueType<T>, ds: &T, out: &mut Vec<T>) -> Result<()> {
    match vt {
        ValueType::EWFlag | ValueType::DWFlag => out.extend(elems(ds)),
        ValueType::MVRegister => {
            for e in elems(ds) {
                out.push(e.as_pair().ok_or(BadCrdt::Malformed(TAG))?.0);
            }
        }
        ValueType::AWSet => {
            for e in elems(ds) {
                out.extend(elems(&e.as_pair().ok_or(BadCrdt::Malformed(TAG))?.1));
            }
        }
        ValueType::AWMap(sub) => {
            let svt = value_type(sub)?;
            for e in elems(ds) {
                dots(&svt, &e.as_pair().ok_or(BadCrdt::Malformed(TAG))?.1, out)?;
            }
        }
    }
    Ok(())
}

/// The query of one value: its type's query over its store.
fn query_value<T: Term, B: Builder<T = T>>(vt: &ValueType<T>, ds: &T, b: &B) -> Result<T> {
    Ok(match vt {
        ValueType::AWSet => {
            let keys: Vec<T> = elems(ds)
                .iter()
                .map(|e| e.as_pair().map(|(k, _)| k).ok_or(BadCrdt::Malformed(TAG)))
                .collect::<Result<_>>()?;
            b.list(&keys)
        }
        ValueType::MVRegister => {
            let payload = b.pair(ds.clone(), b.pair(b.nil(), b.nil()));
            MVRegister::decode(&payload, &mut Decoder::new(Limits::dirty()))?.query(b)?
        }
        ValueType::EWFlag => b.bool(!matches!(ds.cell(), Cell::Nil)),
        ValueType::DWFlag => b.bool(matches!(ds.cell(), Cell::Nil)),
        ValueType::AWMap(sub) => query_map(&value_type(sub)?, ds, b)?,
    })
}

/// The query of a dot map: `[{Key, Query}]` in key order.
fn query_map<T: Term, B: Builder<T = T>>(vt: &ValueType<T>, dot_map: &T, b: &B) -> Result<T> {
    let mut items = Vec::new();
    for e in elems(dot_map) {
        let (k, ds) = e.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        items.push(b.pair(k, query_value(vt, &ds, b)?));
    }
    Ok(b.list(&items))
}

/// An add-wins map of causal CRDTs.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::lattice::{Lattice, MutateCx};
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::AWMap;
///
/// struct Cx(OwnedBuilder);
/// impl MutateCx<T> for Cx {
///     type B = OwnedBuilder;
///     fn builder(&self) -> &OwnedBuilder { &self.0 }
///     fn token(&mut self) -> T { self.0.binary(&[0; 20]) }
/// }
/// let (b, mut cx) = (OwnedBuilder, Cx(OwnedBuilder));
/// let add = |k: &str, e: i64| {
///     T::tuple([T::atom("apply"), T::atom(k), b.pair(T::atom("add"), T::int(e))])
/// };
/// let m0 = AWMap::<T>::bottom();
/// let a = m0.mutate(&add("x", 1), &T::atom("alice"), &mut cx).unwrap();
/// let c = m0.mutate(&add("x", 2), &T::atom("carol"), &mut cx).unwrap();
/// let m = a.merge(&c).unwrap().into_state(&a, &c);
/// assert_eq!(
///     m.query(&b).unwrap(),
///     b.list(&[b.pair(T::atom("x"), b.list(&[T::int(1), T::int(2)]))])
/// );
/// ```
#[derive(Debug, Clone)]
pub struct AWMap<T: Term> {
    ctype: CType<T>,
    state: Causal<T>,
}

impl<T: Term> AWMap<T> {
    /// The causal state.
    pub fn causal(&self) -> &Causal<T> {
        &self.state
    }

    /// `state_awmap:new([CType])`.
    pub fn with_ctype(ct: &T) -> Result<Self> {
        let kind = Kind::Map(Box::new(kind_of(ct, &mut Decoder::new(Limits::dirty()))?));
        Ok(AWMap {
            ctype: CType::Term(ct.clone()),
            state: Causal::bottom(&kind),
        })
    }

    fn same_ctype(&self, other: &Self) -> Result<()> {
        if self.ctype.identical(&other.ctype) {
            Ok(())
        } else {
            Err(BadCrdt::Conflict(TAG))
        }
    }

    /// `{rmv, Key}`: no store, a context covering the key's dots.
    fn rmv<C: MutateCx<T>>(&self, key: &T, actor: &T, cx: &mut C) -> Result<Self> {
        let b = cx.builder();
        let ct = self.ctype.encode(b);
        let (dot_map, _) = self
            .state
            .encode(b)
            .as_pair()
            .ok_or(BadCrdt::Malformed(TAG))?;
        let sub = fetch(&dot_map, key, b);
        let mut ds = Vec::new();
        dots(&value_type(&ct)?, &sub, &mut ds)?;
        // `causal_context:from_dot_set/1` of the ordset of those dots: what
        // an ewflag's `disable` builds from its dot set.
        ds.sort_by(|x, y| x.compare(y));
        ds.dedup_by(|x, y| x.compare(y) == Ordering::Equal);
        let flag = b.pair(b.list(&ds), b.pair(b.nil(), b.nil()));
        let flag = EWFlag::decode(&flag, &mut Decoder::new(Limits::dirty()))?;
        let disable = b.atom(Atom::Disable);
        let delta = flag.delta_mutate(&disable, actor, cx).map_err(bad)?;
        let b = cx.builder();
        let (_, cc) = delta.encode(b).as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let payload = b.pair(ct, b.pair(b.nil(), cc));
        Self::decode(&payload, &mut Decoder::new(Limits::dirty()))
    }

    /// `{apply, Key, Op}`: the value type's delta, under the key.
    fn apply<C: MutateCx<T>>(&self, key: &T, op: &T, actor: &T, cx: &mut C) -> Result<Self> {
        let b = cx.builder();
        let ct = self.ctype.encode(b);
        let (dot_map, cc) = self
            .state
            .encode(b)
            .as_pair()
            .ok_or(BadCrdt::Malformed(TAG))?;
        let sub = fetch(&dot_map, key, b);
        let vt = value_type(&ct)?;
        let value = match &vt {
            ValueType::AWMap(sub_ct) => {
                b.pair(b.atom(TAG), b.pair(sub_ct.clone(), b.pair(sub, cc.clone())))
            }
            other => {
                let tag = match other {
                    ValueType::AWSet => Atom::StateAwset,
                    ValueType::MVRegister => Atom::StateMvregister,
                    ValueType::EWFlag => Atom::StateEwflag,
                    _ => Atom::StateDwflag,
                };
                b.pair(b.atom(tag), b.pair(sub, cc.clone()))
            }
        };
        let value = Crdt::decode(&value, &mut Decoder::new(Limits::dirty()))?;
        let delta = value.delta_mutate(op, actor, cx).map_err(bad)?;
        let b = cx.builder();
        let (_, sub_delta) = delta.encode(b).as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let sub_delta = match vt {
            ValueType::AWMap(_) => sub_delta.as_pair().ok_or(BadCrdt::Malformed(TAG))?.1,
            _ => sub_delta,
        };
        let (delta_ds, delta_cc) = sub_delta.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let ds = if matches!(delta_ds.cell(), Cell::Nil) {
            b.nil()
        } else {
            b.list(&[b.pair(key.clone(), delta_ds)])
        };
        let payload = b.pair(ct, b.pair(ds, delta_cc));
        Self::decode(&payload, &mut Decoder::new(Limits::dirty()))
    }
}

/// types matches `{ok, _}` on the value type's delta: an `{error, _}` there
/// raises.
fn bad<T>(e: MutateError<T>) -> BadCrdt {
    match e {
        MutateError::Bad(e) => e,
        MutateError::Reason(_) => BadCrdt::Conflict(TAG),
    }
}

impl<T: Term> Lattice<T> for AWMap<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        let (ct, causal) = payload.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let kind = Kind::Map(Box::new(kind_of(&ct, d)?));
        Ok(AWMap {
            state: Causal::decode(&causal, &kind, d, TAG)?,
            ctype: CType::Term(ct),
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        b.pair(self.ctype.encode(b), self.state.encode(b))
    }

    fn bottom() -> Self {
        AWMap {
            ctype: CType::Atom(Atom::StateAwset),
            state: Causal::bottom(&Kind::Map(Box::new(Kind::Map(Box::new(Kind::Set))))),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        self.same_ctype(other)?;
        Ok(match self.state.merge(&other.state, TAG)? {
            Merged::Left => Merged::Left,
            Merged::Right => Merged::Right,
            Merged::New(state) => Merged::New(AWMap {
                ctype: self.ctype.clone(),
                state,
            }),
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.ctype.identical(&other.ctype) && self.state.equal(&other.state))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        self.same_ctype(other)?;
        self.state.is_inflation(&other.state, TAG)
    }

    fn is_bottom(&self) -> bool {
        self.ctype.identical(&CType::Atom(Atom::StateAwset)) && self.state.is_bottom()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        let ct = self.ctype.encode(b);
        let (dot_map, _) = self
            .state
            .encode(b)
            .as_pair()
            .ok_or(BadCrdt::Malformed(TAG))?;
        query_map(&value_type(&ct)?, &dot_map, b)
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        self.same_ctype(other)?;
        Ok(AWMap {
            ctype: self.ctype.clone(),
            state: self.state.delta(&other.state, TAG)?,
        })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let name = op.tuple_elem(0).ok_or(BadCrdt::UnknownOp(TAG))?;
        match op.tuple_arity() {
            Some(3) if name.is_atom(Atom::Apply) => {
                let (Some(key), Some(kop)) = (op.tuple_elem(1), op.tuple_elem(2)) else {
                    return Err(BadCrdt::UnknownOp(TAG).into());
                };
                Ok(self.apply(&key, &kop, actor, cx)?)
            }
            Some(2) if name.is_atom(Atom::Rmv) => {
                let key = op.tuple_elem(1).ok_or(BadCrdt::UnknownOp(TAG))?;
                Ok(self.rmv(&key, actor, cx)?)
            }
            _ => Err(BadCrdt::UnknownOp(TAG).into()),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testing::{dec, enc, same, t, Cx, TB, TT};

    fn s(p: &str) -> AWMap<TT> {
        dec(p).unwrap()
    }

    fn mutate(x: &AWMap<TT>, op: &str, actor: &str) -> AWMap<TT> {
        x.mutate(&t(op), &t(actor), &mut Cx::default()).unwrap()
    }

    #[test]
    fn apply_and_rmv_follow_types_test() {
        // types' own apply_test and rmv_test, actor 1.
        let m0 = AWMap::<TT>::bottom();
        let m1 = mutate(&m0, "{apply, b, {add, 3}}", "1");
        same(
            &enc(&m1),
            &t("{state_awset, {[{b, [{3, [{1, 1}]}]}], {[{1, 1}], []}}}"),
        );
        let m2 = mutate(&m1, "{apply, a, {add, 17}}", "1");
        let m3 = mutate(&m2, "{apply, b, {add, 13}}", "1");
        let m4 = mutate(&m3, "{apply, b, {rmv, 3}}", "1");
        same(
            &enc(&m4),
            &t("{state_awset, {[{a, [{17, [{1, 2}]}]}, {b, [{13, [{1, 3}]}]}], {[{1, 3}], []}}}"),
        );
        let m5 = mutate(&m4, "{rmv, b}", "1");
        same(
            &enc(&m5),
            &t("{state_awset, {[{a, [{17, [{1, 2}]}]}], {[{1, 3}], []}}}"),
        );
        same(&m5.query(&TB).unwrap(), &t("[{a, [17]}]"));
        assert!(m4.is_strict_inflation(&m5).unwrap());
    }

    #[test]
    fn value_types_query_test() {
        let f = s("{state_ewflag, {[{k, [{a, 1}]}], {[{a, 1}], []}}}");
        same(&f.query(&TB).unwrap(), &t("[{k, true}]"));
        let r =
            s("{state_mvregister, {[{k, [{{a, 1}, x}, {{b, 1}, x}]}], {[{a, 1}, {b, 1}], []}}}");
        same(&r.query(&TB).unwrap(), &t("[{k, [x]}]"));
        let n =
            s("{{state_awmap, [state_awset]}, {[{k, [{j, [{e, [{a, 1}]}]}]}], {[{a, 1}], []}}}");
        same(&n.query(&TB).unwrap(), &t("[{k, [{j, [e]}]}]"));
        assert!(!s("{state_ewflag, {[], {[], []}}}").is_bottom());
        assert!(s("{state_awset, {[], {[], []}}}").is_bottom());
    }

    #[test]
    fn ctypes_must_match_test() {
        let a = s("{state_ewflag, {[], {[], []}}}");
        let b = s("{state_dwflag, {[], {[], []}}}");
        assert!(a.merge(&b).is_err());
        assert!(!a.equal(&b).unwrap());
        assert_eq!(
            dec::<AWMap<TT>>("{state_gset, {[], {[], []}}}").unwrap_err(),
            BadCrdt::Malformed(TAG)
        );
    }
}
