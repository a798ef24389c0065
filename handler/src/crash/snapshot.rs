//! Recording the LTTng snapshots of a crash, before the core is read (the
//! kernel holds the crashing process until then, so its trace buffers are
//! still there): fires OnAnyCoreDump in the root session daemon, then in
//! the crashing user's own daemon when there is one, all within one
//! deadline. The engine talks to each daemon from a child process it kills
//! at the deadline it is given (`lttng_coredump_engine::child::isolate`), and the user daemon
//! gets only what the root daemon left of the deadline: a hung session
//! daemon costs at most the deadline in total, never the core.
//!
//! Nothing of the crashing user's is looked at here, as root: whether the
//! user runs a daemon, and whether its run directory can be trusted, is
//! found by the engine's child that has become the user (a path of theirs
//! may be a symbolic link, or on a file system that never answers). A user
//! without a daemon costs that child; its fire stays in the record, marked
//! absent (`daemon_absent`), as the reason no snapshot was taken there, and
//! is no error.

use crate::store::record::DaemonFire;
use lttng_coredump_engine::Workers;
use lttng_coredump_engine::{
    self as engine, ActionPhase, CrashInfo, DaemonTarget, FireOptions, FireReport,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A second daemon is not tried with less time than this left.
const MIN_FIRE_TIME: Duration = Duration::from_millis(100);

/// What to snapshot, from the configuration.
#[derive(Debug, Clone)]
pub struct SnapshotPlan {
    pub deadline: Duration,
    pub extra_sessions: Vec<String>,
    pub fallback_to_active_snapshot_sessions: bool,
    pub user_daemon: bool,
    /// The crash service's resident children, which talk to the daemons,
    /// here or through the service (`None`: a child forked for each
    /// daemon, as the pipe handler does).
    pub workers: Option<Arc<dyn Residents>>,
}

/// Who runs a fire in resident children: the crash service's own
/// [`Workers`], or (for a crash handled in a process of its own) the
/// service, asked through a relay. An error: it could not (the service
/// ended, or did not answer), and the fire is done here, in a child forked
/// for it, with what is left of its deadline.
pub trait Residents: Send + Sync {
    fn fire(&self, crash: &CrashInfo, options: &FireOptions) -> Result<FireReport, String>;
}

impl std::fmt::Debug for dyn Residents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("resident children")
    }
}

impl Residents for Workers {
    fn fire(&self, crash: &CrashInfo, options: &FireOptions) -> Result<FireReport, String> {
        Ok(engine::fire_on_any_core_dump_with(crash, options, self))
    }
}

/// Records the snapshots (every snapshot action, the configured sessions,
/// the fallback) in the root daemon, then in the crashing user's daemon.
/// Stop actions are left for [`run_stops`].
pub fn record_snapshots(
    crash: &CrashInfo,
    uid: Option<u32>,
    plan: &SnapshotPlan,
) -> Vec<DaemonFire> {
    let daemons = std::iter::once(("root".to_string(), DaemonTarget::Default))
        .chain(user_daemon(uid, plan))
        .collect();
    let mut fires = fire_in(daemons, crash, plan, ActionPhase::Snapshots);
    // No daemon runs there (a user who runs none, a machine with no root
    // daemon): the fire stays, as why there is no trace, but is no error,
    // unless the configuration names sessions to snapshot in the root
    // daemon, which could not be.
    for fire in &mut fires {
        let configured =
            matches!(fire.target, Some(DaemonTarget::Default)) && !plan.extra_sessions.is_empty();
        if let Some(report) = fire.report.as_mut().filter(|r| r.daemon_absent) {
            if !configured {
                report.errors.clear();
            }
        }
    }
    fires
}

