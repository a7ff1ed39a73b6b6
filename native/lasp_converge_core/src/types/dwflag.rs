//! `state_dwflag` (stub).

crate::stub_lattice!(DWFlag, crate::term::Atom::StateDwflag);
