//! OnAnyCoreDump triggers left in the root session daemon by an earlier,
//! interrupted run.

/// Unregisters, as root, every OnAnyCoreDump trigger of the root daemon
/// whose sessions no longer exist: left by an earlier, interrupted run,
/// they would make every fire report an error. Call with
/// [`root_triggers_lock`] held.
pub fn remove_stale_triggers() {
    let sessions: Vec<String> = lttng_ctl::session::list_sessions()
        .expect("listing sessions")
        .into_iter()
        .map(|s| s.name)
        .collect();
    let list = lttng_ctl::trigger::TriggerList::fetch().expect("listing triggers");
    for trigger in list.iter() {
        let info = trigger.info();
        let Some(decoded) = lttng_coredump_engine::encoding::decode(&info) else {
            continue;
        };
        let stale = decoded.actions.iter().all(|a| match a {
            lttng_coredump_engine::encoding::CoreDumpAction::Snapshot { session, .. }
            | lttng_coredump_engine::encoding::CoreDumpAction::Stop { session } => {
                !sessions.contains(session)
            }
            lttng_coredump_engine::encoding::CoreDumpAction::Unsupported { .. } => true,
        });
        if stale {
            let _ = trigger.unregister();
        }
    }
}
