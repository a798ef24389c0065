//! Reading crash records back, through the very types that write them
//! (`record`): root's record and the crashing user's copy, whichever the
//! file is (by its `format`), lenient on what older records lack (every
//! section defaults), strict on what they hold (a field of the wrong type
//! is an error, never a silent blank). The tools, `status`, `recover`, the
//! core trace check and the demo read records only through this module,
//! and say why a crash has no trace from what the record holds
//! ([`trace_absence`]).

use crate::store::record::{
    ChainOutcome, CoreTraceSection, CrashRecord, Crashed, DaemonFire, LiveSection, ReportSection,
    SnapshotEntry, UserRecord, FORMAT, USER_FORMAT,
};
use lttng_coredump_engine::ActionKind;
use lttng_ctl::ErrorCode;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

/// Records are small (the handler's log included); anything larger is not one.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// A record as read back: root's, or the crashing user's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum StoredRecord {
    Root(Box<CrashRecord>),
    User(Box<UserRecord>),
}

/// Only the format, to know which type the rest is.
#[derive(Deserialize)]
struct FormatOnly {
    #[serde(default)]
    format: Option<String>,
}

/// What the core section of either record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreView<'a> {
    pub saved: bool,
    pub path: Option<&'a str>,
    pub size: u64,
    /// Bytes on disk (root's record only).
    pub stored_bytes: Option<u64>,
    pub compression: &'a str,
    pub complete: bool,
    pub truncated_reason: Option<&'a str>,
    pub not_saved_reason: Option<&'a str>,
    /// Who besides root may read it (root's record only).
    pub readable_by_uid: Option<u32>,
}

impl StoredRecord {
    /// Parses a record's JSON text.
    pub fn parse(bytes: &[u8]) -> Result<StoredRecord, String> {
        let format = serde_json::from_slice::<FormatOnly>(bytes)
            .map_err(|err| format!("not a crash record: {err}"))?
            .format;
        match format.as_deref() {
            // The first records had no format: root's, as now (and said so
            // when it is written out again).
            None | Some(FORMAT) => serde_json::from_slice::<CrashRecord>(bytes)
                .map(|mut record| {
                    record.format = FORMAT.into();
                    StoredRecord::Root(Box::new(record))
                })
                .map_err(|err| format!("not a crash record ({FORMAT}): {err}")),
            Some(USER_FORMAT) => serde_json::from_slice::<UserRecord>(bytes)
                .map(|record| StoredRecord::User(Box::new(record)))
                .map_err(|err| format!("not a crash record ({USER_FORMAT}): {err}")),
            Some(other) => Err(format!(
                "a record of format {:?}, which this version does not read (it reads {FORMAT} \
                 and {USER_FORMAT})",
                crate::base::sanitize::for_log(other.as_bytes())
            )),
        }
    }

    /// Reads the record at `path` with the caller's rights: `None` when the
    /// caller may not read it or it is gone (not theirs to see). Opened
    /// first with `O_PATH` and without following a link (which opens
    /// nothing: no device's open routine runs, no FIFO blocks, whoever
    /// planted it beside a core), checked a regular file on that
    /// descriptor, then reopened through it (the same file, whatever is
    /// renamed meanwhile) and read within its bound.
    pub fn read(path: &Path) -> Result<Option<StoredRecord>, String> {
        match read_regular_file(path, MAX_RECORD_BYTES, "the record")? {
            Some(text) => Self::parse(&text).map(Some),
            None => Ok(None),
        }
    }

    pub fn is_user_copy(&self) -> bool {
        matches!(self, StoredRecord::User(_))
    }

    pub fn crashed(&self) -> &Crashed {
        match self {
            StoredRecord::Root(record) => &record.crashed,
            StoredRecord::User(record) => &record.crashed,
        }
    }

