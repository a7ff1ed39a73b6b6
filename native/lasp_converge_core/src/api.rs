//! Term in, term out: one function per NIF.
//!
//! Each function decodes its arguments under the given [`Limits`], runs one
//! lattice operation and builds the result. A merge that adds nothing hands
//! back the caller's own input term.

use crate::crdt::Crdt;
use crate::decode::{Decoder, Limits};
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Merged, MutateCx};
use crate::term::{Atom, Builder, Cell, Term};

/// On a normal scheduler, refuse up front (`Yield`) inputs too heavy to
/// finish in about a hundred microseconds; see [`crate::decode::too_heavy`].
fn precheck<T: Term>(limits: &Limits, terms: &[&T]) -> Result<()> {
    if limits.on_exhaust == BadCrdt::Yield && T::too_heavy(terms, Limits::NORMAL_WEIGHT) {
        return Err(BadCrdt::Yield);
    }
    Ok(())
}

fn decode2<T: Term>(x: &T, y: &T, limits: Limits) -> Result<(Crdt<T>, Crdt<T>)> {
    precheck(&limits, &[x, y])?;
    let mut d = Decoder::new(limits);
    let a = Crdt::decode(x, &mut d)?;
    let b = Crdt::decode(y, &mut d)?;
    Ok((a, b))
}

fn decode1<T: Term>(x: &T, limits: Limits) -> Result<Crdt<T>> {
    precheck(&limits, &[x])?;
    Crdt::decode(x, &mut Decoder::new(limits))
}

/// `merge(A, B)`.
pub fn merge<B: Builder>(b: &B, x: &B::T, y: &B::T, limits: Limits) -> Result<B::T> {
    let (sx, sy) = decode2(x, y, limits)?;
    Ok(match sx.merge(&sy)? {
        Merged::Left => x.clone(),
        Merged::Right => y.clone(),
        Merged::New(s) => s.encode(b),
    })
}

/// `merge_all([S1, ..., Sn])` = `merge(...merge(merge(S1, S2), S3)..., Sn)`.
/// The list must not be empty.
pub fn merge_all<B: Builder>(b: &B, list: &B::T, limits: Limits) -> Result<B::T> {
    precheck(&limits, &[list])?;
    let mut d = Decoder::new(limits);
    let mut states = Vec::new();
    let mut cur = list.clone();
    loop {
        match cur.cell() {
            Cell::Nil => break,
            Cell::Cons(h, t) => {
                d.spend(1)?;
                states.push((Crdt::decode(&h, &mut d)?, h));
                cur = t;
            }
            Cell::NotList => return Err(BadCrdt::NotACrdt),
        }
    }
    let mut it = states.into_iter();
    let (mut acc, mut acc_term) = match it.next() {
        Some((s, t)) => (s, Some(t)),
        None => return Err(BadCrdt::NotACrdt),
    };
    for (s, t) in it {
        match acc.merge(&s)? {
            Merged::Left => {}
            Merged::Right => {
                acc = s;
                acc_term = Some(t);
            }
            Merged::New(n) => {
                acc = n;
                acc_term = None;
            }
        }
    }
    Ok(acc_term.unwrap_or_else(|| acc.encode(b)))
}

/// `equal(A, B)`.
pub fn equal<T: Term>(x: &T, y: &T, limits: Limits) -> Result<bool> {
    let (a, b) = decode2(x, y, limits)?;
    a.equal(&b)
}

/// `is_inflation(A, B)`.
pub fn is_inflation<T: Term>(x: &T, y: &T, limits: Limits) -> Result<bool> {
    let (a, b) = decode2(x, y, limits)?;
    a.is_inflation(&b)
}

/// `is_strict_inflation(A, B)`.
pub fn is_strict_inflation<T: Term>(x: &T, y: &T, limits: Limits) -> Result<bool> {
    let (a, b) = decode2(x, y, limits)?;
    a.is_strict_inflation(&b)
}

/// `is_bottom(S)`.
pub fn is_bottom<T: Term>(x: &T, limits: Limits) -> Result<bool> {
    Ok(decode1(x, limits)?.is_bottom())
}

/// `query(S)`: set-valued types give a sorted list.
pub fn query<B: Builder>(b: &B, x: &B::T, limits: Limits) -> Result<B::T> {
    decode1(x, limits)?.query(b)
}

/// `delta(A, B)`.
pub fn delta<B: Builder>(b: &B, x: &B::T, y: &B::T, limits: Limits) -> Result<B::T> {
    let (sx, sy) = decode2(x, y, limits)?;
    Ok(sx.delta(&sy)?.encode(b))
}

