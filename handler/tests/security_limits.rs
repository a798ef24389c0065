//! The handler's limits against a user who crashes programs on purpose,
//! through the real kernel: the rate limits hold exactly under a storm of
//! simultaneous crashes, cannot be dodged by renaming the process, count
//! per user as well as per program; records count against the directory
//! limit and go with their core; one user's crash loop never evicts another
//! user's most recent core; the snapshots the handler takes itself have a
//! budget. (Issue 10, item 4.)

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Instant;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::sessions::TestSession;
use testsupport::syslog::SyslogListener;
use testsupport::{ensure_test_user, unique_name, TempDir};

/// Cores (not records) in a core directory.
fn cores_in(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with("core.") && !n.ends_with(".json"))
        .collect()
}

/// Root's crash records (not the crashing users' copies) in a core directory.
fn records_in(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|n| n.starts_with("core.") && n.ends_with(".json") && !n.ends_with(".user.json"))
        .collect()
}

/// Runs `program` with `args` as `uid`:`gid` (no other group) to its
/// crash and returns its pid and its record in `cores`; `None` runs it as
/// root.
fn crash_as(
    user: Option<(u32, u32)>,
    program: &Path,
    args: &[&str],
    cores: &Path,
) -> (i32, serde_json::Value) {
    let mut command = match user {
        Some((uid, gid)) => traced_command_as(uid, gid, program),
        None => traced_command(program),
    };
    command.arg(unique_name("lim")).args(args);
    crash_and_record(&mut command, cores)
}

/// A program (the shell: not traced, so the storm never involves the
/// session daemon) that waits for a line on its stdin before it crashes.
fn gated_crasher() -> (Child, i32) {
    spawn_gated(Command::new("/bin/sh").args([
        "-c",
        "ulimit -c unlimited; echo ready $$; read line; kill -s SEGV $$",
    ]))
}

#[test]
fn a_storm_of_twenty_crashes_of_one_program_keeps_exactly_ten_cores_and_twenty_records() {
    let dir = TempDir::new("lcdh-ratestorm");
    let cores = dir.path().join("cores");
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            "snapshot_user_daemon = false\nmax_cores_per_minute = 10\n\
         max_cores_per_user_per_minute = 100\n",
        ),
    );
    // Every handler of the storm runs at once: the kernel must pipe them all.
    handler.guard().set_pipe_limit(64);
    let mut storm: Vec<(Child, i32)> = (0..20).map(|_| gated_crasher()).collect();
    for (child, _) in &mut storm {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let deadline = Instant::now() + CRASH_TIMEOUT;
    for (child, _) in &mut storm {
        wait_for_crash(child, deadline);
    }
    let records: Vec<serde_json::Value> = storm
        .iter()
        .map(|(_, pid)| wait_for_record(&cores, *pid).1)
        .collect();
    let saved = records
        .iter()
        .filter(|r| r["core"]["saved"] == true)
        .count();
    let limited = records
        .iter()
        .filter(|r| {
            r["core"]["not_saved_reason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with("rate limit: "))
        })
        .count();
    assert_eq!((saved, limited), (10, 10), "{records:#?}");
    assert_eq!(cores_in(&cores).len(), 10, "{:?}", names_in(&cores));
    assert_eq!(records_in(&cores).len(), 20, "{:?}", names_in(&cores));
}

#[test]
fn renaming_the_process_does_not_dodge_the_rate_limit() {
    let dir = TempDir::new("lcdh-rename");
    let cores = dir.path().join("cores");
    let syslog = SyslogListener::bind(dir.path());
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "max_cores_per_minute = 2\nsyslog_socket = \"{}\"\n",
                syslog.path.display()
            ),
        ),
    );
    // One program, five names (prctl PR_SET_NAME): the limit is on the
    // program.
    let records: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            crash_as(
                None,
                &crasher_path(),
                &["1", "segv", "0", "zero", &format!("renamed-{i}")],
                &cores,
            )
            .1
        })
        .collect();
    for record in &records[2..] {
        assert_eq!(record["core"]["saved"], false, "{record:#}");
        assert!(
            record["core"]["not_saved_reason"]
                .as_str()
                .unwrap()
                .starts_with("rate limit: "),
            "{record:#}"
        );
    }
    assert_eq!(cores_in(&cores).len(), 2, "{:?}", names_in(&cores));
    assert_eq!(records_in(&cores).len(), 5, "{:?}", names_in(&cores));
    // Each crash kept out says so once in the log, not twice.
    let messages = syslog.messages();
    for record in &records[2..] {
        let pid = record["pid"].as_i64().unwrap();
        let lines = messages
            .iter()
            .filter(|m| m.contains(&format!("process {pid} ")) && m.contains("rate limit"))
            .count();
        assert_eq!(lines, 1, "{messages:#?}");
    }
}

#[test]
fn one_user_crashing_many_programs_is_held_by_the_per_user_limit() {
    let dir = TempDir::new("lcdh-peruser");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cores = dir.path().join("cores");
    let user = ensure_test_user("lcdh-h10-peruser", false);
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            "max_cores_per_minute = 10\nmax_cores_per_user_per_minute = 3\n",
        ),
    );
    // Three programs (copies of the crasher at three paths), two crashes
    // each: six crashes, three cores.
    let programs: Vec<PathBuf> = (0..3)
        .map(|i| {
            let program = dir.path().join(format!("prog{i}"));
            copy_executable(crasher_path(), &program);
            fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
            program
        })
        .collect();
    let mut records = Vec::new();
    for program in programs.iter().chain(&programs) {
        records.push(crash_as(Some(user), program, &["1", "segv"], &cores).1);
    }
    let limited: Vec<&str> = records
        .iter()
        .filter_map(|r| r["core"]["not_saved_reason"].as_str())
        .collect();
    assert_eq!(limited.len(), 3, "{records:#?}");
    assert!(limited.iter().all(|r| r.contains("of uid")), "{limited:?}");
    assert_eq!(cores_in(&cores).len(), 3, "{:?}", names_in(&cores));
}

