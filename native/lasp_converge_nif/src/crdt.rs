// CRDT NIFs. Each comes in two flavours: the plain one runs on a normal
// scheduler with a small budget of list cells (`Limits::normal`, about
// 100 us of work) and raises `lasp_converge_dirty` past it; the `_dirty` one
// runs on a dirty CPU scheduler with the full limits. `lasp_converge_crdt`
// calls the first and falls back to the second, so small inputs never pay
// for the hop to a dirty scheduler and large ones never hold a normal one.
use lasp_converge_core::{api, Limits};
use rustler::{Env, NifResult, Term};

use crate::error::raise;
use crate::term::{ExBuilder, ExMutate, ExTerm};

fn to_term<'a>(r: lasp_converge_core::error::Result<ExTerm<'a>>) -> NifResult<Term<'a>> {
    r.map(|t| t.0).map_err(raise)
}

fn to_bool(r: lasp_converge_core::error::Result<bool>) -> NifResult<bool> {
    r.map_err(raise)
}

// Each operation is written once as `fn(Env, Limits, args..)`; the macro
// declares its normal and dirty NIFs.
macro_rules! twin {
    ($name:ident, $dirty:ident, $imp:ident, ($($arg:ident),*) -> $ret:ty) => {
        #[rustler::nif]
        fn $name<'a>(env: Env<'a>, $($arg: Term<'a>),*) -> NifResult<$ret> {
            $imp(env, Limits::normal(), $($arg),*)
        }

        #[rustler::nif(schedule = "DirtyCpu")]
        fn $dirty<'a>(env: Env<'a>, $($arg: Term<'a>),*) -> NifResult<$ret> {
            $imp(env, Limits::dirty(), $($arg),*)
        }
    };
}

fn merge<'a>(env: Env<'a>, l: Limits, a: Term<'a>, b: Term<'a>) -> NifResult<Term<'a>> {
    to_term(api::merge(&ExBuilder { env }, &ExTerm(a), &ExTerm(b), l))
}
twin!(crdt_merge, crdt_merge_dirty, merge, (a, b) -> Term<'a>);

fn merge_all<'a>(env: Env<'a>, l: Limits, list: Term<'a>) -> NifResult<Term<'a>> {
    to_term(api::merge_all(&ExBuilder { env }, &ExTerm(list), l))
}
twin!(crdt_merge_all, crdt_merge_all_dirty, merge_all, (list) -> Term<'a>);

fn equal<'a>(_: Env<'a>, l: Limits, a: Term<'a>, b: Term<'a>) -> NifResult<bool> {
    to_bool(api::equal(&ExTerm(a), &ExTerm(b), l))
}
twin!(crdt_equal, crdt_equal_dirty, equal, (a, b) -> bool);

fn is_inflation<'a>(_: Env<'a>, l: Limits, a: Term<'a>, b: Term<'a>) -> NifResult<bool> {
    to_bool(api::is_inflation(&ExTerm(a), &ExTerm(b), l))
}
twin!(crdt_is_inflation, crdt_is_inflation_dirty, is_inflation, (a, b) -> bool);

fn is_strict_inflation<'a>(_: Env<'a>, l: Limits, a: Term<'a>, b: Term<'a>) -> NifResult<bool> {
    to_bool(api::is_strict_inflation(&ExTerm(a), &ExTerm(b), l))
}
twin!(crdt_is_strict_inflation, crdt_is_strict_inflation_dirty, is_strict_inflation, (a, b) -> bool);

fn is_bottom<'a>(_: Env<'a>, l: Limits, s: Term<'a>) -> NifResult<bool> {
    to_bool(api::is_bottom(&ExTerm(s), l))
}
twin!(crdt_is_bottom, crdt_is_bottom_dirty, is_bottom, (s) -> bool);

