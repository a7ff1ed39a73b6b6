//! `state_lexcounter` (stub).

crate::stub_lattice!(LexCounter, crate::term::Atom::StateLexcounter);
