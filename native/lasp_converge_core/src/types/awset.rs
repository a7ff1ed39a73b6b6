//! `state_awset` (stub).

crate::stub_lattice!(AWSet, crate::term::Atom::StateAwset);
