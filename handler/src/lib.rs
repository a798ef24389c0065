//! The core_pattern handler of lttng-coredump: what the kernel runs on a
//! crash (snapshot the traces first, then save the core, never lose it),
//! the crash service on the kernel's coredump socket, the crash tools, and
//! the subcommands that install it, report on it and demonstrate it.
//!
//! # Map
//!
//! The folders, in layers: each uses only the folders listed before it
//! (always as `crate::FOLDER::...`), never one listed after it, so that no
//! two folders depend on each other. `layering.rs` checks it on every
//! `cargo test`, from this list.
//!
//! 1. `base/`: the foundation. Safe text and file names from what a
//!    crashing process chose (`sanitize`), text for people (`human`), the
//!    log (`syslog`), files nothing planted can redirect (`safefile`),
//!    POSIX ACLs (`acl`), whether only root can change a path
//!    (`trusted_path`), the configuration (`config`, `config_parse`), and
//!    the runner of programs exec'd as a crash's user (`user_child`).
//! 2. `kernel/`: the model of the kernel's crash settings:
//!    `core_pattern` and `core_pipe_limit` (`settings`), the handler's
//!    lines (`pattern`), the backup of what was there (`backup`), the
//!    sysctl.d persistence (`persist`), the other crash handlers and who
//!    owns core_pattern after a boot (`other_handlers`), the FUSE request
//!    timeout (`fuse_timeout`).
//! 3. `store/`: the crash store the crash path, the tools and `status`
//!    share: the core directory (`coredir`), the record's schema and its
//!    reading (`record`, `record_read`), the crashes a caller may see
//!    (`crashes`), retention, space and the ledger of limits.
//! 4. `crash/`: one crash, from the kernel's arguments or the socket's
//!    peer to the record: the context (`context`), the steps
//!    (`pipeline`), the process (`procinfo`, `access`), the snapshots
//!    (`snapshot`), the core's writing (`corefile`, `pump`, `compress`),
//!    the chained handler (`chain`), the trace the core holds
//!    (`core_trace_check`), and what one crash may cost (`limits/`).
//! 5. `service/`: the crash service on the coredump socket (`serve`), its
//!    listening socket and holder (`listen`, `hold`), the fair queue of
//!    its workers, its probe, the process started ahead for the next
//!    crash (`spare`) and its line to the service (`relay`), the spool's
//!    submitter, and the live cores on LTTng triggers' notifications
//!    (`live_events`, `user_notifications`).
//! 6. `tools/`: the crash tools (list, info, debug, dump, trace, vacuum,
//!    config), with the caller's rights, and children acting as the
//!    crash's user for what touches that user's files (`user_side`).
//! 7. `setup/`: install and uninstall, the package's removal, the
//!    `[submit]` user, spool and unit drop-in, `status`, the demo.
//! 8. `cli/`: the command line, one file a subcommand; `main.rs` only
//!    dispatches to it.
//!
//! ARCHITECTURE.md at the top of the workspace walks one crash through
//! these folders, and says what runs as root, what as the user, and what
//! may block and for how long.

// Every system call goes through rustix or std; the unsafe code lives in the
// FFI crates (lttng-ctl-sys, lttng-ctl, engine, capi, coredump-socket), none
// here: the workspace's lints forbid it in every target of this package, and
// this says so where the code is.
#![forbid(unsafe_code)]

pub mod base;
pub mod cli;
pub mod crash;
pub mod kernel;
#[cfg(test)]
mod layering;
pub mod service;
pub mod setup;
pub mod store;
pub mod tools;
