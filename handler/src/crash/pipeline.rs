//! The crash pipeline: what happens to each crash, from the kernel's pipe
//! (`handle`) or its coredump socket (`serve`), in the order that keeps
//! the most (one function a step, called in turn by [`handle_crash`]):
//!
//! 1. read the arguments and the configuration (`read_arguments`,
//!    `read_config`): the crash's [`CrashContext`];
//! 2. read `/proc/PID` while the process is held (`gather_process`);
//! 3. record the trace snapshots before touching the core, since the trace
//!    is what waiting would lose, within the snapshot budget
//!    (`record_snapshots`; the core directory is opened first: its ledger
//!    holds the budget and the rate limits);
//! 4. stream the core to its file and to the chained handler (`save_core`),
//!    then run the triggers' stop actions once the kernel has let the
//!    process go (`run_stops`), scan the saved core for the trace it holds
//!    (`check_core_trace`), make the crash's report (`report_crash`: every
//!    thread's backtrace and the signature, in a bounded child acting as
//!    the crashing user) and compress the core (`compress_core`);
//! 5. log what became of the core (`log_outcome`) and make the crash record
//!    (`crash_record`);
//! 6. write the record (`write_record`), then the journal entry
//!    (`send_journal_entry`), then put the crash in the spool of crashes
//!    shipped to the collector (`crash/submit.rs`, with `[submit]`).
//!
//! No step's failure stops a later one: each is caught into the record.

use crate::base::config::{self, Compression, Config};
use crate::base::safefile::NewFile;
use crate::base::sanitize::{file_name_component, for_log, lossy, MAX_COMPONENT_LEN};
use crate::base::syslog::{iso8601_utc, Log};
use crate::crash::access;
use crate::crash::chain::Chain;
use crate::crash::context::{signal_name, CrashContext, KernelCommandLine};
use crate::crash::corefile::{CoreOutcome, CoreSettings, CoreWriter};
use crate::crash::limits::crash_share::{self, Share};
use crate::crash::limits::ratelimit;
use crate::crash::limits::snapshot_budget;
use crate::crash::limits::stall::{Bounded, CoreSource};
use crate::crash::procinfo::{self, Gathered};
use crate::crash::pump::PumpOutcome;
use crate::crash::snapshot::{self, SnapshotPlan};
use crate::store::coredir::{self, CoreDir};
use crate::store::ledger::CoreLimits;
use crate::store::record::{
    self, ChainOutcome, CoreSection, CrashRecord, Crashed, DaemonFire, Identity, Signal,
    StallSection,
};
use crate::store::space::SpacePolicy;
use lttng_coredump_engine::CrashInfo;
use lttng_coredump_fleet::CrashId;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

/// How the handling ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The core was saved (maybe truncated), or was not meant to be.
    Done,
    /// A core was meant to be saved and nothing of it could be.
    CoreLost,
}

/// Handles one crash: `raw_args` are the arguments after `handle`, `core`
/// is the kernel's pipe.
pub fn handle(raw_args: Vec<OsString>, core: &mut impl CoreSource, log: &mut Log) -> Verdict {
    handle_then_release(raw_args, core, || Ok(()), log)
}

/// [`handle`], calling `release_core` as soon as the whole core has been
/// read: closing the kernel's pipe lets the kernel finish with the crashed
/// process before the stop actions run (see `snapshot::run_stops`).
pub fn handle_then_release(
    raw_args: Vec<OsString>,
    core: &mut impl CoreSource,
    release_core: impl FnOnce() -> std::io::Result<()>,
    log: &mut Log,
) -> Verdict {
    let command_line = read_arguments(raw_args, log);
    handle_crash(
        command_line.context,
        command_line.config.as_deref(),
        Transport::Pipe,
        core,
        release_core,
        || None,
        log,
    )
}

/// How the crash came, and what bounds what it may hold.
pub enum Transport {
    /// The kernel's pipe (`handle`): the crash holds a `core_pipe_limit`
    /// slot; its uid's share is counted here (`crash_share`), and a forked
    /// child talks to each session daemon.
    Pipe,
    /// The crash service: its dispatcher gave the crash a worker within
    /// its uid's share (`share`, `None`: not counted), and resident
    /// children talk to the session daemons.
    Socket {
        workers: Arc<dyn crate::crash::snapshot::Residents>,
        share: Option<u32>,
    },
}

