//! `state_lwwregister` (stub).

crate::stub_lattice!(LWWRegister, crate::term::Atom::StateLwwregister);
