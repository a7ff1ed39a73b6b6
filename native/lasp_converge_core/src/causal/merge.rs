//! The merge of two causal states, store by store, and the structural
//! comparisons behind `equal` and the inflation checks.

use super::*;

/// `state_ivar:merge/2` on the values of one dot: `undefined` gives way,
/// identical values merge, anything else raises in types.
pub(super) fn ivar_merge<T: Term>(va: &T, vb: &T, tag: Atom) -> Result<T> {
    if vb.is_atom(Atom::Undefined) {
        Ok(va.clone())
    } else if va.is_atom(Atom::Undefined) || va.identical(vb) {
        Ok(vb.clone())
    } else {
        Err(BadCrdt::Conflict(tag))
    }
}

// ---------------------------------------------------------------------------
// Merge
// ---------------------------------------------------------------------------

/// Reused buffers for dot-set merges.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) a: Vec<UDot>,
    pub(super) b: Vec<UDot>,
    pub(super) i: Vec<UDot>,
    pub(super) sa: Vec<UDot>,
    pub(super) sb: Vec<UDot>,
    pub(super) u: Vec<UDot>,
    pub(super) r: Vec<UDot>,
}

/// Everything a recursive store merge needs. All sub-merges use the
/// top-level contexts.
pub(super) struct MergeCx<'a, T> {
    pub(super) u: &'a Unified<T>,
    pub(super) cc_a: &'a CcIndex,
    pub(super) cc_b: &'a CcIndex,
    pub(super) tag: Atom,
    pub(super) scratch: Scratch,
}

pub(super) type Side<'s, T> = Option<(&'s Store<T>, usize)>;

/// Whether a merged value is identical to A's, and to B's (a missing value
/// is `[]`).
pub(super) type Same = (bool, bool);

