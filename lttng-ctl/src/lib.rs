//! Safe Rust API over liblttng-ctl, the LTTng 2.13 control library: session
//! daemon, sessions, channels, events, snapshots, triggers and their
//! notifications, with one error
//! type that keeps the LTTng error code.
//!
//! # Threads
//! liblttng-ctl keeps process-global connection state, so every call this
//! crate makes into it is serialized by one process-wide lock. Objects that
//! own a liblttng-ctl allocation are `Send` (they can be moved to and freed on
//! another thread, since all access goes through the lock) but not `Sync`
//! unless documented otherwise.
//!
//! The session, channel, event and snapshot types hold only names and
//! settings, never a C pointer: the C objects they need (handles, channel and
//! event structures, session descriptors, snapshot outputs) are created and
//! freed within one call. So they are plain `Send + Sync` Rust values.
//!
//! The raw bindings are re-exported as [`sys`] for calls this crate does not
//! wrap.

#![warn(missing_docs)]

pub use lttng_ctl_sys as sys;

pub mod channel;
pub mod daemon;
pub mod domain;
pub mod error;
pub mod event;
mod handle;
pub mod lock;
mod name;
pub mod notification;
pub mod session;
pub mod snapshot;
pub mod trigger;

pub use channel::{Channel, ChannelBuilder};
pub use daemon::session_daemon_alive;
pub use domain::{BufferType, Domain};
pub use error::{Error, ErrorCode, Result};
pub use event::{EventBuilder, LogLevelFilter};
pub use notification::{FieldValue, Notification, NotificationChannel, Received};
pub use session::{list_sessions, Session, SessionBuilder, SessionInfo, SessionOutput};
pub use snapshot::{SnapshotDestination, SnapshotLocation, SnapshotOutput, SnapshotOutputInfo};

#[cfg(test)]
mod tests {
    /// The engine's child module (`lttng_coredump_engine::child`) is the only
    /// place that starts processes around liblttng-ctl, under this crate's
    /// lock: this crate's sources name none of the calls that make one,
    /// comments included, so that a grep of the crate finds none.
    #[test]
    fn this_crate_starts_no_process() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        // The words are put together here, so this file
                        // does not name them itself.
                        let words = [["fo", "rk"].concat(), ["libc::clo", "ne"].concat()];
                        let more = [["posix", "_spawn"].concat(), ["vf", "ork"].concat()];
                        if words.iter().chain(&more).any(|w| line.contains(w.as_str())) {
                            found.push(format!("{}:{}: {line}", path.display(), n + 1));
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(found.is_empty(), "{found:#?}");
    }
}
