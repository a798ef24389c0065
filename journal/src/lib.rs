//! Journal entries for crashes, as systemd-coredump writes them, sent to
//! journald or serialized for another machine's journal.
//!
//! - [`Fields`]: an entry's fields, names checked as journald accepts them
//!   from a client, in order, repeatable; the one type both ways below
//!   take.
//! - [`native::send`]: to the journald on this machine, over its native
//!   protocol (one datagram; a sealed memfd passed with `SCM_RIGHTS` for
//!   entries too large for one), within a timeout; where journald does not
//!   run, [`SendError::NotRunning`] says so.
//! - [`export`]: the journal export format, which `systemd-journal-remote`
//!   imports: its writer and its reader (the fleet's spool and collector
//!   use them too).
//! - [`coredump`]: the crash's entry itself, systemd-coredump's fields and
//!   ours ([`Entry::from`] a [`Crash`]).

pub mod coredump;
pub mod export;
pub mod fields;
pub mod native;

pub use coredump::{Crash, Entry, MESSAGE_ID};
pub use fields::Fields;
pub use native::{send, SendError, Sent, SOCKET};
