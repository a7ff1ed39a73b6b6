// Resident replica NIFs: one resource per replica, holding the core's
// `Replica` behind a parking_lot RwLock. The handle is MUTABLE, like an ETS
// table: `merge` and `mutate` change it in place, readers take the read lock
// and see every write that returned before they started. Two locks are never
// held at once (a replica merged into another is copied out first), so a
// replica merged into itself or two replicas merged both ways cannot
// deadlock.
//
// Terms cross the boundary through the external term format:
// `enif_term_to_binary` + the core's ETF reader on the way in (O(term)),
// the core's ETF writer + `enif_binary_to_term` in safe mode on the way out,
// so no atom is ever created: a binary naming an atom this VM lacks is
// refused when read.
//
// Scheduling: every NIF has a `_dirty` twin. The normal one weighs its work
// first (entries held for calls that read the whole state, the incoming
// term's or binary's size for merges) and raises `lasp_converge_dirty` past
// `NORMAL_ENTRIES`; the Erlang wrapper then calls the twin on a dirty CPU
// scheduler. 2,000 entries is the core's `Limits::NORMAL_CELLS`, about
// 100 us of work (`make bench`).
use std::sync::atomic::{AtomicUsize, Ordering};

use lasp_converge_core::decode::Decoder;
use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm};
use lasp_converge_core::replica::{bytes, After, Encoded, Patch, Replica};
use lasp_converge_core::{etf, BadCrdt, Builder, Crdt, Limits, MutateCx, MutateError};
use parking_lot::RwLock;
use rustler::{Binary, Encoder, Env, Error, NewBinary, NifResult, ResourceArc, Term};

use crate::error::raise;
use crate::term::{ExBuilder, ExTerm};

const NORMAL_ENTRIES: usize = 2_000;
const NORMAL_BYTES: usize = 64 * 1024;
// Writing a gset's or gcounter's binary costs about 7 ns an entry (a copy
// of its key bytes; `cargo run --release -p lasp_converge_core --example
// replica_timing`): up to this many entries it stays within the budget
// above.
const NORMAL_ENCODE_ENTRIES: usize = 12_000;
// Walking a binary against the resident one costs about a `memcmp` of the
// two (1 MiB in about 100 us) plus a decode per entry the merge writes: a
// walk on a normal scheduler is tried up to this size and gives up past
// `NORMAL_DECODES` entries to decode.
const NORMAL_WALK_BYTES: usize = 1024 * 1024;
const NORMAL_DECODES: usize = 400;

pub struct ExReplicaRef(RwLock<Inner>);

struct Inner {
    r: Replica,
    // Entries for a keyed replica; for a generic one an estimate of its
    // size (ETF bytes / 16), kept up to date by merges.
    weight: usize,
    // A keyed gset's or gcounter's binary, once asked for, until the state
    // changes: `to_binary` hands it out as a resource binary (no copy) and
    // a merge of a binary walks it byte by byte.
    enc: Option<ResourceArc<ExEncoded>>,
    // What mutations wrote since `enc` was written (at most `MAX_PATCHES`):
    // patched in when the binary is next asked for, a copy of it instead
    // of a walk of the whole state.
    pending: Vec<Patch>,
}

const MAX_PATCHES: usize = 256;

impl Inner {
    fn new(r: Replica, weight: usize) -> Self {
        let weight = if r.is_keyed() { r.size() } else { weight };
        Inner {
            r,
            weight,
            enc: None,
            pending: Vec::new(),
        }
    }
    fn drop_enc(&mut self) {
        self.enc = None;
        self.pending.clear();
    }
    fn reweigh(&mut self, added: usize) {
        self.drop_enc();
        self.weight = if self.r.is_keyed() {
            self.r.size()
        } else {
            self.weight.saturating_add(added)
        };
    }
    /// What a merge of a binary says of the state's binary.
    fn keep(&mut self, after: After) {
        match after {
            After::Kept => {}
            After::New(e) => self.enc = Some(ResourceArc::new(ExEncoded(e))),
            After::Unknown => self.drop_enc(),
        }
    }
    /// Whether the binary is at hand (kept, or kept and to be patched).
    fn has_enc(&self) -> bool {
        self.enc.is_some()
    }
    /// The binary of a gset or gcounter, built once per state.
    fn encoded(&mut self) -> Option<ResourceArc<ExEncoded>> {
        if !self.pending.is_empty() {
            if let Some(e) = &self.enc {
                let patched = e.0.patched(&self.pending);
                self.enc = Some(ResourceArc::new(ExEncoded(patched)));
            }
            self.pending.clear();
        }
        if self.enc.is_none() {
            self.enc = self.r.encoded().map(|e| ResourceArc::new(ExEncoded(e)));
        }
        self.enc.clone()
    }
}