fn query<'a>(env: Env<'a>, l: Limits, s: Term<'a>) -> NifResult<Term<'a>> {
    to_term(api::query(&ExBuilder { env }, &ExTerm(s), l))
}
twin!(crdt_query, crdt_query_dirty, query, (s) -> Term<'a>);

fn delta<'a>(env: Env<'a>, l: Limits, a: Term<'a>, b: Term<'a>) -> NifResult<Term<'a>> {
    to_term(api::delta(&ExBuilder { env }, &ExTerm(a), &ExTerm(b), l))
}
twin!(crdt_delta, crdt_delta_dirty, delta, (a, b) -> Term<'a>);

fn mutate<'a>(
    env: Env<'a>,
    l: Limits,
    op: Term<'a>,
    actor: Term<'a>,
    s: Term<'a>,
) -> NifResult<Term<'a>> {
    let mut cx = ExMutate {
        b: ExBuilder { env },
    };
    to_term(api::mutate(
        &mut cx,
        &ExTerm(op),
        &ExTerm(actor),
        &ExTerm(s),
        l,
    ))
}
twin!(crdt_mutate, crdt_mutate_dirty, mutate, (op, actor, s) -> Term<'a>);

fn delta_mutate<'a>(
    env: Env<'a>,
    l: Limits,
    op: Term<'a>,
    actor: Term<'a>,
    s: Term<'a>,
) -> NifResult<Term<'a>> {
    let mut cx = ExMutate {
        b: ExBuilder { env },
    };
    to_term(api::delta_mutate(
        &mut cx,
        &ExTerm(op),
        &ExTerm(actor),
        &ExTerm(s),
        l,
    ))
}
twin!(crdt_delta_mutate, crdt_delta_mutate_dirty, delta_mutate, (op, actor, s) -> Term<'a>);

// `{merge(L, R), delta(R, L)}` from one decode of each: what a replicator
// joining a received state needs, its new state and the change to report.
fn merge_added<'a>(env: Env<'a>, l: Limits, a: Term<'a>, b: Term<'a>) -> NifResult<Term<'a>> {
    to_term(api::merge_added(
        &ExBuilder { env },
        &ExTerm(a),
        &ExTerm(b),
        l,
    ))
}
twin!(crdt_merge_added, crdt_merge_added_dirty, merge_added, (a, b) -> Term<'a>);

// `{ok, mutate, delta_mutate}` from one decode of the state.
fn mutate_delta<'a>(
    env: Env<'a>,
    l: Limits,
    op: Term<'a>,
    actor: Term<'a>,
    s: Term<'a>,
) -> NifResult<Term<'a>> {
    let mut cx = ExMutate {
        b: ExBuilder { env },
    };
    to_term(api::mutate_delta(
        &mut cx,
        &ExTerm(op),
        &ExTerm(actor),
        &ExTerm(s),
        l,
    ))
}
twin!(crdt_mutate_delta, crdt_mutate_delta_dirty, mutate_delta, (op, actor, s) -> Term<'a>);

#[rustler::nif]
fn crdt_new<'a>(env: Env<'a>, ty: Term<'a>) -> NifResult<Term<'a>> {
    to_term(api::new(&ExBuilder { env }, &ExTerm(ty)))
}

#[rustler::nif]
fn crdt_types<'a>(env: Env<'a>) -> Vec<Term<'a>> {
    lasp_converge_core::crdt::TYPES
        .iter()
        .map(|a| crate::atoms::get(*a).to_term(env))
        .collect()
}

// Facts about the loaded library, for tests and support: whether list,
// tuple and binary reads use the verified raw layout, and whether the safe
// path was forced (see term/raw.rs).
#[rustler::nif]
fn nif_info() -> Vec<(rustler::Atom, bool)> {
    let i = crate::term::raw::info();
    vec![
        (crate::atoms::raw_layout(), i.raw_layout),
        (crate::atoms::raw_binary(), i.raw_binary),
        (crate::atoms::raw_bignum(), i.raw_bignum),
        (crate::atoms::safe_terms(), i.safe_forced),
    ]
}

// `fast` when terms are read from their words, `safe` when every read goes
// through enif_*.
#[rustler::nif]
fn term_path() -> rustler::Atom {
    match crate::term::raw::path() {
        crate::term::raw::Path::Fast => crate::atoms::fast(),
        crate::term::raw::Path::Safe => crate::atoms::safe(),
    }
}
