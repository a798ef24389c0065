//! The crash record: one JSON file per crash, beside the core, saying what
//! crashed, where its core and its trace snapshots are, and every problem
//! the handler met. Written like the core (unnamed file, then a link that
//! never replaces anything), so a planted symlink is never followed.

use crate::base::safefile::NewFile;
use crate::base::syslog::Message;
use lttng_coredump_engine::{DaemonTarget, FireReport};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::BorrowedFd;

/// Identifies the format for readers; bumped on incompatible changes.
pub const FORMAT: &str = "lttng-coredump-record/1";
/// The format of the crashing user's copy ([`UserRecord`]).
pub const USER_FORMAT: &str = "lttng-coredump-user-record/1";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Signal {
    pub number: i32,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoreSection {
    /// Whether a core file exists (none for `%c` = 0, or when saving is
    /// turned off or failed).
    pub saved: bool,
    pub path: Option<String>,
    /// Bytes of the core the file holds (uncompressed).
    pub size: u64,
    /// Bytes the file takes on disk.
    pub stored_bytes: u64,
    /// Bytes the kernel sent to the handler.
    pub bytes_received: u64,
    #[serde(default = "no_compression")]
    pub compression: String,
    /// Whether the file holds the whole core.
    pub complete: bool,
    pub truncated_reason: Option<String>,
    /// Why no file was written, when none was.
    pub not_saved_reason: Option<String>,
    /// Who besides root may read it.
    pub readable_by_uid: Option<u32>,
    /// Older cores deleted to make room for this one.
    pub deleted_to_make_room: Vec<String>,
}

/// One snapshot taken (or tried) for the crash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotEntry {
    pub daemon: String,
    pub session: String,
    pub trigger: Option<String>,
    pub action: String,
    pub path: Option<String>,
    pub error: Option<String>,
}

/// What trace the saved core itself holds: the LTTng-UST ring buffers the
/// crashed program mapped (see `crash::core_trace_check`), which `lttng-coredump
/// recover` turns into a trace when no snapshot could be taken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoreTraceSection {
    /// Whether the saved core was scanned.
    pub checked: bool,
    /// Why not (turned off, no core saved, not a core this check reads).
    pub not_checked_reason: Option<String>,
    /// LTTng-UST ring buffers found in the core (read or only counted).
    pub buffers: usize,
    /// Of those, the ones holding no packet.
    pub empty_buffers: usize,
    /// Of those, the ones past the check's byte budget: counted, not read
    /// (whether they hold packets is unknown).
    pub unread_buffers: usize,
    /// What can be recovered, per trace: the largest few
    /// (`crash::core_trace_check::LISTED_TRACES`) of them.
    pub traces: Vec<CoreTrace>,
    /// How many traces the core holds buffers of (all of them, listed or
    /// not).
    pub traces_total: usize,
    /// The core holds packets and no snapshot of this crash was recorded,
    /// or one failed: the trace (or that part of it) is only in the core.
    pub only_in_core: bool,
    /// The command that recovers it (when the core holds packets).
    pub recover_command: Option<String>,
    /// What the core holds, in one sentence.
    pub summary: String,
    /// For each snapshot that could not be recorded (a session, or a whole
    /// session daemon), whether the core holds its buffers.
    pub failed_snapshots: Vec<FailedSnapshot>,
    /// What the scan met: buffers cut with the core, unusable headers,
    /// buffers left unread.
    pub notes: Vec<String>,
}

/// The crash's report (`crash::report`): what its analysis found (every
/// thread's backtrace, the signal, the modules) and the signature that
/// groups crashes into problems, or why there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportSection {
    /// Whether the analysis gave a report.
    pub analyzed: bool,
    /// Why there is none: turned off, no core, "analysis failed: ...".
    pub not_analyzed_reason: Option<String>,
    /// Who the analysis ran as: the crashing user, or the service account
    /// for root's crashes and root-only cores.
    pub analyzed_as_uid: Option<u32>,
    /// The signature's hash (`lttng_coredump_report::signature`): crashes
    /// of one bug share it (`lttng-coredump problems`).
    pub signature: Option<String>,
    /// The problem's one-line title ("prog: SIGSEGV in f").
    pub title: Option<String>,
    /// Threads in the core, and of them unwound.
    pub threads: usize,
    /// The crashing thread's frames.
    pub frames: usize,
    /// The report itself (the crashing thread first): in memory while the
    /// crash is handled; written into its own file beside the record
    /// (`store/report_file.rs`), so only records from before that (or
    /// whose report file could not be written) hold it here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<lttng_coredump_report::Report>,
    /// The report's file, beside the record (`STEM.report.json`; in the
    /// user's copy, theirs: `STEM.report.user.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why the report's file this record should name could not be written
    /// (in root's record: root's report file, the report then embedded
    /// here; in the user's copy: their copy of the report), so that
    /// whoever reads this record, and `info`, sees why, not only root's
    /// log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_error: Option<String>,
}

