//! Firing OnAnyCoreDump: running, synchronously and through liblttng-ctl,
//! the actions of every OnAnyCoreDump trigger of a session daemon, then the
//! extra sessions, then (when nothing else applied) the fallback.
//!
//! Every step talks to the daemon from a short-lived child process
//! (`child::isolate`), so that a daemon that hangs costs at most the
//! deadline, and so that each trigger acts with its **owner's** rights:
//!
//! 1. A first child, with the identity of the target (the caller, or the
//!    owner of a per-user daemon), lists the triggers (root sees every
//!    user's), runs those owned by that identity, the extra sessions and
//!    the fallback, and sends back its report and the triggers of other
//!    owners.
//! 2. In the root daemon, for each other owner, a child that has become
//!    that user (with their groups: it reaches the root daemon only if the
//!    owner could) runs that owner's triggers. The session daemon then
//!    applies its own rule: a user may only act on their own sessions. A
//!    user's trigger naming root's session does nothing to it, and the
//!    report says why.
//!
//! A per-user daemon is the user's own program and may say anything,
//! including that it holds triggers of other owners: there, only the
//! triggers of the daemon's user are fired (by a child that is that user);
//! the others are reported as refused and never acted on, so that a user
//! can never choose whom root becomes. Before it asks a per-user daemon
//! anything, the first child (already that user) checks its run directory
//! (`target::check_own_run_dir`).
//!
//! Snapshots are named after the crash and the session (see
//! `snapshot_name`); where each one went is found from the session's
//! snapshot output (or the action's own).

use super::encoding::{self, ActionOutput, CoreDumpAction, CoreDumpTrigger};
use super::snapshot_name::{session_snapshot_name, snapshot_name};
use super::target::{self, Daemon};
use super::{
    ActionKind, ActionOutcome, ActionPhase, CrashInfo, FireError, FireOptions, FireReport,
};
use crate::identity::{run_as, Identity};
use crate::workers::Workers;
use lttng_ctl::session::{list_sessions, Session};
use lttng_ctl::snapshot::{SnapshotDestination, SnapshotLocation, SnapshotOutput};
use lttng_ctl::trigger::caller_uid;
use lttng_ctl::{Error, ErrorCode, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// An LTTng error as the report carries it.
pub fn fire_error(err: &Error) -> FireError {
    FireError {
        code: err.raw_code() as i32,
        message: err.to_string(),
    }
}

/// What the first child reports.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DaemonPass {
    outcomes: Vec<ActionOutcome>,
    errors: Vec<FireError>,
    /// OnAnyCoreDump triggers owned by someone else, to run as their owner.
    foreign: Vec<CoreDumpTrigger>,
    /// The acting identity's own triggers that carry a stop action, so that
    /// a snapshots-only fire can say how many stops it left for later.
    own_with_stops: Vec<CoreDumpTrigger>,
    /// No daemon runs there: the per-user daemon's run directory has no
    /// client socket (nothing was asked), or, acting as root, the root
    /// daemon's client socket does not exist.
    #[serde(default)]
    absent: bool,
}

/// What a child acting as another trigger owner reports.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ForeignPass {
    outcomes: Vec<ActionOutcome>,
    errors: Vec<FireError>,
}

/// The work of one child (see the module documentation), as data, so that
/// a resident child (`workers`) can be given it as well as a forked one.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Work {
    /// The first pass in a daemon: [`DaemonPass`]. Acting as a user (a
    /// per-user daemon), the run directory is checked first.
    Daemon {
        acting_uid: u32,
        name: String,
        extra_sessions: Vec<String>,
        fallback: bool,
        phase: ActionPhase,
    },
    /// The triggers of another owner in the root daemon, as that owner:
    /// [`ForeignPass`].
    Owner {
        triggers: Vec<CoreDumpTrigger>,
        name: String,
        phase: ActionPhase,
        /// How the errors say whose rights were used.
        acting_as: String,
    },
}

