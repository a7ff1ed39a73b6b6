//! `state_orset` (stub).

crate::stub_lattice!(ORSet, crate::term::Atom::StateOrset);