/// Runs the stop actions the snapshot fires left for later, in the daemons
/// that have some. Called once the kernel has let the crashed process go: a
/// stop makes the session daemon talk to every application of the session,
/// and a process held by the kernel would make it wait its app socket
/// timeout.
pub fn run_stops(
    crash: &CrashInfo,
    snapshot_fires: &[DaemonFire],
    plan: &SnapshotPlan,
) -> Vec<DaemonFire> {
    let daemons = snapshot_fires
        .iter()
        .filter(|fire| fire.report.as_ref().is_some_and(|r| r.deferred_stops > 0))
        .filter_map(|fire| Some((fire.daemon.clone(), fire.target.clone()?)))
        .collect();
    fire_in(daemons, crash, plan, ActionPhase::Stops)
}

/// The crashing user's own daemon, when the plan wants it (whether there is
/// one is found by the engine, as the user).
fn user_daemon(uid: Option<u32>, plan: &SnapshotPlan) -> Option<(String, DaemonTarget)> {
    let uid = uid.filter(|&uid| uid != 0 && plan.user_daemon)?;
    Some((format!("user {uid}"), DaemonTarget::User(uid)))
}

/// Fires `phase` in each daemon in turn, all within one deadline.
fn fire_in(
    daemons: Vec<(String, DaemonTarget)>,
    crash: &CrashInfo,
    plan: &SnapshotPlan,
    phase: ActionPhase,
) -> Vec<DaemonFire> {
    let started = Instant::now();
    let mut fires = Vec::new();
    for (daemon, target) in daemons {
        let left = plan.deadline.saturating_sub(started.elapsed());
        if left < MIN_FIRE_TIME {
            fires.push(DaemonFire {
                daemon,
                target: None,
                report: None,
                error: Some("not tried: the deadline was used up by the daemons before it".into()),
            });
            continue;
        }
        fires.push(fire(daemon, crash, target, plan, left, phase));
    }
    fires
}

fn fire(
    daemon: String,
    crash: &CrashInfo,
    target: DaemonTarget,
    plan: &SnapshotPlan,
    deadline: Duration,
    phase: ActionPhase,
) -> DaemonFire {
    let options = FireOptions {
        deadline,
        daemon: target.clone(),
        extra_sessions: plan.extra_sessions.clone(),
        fallback_to_active_snapshot_sessions: plan.fallback_to_active_snapshot_sessions,
        phase,
    };
    // No thread of our own to time it out: the engine already forks a
    // child per daemon conversation and kills it at the deadline, and a
    // thread left behind could not be stopped anyway.
    let started = Instant::now();
    let relayed = match &plan.workers {
        Some(workers) => workers.fire(crash, &options),
        None => Err(String::new()),
    };
    let report = match relayed {
        Ok(report) => report,
        Err(why) => {
            let left = deadline.saturating_sub(started.elapsed());
            if left < MIN_FIRE_TIME {
                return DaemonFire {
                    daemon,
                    target: Some(target),
                    report: None,
                    error: Some(format!("{why}, with no time left to fire again")),
                };
            }
            engine::fire_on_any_core_dump(
                crash,
                &FireOptions {
                    deadline: left,
                    ..options
                },
            )
        }
    };
    DaemonFire {
        daemon,
        target: Some(target),
        report: Some(report),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fire_returns_a_report_or_a_reason_within_the_deadline() {
        // The test's own PID: never one of whatever else runs on the machine.
        let crash = CrashInfo {
            pid: std::process::id() as i32,
            uid: 0,
            gid: 0,
            exec_name: "x".into(),
            hostname: "h".into(),
            time: 0,
        };
        let plan = SnapshotPlan {
            deadline: Duration::from_secs(2),
            extra_sessions: vec!["handler-unit-no-such-session".into()],
            fallback_to_active_snapshot_sessions: false,
            user_daemon: true,
            workers: None,
        };
        let started = Instant::now();
        let fires = record_snapshots(&crash, Some(0), &plan);
        assert!(started.elapsed() < plan.deadline + Duration::from_millis(700));
        assert_eq!(fires.len(), 1);
        assert_eq!(fires[0].daemon, "root");
        assert!(fires[0].report.is_some() || fires[0].error.is_some());
    }
}