impl Work {
    /// Runs the work in this (child) process, which is `identity` (none:
    /// the caller); returns its JSON answer.
    pub(crate) fn run(&self, identity: Option<&Identity>) -> Vec<u8> {
        let answer = match self {
            Work::Daemon {
                acting_uid,
                name,
                extra_sessions,
                fallback,
                phase,
            } => serde_json::to_vec(&daemon_pass(
                identity,
                *acting_uid,
                name,
                extra_sessions,
                *fallback,
                *phase,
            )),
            Work::Owner {
                triggers,
                name,
                phase,
                acting_as,
            } => {
                let (mut outcomes, errors) =
                    run_triggers(triggers, name, &mut HashSet::new(), *phase);
                // The daemon's refusal alone ("Permission denied") would
                // not say whose rights were used.
                for error in outcomes.iter_mut().filter_map(|o| o.error.as_mut()) {
                    error.message = format!("{} ({acting_as})", error.message);
                }
                serde_json::to_vec(&ForeignPass { outcomes, errors })
            }
        };
        answer.unwrap_or_default()
    }
}

/// How a fire runs its children's work.
#[derive(Clone, Copy)]
pub(crate) enum Isolation<'a> {
    /// A child forked for each piece of work (`identity::run_as`).
    Fork,
    /// The resident children of a long-running caller.
    Resident(&'a Workers),
}

impl Isolation<'_> {
    fn run_json<T: DeserializeOwned>(
        self,
        deadline: Duration,
        identity: Option<&Identity>,
        work: &Work,
    ) -> Result<T> {
        let bytes = match self {
            Isolation::Fork => run_as(deadline, identity, || work.run(identity))?,
            Isolation::Resident(workers) => workers.run(deadline, identity, work)?,
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::with_message(
                ErrorCode::Fatal,
                format!("unreadable answer from the isolated child: {e}"),
                "reading what an isolated child sent back",
            )
        })
    }
}

/// The first pass, in the child: whether the daemon has a client socket at
/// all, checked before anything is asked, then [`first_pass`]. No socket is
/// no daemon, which is no failure of the fire (a machine where no root
/// daemon was started, or one stopped cleanly, which removes its socket).
/// A socket nobody answers is a daemon that died: [`first_pass`]'s error.
/// - A per-user daemon: its run directory, checked as its user.
/// - The root daemon, acting as root: its socket (a path of root's).
fn daemon_pass(
    identity: Option<&Identity>,
    acting_uid: u32,
    name: &str,
    extra_sessions: &[String],
    fallback: bool,
    phase: ActionPhase,
) -> DaemonPass {
    let has_socket = match identity {
        Some(identity) => target::check_own_run_dir(identity),
        None if acting_uid == 0 => Ok(root_client_socket_exists()),
        None => Ok(true),
    };
    match has_socket {
        Ok(true) => {}
        Ok(false) => {
            return DaemonPass {
                absent: true,
                ..DaemonPass::default()
            }
        }
        Err(err) => {
            return DaemonPass {
                errors: vec![fire_error(&err)],
                ..DaemonPass::default()
            }
        }
    }
    first_pass(acting_uid, name, extra_sessions, fallback, phase)
}

/// Fires OnAnyCoreDump (see the module documentation).
pub fn fire(crash: &CrashInfo, options: &FireOptions) -> FireReport {
    fire_with(crash, options, Isolation::Fork)
}

