//! The conformance vectors of `test/conformance/` (generated from
//! lasp-lang/types 0.1.8 on OTP 25), checked case by case through
//! `lasp_converge_core::api` with `OwnedTerm`.
//!
//! Every vector file has a test of its own. For each case: `merge(A, B)` and
//! `merge(B, A)` must be *identical* (`=:=`) to the reference, and `equal`,
//! both inflations, both strict inflations, both `is_bottom` and the three
//! queries must match. A reference call that raised (`{'$raises', Class,
//! Tag}`) must be refused with a `BadCrdt` (neither `Yield` nor
//! `NotImplemented`). A type that is not registered, or whose decode gives
//! `NotImplemented`, fails its test.
//!
//! The vectors are found at `$LASP_CONVERGE_CONFORMANCE`, or else in the
//! repository's `test/conformance` (`../../test/conformance` from this crate).

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::path::PathBuf;

use lasp_converge_core::api;
use lasp_converge_core::crdt::TYPES;
use lasp_converge_core::etf;
use lasp_converge_core::owned::{OwnedBuilder, OwnedTerm};
use lasp_converge_core::{BadCrdt, Limits, Term};

/// How many mismatches a failing test prints in full.
const SHOWN: usize = 5;
/// Longest rendering of one term in a report.
const TERM_CHARS: usize = 600;

fn vector_dir() -> PathBuf {
    match std::env::var_os("LASP_CONVERGE_CONFORMANCE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/conformance"),
    }
}

fn load(ty: &str) -> Vec<OwnedTerm> {
    let dir = vector_dir();
    assert!(
        dir.is_dir(),
        "conformance vectors not found: {} is not a directory. They live in \
         test/conformance in the repository (or set LASP_CONVERGE_CONFORMANCE).",
        dir.display()
    );
    let path = dir.join(format!("{ty}.etf"));
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let term = etf::decode(&bytes).unwrap_or_else(|e| panic!("{} is not ETF: {e}", path.display()));
    // The decoder and the encoder agree with OTP 25 on real data.
    let plain = etf::uncompressed(&bytes).expect("inflates");
    assert!(
        etf::encode(&term) == *plain,
        "{}: re-encoding the decoded cases does not give term_to_binary's bytes",
        path.display()
    );
    term.list_elems()
        .unwrap_or_else(|| panic!("{}: expected a list of cases", path.display()))
}

fn short(t: &OwnedTerm) -> String {
    let s = t.to_string();
    if s.chars().count() <= TERM_CHARS {
        return s;
    }
    let head: String = s.chars().take(TERM_CHARS).collect();
    format!("{head}... ({} chars)", s.len())
}

/// `{'$raises', Class, Tag}`.
fn is_raise(t: &OwnedTerm) -> bool {
    t.tuple_arity() == Some(3)
        && t.tuple_elem(0)
            .is_some_and(|e| e.atom_name() == Some("$raises"))
}

/// Query values whose top-level list is a set: order ties (`==` but not
/// `=:=`) by their external format, as the generator did.
const SET_VALUED: &[&str] = &[
    "state_gset",
    "state_twopset",
    "state_orset",
    "state_awset",
    "state_awset_ps",
    "state_mvregister",
];
/// Composite types: every nested list of a query may be a set.
const COMPOSITE: &[&str] = &["state_gmap", "state_awmap", "state_pair"];

/// Sort a list in term order, ties by external format (`Q` of README §2).
fn sort_set(elems: &mut [OwnedTerm]) {
    elems.sort_by(|x, y| match x.compare(y) {
        Ordering::Equal => etf::encode(x).cmp(&etf::encode(y)),
        o => o,
    });
}