/// One crash, whichever way it came (the pipe handler's command line, or
/// the socket service's peer pidfd): `context` describes it, `config_file`
/// is the configuration to read (`None`: the default file), `core` is the
/// kernel's stream of it, `release_core` lets the kernel finish with the
/// process once the core is read (or was never wanted: on the socket, the
/// kernel is then told to dump nothing), and `after_release` says what the
/// transport learns only then (the signal, from the process's exit).
/// `transport`: which way it came (see [`Transport`]).
/// Each step below is one item of the list at the top of this module.
pub fn handle_crash(
    mut context: CrashContext,
    config_file: Option<&Path>,
    transport: Transport,
    core: &mut impl CoreSource,
    release_core: impl FnOnce() -> std::io::Result<()>,
    after_release: impl FnOnce() -> Option<i32>,
    log: &mut Log,
) -> Verdict {
    let (config, config_path) = read_config(config_file, log);
    let time = context.time.unwrap_or_else(now);
    let crash_id = new_crash_id(log);
    let gathered = gather_process(&context, log);
    let exe = hold_exe(&context, &gathered, &config, log);
    // The name as the process set it; the kernel's %e has `/` written as `!`.
    let comm: Option<Vec<u8>> = gathered.info.comm.clone().or_else(|| context.comm.clone());
    let crash = CrashInfo {
        pid: context.pid.unwrap_or(0),
        uid: context.uid.unwrap_or(0),
        gid: context.gid.unwrap_or(0),
        exec_name: comm.as_deref().map(lossy).unwrap_or_default(),
        hostname: context.hostname.as_deref().map(lossy).unwrap_or_default(),
        time,
    };
    let (share, crash_share, workers) = match transport {
        Transport::Pipe => {
            let (share, section) = take_share(&context, &config, log);
            (Some(share), section, None)
        }
        Transport::Socket { workers, share } => (
            None,
            record::ShareSection {
                share,
                past_share: false,
                note: share.map(|share| {
                    format!(
                        "the crash service gave it a worker within its uid's share ({share} at \
                         once)"
                    )
                }),
            },
            Some(workers),
        ),
    };
    let past_share = share.as_ref().is_some_and(Share::is_past);
    let mut plan = SnapshotPlan {
        deadline: config.snapshot_deadline,
        extra_sessions: config.snapshot_sessions.clone(),
        fallback_to_active_snapshot_sessions: config.snapshot_active_sessions,
        // Past its uid's share, a crash takes none of the user's time.
        user_daemon: config.snapshot_user_daemon && !past_share,
        workers,
    };
    let dir = open_core_dir(&config, log);
    let mut stages = record::Stages::default();
    let (fires, own_snapshots_skipped) = record_snapshots(
        &crash,
        &context,
        &mut plan,
        dir.as_ref(),
        snapshot_budget_of(&config),
        &mut stages.snapshots,
        log,
    );
    let relayed = crate::crash::submit::relay_snapshots(&config, crash_id.as_ref(), &fires, log);
    let readable_by = core_reader(&context, &gathered, log);
    let mut learned_signal = None;
    let mut share = share;
    let release_then_learn = || {
        let released = release_core();
        // The kernel's slot is let go once its pipe is closed: so is the
        // uid's share.
        drop(share.take());
        learned_signal = after_release();
        released
    };
    let mut saved = save_core(
        CoreInputs {
            context: &context,
            config: &config,
            comm: comm.as_deref(),
            program: program_of(&context, &gathered, comm.as_deref()),
            time,
            dir,
            readable_by,
            past_share,
        },
        core,
        release_then_learn,
        &mut stages.core,
        log,
    );
    if context.signal.is_none() {
        context.signal = learned_signal;
    }
    let fires = run_stops(&crash, fires, &plan, &mut stages.stops, log);
    let core_trace = check_core_trace(
        &saved,
        &config,
        &fires,
        context.uid,
        &mut stages.core_trace,
        log,
    );
    let mut report = report_crash(
        &saved,
        &config,
        &context,
        exe.as_ref().map(|(fd, path)| (fd, path.as_str())),
        past_share,
        &mut stages.report,
        log,
    );
    let last_events = crate::crash::last_events::Inputs {
        config: &config,
        context: &context,
        comm: comm.as_deref(),
        fires: &fires,
        core_trace: &core_trace,
        core: saved.raw_core(),
        core_dir: saved.dir.as_ref().map(|d| d.path.as_path()),
        began_unix_us: stages.snapshots.started_unix_us,
    };
    if let Some(said) = or_if_it_panics(
        || crate::crash::last_events::add(&mut report, &last_events),
        || Some("last events unavailable: reading them panicked".into()),
    ) {
        log.info(said);
    }
    drop(exe);
    compress_core(
        &mut saved,
        &config,
        context.uid,
        &mut stages.compression,
        log,
    );
    let verdict = log_outcome(&context, comm.as_deref(), &saved, log);
    let crash_record = crash_record(CrashRecordParts {
        crash_id: crash_id.as_ref(),
        context: &context,
        config_path: &config_path,
        time,
        gathered: &gathered,
        comm: comm.as_deref(),
        saved: &saved,
        fires,
        own_snapshots_skipped,
        core_trace,
        report,
        crash_share,
        stages,
        log,
    });
    let journal = config.journal.then_some(()).and_then(|()| {
        or_if_it_panics(
            || Some(crate::crash::journal::crash_of(&crash_record, None)),
            || None,
        )
    });
    let record_path = write_record(crash_record.clone(), &saved, &config, context.uid, log);
    if let Some(journal) = journal {
        send_journal_entry(journal, record_path.as_deref(), &config, log);
    }
    crate::crash::submit::enqueue(&config, &crash_record, saved.dir.as_ref(), &relayed, log);
    expire_old(&config, &saved, log);
    verdict
}

/// Retention by age (`max_age`): the cores and records older than it go,
/// after this crash's record is safely written.
fn expire_old(config: &Config, saved: &SavedCore, log: &mut Log) {
    let (Some(max_age), Some(dir)) = (config.max_age, &saved.dir) else {
        return;
    };
    let expired = or_if_it_panics(
        || crate::store::retention::expire(dir.fd.as_fd(), max_age, std::time::SystemTime::now()),
        || Err(std::io::Error::other("applying max_age panicked")),
    );
    match expired {
        Ok(names) => {
            for name in names {
                log.notice(format!("deleted {name}: older than max_age"));
            }
        }
        Err(err) => log.warning(format!(
            "cannot apply max_age in {}: {err}",
            dir.path.display()
        )),
    }
}

/// Runs `step`, catching a panic into `fallback()`: no step's panic may
/// stop a later step (above all, reading the core).
fn or_if_it_panics<T>(step: impl FnOnce() -> T, fallback: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(step)).unwrap_or_else(|_| fallback())
}

/// Runs `step` between the two time stamps of `times`.
fn timed<T>(times: &mut record::StageTimes, step: impl FnOnce() -> T) -> T {
    times.started_unix_us = record::now_unix_us();
    let result = step();
    times.ended_unix_us = record::now_unix_us();
    result
}

/// A fire of the root daemon that panicked: it stands in the record for
/// the fires that could not be made.
fn panicked_fire(what: &str) -> Vec<DaemonFire> {
    vec![DaemonFire {
        daemon: "root".into(),
        target: None,
        report: None,
        error: Some(format!("{what} panicked")),
    }]
}

/// 1a. The kernel's arguments (whatever they are), with their problems
///     logged.
fn read_arguments(raw_args: Vec<OsString>, log: &mut Log) -> KernelCommandLine {
    let command_line = CrashContext::from_kernel_args(raw_args);
    for error in &command_line.errors {
        log.warning(format!("kernel arguments: {error}"));
    }
    command_line
}

/// 1b. The configuration (the defaults when it is missing, bad or panics),
///     with its path, for the record.
fn read_config(file: Option<&Path>, log: &mut Log) -> (Config, std::path::PathBuf) {
    let config_path = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into());
    let config = match catch_unwind(|| Config::load(file)) {
        Ok(loaded) => {
            log.set_socket_path(loaded.config.syslog_socket.clone());
            if let Some(error) = loaded.error {
                log.error(error);
            }
            loaded.config
        }
        Err(_) => {
            log.error("reading the configuration panicked; using the defaults");
            Config::default()
        }
    };
    (config, config_path)
}

/// 2. What `/proc/PID` says of the process, while the kernel holds it.
fn gather_process(context: &CrashContext, log: &mut Log) -> Gathered {
    let could_not_tell = |reason: &str| Gathered {
        info: Default::default(),
        identity: Identity::CouldNotTell(reason.into()),
        errors: vec![],
    };
    let gathered = match context.pid {
        Some(pid) => or_if_it_panics(
            || procinfo::gather(Path::new("/proc"), pid, context.pidfd),
            || could_not_tell("reading /proc panicked"),
        ),
        None => could_not_tell("the kernel gave no PID"),
    };
    for error in &gathered.errors {
        log.warning(error.clone());
    }
    if let Identity::CouldNotTell(reason) = &gathered.identity {
        log.warning(format!("process details left out: {reason}"));
    }
    gathered
}

