//! `state_mvregister` (stub).

crate::stub_lattice!(MVRegister, crate::term::Atom::StateMvregister);
