//! What a crash would snapshot right now, for `status`: the OnAnyCoreDump
//! triggers of the root session daemon (through the engine's own listing,
//! so `status` and a real crash agree), the configured sessions, or else
//! the fallback to every active snapshot-mode session.
//!
//! The daemon is asked from a child process killed at a deadline
//! (`lttng_coredump_engine::child::isolate`), so a hung daemon cannot hang `status`.

use crate::base::config::Config;
use lttng_coredump_engine::encoding::{CoreDumpAction, CoreDumpTrigger};
use lttng_coredump_engine::identity::run_json;
use lttng_coredump_engine::list_triggers;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::Duration;

/// A session as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub name: String,
    pub snapshot_mode: bool,
    pub active: bool,
}

/// What the root session daemon holds that a crash would act on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonState {
    pub triggers: Vec<CoreDumpTrigger>,
    pub sessions: Vec<SessionState>,
}

/// Asks the session daemon this process reaches (root: the root daemon),
/// within `deadline`.
pub fn query(deadline: Duration) -> Result<DaemonState, String> {
    run_json(deadline, None, gather).map_err(|err| format!("asking the session daemon: {err}"))?
}

fn gather() -> Result<DaemonState, String> {
    let triggers =
        list_triggers().map_err(|err| format!("listing the OnAnyCoreDump triggers: {err}"))?;
    let sessions = lttng_ctl::list_sessions()
        .map_err(|err| format!("listing the sessions: {err}"))?
        .into_iter()
        .map(|s| SessionState {
            name: s.name,
            snapshot_mode: s.snapshot_mode,
            active: s.enabled,
        })
        .collect();
    Ok(DaemonState { triggers, sessions })
}

fn describe_action(action: &CoreDumpAction) -> String {
    match action {
        CoreDumpAction::Snapshot {
            session,
            output: None,
        } => format!("snapshot session {session:?}"),
        CoreDumpAction::Snapshot {
            session,
            output: Some(output),
        } => format!("snapshot session {session:?} to {}", output.ctrl_url),
        CoreDumpAction::Stop { session } => format!("stop session {session:?}"),
        CoreDumpAction::Unsupported { description } => {
            format!("{description} (not carried out on a crash)")
        }
    }
}

fn describe_session(state: &DaemonState, name: &str) -> String {
    match state.sessions.iter().find(|s| s.name == name) {
        None => "NOT FOUND in the root session daemon: nothing would be recorded".into(),
        Some(s) if !s.snapshot_mode => "not in snapshot mode: a snapshot of it would fail".into(),
        Some(s) if !s.active => "snapshot mode, not started (its buffers may be empty)".into(),
        Some(_) => "snapshot mode, active".into(),
    }
}

/// What a crash would do now in the root session daemon, for a person.
pub fn describe(state: &DaemonState, config: &Config) -> String {
    let mut out = String::new();
    let w = &mut out;
    if state.triggers.is_empty() {
        writeln!(w, "  OnAnyCoreDump triggers: none").expect("String");
    } else {
        writeln!(w, "  OnAnyCoreDump triggers:").expect("String");
        for trigger in &state.triggers {
            let actions: Vec<String> = trigger.actions.iter().map(describe_action).collect();
            writeln!(
                w,
                "    {} (owner uid {}): {}",
                trigger.display_name(),
                trigger.owner_uid,
                actions.join(", ")
            )
            .expect("String");
        }
    }
    if config.snapshot_sessions.is_empty() {
        writeln!(w, "  configured sessions (snapshot_sessions): none").expect("String");
    } else {
        writeln!(w, "  configured sessions (snapshot_sessions):").expect("String");
        for name in &config.snapshot_sessions {
            writeln!(w, "    {name:?}: {}", describe_session(state, name)).expect("String");
        }
    }
    if state.triggers.is_empty() && config.snapshot_sessions.is_empty() {
        if config.snapshot_active_sessions {
            let active: Vec<&SessionState> = state
                .sessions
                .iter()
                .filter(|s| s.active && s.snapshot_mode)
                .collect();
            if active.is_empty() {
                writeln!(
                    w,
                    "  fallback (snapshot_active_sessions): no active snapshot-mode session: \
                     nothing would be snapshotted"
                )
                .expect("String");
            } else {
                writeln!(
                    w,
                    "  fallback (snapshot_active_sessions): every active snapshot-mode session:"
                )
                .expect("String");
                for session in active {
                    writeln!(w, "    {:?}", session.name).expect("String");
                }
            }
        } else {
            writeln!(
                w,
                "  nothing would be snapshotted: no trigger, no configured session, and \
                 snapshot_active_sessions = false"
            )
            .expect("String");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> DaemonState {
        DaemonState {
            triggers: vec![],
            sessions: vec![
                SessionState {
                    name: "flight".into(),
                    snapshot_mode: true,
                    active: true,
                },
                SessionState {
                    name: "idle".into(),
                    snapshot_mode: true,
                    active: false,
                },
                SessionState {
                    name: "normal".into(),
                    snapshot_mode: false,
                    active: true,
                },
            ],
        }
    }

    #[test]
    fn the_fallback_names_only_active_snapshot_sessions() {
        let text = describe(&state(), &Config::default());
        assert!(text.contains("OnAnyCoreDump triggers: none"), "{text}");
        assert!(
            text.contains("every active snapshot-mode session:\n    \"flight\"\n"),
            "{text}"
        );
        assert!(
            !text.contains("\"idle\"") && !text.contains("\"normal\""),
            "{text}"
        );
        let off = Config {
            snapshot_active_sessions: false,
            ..Config::default()
        };
        assert!(describe(&state(), &off).contains("nothing would be snapshotted"));
    }

    #[test]
    fn triggers_and_configured_sessions_replace_the_fallback() {
        let mut with_trigger = state();
        with_trigger.triggers.push(CoreDumpTrigger {
            name: Some("lttng-coredump:stop:flight".into()),
            owner_uid: 1000,
            actions: vec![CoreDumpAction::Stop {
                session: "flight".into(),
            }],
        });
        let config = Config {
            snapshot_sessions: vec!["normal".into(), "gone".into(), "idle".into()],
            ..Config::default()
        };
        let text = describe(&with_trigger, &config);
        assert!(
            text.contains("lttng-coredump:stop:flight (owner uid 1000): stop session \"flight\""),
            "{text}"
        );
        assert!(text.contains("\"normal\": not in snapshot mode"), "{text}");
        assert!(text.contains("\"gone\": NOT FOUND"), "{text}");
        assert!(
            text.contains("\"idle\": snapshot mode, not started"),
            "{text}"
        );
        assert!(!text.contains("fallback"), "{text}");
    }
}
