//! A live core (`lttng-coredump gcore`): the core of a running process,
//! taken with the caller's rights by `lttng-coredump-livecore` (the threads
//! stopped for milliseconds, the LTTng snapshots taken during the stop),
//! with the options the configuration gives crashes (the snapshot plan,
//! zstd), written either to a file of the caller's or, for root, into the
//! crash store with a crash-like record marked live (`record::LiveSection`),
//! so that `list`, `info`, `debug`, `dump` and `trace` work over it as over
//! a crash.
//!
//! Into the store, the core goes the crash path's way: a pipe from the
//! dumper into the same core writer (`corefile`: unnamed until complete,
//! sparse, within `max_core_size`, the directory's size limit and its
//! free-space floor, zstd as configured), the process read from `/proc`
//! through a pidfd (`procinfo`), its user let read it only when the process
//! was theirs in every respect (`access`), the record written beside it
//! under the space lock. Pre-copy (the default) stages the memory in an
//! unnamed file of the store (`O_TMPFILE`), within what the store's limits
//! leave beside the core, that room reserved in the store's ledger while
//! the dump runs (`staging_in_store`); where it does not fit, the dump is
//! copy-on-write and its record says why. Nothing here runs as root for
//! anyone else: the dump is the caller's (root, or the process's owner
//! where the kernel would let them trace it), never the core_pattern
//! handler's.

use crate::base::config::{self, Compression, Config};
use crate::base::safefile::NewFile;
use crate::base::sanitize::{file_name_component, lossy, MAX_COMPONENT_LEN};
use crate::base::syslog::{iso8601_utc, Log};
use crate::crash::context::CrashContext;
use crate::crash::corefile::{CoreSettings, CoreWriter};
use crate::crash::procinfo::{self, Gathered};
use crate::store::coredir::{self, CoreDir};
use crate::store::record::{
    self, CoreSection, CrashRecord, Crashed, DaemonFire, Identity, LiveRegion, LiveSection,
    LiveThread,
};
use crate::store::space::{self, Reservation, SpacePolicy};
use lttng_coredump_livecore::{self as livecore, LiveError, LiveReport, Method, Output};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use lttng_coredump_livecore::ErrorKind;

/// Where the core goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A new file, created by the caller (never replacing one).
    File(PathBuf),
    /// The crash store (root only), with a record.
    Store,
}

/// What to do.
#[derive(Debug, Clone)]
pub struct Request {
    pub pid: i32,
    pub destination: Destination,
    /// `None`: pre-copy where it can be used (`Method::DEFAULT`).
    pub method: Option<Method>,
    /// Compress with zstd (at the configuration's level); `None`: as the
    /// configuration's `compression` says.
    pub compress: Option<bool>,
    /// Take the LTTng snapshots during the stop.
    pub snapshots: bool,
    /// The LTTng event that asked for it (`serve`'s `[live]` triggers).
    pub event: Option<record::LiveEvent>,
    /// A pidfd of the process `pid` names, through which the caller checked
    /// it (`serve`'s `[live]`): the dump is of that process or of none, even
    /// if it exits and its pid is reused meanwhile. `None`: the dumper
    /// opens its own first thing (`lttng-coredump-livecore`).
    pub pidfd: Option<Arc<OwnedFd>>,
}

/// A live core taken.
#[derive(Debug)]
pub struct Taken {
    pub report: LiveReport,
    /// The core's path.
    pub core: PathBuf,
    /// The record's path (into the store).
    pub record: Option<PathBuf>,
    /// The core holds only part of the process (a limit of the store).
    pub truncated: Option<String>,
    pub compressed: bool,
}

/// Why no live core was taken: the dumper's kind of error (the exit
/// status depends on it), and what to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub kind: ErrorKind,
    pub message: String,
}

impl From<LiveError> for Failed {
    fn from(e: LiveError) -> Failed {
        Failed {
            kind: e.kind,
            message: e.message,
        }
    }
}

fn failed(kind: ErrorKind, message: impl Into<String>) -> Failed {
    Failed {
        kind,
        message: message.into(),
    }
}

/// The snapshot plan a crash would get from `config` (the crash path's
/// `record_snapshots`): the same deadline, sessions, fallback and user
/// daemon.
pub fn snapshot_plan(config: &Config) -> livecore::SnapshotPlan {
    livecore::SnapshotPlan {
        deadline: config.snapshot_deadline,
        extra_sessions: config.snapshot_sessions.clone(),
        fallback_to_active_snapshot_sessions: config.snapshot_active_sessions,
        user_daemon: config.snapshot_user_daemon,
    }
}

