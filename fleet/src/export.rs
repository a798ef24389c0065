//! The journal export format: the journal crate's (one writer and one
//! reader for the crash's journal entry, the spool and the collector).

pub use lttng_coredump_journal::export::*;