/// A crash's place in its uid's share of the crashes handled at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShareSection {
    /// The uid's share as applied (`max_crashes_in_progress_per_user`,
    /// bounded by the pool); none when not counted.
    pub share: Option<u32>,
    /// The crash came past its uid's share (pipe mode): no fire in the
    /// user's own session daemon, and its dump's FUSE wait aborted after
    /// 2 s without progress.
    pub past_share: bool,
    /// Why it was not counted, or what being past the share cost it.
    pub note: Option<String>,
}

/// One trace (by the UUID of its packets) the core holds buffers of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoreTrace {
    pub uuid: String,
    /// Buffers (one per stream: per CPU, per channel) with packets.
    pub streams: usize,
    pub packets: usize,
    /// Of those, the ones cut where their writing stopped.
    pub partial_packets: usize,
    pub bytes: u64,
}

/// A snapshot that could not be recorded, and what the core holds of its
/// session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailedSnapshot {
    pub daemon: String,
    /// None when the whole daemon failed (the sessions it would have
    /// snapshotted are then unknown).
    pub session: Option<String>,
    pub error: String,
    /// `its_buffers` (a trace of the core is this session's or daemon's,
    /// by the UUID of a snapshot of it), `buffers_not_tied` (the core holds
    /// buffers, none known to be its), `no_buffers`, or `unknown` (not
    /// checked, or buffers left unread).
    pub core_holds: String,
    /// The traces of the core known to be its, with how that is known.
    pub traces: Vec<TiedTrace>,
    pub explanation: String,
    /// Whose trigger asked for it (for the user's copy), when known.
    #[serde(skip)]
    pub owner_uid: Option<u32>,
}

/// A trace of the core tied to a session: a snapshot of that session (an
/// earlier crash's, or this crash's) has metadata of the same UUID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TiedTrace {
    pub uuid: String,
    pub session: String,
    /// That snapshot's metadata file (what `recover` uses).
    pub metadata: String,
}

/// When a stage of the handling ran, in microseconds since the epoch (the
/// wall clock, as the rest of the record): shows that the snapshots were
/// taken before the core was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageTimes {
    pub started_unix_us: u64,
    pub ended_unix_us: u64,
}

/// The timed stages of the handling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stages {
    /// Recording the snapshots (every daemon, within the deadline).
    pub snapshots: StageTimes,
    /// Reading the core from the kernel's pipe, to its end or its limit.
    pub core: StageTimes,
    /// Running the triggers' stop actions, after the core (zero when there
    /// were none).
    pub stops: StageTimes,
    /// Compressing the saved core, once the process was let go (zero
    /// without `compression = "zstd"`).
    pub compression: StageTimes,
    /// Scanning the saved core for the trace it holds, once the process
    /// was let go (zero when not checked).
    pub core_trace: StageTimes,
    /// Analyzing the saved core for the report, once the process was let
    /// go (zero when not made).
    pub report: StageTimes,
}

/// What a record that does not say was stored uncompressed.
fn no_compression() -> String {
    "none".into()
}

/// Now, in microseconds since the epoch.
pub fn now_unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What crashed: the process, its signal and time, as the kernel and
/// `/proc` told them. Root's record and the user's copy both hold it
/// (flattened: its fields are the records' own top-level keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Crashed {
    /// 128 random bits given to the crash when the handler starts on it,
    /// 32 lowercase hex digits: the one name of this crash in its record,
    /// its journal entry and every copy sent to the fleet's servers.
    pub crash_id: Option<String>,
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub signal: Option<Signal>,
    /// Seconds since the epoch, and the same in UTC.
    pub time: Option<i64>,
    pub time_utc: Option<String>,
    pub hostname: Option<String>,
    pub process_name: Option<String>,
    pub exe_path: Option<String>,
    pub cmdline: Option<Vec<String>>,
    pub cmdline_truncated: bool,
    pub cgroup: Option<String>,
    /// Whether the process details above come from the crashed process.
    pub process_identity: Identity,
    pub dump_mode: Option<u32>,
    pub core_limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrashRecord {
    pub format: String,
    #[serde(flatten)]
    pub crashed: Crashed,
    pub core: CoreSection,
    pub chain: Option<ChainOutcome>,
    pub snapshots: Vec<SnapshotEntry>,
    /// What trace the core itself holds.
    pub core_trace: CoreTraceSection,
    /// The crash's report and signature, or why there is none.
    pub report: ReportSection,
    /// Where the crash stood in its uid's share of the crashes handled at
    /// once (`crash_share`, `fair_queue`).
    pub crash_share: ShareSection,
    /// When the core's stream stalled: each stall, and what was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_stall: Option<StallSection>,
    /// The engine's fires, in full (a daemon that is not running included:
    /// its fire says so, and is no error).
    pub fires: Vec<DaemonFire>,
    /// Why the handler's own snapshots (`snapshot_sessions`, the fallback
    /// to every active snapshot session) were not taken for this crash:
    /// the snapshot budget was spent. Triggers' snapshots are taken anyway.
    pub own_snapshots_skipped: Option<String>,
    pub stages: Stages,
    pub config_path: String,
    /// Every error met, in order.
    pub errors: Vec<String>,
    /// Every message the handler logged.
    pub log: Vec<Message>,
    /// A live core (`lttng-coredump gcore`): the process was running, not
    /// crashing (no signal); how it was dumped. Absent from crash records
    /// (and from records older than live cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSection>,
}

