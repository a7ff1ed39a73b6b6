//! Dot stores (sets, funs, maps) as columns: decoding and encoding.

use super::*;

// ---------------------------------------------------------------------------
// Dot stores
// ---------------------------------------------------------------------------

/// The shape of a dot store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A dot set: an ordset of dots (ewflag, dwflag, awset values).
    Set,
    /// A dot fun: an orddict `Dot -> Value` (mvregister).
    Fun,
    /// A dot map: an orddict `Key -> DotStore` of the inner kind (awset,
    /// awmap). Its values are never empty: a merge drops empty ones.
    Map(Box<Kind>),
}

/// A column of dot-store values of one [`Kind`]. Value `i` of a column
/// spans `bounds[i]..bounds[i + 1]` of its entries.
#[derive(Debug, Clone)]
pub enum Store<T> {
    /// Dot sets.
    Set(SetCol<T>),
    /// Dot funs.
    Fun(FunCol<T>),
    /// Dot maps.
    Map(MapCol<T>),
}

/// A column of dot sets.
#[derive(Debug, Clone)]
pub struct SetCol<T> {
    pub(super) dots: Vec<Dot>,
    pub(super) bounds: Vec<usize>,
    pub(super) _t: std::marker::PhantomData<T>,
}

/// A column of dot funs.
#[derive(Debug, Clone)]
pub struct FunCol<T> {
    pub(super) dots: Vec<Dot>,
    pub(super) vals: Vec<T>,
    pub(super) bounds: Vec<usize>,
}

/// A column of dot maps: entry `e` (over all values) has key `keys[e]` and
/// sub-store value `e` of `inner`.
///
/// `cells[e]`, when set, is a list cell of an input whose head is identical
/// to entry `e` (`{Key, SubStore}`), so encoding reuses that term. From
/// entry `shared[i]` on, the cells of value `i` are also identical to the
/// rest of the value, so encoding stops there and reuses the input's tail.
#[derive(Debug, Clone)]
pub struct MapCol<T> {
    pub(super) keys: Vec<T>,
    pub(super) cells: Vec<Option<T>>,
    pub(super) inner: Box<Store<T>>,
    pub(super) bounds: Vec<usize>,
    pub(super) shared: Vec<usize>,
}

impl<T> SetCol<T> {
    pub(super) fn value(&self, i: usize) -> &[Dot] {
        &self.dots[self.bounds[i]..self.bounds[i + 1]]
    }
}

impl<T> FunCol<T> {
    pub(super) fn value(&self, i: usize) -> (&[Dot], &[T]) {
        let r = self.bounds[i]..self.bounds[i + 1];
        (&self.dots[r.clone()], &self.vals[r])
    }
}

impl<T> MapCol<T> {
    pub(super) fn keys_of(&self, i: usize) -> &[T] {
        &self.keys[self.bounds[i]..self.bounds[i + 1]]
    }
}

impl<T: Term> Store<T> {
    /// An empty column of the given kind.
    pub fn new(kind: &Kind) -> Self {
        match kind {
            Kind::Set => Store::Set(SetCol {
                dots: Vec::new(),
                bounds: vec![0],
                _t: std::marker::PhantomData,
            }),
            Kind::Fun => Store::Fun(FunCol {
                dots: Vec::new(),
                vals: Vec::new(),
                bounds: vec![0],
            }),
            Kind::Map(inner) => Store::Map(MapCol {
                keys: Vec::new(),
                cells: Vec::new(),
                inner: Box::new(Store::new(inner)),
                bounds: vec![0],
                shared: Vec::new(),
            }),
        }
    }