    pub fn core(&self) -> CoreView<'_> {
        match self {
            StoredRecord::Root(record) => {
                let core = &record.core;
                CoreView {
                    saved: core.saved,
                    path: core.path.as_deref(),
                    size: core.size,
                    stored_bytes: Some(core.stored_bytes),
                    compression: &core.compression,
                    complete: core.complete,
                    truncated_reason: core.truncated_reason.as_deref(),
                    not_saved_reason: core.not_saved_reason.as_deref(),
                    readable_by_uid: core.readable_by_uid,
                }
            }
            StoredRecord::User(record) => {
                let core = &record.core;
                CoreView {
                    saved: core.saved,
                    path: core.path.as_deref(),
                    size: core.size,
                    stored_bytes: None,
                    compression: &core.compression,
                    complete: core.complete,
                    truncated_reason: core.truncated_reason.as_deref(),
                    not_saved_reason: core.not_saved_reason.as_deref(),
                    readable_by_uid: None,
                }
            }
        }
    }

    /// The snapshots taken or tried (the user's copy: the user's own).
    pub fn snapshots(&self) -> &[SnapshotEntry] {
        match self {
            StoredRecord::Root(record) => &record.snapshots,
            StoredRecord::User(record) => &record.snapshots,
        }
    }

    pub fn core_trace(&self) -> &CoreTraceSection {
        match self {
            StoredRecord::Root(record) => &record.core_trace,
            StoredRecord::User(record) => &record.core_trace,
        }
    }

    /// How a live core was taken (`gcore`); `None` for a crash.
    pub fn live(&self) -> Option<&LiveSection> {
        match self {
            StoredRecord::Root(record) => record.live.as_ref(),
            StoredRecord::User(record) => record.live.as_ref(),
        }
    }

    /// The crash's report and signature, or why there is none.
    pub fn report(&self) -> &ReportSection {
        match self {
            StoredRecord::Root(record) => &record.report,
            StoredRecord::User(record) => &record.report,
        }
    }

    pub fn report_mut(&mut self) -> &mut ReportSection {
        match self {
            StoredRecord::Root(record) => &mut record.report,
            StoredRecord::User(record) => &mut record.report,
        }
    }

    /// The chained handler (root's record only).
    pub fn chain(&self) -> Option<&ChainOutcome> {
        match self {
            StoredRecord::Root(record) => record.chain.as_ref(),
            StoredRecord::User(_) => None,
        }
    }

    /// Every problem the handler met (root's record only).
    pub fn errors(&self) -> &[String] {
        match self {
            StoredRecord::Root(record) => &record.errors,
            StoredRecord::User(_) => &[],
        }
    }

    /// The record's fires (root's record only).
    pub fn fires(&self) -> &[DaemonFire] {
        match self {
            StoredRecord::Root(record) => &record.fires,
            StoredRecord::User(_) => &[],
        }
    }

    /// Why no snapshot of the crash was taken: empty when one was.
    pub fn trace_absence(&self) -> Vec<String> {
        match self {
            StoredRecord::Root(record) => {
                if record.snapshots.iter().any(taken) {
                    return Vec::new();
                }
                if record.fires.is_empty() {
                    // Records before the absent fires were kept left them
                    // out: no fire at all was a daemon that did not run.
                    return vec![
                        "no session daemon was running (this record, of an older version, does \
                         not keep the fires of daemons that were not running)"
                            .into(),
                    ];
                }
                trace_absence(&record.fires, record.own_snapshots_skipped.as_deref(), None)
            }
            StoredRecord::User(record) => {
                if record.snapshots.iter().any(taken) {
                    Vec::new()
                } else {
                    record.no_trace.clone()
                }
            }
        }
    }

    /// The record as JSON, as the tools print it.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a record serializes")
    }
}

/// Whether a snapshot entry is a snapshot that was taken.
fn taken(entry: &SnapshotEntry) -> bool {
    entry.error.is_none() && entry.path.is_some()
}