/// How a live core was taken (`gcore`): the process was stopped for
/// `pause_us`, its memory copied by `method`, its snapshots taken during
/// the stop (the record's `fires` and `snapshots`, as for a crash).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveSection {
    /// `pre-copy`, `copy-on-write` or `stop-and-copy`.
    pub method: String,
    /// Why the default method was not used, when none was asked for.
    pub fallback: Option<String>,
    /// How long the threads were stopped, in microseconds (first stop to
    /// the last thread let go), and within it: stopping every thread, the
    /// copy-on-write fork, the snapshots, copying the memory
    /// (stop-and-copy).
    pub pause_us: u64,
    pub stop_us: u64,
    pub fork_us: u64,
    pub snapshot_us: u64,
    pub copy_us: u64,
    /// Copy-on-write: the second stop, of one thread, that reaped the copy.
    pub reap_pause_us: u64,
    /// From the request to the core complete, in microseconds.
    pub total_us: u64,
    pub threads: Vec<LiveThread>,
    /// Memory in the core (bytes) and its segments.
    pub memory_bytes: u64,
    pub segments: usize,
    /// What the copy cost in memory: copy-on-write, the pages the copy had
    /// to itself at the end (the process's writes during the dump);
    /// stop-and-copy, the buffer the memory was held in during the stop.
    pub copy_private_bytes: u64,
    pub buffer_bytes: u64,
    /// Stop-and-copy: why the core was written while the threads were
    /// stopped, when it was.
    pub buffer_note: Option<String>,
    /// Memory the core does not hold faithfully (`MADV_DONTFORK` left out,
    /// `MADV_WIPEONFORK`).
    pub unfaithful: Vec<LiveRegion>,
    pub warnings: Vec<String>,
    /// The process exited while its copy-on-write copy was written: the
    /// core is the process as it was at the stop.
    pub exited_during_dump: bool,
    /// Who asked for it (the uid `gcore` ran as).
    pub requested_by_uid: Option<u32>,
    /// The LTTng event that asked for it (`serve`'s `[live]` triggers);
    /// absent for `gcore`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<LiveEvent>,
}

/// The notification a live core was taken on: the trigger (name and
/// owner), its event rule, and what it captured, as the traced process
/// said (not vouched for).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveEvent {
    pub trigger: String,
    pub trigger_owner_uid: u32,
    /// The event rule's name pattern (`provider:event`).
    pub event_rule: Option<String>,
    /// `EXPR = VALUE` for each capture descriptor.
    pub captured: Vec<String>,
}

/// One thread of a live core.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveThread {
    pub tid: i32,
    pub name: String,
    /// Its state before the stop (`R`, `S`, `D`...).
    pub state: String,
    /// Whether it stopped in time (its registers are in the core).
    pub stopped: bool,
    /// The signal it was about to take when stopped (given back to it).
    pub signal: Option<i32>,
}

/// A region of memory a live core does not hold faithfully.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveRegion {
    pub start: u64,
    pub end: u64,
    pub path: String,
    pub why: String,
}

// The sections the crash path's steps fill (the chained command, the
// process's identity, the session daemons' fires, the stalls of the
// core's stream), defined here with the rest of the schema: the record is
// written and read through the same types.

/// What became of the chained command.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ChainOutcome {
    pub command: Vec<String>,
    /// Bytes of the core it accepted.
    pub bytes_given: u64,
    /// Whether it accepted the whole core.
    pub complete: bool,
    /// How it ended: `exit status 0`, `killed after ...`, ...
    pub ended: String,
    pub errors: Vec<String>,
}

