//! `state_twopset` (stub).

crate::stub_lattice!(TwoPSet, crate::term::Atom::StateTwopset);
