//! The OnAnyCoreDump engine (LTTng triggers RFC), a plain Rust library: how
//! the triggers are stored in the session daemon, and the fire that runs
//! their actions for a crash. This file is its interface: what a fire is
//! told about the crash, where it acts, and the report of what it did.
//!
//! The core_pattern handler (`lttng-coredump`, in `handler/`) uses it
//! directly; the C library (`capi/`, `lttng_trigger_set()`,
//! `lttng_trigger()`) exports it to C programs.
//!
//! The engine's parts: [`encoding`] (how an OnAnyCoreDump trigger is stored
//! as an LTTng trigger; set, unset, list), [`target`] (which daemon, as
//! whom), [`identity`] (acting as another user in a forked child),
//! [`child`] (the children themselves: one per call under a deadline, or
//! kept between calls), [`workers`] (the resident children of a
//! long-running caller), [`snapshot_name`] (naming a snapshot after its
//! crash) and `fire`.

pub mod child;
pub mod encoding;
mod fire;
pub mod identity;
pub mod snapshot_name;
pub mod target;
pub mod workers;

pub use workers::Workers;

pub use encoding::{list_triggers, set_trigger, unset_trigger, CoreDumpTrigger, SetOutcome};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// What is known of the crash that fires the trigger (the RFC's
/// `struct lttng_trigger_onanycoredump`, plus the time of the crash).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashInfo {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// The process name (`%e`), as the kernel gave it; may be hostile.
    pub exec_name: String,
    pub hostname: String,
    /// Seconds since the epoch (`%t`).
    pub time: i64,
}

/// Which session daemon a fire acts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonTarget {
    /// The daemon the caller reaches by default (root reaches the root daemon).
    Default,
    /// A per-user daemon named by its run directory (`~/.lttng`) or a socket
    /// in it; acted in with the identity of the directory's owner, only when
    /// the path reaches it without a symbolic link through directories of
    /// root's or the owner's that nobody else may write (see `target`).
    RunDir(PathBuf),
    /// The per-user daemon of this uid, found from its home directory by a
    /// child that has become that uid, and acted in as that uid only.
    User(u32),
}

/// How a fire is carried out.
#[derive(Debug, Clone)]
pub struct FireOptions {
    /// Total time the fire may take; a daemon that has not answered by then
    /// is given up on.
    pub deadline: Duration,
    pub daemon: DaemonTarget,
    /// Sessions to snapshot in addition to those named by triggers.
    pub extra_sessions: Vec<String>,
    /// When no trigger and no extra session applies, snapshot every active
    /// snapshot-mode session of the daemon.
    pub fallback_to_active_snapshot_sessions: bool,
    /// Which actions this fire runs.
    pub phase: ActionPhase,
}

/// Which of the triggers' actions a fire runs.
///
/// A core_pattern handler fires twice: snapshots while the kernel still
/// holds the crashing process (its trace is still in the buffers), and
/// stops only after it has read the core and let the process go. A stop
/// makes the session daemon talk to every application of the session,
/// including the crashing one, which cannot answer while it is held: the
/// daemon would wait its app-socket-timeout (5 s by default) for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ActionPhase {
    /// Snapshots, then stops (what `lttng_trigger()` does).
    #[default]
    All,
    /// Snapshots only: trigger snapshots, extra sessions, the fallback.
    Snapshots,
    /// Stops only.
    Stops,
}

impl ActionPhase {
    /// Whether this phase runs snapshot actions.
    pub fn snapshots(self) -> bool {
        self != ActionPhase::Stops
    }

    /// Whether this phase runs stop actions.
    pub fn stops(self) -> bool {
        self != ActionPhase::Snapshots
    }
}

impl Default for FireOptions {
    fn default() -> Self {
        FireOptions {
            deadline: Duration::from_secs(5),
            daemon: DaemonTarget::Default,
            extra_sessions: Vec::new(),
            fallback_to_active_snapshot_sessions: false,
            phase: ActionPhase::All,
        }
    }
}

/// The action a trigger carries (the RFC's `enum lttng_trigger_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionKind {
    Snapshot,
    Stop,
}

/// An LTTng error met during a fire: the positive `LTTNG_ERR_*` code and a
/// message saying what was attempted on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireError {
    pub code: i32,
    pub message: String,
}

/// The message with its LTTng code, `MESSAGE (LTTng error N)`; a message
/// that already ends so (most do: it is how the `lttng-ctl` error prints)
/// is not given the code twice.
impl std::fmt::Display for FireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let suffix = format!("(LTTng error {})", self.code);
        if self.message.ends_with(&suffix) {
            f.write_str(&self.message)
        } else {
            write!(f, "{} {suffix}", self.message)
        }
    }
}

/// What was done for one action on one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutcome {
    /// The trigger that asked for it; `None` for configured or fallback sessions.
    pub trigger_name: Option<String>,
    pub owner_uid: Option<u32>,
    pub session: String,
    pub action: ActionKind,
    /// Where the snapshot went (a directory, or a relay URL).
    pub snapshot_path: Option<String>,
    pub error: Option<FireError>,
}

/// The report of one fire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireReport {
    pub outcomes: Vec<ActionOutcome>,
    /// Errors not tied to one action: no daemon, a daemon that timed out.
    pub errors: Vec<FireError>,
    /// Stop actions of the daemon's triggers that this fire's phase left
    /// out (`ActionPhase::Snapshots`): a later `ActionPhase::Stops` fire has
    /// work only when this is not zero.
    #[serde(default)]
    pub deferred_stops: usize,
    /// No session daemon runs at the target: it has no client socket (a
    /// user's run directory with no `.lttng` or no socket there, or, for
    /// root, no root daemon's socket). Nothing was asked, and `errors`
    /// says so. A socket nobody listens on is not this: it is a daemon that
    /// died, and an error (`LTTNG_ERR_NO_SESSIOND`). A caller that only
    /// tries a daemon in case there is one (the core_pattern handler)
    /// leaves such a fire out.
    #[serde(default)]
    pub daemon_absent: bool,
}

/// Fires OnAnyCoreDump: runs the actions of every OnAnyCoreDump trigger in
/// the target daemon (each with its owner's rights), then the extra and
/// fallback sessions, synchronously, within `options.deadline`.
pub fn fire_on_any_core_dump(crash: &CrashInfo, options: &FireOptions) -> FireReport {
    fire::fire(crash, options)
}

/// [`fire_on_any_core_dump`], with the session daemons talked to by the
/// resident children of `workers` instead of a child forked for each: what
/// a long-running caller (the crash service) does, so that a crash does not
/// pay a fork, a change of identity and a reap.
pub fn fire_on_any_core_dump_with(
    crash: &CrashInfo,
    options: &FireOptions,
    workers: &Workers,
) -> FireReport {
    fire::fire_with(crash, options, fire::Isolation::Resident(workers))
}
