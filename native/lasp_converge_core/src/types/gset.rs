//! `state_gset` (stub).

crate::stub_lattice!(GSet, crate::term::Atom::StateGset);