/// 2b. Where a pipe crash stands in its uid's share of the crashes
///     handled at once (`crash_share`): within it, it holds a slot file
///     until its core is read; past it, it takes none of the user's time
///     and the FUSE wait of its dump is aborted sooner. The record says
///     which, and why.
fn take_share(
    context: &CrashContext,
    config: &Config,
    log: &mut Log,
) -> (Share, record::ShareSection) {
    let not_counted = |why: String| {
        (
            Share::NotCounted(why.clone()),
            record::ShareSection {
                note: Some(why),
                ..Default::default()
            },
        )
    };
    let Some(uid) = context.uid else {
        return not_counted("the kernel gave no uid (%u): not counted".into());
    };
    // One slot of the kernel's is always left to the other users.
    let pool = std::fs::read_to_string("/proc/sys/kernel/core_pipe_limit")
        .ok()
        .and_then(|limit| limit.trim().parse().ok())
        .unwrap_or(0);
    let Some(share) = crash_share::effective(config.max_crashes_in_progress_per_user, pool) else {
        return not_counted("max_crashes_in_progress_per_user = 0: not counted".into());
    };
    let taken = or_if_it_panics(
        || crash_share::take(Path::new(crash_share::SHARE_DIR), uid, share),
        || Share::NotCounted("counting the uid's crashes in progress panicked".into()),
    );
    let section = match &taken {
        Share::Within(_) => record::ShareSection {
            share: Some(share),
            ..Default::default()
        },
        Share::Past { share } => {
            let note = format!(
                "uid {uid} already has {share} crash(es) being handled \
                 (max_crashes_in_progress_per_user, at most core_pipe_limit - 1): this one gets \
                 no fire in the user's own session daemon, and the FUSE connections its dump \
                 waits on are aborted after {} s without progress",
                crash_share::PAST_SHARE_STALL.as_secs()
            );
            log.notice(format!("process {}: {note}", pid_or(context, "?")));
            record::ShareSection {
                share: Some(*share),
                past_share: true,
                note: Some(note),
            }
        }
        Share::NotCounted(why) => {
            log.warning(why.clone());
            record::ShareSection {
                share: Some(share),
                note: Some(why.clone()),
                ..Default::default()
            }
        }
    };
    (taken, section)
}

/// The snapshot budget the configuration sets.
fn snapshot_budget_of(config: &Config) -> snapshot_budget::Budget {
    snapshot_budget::Budget {
        per_minute: config.max_snapshots_per_minute,
        per_user: config.max_snapshots_per_user_per_minute,
        max_dirs: config.max_snapshot_dirs,
        max_bytes: config.max_snapshot_size,
        max_age: config.max_snapshot_age,
    }
}

/// 3. The trace snapshots, before the core is read. The handler's own
///    snapshots (configured sessions, the fallback) only within the budget
///    (they are left out of `plan` past it); the snapshot directories they
///    made are then noted, and the oldest past the budget deleted. Returns
///    the fires, and why the handler's own snapshots were left out.
fn record_snapshots(
    crash: &CrashInfo,
    context: &CrashContext,
    plan: &mut SnapshotPlan,
    dir: Option<&CoreDir>,
    budget: snapshot_budget::Budget,
    times: &mut record::StageTimes,
    log: &mut Log,
) -> (Vec<DaemonFire>, Option<String>) {
    let own_snapshots =
        !plan.extra_sessions.is_empty() || plan.fallback_to_active_snapshot_sessions;
    let mut skipped = None;
    if let (Some(dir), true) = (dir, own_snapshots) {
        match snapshot_budget::admit(dir.fd.as_fd(), now(), context.uid, budget) {
            Ok(None) => {}
            Ok(Some(reason)) => {
                log.warning(reason.clone());
                skipped = Some(reason);
                plan.extra_sessions.clear();
                plan.fallback_to_active_snapshot_sessions = false;
            }
            Err(err) => log.warning(err),
        }
    }
    let plan = &*plan;
    let fires = timed(times, || {
        or_if_it_panics(
            || snapshot::record_snapshots(crash, context.uid, plan),
            || panicked_fire("recording the snapshots"),
        )
    });
    if let Some(dir) = dir {
        let made = snapshot_budget::own_snapshot_dirs(&fires);
        let (pruned, errors) = or_if_it_panics(
            || snapshot_budget::note_and_prune(dir.fd.as_fd(), now(), &made, budget),
            || {
                (
                    vec![],
                    vec!["the snapshot budget's pruning panicked".into()],
                )
            },
        );
        for path in pruned {
            log.notice(format!(
                "deleted the snapshot {path} (the handler's own, past the snapshot budget)"
            ));
        }
        for error in errors {
            log.warning(error);
        }
    }
    for error in record::fire_errors(&fires) {
        log.warning(error);
    }
    for entry in record::snapshot_entries(&fires)
        .iter()
        .filter(|e| e.error.is_none())
    {
        log.info(format!(
            "snapshot of session {:?} ({} session daemon) in {}",
            entry.session,
            entry.daemon,
            entry.path.as_deref().unwrap_or("?")
        ));
    }
    (fires, skipped)
}

/// What becomes of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CoreFate {
    /// Saved, at this path (maybe truncated: see the core's outcome).
    Saved(String),
    /// Left out on purpose (turned off, %c = 0, the rate limit): not a lost
    /// core.
    LeftOut(String),
    /// Wanted, and not saved.
    Lost(String),
}

impl CoreFate {
    fn path(&self) -> Option<&str> {
        match self {
            CoreFate::Saved(path) => Some(path),
            _ => None,
        }
    }

    fn not_saved_reason(&self) -> Option<&str> {
        match self {
            CoreFate::Saved(_) => None,
            CoreFate::LeftOut(reason) | CoreFate::Lost(reason) => Some(reason),
        }
    }
}

/// What step 4 leaves for the record.
struct SavedCore {
    fate: CoreFate,
    outcome: CoreOutcome,
    pumped: PumpOutcome,
    /// What the core's stream stalled on, and what was done.
    stall: Option<StallSection>,
    chain: Option<ChainOutcome>,
    /// The core directory (also the record's), if a safe one was found.
    dir: Option<CoreDir>,
    /// `core.NAME.PID.TIME`, the name of the core and its record before
    /// any `.N` suffix and extension.
    stem: String,
    extension: &'static str,
    /// How the saved file is stored: raw until `compress_core` replaced it.
    compression: Compression,
    readable_by: Option<u32>,
    /// The saved core, kept open until the record is written.
    _file: Option<std::fs::File>,
}

