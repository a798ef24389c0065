//! Child processes under a deadline: liblttng-ctl work (and other work a
//! caller must be able to give up on) in a forked child, one per call
//! ([`isolate`]) or kept between calls ([`resident`]).
//!
//! This is the only place of the engine (and of the crates that use it)
//! that forks; `lttng-ctl` itself forks nothing, and only offers the
//! process-wide lock such a fork is made under.

pub mod isolate;
pub mod resident;
