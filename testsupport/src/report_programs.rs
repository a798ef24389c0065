//! The crash report's test programs (`tests/fixtures/report`, built by
//! `build.rs`): where they are.

/// `report_crasher BUG` (segv, abort, thread, overflow, library), with
/// debug information.
pub const CRASHER: &str = env!("FIXTURE_REPORT_CRASHER");
/// The same program built without debug information (symbols only).
pub const CRASHER_NODEBUG: &str = env!("FIXTURE_REPORT_CRASHER_NODEBUG");
/// The same program unoptimized, with frame pointers (its unwind tables
/// find each caller through the saved frame pointer).
pub const CRASHER_FP: &str = env!("FIXTURE_REPORT_CRASHER_FP");
/// The shared library both crashers load (`report_crasher library`
/// crashes in it).
pub const LIBRARY: &str = env!("FIXTURE_REPORT_LIBRARY");
/// A Rust program built with `panic=abort` that panics in
/// `report_panic::report_rust_bug`.
pub const PANIC: &str = env!("FIXTURE_REPORT_PANIC");
