//! `state_pncounter` (stub).

crate::stub_lattice!(PNCounter, crate::term::Atom::StatePncounter);