/// An immutable binary of a replica's state: the memory behind the resource
/// binaries `to_binary` returns, freed with the last of them.
pub struct ExEncoded(Encoded);

#[rustler::resource_impl]
impl rustler::Resource for ExEncoded {}

// Live replica resources, for the lifetime test (rustler's
// `resource_test.exs`): `Drop` runs when the last reference is collected.
static LIVE: AtomicUsize = AtomicUsize::new(0);

impl Drop for ExReplicaRef {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[rustler::resource_impl]
impl rustler::Resource for ExReplicaRef {}

fn wrap(r: Replica, weight: usize) -> ResourceArc<ExReplicaRef> {
    LIVE.fetch_add(1, Ordering::Relaxed);
    ResourceArc::new(ExReplicaRef(RwLock::new(Inner::new(r, weight))))
}

#[rustler::nif]
fn replica_live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn dirty() -> Error {
    raise(BadCrdt::Yield)
}

fn res(t: Term) -> Option<ResourceArc<ExReplicaRef>> {
    t.decode::<ResourceArc<ExReplicaRef>>().ok()
}

fn replica_arg(t: Term) -> NifResult<ResourceArc<ExReplicaRef>> {
    res(t).ok_or(Error::BadArg)
}

/// A term copied out of the caller's heap.
fn owned(t: Term) -> NifResult<OwnedTerm> {
    etf::decode(t.to_binary().as_slice()).map_err(|_| raise(BadCrdt::NotACrdt))
}

/// A term built in the caller's heap. Safe mode: never creates an atom.
fn to_erl<'a>(env: Env<'a>, t: &OwnedTerm) -> NifResult<Term<'a>> {
    env.binary_to_term(&etf::encode(t))
        .map(|(t, _)| t)
        .ok_or(raise(BadCrdt::NotACrdt))
}

fn heavy(t: Term) -> bool {
    <ExTerm as lasp_converge_core::Term>::too_heavy(&[&ExTerm(t)], 2 * NORMAL_ENTRIES)
}

fn atom_exists(env: Env, name: &str) -> bool {
    rustler::Atom::existing_from_utf8_bytes(env, name.as_bytes()).is_ok()
}

fn from_binary(env: Env, bytes: &[u8]) -> NifResult<Replica> {
    let r = Replica::from_binary(bytes).map_err(raise)?;
    if !r.atoms_known(&|a| atom_exists(env, a)) {
        return Err(raise(BadCrdt::BadBinary(
            lasp_converge_core::Atom::Unsupported,
        )));
    }
    Ok(r)
}

/// What `merge`, `equal` and the inflation checks accept: a replica, a
/// binary of the wire format, or a state term. Returns it and its weight.
fn incoming(env: Env, t: Term) -> NifResult<(Replica, usize)> {
    if let Some(r) = res(t) {
        let g = r.0.read();
        return Ok((g.r.clone(), g.weight));
    }
    if let Ok(b) = t.decode::<Binary>() {
        return Ok((from_binary(env, b.as_slice())?, b.len() / 16));
    }
    let o = owned(t)?;
    let c = Crdt::decode(&o, &mut Decoder::new(Limits::dirty())).map_err(raise)?;
    let w = etf::encode(&o).len() / 16;
    Ok((Replica::from_crdt(c), w))
}

fn weigh_in(t: Term) -> usize {
    if let Some(r) = res(t) {
        return r.0.read().weight;
    }
    if let Ok(b) = t.decode::<Binary>() {
        return b.len() * NORMAL_ENTRIES / NORMAL_BYTES;
    }
    if heavy(t) {
        usize::MAX
    } else {
        0
    }
}