/// `{merge(L, R), delta(R, L)}`: the merged state and what `R` added to
/// `L`, each input decoded once. When the merge adds nothing (its result is
/// `equal` to `L`), `{L, Bottom}` with `L` the caller's own term, so the
/// caller tells "unchanged" by identity. A replica joining a received state
/// or delta pays one merge for both its new state and the change it reports.
pub fn merge_added<B: Builder>(b: &B, l: &B::T, r: &B::T, limits: Limits) -> Result<B::T> {
    let (sl, sr) = decode2(l, r, limits)?;
    Ok(match sl.merge_added(&sr)? {
        None => b.pair(l.clone(), Crdt::bottom(&b.atom(sl.tag()))?.encode(b)),
        Some((merged, added)) => {
            let m = match merged {
                Merged::Left => l.clone(),
                Merged::Right => r.clone(),
                Merged::New(s) => s.encode(b),
            };
            b.pair(m, added.encode(b))
        }
    })
}

/// `mutate(Op, Actor, S)` and its `delta_mutate` delta from one decode:
/// `{ok, S1, Delta}` or `{error, Reason}`. `S1` is `merge(Delta, S)`, term
/// for term what `mutate` gives (types' `state_type:mutate/3`); when the
/// delta adds nothing it is the caller's own `S`.
pub fn mutate_delta<C: MutateCx<T>, T: Term>(
    cx: &mut C,
    op: &T,
    actor: &T,
    x: &T,
    limits: Limits,
) -> Result<T> {
    precheck(&limits, &[op, actor, x])?;
    let mut d = Decoder::new(limits);
    let s = Crdt::decode(x, &mut d)?;
    charge_op(op, &mut d)?;
    match s.delta_mutate(op, actor, cx) {
        Ok(delta) => {
            let b = cx.builder();
            let post = match delta.merge(&s)? {
                Merged::Left => delta.encode(b),
                Merged::Right => x.clone(),
                Merged::New(p) => p.encode(b),
            };
            Ok(b.tuple(&[b.atom(Atom::Ok), post, delta.encode(b)]))
        }
        Err(MutateError::Reason(why)) => {
            let b = cx.builder();
            Ok(b.pair(b.atom(Atom::Error), why))
        }
        Err(MutateError::Bad(e)) => Err(e),
    }
}

/// `new(Type)`.
pub fn new<B: Builder>(b: &B, ty: &B::T) -> Result<B::T> {
    Ok(Crdt::bottom(ty)?.encode(b))
}

fn mutate_with<C: MutateCx<T>, T: Term>(
    cx: &mut C,
    op: &T,
    actor: &T,
    x: &T,
    limits: Limits,
    delta: bool,
) -> Result<T> {
    precheck(&limits, &[op, actor, x])?;
    let mut d = Decoder::new(limits);
    let s = Crdt::decode(x, &mut d)?;
    // Operations such as `{add_all, Es}` walk a caller's list: charge it to
    // the same budget, so a long one moves to a dirty scheduler too.
    charge_op(op, &mut d)?;
    let r = if delta {
        s.delta_mutate(op, actor, cx)
    } else {
        s.mutate(op, actor, cx)
    };
    let b = cx.builder();
    match r {
        Ok(s1) => Ok(b.pair(b.atom(Atom::Ok), s1.encode(b))),
        Err(MutateError::Reason(why)) => Ok(b.pair(b.atom(Atom::Error), why)),
        Err(MutateError::Bad(e)) => Err(e),
    }
}

/// Spend one cell of budget per list cell in the elements of an operation
/// tuple (one level: ops carry at most a list of elements).
fn charge_op<T: Term>(op: &T, d: &mut Decoder) -> Result<()> {
    let Some(n) = op.tuple_arity() else {
        return Ok(());
    };
    for i in 1..n {
        let Some(mut cur) = op.tuple_elem(i) else {
            continue;
        };
        while let Cell::Cons(_, t) = cur.cell() {
            d.spend(1)?;
            cur = t;
        }
    }
    Ok(())
}

/// `mutate(Op, Actor, S)`: `{ok, S1}` or `{error, Reason}`.
pub fn mutate<C: MutateCx<T>, T: Term>(
    cx: &mut C,
    op: &T,
    actor: &T,
    x: &T,
    limits: Limits,
) -> Result<T> {
    mutate_with(cx, op, actor, x, limits, false)
}

/// `delta_mutate(Op, Actor, S)`: `{ok, Delta}` or `{error, Reason}`.
pub fn delta_mutate<C: MutateCx<T>, T: Term>(
    cx: &mut C,
    op: &T,
    actor: &T,
    x: &T,
    limits: Limits,
) -> Result<T> {
    mutate_with(cx, op, actor, x, limits, true)
}
