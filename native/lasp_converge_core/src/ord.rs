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
                    // Emit the whole run of `first` below `b` at once: a
                    // small delta merged into a large state costs
                    // O(delta * log(state)) comparisons, not O(state).
                    let k = run_below(first, b, |e| e);
                    out.extend_from_slice(&first[..k]);
                    first = &first[k..];
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

/// Whether every entry `(K, VY)` of `y` has a `==` key in `x` whose value
/// `dominates(VX, VY)` (and, with `exact_keys`, whose key term is `=:=` to
/// K). With `dominates` meaning "the value merge keeps VX", `covers(x, y,
/// false)` says `orddict:merge(F, X, Y)` gives X back; the counters use it to
/// return an input unchanged.
pub fn covers<T: Term, V>(
    x: &[(T, V)],
    y: &[(T, V)],
    exact_keys: bool,
    dominates: impl Fn(&V, &V) -> bool,
) -> bool {
    if y.len() > x.len() {
        return false;
    }
    // One walk over both, galloping over runs of `x` below the next key of
    // `y`: O(|y| log(|x| / |y|)) comparisons, so a small delta costs a few
    // searches and two states of equal size one linear pass.
    let mut i = 0;
    for (k, vy) in y {
        let rest = &x[i..];
        match rest.first().map(|(kx, _)| kx.compare(k)) {
            Some(Ordering::Less) => i += run_below(rest, k, |(kx, _)| kx),
            Some(_) => {}
            None => return false,
        }
        match x.get(i) {
            Some((kx, vx)) if kx.compare(k) == Ordering::Equal => {
                if !dominates(vx, vy) || (exact_keys && !kx.identical(k)) {
                    return false;
                }
                i += 1;
            }
            _ => return false,
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
                let k = run_below(&x[i..], &y[j].0, |(key, _)| key);
                out.extend_from_slice(&x[i..i + k]);
                i += k;
            }
            Ordering::Greater => {
                let k = run_below(&y[j..], &x[i].0, |(key, _)| key);
                out.extend_from_slice(&y[j..j + k]);
                j += k;
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

/// How many leading elements of `s` (whose first element is known to be
/// below `bound`) have a key strictly below `bound`. Galloping search: one
/// comparison when the run is short, O(log k) when it is long.
#[inline]
pub fn run_below<E, T: Term>(s: &[E], bound: &T, key: impl Fn(&E) -> &T) -> usize {
    let below = |i: usize| key(&s[i]).compare(bound) == Ordering::Less;
    // Probe s[1], s[3], s[7], ... until one is not below (or the end): a
    // run of one costs one comparison, a run of k about 2 log2(k).
    // Invariant: s[..lo] are below; s[hi] (if hi < len) is not.
    let mut lo = 1;
    let mut step = 1;
    let mut hi = s.len();
    loop {
        let probe = lo + step - 1;
        if probe >= s.len() {
            break;
        }
        if below(probe) {
            lo = probe + 1;
            step *= 2;
        } else {
            hi = probe;
            break;
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::owned::OwnedTerm;

    fn ints(v: &[i64]) -> Vec<OwnedTerm> {
        v.iter().map(|i| OwnedTerm::Int((*i).into())).collect()
    }

    // One element at a time, exactly as OTP's ordsets:union/2 recurses.
    fn union_naive(x: &[OwnedTerm], y: &[OwnedTerm]) -> Vec<OwnedTerm> {
        match (x.split_first(), y.split_first()) {
            (None, _) => y.to_vec(),
            (_, None) => x.to_vec(),
            (Some((a, xs)), Some((b, ys))) => match a.compare(b) {
                Ordering::Less => [vec![a.clone()], union_naive(xs, y)].concat(),
                Ordering::Greater => [vec![b.clone()], union_naive(ys, x)].concat(),
                Ordering::Equal => [vec![a.clone()], union_naive(xs, ys)].concat(),
            },
        }
    }

    #[test]
    fn run_below_counts_every_prefix() {
        for len in 1..40 {
            let s = ints(&(0..len).collect::<Vec<_>>());
            for bound in 1..=len + 1 {
                let b = OwnedTerm::Int(bound.into());
                assert_eq!(
                    run_below(&s, &b, |e| e),
                    bound.min(len) as usize,
                    "len {len} bound {bound}"
                );
            }
        }
    }

    // `covers` against one binary search per entry of `y`, on dictionaries
    // of every size pair up to 12 over keys 0..16 (a pseudo-random subset
    // each) and values that dominate or not.
    #[test]
    fn covers_agrees_with_lookups() {
        let naive = |x: &[(OwnedTerm, i64)], y: &[(OwnedTerm, i64)]| {
            y.iter()
                .all(|(k, vy)| find(x, k).is_some_and(|vx| vx >= vy))
        };
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let (nx, ny) = (next() % 13, next() % 13);
            let (bx, by) = (next(), next());
            let dict = |n: u64, bits: u64| -> Vec<(OwnedTerm, i64)> {
                (0..16i64)
                    .filter(|i| bits >> i & 1 == 1)
                    .take(n as usize)
                    .map(|i| (OwnedTerm::Int(i.into()), (bits >> (20 + i)) as i64 & 3))
                    .collect()
            };
            let (x, y) = (dict(nx, bx), dict(ny, by));
            assert_eq!(
                covers(&x, &y, false, |a, b| a >= b),
                naive(&x, &y),
                "{x:?} {y:?}"
            );
            assert!(covers(&x, &x, true, |a, b| a >= b));
        }
    }

    #[test]
    fn union_matches_otp_clause_order() {
        let cases: &[(&[i64], &[i64])] = &[
            (
                &[1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 30],
                &[5, 12, 40],
            ),
            (&[], &[1, 2]),
            (&[4, 5, 6, 7, 8, 9, 10, 11, 12, 13], &[1, 2, 3, 14]),
            (&[1, 3, 5, 7, 9], &[2, 4, 6, 8, 10]),
        ];
        for (x, y) in cases {
            let (x, y) = (ints(x), ints(y));
            assert_eq!(union(&x, &y).0, union_naive(&x, &y));
            assert_eq!(union(&y, &x).0, union_naive(&y, &x));
        }
        // 1 and 1.0 are ==: which one is kept depends on the role swap.
        let x = vec![OwnedTerm::Float(1.0), OwnedTerm::Int(5)];
        let y = vec![OwnedTerm::Int(0), OwnedTerm::Int(1)];
        let got = union(&x, &y).0;
        assert!(got
            .iter()
            .zip(&union_naive(&x, &y))
            .all(|(a, b)| a.identical(b)));
        assert!(got[1].identical(&OwnedTerm::Int(1)));
    }

    #[test]
    fn union_flags_an_unchanged_left_side() {
        let x = ints(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(union(&x, &ints(&[2, 7])).1);
        assert!(!union(&x, &ints(&[2, 70])).1);
    }

    #[test]
    fn orddict_merge_copies_runs_and_merges_ties() {
        let d = |v: &[(i64, i64)]| -> Vec<(OwnedTerm, i64)> {
            v.iter()
                .map(|(k, x)| (OwnedTerm::Int((*k).into()), *x))
                .collect()
        };
        let x = d(&[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (9, 1)]);
        let y = d(&[(0, 2), (4, 7), (6, 2), (7, 2), (8, 2), (10, 2)]);
        let got = orddict_merge(&x, &y, |_, a, b| Ok::<_, ()>(a + b)).unwrap_or_default();
        let keys: Vec<i128> = got
            .iter()
            .map(|(k, _)| match k {
                OwnedTerm::Int(i) => *i,
                _ => -1,
            })
            .collect();
        assert_eq!(keys, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(got[4].1, 8);
    }
}
