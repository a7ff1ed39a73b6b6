//! `state_max_int` (stub).

crate::stub_lattice!(MaxInt, crate::term::Atom::StateMaxInt);
