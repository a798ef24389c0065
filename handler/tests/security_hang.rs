//! The handler never waits without a bound, and what it leaves to a
//! privilege-dropped child is only that child's own (issue 10, items 3 and
//! 4), played by a real unprivileged user through the real kernel
//! `core_pattern`:
//!
//! The user's session daemon gives a snapshot output on the user's own FUSE
//! file system, which never answers (`tests/fixtures/hangfs.c`): whatever
//! looks at that path waits in the kernel uninterruptibly, SIGKILL or not.
//! While the handler's child is held there, its descriptors are looked at
//! from outside (`/proc/PID/fd`): only its channel to the handler (a socket) and `/dev/null` on
//! 0, 1 and 2, never the kernel's core pipe or the crashed process's pidfd.
//! The handler still writes its record, saves the core and exits within
//! the deadline (plus the time to read the core); the child it could not
//! reap is left behind and ends when the file system is aborted.
//!
//! The same look at the child of the stop phase (after the core is saved,
//! when the handler holds the core file and its directory), held by the
//! user's own daemon that never answers a stop (LD_PRELOAD of theirs).

use lttng_coredump_engine::ActionKind;
use std::time::Duration;
use testsupport::attacker::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::users::TestUser;
use testsupport::TempDir;

/// Wide enough that the root daemon's fire, before it, never uses it all
/// (the user's fire must start); the user's is then missed for certain.
const DEADLINE_SECS: u64 = 20;
/// The deadline, the handler's own grace, and wide room for a loaded
/// machine; a handler that waits for the held child never ends at all.
const CRASH_BOUND: Duration = Duration::from_secs(DEADLINE_SECS + 30);