macro_rules! twin {
    ($name:ident, $dirty:ident, $imp:ident, ($($arg:ident),*)) => {
        #[rustler::nif]
        fn $name<'a>(env: Env<'a>, $($arg: Term<'a>),*) -> NifResult<Term<'a>> {
            $imp(env, false, $($arg),*)
        }

        #[rustler::nif(schedule = "DirtyCpu")]
        fn $dirty<'a>(env: Env<'a>, $($arg: Term<'a>),*) -> NifResult<Term<'a>> {
            $imp(env, true, $($arg),*)
        }
    };
}

#[rustler::nif]
fn replica_new<'a>(env: Env<'a>, ty: Term<'a>) -> NifResult<Term<'a>> {
    let r = Replica::new(&owned(ty)?).map_err(raise)?;
    Ok(wrap(r, 0).encode(env))
}

fn from_term<'a>(env: Env<'a>, is_dirty: bool, t: Term<'a>) -> NifResult<Term<'a>> {
    if !is_dirty && heavy(t) {
        return Err(dirty());
    }
    let o = owned(t)?;
    let w = etf::encode(&o).len() / 16;
    let r = Replica::from_term(&o).map_err(raise)?;
    Ok(wrap(r, w).encode(env))
}
twin!(replica_from_term, replica_from_term_dirty, from_term, (t));

fn from_bin<'a>(env: Env<'a>, is_dirty: bool, b: Term<'a>) -> NifResult<Term<'a>> {
    let b = b.decode::<Binary>()?;
    if !is_dirty && b.len() > NORMAL_BYTES {
        return Err(dirty());
    }
    let r = from_binary(env, b.as_slice())?;
    Ok(wrap(r, b.len() / 16).encode(env))
}
twin!(
    replica_from_binary,
    replica_from_binary_dirty,
    from_bin,
    (b)
);

/// Run `f` on the replica's state, on this scheduler only when the state is
/// small.
fn reading<'a, X>(
    r: Term<'a>,
    is_dirty: bool,
    f: impl FnOnce(&Replica) -> NifResult<X>,
) -> NifResult<X> {
    let r = replica_arg(r)?;
    let g = r.0.read();
    if !is_dirty && g.weight > NORMAL_ENTRIES {
        return Err(dirty());
    }
    f(&g.r)
}

fn to_term<'a>(env: Env<'a>, is_dirty: bool, r: Term<'a>) -> NifResult<Term<'a>> {
    let t = reading(r, is_dirty, |r| Ok(r.to_term()))?;
    to_erl(env, &t)
}
twin!(replica_to_term, replica_to_term_dirty, to_term, (r));

fn to_bin<'a>(env: Env<'a>, is_dirty: bool, r: Term<'a>) -> NifResult<Term<'a>> {
    let target = replica_arg(r)?;
    let enc = {
        let mut g = target.0.write();
        match &g.enc {
            Some(e) if g.pending.is_empty() || is_dirty || e.0.byte_len() <= NORMAL_WALK_BYTES => {
                g.encoded()
            }
            Some(_) => return Err(dirty()),
            None if !is_dirty && g.r.is_keyed() && g.weight > NORMAL_ENCODE_ENTRIES => {
                return Err(dirty())
            }
            None => g.encoded(),
        }
    };
    if let Some(e) = enc {
        return Ok(e.make_binary(env, |e| e.0.bytes()).to_term(env));
    }
    let bytes = reading(r, is_dirty, |r| Ok(r.to_binary()))?;
    let mut b = NewBinary::new(env, bytes.len());
    b.as_mut_slice().copy_from_slice(&bytes);
    Ok(b.into())
}
twin!(replica_to_binary, replica_to_binary_dirty, to_bin, (r));

fn query<'a>(env: Env<'a>, is_dirty: bool, r: Term<'a>) -> NifResult<Term<'a>> {
    let q = reading(r, is_dirty, |r| {
        r.to_crdt().query(&OwnedBuilder).map_err(raise)
    })?;
    to_erl(env, &q)
}
twin!(replica_query, replica_query_dirty, query, (r));

fn size<'a>(env: Env<'a>, is_dirty: bool, r: Term<'a>) -> NifResult<Term<'a>> {
    let r = replica_arg(r)?;
    let g = r.0.read();
    if !is_dirty && !g.r.is_keyed() && g.weight > NORMAL_ENTRIES {
        return Err(dirty());
    }
    Ok(g.r.size().encode(env))
}
twin!(replica_size, replica_size_dirty, size, (r));

fn merge<'a>(env: Env<'a>, is_dirty: bool, r: Term<'a>, x: Term<'a>) -> NifResult<Term<'a>> {
    let target = replica_arg(r)?;
    if res(x).is_none() {
        if let Ok(b) = x.decode::<Binary>() {
            return merge_bin(env, is_dirty, &target, b.as_slice());
        }
    }
    if !is_dirty {
        let w = weigh_in(x);
        let resident = {
            let g = target.0.read();
            if g.r.is_keyed() {
                0
            } else {
                g.weight
            }
        };
        if w > NORMAL_ENTRIES || resident > NORMAL_ENTRIES {
            return Err(dirty());
        }
    }
    // Copied out before the write lock: never two locks at once.
    let (inc, w) = incoming(env, x)?;
    let mut g = target.0.write();
    g.drop_enc();
    g.r.merge(&inc).map_err(raise)?;
    g.reweigh(w);
    Ok(rustler::types::atom::ok().encode(env))
}
twin!(replica_merge, replica_merge_dirty, merge, (r, x));

