//! One module per CRDT type.


pub mod awmap;
pub mod awset;
pub mod awset_ps;
pub mod bcounter;
pub mod boolean;
pub mod dwflag;
pub mod ewflag;
pub mod flag;
pub mod gcounter;
pub mod gmap;
pub mod gset;
pub mod ivar;
pub mod lexcounter;
pub mod lwwregister;
pub mod max_int;
pub mod mvregister;
pub mod orset;
pub mod pair;
pub mod pncounter;
pub mod twopset;

pub use awmap::AWMap;
pub use awset::AWSet;
pub use awset_ps::AWSetPS;
pub use bcounter::BCounter;
pub use boolean::Boolean;
pub use dwflag::DWFlag;
pub use ewflag::EWFlag;
pub use gcounter::GCounter;
pub use gmap::GMap;
pub use gset::GSet;
pub use ivar::IVar;
pub use lexcounter::LexCounter;
pub use lwwregister::LWWRegister;
pub use max_int::MaxInt;
pub use mvregister::MVRegister;
pub use orset::ORSet;
pub use pair::Pair;
pub use pncounter::PNCounter;
pub use twopset::TwoPSet;
