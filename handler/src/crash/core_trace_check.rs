//! The handler's check of what trace the saved core itself holds: the
//! LTTng-UST ring buffers the crashed program mapped, found with the
//! recover crate's scanner on the descriptor of the core just written
//! (never by path), once the kernel has let the process go (so it costs
//! nothing in crash-to-reap). The record then says which traces the core
//! holds and, for each snapshot that could not be recorded, whether the
//! core holds its buffers: the buffers carry only a trace UUID, so they are
//! tied to a session only when a snapshot of that session (this crash's, or
//! an earlier crash's in the same core directory) has metadata of the same
//! UUID; otherwise the record says they are not tied, not that they are.
//!
//! The core is hostile input read as root: the scan reads at most
//! [`BUFFER_BUDGET`] bytes of buffers (past it buffers are only counted),
//! at most [`MAX_SEGMENTS`] program headers, keeps no packet bytes; the
//! search for earlier snapshots reads a bounded number of root's own
//! records, and their snapshot directories (which a user may control) are
//! searched by a child acting as the crashing user, under a deadline.

use crate::store::record::DaemonFire;
use crate::store::record::{CoreTrace, CoreTraceSection, FailedSnapshot, TiedTrace};
use crate::store::record_read::StoredRecord;
use lttng_coredump_engine::identity::{run_json, Identity};
use lttng_coredump_engine::ActionKind;
use lttng_coredump_recover::{self as recover, metadata, Limits};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes of ring buffers read per crash (a program's buffers are a few
/// MiB per CPU with LTTng's defaults).
pub const BUFFER_BUDGET: u64 = 256 << 20;
/// Program headers read: four times the kernel's default vm.max_map_count.
pub const MAX_SEGMENTS: u64 = 1 << 18;
/// Earlier crash records searched for snapshots of the failed sessions.
const RECORDS_SEARCHED: usize = 32;
/// Records larger than this are not read for that search.
const MAX_RECORD_BYTES: u64 = 4 << 20;
/// Snapshot directories searched for metadata.
const SNAPSHOTS_SEARCHED: usize = 16;
/// Traces the record, its summary and its explanations name (the largest
/// first); the others are counted. A crafted core can hold thousands of
/// buffers that look like traces, and what the record carries from one
/// crash (and `status` and the log after it) must not grow with them.
pub const LISTED_TRACES: usize = 8;
/// Notes (buffers cut, ignored, not read) the record keeps; the others are
/// counted in one more note.
pub const LISTED_NOTES: usize = 8;

/// `items` joined with `, `, the first `max` of them, and how many more.
fn first_few(items: impl Iterator<Item = String>, total: usize, max: usize) -> String {
    let mut text = items.take(max).collect::<Vec<_>>().join(", ");
    if total > max {
        text.push_str(&format!(" and {} more", total - max));
    }
    text
}

/// The first [`LISTED_NOTES`] of `notes`, and one that counts the rest.
fn bounded_notes(mut notes: Vec<String>) -> Vec<String> {
    if notes.len() > LISTED_NOTES {
        let more = notes.len() - LISTED_NOTES;
        notes.truncate(LISTED_NOTES);
        notes.push(format!("and {more} more note(s) like these, left out"));
    }
    notes
}

/// The section of a crash whose core was not checked.
pub fn not_checked(reason: impl Into<String>) -> CoreTraceSection {
    let reason = reason.into();
    CoreTraceSection {
        summary: format!("not checked: {reason}"),
        not_checked_reason: Some(reason),
        ..CoreTraceSection::default()
    }
}

/// A snapshot that failed, before the check says what the core holds of it.
struct Failure {
    daemon: String,
    session: Option<String>,
    error: String,
    owner_uid: Option<u32>,
}

/// The snapshots of `fires` that could not be recorded: a session's whose
/// action failed, a daemon's that failed as a whole (not one that simply
/// is not there: a user without a session daemon).
fn failures(fires: &[DaemonFire]) -> Vec<Failure> {
    let mut out = Vec::new();
    for fire in fires {
        if let Some(error) = &fire.error {
            out.push(Failure {
                daemon: fire.daemon.clone(),
                session: None,
                error: error.clone(),
                owner_uid: None,
            });
        }
        let Some(report) = &fire.report else { continue };
        if report.daemon_absent {
            continue;
        }
        for error in &report.errors {
            out.push(Failure {
                daemon: fire.daemon.clone(),
                session: None,
                error: error.to_string(),
                owner_uid: None,
            });
        }
        for outcome in &report.outcomes {
            if outcome.action != ActionKind::Snapshot {
                continue;
            }
            if let Some(error) = &outcome.error {
                out.push(Failure {
                    daemon: fire.daemon.clone(),
                    session: Some(outcome.session.clone()),
                    error: error.to_string(),
                    owner_uid: outcome.owner_uid,
                });
            }
        }
    }
    out
}

/// Whether some snapshot of the crash was recorded.
fn any_snapshot_recorded(fires: &[DaemonFire]) -> bool {
    fires.iter().any(|fire| {
        fire.report.as_ref().is_some_and(|r| {
            r.outcomes.iter().any(|o| {
                o.action == ActionKind::Snapshot && o.error.is_none() && o.snapshot_path.is_some()
            })
        })
    })
}

/// A snapshot known to the handler: of `session` in `daemon`, at `path`.
struct KnownSnapshot {
    daemon: String,
    session: String,
    path: PathBuf,
}

/// The snapshots this crash recorded and those the newest records of
/// `core_dir` name, of the daemons in `daemons` (newest first).
fn known_snapshots(
    fires: &[DaemonFire],
    core_dir: Option<&Path>,
    daemons: Option<&[String]>,
) -> Vec<KnownSnapshot> {
    let of_daemon = |daemon: &String| daemons.is_none_or(|d| d.contains(daemon));
    let mut known = Vec::new();
    for fire in fires.iter().filter(|f| of_daemon(&f.daemon)) {
        let Some(report) = &fire.report else { continue };
        for o in &report.outcomes {
            if let (Some(path), None) = (&o.snapshot_path, &o.error) {
                known.push(KnownSnapshot {
                    daemon: fire.daemon.clone(),
                    session: o.session.clone(),
                    path: PathBuf::from(path),
                });
            }
        }
    }
    let Some(dir) = core_dir else { return known };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return known;
    };
    // Root's records only (a user's copy says no more), newest first.
    let mut records: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("core.")
                && name.ends_with(".json")
                && !name.contains(".user.")
                && !crate::store::report_file::is_report_name(&name)
        })
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            if !meta.is_file() || meta.len() > MAX_RECORD_BYTES {
                return None;
            }
            Some((meta.modified().ok()?, e.path()))
        })
        .collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (_, path) in records.into_iter().take(RECORDS_SEARCHED) {
        // Opened without following a link nor blocking, within its bound.
        let Ok(Some(record)) = StoredRecord::read(&path) else {
            continue;
        };
        for entry in record.snapshots() {
            let Some(path) = &entry.path else { continue };
            if entry.error.is_none() && of_daemon(&entry.daemon) {
                known.push(KnownSnapshot {
                    daemon: entry.daemon.clone(),
                    session: entry.session.clone(),
                    path: PathBuf::from(path),
                });
            }
        }
    }
    known
}

