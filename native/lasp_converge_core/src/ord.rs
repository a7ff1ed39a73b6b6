//! `ordsets` and `orddict` as OTP implements them, term for term.
//!
//! Which of two `==` terms ends up in a result matters for matching
//! lasp-lang/types exactly, so these follow OTP's clause order, including
//! the role swap of `ordsets:union/2` and `ordsets:intersection/2`
//! (see `conformance/README.md` §4).

use std::cmp::Ordering;

use crate::term::Term;

/// `ordsets:union(X, Y)`. The flag is `true` when the result is exactly `X`
/// (every element of `Y` was `==` to one of `X`, and `X`'s was kept).
pub fn union<T: Term>(x: &[T], y: &[T]) -> (Vec<T>, bool) {
    let mut out = Vec::with_capacity(x.len().max(y.len()));
    // `first` is the list whose element wins a tie; it starts as X and
    // swaps whenever the second list's head is emitted alone.
    let (mut first, mut second) = (x, y);
    let mut is_x = true;
    loop {
        match (first.first(), second.first()) {
            (Some(a), Some(b)) => match a.compare(b) {
                Ordering::Less => {
                    out.push(a.clone());
                    first = &first[1..];
                }
                Ordering::Greater => {
                    out.push(b.clone());
                    let rest = &second[1..];
                    second = first;
                    first = rest;
                    is_x = false;
                }
                Ordering::Equal => {
                    out.push(a.clone());
                    first = &first[1..];
                    second = &second[1..];
                }
            },
            (None, _) => {
                // `union([], Es2) -> Es2`: the rest of the second list.
                if !second.is_empty() {
                    is_x = false;
                }
                out.extend_from_slice(second);
                return (out, is_x);
            }
            (Some(_), None) => {
                out.extend_from_slice(first);
                return (out, is_x);
            }
        }
    }
}

/// `ordsets:intersection(X, Y)`.
pub fn intersection<T: Term>(x: &[T], y: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    let (mut first, mut second) = (x, y);
    while let (Some(a), Some(b)) = (first.first(), second.first()) {
        match a.compare(b) {
            Ordering::Less => first = &first[1..],
            Ordering::Greater => {
                let rest = &second[1..];
                second = first;
                first = rest;
            }
            Ordering::Equal => {
                out.push(a.clone());
                first = &first[1..];
                second = &second[1..];
            }
        }
    }
    out
}

/// `ordsets:subtract(X, Y)`: the elements of `X` not `==` to one of `Y`.
pub fn subtract<T: Term>(x: &[T], y: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    let mut j = 0;
    for a in x {
        while j < y.len() && y[j].compare(a) == Ordering::Less {
            j += 1;
        }
        if j < y.len() && y[j].compare(a) == Ordering::Equal {
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// `ordsets:is_subset(X, Y)`.
pub fn is_subset<T: Term>(x: &[T], y: &[T]) -> bool {
    let mut j = 0;
    for a in x {
        loop {
            match y.get(j).map(|b| b.compare(a)) {
                Some(Ordering::Less) => j += 1,
                Some(Ordering::Equal) => {
                    j += 1;
                    break;
                }
                _ => return false,
            }
        }
    }
    true
}

/// `orddict:find(K, D)` / `ordsets:is_element`: binary search by `==`.
pub fn find<'a, T: Term, V>(d: &'a [(T, V)], k: &T) -> Option<&'a V> {
    d.binary_search_by(|(key, _)| key.compare(k))
        .ok()
        .map(|i| &d[i].1)
}

/// Whether `k` is `==` to an element of the ordset `s`.
pub fn is_element<T: Term>(s: &[T], k: &T) -> bool {
    s.binary_search_by(|e| e.compare(k)).is_ok()
}

/// `orddict:merge(F, X, Y)`: keys only in one side are kept; on `==` keys
/// the result is `{KeyFromX, F(VX, VY)}`. No role swap.
pub fn orddict_merge<T: Term, V: Clone, E>(
    x: &[(T, V)],
    y: &[(T, V)],
    mut f: impl FnMut(&T, &V, &V) -> Result<V, E>,
) -> Result<Vec<(T, V)>, E> {
    let mut out = Vec::with_capacity(x.len().max(y.len()));
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        match x[i].0.compare(&y[j].0) {
            Ordering::Less => {
                out.push(x[i].clone());
                i += 1;
            }
            Ordering::Greater => {
                out.push(y[j].clone());
                j += 1;
            }
            Ordering::Equal => {
                let v = f(&x[i].0, &x[i].1, &y[j].1)?;
                out.push((x[i].0.clone(), v));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&x[i..]);
    out.extend_from_slice(&y[j..]);
    Ok(out)
}

/// `orddict:store(K, V, D)`: an existing `==` key is replaced by `{K, V}`.
pub fn store<T: Term, V>(d: &mut Vec<(T, V)>, k: T, v: V) {
    match d.binary_search_by(|(key, _)| key.compare(&k)) {
        Ok(i) => d[i] = (k, v),
        Err(i) => d.insert(i, (k, v)),
    }
}

/// `ordsets:add_element(E, S)`: an existing `==` element is kept.
pub fn add_element<T: Term>(s: &mut Vec<T>, e: T) {
    if let Err(i) = s.binary_search_by(|x| x.compare(&e)) {
        s.insert(i, e);
    }
}
