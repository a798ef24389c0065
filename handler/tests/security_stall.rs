//! Dumps a user can stall (issue 17), played by a real unprivileged user
//! through the real kernel core_pattern: the user's program maps a file of
//! the user's own FUSE file system, which never answers
//! (`tests/fixtures/hangfs.c`'s `/held`), and crashes; the kernel's dump
//! reads that page (is it an ELF header?) and waits on the file system for
//! good, before a byte of the core is sent. The stall is certain: nothing
//! ever answers until the test aborts the connection.
//!
//! - The stall bound: a read that gets nothing for `core_stall_timeout`
//!   aborts the FUSE connections the process maps (the dump then goes on,
//!   and the core is whole but for that page), or, with
//!   `abort_stalled_fuse = false`, ends: the core is kept cut and marked,
//!   the record says why, and the handler exits.
//! - Pipe mode: each dump holds one of the kernel's `core_pipe_limit`
//!   slots until it ends (the dumping task waits in the page fault, not in
//!   the pipe write: the handler's exit frees nothing). One user makes more
//!   stalled crashes at once than there are slots; past their share
//!   (`max_crashes_in_progress_per_user`) the handler aborts the file
//!   system their dump waits on within 2 s, so that only their share stays
//!   held (for the test's whole run: `core_stall_timeout` is an hour), and
//!   another user's crash still gets a slot, a record and its core.
//! - Socket mode: stalled crashes hold the service's workers; one user's
//!   hold at most their share, the rest of theirs wait, and another user's
//!   crash is taken by a free worker.

use std::process::Child;
use std::time::Duration;
use testsupport::attacker::*;
use testsupport::crasher::spawn_gated;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::service::SocketHandler;
use testsupport::users::TestUser;
use testsupport::TempDir;

/// Long enough that nothing of a test's run is ended by it.
const NEVER: &str = "core_stall_timeout = \"1h\"\n";
/// A crash may take this long to be dealt with (2 s of stall, a look at
/// its mappings, its record), on a loaded machine.
const BOUND: Duration = Duration::from_secs(120);

/// `count` mounts of the never-answering file system, each the user's own.
fn mounts(user: &TestUser, log: &AttackerLog, count: usize) -> Vec<HangingMount> {
    (0..count)
        .map(|n| {
            HangingMount::mount(
                user,
                &user.home.join(format!("fuse{n}")),
                &log.path(&format!("held{n}")),
            )
        })
        .collect()
}

/// Lets every crash go at once: as many stalled dumps at once as the
/// user can make.
fn stall_all(user: &TestUser, mounts: &[HangingMount]) -> Vec<(Child, i32)> {
    let mut crashes: Vec<(Child, i32)> = mounts.iter().map(|m| stalling_crash(user, m)).collect();
    for (child, _) in &mut crashes {
        let_go(child);
    }
    crashes
}

/// The attacker's crashes end once their file systems are aborted (every
/// dump goes on), before the user is deleted.
fn let_everything_go(mounts: Vec<HangingMount>, crashes: &mut [(Child, i32)]) {
    drop(mounts);
    wait_until_left(crashes, 0, BOUND);
}