impl<T: Term> MergeCx<'_, T> {
    /// Merge value `a` with value `b` and append the result to `out`.
    pub(super) fn value(
        &mut self,
        a: Side<'_, T>,
        b: Side<'_, T>,
        out: &mut Store<T>,
    ) -> Result<Same> {
        let tag = self.tag;
        match out {
            Store::Set(o) => {
                let da = match a {
                    None => &[][..],
                    Some((Store::Set(c), i)) => c.value(i),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let db = match b {
                    None => &[][..],
                    Some((Store::Set(c), i)) => c.value(i),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let same = self.merge_sets(da, db, &mut o.dots);
                o.bounds.push(o.dots.len());
                Ok(same)
            }
            Store::Fun(o) => {
                let fa = match a {
                    None => (&[][..], &[][..]),
                    Some((Store::Fun(c), i)) => c.value(i),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let fb = match b {
                    None => (&[][..], &[][..]),
                    Some((Store::Fun(c), i)) => c.value(i),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let same = self.merge_funs(fa, fb, o)?;
                o.bounds.push(o.dots.len());
                Ok(same)
            }
            Store::Map(o) => {
                let ma = match a {
                    None => None,
                    Some((Store::Map(c), i)) => Some((c, i)),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let mb = match b {
                    None => None,
                    Some((Store::Map(c), i)) => Some((c, i)),
                    Some(_) => return Err(BadCrdt::Malformed(tag)),
                };
                let same = self.merge_maps(ma, mb, o)?;
                o.bounds.push(o.keys.len());
                Ok(same)
            }
        }
    }

    /// Dot set: `U(I(DA, DB), U(DA \ CCB, DB \ CCA))`.
    pub(super) fn merge_sets(&mut self, da: &[Dot], db: &[Dot], out: &mut Vec<Dot>) -> Same {
        let u = self.u;
        let start = out.len();
        if db.is_empty() {
            // `U([], U(DA \ CCB, []))` is `DA \ CCB` as is.
            for &d in da {
                let x = u.ua(d);
                if !self.cc_b.contains(x.rank, x.seq) {
                    out.push(x.dot());
                }
            }
            let n = out.len() - start;
            return (n == da.len(), n == 0);
        }
        if da.is_empty() {
            for &d in db {
                let x = u.ub(d);
                if !self.cc_a.contains(x.rank, x.seq) {
                    out.push(x.dot());
                }
            }
            let n = out.len() - start;
            return (n == 0, n == db.len());
        }
        if da.len() == db.len()
            && da.iter().zip(db).all(|(x, y)| {
                x.seq == y.seq && u.map_a[x.actor as usize] == u.map_b[y.actor as usize]
            })
        {
            // Identical sets: the intersection is DA and the two differences
            // are subsets of it, so the union never swaps roles.
            out.extend(da.iter().map(|&d| u.ua(d).dot()));
            return (true, true);
        }
        let mut s = std::mem::take(&mut self.scratch);
        s.a.clear();
        s.a.extend(da.iter().map(|&d| u.ua(d)));
        s.b.clear();
        s.b.extend(db.iter().map(|&d| u.ub(d)));
        s.i.clear();
        intersection_into(&s.a, &s.b, &mut s.i);
        s.sa.clear();
        s.sa.extend(s.a.iter().filter(|x| !self.cc_b.contains(x.rank, x.seq)));
        s.sb.clear();
        s.sb.extend(s.b.iter().filter(|x| !self.cc_a.contains(x.rank, x.seq)));
        s.u.clear();
        union_into(&s.sa, &s.sb, &mut s.u);
        s.r.clear();
        union_into(&s.i, &s.u, &mut s.r);
        out.extend(s.r.iter().map(UDot::dot));
        let same_a = s.r.len() == s.a.len() && s.r.iter().zip(&s.a).all(|(x, y)| x.same(y));
        let same_b = s.r.len() == s.b.len() && s.r.iter().zip(&s.b).all(|(x, y)| x.same(y));
        self.scratch = s;
        (same_a, same_b)
    }

    /// Dot fun: the ivar merge of the common dots (in intersection order),
    /// then `orddict:store` of `A \ CCB` and then of `B \ CCA`.
    pub(super) fn merge_funs(
        &mut self,
        (da, va): (&[Dot], &[T]),
        (db, vb): (&[Dot], &[T]),
        out: &mut FunCol<T>,
    ) -> Result<Same> {
        let u = self.u;
        let start = out.dots.len();
        if db.is_empty() || da.is_empty() {
            let (ds, vs, cc, a_side) = if db.is_empty() {
                (da, va, self.cc_b, true)
            } else {
                (db, vb, self.cc_a, false)
            };
            for (&d, v) in ds.iter().zip(vs) {
                let x = if a_side { u.ua(d) } else { u.ub(d) };
                if !cc.contains(x.rank, x.seq) {
                    out.dots.push(x.dot());
                    out.vals.push(v.clone());
                }
            }
            let n = out.dots.len() - start;
            return Ok(if a_side {
                (n == da.len(), n == 0)
            } else {
                (n == 0, n == db.len())
            });
        }
        // Step 1: the intersection, role swap included; the values are
        // fetched by `==` from each side.
        let mut inter: Vec<(UDot, T)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        let mut a_first = true;
        while i < da.len() && j < db.len() {
            let (x, y) = (u.ua(da[i]), u.ub(db[j]));
            let (f, s) = if a_first { (x, y) } else { (y, x) };
            match f.cmp(&s) {
                Ordering::Less => {
                    if a_first {
                        i += 1
                    } else {
                        j += 1
                    }
                }
                Ordering::Greater => {
                    if a_first {
                        j += 1
                    } else {
                        i += 1
                    }
                    a_first = !a_first;
                }
                Ordering::Equal => {
                    inter.push((f, ivar_merge(&va[i], &vb[j], self.tag)?));
                    i += 1;
                    j += 1;
                }
            }
        }
        // Step 2: later stores win, key term and value alike.
        let la: Vec<(UDot, &T)> = da
            .iter()
            .zip(va)
            .map(|(&d, v)| (u.ua(d), v))
            .filter(|(x, _)| !self.cc_b.contains(x.rank, x.seq))
            .collect();
        let lb: Vec<(UDot, &T)> = db
            .iter()
            .zip(vb)
            .map(|(&d, v)| (u.ub(d), v))
            .filter(|(x, _)| !self.cc_a.contains(x.rank, x.seq))
            .collect();
        let (mut p0, mut p1, mut p2) = (0, 0, 0);
        loop {
            let h0 = inter.get(p0).map(|e| e.0);
            let h1 = la.get(p1).map(|e| e.0);
            let h2 = lb.get(p2).map(|e| e.0);
            let min = [h0, h1, h2].into_iter().flatten().min_by(|x, y| x.cmp(y));
            let Some(m) = min else { break };
            let eq = |h: Option<UDot>| h.is_some_and(|h| h.cmp(&m) == Ordering::Equal);
            let (e0, e1, e2) = (eq(h0), eq(h1), eq(h2));
            let (d, v) = if e2 {
                (lb[p2].0, lb[p2].1.clone())
            } else if e1 {
                (la[p1].0, la[p1].1.clone())
            } else {
                (inter[p0].0, inter[p0].1.clone())
            };
            out.dots.push(d.dot());
            out.vals.push(v);
            p0 += usize::from(e0);
            p1 += usize::from(e1);
            p2 += usize::from(e2);
        }
        let (od, ov) = (&out.dots[start..], &out.vals[start..]);
        let same_a = dots_same(od, da, &u.map_a) && ov.iter().zip(va).all(|(x, y)| x.identical(y));
        let same_b = dots_same(od, db, &u.map_b) && ov.iter().zip(vb).all(|(x, y)| x.identical(y));
        Ok((same_a, same_b))
    }

    /// Dot map: keys matched by `=:=`, otherwise by `<`/`>`; a key whose
    /// merged value is empty is dropped.
    pub(super) fn merge_maps(
        &mut self,
        a: Option<(&MapCol<T>, usize)>,
        b: Option<(&MapCol<T>, usize)>,
        out: &mut MapCol<T>,
    ) -> Result<Same> {
        let (ka, abase, ain) = match a {
            Some((m, i)) => (m.keys_of(i), m.bounds[i], Some(&*m.inner)),
            None => (&[][..], 0, None),
        };
        let (kb, bbase, bin) = match b {
            Some((m, i)) => (m.keys_of(i), m.bounds[i], Some(&*m.inner)),
            None => (&[][..], 0, None),
        };
        let sub_a = |k: usize| ain.map(|s| (s, abase + k));
        let sub_b = |k: usize| bin.map(|s| (s, bbase + k));
        let mut same = (true, true);
        let out_start = out.keys.len();
        let mut prov: Vec<(usize, usize)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        let (mut run_a, mut run_b) = (0, 0);
        while i < ka.len() && j < kb.len() {
            match ka[i].compare(&kb[j]) {
                Ordering::Less => {
                    let n = if run_a >= GALLOP {
                        1 + gallop(&ka[i + 1..], &kb[j])
                    } else {
                        1
                    };
                    for (k, key) in ka.iter().enumerate().skip(i).take(n) {
                        self.entry(sub_a(k), None, key, out, &mut same, &mut prov)?;
                    }
                    i += n;
                    run_a += 1;
                    run_b = 0;
                }
                Ordering::Greater => {
                    let n = if run_b >= GALLOP {
                        1 + gallop(&kb[j + 1..], &ka[i])
                    } else {
                        1
                    };
                    for (k, key) in kb.iter().enumerate().skip(j).take(n) {
                        self.entry(None, sub_b(k), key, out, &mut same, &mut prov)?;
                    }
                    j += n;
                    run_b += 1;
                    run_a = 0;
                }
                Ordering::Equal => {
                    if !ka[i].identical(&kb[j]) {
                        // No clause of dot_map:merge/4 matches.
                        return Err(BadCrdt::NotIdentical(self.tag));
                    }
                    self.entry(sub_a(i), sub_b(j), &ka[i], out, &mut same, &mut prov)?;
                    i += 1;
                    j += 1;
                    run_a = 0;
                    run_b = 0;
                }
            }
        }
        for (k, key) in ka.iter().enumerate().skip(i) {
            self.entry(sub_a(k), None, key, out, &mut same, &mut prov)?;
        }
        for (k, key) in kb.iter().enumerate().skip(j) {
            self.entry(None, sub_b(k), key, out, &mut same, &mut prov)?;
        }
        // Entries identical to an input's reuse its entry term.
        for (k, &(pa, pb)) in prov.iter().enumerate() {
            let cell = match (a, b) {
                (Some((m, _)), _) if pa != NONE => m.cells[pa].clone(),
                (_, Some((m, _))) if pb != NONE => m.cells[pb].clone(),
                _ => None,
            };
            out.cells[out_start + k] = cell;
        }
        // Share the longest run of final entries that is also the end of an
        // input's list: encoding then stops at that input's list cell.
        let suffix = |m: Option<(&MapCol<T>, usize)>, pick: fn(&(usize, usize)) -> usize| {
            let Some((m, i)) = m else { return (0, 0) };
            let (mut n, mut x) = (0, m.bounds[i + 1]);
            while n < prov.len() && x > m.shared[i] && pick(&prov[prov.len() - 1 - n]) == x - 1 {
                n += 1;
                x -= 1;
            }
            (n, x)
        };
        let (na, xa) = suffix(a, |p| p.0);
        let (nb, xb) = suffix(b, |p| p.1);
        let (n, x, m) = if na >= nb { (na, xa, a) } else { (nb, xb, b) };
        let first = out_start + prov.len() - n;
        if let (true, Some((m, _))) = (n > 0, m) {
            out.cells[first..first + n].clone_from_slice(&m.cells[x..x + n]);
        }
        out.shared.push(first);
        Ok(same)
    }

    /// Merge one key's values and append the entry unless it is empty.
    /// `prov` records, per appended entry, the A and B entries it is
    /// identical to (`NONE` when it is not).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn entry(
        &mut self,
        a: Side<'_, T>,
        b: Side<'_, T>,
        key: &T,
        out: &mut MapCol<T>,
        same: &mut Same,
        prov: &mut Vec<(usize, usize)>,
    ) -> Result<()> {
        let (sa, sb) = self.value(a, b, &mut out.inner)?;
        let last = out.inner.values() - 1;
        if out.inner.value_len(last) == 0 {
            out.inner.pop_empty_value();
            same.0 &= a.is_none();
            same.1 &= b.is_none();
        } else {
            out.keys.push(key.clone());
            out.cells.push(None);
            same.0 &= a.is_some() && sa;
            same.1 &= b.is_some() && sb;
            let pa = a.filter(|_| sa).map_or(NONE, |(_, i)| i);
            let pb = b.filter(|_| sb).map_or(NONE, |(_, i)| i);
            prov.push((pa, pb));
        }
        Ok(())
    }
}

/// How many leading elements of the ascending `s` are `< t`: exponential
/// then binary search, `O(log answer)` comparisons.
pub(super) fn gallop<T: Term>(s: &[T], t: &T) -> usize {
    let (mut lo, mut step) = (0, 1);
    while lo + step <= s.len() && s[lo + step - 1].compare(t) == Ordering::Less {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step - 1).min(s.len());
    lo + s[lo..hi].partition_point(|x| x.compare(t) == Ordering::Less)
}

// ---------------------------------------------------------------------------
// Structural comparisons
// ---------------------------------------------------------------------------

/// Value `ia` of `a` `=:=` value `ib` of `b` (`exact`), or `==` (`!exact`).
pub(super) fn store_cmp<T: Term>(
    a: &Store<T>,
    ia: usize,
    b: &Store<T>,
    ib: usize,
    u: &Unified<T>,
    exact: bool,
) -> bool {
    let dots_eq = |x: &[Dot], y: &[Dot]| {
        x.len() == y.len()
            && x.iter().zip(y).all(|(p, q)| {
                p.seq == q.seq
                    && if exact {
                        u.map_a[p.actor as usize] == u.map_b[q.actor as usize]
                    } else {
                        u.rank_of_a(p.actor) == u.rank_of_b(q.actor)
                    }
            })
    };
    let term_eq = |x: &T, y: &T| {
        if exact {
            x.identical(y)
        } else {
            x.compare(y) == Ordering::Equal
        }
    };
    match (a, b) {
        (Store::Set(x), Store::Set(y)) => dots_eq(x.value(ia), y.value(ib)),
        (Store::Fun(x), Store::Fun(y)) => {
            let ((dx, vx), (dy, vy)) = (x.value(ia), y.value(ib));
            dots_eq(dx, dy) && vx.iter().zip(vy).all(|(p, q)| term_eq(p, q))
        }
        (Store::Map(x), Store::Map(y)) => {
            let (kx, ky) = (x.keys_of(ia), y.keys_of(ib));
            kx.len() == ky.len()
                && kx.iter().zip(ky).enumerate().all(|(k, (p, q))| {
                    term_eq(p, q)
                        && store_cmp(
                            &x.inner,
                            x.bounds[ia] + k,
                            &y.inner,
                            y.bounds[ib] + k,
                            u,
                            exact,
                        )
                })
        }
        _ => false,
    }
}

pub(super) fn cc_cmp<T: Term>(a: &Cc, b: &Cc, u: &Unified<T>, exact: bool) -> bool {
    let actor_eq = |x: u32, y: u32| {
        if exact {
            u.map_a[x as usize] == u.map_b[y as usize]
        } else {
            u.rank_of_a(x) == u.rank_of_b(y)
        }
    };
    a.compressed.len() == b.compressed.len()
        && a.cloud.len() == b.cloud.len()
        && a.compressed
            .iter()
            .zip(&b.compressed)
            .all(|(x, y)| x.1 == y.1 && actor_eq(x.0, y.0))
        && a.cloud
            .iter()
            .zip(&b.cloud)
            .all(|(x, y)| x.seq == y.seq && actor_eq(x.actor, y.actor))
}
