//! `delta(A, B)`: the part of A that B lacks.

use super::*;

// ---------------------------------------------------------------------------
// Delta
// ---------------------------------------------------------------------------

pub(super) struct DeltaCx<'a, T> {
    pub(super) u: &'a Unified<T>,
    pub(super) cc_a: &'a CcIndex,
    pub(super) cc_b: &'a CcIndex,
    pub(super) tag: Atom,
}

/// Whether the resolved dot `x` is `==` to one of the ascending `ys`.
pub(super) fn udot_in(ys: &[UDot], x: &UDot) -> bool {
    ys.binary_search_by(|y| y.cmp(x)).is_ok()
}

impl<T: Term> DeltaCx<'_, T> {
    pub(super) fn resolve_a(&self, ds: &[Dot]) -> Vec<UDot> {
        ds.iter().map(|&d| self.u.ua(d)).collect()
    }
    pub(super) fn resolve_b(&self, ds: &[Dot]) -> Vec<UDot> {
        ds.iter().map(|&d| self.u.ub(d)).collect()
    }

    /// Collect the dots of B that A has seen (in CCA) but does not hold
    /// under the same key path: A's context removes them from B.
    pub(super) fn removed_in_a(&self, a: Side<'_, T>, b: Side<'_, T>, acc: &mut Vec<UDot>) {
        let Some((sb, ib)) = b else { return };
        let dots_a: Vec<UDot> = match a {
            Some((Store::Set(c), i)) => self.resolve_a(c.value(i)),
            Some((Store::Fun(c), i)) => self.resolve_a(c.value(i).0),
            _ => Vec::new(),
        };
        let dots_b: &[Dot] = match sb {
            Store::Set(c) => c.value(ib),
            Store::Fun(c) => c.value(ib).0,
            Store::Map(mb) => {
                let ma = match a {
                    Some((Store::Map(m), i)) => Some((m, i)),
                    _ => None,
                };
                let kb = mb.keys_of(ib);
                let ka = ma.map_or(&[][..], |(m, i)| m.keys_of(i));
                let mut i = 0;
                for (k, key) in kb.iter().enumerate() {
                    while i < ka.len() && ka[i].compare(key) == Ordering::Less {
                        i += 1;
                    }
                    let sub_a = match ma {
                        Some((m, ia)) if i < ka.len() && ka[i].compare(key) == Ordering::Equal => {
                            Some((&*m.inner, m.bounds[ia] + i))
                        }
                        _ => None,
                    };
                    self.removed_in_a(sub_a, Some((&mb.inner, mb.bounds[ib] + k)), acc);
                }
                return;
            }
        };
        for x in self.resolve_b(dots_b) {
            if self.cc_a.contains(x.rank, x.seq) && !udot_in(&dots_a, &x) {
                acc.push(x);
            }
        }
    }

    /// A's store, keeping a dot when B has not seen it, or when B holds it
    /// under the same key path and the delta's context covers it.
    pub(super) fn filter(
        &self,
        a: (&Store<T>, usize),
        b: Side<'_, T>,
        cc_d: &CcIndex,
        out: &mut Store<T>,
    ) -> Result<bool> {
        let (sa, ia) = a;
        let keep = |x: &UDot, held_by_b: &[UDot]| {
            !self.cc_b.contains(x.rank, x.seq)
                || (udot_in(held_by_b, x) && cc_d.contains(x.rank, x.seq))
        };
        let same = match (sa, out) {
            (Store::Set(c), Store::Set(o)) => {
                let held: Vec<UDot> = match b {
                    Some((Store::Set(cb), i)) => self.resolve_b(cb.value(i)),
                    _ => Vec::new(),
                };
                let ds = c.value(ia);
                let start = o.dots.len();
                for &d in ds {
                    let x = self.u.ua(d);
                    if keep(&x, &held) {
                        o.dots.push(x.dot());
                    }
                }
                let same = o.dots.len() - start == ds.len();
                o.bounds.push(o.dots.len());
                same
            }
            (Store::Fun(c), Store::Fun(o)) => {
                let held: Vec<UDot> = match b {
                    Some((Store::Fun(cb), i)) => self.resolve_b(cb.value(i).0),
                    _ => Vec::new(),
                };
                let (ds, vs) = c.value(ia);
                let start = o.dots.len();
                for (&d, v) in ds.iter().zip(vs) {
                    let x = self.u.ua(d);
                    if keep(&x, &held) {
                        o.dots.push(x.dot());
                        o.vals.push(v.clone());
                    }
                }
                let same = o.dots.len() - start == ds.len();
                o.bounds.push(o.dots.len());
                same
            }
            (Store::Map(c), Store::Map(o)) => {
                let mb = match b {
                    Some((Store::Map(m), i)) => Some((m, i)),
                    _ => None,
                };
                let ka = c.keys_of(ia);
                let kb = mb.map_or(&[][..], |(m, i)| m.keys_of(i));
                let mut same = true;
                let mut j = 0;
                for (k, key) in ka.iter().enumerate() {
                    while j < kb.len() && kb[j].compare(key) == Ordering::Less {
                        j += 1;
                    }
                    let sub_b = match mb {
                        Some((m, ib)) if j < kb.len() && kb[j].compare(key) == Ordering::Equal => {
                            Some((&*m.inner, m.bounds[ib] + j))
                        }
                        _ => None,
                    };
                    let sub_same =
                        self.filter((&c.inner, c.bounds[ia] + k), sub_b, cc_d, &mut o.inner)?;
                    let last = o.inner.values() - 1;
                    if o.inner.value_len(last) == 0 {
                        o.inner.pop_empty_value();
                        same = false;
                    } else {
                        o.keys.push(key.clone());
                        o.cells.push(if sub_same {
                            c.cells[c.bounds[ia] + k].clone()
                        } else {
                            None
                        });
                        same &= sub_same;
                    }
                }
                o.bounds.push(o.keys.len());
                o.shared.push(o.keys.len());
                same
            }
            _ => return Err(BadCrdt::Malformed(self.tag)),
        };
        Ok(same)
    }
}
