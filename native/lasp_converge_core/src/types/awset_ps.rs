//! `state_awset_ps`: an add-wins set with the provenance semiring.
//!
//! Payload: `{{ElemStore, EventStore}, FilteredOut, AllEvents}`.
//! - An event is `{EventId, Counter}`; EventId is the actor passed to
//!   `mutate` (Lasp passes `{ObjectId, Actor}`).
//! - A ps-dot is an ordset of events, a provenance an ordset of ps-dots.
//! - `ElemStore`: orddict `Elem -> Provenance`; `EventStore`: orddict
//!   `Event -> ordset of Elems`; `FilteredOut`: an ordset of events.
//! - `AllEvents`: `{vclock, [{EventId, Counter}]}` in full states (a list
//!   whose order depends on history), a bare ordset of events in deltas.
//!
//! Merge, equal, inflation and query follow `conformance/README.md` §5
//! (`state_awset_ps`) term for term: the identity and bottom shortcuts,
//! `second_larger`, the join of all-events (`JAE`, whose vclock fold
//! reverses the first list), and the data-store join (`JDS`) that first
//! removes the other side's removed events, then adds its addable dots.
//! `equal` and `is_inflation` need vclocks on both sides: on a delta they
//! raise in types, and are refused here as `{malformed, state_awset_ps}`.
//!
//! Operations: `{add, E}`, `{add_all, Es}` (a fresh event of the actor per
//! element), `{rmv, E}` and `{rmv_all, Es}` (a delta whose all-events are
//! the element's events; an absent element gives
//! `{error, {precondition, {not_present, E}}}`).
//!
//! Reference: Junghun Yoo et al., the provenance-semiring sets of
//! lasp-lang/types.

use std::cmp::Ordering;

use crate::decode::Decoder;
use crate::error::{BadCrdt, MutateError, Result};
use crate::lattice::{Lattice, Merged, MutateCx};
use crate::term::{Atom, Builder, Cell, Term};

const TAG: Atom = Atom::StateAwsetPs;

fn malformed() -> BadCrdt {
    BadCrdt::Malformed(TAG)
}

/// An event `{EventId, Counter}`.
#[derive(Debug, Clone)]
pub struct Event<T> {
    id: T,
    n: i64,
    term: Option<T>,
}

impl<T: Term> Event<T> {
    fn decode(t: &T) -> Result<Self> {
        let (id, n) = t.as_pair().ok_or_else(malformed)?;
        Ok(Event {
            id,
            n: n.as_i64().ok_or_else(malformed)?,
            term: Some(t.clone()),
        })
    }

    fn new(id: T, n: i64) -> Self {
        Event { id, n, term: None }
    }

    fn cmp(&self, o: &Self) -> Ordering {
        self.id.compare(&o.id).then(self.n.cmp(&o.n))
    }

    fn identical(&self, o: &Self) -> bool {
        self.id.identical(&o.id) && self.n == o.n
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        match &self.term {
            Some(t) => t.clone(),
            None => b.pair(self.id.clone(), b.int(self.n)),
        }
    }
}

/// A ps-dot: an ordset of events.
type Dot<T> = Vec<Event<T>>;