#[test]
fn one_users_crash_loop_never_evicts_another_users_most_recent_core() {
    let dir = TempDir::new("lcdh-evict");
    let cores = dir.path().join("cores");
    let keeper = ensure_test_user("lcdh-h10-keeper", false);
    let looper = ensure_test_user("lcdh-h10-looper", false);
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let crash = |user| {
        crash_as(
            Some(user),
            &crasher_path(),
            &["1", "segv", "4", "random"],
            &cores,
        )
        .1
    };
    let kept = crash(keeper);
    let kept_core = PathBuf::from(kept["core"]["path"].as_str().unwrap());
    let size = kept["core"]["stored_bytes"].as_u64().unwrap();
    // Room for three such cores (and their records), not four.
    handler.set_config(&config_for(
        &cores,
        &format!("max_dir_size = {}", 3 * size + size / 2),
    ));
    let mut loop_records = Vec::new();
    for _ in 0..5 {
        loop_records.push(crash(looper));
    }
    assert!(
        kept_core.exists(),
        "the other user's only core was deleted: {loop_records:#?}"
    );
    let last = loop_records.last().unwrap();
    assert_eq!(last["core"]["complete"], true, "{last:#}");
    let deleted: Vec<String> = loop_records
        .iter()
        .flat_map(|r| {
            r["core"]["deleted_to_make_room"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    assert!(!deleted.is_empty(), "the limit never came into play");
    // What went was the looper's own oldest cores, with their records.
    for record in &loop_records[..deleted.len()] {
        let core = PathBuf::from(record["core"]["path"].as_str().unwrap());
        let name = core.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(deleted.contains(&name), "{name} not in {deleted:?}");
        assert!(!core.exists());
        assert!(!cores.join(format!("{name}.json")).exists(), "{name}.json");
    }
    let used: u64 = names_in(&cores)
        .iter()
        .map(|n| fs::symlink_metadata(cores.join(n)).unwrap().blocks() * 512)
        .sum();
    assert!(used <= 3 * size + size / 2, "{used} bytes in the directory");
}

#[test]
fn records_count_against_the_directory_limit() {
    let dir = TempDir::new("lcdh-records");
    let cores = dir.path().join("cores");
    // No cores: only records, in a directory of 32 KiB.
    let limit = 32 * 1024;
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!("save_core = false\nmax_dir_size = {limit}\n"),
        ),
    );
    let mut pids = Vec::new();
    for _ in 0..16 {
        let (pid, _) = crash_as(None, &crasher_path(), &["1", "segv"], &cores);
        pids.push(pid);
    }
    let used: u64 = names_in(&cores)
        .iter()
        .map(|n| fs::symlink_metadata(cores.join(n)).unwrap().blocks() * 512)
        .sum();
    assert!(used <= limit, "{used} bytes: {:?}", names_in(&cores));
    // The newest crash has its record; the oldest records made room.
    let last = pids.last().unwrap();
    assert!(records_in(&cores)
        .iter()
        .any(|n| n.contains(&format!(".{last}."))));
    assert!(!records_in(&cores)
        .iter()
        .any(|n| n.contains(&format!(".{}.", pids[0]))));
}

/// Every snapshot directory under `dir` (what the daemon made for a record).
fn snapshot_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in fs::read_dir(&at).into_iter().flatten().flatten() {
            let path = entry.path();
            if !entry.file_type().unwrap().is_dir() {
                continue;
            }
            if path.join("ust").is_dir() {
                found.push(path);
            } else {
                stack.push(path);
            }
        }
    }
    found
}

#[test]
fn the_snapshots_the_handler_takes_have_a_budget() {
    let session = TestSession::snapshot("lcdh-budget");
    let dir = TempDir::new("lcdh-budget");
    let cores = dir.path().join("cores");
    // A deadline that a daemon busy with other tests still meets.
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &format!(
            "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = 60\n\
         snapshot_active_sessions = false\nsnapshot_user_daemon = false\n\
         snapshot_sessions = [\"{}\"]\nmax_snapshots_per_minute = 3\nmax_snapshot_dirs = 2\n",
            cores.display(),
            session.name
        ),
    );
    let records: Vec<serde_json::Value> = (0..5)
        .map(|_| crash_as(None, &crasher_path(), &["2", "segv"], &cores).1)
        .collect();
    let snapshotted = |record: &serde_json::Value| {
        record["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session"] == session.name.as_str() && s["error"].is_null())
    };
    for record in &records[..3] {
        assert!(snapshotted(record), "{record:#}");
    }
    for record in &records[3..] {
        assert!(!snapshotted(record), "{record:#}");
        assert!(
            record["errors"]
                .to_string()
                .contains("max_snapshots_per_minute"),
            "{record:#}"
        );
    }
    // Of the three snapshot directories it made, it kept the newest two.
    let dirs = snapshot_dirs(session.output.path());
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let newest = records[2]["snapshots"][0]["path"].as_str().unwrap();
    assert!(dirs.iter().any(|d| d == Path::new(newest)), "{dirs:?}");
}