/// Where a merge of the binary `b` into `g` runs: the replica's own binary
/// to walk it against (built if need be) and the budget of decodes on this
/// scheduler, or the dirty twin.
fn bin_plan(
    g: &mut Inner,
    is_dirty: bool,
    b: &[u8],
) -> NifResult<(Option<ResourceArc<ExEncoded>>, Option<usize>)> {
    let walk = g.has_enc() || g.r.walks(b);
    let mut budget = None;
    if !is_dirty {
        let cheap = walk
            && b.len() <= NORMAL_WALK_BYTES
            && (g.has_enc() || g.weight <= NORMAL_ENCODE_ENTRIES);
        let resident = if g.r.is_keyed() { 0 } else { g.weight };
        if cheap {
            budget = Some(NORMAL_DECODES);
        } else if b.len() > NORMAL_BYTES || resident > NORMAL_ENTRIES {
            return Err(dirty());
        }
    }
    Ok((if walk { g.encoded() } else { None }, budget))
}

/// A binary merges straight in: only the entries it writes are decoded. A
/// gset or gcounter receiving a binary of its layout walks its own binary
/// (kept until the state changes); that walk is tried on a normal
/// scheduler when both binaries are small enough to compare there, and
/// moves to a dirty one only if it finds many entries to decode.
fn merge_bin<'a>(
    env: Env<'a>,
    is_dirty: bool,
    target: &ResourceArc<ExReplicaRef>,
    b: &[u8],
) -> NifResult<Term<'a>> {
    let mut g = target.0.write();
    let (enc, budget) = bin_plan(&mut g, is_dirty, b)?;
    let res =
        g.r.merge_binary_with(b, enc.as_ref().map(|e| &e.0), budget, &|a| {
            atom_exists(env, a)
        });
    match res {
        Ok((changed, after)) => {
            if changed {
                g.reweigh(b.len() / 16);
            }
            g.keep(after);
            Ok(rustler::types::atom::ok().encode(env))
        }
        // Nothing written: the binary kept stays right.
        Err(BadCrdt::Yield) => Err(dirty()),
        // A refused binary writes nothing; the binary kept goes anyway.
        Err(e) => {
            g.drop_enc();
            Err(raise(e))
        }
    }
}

/// Fresh 20-byte tokens from the OS, as types' `crypto:strong_rand_bytes(20)`.
struct OwnedMutate;

impl MutateCx<OwnedTerm> for OwnedMutate {
    type B = OwnedBuilder;
    fn builder(&self) -> &OwnedBuilder {
        &OwnedBuilder
    }
    fn token(&mut self) -> OwnedTerm {
        let mut bytes = [0u8; 20];
        if getrandom::fill(&mut bytes).is_err() {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed) as u64;
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            bytes[..8].copy_from_slice(&n.to_le_bytes());
            bytes[8..20].copy_from_slice(&t.to_le_bytes()[..12]);
        }
        OwnedBuilder.binary(&bytes)
    }
}

