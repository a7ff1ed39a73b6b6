//! `state_ewflag` (stub).

crate::stub_lattice!(EWFlag, crate::term::Atom::StateEwflag);