/// The dumper's options for `request` under `config`.
pub fn options(request: &Request, config: &Config) -> livecore::Options {
    let compress = request
        .compress
        .unwrap_or(config.compression == Compression::Zstd);
    livecore::Options {
        method: request.method,
        zstd_level: compress.then_some(config.zstd_level),
        snapshots: request.snapshots.then(|| snapshot_plan(config)),
        ..livecore::Options::default()
    }
}

/// Takes the live core `request` asks for; logs what it did (and why not).
pub fn take(
    request: &Request,
    config: &Config,
    config_path: &Path,
    log: &mut Log,
) -> Result<Taken, Failed> {
    take_with_hook(request, config, config_path, log, None)
}

/// [`take`], `stage_hook` called in the dumping child at each stage
/// (tests hold the dump at one, see `livecore::StageHook`).
pub fn take_with_hook(
    request: &Request,
    config: &Config,
    config_path: &Path,
    log: &mut Log,
    stage_hook: Option<livecore::StageHook>,
) -> Result<Taken, Failed> {
    let result = match &request.destination {
        Destination::File(path) => to_file(request, config, path, stage_hook),
        Destination::Store => to_store(request, config, config_path, log, stage_hook),
    };
    match &result {
        Ok(taken) => {
            let report = &taken.report;
            log.notice(format!(
                "live core of process {} ({}) saved to {}: {}, threads stopped {:.2} ms{}",
                report.pid,
                crate::base::sanitize::for_log(report.exec_name.as_bytes()),
                taken.core.display(),
                report.method.name(),
                report.pause_us as f64 / 1000.0,
                taken
                    .record
                    .as_ref()
                    .map(|r| format!(", record {}", r.display()))
                    .unwrap_or_default()
            ));
            for warning in &report.warnings {
                log.warning(warning.clone());
            }
            if let Some(why) = &report.fallback {
                log.notice(format!("not the default method: {why}"));
            }
            if let Some(why) = &taken.truncated {
                log.warning(format!("the live core is truncated: {why}"));
            }
        }
        Err(e) => log.error(format!(
            "no live core of process {}: {}",
            request.pid, e.message
        )),
    }
    result
}

fn to_file(
    request: &Request,
    config: &Config,
    path: &Path,
    stage_hook: Option<livecore::StageHook>,
) -> Result<Taken, Failed> {
    let options = livecore::Options {
        stage_hook,
        ..options(request, config)
    };
    let compressed = options.zstd_level.is_some();
    let report = dump(request, Output::Path(path.to_path_buf()), &options)?;
    Ok(Taken {
        report,
        core: path.to_path_buf(),
        record: None,
        truncated: None,
        compressed,
    })
}

/// The live core of the process `request` names: through its pidfd when
/// it has one (the dump is of that process or of none), else by its pid
/// (the dumper then holds the process by a pidfd of its own).
fn dump(
    request: &Request,
    output: Output,
    options: &livecore::Options,
) -> Result<LiveReport, LiveError> {
    match &request.pidfd {
        Some(pidfd) => {
            let pidfd = pidfd.try_clone().map_err(|e| {
                LiveError::new(ErrorKind::Internal, format!("duplicating the pidfd: {e}"))
            })?;
            livecore::dump_pidfd(pidfd, request.pid, output, options)
        }
        None => livecore::dump(request.pid, output, options),
    }
}

/// The process's `/proc` details, read through a pidfd (the request's, or
/// one opened here; checked to still name it afterwards), before it is
/// dumped.
fn gather(request: &Request) -> Gathered {
    let pid = request.pid;
    let opened = match &request.pidfd {
        Some(_) => None,
        None => rustix::process::Pid::from_raw(pid).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        }),
    };
    let pidfd = request.pidfd.as_deref().or(opened.as_ref());
    procinfo::gather(Path::new("/proc"), pid, pidfd.map(|fd| fd.as_raw_fd()))
}

/// Whether the process is dumpable: its `/proc` files are then its user's,
/// else root's (the kernel's `%d`, 1 or 2, for `access`).
fn dump_mode(pid: i32, uid: u32) -> Option<u32> {
    let owner = std::fs::metadata(format!("/proc/{pid}/stat")).ok()?.uid();
    Some(if owner == uid { 1 } else { 2 })
}