fn mutate<'a>(
    env: Env<'a>,
    is_dirty: bool,
    op: Term<'a>,
    actor: Term<'a>,
    r: Term<'a>,
) -> NifResult<Term<'a>> {
    let target = replica_arg(r)?;
    if !is_dirty {
        let g = target.0.read();
        if heavy(op) || (!g.r.is_keyed() && g.weight > NORMAL_ENTRIES) {
            return Err(dirty());
        }
    }
    let (op, actor) = (owned(op)?, owned(actor)?);
    let mut g = target.0.write();
    // The binary kept, if any, is patched with what the mutation wrote.
    let (enc, mut pending) = (g.enc.take(), std::mem::take(&mut g.pending));
    let b = ExBuilder { env };
    match g.r.mutate(&op, &actor, &mut OwnedMutate) {
        Ok(delta) => {
            g.reweigh(1);
            if let (Some(e), Some(ps)) = (enc, g.r.patches_for(&delta)) {
                if pending.len() + ps.len() <= MAX_PATCHES {
                    pending.extend(ps);
                    g.enc = Some(e);
                    g.pending = pending;
                }
            }
            let d = to_erl(env, &delta.encode(&OwnedBuilder))?;
            Ok((rustler::types::atom::ok(), d).encode(env))
        }
        Err(MutateError::Bad(e)) => Err(raise(e)),
        Err(MutateError::Reason(why)) => {
            let why = to_erl(env, &why)?;
            Ok(b.pair(
                ExTerm(rustler::types::atom::error().to_term(env)),
                ExTerm(why),
            )
            .0)
        }
    }
}
twin!(replica_mutate, replica_mutate_dirty, mutate, (op, actor, r));

fn compare<'a>(
    env: Env<'a>,
    is_dirty: bool,
    a: Term<'a>,
    b: Term<'a>,
    f: fn(&Crdt<OwnedTerm>, &Crdt<OwnedTerm>) -> lasp_converge_core::error::Result<bool>,
) -> NifResult<Term<'a>> {
    if !is_dirty && (weigh_in(a) > NORMAL_ENTRIES || weigh_in(b) > NORMAL_ENTRIES) {
        return Err(dirty());
    }
    let (x, _) = incoming(env, a)?;
    let (y, _) = incoming(env, b)?;
    Ok(f(&x.to_crdt(), &y.to_crdt()).map_err(raise)?.encode(env))
}

fn equal<'a>(env: Env<'a>, is_dirty: bool, a: Term<'a>, b: Term<'a>) -> NifResult<Term<'a>> {
    compare(env, is_dirty, a, b, Crdt::equal)
}
twin!(replica_equal, replica_equal_dirty, equal, (a, b));

fn is_inflation<'a>(env: Env<'a>, is_dirty: bool, a: Term<'a>, b: Term<'a>) -> NifResult<Term<'a>> {
    compare(env, is_dirty, a, b, Crdt::is_inflation)
}
twin!(
    replica_is_inflation,
    replica_is_inflation_dirty,
    is_inflation,
    (a, b)
);

fn is_strict_inflation<'a>(
    env: Env<'a>,
    is_dirty: bool,
    a: Term<'a>,
    b: Term<'a>,
) -> NifResult<Term<'a>> {
    compare(env, is_dirty, a, b, Crdt::is_strict_inflation)
}
twin!(
    replica_is_strict_inflation,
    replica_is_strict_inflation_dirty,
    is_strict_inflation,
    (a, b)
);

#[rustler::nif]
fn replica_type<'a>(env: Env<'a>, r: Term<'a>) -> NifResult<Term<'a>> {
    let r = replica_arg(r)?;
    let tag = r.0.read().r.tag();
    Ok(crate::atoms::get(tag).encode(env))
}

#[rustler::nif]
fn replica_is_keyed(r: Term) -> NifResult<bool> {
    Ok(replica_arg(r)?.0.read().r.is_keyed())
}

// Binary payloads: lattice calls on two binaries of the wire format (a
// Lasp variable holding `{state_gset, Bin}`), answered straight from the
// bytes by the core's `replica::bytes`. Below `NORMAL_BYTES` of input on
// the caller's scheduler, above it on the `_dirty` twin.