#[test]
fn a_user_path_that_never_answers_costs_the_deadline_and_the_child_holds_only_its_pipe() {
    let dir = TempDir::new("lcdsec-hang");
    let cores = dir.path().join("cores");
    let log = AttackerLog::new("lcdsec-hang");
    let mut user = TestUser::create("lcdsec-hang", false);
    user.start_sessiond();
    let mountpoint = user.home.join("fuse");
    let output = mountpoint.join("traces");
    std::fs::create_dir_all(&mountpoint).unwrap();
    std::os::unix::fs::chown(&mountpoint, Some(user.uid), Some(user.gid)).unwrap();
    user_snapshot_session(&user, "hang", &output);
    user.set_trigger_in_own_daemon("hang", ActionKind::Snapshot);
    // Mounted last: the session daemon never looks at the output path
    // before a snapshot.
    let mount = HangingMount::mount(&user, &mountpoint, &log.path("held"));
    let handler = InstalledHandler::new(
        handler_binary!(),
        &format!(
            "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = {DEADLINE_SECS}\n\
         snapshot_active_sessions = false\nsnapshot_user_daemon = true\n",
            cores.display()
        ),
    );

    let (mut crash, pid) = start_as(&user, CRASH);
    assert!(
        mount.wait_until_holding(CRASH_BOUND),
        "nothing ever looked at the user's snapshot output"
    );
    // The process held on the user's path: a child of the handler, as the user.
    let handlers = processes_running(&handler.binary);
    let held: Vec<(i32, i32)> = handlers
        .iter()
        .flat_map(|&h| children_of(h).into_iter().map(move |child| (h, child)))
        .filter(|&(_, child)| process_uid(child) == Some(user.uid))
        .collect();
    assert_eq!(
        held.len(),
        1,
        "handlers {handlers:?}, their children as the user {held:?}"
    );
    let (handler_pid, held) = held[0];
    let fds = descriptors(held);
    let foreign = foreign_descriptors(&fds, &descriptors(handler_pid));

    let took = wait_within(&mut crash, CRASH_BOUND);
    // Whatever happened, the file system lets go before anything is asserted.
    let still_held = mount.holds_a_request();
    mount.abort();
    let mut failures = Vec::new();
    if let Some(fds) = foreign {
        failures.push(format!(
            "the user's child holds more than its channel and /dev/null: {fds}"
        ));
    }
    if took.is_none() {
        failures.push(format!(
            "the crash did not end within {CRASH_BOUND:?}: the handler waits for its held child"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(still_held);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let errors = errors(&record);
    assert!(
        errors.contains(&format!("user {}", user.uid)) && errors.contains("left behind"),
        "the record must say the user's daemon's child was given up on: {record:#}"
    );
    // The handler ends (it writes the record, then expires old crashes and
    // exits: waited for, boundedly, as the record comes before its exit);
    // the child it left behind ends once the file system lets go (it is
    // then init's to reap).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !matches!(process_state(handler_pid), None | Some('Z')) {
        assert!(
            std::time::Instant::now() < deadline,
            "the handler {handler_pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !matches!(process_state(held), None | Some('Z')) {
        assert!(
            std::time::Instant::now() < deadline,
            "the child left behind did not end once the file system was aborted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(handler);
    drop(mount);
}

/// What a privilege-dropped child of the handler holds that it must not:
/// it may have `/dev/null` on 0, 1, 2, its channel to the handler on 3 (a
/// socket, of which the handler holds the other end), and sockets of its
/// own (its connection to the session daemon); nothing else, and nothing
/// its parent, the handler, also holds.
fn foreign_descriptors(child: &[(i32, String)], handler: &[(i32, String)]) -> Option<String> {
    let channel = child
        .iter()
        .any(|(fd, target)| *fd == 3 && target.starts_with("socket:"));
    let wrong = child.iter().any(|(fd, target)| match fd {
        0..=2 => target != "/dev/null",
        _ => !target.starts_with("socket:") || handler.iter().any(|(_, theirs)| theirs == target),
    });
    (wrong || !channel).then(|| format!("child {child:?}, handler {handler:?}"))
}

#[test]
fn the_stop_phase_child_holds_neither_the_core_nor_its_directory() {
    // Wide: the snapshot phase must get through the daemon within it, and
    // the test looks at the held child before it passes.
    const STOP_DEADLINE_SECS: u64 = 40;
    let dir = TempDir::new("lcdsec-stopfd");
    let cores = dir.path().join("cores");
    let log = AttackerLog::new("lcdsec-stopfd");
    let daemon_log = log.path("daemon.log");
    let mut user = TestUser::create("lcdsec-stopfd", false);
    // The user's own daemon answers until it is asked to stop a session
    // (lttng-tools 2.13's LTTNG_STOP_TRACE, 17), then never again: the
    // handler's stop-phase child waits on it until the deadline.
    user.start_sessiond_with_env(&[
        ("LD_PRELOAD", HOSTILE_SESSIOND),
        ("HOSTILE_CREDS_LOG", daemon_log.to_str().unwrap()),
        ("HOSTILE_HANG_CMD", "17"),
    ]);
    user_snapshot_session(&user, "stopfd", &user.home.join("traces"));
    user.set_trigger_in_own_daemon("stopfd", ActionKind::Stop);
    let handler = InstalledHandler::new(
        handler_binary!(),
        &format!(
            "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = {STOP_DEADLINE_SECS}\n\
         snapshot_active_sessions = false\nsnapshot_user_daemon = true\n",
            cores.display()
        ),
    );
    let bound = Duration::from_secs(2 * STOP_DEADLINE_SECS + 30);

    let (mut crash, pid) = start_as(&user, CRASH);
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&daemon_log).is_ok_and(|l| l.contains("hang 17")) {
        assert!(
            started.elapsed() < bound,
            "the stop never reached the daemon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Held until the deadline, seconds away: its descriptors, from outside.
    let held: Vec<(i32, i32)> = processes_running(&handler.binary)
        .into_iter()
        .flat_map(|h| children_of(h).into_iter().map(move |child| (h, child)))
        .filter(|&(_, child)| process_uid(child) == Some(user.uid))
        .collect();
    assert_eq!(
        held.len(),
        1,
        "the handler's children as the user: {held:?}"
    );
    let (handler_pid, held) = held[0];
    let foreign = foreign_descriptors(&descriptors(held), &descriptors(handler_pid));
    assert!(
        foreign.is_none(),
        "the stop-phase child holds more than its own: {}",
        foreign.unwrap_or_default()
    );
    // The crashed process was let go when the core was read; the handler
    // writes its record after the stops, once the deadline has passed.
    assert!(
        wait_within(&mut crash, bound).is_some(),
        "the crash did not end within {bound:?}"
    );
    let started = std::time::Instant::now();
    while !matches!(process_state(handler_pid), None | Some('Z')) {
        assert!(
            started.elapsed() < bound,
            "the handler did not end within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert!(
        errors(&record).contains("did not answer within"),
        "{record:#}"
    );
    drop(handler);
}
