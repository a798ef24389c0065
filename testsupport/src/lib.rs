//! Support for the system tests (the root package's `tests/`, the
//! handler's `handler/tests/`, fleet's), in one place: a real root session
//! daemon, the kernel's core_pattern owned for one test, test users, the C
//! programs this crate's `build.rs` compiles, babeltrace2 and the lttng CLI (for inspection only),
//! the installed handler and what it leaves behind, the C API as C sees it.
//!
//! Nothing here skips: when something a test needs is missing, the support
//! panics with what to install, so the test fails.

pub mod access;
pub mod attacker;
pub mod babeltrace;
pub mod capi;
pub mod collector;
pub mod core_file;
pub mod core_pattern;
pub mod crasher;
pub mod debuginfod;
pub mod demo;
pub mod handler;
pub mod journald;
pub mod kernel_cores;
pub mod lock;
pub mod lttng_cli;
pub mod machine_dirs;
pub mod netns;
pub mod process;
pub mod recover;
pub mod report_programs;
pub mod service;
pub mod sessiond;
pub mod sessions;
pub mod syslog;
pub mod temp;
pub mod tmpfs;
pub mod triggers;
pub mod users;

// What nearly every test uses, at the crate's root.
pub use babeltrace::{babeltrace_events, fixture_seqs};
pub use core_pattern::CorePatternGuard;
pub use crasher::{crasher_as, crasher_command, crasher_path, parse_ready, ready_pid, run_crasher};
pub use lock::{root_triggers_lock, FileLock};
pub use lttng_cli::{lttng, lttng_ok};
pub use machine_dirs::{MachineStateAside, PrivateMachineDirs};
pub use process::{copy_executable, run_bounded};
pub use sessiond::{ensure_sessiond, RootSessiondStopped, RootSessiondUse};
pub use temp::{unique_name, wait_for_path, workspace_root, TempDir};
pub use users::{ensure_test_user, TestUser};
