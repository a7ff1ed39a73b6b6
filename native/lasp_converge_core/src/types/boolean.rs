//! `state_boolean` (stub).

crate::stub_lattice!(Boolean, crate::term::Atom::StateBoolean);
