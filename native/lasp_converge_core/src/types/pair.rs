//! `state_pair`: the product of two CRDTs.
//!
//! Payload: `{FstCRDT, SndCRDT}`, two full `{Type, Payload}` states; `new()`
//! is a pair of `state_ivar`s.
//!
//! - Merge, equal, is_bottom and is_inflation are component-wise. The
//!   component types of both arguments must match (types raises
//!   `function_clause` otherwise, refused here as `{type_mismatch, ...}`),
//!   and `andalso` stops at the first false, as types does.
//! - Strict inflation: `(strict1 andalso infl2) orelse (infl1 andalso
//!   strict2)`.
//! - Query: `{Q1, Q2}`. Set-valued parts are lists here; the Erlang wrapper
//!   turns them into sets.
//! - Operations: `{fst, Op}` and `{snd, Op}` run `Op` on one component; the
//!   delta holds the other component's `Type:new()`.
//!
//! Components are decoded one nesting level deeper, so nesting is bounded
//! by [`crate::decode::Limits::max_depth`].
//!
//! Reference: Carlos Baquero, Paulo Sérgio Almeida, Alcino Cunha, Carla
//! Ferreira, *Composition of State-based CRDTs* (2015).

use crate::crdt::Crdt;
use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Term};
use crate::types::gmap::Value;
use crate::types::{GMap, IVar};

const TAG: Atom = Atom::StatePair;

/// A pair of CRDTs.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::lattice::{Lattice, MutateCx};
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::Pair;
///
/// struct Cx(OwnedBuilder);
/// impl MutateCx<T> for Cx {
///     type B = OwnedBuilder;
///     fn builder(&self) -> &OwnedBuilder { &self.0 }
///     fn token(&mut self) -> T { self.0.binary(&[0; 20]) }
/// }
/// let (b, mut cx) = (OwnedBuilder, Cx(OwnedBuilder));
/// let set = |side: &str, v: T| b.pair(T::atom(side), b.pair(T::atom("set"), v));
/// let p0 = Pair::<T>::bottom();
/// let a = p0.mutate(&set("fst", T::int(1)), &T::atom("alice"), &mut cx).unwrap();
/// let c = p0.mutate(&set("snd", T::int(2)), &T::atom("carol"), &mut cx).unwrap();
/// let m = a.merge(&c).unwrap().into_state(&a, &c);
/// assert_eq!(m.query(&b).unwrap(), b.pair(T::int(1), T::int(2)));
/// ```
#[derive(Debug, Clone)]
pub struct Pair<T: Term> {
    /// The first component.
    pub fst: Box<Value<T>>,
    /// The second component.
    pub snd: Box<Value<T>>,
}

impl<T: Term> Pair<T> {
    /// A pair of two states.
    pub fn new(fst: Crdt<T>, snd: Crdt<T>) -> Self {
        Pair {
            fst: Box::new(Value::new(fst)),
            snd: Box::new(Value::new(snd)),
        }
    }

    /// The clause match of types: both component types agree.
    fn same_types(&self, other: &Self) -> Result<()> {
        let (f1, f2) = (self.fst.crdt.tag(), other.fst.crdt.tag());
        if f1 != f2 {
            return Err(BadCrdt::TypeMismatch(f1, f2));
        }
        let (s1, s2) = (self.snd.crdt.tag(), other.snd.crdt.tag());
        if s1 != s2 {
            return Err(BadCrdt::TypeMismatch(s1, s2));
        }
        Ok(())
    }
}

