//! Putting the handler in place and saying what is in place: `install`
//! and `uninstall` (the kernel's settings, with a backup), the package's
//! removal (`uninstall --removing`), `status` (and what a crash would
//! snapshot now, `crash_plan`; the spool of crashes shipped to the
//! collector, `spool_status`, and the user and spool install makes for it,
//! `submit_setup`, with the submitter unit's drop-in, `submit_unit`), and the `demo` that installs the handler
//! for the length of one traced crash.

pub mod crash_plan;
pub mod demo;
pub mod install;
pub mod removal;
pub mod spool_status;
pub mod status;
pub mod submit_removal;
pub mod submit_setup;
pub mod submit_unit;
