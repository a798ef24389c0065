//! Safe Rust API over liblttng-ctl, the LTTng 2.13 control library: session
//! daemon, sessions, channels, events, snapshots and triggers, with one error
//! type that keeps the LTTng error code.
//!
//! # Threads
//! liblttng-ctl keeps process-global connection state, so every call this
//! crate makes into it is serialized by one process-wide lock. Objects that
//! own a liblttng-ctl allocation are `Send` (they can be moved to and freed on
//! another thread, since all access goes through the lock) but not `Sync`
//! unless documented otherwise.
//!
//! The raw bindings are re-exported as [`sys`] for calls this crate does not
//! wrap.

pub use lttng_ctl_sys as sys;

pub mod error;
pub mod isolate;
pub mod lock;
mod name;
pub mod trigger;

pub use error::{Error, ErrorCode, Result};