impl SavedCore {
    /// The saved core's raw file, when there is one (until `compress_core`
    /// replaces it).
    fn raw_core(&self) -> Option<&std::fs::File> {
        match (&self.fate, &self._file) {
            (CoreFate::Saved(_), Some(file)) => Some(file),
            _ => None,
        }
    }

    /// `no core saved (WHY)`, for the steps that read the saved core.
    fn no_core_reason(&self) -> String {
        format!(
            "no core saved{}",
            self.fate
                .not_saved_reason()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )
    }
}

/// Who besides root may read the core: the crashing user, only when the
/// process was theirs in every respect (see `access`); why not is logged
/// when `%d` alone would have said yes.
fn core_reader(context: &CrashContext, gathered: &Gathered, log: &mut Log) -> Option<u32> {
    match access::reader_of_core(context, gathered) {
        Ok(uid) => Some(uid),
        Err(reason) => {
            if context.dump_mode == Some(1) && context.uid.is_some_and(|uid| uid != 0) {
                log.warning(format!(
                    "core of process {} stays root-only: {reason}",
                    pid_or(context, "?")
                ));
            }
            None
        }
    }
}

/// The program the rate limit counts the crash against: its executable
/// (the kernel's `%E`, else `/proc`), never the name it gave itself, but
/// for want of anything else.
fn program_of(context: &CrashContext, gathered: &Gathered, comm: Option<&[u8]>) -> Vec<u8> {
    context
        .exe_path_from_kernel()
        .or_else(|| gathered.info.exe.clone())
        .unwrap_or_else(|| comm.unwrap_or_default().to_vec())
}

/// What step 4 works from.
struct CoreInputs<'a> {
    context: &'a CrashContext,
    config: &'a Config,
    comm: Option<&'a [u8]>,
    /// What the rate limit counts the core against ([`program_of`]).
    program: Vec<u8>,
    time: i64,
    dir: Option<CoreDir>,
    readable_by: Option<u32>,
    /// The crash is past its uid's share: its stall remedy comes sooner.
    past_share: bool,
}

/// 4. The core, streamed to its file and to the chained handler; the
///    kernel's pipe is released as soon as it has been read.
fn save_core(
    inputs: CoreInputs<'_>,
    core: &mut impl CoreSource,
    release_core: impl FnOnce() -> std::io::Result<()>,
    times: &mut record::StageTimes,
    log: &mut Log,
) -> SavedCore {
    let CoreInputs {
        context,
        config,
        comm,
        program,
        time,
        dir,
        readable_by,
        past_share,
    } = inputs;
    let stem_name = file_name_component(comm.unwrap_or(b"unknown"), MAX_COMPONENT_LEN);
    let stem = format!("core.{stem_name}.{}.{time}", pid_or(context, "unknown"));
    // Stored raw at the speed the kernel sends it; compressed only once the
    // process is let go (`compress_core`).
    let extension = "";
    let mut writer = open_core_file(context, config, dir.as_ref(), &stem_name, &program, log);
    let mut chain = match &config.chain {
        Some(chain_config) => match Chain::start(chain_config, context) {
            Ok(chain) => Some(chain),
            Err(err) => {
                log.error(err);
                None
            }
        },
        None => None,
    };
    // No byte for core_stall_timeout (sooner past the uid's share) brings
    // the remedy: the FUSE connections the process's dump waits on are
    // aborted, or else the read ends (`stall`).
    let first_remedy = if past_share {
        crash_share::PAST_SHARE_STALL
    } else {
        config.core_stall_timeout
    };
    let (pid, pidfd, abort) = (context.pid, context.pidfd, config.abort_stalled_fuse);
    let mut bounded = Bounded::new(core, config.core_stall_timeout, first_remedy, |_| {
        crate::crash::limits::fuse_abort::remedy(pid, pidfd, abort)
    });
    let pumped = timed(times, || {
        crate::crash::pump::pump(&mut bounded, writer.as_mut().ok(), chain.as_mut())
    });
    let stall = bounded.section();
    if let Some(stall) = &stall {
        for entry in &stall.stalls {
            for said in &entry.remedy.said {
                log.warning(format!(
                    "the dump of process {} made no progress after {} bytes: {said}",
                    pid_or(context, "?"),
                    entry.after_bytes
                ));
            }
        }
    }
    if let Err(err) = release_core() {
        log.warning(format!("cannot close the kernel's core pipe early: {err}"));
    }
    if let Some(error) = &pumped.error {
        log.error(error.clone());
    }
    let (outcome, file, fate) = match writer {
        Ok(writer) => {
            let name = |n: u32| numbered(&stem, n, extension);
            let (mut outcome, file) = writer.finish(readable_by, name);
            if outcome.truncated.is_none() && !pumped.reached_end {
                outcome.truncated = Some(
                    pumped
                        .error
                        .clone()
                        .unwrap_or_else(|| "the core stream ended early".into()),
                );
            }
            let fate = match (&dir, &outcome.name) {
                (Some(dir), Some(name)) => {
                    CoreFate::Saved(dir.path.join(name).to_string_lossy().into_owned())
                }
                _ => CoreFate::Lost("the core file could not be named".into()),
            };
            (outcome, file, fate)
        }
        Err(fate) => (CoreOutcome::default(), None, fate),
    };
    for error in &outcome.errors {
        log.warning(error.clone());
    }
    for deleted in &outcome.deleted {
        log.notice(format!("deleted old core {deleted} to make room"));
    }
    if let Some(reason) = &outcome.truncated {
        log.warning(format!(
            "core of process {} ({}) truncated: {reason}",
            pid_or(context, "?"),
            comm_for_log(comm)
        ));
    }
    let chain = chain.map(|chain| chain.finish(pumped.reached_end.then_some(pumped.bytes_read)));
    if let Some(outcome) = &chain {
        for error in &outcome.errors {
            log.warning(error.clone());
        }
        log.info(format!(
            "chained command {:?} got {} bytes{}, {}",
            outcome.command.first().map(String::as_str).unwrap_or(""),
            outcome.bytes_given,
            if outcome.complete {
                " (the whole core)"
            } else {
                ""
            },
            outcome.ended
        ));
    }
    SavedCore {
        fate,
        outcome,
        pumped,
        stall,
        chain,
        dir,
        stem,
        extension,
        compression: Compression::None,
        readable_by,
        _file: file,
    }
}