/// Normalise a composite query: every proper list (and every tuple's
/// elements) recursively, sets sorted as `Q` does.
fn normalise_deep(t: &OwnedTerm) -> OwnedTerm {
    match t {
        OwnedTerm::Tuple(elems) => OwnedTerm::tuple(elems.iter().map(normalise_deep)),
        OwnedTerm::List(_) => match t.list_elems() {
            Some(elems) => {
                let mut v: Vec<OwnedTerm> = elems.iter().map(normalise_deep).collect();
                sort_set(&mut v);
                OwnedTerm::list(v)
            }
            None => t.clone(),
        },
        _ => t.clone(),
    }
}

fn normalise_query(ty: &str, t: &OwnedTerm) -> OwnedTerm {
    if SET_VALUED.contains(&ty) {
        if let Some(mut v) = t.list_elems() {
            sort_set(&mut v);
            return OwnedTerm::list(v);
        }
    }
    if COMPOSITE.contains(&ty) {
        return normalise_deep(t);
    }
    t.clone()
}

/// What one call of ours gave, rendered for comparison.
enum Got {
    Term(OwnedTerm),
    Bad(BadCrdt),
}

impl Got {
    fn of(r: Result<OwnedTerm, BadCrdt>) -> Self {
        match r {
            Ok(t) => Got::Term(t),
            Err(e) => Got::Bad(e),
        }
    }

    fn bool(r: Result<bool, BadCrdt>) -> Self {
        Got::of(r.map(|b| OwnedTerm::atom(if b { "true" } else { "false" })))
    }

    fn show(&self) -> String {
        match self {
            Got::Term(t) => short(t),
            Got::Bad(e) => format!("error {{badcrdt, {}}}", e.to_term(&OwnedBuilder)),
        }
    }
}

struct Run {
    ty: &'static str,
    cases: usize,
    checks: usize,
    mismatches: Vec<String>,
    count: usize,
}

impl Run {
    /// Compare our result with the reference's; `norm` maps both sides
    /// before an `=:=` comparison.
    fn check(
        &mut self,
        idx: usize,
        case: &OwnedTerm,
        what: &str,
        expected: Option<&OwnedTerm>,
        got: Got,
        norm: &dyn Fn(&OwnedTerm) -> OwnedTerm,
    ) {
        let Some(expected) = expected else {
            return;
        };
        self.checks += 1;
        let ok = match (&got, is_raise(expected)) {
            (Got::Bad(e), true) => !matches!(e, BadCrdt::Yield | BadCrdt::NotImplemented(_)),
            (Got::Term(t), false) => norm(t).identical(&norm(expected)),
            _ => false,
        };
        if ok {
            return;
        }
        self.count += 1;
        if self.mismatches.len() >= SHOWN {
            return;
        }
        let field = |k: &str| {
            case.map_get(&OwnedTerm::atom(k))
                .map(short)
                .unwrap_or_default()
        };
        let mut s = String::new();
        let _ = writeln!(s, "case #{idx} (label {}): {what}", field("label"));
        let _ = writeln!(s, "    A        = {}", field("a"));
        let _ = writeln!(s, "    B        = {}", field("b"));
        let _ = writeln!(s, "    expected = {}", short(expected));
        let _ = writeln!(s, "    got      = {}", got.show());
        self.mismatches.push(s);
    }
}

