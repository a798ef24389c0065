//! The LTTng snapshots of a live core, taken while every thread of the
//! process is stopped, so that the trace ends where the core begins: the
//! engine's OnAnyCoreDump fire (its triggers, the configured sessions, the
//! fallback), in the root session daemon and then in the process owner's
//! own daemon, as the core_pattern handler does for a crash
//! (handler/src/snapshot.rs), all within one deadline. Stop actions are
//! left out: a stop makes the daemon talk to every application of the
//! session, the stopped process included, which cannot answer.
//!
//! Who acts where: root fires in the root daemon, then in the owner's
//! daemon as the owner; a user fires in the root daemon only when they may
//! reach it (root or the `tracing` group), and in their own daemon.

use crate::report::SnapshotFire;
use crate::SnapshotPlan;
use lttng_coredump_engine::identity::Identity;
use lttng_coredump_engine::{self as engine, ActionPhase, CrashInfo, DaemonTarget, FireOptions};
use std::time::{Duration, Instant};

/// A second daemon is not tried with less time than this left.
const MIN_FIRE_TIME: Duration = Duration::from_millis(100);

/// The daemons to fire in, decided in the caller's process before the
/// dumping child is forked (it looks the caller up in the user database).
#[derive(Debug, Clone)]
pub struct Daemons(Vec<(String, DaemonTarget)>);

impl Daemons {
    /// For a caller of uid `caller` dumping a process of uid `owner`.
    pub fn for_dump(caller: u32, owner: u32, plan: &SnapshotPlan) -> Daemons {
        let mut daemons = Vec::new();
        if caller == 0 {
            daemons.push(("root".to_string(), DaemonTarget::Default));
            if plan.user_daemon && owner != 0 {
                daemons.push((format!("user {owner}"), DaemonTarget::User(owner)));
            }
        } else {
            let reaches_root = Identity::of_user(caller).is_ok_and(|id| id.can_reach_root_daemon());
            if reaches_root {
                daemons.push(("root".to_string(), DaemonTarget::User(0)));
            }
            if plan.user_daemon {
                daemons.push((format!("user {caller}"), DaemonTarget::User(caller)));
            }
        }
        Daemons(daemons)
    }
}

/// Fires the snapshots in each daemon in turn, within the plan's deadline.
pub fn take(crash: &CrashInfo, plan: &SnapshotPlan, daemons: &Daemons) -> Vec<SnapshotFire> {
    let started = Instant::now();
    let mut fires = Vec::new();
    for (daemon, target) in &daemons.0 {
        let left = plan.deadline.saturating_sub(started.elapsed());
        if left < MIN_FIRE_TIME {
            fires.push(SnapshotFire {
                daemon: daemon.clone(),
                report: None,
                error: Some("not tried: the deadline was used up by the daemons before it".into()),
            });
            continue;
        }
        let options = FireOptions {
            deadline: left,
            daemon: target.clone(),
            extra_sessions: plan.extra_sessions.clone(),
            fallback_to_active_snapshot_sessions: plan.fallback_to_active_snapshot_sessions,
            phase: ActionPhase::Snapshots,
        };
        let report = engine::fire_on_any_core_dump(crash, &options);
        // No daemon there (a user who runs none): nothing to say, unless
        // sessions were named for the root daemon.
        let named = matches!(target, DaemonTarget::Default) && !plan.extra_sessions.is_empty();
        if report.daemon_absent && !named {
            continue;
        }
        fires.push(SnapshotFire {
            daemon: daemon.clone(),
            report: Some(report),
            error: None,
        });
    }
    fires
}