/// Into the crash store: the core through the crash path's writer, then
/// its record.
fn to_store(
    request: &Request,
    config: &Config,
    config_path: &Path,
    log: &mut Log,
    stage_hook: Option<livecore::StageHook>,
) -> Result<Taken, Failed> {
    if !rustix::process::geteuid().is_root() {
        return Err(failed(
            ErrorKind::PermissionDenied,
            "only root writes into the crash store: give a file with -o",
        ));
    }
    let dir = open_store(config, log)?;
    // Named as a crash is, from the start: the record, the journal entry
    // and the fleet's copies carry the same ID.
    let crash_id = crate::crash::pipeline::new_crash_id(log);
    let gathered = gather(request);
    let mut options = livecore::Options {
        stage_hook,
        ..options(request, config)
    };
    // The writer compresses (the process is not waiting for it).
    let zstd_level = options.zstd_level.take();
    let uid = gathered.info.uids.map(|ids| ids[0]);
    let space = SpacePolicy {
        max_dir_size: config.max_dir_size,
        min_free: config.min_free,
    };
    // Pre-copy's staging file in the store, its room reserved there (held
    // until this function returns, released if it fails).
    let (staging, reservation) = staging_in_store(&dir, space, request.pid, log);
    if staging.is_none() {
        // Never a staging file outside the store, uncounted.
        if options.method == Some(Method::PreCopy) {
            return Err(failed(
                ErrorKind::Unsupported,
                format!(
                    "pre-copy's staging file cannot be made in {}",
                    dir.path.display()
                ),
            ));
        }
        options.precopy_by_default = false;
    }
    options.staging = staging;
    let settings = CoreSettings {
        zstd_level,
        max_size: Some(config.max_core_size),
        space,
        owner_uid: uid,
    };
    let new_file = NewFile::create_in(dir.fd.as_fd()).map_err(|e| {
        failed(
            ErrorKind::Output,
            format!("cannot create a core file in {}: {e}", dir.path.display()),
        )
    })?;
    let mut writer = CoreWriter::new(new_file, &settings).map_err(|e| {
        failed(
            ErrorKind::Output,
            format!("cannot start the core file in {}: {e}", dir.path.display()),
        )
    })?;
    // The core is written while the staging file still holds the memory:
    // both count against the room (the reservation made for them does not,
    // twice).
    writer.live(
        reservation.as_ref().map(|r| r.id),
        options
            .staging
            .as_ref()
            .and_then(|s| s.file.try_clone().ok())
            .map(std::fs::File::from),
    );
    let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| failed(ErrorKind::Internal, format!("cannot make a pipe: {e}")))?;
    let (dumped, received) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| pump(read_end, &mut writer));
        let dumped = dump(request, Output::Fd(write_end), &options);
        let received = reader.join().unwrap_or(0);
        (dumped, received)
    });
    // A failed dump leaves no core: the unnamed file goes with the writer.
    let report = dumped?;
    let stem_name = file_name_component(report.exec_name.as_bytes(), MAX_COMPONENT_LEN);
    let stem = format!("core.{stem_name}.{}.{}", report.pid, report.time);
    let extension = if zstd_level.is_some() { ".zst" } else { "" };
    let context = CrashContext {
        pid: Some(report.pid),
        uid: Some(report.uid),
        gid: Some(report.gid),
        dump_mode: dump_mode(report.pid, report.uid),
        ..CrashContext::default()
    };
    let readable_by = crate::crash::access::reader_of_core(&context, &gathered).ok();
    let (outcome, file) = writer.finish(readable_by, |n| numbered(&stem, n, extension));
    // The staging file goes (with its last descriptor), then the room
    // reserved: the core is in the listing now.
    drop(options);
    drop(reservation);
    for error in &outcome.errors {
        log.warning(error.clone());
    }
    for deleted in &outcome.deleted {
        log.notice(format!("deleted old core {deleted} to make room"));
    }
    let Some(name) = outcome.name.clone() else {
        return Err(failed(
            ErrorKind::Output,
            format!(
                "the live core could not be named in {}: {}",
                dir.path.display(),
                outcome.errors.join("; ")
            ),
        ));
    };
    let core_path = dir.path.join(&name);
    let truncated = outcome.truncated.clone();
    let fires: Vec<DaemonFire> = report
        .snapshots
        .iter()
        .map(|fire| DaemonFire {
            daemon: fire.daemon.clone(),
            target: None,
            report: fire.report.clone(),
            error: fire.error.clone(),
        })
        .collect();
    for error in record::fire_errors(&fires) {
        log.warning(error);
    }
    let core_trace = match (&file, config.check_core_trace) {
        (Some(file), true) if zstd_level.is_none() => crate::crash::core_trace_check::check(
            file,
            &fires,
            Some(&dir.path),
            Some(report.uid),
        ),
        (_, false) => crate::crash::core_trace_check::not_checked(
            "turned off (check_core_trace = false)",
        ),
        _ => crate::crash::core_trace_check::not_checked(
            "a live core compressed as it was written (its snapshots were taken while the process was stopped)",
        ),
    };
    let mut crash_record = CrashRecord {
        format: record::FORMAT.into(),
        crashed: crashed(&report, &gathered, crash_id.map(|id| id.to_string())),
        core: CoreSection {
            saved: true,
            path: Some(core_path.to_string_lossy().into_owned()),
            size: outcome.size,
            stored_bytes: outcome.stored_bytes,
            bytes_received: received,
            compression: if zstd_level.is_some() { "zstd" } else { "none" }.into(),
            complete: truncated.is_none(),
            truncated_reason: truncated.clone(),
            not_saved_reason: None,
            readable_by_uid: readable_by,
            deleted_to_make_room: outcome.deleted.clone(),
        },
        snapshots: record::snapshot_entries(&fires),
        core_trace,
        fires,
        config_path: config_path.to_string_lossy().into_owned(),
        live: Some(LiveSection {
            event: request.event.clone(),
            ..live_section(&report)
        }),
        ..CrashRecord::default()
    };
    log.info("live core record written".to_string());
    crash_record.errors = log.problems();
    crash_record.log = log.messages().to_vec();
    let record_stem = name.strip_suffix(extension).unwrap_or(&name).to_string();
    let written = crash_record
        .write_within(dir.fd.as_fd(), space, uid, readable_by, |n| {
            numbered(&record_stem, n, ".json")
        })
        .map_err(|e| {
            failed(
                ErrorKind::Output,
                format!(
                    "the live core was saved to {}, but its record could not be written in {}: {e}",
                    core_path.display(),
                    dir.path.display()
                ),
            )
        })?;
    for error in &written.errors {
        log.warning(error.clone());
    }
    drop(file);
    Ok(Taken {
        report,
        core: core_path,
        record: Some(dir.path.join(&written.name)),
        truncated,
        compressed: zstd_level.is_some(),
    })
}