fn payload_args<'a>(is_dirty: bool, ts: &[Term<'a>]) -> NifResult<Vec<Binary<'a>>> {
    let bs = ts
        .iter()
        .map(|t| t.decode::<Binary>())
        .collect::<NifResult<Vec<_>>>()?;
    if !is_dirty && bs.iter().map(|b| b.len()).sum::<usize>() > NORMAL_BYTES {
        return Err(dirty());
    }
    Ok(bs)
}

fn new_binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut b = NewBinary::new(env, bytes.len());
    b.as_mut_slice().copy_from_slice(bytes);
    b.into()
}

/// Bytes of received entries a merge decodes on a normal scheduler (about
/// 40 ns a byte): past it, the dirty twin.
const NORMAL_DECODED: usize = 8 * 1024;

fn p_merge<'a>(env: Env<'a>, is_dirty: bool, a: Term<'a>, b: Term<'a>) -> NifResult<Term<'a>> {
    let bs = payload_args(is_dirty, &[a, b])?;
    let decode = if is_dirty {
        bytes::Decode::SECOND
    } else {
        bytes::Decode::SECOND.within(NORMAL_DECODED)
    };
    let out = bytes::merge(bs[0].as_slice(), bs[1].as_slice(), decode, &|x| {
        atom_exists(env, x)
    })
    .map_err(raise)?;
    Ok((new_binary(env, &out.bytes), out.grew).encode(env))
}
twin!(payload_merge, payload_merge_dirty, p_merge, (a, b));

fn p_compare<'a>(env: Env<'a>, is_dirty: bool, a: Term<'a>, b: Term<'a>) -> NifResult<Term<'a>> {
    let bs = payload_args(is_dirty, &[a, b])?;
    let (infl, eq) = bytes::compare(bs[0].as_slice(), bs[1].as_slice()).map_err(raise)?;
    Ok((infl, eq).encode(env))
}
twin!(payload_compare, payload_compare_dirty, p_compare, (a, b));

fn p_mutate<'a>(
    env: Env<'a>,
    is_dirty: bool,
    delta: Term<'a>,
    op: Term<'a>,
    actor: Term<'a>,
    s: Term<'a>,
) -> NifResult<Term<'a>> {
    let bs = payload_args(is_dirty, &[s])?;
    if heavy(op) || heavy(actor) {
        return Ok(rustler::types::atom::undefined().encode(env));
    }
    let (op, actor) = (owned(op)?, owned(actor)?);
    let f = if delta.decode::<bool>()? {
        bytes::delta_mutate
    } else {
        bytes::mutate
    };
    match f(&op, &actor, bs[0].as_slice()).map_err(raise)? {
        Some(out) => Ok(new_binary(env, &out)),
        None => Ok(rustler::types::atom::undefined().encode(env)),
    }
}
twin!(
    payload_mutate,
    payload_mutate_dirty,
    p_mutate,
    (delta, op, actor, s)
);

mod merge_atoms {
    rustler::atoms! { changed, unchanged }
}

/// A state term, a binary or a replica, decoded. Returns it and its weight.
fn incoming_crdt(env: Env, t: Term) -> NifResult<(Crdt<OwnedTerm>, usize)> {
    if let Some(r) = res(t) {
        let g = r.0.read();
        return Ok((g.r.to_crdt(), g.weight));
    }
    if let Ok(b) = t.decode::<Binary>() {
        return Ok((from_binary(env, b.as_slice())?.to_crdt(), b.len() / 16));
    }
    let bin = t.to_binary();
    let o = etf::decode(bin.as_slice()).map_err(|_| raise(BadCrdt::NotACrdt))?;
    let c = Crdt::decode(&o, &mut Decoder::new(Limits::dirty())).map_err(raise)?;
    Ok((c, bin.len() / 16))
}