/// 4c. What trace the saved core itself holds (see `core_trace_check`), read
///     from the handler's descriptor of the raw core, now that the process
///     is let go.
fn check_core_trace(
    saved: &SavedCore,
    config: &Config,
    fires: &[DaemonFire],
    uid: Option<u32>,
    times: &mut record::StageTimes,
    log: &mut Log,
) -> record::CoreTraceSection {
    if !config.check_core_trace {
        return crate::crash::core_trace_check::not_checked(
            "turned off (check_core_trace = false)",
        );
    }
    let Some(file) = saved.raw_core() else {
        return crate::crash::core_trace_check::not_checked(saved.no_core_reason());
    };
    let core_dir = saved.dir.as_ref().map(|d| d.path.as_path());
    let section = timed(times, || {
        or_if_it_panics(
            || crate::crash::core_trace_check::check(file, fires, core_dir, uid),
            || crate::crash::core_trace_check::not_checked("the check panicked"),
        )
    });
    if section.only_in_core {
        log.notice(format!(
            "the core holds trace no snapshot has: {}",
            section.summary
        ));
    } else if section.checked {
        log.info(format!("core trace check: {}", section.summary));
    }
    section
}

/// 2c. The crashing process's executable, held (`O_PATH`) while the
///     kernel holds the process, for the report's analysis.
fn hold_exe(
    context: &CrashContext,
    gathered: &Gathered,
    config: &Config,
    log: &mut Log,
) -> Option<(std::os::fd::OwnedFd, String)> {
    if !config.report {
        return None;
    }
    let path = gathered.info.exe.as_deref().map(lossy)?;
    let held = or_if_it_panics(
        || crate::crash::report::open_exe(context, gathered),
        || Err("opening the executable panicked".into()),
    );
    match held {
        Ok(fd) => Some((fd, path)),
        Err(err) => {
            log.info(format!(
                "the report reads the program from the core only: {err}"
            ));
            None
        }
    }
}

/// 4d. The crash's report (`crash::report`), from the saved raw core, now
///     that the process is let go: never on the crash's clock.
fn report_crash(
    saved: &SavedCore,
    config: &Config,
    context: &CrashContext,
    exe: Option<(&std::os::fd::OwnedFd, &str)>,
    past_share: bool,
    times: &mut record::StageTimes,
    log: &mut Log,
) -> record::ReportSection {
    use crate::crash::report;
    if !config.report {
        return report::not_made("turned off (report = false)");
    }
    let Some(file) = saved.raw_core() else {
        return report::not_made(saved.no_core_reason());
    };
    if past_share {
        return report::not_made(
            "the crash came past its uid's share of the crashes handled at once: no analysis",
        );
    }
    let as_uid = match report::analyst(context.uid, saved.readable_by) {
        Ok(uid) => uid,
        Err(reason) => return report::not_made(reason),
    };
    let section = timed(times, || {
        or_if_it_panics(
            || report::make(file, exe, as_uid, config),
            || report::not_made("analysis failed: the report step panicked"),
        )
    });
    match (&section.title, &section.not_analyzed_reason) {
        (Some(title), _) => log.info(format!(
            "crash report: {title} (signature {})",
            section.signature.as_deref().unwrap_or("?")
        )),
        (None, Some(reason)) => log.notice(format!("no crash report: {reason}")),
        (None, None) => {}
    }
    section
}

/// 4e. With `compression = "zstd"`, the raw core replaced by a compressed
///     copy, now that the process is gone: a whole copy always has a name
///     (a crash of the machine meanwhile leaves the raw core).
fn compress_core(
    saved: &mut SavedCore,
    config: &Config,
    owner_uid: Option<u32>,
    times: &mut record::StageTimes,
    log: &mut Log,
) {
    if config.compression != Compression::Zstd {
        return;
    }
    let (Some(dir), Some(raw), Some(raw_name), CoreFate::Saved(_)) = (
        &saved.dir,
        &saved._file,
        saved.outcome.name.clone(),
        &saved.fate,
    ) else {
        return;
    };
    let settings = CoreSettings {
        zstd_level: None,
        max_size: None,
        space: SpacePolicy {
            max_dir_size: config.max_dir_size,
            min_free: config.min_free,
        },
        owner_uid,
    };
    let done = timed(times, || {
        or_if_it_panics(
            || {
                crate::crash::compress::replace_with_zstd(
                    dir.fd.as_fd(),
                    raw,
                    &raw_name,
                    config.zstd_level,
                    &settings,
                    saved.readable_by,
                )
            },
            || crate::crash::compress::Compressed {
                kept_raw_because: Some("compressing panicked".into()),
                ..Default::default()
            },
        )
    });
    for error in &done.errors {
        log.warning(error.clone());
    }
    for deleted in &done.deleted {
        log.notice(format!("deleted old core {deleted} to make room"));
    }
    saved.outcome.deleted.extend(done.deleted);
    match done.name {
        Some(name) => {
            saved.fate = CoreFate::Saved(dir.path.join(&name).to_string_lossy().into_owned());
            saved.outcome.name = Some(name);
            saved.outcome.stored_bytes = done.stored_bytes;
            saved.extension = ".zst";
            saved.compression = Compression::Zstd;
            saved._file = None;
        }
        None => log.warning(format!(
            "core kept uncompressed: {}",
            done.kept_raw_because
                .as_deref()
                .unwrap_or("compressing failed")
        )),
    }
}

/// The configured core directory, or the default one when it is unsafe;
/// `None` when neither can be used.
fn open_core_dir(config: &Config, log: &mut Log) -> Option<CoreDir> {
    let (dir, problems) =
        match coredir::open_with_fallback(&config.core_dir, Path::new(config::DEFAULT_CORE_DIR)) {
            Ok((dir, problems)) => (Some(dir), problems),
            Err(problems) => (None, problems),
        };
    for problem in problems {
        log.error(problem);
    }
    dir
}

