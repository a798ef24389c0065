//! Support for the system-level tests.
