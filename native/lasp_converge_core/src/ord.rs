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
    // How `first`'s head compares with `second`'s, when a run found out.
    let mut known = None;
    loop {
        match (first.first(), second.first()) {
            (Some(a), Some(b)) => match known.take().unwrap_or_else(|| a.compare(b)) {
                Ordering::Less => {
                    // Emit the whole run of `first` below `b` at once: a
                    // small delta merged into a large state costs
                    // O(delta * log(state)) comparisons, not O(state).
                    let (k, next) = run_below_known(first, b, |e| e);
                    out.extend_from_slice(&first[..k]);
                    first = &first[k..];
                    known = next;
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
        let c = match rest.first().map(|(kx, _)| kx.compare(k)) {
            Some(Ordering::Less) => {
                let (n, next) = run_below_known(rest, k, |(kx, _)| kx);
                i += n;
                next
            }
            c => c,
        };
        match x.get(i) {
            Some((kx, vx)) if c.unwrap_or_else(|| kx.compare(k)) == Ordering::Equal => {
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

/// Whether every entry `(K, VX)` of `x` has a `==` key in `y` whose value
/// passes `ok(VX, VY)`: types' `is_inflation` loop (`orddict:find/2` per
/// entry, quadratic) in one walk over both sorted dicts, galloping over runs
/// of `y` below the next key of `x`. Stops at the first failing entry, as
/// `lists_ext:iterate_until/2` does.
pub fn all_found<T: Term, V, W, E>(
    x: &[(T, V)],
    y: &[(T, W)],
    mut ok: impl FnMut(&V, &W) -> std::result::Result<bool, E>,
) -> std::result::Result<bool, E> {
    let mut j = 0;
    for (k, vx) in x {
        let rest = &y[j..];
        let c = match rest.first().map(|(ky, _)| ky.compare(k)) {
            Some(Ordering::Less) => {
                let (n, next) = run_below_known(rest, k, |(ky, _)| ky);
                j += n;
                next
            }
            c => c,
        };
        match y.get(j) {
            Some((ky, vy)) if c.unwrap_or_else(|| ky.compare(k)) == Ordering::Equal => {
                if !ok(vx, vy)? {
                    return Ok(false);
                }
                j += 1;
            }
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// `orddict_ext:equal/3` on two sorted dicts: the same size, and every key
/// of `x`, in order, found (`==`) in `y` with `eq` of the two values. As in
/// types, the first key of `x` that `y` lacks answers `false` before any
/// later pair of values is compared, so an `eq` that fails (values of two
/// types in a gmap) fails exactly where types' raises.
pub fn same_entries<T: Term, V, E>(
    x: &[(T, V)],
    y: &[(T, V)],
    eq: impl FnMut(&V, &V) -> std::result::Result<bool, E>,
) -> std::result::Result<bool, E> {
    if x.len() != y.len() {
        return Ok(false);
    }
    all_found(x, y, eq)
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
    // How x[i]'s key compares with y[j]'s, when a run found out.
    let mut known = None;
    while i < x.len() && j < y.len() {
        match known.take().unwrap_or_else(|| x[i].0.compare(&y[j].0)) {
            Ordering::Less => {
                let (k, next) = run_below_known(&x[i..], &y[j].0, |(key, _)| key);
                out.extend_from_slice(&x[i..i + k]);
                i += k;
                known = next;
            }
            Ordering::Greater => {
                let (k, next) = run_below_known(&y[j..], &x[i].0, |(key, _)| key);
                out.extend_from_slice(&y[j..j + k]);
                j += k;
                known = next.map(Ordering::reverse);
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

/// [`run_below`], also saying how the first element not below `bound`
/// compares with it when that was found out: a short run is walked an
/// element at a time, as `orddict:merge/3` does, so the comparison that
/// ends it need not be made again by the caller; a long one gallops.
#[inline]
pub fn run_below_known<E, T: Term>(
    s: &[E],
    bound: &T,
    key: impl Fn(&E) -> &T,
) -> (usize, Option<Ordering>) {
    const LINEAR: usize = 8;
    let mut k = 1;
    while k < s.len().min(LINEAR) {
        match key(&s[k]).compare(bound) {
            Ordering::Less => k += 1,
            c => return (k, Some(c)),
        }
    }
    if k < s.len() {
        k += run_below(&s[k - 1..], bound, key) - 1;
    }
    (k, None)
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

    /// A deterministic xorshift64 stream.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    // `all_found` and `same_entries` against one binary search per entry
    // (types' loop, `orddict:find/2` per key), on dictionaries of up to 40
    // entries over keys 0..64 so that long runs of `y` are galloped over.
    #[test]
    fn lockstep_walks_agree_with_lookups() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let dict = |n: u64, bits: u64, vals: u64| -> Vec<(OwnedTerm, i64)> {
            (0..64i64)
                .filter(|i| bits >> i & 1 == 1)
                .take(n as usize)
                .map(|i| (OwnedTerm::Int(i.into()), (vals >> (i % 60)) as i64 & 1))
                .collect()
        };
        for _ in 0..5000 {
            let (nx, ny) = (next() % 41, next() % 41);
            let (bx, by, vx, vy) = (next(), next(), next(), next());
            let (x, y) = (dict(nx, bx, vx), dict(ny, by, vy));
            let naive_le = x.iter().all(|(k, a)| find(&y, k).is_some_and(|b| a <= b));
            let got: Result<bool, ()> = all_found(&x, &y, |a, b| Ok(a <= b));
            assert_eq!(got, Ok(naive_le), "{x:?} {y:?}");
            let naive_eq =
                x.len() == y.len() && x.iter().all(|(k, a)| find(&y, k).is_some_and(|b| a == b));
            let got: Result<bool, ()> = same_entries(&x, &y, |a, b| Ok(a == b));
            assert_eq!(got, Ok(naive_eq), "{x:?} {y:?}");
            // The value comparison that fails is the one types reaches: the
            // first key of `x` found in `y`, unless a key of `x` before it is
            // missing from `y`.
            let first_missing = x.iter().position(|(k, _)| find(&y, k).is_none());
            let first_shared = x.iter().position(|(k, _)| find(&y, k).is_some());
            let raises = x.len() == y.len()
                && match (first_shared, first_missing) {
                    (Some(s), Some(m)) => s < m,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
            let got = same_entries(&x, &y, |_, _| Err::<bool, _>(9));
            let want = if raises {
                Err(9)
            } else {
                Ok(x.len() == y.len() && x.is_empty())
            };
            assert_eq!(got, want, "{x:?} {y:?}");
            // A subset with the same values is always found; an error stops the walk.
            let sub: Vec<_> = y.iter().step_by(3).cloned().collect();
            assert_eq!(all_found(&sub, &y, |a, b| Ok::<_, ()>(a == b)), Ok(true));
            if !sub.is_empty() {
                assert_eq!(all_found(&sub, &y, |_, _| Err::<bool, _>(7)), Err(7));
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
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
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

    // `orddict:merge/3` clause by clause, as OTP recurses.
    fn orddict_merge_naive(
        x: &[(OwnedTerm, i64)],
        y: &[(OwnedTerm, i64)],
    ) -> Vec<(OwnedTerm, i64)> {
        match (x.split_first(), y.split_first()) {
            (None, _) => y.to_vec(),
            (_, None) => x.to_vec(),
            (Some((a, xs)), Some((b, ys))) => match a.0.compare(&b.0) {
                Ordering::Less => [vec![a.clone()], orddict_merge_naive(xs, y)].concat(),
                Ordering::Greater => [vec![b.clone()], orddict_merge_naive(x, ys)].concat(),
                Ordering::Equal => [
                    vec![(a.0.clone(), a.1 * 10 + b.1)],
                    orddict_merge_naive(xs, ys),
                ]
                .concat(),
            },
        }
    }

    // Random sorted lists over keys 0..60 where some keys are floats (`==`
    // to the integer the other side may hold, not `=:=`), with runs of one
    // side from 1 to 30 long, so that both the linear and the galloping
    // part of `run_below_known` end runs: union, orddict_merge and
    // run_below_known agree with their one-element-at-a-time versions, term
    // for term.
    #[test]
    fn runs_agree_with_clause_by_clause_merges() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let key = |i: i64, float: bool| {
            if float {
                OwnedTerm::Float(i as f64)
            } else {
                OwnedTerm::Int(i.into())
            }
        };
        for _ in 0..3000 {
            // Each key goes to X, Y or both, in runs.
            let (mut x, mut y) = (Vec::new(), Vec::new());
            // `left == 0` draws the first run's side and length.
            let (mut side, mut left) = (0, 0);
            for i in 0..60i64 {
                if left == 0 {
                    side = next() % 3;
                    left = 1 + next() % if next().is_multiple_of(2) { 3 } else { 30 };
                }
                left -= 1;
                if next().is_multiple_of(4) {
                    continue;
                }
                let r = next();
                if side != 1 {
                    x.push((key(i, r & 1 == 1), (r >> 8) as i64 & 3));
                }
                if side != 0 {
                    y.push((key(i, r & 2 == 2), (r >> 16) as i64 & 3));
                }
            }
            let same = |a: &[(OwnedTerm, i64)], b: &[(OwnedTerm, i64)]| {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(p, q)| p.0.identical(&q.0) && p.1 == q.1)
            };
            for (x, y) in [(&x, &y), (&y, &x)] {
                let got =
                    orddict_merge(x, y, |_, a, b| Ok::<_, ()>(a * 10 + b)).unwrap_or_default();
                assert!(same(&got, &orddict_merge_naive(x, y)), "{x:?} {y:?}");
                let (xs, ys): (Vec<_>, Vec<_>) = (
                    x.iter().map(|e| e.0.clone()).collect(),
                    y.iter().map(|e| e.0.clone()).collect(),
                );
                let u = union(&xs, &ys).0;
                let n = union_naive(&xs, &ys);
                assert!(u.len() == n.len() && u.iter().zip(&n).all(|(a, b)| a.identical(b)));
                for bound in &ys {
                    for i in 0..xs.len() {
                        if xs[i].compare(bound) != Ordering::Less {
                            continue;
                        }
                        let (k, c) = run_below_known(&xs[i..], bound, |e| e);
                        let want = xs[i..]
                            .iter()
                            .take_while(|e| e.compare(bound).is_lt())
                            .count();
                        assert_eq!(k, want);
                        if let Some(c) = c {
                            assert_eq!(c, xs[i + k].compare(bound));
                        }
                    }
                }
            }
        }
    }
}
