//! The crash path: what happens to one crash, from the kernel's arguments
//! or the socket's peer to the record, whichever way it came. The context
//! of the crash (`context`), the pipeline of named steps (`pipeline`), the
//! process read from `/proc` while the kernel holds it (`procinfo`) and
//! who may read its core (`access`), the LTTng snapshots (`snapshot`), the
//! core's writing (`corefile`, `pump`, `compress`), the handing on to
//! another handler (`chain`), the scan of the saved core for the trace it
//! holds (`core_trace_check`), the crash's report and signature
//! (`report`, analyzed in this binary executed again as the analyst,
//! `analysis_child`) and its journal entry (`journal`), the spool of crashes
//! shipped to the collector (`submit`), and the limits on what one crash
//! may cost (`limits`). Beside it, the core of a running process (`live`,
//! the `gcore` subcommand), written and recorded as a crash's is.

pub mod access;
pub mod analysis_child;
pub mod chain;
pub mod compress;
pub mod context;
pub mod core_trace_check;
pub mod corefile;
pub mod journal;
pub mod last_events;
pub mod limits;
pub mod live;
pub mod pipeline;
pub mod procinfo;
pub mod pump;
pub mod report;
pub mod snapshot;
pub mod submit;
pub mod uts;