/// How sure the handler is that the information describes the crash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Identity {
    /// The pidfd still named the PID after `/proc` was read.
    VerifiedByPidfd,
    /// The kernel gave no pidfd; `core_pipe_limit` holds the process, so
    /// the PID cannot have been reused, but nothing checked it.
    Unverified(String),
    /// The information was dropped: it may describe another process.
    CouldNotTell(String),
}

/// What a record that does not say holds: nothing was checked.
impl Default for Identity {
    fn default() -> Self {
        Identity::CouldNotTell("the record does not say".into())
    }
}

/// One fire: in which daemon, and what it did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DaemonFire {
    /// `root` or `user UID`.
    pub daemon: String,
    /// Where it fired (kept so that the stops go to the same daemons).
    #[serde(skip)]
    pub target: Option<DaemonTarget>,
    pub report: Option<FireReport>,
    /// Why there is no report (not tried: no time left; the engine panicked).
    pub error: Option<String>,
}

/// What the remedy for one stall did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Remedy {
    /// Whether it did something that may let the dump go on.
    pub acted: bool,
    /// What it did, or why it did nothing.
    pub said: Vec<String>,
    /// The FUSE connections it found, aborted or not.
    pub fuse: Vec<FuseConnection>,
}

/// One stall of the core's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stall {
    /// Bytes of the core read before it.
    pub after_bytes: u64,
    pub remedy: Remedy,
}

/// The record's account of the stalls of a core's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StallSection {
    /// The bound: how long the read may go without a byte.
    pub stall_timeout_ms: u64,
    /// When the remedy is first tried (a crash past its uid's share gets
    /// it sooner than the bound).
    pub first_remedy_ms: u64,
    pub stalls: Vec<Stall>,
    /// Whether the read was ended by a stall (the core is then cut).
    pub ended_the_read: bool,
}

/// A FUSE file system the crashed process maps files of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FuseConnection {
    /// `N` of `/sys/fs/fuse/connections/N` (the file system's device).
    pub connection: u64,
    /// `major:minor`.
    pub device: String,
    /// Where the process sees it mounted, and its type (`fuse.sshfs`).
    pub mount_point: String,
    pub fs_type: String,
    /// Requests waiting on it when it was looked at.
    pub waiting: Option<u64>,
    pub aborted: bool,
    pub error: Option<String>,
}

/// The snapshot entries of a set of fires, one per session tried.
pub fn snapshot_entries(fires: &[DaemonFire]) -> Vec<SnapshotEntry> {
    let mut entries = Vec::new();
    for fire in fires {
        let Some(report) = &fire.report else { continue };
        for outcome in &report.outcomes {
            entries.push(SnapshotEntry {
                daemon: fire.daemon.clone(),
                session: outcome.session.clone(),
                trigger: outcome.trigger_name.clone(),
                action: format!("{:?}", outcome.action).to_lowercase(),
                path: outcome.snapshot_path.clone(),
                error: outcome.error.as_ref().map(ToString::to_string),
            });
        }
    }
    entries
}

/// Every error the fires report, as lines for the record's error list.
pub fn fire_errors(fires: &[DaemonFire]) -> Vec<String> {
    let mut errors = Vec::new();
    for fire in fires {
        if let Some(error) = &fire.error {
            errors.push(format!(
                "snapshot in the {} session daemon: {error}",
                fire.daemon
            ));
        }
        let Some(report) = &fire.report else { continue };
        for error in &report.errors {
            errors.push(format!(
                "snapshot in the {} session daemon: {error}",
                fire.daemon
            ));
        }
        for outcome in &report.outcomes {
            if let Some(error) = &outcome.error {
                errors.push(format!(
                    "snapshot of session {:?} in the {} session daemon: {error}",
                    outcome.session, fire.daemon
                ));
            }
        }
    }
    errors
}

/// The crashing user's copy of a record: what concerns that user only.
///
/// Root's record names every session the crash snapshotted in the root
/// session daemon, other users' triggers (with their uids), configured
/// sessions and where their snapshots went, and logs all of it: it stays
/// readable by root only. When the user may read the core, they get this
/// copy beside it (`<record stem>.user.json`): their process, the core,
/// and the snapshots taken in their own session daemon or by their own
/// triggers; the rest is left out, not blanked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRecord {
    pub format: String,
    #[serde(flatten)]
    pub crashed: Crashed,
    pub core: UserCoreSection,
    /// Snapshots taken in the user's own daemon or by the user's triggers.
    pub snapshots: Vec<SnapshotEntry>,
    /// What trace the core holds (the user may read the core); of the
    /// failed snapshots, those of the user's daemon or triggers.
    pub core_trace: CoreTraceSection,
    /// The crash's report (analyzed as that user: the user's copy is only
    /// written when the user may read the core).
    pub report: ReportSection,
    /// When no snapshot of the user's was taken, why (see
    /// `record_read::trace_absence`), in what concerns that user.
    pub no_trace: Vec<String>,
    pub note: String,
    /// A live core: as in root's record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSection>,
}

