//! Walking and validating payload terms, with a budget.
//!
//! Every decode spends one unit of budget per list cell and checks the
//! nesting depth. On a normal scheduler the budget is small: when it runs
//! out, decoding stops with [`BadCrdt::Yield`] and the caller retries on a
//! dirty scheduler, so no normal scheduler is held for long. On a dirty
//! scheduler the budget is [`Limits::MAX_CELLS`]; past it the input is
//! refused as [`BadCrdt::TooLarge`].

use std::cmp::Ordering;

use crate::error::{BadCrdt, Result};
use crate::term::{Atom, Cell, Kind, Term};

/// The documented limits on inputs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// List cells one call may read in all its inputs.
    pub max_cells: usize,
    /// Nesting depth of CRDTs inside CRDTs (composite types).
    pub max_depth: usize,
    /// What running out of cells means: `Yield` (go dirty) or `TooLarge`.
    pub on_exhaust: BadCrdt,
}

impl Limits {
    /// Most list cells one call reads on a dirty scheduler: 64 million.
    pub const MAX_CELLS: usize = 64 * 1024 * 1024;
    /// Most CRDTs nested in one another.
    pub const MAX_DEPTH: usize = 32;
    /// List cells a call reads on a normal scheduler before moving to a
    /// dirty one. Set by `make bench` (see README: about 100 us of work).
    pub const NORMAL_CELLS: usize = 2_000;

    /// Limits for a dirty scheduler (or a caller with no scheduler).
    pub fn dirty() -> Self {
        Limits {
            max_cells: Self::MAX_CELLS,
            max_depth: Self::MAX_DEPTH,
            on_exhaust: BadCrdt::TooLarge,
        }
    }

    /// Weight units a call may take on a normal scheduler (see [`Term::too_heavy`]).
    pub const NORMAL_WEIGHT: usize = 4_000;