    /// The column's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Store::Set(_) => Kind::Set,
            Store::Fun(_) => Kind::Fun,
            Store::Map(m) => Kind::Map(Box::new(m.inner.kind())),
        }
    }

    pub(super) fn bounds(&self) -> &[usize] {
        match self {
            Store::Set(c) => &c.bounds,
            Store::Fun(c) => &c.bounds,
            Store::Map(c) => &c.bounds,
        }
    }

    /// Number of values in the column.
    pub fn values(&self) -> usize {
        self.bounds().len() - 1
    }

    /// Number of entries (dots, or keys) of value `i`.
    pub fn value_len(&self, i: usize) -> usize {
        let b = self.bounds();
        b[i + 1] - b[i]
    }

    /// Reserve room for a merge of `a` and `b` into this (empty) column, so
    /// the output never reallocates.
    pub(super) fn reserve_for(&mut self, a: &Store<T>, b: &Store<T>) {
        match (self, a, b) {
            (Store::Set(o), Store::Set(x), Store::Set(y)) => {
                o.dots.reserve(x.dots.len() + y.dots.len());
                o.bounds.reserve(x.bounds.len() + y.bounds.len());
            }
            (Store::Fun(o), Store::Fun(x), Store::Fun(y)) => {
                o.dots.reserve(x.dots.len() + y.dots.len());
                o.vals.reserve(x.dots.len() + y.dots.len());
                o.bounds.reserve(x.bounds.len() + y.bounds.len());
            }
            (Store::Map(o), Store::Map(x), Store::Map(y)) => {
                o.keys.reserve(x.keys.len() + y.keys.len());
                o.cells.reserve(x.keys.len() + y.keys.len());
                o.bounds.reserve(x.bounds.len() + y.bounds.len());
                o.shared.reserve(x.bounds.len() + y.bounds.len());
                o.inner.reserve_for(&x.inner, &y.inner);
            }
            _ => {}
        }
    }

    /// Append a copy of value `i` of `src` (same kind) to this column.
    pub(super) fn copy_value(&mut self, src: &Store<T>, i: usize) {
        match (self, src) {
            (Store::Set(o), Store::Set(c)) => {
                o.dots.extend_from_slice(c.value(i));
                o.bounds.push(o.dots.len());
            }
            (Store::Fun(o), Store::Fun(c)) => {
                let (ds, vs) = c.value(i);
                o.dots.extend_from_slice(ds);
                o.vals.extend_from_slice(vs);
                o.bounds.push(o.dots.len());
            }
            (Store::Map(o), Store::Map(c)) => {
                for e in c.bounds[i]..c.bounds[i + 1] {
                    o.keys.push(c.keys[e].clone());
                    o.cells.push(c.cells[e].clone());
                    o.inner.copy_value(&c.inner, e);
                }
                o.bounds.push(o.keys.len());
                o.shared.push(o.keys.len());
            }
            _ => {}
        }
    }

    /// Remove the last value, which must be empty.
    pub(super) fn pop_empty_value(&mut self) {
        match self {
            Store::Set(c) => {
                c.bounds.pop();
            }
            Store::Fun(c) => {
                c.bounds.pop();
            }
            Store::Map(c) => {
                c.bounds.pop();
                c.shared.pop();
            }
        }
    }

    /// Append one value decoded from `t`.
    pub(super) fn decode_value(
        &mut self,
        t: &T,
        d: &mut Decoder,
        it: &mut Interner<T>,
        tag: Atom,
    ) -> Result<()> {
        match self {
            Store::Set(c) => {
                walk_list(t, d, tag, |_, e, _| {
                    c.dots.push(decode_dot(&e, it, tag)?);
                    Ok(())
                })?;
                c.bounds.push(c.dots.len());
            }
            Store::Fun(c) => {
                walk_list(t, d, tag, |_, e, _| {
                    let (dt, v) = e.as_pair().ok_or(BadCrdt::Malformed(tag))?;
                    c.dots.push(decode_dot(&dt, it, tag)?);
                    c.vals.push(v);
                    Ok(())
                })?;
                c.bounds.push(c.dots.len());
            }
            Store::Map(c) => {
                let start = c.keys.len();
                let (keys, cells, inner) = (&mut c.keys, &mut c.cells, &mut c.inner);
                d.nested(|d| {
                    walk_list(t, d, tag, |d, e, cell| {
                        let (k, v) = e.as_pair().ok_or(BadCrdt::Malformed(tag))?;
                        if keys.len() > start {
                            if let Some(prev) = keys.last() {
                                if prev.compare(&k) != Ordering::Less {
                                    return Err(BadCrdt::Unsorted(tag));
                                }
                            }
                        }
                        inner.decode_value(&v, d, it, tag)?;
                        if inner.value_len(inner.values() - 1) == 0 {
                            return Err(BadCrdt::Malformed(tag));
                        }
                        keys.push(k);
                        cells.push(Some(cell.clone()));
                        Ok(())
                    })
                })?;
                c.bounds.push(c.keys.len());
                c.shared.push(start);
            }
        }
        Ok(())
    }

    /// Rewrite actor indices after interning and check every dot set and dot
    /// fun is strictly ascending.
    pub(super) fn remap_check(&mut self, remap: &[u32], rank: &[u32], tag: Atom) -> Result<()> {
        match self {
            Store::Set(c) => {
                for w in c.bounds.windows(2) {
                    remap_check_dots(&mut c.dots[w[0]..w[1]], remap, rank, tag)?;
                }
                Ok(())
            }
            Store::Fun(c) => {
                for w in c.bounds.windows(2) {
                    remap_check_dots(&mut c.dots[w[0]..w[1]], remap, rank, tag)?;
                }
                Ok(())
            }
            Store::Map(c) => c.inner.remap_check(remap, rank, tag),
        }
    }

    /// Encode value `i`.
    pub(super) fn encode_value<B: Builder<T = T>>(&self, i: usize, actors: &Actors<T>, b: &B) -> T {
        match self {
            Store::Set(c) => encode_dots(c.value(i), actors, b),
            Store::Fun(c) => {
                let (dots, vals) = c.value(i);
                let items: Vec<T> = dots
                    .iter()
                    .zip(vals)
                    .map(|(d, v)| b.pair(dot_term(d, actors, b), v.clone()))
                    .collect();
                b.list(&items)
            }
            Store::Map(c) => {
                let (start, end, shared) = (c.bounds[i], c.bounds[i + 1], c.shared[i]);
                let items: Vec<T> = (start..shared)
                    .map(|e| match c.cells[e].as_ref().map(Term::cell) {
                        Some(Cell::Cons(entry, _)) => entry,
                        _ => b.pair(c.keys[e].clone(), c.inner.encode_value(e, actors, b)),
                    })
                    .collect();
                match c
                    .cells
                    .get(shared)
                    .filter(|_| shared < end)
                    .cloned()
                    .flatten()
                {
                    Some(tail) => b.list_with_tail(&items, tail),
                    None => b.list(&items),
                }
            }
        }
    }
}