#[test]
fn a_dump_that_never_progresses_is_let_go_or_cut_at_the_stall_bound() {
    let dir = TempDir::new("lcdst-bound");
    let cores = dir.path().join("cores");
    let log = AttackerLog::new("lcdst-bound");
    let user = TestUser::create("lcdst-bound", false);
    let mut mounts = mounts(&user, &log, 2);
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            "core_stall_timeout = 2\nabort_stalled_fuse = false\nmax_cores_per_minute = 0\n",
        ),
    );

    // Not aborted: the read ends, the record says why, and the handler
    // exits while the dump still waits on the file system.
    let (mut cut, cut_pid) = stalling_crash(&user, &mounts[0]);
    let_go(&mut cut);
    let (_, record) = wait_for_record(&cores, cut_pid);
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    assert_eq!(record["core"]["complete"], false, "{record:#}");
    let reason = record["core"]["truncated_reason"].as_str().unwrap();
    assert!(
        reason.contains("the dump stalled") && reason.contains("abort_stalled_fuse = false"),
        "{record:#}"
    );
    let stall = &record["core_stall"];
    assert_eq!(stall["ended_the_read"], true, "{record:#}");
    let found = &stall["stalls"][0]["remedy"]["fuse"][0];
    assert_eq!(found["aborted"], false, "{record:#}");
    assert_eq!(
        found["mount_point"],
        mounts[0].mountpoint.display().to_string(),
        "{record:#}"
    );
    // The crash is still held by its dump (the kernel's slot with it):
    // only the file system can let it go.
    assert!(cut.try_wait().unwrap().is_none());
    assert!(mounts[0].holds_a_request());
    mounts.remove(0);
    assert!(wait_within(&mut cut, BOUND).is_some());

    // Aborted (the default): the dump goes on, the core is whole but for
    // the file system's page, and the record and the log say so.
    handler.set_config(&config_for(
        &cores,
        "core_stall_timeout = 2\nmax_cores_per_minute = 0\n",
    ));
    let (mut freed, freed_pid) = stalling_crash(&user, &mounts[0]);
    let_go(&mut freed);
    assert!(wait_within(&mut freed, BOUND).is_some());
    let (_, record) = wait_for_record(&cores, freed_pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let stall = &record["core_stall"];
    assert_eq!(stall["ended_the_read"], false, "{record:#}");
    let found = &stall["stalls"][0]["remedy"]["fuse"][0];
    assert_eq!(found["aborted"], true, "{record:#}");
    assert!(found["fs_type"].as_str().unwrap().starts_with("fuse"));
    let logged = record["log"].to_string();
    assert!(
        logged.contains("aborted FUSE connection") && logged.contains("left out of the core"),
        "{record:#}"
    );
    drop(handler);
}

#[test]
fn a_users_stalled_dumps_never_take_the_pipe_slots_another_users_crash_needs() {
    const PIPE_LIMIT: u32 = 6;
    const SHARE: usize = 2;
    let dir = TempDir::new("lcdst-pipe");
    let cores = dir.path().join("cores");
    let log = AttackerLog::new("lcdst-pipe");
    let attacker = TestUser::create("lcdst-pipe", false);
    let victim = TestUser::create("lcdst-pipev", false);
    // More stalled crashes at once than the kernel has slots.
    let mounts = mounts(&attacker, &log, PIPE_LIMIT as usize + 3);
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "{NEVER}max_crashes_in_progress_per_user = {SHARE}\nmax_cores_per_minute = 0\n"
            ),
        ),
    );
    handler.guard().set_pipe_limit(PIPE_LIMIT);

    let mut crashes = stall_all(&attacker, &mounts);
    // The kernel skips those past its slots; the handler lets those past
    // the attacker's share go within seconds; only the share stays held.
    let held = wait_until_left(&mut crashes, SHARE, BOUND);
    assert_eq!(held.len(), SHARE, "{held:?}");
    // Their handlers, too, are done (a crash ends when its core is read,
    // its record comes after): only the held ones' handlers run.
    let started = std::time::Instant::now();
    while processes_running(&handler.binary).len() > SHARE {
        assert!(started.elapsed() < BOUND, "handlers still running");
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in &held {
        assert_eq!(
            process_state(*pid),
            Some('D'),
            "crash {pid} is not in its dump"
        );
    }
    let mut let_go_records = 0;
    for (_, pid) in crashes.iter().filter(|(_, pid)| !held.contains(pid)) {
        // The kernel skipped some (no record: the attacker's own loss).
        let Some(record) = record_of(&cores, *pid) else {
            continue;
        };
        let_go_records += 1;
        assert_eq!(record["crash_share"]["past_share"], true, "{record:#}");
        assert_eq!(record["core"]["complete"], true, "{record:#}");
        assert_eq!(
            record["core_stall"]["stalls"][0]["remedy"]["fuse"][0]["aborted"], true,
            "{record:#}"
        );
    }
    assert!(let_go_records > 0, "no crash past the share was handled");

    // Another user's crash, while the attacker holds their share.
    let (pid, record) = crash_and_record(victim.command("/bin/sh").args(["-c", CRASH]), &cores);
    assert_eq!(record["core"]["complete"], true, "{pid}: {record:#}");
    assert_eq!(record["crash_share"]["past_share"], false, "{record:#}");
    let core = std::fs::metadata(record["core"]["path"].as_str().unwrap()).unwrap();
    assert!(core.len() > 0);
    for pid in &held {
        assert_eq!(process_state(*pid), Some('D'), "{pid} was let go meanwhile");
    }

    drop(handler);
    let_everything_go(mounts, &mut crashes);
}