impl<T: Term> Lattice<T> for Pair<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        let (f, s) = payload.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let comp = |d: &mut Decoder, t: T| -> Result<Value<T>> {
            let crdt = d.nested(|d| Crdt::decode(&t, d)).map_err(|e| match e {
                BadCrdt::NotACrdt | BadCrdt::UnknownType => BadCrdt::Malformed(TAG),
                e => e,
            })?;
            Ok(Value {
                crdt: std::sync::Arc::new(crdt),
                term: Some(t),
                entry: None,
            })
        };
        let fst = comp(d, f)?;
        let snd = comp(d, s)?;
        Ok(Pair {
            fst: Box::new(fst),
            snd: Box::new(snd),
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        b.pair(self.fst.encode(b), self.snd.encode(b))
    }

    fn bottom() -> Self {
        Pair::new(Crdt::IVar(IVar::bottom()), Crdt::IVar(IVar::bottom()))
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        self.same_types(other)?;
        let (f, fa, fb) = self.fst.merge(&other.fst)?;
        let (s, sa, sb) = self.snd.merge(&other.snd)?;
        Ok(if fa && sa {
            Merged::Left
        } else if fb && sb {
            Merged::Right
        } else {
            Merged::New(Pair {
                fst: Box::new(f),
                snd: Box::new(s),
            })
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        self.same_types(other)?;
        Ok(self.fst.crdt.equal(&other.fst.crdt)? && self.snd.crdt.equal(&other.snd.crdt)?)
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        self.same_types(other)?;
        Ok(self.fst.crdt.is_inflation(&other.fst.crdt)?
            && self.snd.crdt.is_inflation(&other.snd.crdt)?)
    }

    fn is_strict_inflation(&self, other: &Self) -> Result<bool> {
        self.same_types(other)?;
        let (f1, f2) = (&self.fst.crdt, &other.fst.crdt);
        let (s1, s2) = (&self.snd.crdt, &other.snd.crdt);
        Ok((f1.is_strict_inflation(f2)? && s1.is_inflation(s2)?)
            || (f1.is_inflation(f2)? && s1.is_strict_inflation(s2)?))
    }

    fn is_bottom(&self) -> bool {
        self.fst.crdt.is_bottom() && self.snd.crdt.is_bottom()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        Ok(b.pair(self.fst.crdt.query(b)?, self.snd.crdt.query(b)?))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        self.same_types(other)?;
        Ok(Pair::new(
            self.fst.crdt.delta(&other.fst.crdt)?,
            self.snd.crdt.delta(&other.snd.crdt)?,
        ))
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let (side, inner) = op.as_pair().ok_or(BadCrdt::UnknownOp(TAG))?;
        let fresh = |v: &Value<T>, cx: &C| state_type_new(&v.crdt, cx.builder());
        if side.is_atom(Atom::Fst) {
            let d = self.fst.crdt.delta_mutate(&inner, actor, cx)?;
            Ok(Pair::new(d, fresh(&self.snd, cx)?))
        } else if side.is_atom(Atom::Snd) {
            let d = self.snd.crdt.delta_mutate(&inner, actor, cx)?;
            Ok(Pair::new(fresh(&self.fst, cx)?, d))
        } else {
            Err(BadCrdt::UnknownOp(TAG).into())
        }
    }
}

/// `state_type:new/1` of the untouched component: a gmap keeps its CType
/// (`state_gmap:new([CType])`), a pair is rebuilt part by part, and any
/// other type is `Type:new()` (so an awmap falls back to its default CType).
fn state_type_new<T: Term, B: Builder<T = T>>(c: &Crdt<T>, b: &B) -> Result<Crdt<T>> {
    match c {
        Crdt::GMap(g) => Ok(Crdt::GMap(GMap {
            ctype: g.ctype.clone(),
            entries: Vec::new(),
        })),
        Crdt::Pair(p) => Ok(Crdt::Pair(Pair::new(
            state_type_new(&p.fst.crdt, b)?,
            state_type_new(&p.snd.crdt, b)?,
        ))),
        other => Crdt::bottom(&b.atom(other.tag())),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testing::{dec, enc, merged, same, t, Cx, TB, TT};

    fn s(p: &str) -> Pair<TT> {
        dec(p).unwrap()
    }

    #[test]
    fn merge_is_component_wise_test() {
        let a = s("{{state_gcounter, [{a, 1}]}, {state_gset, [x]}}");
        let b = s("{{state_gcounter, [{a, 2}]}, {state_gset, [y]}}");
        same(
            &merged(&a, &b).unwrap(),
            &t("{{state_gcounter, [{a, 2}]}, {state_gset, [x, y]}}"),
        );
        assert!(a
            .is_inflation(&s("{{state_gcounter, [{a, 2}]}, {state_gset, [x, y]}}"))
            .unwrap());
        assert!(!a.is_inflation(&b).unwrap());
        same(&a.query(&TB).unwrap(), &t("{1, [x]}"));
    }

    #[test]
    fn mismatched_components_raise_test() {
        let a = s("{{state_gcounter, []}, {state_gset, []}}");
        let b = s("{{state_max_int, 0}, {state_gset, []}}");
        assert!(a.merge(&b).is_err());
        assert!(a.equal(&b).is_err());
        assert_eq!(
            dec::<Pair<TT>>("{1, {state_gset, []}}").unwrap_err(),
            BadCrdt::Malformed(TAG)
        );
    }

    #[test]
    fn mutate_builds_the_other_bottom_test() {
        let p = Pair::<TT>::bottom();
        assert!(p.is_bottom());
        let d = p
            .delta_mutate(&t("{snd, {set, 3}}"), &t("a"), &mut Cx::default())
            .unwrap();
        same(&enc(&d), &t("{{state_ivar, undefined}, {state_ivar, 3}}"));
        assert!(p.is_strict_inflation(&d).unwrap());
    }

    #[test]
    fn mutate_keeps_a_gmap_ctype_test() {
        // types' state_type:new/1 keeps a gmap's CType and recurses into a
        // pair, so the other side of the merge matches.
        let p = s("{{state_gmap, {state_lwwregister, []}}, {state_max_int, 0}}");
        let d = p
            .delta_mutate(&t("{snd, increment}"), &t("a"), &mut Cx::default())
            .unwrap();
        same(
            &enc(&d),
            &t("{{state_gmap, {state_lwwregister, []}}, {state_max_int, 1}}"),
        );
        same(
            &enc(&p
                .mutate(&t("{snd, increment}"), &t("a"), &mut Cx::default())
                .unwrap()),
            &t("{{state_gmap, {state_lwwregister, []}}, {state_max_int, 1}}"),
        );
        let q = s(
            "{{state_pair, {{state_gmap, {state_gset, [{k, {state_gset, [x]}}]}}, \
                   {state_gcounter, [{a, 1}]}}}, {state_gset, []}}",
        );
        let d = q
            .delta_mutate(&t("{snd, {add, y}}"), &t("a"), &mut Cx::default())
            .unwrap();
        same(
            &enc(&d),
            &t(
                "{{state_pair, {{state_gmap, {state_gset, []}}, {state_gcounter, []}}}, \
                {state_gset, [y]}}",
            ),
        );
    }
}
