//! The live-core system tests, against real processes (`tests/programs/`),
//! real gdb and gcore, and a real root session daemon: one test binary of
//! modules, linked once.
//!
//! - `backtraces`: gdb names the same eight functions in our cores (both
//!   methods, plain and zstd) and in gdb's own gcore of the process; zero
//!   pages are holes; the memory in the core is the process's; memory a
//!   fork does not copy (`MADV_DONTFORK`, `MADV_WIPEONFORK`) is read while
//!   stopped or reported, `MADV_DONTDUMP` memory is left out.
//! - `running`: the process keeps running while its core is written; its
//!   parent's waitid sees nothing, its reaping loop reaps nothing, its
//!   signal masks, pending signals and timers are as they were; no page it
//!   shares with its children is unshared, and the copy gets no page of its
//!   own by being read.
//! - `snapshots`: the snapshot taken during the stop holds the process's
//!   last event before the stop and none after, in the root daemon and, for
//!   a user's process, in that user's own daemon.
//! - `refusals`: another user's process, a set-uid one, a non-dumpable one
//!   (for its owner; root may), a kernel thread, a zombie, no process, a
//!   process that exits during the dump.
//! - `precopy`: write-tracked pre-copy's core is the memory at the final
//!   stop while a writer rewrites it during the whole dump; nothing is
//!   left registered or open in the process (root and the owner); pages
//!   given back (`MADV_DONTNEED`) after a pass copied them are in the core
//!   as the process reads them (zeroes, the file's content), and a
//!   mapping marked `MADV_DONTDUMP` then is left out.
//! - `killed`: the dumper SIGKILLed at every stage: the process resumes
//!   and runs on, and no copy of it is left running (nor, with pre-copy,
//!   a registered mapping or a descriptor).

mod common;

mod backtraces;
mod killed;
mod precopy;
mod refusals;
mod running;
mod snapshots;
