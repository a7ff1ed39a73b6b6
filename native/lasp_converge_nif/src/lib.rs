// NIF glue for lasp_converge: decode, one core call, encode.
mod atoms;
mod crdt;
mod error;
mod term;

rustler::init!("lasp_converge_nif");