/// The core section of the user's copy (without the names of other
/// crashes' cores deleted to make room).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserCoreSection {
    pub saved: bool,
    pub path: Option<String>,
    pub size: u64,
    #[serde(default = "no_compression")]
    pub compression: String,
    pub complete: bool,
    pub truncated_reason: Option<String>,
    pub not_saved_reason: Option<String>,
}

/// The snapshot entries of `fires` that concern `uid`: every one of its
/// own daemon (`user UID`), and those of its own triggers elsewhere.
fn snapshot_entries_of(fires: &[DaemonFire], uid: u32) -> Vec<SnapshotEntry> {
    let own_daemon = format!("user {uid}");
    let mut entries = Vec::new();
    for fire in fires {
        let Some(report) = &fire.report else { continue };
        for outcome in &report.outcomes {
            if fire.daemon == own_daemon || outcome.owner_uid == Some(uid) {
                entries.extend(snapshot_entries(&[DaemonFire {
                    daemon: fire.daemon.clone(),
                    target: None,
                    report: Some(lttng_coredump_engine::FireReport {
                        outcomes: vec![outcome.clone()],
                        ..Default::default()
                    }),
                    error: None,
                }]));
            }
        }
    }
    entries
}

/// A record as written: its name, the user's copy's, and what had to go to
/// make room for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub name: String,
    /// The report's file (`store/report_file.rs`), when it has one.
    pub report: Option<String>,
    pub user_copy: Option<String>,
    pub deleted: Vec<String>,
    pub errors: Vec<String>,
}

impl CrashRecord {
    /// The copy `uid` may read.
    pub fn user_copy(&self, uid: u32) -> UserRecord {
        UserRecord {
            format: USER_FORMAT.into(),
            crashed: self.crashed.clone(),
            core: UserCoreSection {
                saved: self.core.saved,
                path: self.core.path.clone(),
                size: self.core.size,
                compression: self.core.compression.clone(),
                complete: self.core.complete,
                truncated_reason: self.core.truncated_reason.clone(),
                not_saved_reason: self.core.not_saved_reason.clone(),
            },
            snapshots: snapshot_entries_of(&self.fires, uid),
            core_trace: {
                let own_daemon = format!("user {uid}");
                let mut section = self.core_trace.clone();
                section
                    .failed_snapshots
                    .retain(|f| f.daemon == own_daemon || f.owner_uid == Some(uid));
                section
            },
            report: self.report.clone(),
            no_trace: crate::store::record_read::trace_absence(
                &self.fires,
                self.own_snapshots_skipped.as_deref(),
                Some(uid),
            ),
            note: "the crashing user's copy: root's record beside it (same name without .user) \
                   has the rest, for root only"
                .into(),
            live: self.live.clone(),
        }
    }