    /// Limits for a normal scheduler.
    pub fn normal() -> Self {
        Limits {
            max_cells: Self::NORMAL_CELLS,
            max_depth: Self::MAX_DEPTH,
            on_exhaust: BadCrdt::Yield,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::dirty()
    }
}

/// Decoding state: the remaining budget and the current depth.
#[derive(Debug)]
pub struct Decoder {
    cells_left: usize,
    depth: usize,
    limits: Limits,
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            cells_left: limits.max_cells,
            depth: 0,
            limits,
        }
    }

    /// Spend `n` cells of budget.
    #[inline]
    pub fn spend(&mut self, n: usize) -> Result<()> {
        if self.cells_left < n {
            self.cells_left = 0;
            return Err(self.limits.on_exhaust);
        }
        self.cells_left -= n;
        Ok(())
    }

    /// Run `f` one nesting level deeper.
    pub fn nested<X>(&mut self, f: impl FnOnce(&mut Self) -> Result<X>) -> Result<X> {
        if self.depth >= self.limits.max_depth {
            return Err(BadCrdt::TooDeep);
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Walk a proper list, calling `f` on each element.
    pub fn list<T: Term, X>(
        &mut self,
        ty: Atom,
        list: &T,
        mut f: impl FnMut(&mut Self, T) -> Result<X>,
    ) -> Result<Vec<X>> {
        let mut out = Vec::with_capacity(8);
        let mut cur = list.clone();
        loop {
            match cur.cell() {
                Cell::Nil => return Ok(out),
                Cell::Cons(h, t) => {
                    self.spend(1)?;
                    out.push(f(self, h)?);
                    cur = t;
                }
                Cell::NotList => {
                    return Err(if out.is_empty() {
                        BadCrdt::Malformed(ty)
                    } else {
                        BadCrdt::ImproperList(ty)
                    })
                }
            }
        }
    }

    /// An ordset: a proper list strictly ascending in term order.
    pub fn ordset<T: Term>(&mut self, ty: Atom, list: &T) -> Result<Vec<T>> {
        let v = self.list(ty, list, |_, e| Ok(e))?;
        check_ascending(ty, v.iter())?;
        Ok(v)
    }

    /// An orddict: a proper list of `{Key, Value}` strictly ascending by key,
    /// each value decoded by `f`.
    pub fn orddict<T: Term, V>(
        &mut self,
        ty: Atom,
        list: &T,
        mut f: impl FnMut(&mut Self, T) -> Result<V>,
    ) -> Result<Vec<(T, V)>> {
        let v = self.list(ty, list, |d, e| {
            let (k, v) = e.as_pair().ok_or(BadCrdt::Malformed(ty))?;
            Ok((k, f(d, v)?))
        })?;
        check_ascending(ty, v.iter().map(|(k, _)| k))?;
        Ok(v)
    }
}

/// Whether `terms` together weigh more than `limit` units: one per list
/// cell, tuple element and immediate, one per 64 bytes of a binary.
/// Comparing and copying cost in proportion to this weight, so a call whose
/// inputs are light cannot hold a scheduler long, however its elements are
/// shaped (a few huge binaries weigh as much as many small cells). An
/// integer beyond 64 bits weighs 64 (its size is not known here; the NIF
/// reads it). Maps, funs, bitstrings and anything not walked here count as
/// too heavy. Stops as soon as the limit is passed, so it costs at most
/// `limit` steps.
pub fn too_heavy<T: Term>(terms: &[&T], limit: usize) -> bool {
    weight(terms, limit).is_none()
}

/// The weight of `terms` (as [`too_heavy`] counts it) when it is at most
/// `limit`, else `None`. Costs at most `limit` steps.
pub fn weight<T: Term>(terms: &[&T], limit: usize) -> Option<usize> {
    let mut left = limit;
    let mut stack: Vec<T> = Vec::with_capacity(16);
    stack.extend(terms.iter().map(|t| (*t).clone()));
    while let Some(mut t) = stack.pop() {
        // Walk a list's spine in place; its elements go on the stack.
        loop {
            let w = match t.kind() {
                Kind::List => match t.cell() {
                    Cell::Cons(h, tl) => {
                        stack.push(h);
                        if left == 0 {
                            return None;
                        }
                        left -= 1;
                        t = tl;
                        continue;
                    }
                    _ => 1,
                },
                Kind::Tuple => {
                    let n = t.tuple_arity().unwrap_or(0);
                    for i in 0..n {
                        if let Some(e) = t.tuple_elem(i) {
                            stack.push(e);
                        }
                    }
                    1
                }
                Kind::Binary => match t.binary_size() {
                    Some(n) => 1 + n / 64,
                    None => return None,
                },
                // A fun compares by its environment, of any size.
                Kind::Map | Kind::Fun => return None,
                Kind::Integer if t.as_i64().is_none() => 64,
                _ => 1,
            };
            if w > left {
                return None;
            }
            left -= w;
            break;
        }
    }
    Some(limit - left)
}

/// Check that terms are strictly ascending under `compare`.
pub fn check_ascending<'a, T: Term + 'a>(
    ty: Atom,
    mut it: impl Iterator<Item = &'a T>,
) -> Result<()> {
    let Some(mut prev) = it.next() else {
        return Ok(());
    };
    for x in it {
        if prev.compare(x) != Ordering::Less {
            return Err(BadCrdt::Unsorted(ty));
        }
        prev = x;
    }
    Ok(())
}

/// An integer that fits in an `i64`, or `Malformed(ty)`.
pub fn int<T: Term>(ty: Atom, t: &T) -> Result<i64> {
    t.as_i64().ok_or(BadCrdt::Malformed(ty))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::owned::OwnedTerm as T;

    #[test]
    fn too_heavy_counts_cells_elements_and_binary_bytes() {
        let list = T::list((0..100i64).map(T::int));
        assert!(!too_heavy(&[&list], 300));
        assert!(too_heavy(&[&list], 150));
        let pair = T::tuple(vec![T::atom("a"), list.clone()]);
        assert!(!too_heavy(&[&pair, &pair], 500));
        assert!(too_heavy(&[&pair, &pair], 300));
        // A few big binaries weigh as much as many cells.
        let big = T::list(vec![T::bin(&vec![7u8; 64 * 1000]); 3]);
        assert!(too_heavy(&[&big], 2_000));
        assert!(!too_heavy(&[&big], 4_000));
        let map = T::map(vec![(T::int(1), T::int(2))]);
        assert!(too_heavy(&[&map], 1_000_000));
        // Integers past 64 bits weigh 64 each: 10 cells, [] and 640.
        let bigs = T::list((0..10i128).map(|i| T::Int((1 << 70) + i)));
        assert!(!too_heavy(&[&bigs], 651));
        assert!(too_heavy(&[&bigs], 650));
    }
}