// `merge/2` that also tells what the incoming state added, as
// `lasp_converge_crdt:merge_added/2` does for terms: `unchanged` when the
// merge adds nothing (the replica is left as it was, as the term call
// returns its left argument itself), else `changed`, or `{changed, Added}`
// when `want` is `true`, `Added` being `delta(Incoming, Resident)`.
// A keyed gset or gcounter merges a binary of its layout as `merge/2` does
// (walked against its own binary, only the entries it writes decoded, the
// whole binary validated before anything is written) and learns what it
// added from the same walk. Otherwise the states are compared whole,
// O(n + m), and a gcounter merges in only what was added.
fn merge_added<'a>(
    env: Env<'a>,
    is_dirty: bool,
    r: Term<'a>,
    x: Term<'a>,
    want: Term<'a>,
) -> NifResult<Term<'a>> {
    let target = replica_arg(r)?;
    let want = want.decode::<bool>()?;
    let keyed_bin = res(x).is_none()
        && x.decode::<Binary>()
            .is_ok_and(|b| target.0.read().r.keyed_layout(b.as_slice()).is_some());
    // A keyed binary decides below where it runs.
    if !is_dirty && !keyed_bin {
        let resident = {
            let g = target.0.read();
            match g.r {
                Replica::GSet(_) | Replica::GCounter(_) => 0,
                _ => g.weight,
            }
        };
        if weigh_in(x) > NORMAL_ENTRIES || resident > NORMAL_ENTRIES {
            return Err(dirty());
        }
    }
    let answer = |added: Option<Crdt<OwnedTerm>>| -> NifResult<Term<'a>> {
        match added {
            None => Ok(merge_atoms::unchanged().encode(env)),
            Some(_) if !want => Ok(merge_atoms::changed().encode(env)),
            Some(a) => {
                let a = to_erl(env, &a.encode(&OwnedBuilder))?;
                Ok((merge_atoms::changed(), a).encode(env))
            }
        }
    };
    // A keyed gset or gcounter takes a binary of its layout as `merge/2`
    // does, and learns what it added from the same walk.
    if res(x).is_none() {
        if let Ok(b) = x.decode::<Binary>() {
            let bytes = b.as_slice();
            let mut g = target.0.write();
            if g.r.keyed_layout(bytes).is_some() {
                let (enc, budget) = bin_plan(&mut g, is_dirty, bytes)?;
                let res =
                    g.r.merge_binary_added(bytes, enc.as_ref().map(|e| &e.0), budget, &|a| {
                        atom_exists(env, a)
                    });
                match res {
                    Ok(Some((changed, added, after))) => {
                        if changed {
                            g.reweigh(b.len() / 16);
                        }
                        g.keep(after);
                        drop(g);
                        return answer(added);
                    }
                    Ok(None) => {}
                    Err(BadCrdt::Yield) => return Err(dirty()),
                    Err(e) => {
                        g.drop_enc();
                        return Err(raise(e));
                    }
                }
            }
        }
    }
    // Decoded before the write lock: never two locks at once.
    let (inc, w) = incoming_crdt(env, x)?;
    let mut g = target.0.write();
    if g.r.tag() != inc.tag() {
        return Err(raise(BadCrdt::TypeMismatch(g.r.tag(), inc.tag())));
    }
    // Compared whole, on the decoded states: the core's `merge_added` is one
    // walk of both, cheaper than keying every incoming term.
    let local = g.r.to_crdt();
    let added = match local.merge_added(&inc).map_err(raise)? {
        None => None,
        Some((merged, added)) => {
            match (&g.r, &added) {
                // A gcounter's merge(R, Added) writes exactly what
                // merge(R, Incoming) writes: the entries Added leaves out
                // are held with as high a count, and on `==` actors the
                // resident's term is kept either way (`orddict:merge/3`).
                // Not so for a gset, whose `ordsets:union/2` may keep the
                // incoming term of an `==` pair.
                (Replica::GCounter(_), Crdt::GCounter(_)) => {
                    g.r.merge_crdt_ref(&added).map_err(raise)?
                }
                _ if g.r.is_keyed() => g.r.merge_crdt_ref(&inc).map_err(raise)?,
                _ => g.r = Replica::from_crdt(merged.into_state(&local, &inc)),
            }
            Some(added)
        }
    };
    if added.is_some() {
        g.reweigh(w);
    }
    drop(g);
    answer(added)
}
twin!(
    replica_merge_added,
    replica_merge_added_dirty,
    merge_added,
    (r, x, want)
);