/// A bound on what the core of process `pid` takes in the store, from
/// `/proc/PID/status`: its anonymous and shared-memory pages resident
/// (`RssAnon`, `RssShmem`: a private file page written is anonymous) and
/// swapped (`VmSwap`), a sixteenth more and 1 MiB for the notes and the
/// first pages of file mappings. Uncompressed: a zstd core is smaller, by
/// an amount not known before it is written, so it is not counted on.
/// Not counted: hugetlbfs pages (not in `RssAnon`) and what the process
/// maps meanwhile. `None` when the process cannot be read.
pub fn core_bound(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    let bytes = (kib("RssAnon:")? + kib("RssShmem:")? + kib("VmSwap:").unwrap_or(0)) * 1024;
    Some(bytes + bytes / 16 + (1 << 20))
}

/// What pre-copy needs to stage process `pid`'s memory into the store
/// `dir`: an unnamed file there (`O_TMPFILE`: on the store's file system,
/// gone with its last descriptor, whatever happens to the dumper), and its
/// budget, reserved in the store's ledger with the core's bound, in one
/// step under the space lock (live cores and crashes at once never count
/// the same room twice; `space::reserve`).
///
/// The budget is the room the store has now (its `max_dir_size` less what
/// it holds and others reserved; its free space less `min_free`; nothing
/// deleted for it) less the core's bound ([`core_bound`]): during the
/// write-out the staging file and the core exist together. It is at most
/// the bound and a quarter more (the staging file holds the memory the core
/// will, and what the process maps meanwhile), so that a live core never
/// reserves the room other crashes need. `None` (the dump then never uses
/// pre-copy by default) when no room is left for it or no file can be made.
fn staging_in_store(
    dir: &CoreDir,
    space: SpacePolicy,
    pid: i32,
    log: &mut Log,
) -> (Option<livecore::StagingSpace>, Option<Reservation>) {
    let Some(bound) = core_bound(pid) else {
        return (None, None);
    };
    let file = match rustix::fs::openat(
        dir.fd.as_fd(),
        ".",
        rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    ) {
        Ok(file) => file,
        Err(e) => {
            log.notice(format!(
                "pre-copy's staging file cannot be made in {} ({e}): no pre-copy into the store",
                dir.path.display()
            ));
            return (None, None);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let cap = bound + bound / 4;
    let budget_of = |room: u64| room.saturating_sub(bound).min(cap);
    let (room, reservation) =
        match space::reserve(dir.fd.as_fd(), space, now, |room| match budget_of(room) {
            0 => 0,
            budget => budget + bound,
        }) {
            Ok(reserved) => reserved,
            Err(e) => {
                log.warning(format!(
                    "cannot reserve room for pre-copy's staging file in {}: {e}",
                    dir.path.display()
                ));
                (0, None)
            }
        };
    let budget = reservation.as_ref().map_or(0, |_| budget_of(room));
    let staging = livecore::StagingSpace {
        file: Arc::new(file),
        budget,
        limit: format!(
            "the crash store's room: {} KiB now within max_dir_size = {} and min_free = {}, less {} KiB kept for the core",
            room >> 10,
            space.max_dir_size,
            space.min_free,
            bound >> 10
        ),
    };
    (Some(staging), reservation)
}

/// The configured core directory (or the default one), as a crash opens it.
fn open_store(config: &Config, log: &mut Log) -> Result<CoreDir, Failed> {
    match coredir::open_with_fallback(&config.core_dir, Path::new(config::DEFAULT_CORE_DIR)) {
        Ok((dir, problems)) => {
            for problem in problems {
                log.warning(problem);
            }
            Ok(dir)
        }
        Err(problems) => Err(failed(
            ErrorKind::Output,
            format!("no usable core directory: {}", problems.join("; ")),
        )),
    }
}

/// Reads the dumper's stream into the core writer, to its end: past a
/// limit the writer takes no more and the rest is read and dropped (the
/// dumper must not fail on a closed pipe: its report is the record).
/// Returns the bytes read.
fn pump(read_end: OwnedFd, writer: &mut CoreWriter) -> u64 {
    let mut input = std::fs::File::from(read_end);
    let mut buffer = vec![0u8; crate::crash::pump::PIECE];
    let mut total = 0u64;
    loop {
        match input.read(&mut buffer) {
            Ok(0) => return total,
            Ok(n) => {
                total += n as u64;
                writer.write(&buffer[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return total,
        }
    }
}

/// `STEM.EXT`, then `STEM.N.EXT` when that is taken.
fn numbered(stem: &str, n: u32, extension: &str) -> String {
    if n == 0 {
        format!("{stem}{extension}")
    } else {
        format!("{stem}.{n}{extension}")
    }
}

/// What the record says of the process: the dumper's report, with what
/// `/proc` said of it before (when the pidfd vouches for it).
fn crashed(report: &LiveReport, gathered: &Gathered, crash_id: Option<String>) -> Crashed {
    let info = &gathered.info;
    let verified = !matches!(gathered.identity, Identity::CouldNotTell(_));
    Crashed {
        crash_id,
        pid: Some(report.pid),
        uid: Some(report.uid),
        gid: Some(report.gid),
        signal: None,
        time: Some(report.time),
        time_utc: Some(iso8601_utc(report.time)),
        hostname: Some(report.hostname.clone()),
        process_name: Some(report.exec_name.clone()),
        exe_path: info.exe.as_deref().filter(|_| verified).map(lossy),
        cmdline: match &info.cmdline {
            Some(args) if verified => Some(args.iter().map(|a| lossy(a)).collect()),
            _ => Some(report.cmdline.split(' ').map(str::to_owned).collect()),
        },
        cmdline_truncated: info.cmdline_truncated,
        cgroup: info.cgroup.as_deref().filter(|_| verified).map(lossy),
        process_identity: gathered.identity.clone(),
        dump_mode: dump_mode(report.pid, report.uid),
        core_limit: None,
    }
}

/// The record's account of the dump.
fn live_section(report: &LiveReport) -> LiveSection {
    LiveSection {
        method: report.method.name().into(),
        fallback: report.fallback.clone(),
        pause_us: report.pause_us,
        stop_us: report.stop_us,
        fork_us: report.fork_us,
        snapshot_us: report.snapshot_us,
        copy_us: report.copy_us,
        reap_pause_us: report.reap_pause_us,
        total_us: report.total_us,
        threads: report
            .threads
            .iter()
            .map(|t| LiveThread {
                tid: t.tid,
                name: t.name.clone(),
                state: t.state.to_string(),
                stopped: t.stopped,
                signal: t.signal,
            })
            .collect(),
        memory_bytes: report.memory_bytes,
        segments: report.segments,
        copy_private_bytes: report.copy_private_bytes,
        buffer_bytes: report.buffer_bytes,
        buffer_note: report.buffer_note.clone(),
        unfaithful: report
            .unfaithful
            .iter()
            .map(|r| LiveRegion {
                start: r.start,
                end: r.end,
                path: r.path.clone(),
                why: r.why.clone(),
            })
            .collect(),
        warnings: report.warnings.clone(),
        exited_during_dump: report.exited_during_dump,
        requested_by_uid: Some(rustix::process::getuid().as_raw()),
        event: None,
    }
}
