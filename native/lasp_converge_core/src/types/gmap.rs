//! `state_gmap`: a grow-only map whose values are CRDTs.
//!
//! Payload: `{CType, [{Key, ValueCRDT}]}`, an orddict of full `{Type,
//! Payload}` states. `CType` is a type atom or `{Type, Args}`; `new()` uses
//! `state_max_int`. A value's type is usually the CType's, but
//! `{apply, Key, OpType, Op}` can give a key another type.
//!
//! - Merge: the CTypes must be `=:=`. Then `orddict:merge` over keys (the
//!   key term of the first argument is kept on `==` keys); a shared key
//!   needs the same type on both values and is merged with that type's
//!   merge. Anything else makes types raise `function_clause`, refused here
//!   as a `BadCrdt`.
//! - Equal: same size, and every key of A found (`==`) in B with an equal
//!   value (stopping at the first false).
//! - Inflation: every key of A is in B with an inflated value. Strict:
//!   generic.
//! - Query: `[{Key, Type:query(Value)}]` in key order, each value by its
//!   own type. Set-valued parts are lists here; the Erlang wrapper turns
//!   them into sets.
//! - Bottom: an empty orddict, whatever the CType.
//! - `delta(A, B)`: A's keys B lacks, and the values' own deltas of the
//!   shared keys (a bottom delta dropped).
//! - Operations: `{apply, Key, Op}` runs `Op` on the key's value (or on
//!   `Type:new(Args)` of the CType when the key is absent), and
//!   `{apply, Key, OpType, Op}` does so with `OpType` instead of the CType;
//!   the delta maps the key to the value's delta.
//!
//! Values are decoded one nesting level deeper, so nesting is bounded by
//! [`crate::decode::Limits::max_depth`].
//!
//! Reference: Carlos Baquero, *delta-enabled-crdts* (C++ library).

use std::sync::Arc;

use crate::crdt::Crdt;
use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::ord;
use crate::term::{Atom, Builder, Cell, Term};
use crate::types::pair::Pair;
use crate::types::AWMap;

const TAG: Atom = Atom::StateGmap;

/// A value CRDT, with the term it was decoded from (or merged into,
/// unchanged) so encoding reuses it.
#[derive(Debug, Clone)]
pub struct Value<T: Term> {
    /// The decoded state, shared: merges copy entries, not states.
    pub crdt: Arc<Crdt<T>>,
    /// The `{Type, Payload}` term, when the state is exactly it.
    pub term: Option<T>,
    /// In a map, the `{Key, Value}` entry term this value came with, when
    /// the entry is exactly it (encoding reuses it instead of a new tuple).
    pub entry: Option<T>,
}

impl<T: Term> Value<T> {
    /// A value with no term yet.
    pub fn new(crdt: Crdt<T>) -> Self {
        Value {
            crdt: Arc::new(crdt),
            term: None,
            entry: None,
        }
    }

    /// Encode `{Type, Payload}`.
    pub fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        match &self.term {
            Some(t) => t.clone(),
            None => self.crdt.encode(b),
        }
    }

    /// Merge two values, reusing an input term when the result is one.
    /// Also says whether the result is exactly (`=:=`) `self`, and
    /// exactly `other`.
    pub fn merge(&self, other: &Self) -> Result<(Self, bool, bool)> {
        Ok(match self.crdt.merge(&other.crdt)? {
            Merged::Left => (self.clone(), true, self.identical(other)),
            // B's value without B's entry term: in a map the entry keeps
            // A's key, which may be another (`==`) term than B's.
            Merged::Right => (
                Value {
                    entry: None,
                    ..other.clone()
                },
                self.identical(other),
                true,
            ),
            Merged::New(c) => (Value::new(c), false, false),
        })
    }

    /// Whether both values are known to be the same term (`=:=`).
    fn identical(&self, other: &Self) -> bool {
        match (&self.term, &other.term) {
            (Some(a), Some(b)) => a.identical(b),
            _ => false,
        }
    }
}

/// A CType: `state_max_int` by default, or the term found in a payload.
#[derive(Debug, Clone)]
pub enum CType<T> {
    /// An atom naming a type, built on demand (for `new()`).
    Atom(Atom),
    /// The CType term of a payload.
    Term(T),
}