fn dot_cmp<T: Term>(a: &[Event<T>], b: &[Event<T>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match x.cmp(y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    a.len().cmp(&b.len())
}

fn dots_identical<T: Term>(a: &[Event<T>], b: &[Event<T>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.identical(y))
}

/// `ordsets:is_element/2` on events.
fn has_event<T: Term>(s: &[Event<T>], e: &Event<T>) -> bool {
    s.binary_search_by(|x| x.cmp(e)).is_ok()
}

/// `ordsets:union/2` on events, with OTP's role swap.
fn union_events<T: Term>(x: &[Event<T>], y: &[Event<T>]) -> Vec<Event<T>> {
    let mut out = Vec::with_capacity(x.len() + y.len());
    let (mut first, mut second) = (x, y);
    loop {
        match (first.first(), second.first()) {
            (Some(a), Some(b)) => match a.cmp(b) {
                Ordering::Less => {
                    out.push(a.clone());
                    first = &first[1..];
                }
                Ordering::Greater => {
                    out.push(b.clone());
                    let rest = &second[1..];
                    second = first;
                    first = rest;
                }
                Ordering::Equal => {
                    out.push(a.clone());
                    first = &first[1..];
                    second = &second[1..];
                }
            },
            (None, _) => {
                out.extend_from_slice(second);
                return out;
            }
            (Some(_), None) => {
                out.extend_from_slice(first);
                return out;
            }
        }
    }
}

/// `ordsets:subtract/2` on events.
fn subtract_events<T: Term>(x: &[Event<T>], y: &[Event<T>]) -> Vec<Event<T>> {
    x.iter().filter(|e| !has_event(y, e)).cloned().collect()
}

/// The all-events section.
#[derive(Debug, Clone)]
enum AllEvents<T> {
    /// `{vclock, [{EventId, Counter}]}`, in list order.
    VClock(Vec<(T, i64)>),
    /// A delta's ordset of events.
    Set(Vec<Event<T>>),
}

impl<T: Term> AllEvents<T> {
    /// `lists:keyfind(Id, 1, L)` (by `==`): the counter, 0 when absent.
    fn counter(v: &[(T, i64)], id: &T) -> i64 {
        v.iter().find(|(x, _)| x.equal(id)).map_or(0, |(_, c)| *c)
    }

    /// `is_valid_event/2`.
    fn is_valid(&self, e: &Event<T>) -> bool {
        match self {
            AllEvents::VClock(v) => e.n <= Self::counter(v, &e.id),
            AllEvents::Set(s) => has_event(s, e),
        }
    }

    /// The events as an ordset (a vclock expands to `{Id, 1..C}`).
    fn expand(&self) -> Result<Vec<Event<T>>> {
        match self {
            AllEvents::Set(s) => Ok(s.clone()),
            AllEvents::VClock(v) => {
                let total: i64 = v.iter().map(|(_, c)| (*c).max(0)).sum();
                if total > 64 * 1024 * 1024 {
                    return Err(BadCrdt::TooLarge);
                }
                let mut out = Vec::with_capacity(total as usize);
                for (id, c) in v {
                    for n in 1..=*c {
                        out.push(Event::new(id.clone(), n));
                    }
                }
                // `ordsets:add_element/2` keeps the first of `==` events.
                out.sort_by(|a, b| a.cmp(b));
                out.dedup_by(|a, b| a.cmp(b) == Ordering::Equal);
                Ok(out)
            }
        }
    }

    fn identical(&self, o: &Self) -> bool {
        match (self, o) {
            (AllEvents::VClock(a), AllEvents::VClock(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((x, c), (y, d))| x.identical(y) && c == d)
            }
            (AllEvents::Set(a), AllEvents::Set(b)) => dots_identical(a, b),
            _ => false,
        }
    }
}

/// `JAE(X, Y)`: the join of two all-events sections.
fn join_all_events<T: Term>(x: &AllEvents<T>, y: &AllEvents<T>) -> AllEvents<T> {
    match (x, y) {
        (AllEvents::VClock(a), AllEvents::VClock(b)) => {
            let mut acc: Vec<(T, i64)> = Vec::new();
            let mut rest: Vec<(T, i64)> = b.clone();
            for (id, c) in a {
                match rest.iter().position(|(r, _)| r.equal(id)) {
                    Some(i) => {
                        let (_, cb) = rest.remove(i);
                        acc.push((id.clone(), (*c).max(cb)));
                    }
                    None => acc.push((id.clone(), *c)),
                }
            }
            acc.reverse();
            acc.extend(rest);
            AllEvents::VClock(acc)
        }
        (AllEvents::VClock(a), AllEvents::Set(s)) => {
            // A fold over the ordset with A's list as accumulator; the list
            // is kept reversed here so that a prepend is a push.
            let mut acc: Vec<(T, i64)> = a.iter().rev().cloned().collect();
            for e in s {
                match acc.iter().rposition(|(r, _)| r.equal(&e.id)) {
                    Some(i) => {
                        let (_, ca) = acc.remove(i);
                        acc.push((e.id.clone(), ca.max(e.n)));
                    }
                    None => acc.push((e.id.clone(), e.n)),
                }
            }
            acc.reverse();
            AllEvents::VClock(acc)
        }
        (AllEvents::Set(_), AllEvents::VClock(_)) => join_all_events(y, x),
        (AllEvents::Set(a), AllEvents::Set(b)) => AllEvents::Set(union_events(a, b)),
    }
}

/// `VI(X, Y)`: types' `is_inflation_all_events` on two vclocks.
fn vclock_inflation<T: Term>(x: &[(T, i64)], y: &[(T, i64)]) -> bool {
    for (id, c) in x {
        match y.iter().find(|(r, _)| r.equal(id)) {
            None => return false,
            Some((_, cy)) if c == cy => {}
            Some((_, cy)) => return c < cy,
        }
    }
    true
}

fn second_larger<T: Term>(x: &AllEvents<T>, y: &AllEvents<T>) -> bool {
    match (x, y) {
        (AllEvents::VClock(a), AllEvents::VClock(b)) => !vclock_inflation(a, b),
        (AllEvents::VClock(_), AllEvents::Set(_)) => false,
        (AllEvents::Set(_), AllEvents::VClock(_)) => true,
        (AllEvents::Set(a), AllEvents::Set(b)) => a.len() < b.len(),
    }
}

/// `orddict:find/2` by a comparison.
fn find_by<K, V>(d: &[(K, V)], f: impl Fn(&K) -> Ordering) -> std::result::Result<usize, usize> {
    d.binary_search_by(|(k, _)| f(k))
}

/// An add-wins set with provenance.
///
/// # Examples
///
/// ```
/// use lasp_converge_core::lattice::{Lattice, MutateCx};
/// use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm as T};
/// use lasp_converge_core::term::Builder;
/// use lasp_converge_core::types::AWSetPS;
///
/// struct Cx(OwnedBuilder);
/// impl MutateCx<T> for Cx {
///     type B = OwnedBuilder;
///     fn builder(&self) -> &OwnedBuilder { &self.0 }
///     fn token(&mut self) -> T { self.0.binary(&[0; 20]) }
/// }
/// let (b, mut cx) = (OwnedBuilder, Cx(OwnedBuilder));
/// let alice = T::tuple([T::bin(b"obj"), T::atom("alice")]);
/// let carol = T::tuple([T::bin(b"obj"), T::atom("carol")]);
/// let add = |e: i64| b.pair(T::atom("add"), T::int(e));
/// let s0 = AWSetPS::<T>::bottom();
/// let a = s0.mutate(&add(1), &alice, &mut cx).unwrap();
/// let c = s0.mutate(&add(2), &carol, &mut cx).unwrap();
/// let m = a.merge(&c).unwrap().into_state(&a, &c);
/// assert_eq!(m.query(&b).unwrap(), b.list(&[T::int(1), T::int(2)]));
/// ```
#[derive(Debug, Clone)]
pub struct AWSetPS<T: Term> {
    elems: Vec<(T, Vec<Dot<T>>)>,
    events: Vec<(Event<T>, Vec<T>)>,
    filtered: Vec<Event<T>>,
    all: AllEvents<T>,
}

impl<T: Term> AWSetPS<T> {
    /// Whether `AllEvents` is a vclock, as in every state types builds by
    /// `new`, `mutate` and `merge`, rather than a delta's bare event set.
    /// `is_inflation` needs vclocks on both sides: a state holds a delta
    /// only when the two are identical.
    pub fn is_full(&self) -> bool {
        matches!(self.all, AllEvents::VClock(_))
    }

    fn event_keys(&self) -> Vec<Event<T>> {
        self.events.iter().map(|(e, _)| e.clone()).collect()
    }

    fn identical(&self, o: &Self) -> bool {
        self.elems.len() == o.elems.len()
            && self.events.len() == o.events.len()
            && self.elems.iter().zip(&o.elems).all(|((x, p), (y, q))| {
                x.identical(y)
                    && p.len() == q.len()
                    && p.iter().zip(q).all(|(a, b)| dots_identical(a, b))
            })
            && self.events.iter().zip(&o.events).all(|((x, p), (y, q))| {
                x.identical(y) && p.len() == q.len() && p.iter().zip(q).all(|(a, b)| a.identical(b))
            })
            && dots_identical(&self.filtered, &o.filtered)
            && self.all.identical(&o.all)
    }

    fn is_exact_bottom(&self) -> bool {
        self.elems.is_empty()
            && self.events.is_empty()
            && self.filtered.is_empty()
            && matches!(&self.all, AllEvents::VClock(v) if v.is_empty())
    }

    /// The removed events: all events minus `U(keys(EventStore), FO)`.
    fn removed(&self) -> Result<Vec<Event<T>>> {
        let kept = union_events(&self.event_keys(), &self.filtered);
        Ok(subtract_events(&self.all.expand()?, &kept))
    }

    /// `remove_elem_with_event/3`.
    fn remove_elem_with_event(&mut self, elem: &T, ev: &Event<T>) {
        let Ok(i) = find_by(&self.elems, |k| k.compare(elem)) else {
            return;
        };
        let mut keep: Vec<Dot<T>> = Vec::new();
        let mut deleted: Vec<Event<T>> = Vec::new();
        for dot in &self.elems[i].1 {
            if has_event(dot, ev) {
                deleted = union_events(&deleted, dot);
            } else {
                keep.push(dot.clone());
            }
        }
        if keep.is_empty() {
            self.elems.remove(i);
        } else {
            self.elems[i].1 = keep;
        }
        for other in deleted {
            if let Ok(j) = find_by(&self.events, |k| k.cmp(&other)) {
                let es = &mut self.events[j].1;
                if let Ok(p) = es.binary_search_by(|x| x.compare(elem)) {
                    es.remove(p);
                }
                if es.is_empty() {
                    self.events.remove(j);
                } else {
                    // `orddict:store/3`: the key term becomes the dot's.
                    self.events[j].0 = other;
                }
            }
        }
    }

    /// `remove_event/2`.
    fn remove_event(&mut self, ev: &Event<T>) {
        let Ok(i) = find_by(&self.events, |k| k.cmp(ev)) else {
            return;
        };
        let elems = self.events[i].1.clone();
        for e in &elems {
            self.remove_elem_with_event(e, ev);
        }
    }

    /// `add_elem_with_dot/3`.
    fn add_elem_with_dot(&mut self, elem: &T, dot: &Dot<T>) {
        match find_by(&self.elems, |k| k.compare(elem)) {
            Ok(i) => {
                let prov = &mut self.elems[i].1;
                if let Err(p) = prov.binary_search_by(|d| dot_cmp(d, dot)) {
                    prov.insert(p, dot.clone());
                }
                // `orddict:update/4` stores the given key.
                self.elems[i].0 = elem.clone();
            }
            Err(i) => self.elems.insert(i, (elem.clone(), vec![dot.clone()])),
        }
        for ev in dot {
            match find_by(&self.events, |k| k.cmp(ev)) {
                Ok(j) => {
                    let es = &mut self.events[j].1;
                    if let Err(p) = es.binary_search_by(|x| x.compare(elem)) {
                        es.insert(p, elem.clone());
                    }
                    self.events[j].0 = ev.clone();
                }
                Err(j) => self.events.insert(j, (ev.clone(), vec![elem.clone()])),
            }
        }
    }

    /// `JDS(F, S)`: F's data store joined with S's.
    fn join_data_store(f: &Self, s: &Self) -> Result<Self> {
        let valid_f = f.event_keys();
        let removed_s = s.removed()?;
        let mut out = f.clone();
        for ev in &removed_s {
            if f.all.is_valid(ev) && has_event(&valid_f, ev) {
                out.remove_event(ev);
            }
        }
        let new_valid = union_events(&out.event_keys(), &f.filtered);
        let mut added: Vec<(T, Dot<T>)> = Vec::new();
        for (elem, prov) in &s.elems {
            for dot in prov {
                let addable = dot
                    .iter()
                    .all(|ev| !f.all.is_valid(ev) || has_event(&new_valid, ev));
                if addable {
                    added.push((elem.clone(), dot.clone()));
                }
            }
        }
        for (elem, dot) in &added {
            out.add_elem_with_dot(elem, dot);
        }
        Ok(out)
    }

    fn vclock(&self) -> Result<&[(T, i64)]> {
        match &self.all {
            AllEvents::VClock(v) => Ok(v),
            AllEvents::Set(_) => Err(malformed()),
        }
    }

    fn elem_events(&self, elem: &T) -> Option<Vec<Event<T>>> {
        let i = find_by(&self.elems, |k| k.compare(elem)).ok()?;
        let mut out = Vec::new();
        for dot in &self.elems[i].1 {
            out = union_events(&out, dot);
        }
        Some(out)
    }

    fn empty_delta(all: AllEvents<T>) -> Self {
        AWSetPS {
            elems: Vec::new(),
            events: Vec::new(),
            filtered: Vec::new(),
            all,
        }
    }
}

fn elems_of<T: Term>(d: &mut Decoder, list: &T) -> Result<Vec<T>> {
    d.ordset(TAG, list)
}

fn events_of<T: Term>(d: &mut Decoder, list: &T) -> Result<Vec<Event<T>>> {
    let v = d.list(TAG, list, |_, e| Event::decode(&e))?;
    if v.windows(2).any(|w| w[0].cmp(&w[1]) != Ordering::Less) {
        return Err(BadCrdt::Unsorted(TAG));
    }
    Ok(v)
}

fn op_elems<T: Term>(list: &T) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut cur = list.clone();
    loop {
        match cur.cell() {
            Cell::Nil => return Ok(out),
            Cell::Cons(h, t) => {
                out.push(h);
                cur = t;
            }
            Cell::NotList => return Err(BadCrdt::UnknownOp(TAG)),
        }
    }
}

impl<T: Term> Lattice<T> for AWSetPS<T> {
    const TAG: Atom = TAG;

    fn decode(payload: &T, d: &mut Decoder) -> Result<Self> {
        if payload.tuple_arity() != Some(3) {
            return Err(malformed());
        }
        let (ds, fo, ae) = (
            payload.tuple_elem(0).ok_or_else(malformed)?,
            payload.tuple_elem(1).ok_or_else(malformed)?,
            payload.tuple_elem(2).ok_or_else(malformed)?,
        );
        let (es, evs) = ds.as_pair().ok_or_else(malformed)?;
        let elems = d.orddict(TAG, &es, |d, prov| {
            let dots = d.list(TAG, &prov, |d, dot| events_of(d, &dot))?;
            if dots
                .windows(2)
                .any(|w| dot_cmp(&w[0], &w[1]) != Ordering::Less)
            {
                return Err(BadCrdt::Unsorted(TAG));
            }
            Ok(dots)
        })?;
        let events = d.list(TAG, &evs, |d, e| {
            let (k, v) = e.as_pair().ok_or_else(malformed)?;
            Ok((Event::decode(&k)?, elems_of(d, &v)?))
        })?;
        if events
            .windows(2)
            .any(|w| w[0].0.cmp(&w[1].0) != Ordering::Less)
        {
            return Err(BadCrdt::Unsorted(TAG));
        }
        let filtered = events_of(d, &fo)?;
        let all = match ae.as_pair() {
            Some((tag, list)) if tag.is_atom(Atom::Vclock) => {
                AllEvents::VClock(d.list(TAG, &list, |_, e| {
                    let (id, c) = e.as_pair().ok_or_else(malformed)?;
                    Ok((id, c.as_i64().ok_or_else(malformed)?))
                })?)
            }
            _ => AllEvents::Set(events_of(d, &ae)?),
        };
        Ok(AWSetPS {
            elems,
            events,
            filtered,
            all,
        })
    }

    fn encode<B: Builder<T = T>>(&self, b: &B) -> T {
        let evs = |v: &[Event<T>]| -> T {
            let items: Vec<T> = v.iter().map(|e| e.encode(b)).collect();
            b.list(&items)
        };
        let es: Vec<T> = self
            .elems
            .iter()
            .map(|(k, prov)| {
                let dots: Vec<T> = prov.iter().map(|d| evs(d)).collect();
                b.pair(k.clone(), b.list(&dots))
            })
            .collect();
        let ev: Vec<T> = self
            .events
            .iter()
            .map(|(e, elems)| b.pair(e.encode(b), b.list(elems)))
            .collect();
        let all = match &self.all {
            AllEvents::VClock(v) => {
                let items: Vec<T> = v
                    .iter()
                    .map(|(id, c)| b.pair(id.clone(), b.int(*c)))
                    .collect();
                b.pair(b.atom(Atom::Vclock), b.list(&items))
            }
            AllEvents::Set(s) => evs(s),
        };
        b.tuple(&[b.pair(b.list(&es), b.list(&ev)), evs(&self.filtered), all])
    }

    fn bottom() -> Self {
        Self::empty_delta(AllEvents::VClock(Vec::new()))
    }

    fn merge(&self, other: &Self) -> Result<Merged<Self>> {
        if self.identical(other) {
            return Ok(Merged::Left);
        }
        let out = if self.is_exact_bottom() {
            let mut out = other.clone();
            out.all = join_all_events(&AllEvents::VClock(Vec::new()), &other.all);
            out
        } else if other.is_exact_bottom() {
            let mut out = self.clone();
            out.all = join_all_events(&self.all, &AllEvents::VClock(Vec::new()));
            out
        } else {
            let mut out = if second_larger(&self.all, &other.all) {
                Self::join_data_store(other, self)?
            } else {
                Self::join_data_store(self, other)?
            };
            let fo = union_events(&self.filtered, &other.filtered);
            out.filtered = subtract_events(&fo, &out.event_keys());
            out.all = join_all_events(&self.all, &other.all);
            out
        };
        // Hand back an input the result is exactly (`=:=`) equal to.
        Ok(if out.identical(self) {
            Merged::Left
        } else if out.identical(other) {
            Merged::Right
        } else {
            Merged::New(out)
        })
    }

    fn equal(&self, other: &Self) -> Result<bool> {
        let (va, vb) = (self.vclock()?, other.vclock()?);
        let ds_equal = self.elems.len() == other.elems.len()
            && self.events.len() == other.events.len()
            && self.elems.iter().zip(&other.elems).all(|((x, p), (y, q))| {
                x.equal(y)
                    && p.len() == q.len()
                    && p.iter()
                        .zip(q)
                        .all(|(a, b)| dot_cmp(a, b) == Ordering::Equal)
            })
            && self
                .events
                .iter()
                .zip(&other.events)
                .all(|((x, p), (y, q))| {
                    x.cmp(y) == Ordering::Equal
                        && p.len() == q.len()
                        && p.iter().zip(q).all(|(a, b)| a.equal(b))
                });
        if !ds_equal {
            return Ok(false);
        }
        if self.filtered.len() != other.filtered.len()
            || self
                .filtered
                .iter()
                .zip(&other.filtered)
                .any(|(a, b)| a.cmp(b) != Ordering::Equal)
        {
            return Ok(false);
        }
        let sorted = |v: &[(T, i64)]| {
            let mut v = v.to_vec();
            v.sort_by(|(a, c), (b, d)| a.compare(b).then(c.cmp(d)));
            v
        };
        let (sa, sb) = (sorted(va), sorted(vb));
        Ok(sa.len() == sb.len()
            && sa
                .iter()
                .zip(&sb)
                .all(|((a, c), (b, d))| a.equal(b) && c == d))
    }

    fn is_inflation(&self, other: &Self) -> Result<bool> {
        if self.identical(other) {
            return Ok(true);
        }
        let (va, vb) = (self.vclock()?, other.vclock()?);
        if !vclock_inflation(va, vb) {
            return Ok(false);
        }
        let removed = self.removed()?;
        Ok(!removed
            .iter()
            .any(|e| find_by(&other.events, |k| k.cmp(e)).is_ok()))
    }

    fn is_bottom(&self) -> bool {
        self.is_exact_bottom()
    }

    fn query<B: Builder<T = T>>(&self, b: &B) -> Result<T> {
        let keys: Vec<T> = self.elems.iter().map(|(k, _)| k.clone()).collect();
        Ok(b.list(&keys))
    }

    fn delta(&self, _other: &Self) -> Result<Self> {
        // types' join decomposition of an awset_ps is the state itself.
        Ok(self.clone())
    }

    fn delta_mutate<C: MutateCx<T>>(
        &self,
        op: &T,
        actor: &T,
        _cx: &mut C,
    ) -> std::result::Result<Self, MutateError<T>> {
        let (name, arg) = op.as_pair().ok_or(BadCrdt::UnknownOp(TAG))?;
        if name.is_atom(Atom::Add) || name.is_atom(Atom::AddAll) {
            let elems = if name.is_atom(Atom::Add) {
                vec![arg]
            } else {
                op_elems(&arg)?
            };
            let mut next = AllEvents::<T>::counter(self.vclock()?, actor);
            let mut delta = Self::empty_delta(AllEvents::Set(Vec::new()));
            for e in &elems {
                next = next.checked_add(1).ok_or(BadCrdt::TooLarge)?;
                delta.add_elem_with_dot(e, &vec![Event::new(actor.clone(), next)]);
            }
            delta.all = AllEvents::Set(delta.event_keys());
            return Ok(delta);
        }
        if name.is_atom(Atom::Rmv) || name.is_atom(Atom::RmvAll) {
            let elems = if name.is_atom(Atom::Rmv) {
                vec![arg]
            } else {
                op_elems(&arg)?
            };
            let mut all = Vec::new();
            for e in &elems {
                if let Some(evs) = self.elem_events(e) {
                    all = union_events(&all, &evs);
                }
            }
            return Ok(Self::empty_delta(AllEvents::Set(all)));
        }
        Err(BadCrdt::UnknownOp(TAG).into())
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::testing::{enc, same, t, Cx, TB, TT};

    fn mutate(x: &AWSetPS<TT>, op: &str, actor: &str) -> AWSetPS<TT> {
        x.mutate(&t(op), &t(actor), &mut Cx::default()).unwrap()
    }

    #[test]
    fn add_and_rmv_follow_types_test() {
        // types' add_test, EventId = {o, a}.
        let s0 = AWSetPS::<TT>::bottom();
        let s1 = mutate(&s0, "{add, x}", "{o, a}");
        same(
            &enc(&s1),
            &t("{{[{x, [[{{o, a}, 1}]]}], [{{{o, a}, 1}, [x]}]}, [], {vclock, [{{o, a}, 1}]}}"),
        );
        let s2 = mutate(&s1, "{add, x}", "{o, a}");
        let s3 = mutate(&s2, "{add, y}", "{o, a}");
        same(
            &enc(&s3),
            &t("{{[{x, [[{{o, a}, 1}], [{{o, a}, 2}]]}, {y, [[{{o, a}, 3}]]}], [{{{o, a}, 1}, [x]}, {{{o, a}, 2}, [x]}, {{{o, a}, 3}, [y]}]}, [], {vclock, [{{o, a}, 3}]}}"),
        );
        let s4 = mutate(&s3, "{rmv, x}", "{o, a}");
        same(&s4.query(&TB).unwrap(), &t("[y]"));
        assert!(s3.is_inflation(&s4).unwrap());
        assert!(!s4.is_inflation(&s3).unwrap());
        // Removing an absent element: an empty delta, the state unchanged
        // (types 0.1.8 has no precondition here).
        same(
            &enc(&s4
                .delta_mutate(&t("{rmv, x}"), &t("{o, a}"), &mut Cx::default())
                .unwrap()),
            &t("{{[], []}, [], []}"),
        );
        same(&enc(&mutate(&s4, "{rmv, x}", "{o, a}")), &enc(&s4));
    }
}
