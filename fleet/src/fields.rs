//! The journal fields this crate reads and adds, by name. The crash's own
//! fields (systemd-coredump's `COREDUMP_*`, `MESSAGE`, `MESSAGE_ID`, the
//! report's signature) come from whoever enqueues the crash; the spool adds
//! the crash ID, the host's identity and what became of the core.

/// systemd-coredump's message ID: `coredumpctl` lists the entries that
/// carry it.
pub const COREDUMP_MESSAGE_ID: &str = "fc2e22bc6ee647b6b90729ab34a250b1";

/// The crash ID (32 hex digits), the same in every copy of the entry sent:
/// readers of the collector count each value once.
pub const CRASH_ID: &str = "LTTNG_COREDUMP_CRASH_ID";
/// The crash's signature (the report's problem key). Readers group
/// crashes into problems by it.
pub const SIGNATURE: &str = "LTTNG_COREDUMP_SIGNATURE";
/// Where the core is: `journal` (in this entry's `COREDUMP` field), `host`
/// (on the crashing host, at [`CORE_LOCATION`]), `none`.
pub const CORE_STORAGE: &str = "LTTNG_COREDUMP_CORE_STORAGE";
/// `HOSTNAME:PATH` of the core on the crashing host, when it is not in the
/// entry.
pub const CORE_LOCATION: &str = "LTTNG_COREDUMP_CORE_LOCATION";
/// Why the core is not in the entry (too large for it, dropped from a full
/// spool).
pub const CORE_NOTE: &str = "LTTNG_COREDUMP_CORE_NOTE";
/// Uncompressed size of the core, in bytes.
pub const CORE_SIZE: &str = "LTTNG_COREDUMP_CORE_SIZE";

/// The relay daemon a snapshot of the crash was sent to (`net://...`).
pub const SNAPSHOT_RELAY: &str = "LTTNG_COREDUMP_SNAPSHOT_RELAY";
/// The session that snapshot is of.
pub const SNAPSHOT_SESSION: &str = "LTTNG_COREDUMP_SNAPSHOT_SESSION";
/// Where the relay daemon stored it, relative to its output directory:
/// `HOSTNAME/SESSION-*/NAME-*`, each `*` a date and time the session daemon
/// chose; the snapshot's name holds the crash ID, so the pattern matches
/// exactly one directory ([`crate::relayd::resolve_snapshot_path`]).
pub const RELAY_SNAPSHOT_PATH: &str = "LTTNG_COREDUMP_RELAY_SNAPSHOT_PATH";
/// A snapshot's directory on the crashing host (the journal crate's
/// field, once per snapshot recorded there). Entries shipped before
/// [`RELAY_SNAPSHOT_PATH`] existed carried the relay's pattern under this
/// name instead (with [`SNAPSHOT_RELAY`] beside it, and no local path):
/// [`crate::collector`] reads those as the relay's pattern.
pub const SNAPSHOT_PATH: &str = "LTTNG_COREDUMP_SNAPSHOT_PATH";

/// systemd-coredump's fields the readers use.
pub const MESSAGE_ID: &str = "MESSAGE_ID";
pub const MESSAGE: &str = "MESSAGE";
pub const COREDUMP: &str = "COREDUMP";
pub const COREDUMP_FILENAME: &str = "COREDUMP_FILENAME";
pub const COREDUMP_PID: &str = "COREDUMP_PID";
pub const COREDUMP_UID: &str = "COREDUMP_UID";
pub const COREDUMP_SIGNAL_NAME: &str = "COREDUMP_SIGNAL_NAME";
pub const COREDUMP_SIGNAL: &str = "COREDUMP_SIGNAL";
pub const COREDUMP_EXE: &str = "COREDUMP_EXE";
pub const COREDUMP_COMM: &str = "COREDUMP_COMM";
pub const COREDUMP_TIMESTAMP: &str = "COREDUMP_TIMESTAMP";
pub const COREDUMP_HOSTNAME: &str = "COREDUMP_HOSTNAME";
/// journald's trusted fields, which an upload may carry.
pub const HOSTNAME: &str = "_HOSTNAME";
pub const BOOT_ID: &str = "_BOOT_ID";
pub const MACHINE_ID: &str = "_MACHINE_ID";