impl<T: Term> CType<T> {
    /// Encode the CType term.
    pub fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        match self {
            CType::Atom(a) => b.atom(*a),
            CType::Term(t) => t.clone(),
        }
    }

    /// `=:=`.
    pub fn identical(&self, other: &Self) -> bool {
        match (self, other) {
            (CType::Atom(a), CType::Atom(b)) => a == b,
            (CType::Atom(a), CType::Term(t)) | (CType::Term(t), CType::Atom(a)) => t.is_atom(*a),
            (CType::Term(x), CType::Term(y)) => x.identical(y),
        }
    }
}

/// `Type:new(Args)` for a CType term (`Type` or `{Type, Args}`).
pub fn new_of_ctype<T: Term>(ct: &T) -> Result<Crdt<T>> {
    if let Some((ty, args)) = ct.as_pair() {
        let arg1 = |args: &T| -> Result<Vec<T>> {
            let mut out = Vec::new();
            let mut cur = args.clone();
            loop {
                match cur.cell() {
                    Cell::Nil => return Ok(out),
                    Cell::Cons(h, t) => {
                        out.push(h);
                        cur = t;
                    }
                    Cell::NotList => return Err(BadCrdt::Malformed(TAG)),
                }
            }
        };
        let args = arg1(&args)?;
        if ty.is_atom(Atom::StateGmap) {
            if let [c] = args.as_slice() {
                return Ok(Crdt::GMap(GMap {
                    ctype: CType::Term(c.clone()),
                    entries: Vec::new(),
                }));
            }
        } else if ty.is_atom(Atom::StatePair) {
            if let [f, s] = args.as_slice() {
                return Ok(Crdt::Pair(Pair::new(new_of_ctype(f)?, new_of_ctype(s)?)));
            }
        } else if ty.is_atom(Atom::StateAwmap) {
            if let [c] = args.as_slice() {
                return Ok(Crdt::AWMap(Box::new(AWMap::with_ctype(c)?)));
            }
        } else if args.is_empty() {
            return Crdt::bottom(&ty);
        }
        return Err(BadCrdt::Malformed(TAG));
    }
    Crdt::bottom(ct)
}

/// A grow-only map of CRDTs.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::lattice::{Lattice, MutateCx};
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::GMap;
///
/// struct Cx(OwnedBuilder);
/// impl MutateCx<T> for Cx {
///     type B = OwnedBuilder;
///     fn builder(&self) -> &OwnedBuilder { &self.0 }
///     fn token(&mut self) -> T { self.0.binary(&[0; 20]) }
/// }
/// let (b, mut cx) = (OwnedBuilder, Cx(OwnedBuilder));
/// let inc = |k: &str| T::tuple([T::atom("apply"), T::atom(k), T::atom("increment")]);
/// let m0 = GMap::<T>::bottom();
/// let a = m0.mutate(&inc("x"), &T::atom("alice"), &mut cx).unwrap();
/// let c = m0.mutate(&inc("y"), &T::atom("carol"), &mut cx).unwrap();
/// let m = a.merge(&c).unwrap().into_state(&a, &c);
/// assert_eq!(
///     m.query(&b).unwrap(),
///     b.list(&[b.pair(T::atom("x"), T::int(1)), b.pair(T::atom("y"), T::int(1))])
/// );
/// ```
#[derive(Debug, Clone)]
pub struct GMap<T: Term> {
    /// The CType.
    pub ctype: CType<T>,
    /// `(Key, Value)` in ascending key order.
    pub entries: Vec<(T, Value<T>)>,
}

impl<T: Term> GMap<T> {
    fn same_ctype(&self, other: &Self) -> Result<()> {
        if self.ctype.identical(&other.ctype) {
            Ok(())
        } else {
            Err(BadCrdt::Conflict(TAG))
        }
    }
}