fn check_type(ty: &'static str) {
    let cases = load(ty);
    assert!(!cases.is_empty(), "{ty}: no cases");
    // Every type with vectors is registered and decodes: one that dropped
    // out of the registry fails here rather than being skipped.
    assert!(
        TYPES.iter().any(|t| t.name() == ty),
        "{ty}: the core has no such type ({} cases)",
        cases.len()
    );
    let lim = Limits::dirty();
    let b = OwnedBuilder;
    let key = |case: &OwnedTerm, k: &str| case.map_get(&OwnedTerm::atom(k)).cloned();
    // A stubbed type refuses to decode anything.
    if let Some(a) = key(&cases[0], "a") {
        if let Err(BadCrdt::NotImplemented(_)) = api::is_bottom(&a, lim) {
            panic!("{ty}: not implemented ({} cases)", cases.len());
        }
    }
    let mut run = Run {
        ty,
        cases: cases.len(),
        checks: 0,
        mismatches: Vec::new(),
        count: 0,
    };
    let same = |t: &OwnedTerm| t.clone();
    let query = |t: &OwnedTerm| normalise_query(ty, t);
    for (idx, case) in cases.iter().enumerate() {
        let (Some(a), Some(bb)) = (key(case, "a"), key(case, "b")) else {
            panic!("{ty}: case #{idx} lacks a or b: {}", short(case));
        };
        let ex = |k: &str| key(case, k);
        let e = ex("merge");
        run.check(
            idx,
            case,
            "merge(A, B)",
            e.as_ref(),
            Got::of(api::merge(&b, &a, &bb, lim)),
            &same,
        );
        let e = ex("merge_ba");
        run.check(
            idx,
            case,
            "merge(B, A)",
            e.as_ref(),
            Got::of(api::merge(&b, &bb, &a, lim)),
            &same,
        );
        let e = ex("equal");
        run.check(
            idx,
            case,
            "equal(A, B)",
            e.as_ref(),
            Got::bool(api::equal(&a, &bb, lim)),
            &same,
        );
        let e = ex("is_inflation_ab");
        run.check(
            idx,
            case,
            "is_inflation(A, B)",
            e.as_ref(),
            Got::bool(api::is_inflation(&a, &bb, lim)),
            &same,
        );
        let e = ex("is_inflation_ba");
        run.check(
            idx,
            case,
            "is_inflation(B, A)",
            e.as_ref(),
            Got::bool(api::is_inflation(&bb, &a, lim)),
            &same,
        );
        let e = ex("is_strict_inflation_ab");
        run.check(
            idx,
            case,
            "is_strict_inflation(A, B)",
            e.as_ref(),
            Got::bool(api::is_strict_inflation(&a, &bb, lim)),
            &same,
        );
        let e = ex("is_strict_inflation_ba");
        run.check(
            idx,
            case,
            "is_strict_inflation(B, A)",
            e.as_ref(),
            Got::bool(api::is_strict_inflation(&bb, &a, lim)),
            &same,
        );
        let e = ex("is_bottom_a");
        run.check(
            idx,
            case,
            "is_bottom(A)",
            e.as_ref(),
            Got::bool(api::is_bottom(&a, lim)),
            &same,
        );
        let e = ex("is_bottom_b");
        run.check(
            idx,
            case,
            "is_bottom(B)",
            e.as_ref(),
            Got::bool(api::is_bottom(&bb, lim)),
            &same,
        );
        let e = ex("query_a");
        run.check(
            idx,
            case,
            "query(A)",
            e.as_ref(),
            Got::of(api::query(&b, &a, lim)),
            &query,
        );
        let e = ex("query_b");
        run.check(
            idx,
            case,
            "query(B)",
            e.as_ref(),
            Got::of(api::query(&b, &bb, lim)),
            &query,
        );
        // query(merge): of the reference's merge, so a merge mismatch is not
        // counted twice.
        let e = ex("query_merge");
        if let (Some(m), Some(_)) = (ex("merge"), e.as_ref()) {
            if !is_raise(&m) {
                run.check(
                    idx,
                    case,
                    "query(merge(A, B))",
                    e.as_ref(),
                    Got::of(api::query(&b, &m, lim)),
                    &query,
                );
            }
        }
    }
    if run.count == 0 {
        println!("{}: {} cases ok ({} checks)", run.ty, run.cases, run.checks);
        return;
    }
    let mut report = format!(
        "{}: {} of {} checks failed over {} cases; the first {}:\n",
        run.ty,
        run.count,
        run.checks,
        run.cases,
        run.mismatches.len()
    );
    for m in &run.mismatches {
        report.push_str(m);
    }
    panic!("{report}");
}