    /// Writes the record (root only) and, for `user`, the user's copy,
    /// into the core directory `dir`, within its limits: under the space
    /// lock, the oldest crashes (never another user's latest core, nor this
    /// crash's own core) make room for them; when they do not fit even so,
    /// nothing is written and the error says so. Both are marked as
    /// `owner`'s.
    pub fn write_within(
        &self,
        dir: BorrowedFd<'_>,
        policy: crate::store::space::SpacePolicy,
        owner: Option<u32>,
        user: Option<u32>,
        name: impl Fn(u32) -> String,
    ) -> std::io::Result<Written> {
        use crate::store::report_file;
        // The report goes into a file of its own beside the record, which
        // names it (`store/report_file.rs`); the user's copy names theirs.
        let report_json = self.report.report.as_ref().map(report_file::to_json);
        let mut root = self.clone();
        root.report.report = None;
        let user_copy = user.map(|uid| {
            let mut copy = self.user_copy(uid);
            copy.report.report = None;
            (uid, copy)
        });
        let copy_json = |copy: &UserRecord| {
            let mut json = serde_json::to_vec_pretty(copy).expect("the copy serializes");
            json.push(b'\n');
            json
        };
        // What the files take on disk, in whole blocks (the records with
        // room for the report file's name).
        let on_disk = |len: usize| (len as u64 + 256).div_ceil(4096) * 4096;
        let report_bytes = report_json.as_ref().map_or(0, |j| on_disk(j.len()));
        let needed = on_disk(root.to_json().len())
            + report_bytes
            + user_copy
                .as_ref()
                .map_or(0, |(_, c)| on_disk(copy_json(c).len()) + report_bytes);
        let stem = name(0);
        let stem = stem.strip_suffix(".json").unwrap_or(&stem).to_string();
        crate::store::space::with_space_lock(|| {
            let claimant = crate::store::space::Claimant {
                uid: owner,
                own_stem: Some(stem.as_bytes()),
                own_reservation: None,
            };
            let (room, deleted) =
                crate::store::space::make_room_for_record(dir, policy, needed, claimant)?;
            if room < needed {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "no room for the record ({needed} bytes) in the core directory (size \
                         limit or free-space floor){}",
                        if deleted.is_empty() {
                            String::new()
                        } else {
                            format!(" after deleting {}", deleted.join(", "))
                        }
                    ),
                ));
            }
            let mut written = Written {
                deleted,
                ..Written::default()
            };
            // The report first, named after the record's first free name;
            // the record then takes that name (or, should it be taken
            // meanwhile, the next), naming its report. A report that cannot
            // be written stays in the record.
            let mut first = 0;
            if let Some(report) = &report_json {
                match publish(dir, report, None, owner, |n| {
                    report_file::root_name(&name(n))
                }) {
                    Ok(file) => {
                        first = (0..1024)
                            .find(|&n| report_file::root_name(&name(n)) == file)
                            .unwrap_or(0);
                        root.report.file = Some(file);
                    }
                    Err(err) => {
                        written.errors.push(format!(
                            "cannot write the report's file: {err}; it stays in the record"
                        ));
                        root.report.report = self.report.report.clone();
                        // Whoever reads the record sees why it holds the
                        // report, not only root's log.
                        root.report.file_error = Some(format!(
                            "the report's file could not be written: {err} (the report is in \
                             this record)"
                        ));
                    }
                }
            }
            written.name = publish(dir, &root.to_json(), None, owner, |n| name(first + n))?;
            written.report = root.report.file.clone();
            let user_json = user_copy.map(|(uid, mut copy)| {
                if let Some(report) = report_json.as_ref().filter(|_| root.report.file.is_some()) {
                    match publish(dir, report, Some(uid), owner, |n| {
                        report_file::user_name(&written.name, n)
                    }) {
                        Ok(file) => copy.report.file = Some(file),
                        Err(err) => {
                            written.errors.push(format!(
                                "cannot write uid {uid}'s copy of the report: {err}"
                            ));
                            // The user reads their copy, not root's log.
                            copy.report.file_error = Some(format!(
                                "the user's copy of the report could not be written: {err} \
                                 (root's record has the report)"
                            ));
                        }
                    }
                } else {
                    copy.report.report = root.report.report.clone();
                }
                (uid, copy_json(&copy))
            });
            if let Some((uid, user_json)) = &user_json {
                let root_stem = written.name.strip_suffix(".json").unwrap_or(&written.name);
                let user_name = |n: u32| {
                    if n == 0 {
                        format!("{root_stem}.user.json")
                    } else {
                        format!("{root_stem}.user.{n}.json")
                    }
                };
                match publish(dir, user_json, Some(*uid), owner, user_name) {
                    Ok(name) => written.user_copy = Some(name),
                    Err(err) => written.errors.push(format!(
                        "cannot write uid {uid}'s copy of the record: {err}"
                    )),
                }
            }
            Ok(written)
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).expect("the record serializes");
        json.push(b'\n');
        json
    }
}