/// The file the core goes to, or why there is none.
fn open_core_file(
    context: &CrashContext,
    config: &Config,
    dir: Option<&CoreDir>,
    stem_name: &str,
    program: &[u8],
    log: &mut Log,
) -> Result<CoreWriter, CoreFate> {
    if !config.save_core {
        return Err(CoreFate::LeftOut(
            "saving cores is turned off (save_core = false)".into(),
        ));
    }
    if context.core_limit == Some(0) {
        return Err(CoreFate::LeftOut(
            "the process's core size limit is 0 (%c)".into(),
        ));
    }
    let Some(dir) = dir else {
        return Err(CoreFate::Lost("no safe core directory".into()));
    };
    let limits = CoreLimits {
        per_program: config.max_cores_per_minute,
        per_user: config.max_cores_per_user_per_minute,
    };
    match ratelimit::admit(
        dir.fd.as_fd(),
        now(),
        context.uid,
        program,
        stem_name,
        limits,
    ) {
        Ok(None) => {}
        // Logged once, by log_outcome.
        Ok(Some(reason)) => return Err(CoreFate::LeftOut(reason)),
        // A core is never dropped for want of bookkeeping.
        Err(err) => log.warning(err),
    }
    let space = SpacePolicy {
        max_dir_size: config.max_dir_size,
        min_free: config.min_free,
    };
    // No room at all (old cores deleted as the writer would): the core is
    // refused before a byte of it is read (on the socket, the kernel then
    // dumps nothing).
    let claimant = crate::store::space::Claimant {
        uid: context.uid,
        own_stem: None,
        own_reservation: None,
    };
    match crate::store::space::make_room(
        dir.fd.as_fd(),
        space,
        crate::crash::corefile::HOLE_BLOCK as u64,
        0,
        claimant,
    ) {
        Ok((room, deleted)) => {
            for name in deleted {
                log.notice(format!("deleted old core {name} to make room"));
            }
            if room == 0 {
                let reason = format!(
                    "no room in {} (max_dir_size = {}, min_free = {})",
                    dir.path.display(),
                    config.max_dir_size,
                    config.min_free
                );
                log.error(format!(
                    "core of process {} not saved: {reason}",
                    pid_or(context, "?")
                ));
                return Err(CoreFate::Lost(reason));
            }
        }
        Err(err) => log.warning(format!(
            "cannot measure the room in {}: {err}",
            dir.path.display()
        )),
    }
    let max_size = match context.core_limit_bytes() {
        Some(limit) => limit.min(config.max_core_size),
        None => config.max_core_size,
    };
    let settings = CoreSettings {
        // Raw: compressing while the kernel waits would hold the process.
        zstd_level: None,
        max_size: Some(max_size),
        space,
        owner_uid: context.uid,
    };
    NewFile::create_in(dir.fd.as_fd())
        .and_then(|file| CoreWriter::new(file, &settings))
        .map_err(|err| {
            let reason = format!("cannot create a core file in {}: {err}", dir.path.display());
            log.error(reason.clone());
            CoreFate::Lost(reason)
        })
}

/// 4b. The triggers' stop actions, now that the kernel has the whole core
///     and lets the process go (only in daemons that have some); returns
///     every fire, the snapshots' then the stops'.
fn run_stops(
    crash: &CrashInfo,
    mut fires: Vec<DaemonFire>,
    plan: &SnapshotPlan,
    times: &mut record::StageTimes,
    log: &mut Log,
) -> Vec<DaemonFire> {
    let stop_fires = timed(times, || {
        or_if_it_panics(
            || snapshot::run_stops(crash, &fires, plan),
            || panicked_fire("running the stop actions"),
        )
    });
    for error in record::fire_errors(&stop_fires) {
        log.warning(error);
    }
    fires.extend(stop_fires);
    fires
}

/// 5a. One line that says what became of the core; the verdict.
fn log_outcome(
    context: &CrashContext,
    comm: Option<&[u8]>,
    saved: &SavedCore,
    log: &mut Log,
) -> Verdict {
    let comm = comm_for_log(comm);
    let pid = pid_or(context, "?");
    match &saved.fate {
        CoreFate::Saved(path) => {
            log.notice(format!(
                "core of process {pid} ({comm}, signal {}) saved to {path}{}",
                context
                    .signal
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into()),
                if saved.outcome.truncated.is_some() {
                    " (truncated)"
                } else {
                    ""
                }
            ));
            Verdict::Done
        }
        CoreFate::LeftOut(reason) => {
            log.notice(format!(
                "core of process {pid} ({comm}) not saved: {reason}"
            ));
            Verdict::Done
        }
        CoreFate::Lost(reason) => {
            log.error(format!(
                "core of process {pid} ({comm}) not saved: {reason}"
            ));
            Verdict::CoreLost
        }
    }
}

/// Everything the crash record is made of.
struct CrashRecordParts<'a> {
    crash_id: Option<&'a CrashId>,
    context: &'a CrashContext,
    config_path: &'a Path,
    time: i64,
    gathered: &'a Gathered,
    comm: Option<&'a [u8]>,
    saved: &'a SavedCore,
    fires: Vec<DaemonFire>,
    own_snapshots_skipped: Option<String>,
    core_trace: record::CoreTraceSection,
    report: record::ReportSection,
    crash_share: record::ShareSection,
    stages: record::Stages,
    log: &'a Log,
}

/// The crash's ID, from the kernel's random source; a crash is handled
/// without one (logged) when that source fails.
pub(crate) fn new_crash_id(log: &mut Log) -> Option<CrashId> {
    CrashId::random()
        .map_err(|error| {
            log.warning(format!(
                "no crash ID: the kernel's random source failed: {error}"
            ))
        })
        .ok()
}

/// 5b. The crash record, with the log so far.
fn crash_record(parts: CrashRecordParts<'_>) -> CrashRecord {
    let CrashRecordParts {
        crash_id,
        context,
        config_path,
        time,
        gathered,
        comm,
        saved,
        fires,
        own_snapshots_skipped,
        mut core_trace,
        report,
        crash_share,
        stages,
        log,
    } = parts;
    let core_path = saved.fate.path().map(str::to_owned);
    // The core's final name (compressed or not), for the command.
    if let (Some(path), false) = (&core_path, core_trace.traces.is_empty()) {
        core_trace.recover_command = Some(format!("lttng-coredump recover {path}"));
    }
    CrashRecord {
        format: record::FORMAT.into(),
        crashed: Crashed {
            crash_id: crash_id.map(CrashId::to_string),
            pid: context.pid,
            uid: context.uid,
            gid: context.gid,
            signal: context.signal.map(|number| Signal {
                number,
                name: signal_name(number).map(Into::into),
            }),
            time: Some(time),
            time_utc: Some(iso8601_utc(time)),
            hostname: context.hostname.as_deref().map(lossy),
            process_name: comm.map(lossy),
            exe_path: gathered
                .info
                .exe
                .as_deref()
                .map(lossy)
                .or_else(|| match gathered.identity {
                    Identity::CouldNotTell(_) => None,
                    _ => context.exe_path_from_kernel().as_deref().map(lossy),
                }),
            cmdline: gathered
                .info
                .cmdline
                .as_ref()
                .map(|args| args.iter().map(|a| lossy(a)).collect()),
            cmdline_truncated: gathered.info.cmdline_truncated,
            cgroup: gathered.info.cgroup.as_deref().map(lossy),
            process_identity: gathered.identity.clone(),
            dump_mode: context.dump_mode,
            core_limit: context.core_limit,
        },
        core: CoreSection {
            saved: core_path.is_some(),
            complete: core_path.is_some() && saved.outcome.truncated.is_none(),
            readable_by_uid: saved.readable_by.filter(|_| core_path.is_some()),
            path: core_path,
            size: saved.outcome.size,
            stored_bytes: saved.outcome.stored_bytes,
            bytes_received: saved.pumped.bytes_read,
            compression: saved.compression.name().into(),
            truncated_reason: saved.outcome.truncated.clone(),
            not_saved_reason: saved.fate.not_saved_reason().map(str::to_owned),
            deleted_to_make_room: saved.outcome.deleted.clone(),
        },
        chain: saved.chain.clone(),
        snapshots: record::snapshot_entries(&fires),
        core_trace,
        report,
        crash_share,
        core_stall: saved.stall.clone(),
        fires,
        own_snapshots_skipped,
        stages,
        config_path: config_path.to_string_lossy().into_owned(),
        errors: log.problems(),
        log: log.messages().to_vec(),
        live: None,
    }
}

