//! Crashes of many machines in one place: a spool on every host that loses
//! no crash, shipped to servers people already run on the collector.
//!
//! - [`spool`]: each crash, once its report is written, enters an on-disk
//!   state machine (corewatcher's: one directory a state, atomic renames,
//!   `fsync` wherever a state must survive a power loss) under a crash ID
//!   that never changes ([`crash_id`]); a size bound drops the oldest cores
//!   first and reports last, recording every drop.
//! - [`submit`]: the submitter sends what is queued to each destination
//!   ([`destination`]: systemd-journal-remote's `/upload`, a webhook),
//!   marks an item sent for a destination only once that destination
//!   acknowledged it, and backs off (with a bound) from one that fails.
//! - [`relayd`]: crash snapshots recorded to lttng-relayd on the collector,
//!   and the fields that say where they are.
//! - [`collector`]: on the collector, the crashes journal-remote stored,
//!   each counted once, and the problems they make across hosts.
//! - [`status`]: the queue, the oldest unsent crash, each destination's
//!   last error, the drops.
//!
//! # Delivery: at least once, counted once
//! A crash is marked delivered to a destination only after the destination
//! acknowledged it (journal-remote's `202`, a webhook's 2xx), so a crash is
//! never lost between the spool and the collector; a submitter killed
//! after the acknowledgement but before its mark sends the crash again.
//! Every copy carries the crash's ID (the journal field
//! `LTTNG_COREDUMP_CRASH_ID`; the webhook's `crash_id` and
//! `Idempotency-Key`), and everything that reads the destination counts
//! each ID of a host once: [`collector::read_journal_dir`] (and so `list`
//! and `problems --journal-dir`) keys a crash by its host (machine ID and
//! host name) and its ID; a webhook receiver should key on the host
//! (`machine_id`, `host`) and the ID.
//! `coredumpctl -D` on the collector, which knows nothing of the ID, lists
//! every copy.
//!
//! # Who runs what
//! The handler enqueues as root (it writes `incoming/` and renames into
//! `queue/`, with descriptors only, never following a link). The submitter
//! runs as the unprivileged system user `lttng-coredump`
//! ([`config::DEFAULT_USER`]), which owns `queue/`, `sent/` and `state/`:
//! it reads the queued crashes (their entries, reports and small cores,
//! which is what it ships) and nothing else of the host's.
//!
//! # What the integration calls
//! See the README of this crate's folder.

pub mod collector;
pub mod config;
pub mod crash_id;
pub mod destination;
pub mod dirs;
pub mod entry;
pub mod export;
pub mod fields;
pub mod http;
pub mod relayd;
pub mod spool;
pub mod status;
pub mod submit;

pub use crash_id::CrashId;
pub use spool::{CoreSource, HostIdentity, NewCrash, Spool, SpoolLimits, SpoolOwner};
