//! How an OnAnyCoreDump trigger is stored in the session daemon, as a real
//! LTTng 2.13 trigger (so `lttng list-triggers` shows it and
//! `lttng remove-trigger` removes it):
//!
//! - **condition**: `event-rule-matches` on the user-space tracepoint
//!   [`ON_ANY_CORE_DUMP_TRACEPOINT`] (`lttng_coredump:on_any_core_dump`),
//!   exactly that name, with no filter, exclusion or log-level rule. No
//!   program emits this tracepoint: the condition only marks the trigger as
//!   an OnAnyCoreDump one, and the fire (not the session daemon) runs it.
//! - **actions**: a list of `snapshot-session` (optionally with its own
//!   snapshot output) and/or `stop-session`; the triggers this crate
//!   registers hold one. A bare action (not in a list) is accepted when
//!   fired. Other actions are reported as unsupported when fired.
//! - **name**: `lttng-coredump:<snapshot|stop>:<session>` for the triggers
//!   this crate registers. A trigger's name is unique per owner, so setting
//!   the same trigger twice finds the first one and succeeds. Any trigger
//!   with this condition is an OnAnyCoreDump trigger, whatever its name: the
//!   same can be registered with the CLI,
//!   `lttng add-trigger --condition event-rule-matches --type=user
//!   --name=lttng_coredump:on_any_core_dump --action snapshot-session S`.
//! - **owner**: the registering user. When fired, a trigger acts with its
//!   owner's rights (see `fire`).

use super::ActionKind;
use lttng_ctl::session::Session;
use lttng_ctl::trigger::{
    self, caller_uid, Action, ActionInfo, ActionSnapshotOutput, Condition, ConditionInfo,
    EventRule, Trigger, TriggerInfo, TriggerList,
};
use lttng_ctl::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// The reserved tracepoint name of the OnAnyCoreDump condition.
pub const ON_ANY_CORE_DUMP_TRACEPOINT: &str = "lttng_coredump:on_any_core_dump";

/// The prefix of the names of the triggers this crate registers.
pub const TRIGGER_NAME_PREFIX: &str = "lttng-coredump";

/// The name of the trigger running `action` on `session`.
pub fn trigger_name(action: ActionKind, session: &str) -> String {
    let verb = match action {
        ActionKind::Snapshot => "snapshot",
        ActionKind::Stop => "stop",
    };
    format!("{TRIGGER_NAME_PREFIX}:{verb}:{session}")
}

/// Where a snapshot-session action's own output sends the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutput {
    /// A local path (possibly `file://...`) or a relay URL.
    pub ctrl_url: String,
    pub data_url: Option<String>,
    pub max_size: Option<u64>,
}

/// One action of an OnAnyCoreDump trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoreDumpAction {
    Snapshot {
        session: String,
        output: Option<ActionOutput>,
    },
    Stop {
        session: String,
    },
    /// An action a fire does not carry out, described.
    Unsupported {
        description: String,
    },
}

/// An OnAnyCoreDump trigger found in a session daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreDumpTrigger {
    pub name: Option<String>,
    pub owner_uid: u32,
    pub actions: Vec<CoreDumpAction>,
}

impl CoreDumpTrigger {
    /// The name to show for it (`(anonymous)` when it has none).
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("(anonymous)")
    }
}

/// Whether `condition` is the OnAnyCoreDump one.
pub fn is_on_any_core_dump(condition: &ConditionInfo) -> bool {
    matches!(
        condition,
        ConditionInfo::UserTracepoint {
            name_pattern,
            filter: None,
            exclusions,
            has_log_level_rule: false,
        } if name_pattern == ON_ANY_CORE_DUMP_TRACEPOINT && exclusions.is_empty()
    )
}

fn decode_action(action: &ActionInfo) -> CoreDumpAction {
    match action {
        ActionInfo::SnapshotSession { session, output } => CoreDumpAction::Snapshot {
            session: session.clone(),
            output: output.as_ref().map(|o| ActionOutput {
                ctrl_url: o.ctrl_url.clone(),
                data_url: o.data_url.clone(),
                max_size: o.max_size,
            }),
        },
        ActionInfo::StopSession { session } => CoreDumpAction::Stop {
            session: session.clone(),
        },
        ActionInfo::StartSession { session } => CoreDumpAction::Unsupported {
            description: format!("start-session {session:?}"),
        },
        ActionInfo::RotateSession { session } => CoreDumpAction::Unsupported {
            description: format!("rotate-session {session:?}"),
        },
        ActionInfo::Notify => CoreDumpAction::Unsupported {
            description: "notify".into(),
        },
        other => CoreDumpAction::Unsupported {
            description: format!("{other:?}"),
        },
    }
}

/// The OnAnyCoreDump trigger `info` is, if it is one.
pub fn decode(info: &TriggerInfo) -> Option<CoreDumpTrigger> {
    is_on_any_core_dump(&info.condition).then(|| CoreDumpTrigger {
        name: info.name.clone(),
        owner_uid: info.owner_uid,
        actions: info.actions.iter().map(decode_action).collect(),
    })
}