#[test]
fn a_users_stalled_dumps_hold_at_most_their_share_of_the_services_workers() {
    const WORKERS: usize = 3;
    const SHARE: usize = 2;
    let dir = TempDir::new("lcdst-sock");
    let cores = dir.path().join("cores");
    let log = AttackerLog::new("lcdst-sock");
    let attacker = TestUser::create("lcdst-sock", false);
    let victim = TestUser::create("lcdst-sockv", false);
    let mounts = mounts(&attacker, &log, WORKERS + 3);
    let handler = SocketHandler::with_args(
        handler_binary!(),
        dir.path(),
        &config_for(
            &cores,
            &format!(
                "{NEVER}max_crashes_in_progress_per_user = {SHARE}\nmax_cores_per_minute = 0\n"
            ),
        ),
        "@@",
        &["--workers", &WORKERS.to_string()],
    );

    let mut crashes = stall_all(&attacker, &mounts);
    // Two stalled in their dumps (a worker each); the others wait,
    // unanswered, for one of them to end.
    let started = std::time::Instant::now();
    while mounts.iter().filter(|m| m.holds_a_request()).count() < SHARE {
        assert!(started.elapsed() < BOUND, "the dumps never stalled");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Another user's crash is taken by the free worker.
    let (victim_crash, victim_pid) = spawn_gated(victim.command("/bin/sh").args([
        "-c",
        "echo ready $$; read line; ulimit -c unlimited; kill -s SEGV $$",
    ]));
    let mut victim_crash = victim_crash;
    let_go(&mut victim_crash);
    assert!(
        wait_within(&mut victim_crash, BOUND).is_some(),
        "another user's crash waits behind the stalled ones: {}",
        handler.service.log_text()
    );
    let (_, record) = wait_for_record(&cores, victim_pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert_eq!(record["crash_share"]["share"], SHARE, "{record:#}");
    // The attacker's crashes are all still held (two stalled, the rest
    // waiting), none refused.
    assert_eq!(
        wait_until_left(&mut crashes, usize::MAX, BOUND).len(),
        crashes.len()
    );
    assert_eq!(
        mounts.iter().filter(|m| m.holds_a_request()).count(),
        SHARE,
        "more of the attacker's dumps ran than their share"
    );

    // Once the file systems let go, each of theirs is handled in turn.
    let_everything_go(mounts, &mut crashes);
    for (_, pid) in &crashes {
        let (_, record) = wait_for_record(&cores, *pid);
        assert_eq!(record["crash_share"]["share"], SHARE, "{record:#}");
    }
    drop(handler);
}

/// The record of `pid` in `dir`, when the handler wrote one.
fn record_of(dir: &std::path::Path, pid: i32) -> Option<serde_json::Value> {
    let needle = format!(".{pid}.");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        (name.ends_with(".json")
            && !name.ends_with(".user.json")
            && !testsupport::handler::is_report_file(&name)
            && name.contains(&needle))
        .then(|| serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok())
        .flatten()
    })
}