/// 6. The record, next to the core (same name, `.json`), and where it went
///    in the log; when it cannot be written, the whole record goes to the
///    log.
fn write_record(
    mut crash_record: CrashRecord,
    saved: &SavedCore,
    config: &Config,
    owner: Option<u32>,
    log: &mut Log,
) -> Option<std::path::PathBuf> {
    let Some(dir) = &saved.dir else {
        log.error(format!(
            "no safe directory for the crash record; the record was: {}",
            String::from_utf8_lossy(&crash_record.to_json()).replace('\n', " ")
        ));
        return None;
    };
    let record_stem = saved
        .outcome
        .name
        .as_deref()
        .map(|name| name.strip_suffix(saved.extension).unwrap_or(name))
        .unwrap_or(&saved.stem);
    crash_record.log.push(crate::base::syslog::Message {
        severity: crate::base::syslog::Severity::Info,
        text: "crash record written".into(),
    });
    let name = |n: u32| numbered(record_stem, n, ".json");
    let policy = SpacePolicy {
        max_dir_size: config.max_dir_size,
        min_free: config.min_free,
    };
    match crash_record.write_within(dir.fd.as_fd(), policy, owner, saved.readable_by, name) {
        Ok(written) => {
            for deleted in &written.deleted {
                log.notice(format!(
                    "deleted old crash {deleted} to make room for a record"
                ));
            }
            for error in &written.errors {
                log.warning(error.clone());
            }
            log.info(format!(
                "crash record {}",
                dir.path.join(&written.name).display()
            ));
            if let Some(report) = &written.report {
                log.info(format!(
                    "the crash's report {}",
                    dir.path.join(report).display()
                ));
            }
            if let Some(copy) = &written.user_copy {
                log.info(format!(
                    "the crashing user's copy of the record {}",
                    dir.path.join(copy).display()
                ));
            }
            Some(dir.path.join(&written.name))
        }
        Err(err) => {
            log.error(format!(
                "cannot write the crash record in {}: {err}; the record was: {}",
                dir.path.display(),
                String::from_utf8_lossy(&crash_record.to_json()).replace('\n', " ")
            ));
            None
        }
    }
}