pub(super) fn remap_check_dots(
    dots: &mut [Dot],
    remap: &[u32],
    rank: &[u32],
    tag: Atom,
) -> Result<()> {
    for d in dots.iter_mut() {
        d.actor = remap[d.actor as usize];
    }
    for w in dots.windows(2) {
        let (x, y) = (w[0], w[1]);
        let ord = rank[x.actor as usize]
            .cmp(&rank[y.actor as usize])
            .then(x.seq.cmp(&y.seq));
        if ord != Ordering::Less {
            return Err(BadCrdt::Unsorted(tag));
        }
    }
    Ok(())
}

/// Walk a proper list, spending one cell of budget per element.
pub(super) fn walk_list<T: Term>(
    t: &T,
    d: &mut Decoder,
    tag: Atom,
    mut f: impl FnMut(&mut Decoder, T, &T) -> Result<()>,
) -> Result<()> {
    let mut cur = t.clone();
    let mut first = true;
    loop {
        match cur.cell() {
            Cell::Nil => return Ok(()),
            Cell::Cons(h, tl) => {
                d.spend(1)?;
                f(d, h, &cur)?;
                cur = tl;
                first = false;
            }
            Cell::NotList => {
                return Err(if first {
                    BadCrdt::Malformed(tag)
                } else {
                    BadCrdt::ImproperList(tag)
                })
            }
        }
    }
}

/// A positive integer that fits in an `i64`.
pub(super) fn pos_seq<T: Term>(t: &T, tag: Atom) -> Result<u64> {
    match t.as_i64() {
        Some(n) if n >= 1 => Ok(n as u64),
        _ => Err(BadCrdt::Malformed(tag)),
    }
}

pub(super) fn decode_dot<T: Term>(t: &T, it: &mut Interner<T>, tag: Atom) -> Result<Dot> {
    let (a, s) = t.as_pair().ok_or(BadCrdt::Malformed(tag))?;
    let seq = pos_seq(&s, tag)?;
    Ok(Dot {
        actor: it.intern(&a)?,
        seq,
    })
}

pub(super) fn decode_cc<T: Term>(
    t: &T,
    d: &mut Decoder,
    it: &mut Interner<T>,
    tag: Atom,
) -> Result<Cc> {
    let (ct, cl) = t.as_pair().ok_or(BadCrdt::Malformed(tag))?;
    let mut compressed = Vec::new();
    walk_list(&ct, d, tag, |_, e, _| {
        let (a, n) = e.as_pair().ok_or(BadCrdt::Malformed(tag))?;
        let n = pos_seq(&n, tag)?;
        compressed.push((it.intern(&a)?, n));
        Ok(())
    })?;
    let mut cloud = Vec::new();
    walk_list(&cl, d, tag, |_, e, _| {
        cloud.push(decode_dot(&e, it, tag)?);
        Ok(())
    })?;
    Ok(Cc { compressed, cloud })
}

#[inline]
pub(super) fn seq_term<T: Term, B: Builder<T = T>>(b: &B, s: u64) -> T {
    // Sequences never exceed `MAX_SEQ`, so this is exact.
    b.int(s.min(MAX_SEQ) as i64)
}

pub(super) fn dot_term<T: Term, B: Builder<T = T>>(d: &Dot, actors: &Actors<T>, b: &B) -> T {
    b.pair(actors.term(d.actor).clone(), seq_term(b, d.seq))
}

pub(super) fn encode_dots<T: Term, B: Builder<T = T>>(
    dots: &[Dot],
    actors: &Actors<T>,
    b: &B,
) -> T {
    match dots {
        [] => b.nil(),
        [d] => b.cons(dot_term(d, actors, b), b.nil()),
        _ => {
            let items: Vec<T> = dots.iter().map(|d| dot_term(d, actors, b)).collect();
            b.list(&items)
        }
    }
}