/// Writes `json` into a new file of `dir`, readable by `reader` when set,
/// marked as `owner`'s, named by `name`.
fn publish(
    dir: BorrowedFd<'_>,
    json: &[u8],
    reader: Option<u32>,
    owner: Option<u32>,
    name: impl Fn(u32) -> String,
) -> std::io::Result<String> {
    let mut file = NewFile::create_in(dir)?;
    file.file_mut().write_all(json)?;
    if let Some(uid) = owner {
        crate::store::space::mark_owner(file.file(), uid)?;
    }
    if let Some(uid) = reader {
        crate::base::acl::grant_read(file.file(), uid)?;
    }
    let (_, name) = file.publish(name)?;
    Ok(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lttng_coredump_engine::{ActionKind, ActionOutcome, FireError, FireReport};

    pub(crate) fn sample() -> CrashRecord {
        CrashRecord {
            format: FORMAT.into(),
            crashed: Crashed {
                crash_id: Some("0123456789abcdef0123456789abcdef".into()),
                pid: Some(42),
                uid: Some(1000),
                gid: Some(1000),
                signal: Some(Signal {
                    number: 11,
                    name: Some("SIGSEGV".into()),
                }),
                time: Some(1_700_000_000),
                time_utc: Some("2023-11-14T22:13:20Z".into()),
                hostname: Some("box".into()),
                process_name: Some("bad\nname".into()),
                exe_path: Some("/usr/bin/x".into()),
                cmdline: Some(vec!["x".into(), "--flag".into()]),
                cmdline_truncated: false,
                cgroup: Some("0::/user.slice".into()),
                process_identity: Identity::VerifiedByPidfd,
                dump_mode: Some(1),
                core_limit: None,
            },
            core: CoreSection {
                saved: true,
                path: Some("/var/lib/lttng-coredump/cores/core.x.42.1700000000".into()),
                size: 100,
                stored_bytes: 4096,
                bytes_received: 100,
                compression: "none".into(),
                complete: true,
                truncated_reason: None,
                not_saved_reason: None,
                readable_by_uid: Some(1000),
                deleted_to_make_room: vec![],
            },
            chain: None,
            snapshots: vec![],
            core_trace: CoreTraceSection::default(),
            report: ReportSection::default(),
            crash_share: ShareSection::default(),
            core_stall: None,
            fires: vec![],
            own_snapshots_skipped: None,
            stages: Stages::default(),
            config_path: "/etc/lttng-coredump/config.toml".into(),
            errors: vec![],
            log: vec![],
            live: None,
        }
    }

    #[test]
    fn json_has_every_field_and_escapes_hostile_text() {
        let json: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
        for key in [
            "format",
            "pid",
            "uid",
            "gid",
            "signal",
            "time",
            "time_utc",
            "hostname",
            "process_name",
            "exe_path",
            "cmdline",
            "cgroup",
            "process_identity",
            "dump_mode",
            "core_limit",
            "core",
            "chain",
            "snapshots",
            "core_trace",
            "report",
            "crash_share",
            "fires",
            "own_snapshots_skipped",
            "stages",
            "config_path",
            "errors",
            "log",
        ] {
            assert!(json.get(key).is_some(), "{key} missing");
        }
        assert_eq!(json["signal"]["name"], "SIGSEGV");
        assert_eq!(json["process_name"], "bad\nname");
        assert_eq!(json["process_identity"]["state"], "verified_by_pidfd");
        assert_eq!(json["core"]["complete"], true);
        let text = String::from_utf8(sample().to_json()).unwrap();
        assert!(text.contains("\"bad\\nname\""));
    }

    /// The top-level keys of a JSON object's text, in order.
    fn top_level_keys(json: &[u8]) -> Vec<String> {
        let text = String::from_utf8(json.to_vec()).unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("  \""))
            .filter_map(|l| l.split_once("\":").map(|(k, _)| k.to_string()))
            .collect()
    }

    #[test]
    fn the_shared_process_fields_keep_their_place_in_both_records() {
        let crashed = [
            "crash_id",
            "pid",
            "uid",
            "gid",
            "signal",
            "time",
            "time_utc",
            "hostname",
            "process_name",
            "exe_path",
            "cmdline",
            "cmdline_truncated",
            "cgroup",
            "process_identity",
            "dump_mode",
            "core_limit",
        ];
        let mut root = vec!["format"];
        root.extend(crashed);
        root.extend([
            "core",
            "chain",
            "snapshots",
            "core_trace",
            "report",
            "crash_share",
            "fires",
            "own_snapshots_skipped",
            "stages",
            "config_path",
            "errors",
            "log",
        ]);
        assert_eq!(top_level_keys(&sample().to_json()), root);
        let mut user = vec!["format"];
        user.extend(crashed);
        user.extend([
            "core",
            "snapshots",
            "core_trace",
            "report",
            "no_trace",
            "note",
        ]);
        let copy = serde_json::to_vec_pretty(&sample().user_copy(1000)).unwrap();
        assert_eq!(top_level_keys(&copy), user);
        let copy: serde_json::Value = serde_json::from_slice(&copy).unwrap();
        assert_eq!(copy["pid"], 42);
        assert_eq!(copy["process_identity"]["state"], "verified_by_pidfd");
        assert_eq!(copy["signal"]["name"], "SIGSEGV");
    }

    #[test]
    fn fire_reports_become_snapshot_entries_and_errors() {
        let fires = vec![
            DaemonFire {
                daemon: "root".into(),
                target: None,
                report: Some(FireReport {
                    outcomes: vec![
                        ActionOutcome {
                            trigger_name: Some("t1".into()),
                            owner_uid: Some(0),
                            session: "s1".into(),
                            action: ActionKind::Snapshot,
                            snapshot_path: Some("/tmp/snap".into()),
                            error: None,
                        },
                        ActionOutcome {
                            trigger_name: None,
                            owner_uid: None,
                            session: "s2".into(),
                            action: ActionKind::Snapshot,
                            snapshot_path: None,
                            error: Some(FireError {
                                code: 48,
                                message: "snapshot failed".into(),
                            }),
                        },
                    ],
                    errors: vec![],
                    deferred_stops: 0,
                    daemon_absent: false,
                }),
                error: None,
            },
            DaemonFire {
                daemon: "user 1000".into(),
                target: None,
                report: None,
                error: Some("no answer".into()),
            },
        ];
        let entries = snapshot_entries(&fires);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].path.as_deref(), Some("/tmp/snap"));
        assert_eq!(entries[0].action, "snapshot");
        assert_eq!(
            entries[1].error.as_deref(),
            Some("snapshot failed (LTTng error 48)")
        );
        let errors = fire_errors(&fires);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("\"s2\""));
        assert!(errors[1].contains("user 1000") && errors[1].contains("no answer"));
    }

    #[test]
    fn the_users_copy_holds_only_what_concerns_that_user() {
        use lttng_coredump_engine::{ActionKind, ActionOutcome, FireReport};
        let outcome = |session: &str, trigger: &str, owner: u32| ActionOutcome {
            trigger_name: Some(trigger.into()),
            owner_uid: Some(owner),
            session: session.into(),
            action: ActionKind::Snapshot,
            snapshot_path: Some(format!("/traces/{session}")),
            error: None,
        };
        let mut record = sample();
        record.fires = vec![
            DaemonFire {
                daemon: "root".into(),
                target: None,
                report: Some(FireReport {
                    outcomes: vec![
                        outcome("roots-session", "roots-trigger", 0),
                        outcome("others-session", "others-trigger", 1001),
                        outcome("own-in-root", "own-trigger", 1000),
                    ],
                    ..Default::default()
                }),
                error: None,
            },
            DaemonFire {
                daemon: "user 1000".into(),
                target: None,
                report: Some(FireReport {
                    outcomes: vec![outcome("own-session", "own-daemon-trigger", 1000)],
                    ..Default::default()
                }),
                error: None,
            },
        ];
        record.snapshots = snapshot_entries(&record.fires);
        record.errors = vec!["snapshot of session \"roots-session\" failed".into()];
        record.core.deleted_to_make_room = vec!["core.svc.1.1".into()];
        let failed = |daemon: &str, session: &str, owner: Option<u32>| FailedSnapshot {
            daemon: daemon.into(),
            session: Some(session.into()),
            error: "failed".into(),
            core_holds: "buffers_not_tied".into(),
            traces: vec![],
            explanation: String::new(),
            owner_uid: owner,
        };
        record.core_trace.failed_snapshots = vec![
            failed("root", "roots-failed", Some(0)),
            failed("root", "others-failed", Some(1001)),
            failed("root", "own-failed-in-root", Some(1000)),
            failed("user 1000", "own-failed", None),
        ];
        let copy = serde_json::to_string(&record.user_copy(1000)).unwrap();
        for hidden in ["roots-", "others-", "1001", "core.svc"] {
            assert!(!copy.contains(hidden), "{hidden} in {copy}");
        }
        for shown in [
            "own-in-root",
            "own-session",
            "/usr/bin/x",
            "own-failed-in-root",
            "\"own-failed\"",
        ] {
            assert!(copy.contains(shown), "{shown} not in {copy}");
        }
    }

    #[test]
    fn records_never_replace_a_planted_file() {
        let dir = std::env::temp_dir().join(format!("handler-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("r.json")).unwrap();
        let dirfd = std::fs::File::open(&dir).unwrap();
        let policy = crate::store::space::SpacePolicy {
            max_dir_size: u64::MAX,
            min_free: 0,
        };
        let written = sample()
            .write_within(
                std::os::fd::AsFd::as_fd(&dirfd),
                policy,
                Some(1000),
                Some(1000),
                |n| {
                    if n == 0 {
                        "r.json".into()
                    } else {
                        format!("r.{n}.json")
                    }
                },
            )
            .unwrap();
        assert_eq!(written.name, "r.1.json");
        assert_eq!(written.user_copy.as_deref(), Some("r.1.user.json"));
        let back: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(&written.name)).unwrap()).unwrap();
        assert_eq!(back["pid"], 42);
        // Root's record is root's; the user reads their copy.
        let root_record = std::fs::File::open(dir.join(&written.name)).unwrap();
        assert!(crate::base::acl::users_with_read(&root_record)
            .unwrap()
            .is_empty());
        let copy = std::fs::File::open(dir.join("r.1.user.json")).unwrap();
        assert_eq!(crate::base::acl::users_with_read(&copy).unwrap(), [1000]);
        assert_eq!(
            std::fs::read_link(dir.join("r.json")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