/// The OnAnyCoreDump triggers the caller's session daemon shows it (its
/// own; every user's for root).
pub fn list_triggers() -> Result<Vec<CoreDumpTrigger>> {
    Ok(trigger::list_triggers()?
        .iter()
        .filter_map(decode)
        .collect())
}

/// What [`set_trigger`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    Registered,
    /// The same trigger was already registered by the caller.
    AlreadySet,
}

fn build(session: &str, action: ActionKind) -> Result<Trigger> {
    let rule = EventRule::user_tracepoint(ON_ANY_CORE_DUMP_TRACEPOINT)?;
    let condition = Condition::event_rule_matches(&rule)?;
    let action = match action {
        ActionKind::Snapshot => Action::snapshot_session(session)?,
        ActionKind::Stop => Action::stop_session(session)?,
    };
    // Always a list, as `lttng add-trigger` makes them: the 2.13 CLI's
    // `list-triggers` aborts on a trigger whose action is not a list (it
    // queries the action's errors with an empty action path).
    Trigger::new(&condition, &Action::list(&[action])?)
}

fn expected_actions(session: &str, action: ActionKind) -> Vec<CoreDumpAction> {
    vec![match action {
        ActionKind::Snapshot => CoreDumpAction::Snapshot {
            session: session.to_string(),
            output: None,
        },
        ActionKind::Stop => CoreDumpAction::Stop {
            session: session.to_string(),
        },
    }]
}

/// Registers the OnAnyCoreDump trigger running `action` on `session` (an
/// existing session of the caller's), owned by the caller. Setting it again
/// is not an error.
pub fn set_trigger(session: &str, action: ActionKind) -> Result<SetOutcome> {
    // The daemon accepts triggers naming any session; one that names no
    // session of the caller's is a mistake better reported now than at a
    // crash.
    Session::from_name(session)?.info()?;
    let name = trigger_name(action, session);
    match build(session, action)?.register(&name) {
        Ok(()) => Ok(SetOutcome::Registered),
        Err(err) if err.code() == ErrorCode::TriggerExists => {
            let expected = expected_actions(session, action);
            let existing = TriggerList::fetch()?
                .find(caller_uid(), &name)
                .map(|t| t.info());
            match existing.as_ref().and_then(decode) {
                Some(found) if found.actions == expected => Ok(SetOutcome::AlreadySet),
                _ => Err(Error::with_message(
                    ErrorCode::TriggerExists,
                    format!("another trigger is already registered as {name:?}"),
                    format!("setting the OnAnyCoreDump trigger on session {session:?}"),
                )),
            }
        }
        Err(err) => Err(err),
    }
}

/// Unregisters the caller's OnAnyCoreDump trigger running `action` on
/// `session` ([`ErrorCode::TriggerNotFound`] when there is none). The
/// session need not exist any more.
pub fn unset_trigger(session: &str, action: ActionKind) -> Result<()> {
    let name = trigger_name(action, session);
    let list = TriggerList::fetch()?;
    let found = list
        .iter()
        .find(|t| {
            let info = t.info();
            info.owner_uid == caller_uid()
                && info.name.as_deref() == Some(name.as_str())
                && is_on_any_core_dump(&info.condition)
        })
        .ok_or_else(|| {
            Error::new(
                ErrorCode::TriggerNotFound,
                format!("unsetting the OnAnyCoreDump trigger {name:?}"),
            )
        })?;
    found.unregister()
}

/// The snapshot output a [`ActionOutput`] describes, for recording.
pub fn to_ctl_output(output: &ActionOutput) -> ActionSnapshotOutput {
    ActionSnapshotOutput {
        ctrl_url: output.ctrl_url.clone(),
        data_url: output.data_url.clone(),
        name: None,
        max_size: output.max_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(pattern: &str, filter: Option<&str>) -> ConditionInfo {
        ConditionInfo::UserTracepoint {
            name_pattern: pattern.into(),
            filter: filter.map(str::to_string),
            exclusions: Vec::new(),
            has_log_level_rule: false,
        }
    }

    #[test]
    fn names_are_derived_from_action_and_session() {
        assert_eq!(
            trigger_name(ActionKind::Snapshot, "s1"),
            "lttng-coredump:snapshot:s1"
        );
        assert_eq!(
            trigger_name(ActionKind::Stop, "s1"),
            "lttng-coredump:stop:s1"
        );
    }

    #[test]
    fn only_the_exact_reserved_condition_is_on_any_core_dump() {
        assert!(is_on_any_core_dump(&condition(
            ON_ANY_CORE_DUMP_TRACEPOINT,
            None
        )));
        assert!(!is_on_any_core_dump(&condition("lttng_coredump:*", None)));
        assert!(!is_on_any_core_dump(&condition(
            ON_ANY_CORE_DUMP_TRACEPOINT,
            Some("x == 1")
        )));
        assert!(!is_on_any_core_dump(&ConditionInfo::Other {
            description: "buffer-usage-high".into()
        }));
    }

    #[test]
    fn built_triggers_decode_as_on_any_core_dump() {
        let info = build("sess", ActionKind::Stop).unwrap().info();
        let decoded = decode(&info).expect("our own encoding is recognized");
        assert_eq!(decoded.actions, expected_actions("sess", ActionKind::Stop));
    }
}