/// The snapshot directories this crash recorded and those the newest
/// records of `core_dir` name, newest first, each followed by its parent
/// (a session's other snapshots are there): where the metadata of a trace
/// recovered from the core is searched (as `trace --from-core` does), by a
/// child acting as the user. Paths only: root opens none of them.
pub fn snapshot_dirs(fires: &[DaemonFire], core_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for snapshot in known_snapshots(fires, core_dir, None) {
        let parent = snapshot.path.parent().map(Path::to_path_buf);
        for candidate in [Some(snapshot.path), parent].into_iter().flatten() {
            if out.len() < 2 * SNAPSHOTS_SEARCHED && !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// For each trace UUID: the index of a known snapshot holding its metadata,
/// and the metadata file.
type MetadataByUuid = HashMap<[u8; 16], Vec<(usize, PathBuf)>>;

/// How long the search of snapshot directories for metadata may take.
const SEARCH_DEADLINE: Duration = Duration::from_secs(2);

/// For each UUID, the known snapshots whose metadata has it. The snapshot
/// directories are wherever their sessions write, often a user's home: they
/// are searched by a child acting as the crashing user (`uid`), never by
/// root, and killed at [`SEARCH_DEADLINE`] (a FUSE mount that never
/// answers costs the tie, nothing else).
fn uuids_of(known: &[KnownSnapshot], uid: Option<u32>) -> Result<MetadataByUuid, String> {
    let mut searched: Vec<(usize, PathBuf)> = Vec::new();
    for (index, snapshot) in known.iter().enumerate() {
        if searched.iter().any(|(_, p)| *p == snapshot.path) {
            continue;
        }
        if searched.len() == SNAPSHOTS_SEARCHED {
            break;
        }
        searched.push((index, snapshot.path.clone()));
    }
    if searched.is_empty() {
        return Ok(HashMap::new());
    }
    let Some(uid) = uid else {
        return Err("the crashing uid is unknown: snapshots not searched for metadata".into());
    };
    let identity = match uid {
        0 => None,
        uid => Some(
            Identity::of_user(uid)
                .map_err(|e| format!("cannot act as uid {uid} to search snapshots: {e}"))?,
        ),
    };
    let found: Vec<(String, usize, PathBuf)> =
        run_json(SEARCH_DEADLINE, identity.as_ref(), move || {
            let mut out = Vec::new();
            for (index, path) in &searched {
                let mut found = HashMap::new();
                metadata::scan_tree(path, "", &mut found);
                for (uuid, f) in found {
                    out.push((metadata::format_uuid(&uuid), *index, f.path));
                }
            }
            out
        })
        .map_err(|e| {
            if e.code() == lttng_ctl::ErrorCode::Cancelled {
                format!(
                    "searching the snapshots for metadata as uid {uid} did not end within {} ms \
                     (a snapshot directory that does not answer?): the search was stopped",
                    SEARCH_DEADLINE.as_millis()
                )
            } else {
                format!("searching the snapshots for metadata as uid {uid}: {e}")
            }
        })?;
    let mut out = MetadataByUuid::new();
    for (uuid, index, path) in found {
        // The child's answer is checked like any input.
        if let (Some(uuid), true) = (metadata::parse_uuid(&uuid), index < known.len()) {
            out.entry(uuid).or_default().push((index, path));
        }
    }
    Ok(out)
}

/// Scans the saved core (`file`, the handler's descriptor of it) and says
/// what trace it holds, for the record; `fires` are this crash's, and
/// `core_dir` holds the earlier records searched for snapshots of the
/// sessions whose snapshot failed.
pub fn check(
    file: &File,
    fires: &[DaemonFire],
    core_dir: Option<&Path>,
    uid: Option<u32>,
) -> CoreTraceSection {
    let core = match file.try_clone().and_then(recover::reader::core_of_file) {
        Ok(core) => core,
        Err(err) => return not_checked(format!("cannot read the saved core: {err}")),
    };
    let mut core = core;
    let limits = Limits::summary(BUFFER_BUDGET, MAX_SEGMENTS);
    let scan = match recover::scan_within(core.as_mut(), &limits) {
        Ok(scan) => scan,
        Err(err) => return not_checked(err.to_string()),
    };
    let mut section = CoreTraceSection {
        checked: true,
        buffers: scan.streams.len() + scan.unread.len(),
        empty_buffers: scan.streams.iter().filter(|s| s.packets.is_empty()).count(),
        unread_buffers: scan.unread.len(),
        ..CoreTraceSection::default()
    };
    let mut traces: BTreeMap<[u8; 16], CoreTrace> = BTreeMap::new();
    for s in &scan.streams {
        let Some(uuid) = s.uuid() else { continue };
        let trace = traces.entry(uuid).or_insert_with(|| CoreTrace {
            uuid: metadata::format_uuid(&uuid),
            streams: 0,
            packets: 0,
            partial_packets: 0,
            bytes: 0,
        });
        let own: Vec<_> = s.packets.iter().filter(|p| p.uuid == uuid).collect();
        trace.streams += 1;
        trace.packets += own.len();
        trace.partial_packets += own.iter().filter(|p| p.partial).count();
        trace.bytes += s.bytes;
    }
    section
        .notes
        .extend(scan.cut.iter().map(|c| format!("cut: {c}")));
    section
        .notes
        .extend(scan.rejected.iter().map(|r| format!("ignored: {r}")));
    section
        .notes
        .extend(scan.unread.iter().map(|u| format!("not read: {u}")));
    section.notes = bounded_notes(std::mem::take(&mut section.notes));
    section.traces_total = traces.len();
    // The traces named: the largest first.
    let mut listed: Vec<&CoreTrace> = traces.values().collect();
    listed.sort_by(|a, b| {
        (b.packets, b.bytes)
            .cmp(&(a.packets, a.bytes))
            .then_with(|| a.uuid.cmp(&b.uuid))
    });
    listed.truncate(LISTED_TRACES);
    let listed: Vec<CoreTrace> = listed.into_iter().cloned().collect();
    let failed = failures(fires);
    section.only_in_core =
        !traces.is_empty() && (!failed.is_empty() || !any_snapshot_recorded(fires));
    section.summary = summary(&section, &listed, &scan);
    // Ties: only worth a search when some snapshot failed and the core
    // holds packets.
    let mut daemons: Vec<String> = failed.iter().map(|f| f.daemon.clone()).collect();
    daemons.sort();
    daemons.dedup();
    let known = if failed.is_empty() || traces.is_empty() {
        Vec::new()
    } else {
        known_snapshots(fires, core_dir, Some(&daemons))
    };
    let by_uuid = match uuids_of(&known, uid) {
        Ok(by_uuid) => by_uuid,
        Err(err) => {
            section.notes.push(err);
            HashMap::new()
        }
    };
    for failure in failed {
        let mut tied: Vec<TiedTrace> = traces
            .keys()
            .filter_map(|uuid| {
                let (index, metadata) = by_uuid.get(uuid)?.iter().find(|(i, _)| {
                    let k = &known[*i];
                    k.daemon == failure.daemon
                        && failure.session.as_ref().is_none_or(|s| *s == k.session)
                })?;
                Some(TiedTrace {
                    uuid: metadata::format_uuid(uuid),
                    session: known[*index].session.clone(),
                    metadata: metadata.display().to_string(),
                })
            })
            .collect();
        let tied_total = tied.len();
        tied.truncate(LISTED_TRACES);
        let what = match &failure.session {
            Some(session) => format!("session {session:?}"),
            None => format!("the {} session daemon", failure.daemon),
        };
        let (core_holds, explanation) =
            if !tied.is_empty() {
                (
                    "its_buffers",
                    format!(
                    "the core holds buffers of {what}: trace {} (the UUID of the metadata of a \
                     snapshot of {}); recover them with lttng-coredump recover",
                    first_few(tied.iter().map(|t| t.uuid.clone()), tied_total, LISTED_TRACES),
                    if failure.session.is_some() {
                        "it".to_string()
                    } else {
                        format!(
                            "session(s) {}",
                            tied.iter()
                                .map(|t| format!("{:?}", t.session))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
                )
            } else if !traces.is_empty() {
                (
                    "buffers_not_tied",
                    format!(
                        "the core holds buffers of {} trace(s) ({}), none known to be of {what}: \
                     buffers carry only a trace UUID, and no snapshot of it with one of these \
                     UUIDs is known; recover them with lttng-coredump recover to see",
                        traces.len(),
                        first_few(
                            listed.iter().map(|t| t.uuid.clone()),
                            traces.len(),
                            LISTED_TRACES
                        )
                    ),
                )
            } else if section.unread_buffers > 0 {
                (
                    "unknown",
                    format!(
                        "{} buffer(s) of the core were past the check's {} MiB budget and not read",
                        section.unread_buffers,
                        BUFFER_BUDGET >> 20
                    ),
                )
            } else {
                (
                    "no_buffers",
                    format!(
                        "the core holds no LTTng-UST buffer with data, so not {what}'s: {}",
                        section.summary
                    ),
                )
            };
        section.failed_snapshots.push(FailedSnapshot {
            daemon: failure.daemon,
            session: failure.session,
            error: failure.error,
            core_holds: core_holds.into(),
            traces: tied,
            explanation,
            owner_uid: failure.owner_uid,
        });
    }
    section.traces = listed;
    section
}

/// What the core holds, in one sentence (naming the `listed` traces, and
/// counting the others).
fn summary(section: &CoreTraceSection, listed: &[CoreTrace], scan: &recover::Scan) -> String {
    if listed.is_empty() {
        let mut text = if section.unread_buffers > 0 {
            format!(
                "{} LTTng-UST buffer(s), none read (past the check's {} MiB budget)",
                section.unread_buffers,
                BUFFER_BUDGET >> 20
            )
        } else {
            recover::explain_no_buffers(scan)
                .trim_end()
                .replace('\n', "; ")
        };
        if section.unread_buffers > 0 && !scan.streams.is_empty() {
            text.push_str(&format!(
                "; {} more buffer(s) read, all empty",
                scan.streams.len()
            ));
        }
        return text;
    }
    let mut text = format!(
        "the core holds {} LTTng-UST buffer(s) with data: {}",
        section.buffers - section.empty_buffers - section.unread_buffers,
        first_few(
            listed.iter().map(|t| format!(
                "trace {} ({} stream(s), {} packet(s), {})",
                t.uuid,
                t.streams,
                t.packets,
                crate::base::human::size(t.bytes)
            )),
            section.traces_total,
            LISTED_TRACES
        )
    );
    if section.traces_total > LISTED_TRACES {
        text.push_str(" trace(s)");
    }
    if section.unread_buffers > 0 {
        text.push_str(&format!(
            "; {} more not read (past the check's {} MiB budget)",
            section.unread_buffers,
            BUFFER_BUDGET >> 20
        ));
    }
    text
}
