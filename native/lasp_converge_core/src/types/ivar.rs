//! `state_ivar` (stub).

crate::stub_lattice!(IVar, crate::term::Atom::StateIvar);
