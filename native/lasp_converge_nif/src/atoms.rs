// The core names the atoms it needs with `lasp_converge_core::Atom`; this maps
// each to a cached VM atom once, so recognising or producing one is a table
// lookup and never creates an atom from caller data.
use std::sync::OnceLock;

use lasp_converge_core::Atom;
use rustler::OwnedEnv;

static TABLE: OnceLock<Vec<rustler::Atom>> = OnceLock::new();

fn table() -> &'static [rustler::Atom] {
    TABLE.get_or_init(|| {
        OwnedEnv::new().run(|env| {
            let mut t = Vec::with_capacity(Atom::ALL.len());
            for (i, a) in Atom::ALL.iter().enumerate() {
                // The table is indexed by discriminant; ALL lists the variants
                // in declaration order.
                debug_assert_eq!(*a as usize, i);
                // Known, static names only.
                t.push(
                    rustler::Atom::from_str(env, a.name())
                        .unwrap_or_else(|_| rustler::types::atom::undefined()),
                );
            }
            t
        })
    })
}

/// The VM atom for a core atom.
#[inline]
pub fn get(a: Atom) -> rustler::Atom {
    table()[a as usize]
}

rustler::atoms! {
    raw_layout,
    raw_binary,
    raw_bignum,
    safe_terms,
    fast,
    safe,
}
