//! The C API: the triggers RFC's `lttng_trigger_set()` and `lttng_trigger()`
//! with its types, plus `lttng_trigger_unset()`, a fire that reports what it
//! did, a settable deadline, and `lttng_coredump_live()` (the core of a
//! running process). cbindgen turns it into `include/lttng-coredump.h`.

pub mod api;
pub mod boundary;
pub mod live;
pub mod report;
pub mod types;