/// [`fire`], its children's work run as `isolation` says.
pub(crate) fn fire_with(
    crash: &CrashInfo,
    options: &FireOptions,
    isolation: Isolation<'_>,
) -> FireReport {
    let started = Instant::now();
    let left = || options.deadline.checked_sub(started.elapsed());
    let mut report = FireReport::default();
    let daemon = match target::resolve(&options.daemon, options.deadline) {
        Ok(daemon) => daemon,
        Err(err) => {
            // A uid with no user has no daemon either.
            report.daemon_absent = matches!(options.daemon, super::DaemonTarget::User(_))
                && err.code() == ErrorCode::Invalid;
            report.errors.push(fire_error(&err));
            return report;
        }
    };
    let name = snapshot_name(crash);
    let acting_uid = daemon.identity().map_or_else(caller_uid, Identity::uid);

    let Some(deadline) = left() else {
        report.errors.push(deadline_passed(&daemon));
        return report;
    };
    let per_user = matches!(daemon, Daemon::PerUser(_));
    let work = Work::Daemon {
        acting_uid,
        name: name.clone(),
        extra_sessions: options.extra_sessions.clone(),
        fallback: options.fallback_to_active_snapshot_sessions,
        phase: options.phase,
    };
    let pass: Result<DaemonPass> = isolation.run_json(deadline, daemon.identity(), &work);
    let foreign = match pass {
        Ok(pass) if pass.absent => {
            report.daemon_absent = true;
            report.errors.push(fire_error(&Error::with_message(
                ErrorCode::NoSessionDaemon,
                format!(
                    "no session daemon runs there: {} has no client socket",
                    daemon.describe()
                ),
                "firing OnAnyCoreDump",
            )));
            return report;
        }
        Ok(pass) => {
            if !options.phase.stops() {
                // A per-user daemon's other owners are never run.
                let foreign_stops = if per_user { &[][..] } else { &pass.foreign[..] };
                report.deferred_stops = foreign_stops
                    .iter()
                    .chain(&pass.own_with_stops)
                    .flat_map(|t| &t.actions)
                    .filter(|a| matches!(a, CoreDumpAction::Stop { .. }))
                    .count();
            }
            report.outcomes.extend(pass.outcomes);
            report.errors.extend(pass.errors);
            pass.foreign
        }
        Err(err) => {
            let message = if err.code() == ErrorCode::Cancelled {
                // The child's own deadline is what was left of the fire's;
                // the child's message may add that it was left behind.
                let rest = err
                    .message()
                    .split_once("; ")
                    .map(|(_, rest)| format!("; {rest}"))
                    .unwrap_or_default();
                format!(
                    "session daemon did not answer within {} ms: gave up on {}{rest}",
                    options.deadline.as_millis(),
                    daemon.describe()
                )
            } else {
                format!("{err} (in {})", daemon.describe())
            };
            report.errors.push(FireError {
                code: err.raw_code() as i32,
                message,
            });
            return report;
        }
    };

    if let Daemon::PerUser(identity) = &daemon {
        // Reported once, with the snapshots (a stops-only fire follows one).
        if options.phase.snapshots() {
            for trigger in &foreign {
                let err = Error::with_message(
                    ErrorCode::PermissionDenied,
                    format!(
                        "refused: the per-user session daemon of {} (uid {}) lists this trigger as owned by uid {}; in a user's own daemon only that user's triggers are fired, so it was never acted on",
                        identity.user_name(),
                        identity.uid(),
                        trigger.owner_uid
                    ),
                    format!("firing the trigger {:?}", trigger.display_name()),
                );
                report.outcomes.extend(failed_outcomes(trigger, &err));
            }
        }
        return report;
    }
    let mut by_owner: BTreeMap<u32, Vec<CoreDumpTrigger>> = BTreeMap::new();
    // An owner with nothing to do in this phase costs no child process.
    for trigger in foreign.into_iter().filter(|t| has_work(t, options.phase)) {
        by_owner.entry(trigger.owner_uid).or_default().push(trigger);
    }
    for (owner, triggers) in by_owner {
        let result = match left() {
            None => Err(Error::with_message(
                ErrorCode::Cancelled,
                format!(
                    "the fire's deadline of {} ms passed first",
                    options.deadline.as_millis()
                ),
                format!("running the triggers of uid {owner}"),
            )),
            Some(deadline) => owner_identity(owner, &daemon).and_then(|identity| {
                let acting_as = format!(
                    "acting as {} (uid {owner}), the trigger's owner",
                    identity.user_name()
                );
                let work = Work::Owner {
                    triggers: triggers.clone(),
                    name: name.clone(),
                    phase: options.phase,
                    acting_as,
                };
                isolation.run_json::<ForeignPass>(deadline, Some(&identity), &work)
            }),
        };
        match result {
            Ok(pass) => {
                report.outcomes.extend(pass.outcomes);
                report.errors.extend(pass.errors);
            }
            // Each action the owner's triggers asked for is reported as not
            // done, with the reason.
            Err(err) => report
                .outcomes
                .extend(triggers.iter().flat_map(|t| failed_outcomes(t, &err))),
        }
    }
    report
}

fn deadline_passed(daemon: &Daemon) -> FireError {
    fire_error(&Error::with_message(
        ErrorCode::Cancelled,
        "the deadline passed before the session daemon was asked anything",
        format!("firing OnAnyCoreDump in {}", daemon.describe()),
    ))
}

