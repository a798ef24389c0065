//! Putting the handler in place and saying what is in place: `install`
//! and `uninstall` (the kernel's settings, with a backup), the package's
//! removal (`uninstall --removing`), `status` (and what a crash would
//! snapshot now, `crash_plan`), and the `demo` that installs the handler
//! for the length of one traced crash.

pub mod crash_plan;
pub mod demo;
pub mod install;
pub mod removal;
pub mod status;
