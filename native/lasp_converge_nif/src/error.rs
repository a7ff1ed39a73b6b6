// Core errors to Erlang exceptions. `BadCrdt` is `Copy + 'static`, so it can
// ride in rustler's `RaiseTerm` box and be encoded once the NIF returns.
use lasp_converge_core::{Atom, BadCrdt};
use rustler::{Encoder, Env, Error, Term};

use crate::term::ExBuilder;

struct Raised(BadCrdt);

impl Encoder for Raised {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let b = ExBuilder { env };
        let why = self.0.to_term(&b).0;
        (crate::atoms::get(Atom::Badcrdt), why).encode(env)
    }
}

/// `error:{badcrdt, Why}`, or, when a normal-scheduler call ran out of
/// budget, `error:lasp_converge_dirty` so the Erlang wrapper retries on a
/// dirty scheduler.
pub fn raise(e: BadCrdt) -> Error {
    match e {
        BadCrdt::Yield => Error::RaiseAtom("lasp_converge_dirty"),
        e => Error::RaiseTerm(Box::new(Raised(e))),
    }
}