/// The identity a trigger owned by `owner` acts with in `daemon`.
fn owner_identity(owner: u32, daemon: &Daemon) -> Result<Identity> {
    let identity = Identity::of_user(owner)?;
    match daemon {
        // Never: a per-user daemon's other owners are refused (see `fire`).
        Daemon::PerUser(target) => Err(Error::with_message(
            ErrorCode::PermissionDenied,
            format!(
                "refused: uid {owner} is not the user of the per-user session daemon of uid {}",
                target.uid()
            ),
            format!("running the triggers of uid {owner}"),
        )),
        Daemon::Default | Daemon::Root => {
            if identity.can_reach_root_daemon() {
                Ok(identity)
            } else {
                Err(Error::with_message(
                    ErrorCode::PermissionDenied,
                    format!(
                        "the trigger's owner, {} (uid {owner}), is not in the `{}` group any more and cannot reach the root session daemon, so neither can its trigger",
                        identity.user_name(),
                        lttng_ctl::daemon::TRACING_GROUP
                    ),
                    format!("running the triggers of uid {owner}"),
                ))
            }
        }
    }
}

fn failed_outcomes(trigger: &CoreDumpTrigger, err: &Error) -> Vec<ActionOutcome> {
    trigger
        .actions
        .iter()
        .filter_map(|action| {
            let (kind, session) = match action {
                CoreDumpAction::Snapshot { session, .. } => (ActionKind::Snapshot, session),
                CoreDumpAction::Stop { session } => (ActionKind::Stop, session),
                CoreDumpAction::Unsupported { .. } => return None,
            };
            Some(ActionOutcome {
                trigger_name: Some(trigger.display_name().to_string()),
                owner_uid: Some(trigger.owner_uid),
                session: session.clone(),
                action: kind,
                snapshot_path: None,
                error: Some(fire_error(err)),
            })
        })
        .collect()
}

/// Whether `trigger` has an action this phase runs (unsupported actions are
/// reported with the snapshots).
fn has_work(trigger: &CoreDumpTrigger, phase: ActionPhase) -> bool {
    trigger.actions.iter().any(|action| match action {
        CoreDumpAction::Stop { .. } => phase.stops(),
        CoreDumpAction::Snapshot { .. } | CoreDumpAction::Unsupported { .. } => phase.snapshots(),
    })
}

/// In the first child: the triggers of `acting_uid`, the extra sessions,
/// the fallback.
fn first_pass(
    acting_uid: u32,
    name: &str,
    extra_sessions: &[String],
    fallback: bool,
    phase: ActionPhase,
) -> DaemonPass {
    let mut pass = DaemonPass::default();
    let triggers = match encoding::list_triggers() {
        Ok(triggers) => triggers,
        Err(err) => {
            pass.errors.push(fire_error(&err));
            if err.code() == ErrorCode::NoSessionDaemon {
                return pass;
            }
            Vec::new()
        }
    };
    let (own, foreign): (Vec<&CoreDumpTrigger>, Vec<&CoreDumpTrigger>) =
        triggers.iter().partition(|t| t.owner_uid == acting_uid);
    pass.foreign = foreign.into_iter().cloned().collect();
    pass.own_with_stops = own
        .iter()
        .filter(|t| {
            t.actions
                .iter()
                .any(|a| matches!(a, CoreDumpAction::Stop { .. }))
        })
        .map(|t| (*t).clone())
        .collect();
    let mut snapshotted = HashSet::new();
    let (outcomes, errors) = run_triggers(own.iter().copied(), name, &mut snapshotted, phase);
    pass.outcomes.extend(outcomes);
    pass.errors.extend(errors);
    if !phase.snapshots() {
        return pass;
    }
    for session in extra_sessions {
        if snapshotted.insert(session.clone()) {
            pass.outcomes
                .push(snapshot_outcome(None, None, session, None, name));
        }
    }
    if fallback && triggers.is_empty() && extra_sessions.is_empty() {
        match list_sessions() {
            Ok(sessions) => {
                for session in sessions.iter().filter(|s| s.enabled && s.snapshot_mode) {
                    pass.outcomes
                        .push(snapshot_outcome(None, None, &session.name, None, name));
                }
            }
            Err(err) => pass.errors.push(fire_error(&err)),
        }
    }
    pass
}

/// Whether the root session daemon's client socket exists (a path of
/// root's: nothing a user controls).
fn root_client_socket_exists() -> bool {
    std::fs::symlink_metadata(lttng_ctl::daemon::ROOT_CLIENT_SOCKET).is_ok()
}