macro_rules! conformance {
    ($($ty:ident),* $(,)?) => {
        $(
            #[test]
            fn $ty() {
                check_type(stringify!($ty));
            }
        )*

        /// Every vector file in the folder has a test above.
        #[test]
        fn every_vector_file_is_checked() {
            let known = [$(stringify!($ty)),*];
            let dir = vector_dir();
            assert!(dir.is_dir(), "conformance vectors not found at {}", dir.display());
            let mut unknown = Vec::new();
            for entry in std::fs::read_dir(&dir).expect("read the vector folder") {
                let name = entry.expect("a folder entry").file_name();
                let name = name.to_string_lossy();
                if let Some(ty) = name.strip_suffix(".etf").filter(|n| n.starts_with("state_")) {
                    if !known.contains(&ty) {
                        unknown.push(name.to_string());
                    }
                }
            }
            assert!(unknown.is_empty(), "vector files without a test: {unknown:?}");
        }
    };
}

conformance! {
    state_gcounter,
    state_pncounter,
    state_gset,
    state_twopset,
    state_orset,
    state_awset,
    state_awset_ps,
    state_lwwregister,
    state_boolean,
    state_ivar,
    state_gmap,
    state_awmap,
    state_pair,
    state_max_int,
    state_mvregister,
    state_ewflag,
    state_dwflag,
    state_lexcounter,
    state_bcounter,
}

#[test]
fn query_normalisation_orders_ties_by_external_format() {
    let one = OwnedTerm::int(1);
    let onef = OwnedTerm::float(1.0);
    let got = OwnedTerm::list([onef.clone(), one.clone()]);
    let want = OwnedTerm::list([one, onef]);
    assert!(normalise_query("state_gset", &got).identical(&normalise_query("state_gset", &want)));
    assert!(!normalise_query("state_ivar", &got).identical(&normalise_query("state_ivar", &want)));
}

#[test]
fn harness_reports_mismatches() {
    let mut run = Run {
        ty: "state_test",
        cases: 1,
        checks: 0,
        mismatches: Vec::new(),
        count: 0,
    };
    let case = OwnedTerm::map([(OwnedTerm::atom("label"), OwnedTerm::atom("l"))]);
    let same = |t: &OwnedTerm| t.clone();
    let raise = OwnedTerm::tuple([
        OwnedTerm::atom("$raises"),
        OwnedTerm::atom("error"),
        OwnedTerm::atom("function_clause"),
    ]);
    let one = OwnedTerm::int(1);
    let stub = BadCrdt::NotImplemented(lasp_converge_core::Atom::StateGset);
    // Matches: identical values; a raise refused with a real BadCrdt.
    run.check(
        0,
        &case,
        "ok",
        Some(&one),
        Got::Term(OwnedTerm::int(1)),
        &same,
    );
    run.check(
        0,
        &case,
        "raise",
        Some(&raise),
        Got::Bad(BadCrdt::TooDeep),
        &same,
    );
    run.check(0, &case, "absent", None, Got::Bad(BadCrdt::TooDeep), &same);
    assert_eq!((run.checks, run.count), (2, 0));
    // Mismatches: == but not =:=; a value for a raise; a stub's refusal.
    run.check(
        0,
        &case,
        "float",
        Some(&one),
        Got::Term(OwnedTerm::float(1.0)),
        &same,
    );
    run.check(
        0,
        &case,
        "value",
        Some(&raise),
        Got::Term(one.clone()),
        &same,
    );
    run.check(0, &case, "stub", Some(&raise), Got::Bad(stub), &same);
    run.check(
        0,
        &case,
        "yield",
        Some(&raise),
        Got::Bad(BadCrdt::Yield),
        &same,
    );
    run.check(
        0,
        &case,
        "error",
        Some(&one),
        Got::Bad(BadCrdt::TooDeep),
        &same,
    );
    assert_eq!((run.checks, run.count), (7, 5));
    assert!(
        run.mismatches[0].contains("got      = 1.0"),
        "{}",
        run.mismatches[0]
    );
}