/// 6b. The crash's journal entry (`crash::journal`), naming the record;
///     where journald does not run, the syslog line is the only one.
fn send_journal_entry(
    mut crash: lttng_coredump_journal::Crash,
    record_path: Option<&Path>,
    config: &Config,
    log: &mut Log,
) {
    crash.record = record_path.map(|p| p.to_string_lossy().into_owned());
    let sent = or_if_it_panics(
        || crate::crash::journal::send(&crash, &config.journal_socket).map_err(|e| e.to_string()),
        || Err("sending the journal entry panicked".into()),
    );
    match sent {
        Ok(said) => log.info(said),
        Err(err) => log.info(format!("no journal entry: {err}")),
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

fn comm_for_log(comm: Option<&[u8]>) -> String {
    comm.map(for_log).unwrap_or_else(|| "?".into())
}

/// The PID for a message or a name, `unknown` when the kernel gave none.
fn pid_or(context: &CrashContext, unknown: &str) -> String {
    context
        .pid
        .map(|p| p.to_string())
        .unwrap_or_else(|| unknown.into())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::path::PathBuf;

    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A core directory and a configuration for it; the log goes to files
    /// of the scratch directory, not the system log.
    fn scratch(tag: &str, extra: &str) -> (Scratch, PathBuf, Log) {
        let dir = std::env::temp_dir().join(format!("handler-handle-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = 1\n\
                 snapshot_active_sessions = false\nsnapshot_user_daemon = false\n{extra}\n",
                dir.join("cores").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("kmsg"), "").unwrap();
        let log = Log::new(dir.join("no-syslog"), dir.join("kmsg"));
        (Scratch(dir), config, log)
    }

    fn args(config: &Path, fields: &[&str]) -> Vec<OsString> {
        let mut args = vec![OsString::from("--config"), config.as_os_str().to_owned()];
        args.extend(fields.iter().map(OsString::from));
        args
    }

    fn record_of(cores: &Path) -> serde_json::Value {
        let name = std::fs::read_dir(cores)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .find(|n| n.as_bytes().ends_with(b".json"))
            .expect("a record");
        serde_json::from_slice(&std::fs::read(cores.join(name)).unwrap()).unwrap()
    }

    #[test]
    fn garbage_arguments_still_save_the_core() {
        let (dir, config, mut log) = scratch("garbage", "");
        let core: Vec<u8> = (0..3_000_000u32).map(|i| (i % 7) as u8).collect();
        let verdict = handle(
            args(&config, &["P=notanumber", "junk", "e=../x\ny"]),
            &mut &core[..],
            &mut log,
        );
        assert_eq!(verdict, Verdict::Done);
        let cores = dir.0.join("cores");
        let record = record_of(&cores);
        assert_eq!(record["core"]["complete"], true, "{record:#}");
        let path = PathBuf::from(record["core"]["path"].as_str().unwrap());
        assert_eq!(path.parent().unwrap(), cores);
        assert!(path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("core._._x_y.unknown."));
        assert_eq!(std::fs::read(&path).unwrap(), core);
        assert_eq!(record["process_identity"]["state"], "could_not_tell");
        let errors = record["errors"].to_string();
        assert!(
            errors.contains("field P= is not a valid number"),
            "{errors}"
        );
        assert!(errors.contains("not KEY=VALUE"), "{errors}");
        // Nothing reached a syslog socket: the kernel log file got it all.
        let kmsg = std::fs::read_to_string(dir.0.join("kmsg")).unwrap();
        assert!(kmsg.contains("saved to"), "{kmsg}");
    }

    #[test]
    fn the_record_says_whether_and_why_the_core_trace_was_not_checked() {
        // Not an ELF core: checked, found unusable, said so.
        let (dir, config, mut log) = scratch("coretrace", "");
        let core: Vec<u8> = (0..100_000u32).map(|i| (i % 11) as u8).collect();
        handle(args(&config, &["e=x"]), &mut &core[..], &mut log);
        let record = record_of(&dir.0.join("cores"));
        let section = &record["core_trace"];
        assert_eq!(section["checked"], false, "{section:#}");
        assert!(
            section["not_checked_reason"]
                .as_str()
                .unwrap()
                .contains("not a usable ELF core"),
            "{section:#}"
        );
        assert!(record["stages"]["core_trace"]["started_unix_us"].as_u64() > Some(0));
        drop(dir);
        // Turned off.
        let (dir, config, mut log) = scratch("coretrace-off", "check_core_trace = false");
        handle(args(&config, &["e=x"]), &mut &core[..], &mut log);
        let record = record_of(&dir.0.join("cores"));
        assert_eq!(
            record["core_trace"]["not_checked_reason"],
            "turned off (check_core_trace = false)"
        );
        assert_eq!(record["stages"]["core_trace"]["started_unix_us"], 0);
        drop(dir);
        // No core saved.
        let (dir, config, mut log) = scratch("coretrace-nocore", "save_core = false");
        handle(args(&config, &["e=x"]), &mut &core[..], &mut log);
        let record = record_of(&dir.0.join("cores"));
        assert!(
            record["core_trace"]["not_checked_reason"]
                .as_str()
                .unwrap()
                .starts_with("no core saved (saving cores is turned off"),
            "{record:#}"
        );
    }

    #[test]
    fn the_record_says_why_a_crash_has_no_report() {
        // Not an ELF core: analyzed (as the service account: no uid was
        // given), refused, said so; not one of the handler's errors.
        let (dir, config, mut log) = scratch("report", "journal = false");
        let core: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();
        handle(args(&config, &["e=x"]), &mut &core[..], &mut log);
        let record = record_of(&dir.0.join("cores"));
        let section = &record["report"];
        assert_eq!(section["analyzed"], false, "{section:#}");
        assert_eq!(
            section["analyzed_as_uid"],
            crate::crash::report::SERVICE_UID
        );
        assert!(
            section["not_analyzed_reason"]
                .as_str()
                .unwrap()
                .starts_with("analysis failed: "),
            "{section:#}"
        );
        assert!(
            !record["errors"].to_string().contains("analysis"),
            "{record:#}"
        );
        assert!(record["stages"]["report"]["started_unix_us"].as_u64() > Some(0));
        drop(dir);
        // Turned off.
        let (dir, config, mut log) = scratch("report-off", "report = false");
        handle(args(&config, &["e=x"]), &mut &core[..], &mut log);
        let record = record_of(&dir.0.join("cores"));
        assert_eq!(
            record["report"]["not_analyzed_reason"],
            "turned off (report = false)"
        );
        assert_eq!(record["stages"]["report"]["started_unix_us"], 0);
        drop(dir);
        // No core saved.
        let (dir, config, mut log) = scratch("report-nocore", "save_core = false");
        handle(args(&config, &["e=x"]), &mut &core[..], &mut log);
        let record = record_of(&dir.0.join("cores"));
        assert!(
            record["report"]["not_analyzed_reason"]
                .as_str()
                .unwrap()
                .starts_with("no core saved (saving cores is turned off"),
            "{record:#}"
        );
    }

    /// A process of the test's own, killed and reaped when dropped: the
    /// handler reads `/proc/PID`, so it must only ever be given a PID the
    /// test created (any other is whatever the machine runs there).
    struct OwnProcess(std::process::Child);

    impl OwnProcess {
        /// A `cat`, once it runs as `cat`: `spawn` may return before the
        /// kernel has given the child its new name (it would then read as
        /// the test thread's), so wait for it to echo a line back.
        fn spawn() -> OwnProcess {
            use std::io::{BufRead, Write};
            use std::process::{Command, Stdio};
            let mut child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawning cat");
            let mut stdin = child.stdin.take().expect("piped");
            stdin.write_all(b"ready\n").expect("writing to cat");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.as_mut().expect("piped"))
                .read_line(&mut line)
                .expect("reading from cat");
            assert_eq!(line, "ready\n");
            // Kept open, so that cat waits for more.
            child.stdin = Some(stdin);
            OwnProcess(child)
        }

        fn pid_field(&self) -> String {
            format!("P={}", self.0.id())
        }
    }

    impl Drop for OwnProcess {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn cores_left_out_on_purpose_are_not_lost() {
        let (dir, config, mut log) = scratch("limit0", "max_cores_per_minute = 1");
        let cores = dir.0.join("cores");
        let process = OwnProcess::spawn();
        let verdict = handle(
            args(&config, &[&process.pid_field(), "c=0", "e=x"]),
            &mut &b"core"[..],
            &mut log,
        );
        assert_eq!(verdict, Verdict::Done);
        let record = record_of(&cores);
        assert_eq!(record["core"]["saved"], false);
        assert_eq!(
            record["core"]["not_saved_reason"],
            "the process's core size limit is 0 (%c)"
        );
        drop(process);

        // Two crashes of one program within the minute: the second is
        // kept out by the rate limit (named after /proc's name, `cat`).
        for _ in 0..2 {
            let process = OwnProcess::spawn();
            let verdict = handle(
                args(&config, &[&process.pid_field(), "e=loop"]),
                &mut &b"core"[..],
                &mut log,
            );
            assert_eq!(verdict, Verdict::Done);
        }
        let all: Vec<String> = std::fs::read_dir(&cores)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let names: Vec<&String> = all
            .iter()
            .filter(|n| n.starts_with("core.cat.") && !n.ends_with(".json"))
            .collect();
        assert_eq!(names.len(), 1, "{all:?}");
        let records = std::fs::read_dir(&cores)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .as_bytes()
                    .ends_with(b".json")
            })
            .count();
        assert_eq!(records, 3, "every crash keeps its record");
    }
}