/// Why no snapshot was taken for a crash, from its fires (the snapshots'
/// fire in each daemon, then any stops'): one sentence a cause, empty when
/// a snapshot was taken. `only_uid`: what concerns that user (their own
/// daemon, their own triggers, and the root daemon's general state).
pub fn trace_absence(
    fires: &[DaemonFire],
    own_snapshots_skipped: Option<&str>,
    only_uid: Option<u32>,
) -> Vec<String> {
    let concerns = |daemon: &str, owner: Option<u32>| match only_uid {
        None => true,
        Some(uid) => daemon == format!("user {uid}") || owner == Some(uid),
    };
    let snapshot_outcomes = |fire: &DaemonFire| {
        fire.report
            .iter()
            .flat_map(|r| &r.outcomes)
            .filter(|o| o.action == ActionKind::Snapshot)
            .filter(|o| concerns(&fire.daemon, o.owner_uid))
            .cloned()
            .collect::<Vec<_>>()
    };
    if fires.iter().any(|fire| {
        snapshot_outcomes(fire)
            .iter()
            .any(|o| o.error.is_none() && o.snapshot_path.is_some())
    }) {
        return Vec::new();
    }
    let mut reasons = Vec::new();
    let mut seen = Vec::new();
    for fire in fires {
        // The first fire of a daemon is its snapshots'; the stops' come after.
        if seen.contains(&fire.daemon) {
            continue;
        }
        seen.push(fire.daemon.clone());
        if only_uid.is_some() && fire.daemon != "root" && !concerns(&fire.daemon, None) {
            continue;
        }
        let daemon = if fire.daemon == "root" {
            "the root session daemon".to_string()
        } else {
            format!(
                "the session daemon of {}",
                fire.daemon.replace("user ", "uid ")
            )
        };
        if let Some(error) = &fire.error {
            reasons.push(format!("{daemon} was not asked: {error}"));
            continue;
        }
        let Some(report) = &fire.report else { continue };
        if report.daemon_absent {
            reasons.push(if fire.daemon == "root" {
                "no root session daemon was running (start one: lttng-sessiond --daemonize, or \
                 its service)"
                    .into()
            } else {
                format!(
                    "{} was running no session daemon of its own",
                    fire.daemon.replace("user ", "uid ")
                )
            });
            continue;
        }
        for error in &report.errors {
            let code = u32::try_from(error.code)
                .map(ErrorCode::from_raw)
                .unwrap_or(ErrorCode::Unknown);
            reasons.push(match code {
                ErrorCode::Cancelled => format!("{daemon} did not answer in time: {error}"),
                ErrorCode::NoSessionDaemon => format!(
                    "{daemon} did not answer (its socket is there, nothing listens: it died): \
                     {error}"
                ),
                _ => format!("{daemon} failed: {error}"),
            });
        }
        let outcomes = snapshot_outcomes(fire);
        for outcome in &outcomes {
            if let Some(error) = &outcome.error {
                let code = u32::try_from(error.code)
                    .map(ErrorCode::from_raw)
                    .unwrap_or(ErrorCode::Unknown);
                reasons.push(format!(
                    "the snapshot of session {:?} in {daemon} {}: {error}",
                    outcome.session,
                    if code == ErrorCode::Cancelled {
                        "did not finish in time"
                    } else {
                        "failed"
                    }
                ));
            }
        }
        let skipped_here = fire.daemon == "root" && own_snapshots_skipped.is_some();
        if report.errors.is_empty() && outcomes.is_empty() && !skipped_here {
            reasons.push(match only_uid {
                Some(uid) if fire.daemon == "root" => format!(
                    "in the root session daemon, no trigger of uid {uid} and no session the \
                     handler snapshots"
                ),
                _ => format!(
                    "{daemon} had no OnAnyCoreDump trigger and no active snapshot-mode session \
                     to snapshot"
                ),
            });
        }
    }
    if let Some(skipped) = own_snapshots_skipped {
        reasons.push(format!(
            "the snapshot budget was spent, so the handler took no snapshot of its own: {skipped}"
        ));
    }
    if reasons.is_empty() {
        reasons.push("no session daemon was asked".into());
    }
    reasons
}

/// The bytes of the regular file `path` (at most `max`), read with the
/// caller's rights without following a link; `None` when the caller may
/// not read it or it is gone. `what` names it in errors.
pub fn read_regular_file(path: &Path, max: u64, what: &str) -> Result<Option<Vec<u8>>, String> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;
    use std::os::fd::AsRawFd;
    let handle = match rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(handle) => handle,
        Err(Errno::ACCESS | Errno::NOENT) => return Ok(None),
        Err(err) => return Err(format!("cannot open {what}: {err}")),
    };
    let stat = rustix::fs::fstat(&handle).map_err(|err| format!("cannot stat {what}: {err}"))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err("not a regular file".into());
    }
    let file = match rustix::fs::open(
        format!("/proc/self/fd/{}", handle.as_raw_fd()),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(file) => std::fs::File::from(file),
        Err(Errno::ACCESS) => return Ok(None),
        Err(err) => return Err(format!("cannot open {what}: {err}")),
    };
    let reopened = rustix::fs::fstat(&file).map_err(|err| format!("cannot stat {what}: {err}"))?;
    if (reopened.st_dev, reopened.st_ino) != (stat.st_dev, stat.st_ino) {
        return Err(format!("{what} changed while it was opened"));
    }
    let mut text = Vec::new();
    file.take(max)
        .read_to_end(&mut text)
        .map_err(|err| format!("cannot read {what}: {err}"))?;
    Ok(Some(text))
}

#[cfg(test)]
pub(crate) mod tests;
