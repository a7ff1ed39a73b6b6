// NIF glue for lasp_converge: decode, one core call, encode.
mod atoms;
mod crdt;
mod error;
mod term;

// Cargo feature `allocator` makes rustler allocate through enif_alloc: the
// VM's allocators keep carriers cached, so large decode buffers do not
// page-fault on every call.

rustler::init!("lasp_converge_nif");