impl<T: Term> Lattice<T> for GMap<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        let (ct, list) = payload.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
        let entries = d.list(TAG, &list, |d, e| {
            let (k, v) = e.as_pair().ok_or(BadCrdt::Malformed(TAG))?;
            let crdt = d.nested(|d| Crdt::decode(&v, d))?;
            Ok((
                k,
                Value {
                    crdt: Arc::new(crdt),
                    term: Some(v),
                    entry: Some(e),
                },
            ))
        })?;
        crate::decode::check_ascending(TAG, entries.iter().map(|(k, _)| k))?;
        Ok(GMap {
            ctype: CType::Term(ct),
            entries,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        let items: Vec<T> = self
            .entries
            .iter()
            .map(|(k, v)| match &v.entry {
                Some(e) => e.clone(),
                None => b.pair(k.clone(), v.encode(b)),
            })
            .collect();
        b.pair(self.ctype.encode(b), b.list(&items))
    }

    fn bottom() -> Self {
        GMap {
            ctype: CType::Atom(Atom::StateMaxInt),
            entries: Vec::new(),
        }
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        self.same_ctype(other)?;
        // The result is A when B adds no key and every shared value merges
        // into A's; it is B when A adds no key, and every shared key term
        // (the merge keeps A's) and merged value is B's.
        let (mut is_a, mut is_b) = (true, true);
        let mut shared = 0usize;
        let entries = ord::orddict_merge(&self.entries, &other.entries, |_, va, vb| {
            shared += 1;
            let (mut v, a, b) = va.merge(vb)?;
            if !a {
                // The entry keeps A's key: B's entry term may hold another
                // (`==`) key term.
                v.entry = None;
            }
            is_a &= a;
            is_b &= b;
            Ok::<_, BadCrdt>(v)
        })?;
        if is_a && shared == other.entries.len() {
            return Ok(Merged::Left);
        }
        if is_b
            && shared == self.entries.len()
            && self.entries.iter().all(|(k, _)| {
                other
                    .entries
                    .binary_search_by(|(x, _)| x.compare(k))
                    .is_ok_and(|i| other.entries[i].0.identical(k))
            })
        {
            return Ok(Merged::Right);
        }
        Ok(Merged::New(GMap {
            ctype: self.ctype.clone(),
            entries,
        }))
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        self.same_ctype(other)?;
        ord::same_entries(&self.entries, &other.entries, |a, b| a.crdt.equal(&b.crdt))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        self.same_ctype(other)?;
        ord::all_found(&self.entries, &other.entries, |a, b| {
            a.crdt.is_inflation(&b.crdt)
        })
    }

    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        let mut items = Vec::with_capacity(self.entries.len());
        for (k, v) in &self.entries {
            items.push(b.pair(k.clone(), v.crdt.query(b)?));
        }
        Ok(b.list(&items))
    }

    fn delta(&self, other: &Self) -> Result<Self> {
        self.same_ctype(other)?;
        let mut entries = Vec::new();
        for (k, va) in &self.entries {
            match ord::find(&other.entries, k) {
                Some(vb) => {
                    let d = va.crdt.delta(&vb.crdt)?;
                    if !d.is_bottom() {
                        entries.push((k.clone(), Value::new(d)));
                    }
                }
                None => entries.push((k.clone(), va.clone())),
            }
        }
        Ok(GMap {
            ctype: self.ctype.clone(),
            entries,
        })
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        // `{apply, Key, Op}` runs `Op` on the key's value, or on the
        // CType's bottom; `{apply, Key, OpType, Op}` names the type.
        let n = op.tuple_arity().unwrap_or(0);
        if !(n == 3 || n == 4) || !op.tuple_elem(0).is_some_and(|t| t.is_atom(Atom::Apply)) {
            return Err(BadCrdt::UnknownOp(TAG).into());
        }
        let (Some(key), Some(kop)) = (op.tuple_elem(1), op.tuple_elem(n - 1)) else {
            return Err(BadCrdt::UnknownOp(TAG).into());
        };
        let op_type = match op.tuple_elem(2).filter(|_| n == 4) {
            Some(t) => t,
            None => self.ctype.encode(cx.builder()),
        };
        let bottom = new_of_ctype(&op_type)?;
        let current = match ord::find(&self.entries, &key) {
            // `Type:delta_mutate/3` of OpType's module on a value of
            // another type raises.
            Some(v) if v.crdt.tag() != bottom.tag() => {
                return Err(BadCrdt::TypeMismatch(bottom.tag(), v.crdt.tag()).into())
            }
            Some(v) => (*v.crdt).clone(),
            None => bottom,
        };
        let delta = current.delta_mutate(&kop, actor, cx)?;
        Ok(GMap {
            ctype: self.ctype.clone(),
            entries: vec![(key, Value::new(delta))],
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testing::{dec, enc, merged, same, t, Cx, TT};

    fn s(p: &str) -> GMap<TT> {
        dec(p).unwrap()
    }

    #[test]
    fn merge_keeps_first_keys_and_merges_values_test() {
        let a = s("{state_gcounter, [{k1, {state_gcounter, [{a, 1}]}}, {k2, {state_gcounter, [{a, 3}]}}]}");
        let b = s("{state_gcounter, [{k1, {state_gcounter, [{a, 2}]}}, {k3, {state_gcounter, [{b, 1}]}}]}");
        same(
            &merged(&a, &b).unwrap(),
            &t("{state_gcounter, [{k1, {state_gcounter, [{a, 2}]}}, {k2, {state_gcounter, [{a, 3}]}}, {k3, {state_gcounter, [{b, 1}]}}]}"),
        );
        assert!(matches!(a.merge(&a.clone()).unwrap(), Merged::Left));
    }

    #[test]
    fn ctypes_and_value_types_must_match_test() {
        let a = s("{state_gcounter, []}");
        let b = s("{state_max_int, []}");
        assert!(a.merge(&b).is_err());
        // A value may have a type other than the CType (`{apply, K,
        // OpType, Op}`); a shared key needs the same type on both sides.
        let c = s("{state_max_int, [{k, {state_gcounter, [{a, 1}]}}]}");
        let d = s("{state_max_int, [{k, {state_max_int, 2}}]}");
        assert!(c.merge(&d).is_err());
        same(&c.query(&crate::testing::TB).unwrap(), &t("[{k, 1}]"));
        let e = c
            .mutate(
                &t("{apply, j, state_gset, {add, x}}"),
                &t("a"),
                &mut Cx::default(),
            )
            .unwrap();
        same(
            &enc(&e),
            &t("{state_max_int, [{j, {state_gset, [x]}}, {k, {state_gcounter, [{a, 1}]}}]}"),
        );
        assert!(c
            .mutate(
                &t("{apply, k, state_gset, {add, x}}"),
                &t("a"),
                &mut Cx::default()
            )
            .is_err());
    }

    // types' `equal` finds each key of the first map in the second, in
    // order, and raises on the first shared key whose values differ in
    // type, even where the maps' keys differ at an earlier position.
    #[test]
    fn equal_raises_where_types_does_test() {
        let a = s(
            "{state_awset, [{2, {state_gcounter, [{1, 1}]}}, {3, {state_awset, {[], {[], []}}}}]}",
        );
        let b = s(
            "{state_awset, [{1, {state_gcounter, [{1, 1}]}}, {2, {state_awset, {[], {[], []}}}}]}",
        );
        assert!(a.equal(&b).is_err());
        // A key of the first map missing from the second answers false first.
        let c = s(
            "{state_awset, [{2, {state_gcounter, [{1, 1}]}}, {3, {state_awset, {[], {[], []}}}}]}",
        );
        let d = s(
            "{state_awset, [{1, {state_gcounter, [{1, 1}]}}, {4, {state_awset, {[], {[], []}}}}]}",
        );
        assert!(!c.equal(&d).unwrap());
        assert!(a.equal(&a.clone()).unwrap());
    }

    // Keys `==` but not `=:=` (`1` and `1.0`): the merge keeps A's key term,
    // also when both values are the same term.
    #[test]
    fn merge_keeps_the_first_key_term_test() {
        let a = s("{state_lwwregister, [{1, {state_lwwregister, {0, 1.0}}}]}");
        let b = s("{state_lwwregister, [{1.0, {state_lwwregister, {0, 1.0}}}, {x, {state_lwwregister, {0, 1.0}}}]}");
        same(
            &merged(&a, &b).unwrap(),
            &t("{state_lwwregister, [{1, {state_lwwregister, {0, 1.0}}}, {x, {state_lwwregister, {0, 1.0}}}]}"),
        );
        same(
            &merged(&b, &a).unwrap(),
            &t("{state_lwwregister, [{1.0, {state_lwwregister, {0, 1.0}}}, {x, {state_lwwregister, {0, 1.0}}}]}"),
        );
    }

    #[test]
    fn apply_mutates_a_value_test() {
        let m = GMap::<TT>::bottom();
        let m1 = m
            .mutate(&t("{apply, k, increment}"), &t("a"), &mut Cx::default())
            .unwrap();
        same(&enc(&m1), &t("{state_max_int, [{k, {state_max_int, 1}}]}"));
        assert!(!m1.is_bottom());
        assert!(m.is_inflation(&m1).unwrap());
        assert!(m.is_strict_inflation(&m1).unwrap());
    }

    #[test]
    fn nesting_is_bounded_test() {
        let mut p = String::from("{state_max_int, 1}");
        for _ in 0..40 {
            p = format!("{{state_gmap, {{state_gmap, [{{k, {p}}}]}}}}");
        }
        let r =
            crate::crdt::Crdt::decode(&t(&p), &mut Decoder::new(crate::decode::Limits::dirty()));
        assert_eq!(r.unwrap_err(), BadCrdt::TooDeep);
    }
}