/// Runs the actions of `triggers` in this process: every snapshot first
/// (a crash's trace is what matters most), then every stop. `snapshotted`
/// holds the sessions already snapshotted to their own output in this fire,
/// which are not snapshotted twice.
fn run_triggers<'a>(
    triggers: impl IntoIterator<Item = &'a CoreDumpTrigger> + Clone,
    name: &str,
    snapshotted: &mut HashSet<String>,
    phase: ActionPhase,
) -> (Vec<ActionOutcome>, Vec<FireError>) {
    let mut outcomes = Vec::new();
    let mut errors = Vec::new();
    for trigger in triggers.clone() {
        for action in &trigger.actions {
            match action {
                CoreDumpAction::Snapshot { .. } if !phase.snapshots() => {}
                CoreDumpAction::Snapshot { session, output } => {
                    if output.is_none() && !snapshotted.insert(session.clone()) {
                        continue;
                    }
                    outcomes.push(snapshot_outcome(
                        Some(trigger.display_name().to_string()),
                        Some(trigger.owner_uid),
                        session,
                        output.as_ref(),
                        name,
                    ));
                }
                CoreDumpAction::Stop { .. } => {}
                CoreDumpAction::Unsupported { .. } if !phase.snapshots() => {}
                CoreDumpAction::Unsupported { description } => errors.push(FireError {
                    code: ErrorCode::Invalid.raw() as i32,
                    message: format!(
                        "trigger {:?} of uid {}: OnAnyCoreDump does not run the action {description}; skipped",
                        trigger.display_name(),
                        trigger.owner_uid
                    ),
                }),
            }
        }
    }
    for trigger in triggers.into_iter().filter(|_| phase.stops()) {
        for action in &trigger.actions {
            if let CoreDumpAction::Stop { session } = action {
                outcomes.push(stop_outcome(trigger, session));
            }
        }
    }
    (outcomes, errors)
}

fn stop_outcome(trigger: &CoreDumpTrigger, session: &str) -> ActionOutcome {
    let error = match Session::from_name(session).and_then(|s| s.stop()) {
        Ok(()) => None,
        // Stopping what is stopped achieves the action.
        Err(err) if err.code() == ErrorCode::AlreadyStopped => None,
        Err(err) => Some(fire_error(&err)),
    };
    ActionOutcome {
        trigger_name: Some(trigger.display_name().to_string()),
        owner_uid: Some(trigger.owner_uid),
        session: session.to_string(),
        action: ActionKind::Stop,
        snapshot_path: None,
        error,
    }
}

fn snapshot_outcome(
    trigger_name: Option<String>,
    owner_uid: Option<u32>,
    session: &str,
    output: Option<&ActionOutput>,
    name: &str,
) -> ActionOutcome {
    let name = session_snapshot_name(name, session);
    let (snapshot_path, error) = match record(session, output, &name) {
        Ok(path) => (Some(path), None),
        Err(err) => (None, Some(fire_error(&err))),
    };
    ActionOutcome {
        trigger_name,
        owner_uid,
        session: session.to_string(),
        action: ActionKind::Snapshot,
        snapshot_path,
        error,
    }
}

/// The snapshot output of a snapshot-session action, for recording.
fn snapshot_output(output: &ActionOutput) -> SnapshotOutput {
    let url = output.ctrl_url.as_str();
    let destination = match (&output.data_url, url.strip_prefix("file://")) {
        (_, Some(path)) => SnapshotDestination::Local(PathBuf::from(path)),
        (None, None) if url.starts_with('/') => SnapshotDestination::Local(PathBuf::from(url)),
        (Some(data), None) if !data.is_empty() && !url.starts_with("net") => {
            SnapshotDestination::RelayUrls {
                control_url: url.to_string(),
                data_url: data.clone(),
            }
        }
        _ => SnapshotDestination::Relay(url.to_string()),
    };
    let mut out = SnapshotOutput::new(destination);
    if let Some(size) = output.max_size {
        out = out.max_size(size);
    }
    out
}

/// Records the snapshot `name` of `session` and says where it went.
fn record(session: &str, output: Option<&ActionOutput>, name: &str) -> Result<String> {
    let output = output.map(snapshot_output);
    let locations =
        Session::from_name(session)?.record_snapshot_and_locate(name, output.as_ref())?;
    Ok(locations
        .iter()
        .map(|location| match location {
            SnapshotLocation::Local(path) => path.display().to_string(),
            SnapshotLocation::Relay { ctrl_url, .. } => format!("{ctrl_url} ({name})"),
        })
        .collect::<Vec<_>>()
        .join(", "))
}
