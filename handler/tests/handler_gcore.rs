//! `lttng-coredump gcore`: the core of a running process through the
//! command line, against real processes (the traced crasher, waiting on its
//! stdin), the real root session daemon, real gdb, and the crash tools
//! over the record it writes:
//!
//! - as root, into the crash store: a record marked live (no signal, the
//!   method, the pause, the snapshot taken during the stop, which
//!   babeltrace2 reads), shown by `list` and `info`, and `debug`, `dump`
//!   and `trace` over it unchanged; the process neither stopped nor traced
//!   once gcore returns; the core loaded by eu-stack and gdb with every
//!   thread; then with stop-and-copy and zstd;
//! - as root, of a user's process: the core theirs, the record listed as
//!   live for them (their copy of it), for nobody else;
//! - as a user, `./core.PID` in the current directory, the user's own; a
//!   `--config` that is not there refused, never the defaults;
//! - refusals through the command line: another user's process, a zombie,
//!   a pid no process has, a kernel thread, an existing file; each with its
//!   exit status and its message (another user's process also its syslog
//!   line), and the process unharmed.

use serde_json::Value;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use testsupport::babeltrace::{babeltrace_events, fixture_seqs};
use testsupport::core_file::elf_core_identity;
use testsupport::crasher::{crasher_as, crasher_path, gated_crasher, spawn_gated};
use testsupport::handler::config_for;
use testsupport::handler_binary;
use testsupport::process::{copy_executable, run_bounded};
use testsupport::sessions::TestSession;
use testsupport::syslog::SyslogListener;
use testsupport::{root_triggers_lock, unique_name, TempDir, TestUser};

const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

fn run(binary: &Path, args: &[&str]) -> Output {
    run_bounded(Command::new(binary).args(args), TOOL_TIMEOUT)
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "the command failed: {}",
        text(output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The only root record (`core.*.json`, not a user's copy) in `dir`.
fn the_record(dir: &Path) -> (PathBuf, Value) {
    let records: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("core.") && name.ends_with(".json") && !name.contains(".user.")
        })
        .collect();
    assert_eq!(
        records.len(),
        1,
        "records in {}: {records:?}",
        dir.display()
    );
    let value = serde_json::from_slice(&fs::read(&records[0]).unwrap()).unwrap();
    (records[0].clone(), value)
}

/// Lets the gated crasher go on (it exits 0 in mode `exit`) and checks it
/// ran on to its normal end: the dump left it unharmed.
fn let_go_and_expect_a_normal_exit(mut child: Child, what: &str) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{what}: the process did not end normally: {status}"
    );
}

/// A field of `/proc/PID/status` (`State`, `TracerPid`).
fn status_field(pid: i32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// The threads of `pid` now, sorted.
fn tasks(pid: i32) -> Vec<i32> {
    let mut tids: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

/// Right after gcore returned: the process is neither stopped nor traced
/// (every thread let go, the dumper detached), with the same threads.
fn running_untraced(pid: i32, threads: &[i32]) {
    for tid in threads {
        let state = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap();
        let state = state.rsplit(')').next().unwrap().trim_start();
        assert!(
            !state.starts_with('t') && !state.starts_with('T'),
            "thread {tid} left stopped: {state}"
        );
    }
    assert_eq!(status_field(pid, "TracerPid"), "0", "left traced");
    assert_eq!(tasks(pid), threads, "the threads changed");
}

/// The thread ids eu-stack finds in `core` (`TID N:` lines), sorted, and
/// the number of threads gdb lists (`info threads`).
fn threads_in_core(exe: &Path, core: &Path) -> (Vec<i32>, usize) {
    let stack = run_bounded(
        Command::new("eu-stack")
            .arg("--core")
            .arg(core)
            .arg("--executable")
            .arg(exe),
        TOOL_TIMEOUT,
    );
    assert!(stack.status.success(), "eu-stack: {}", text(&stack));
    let mut tids: Vec<i32> = String::from_utf8_lossy(&stack.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("TID ")?.strip_suffix(':')?.parse().ok())
        .collect();
    tids.sort_unstable();
    let gdb = run_bounded(
        Command::new("gdb")
            .args(["-nx", "-batch", "-ex", "info threads"])
            .arg(exe)
            .arg(core),
        TOOL_TIMEOUT,
    );
    // The table's rows (`* 1    Thread 0x... (LWP N) ...`), not the
    // `[Current thread is 1 (...)]` line.
    let listed = String::from_utf8_lossy(&gdb.stdout)
        .lines()
        .filter(|l| {
            let row = l.trim_start_matches(['*', ' ']);
            row.starts_with(|c: char| c.is_ascii_digit()) && row.contains("(LWP ")
        })
        .count();
    (tids, listed)
}

/// `lttng-coredump dump PID -o DIR/dumped`: the stored core (decompressed),
/// an ELF core of the crasher; its bytes.
fn dumped_core(binary: &Path, pid_arg: &str, config_arg: &str, dir: &Path) -> Vec<u8> {
    let dumped = dir.join("dumped");
    succeeded(&run(
        binary,
        &[
            "dump",
            pid_arg,
            "--config",
            config_arg,
            "-o",
            dumped.to_str().unwrap(),
        ],
    ));
    let bytes = fs::read(&dumped).unwrap();
    assert_eq!(elf_core_identity(&bytes).fname, b"crasher");
    bytes
}

/// eu-stack and gdb find exactly `threads` in `core` (the crasher's).
fn every_thread_in(core: &Path, threads: &[i32]) {
    let (in_core, gdb_threads) = threads_in_core(&crasher_path(), core);
    assert_eq!(in_core, threads, "eu-stack's threads");
    assert_eq!(gdb_threads, threads.len(), "gdb's threads");
}

#[test]
fn gcore_as_root_saves_a_live_core_and_record_that_the_crash_tools_read() {
    // The dump fires every OnAnyCoreDump trigger of the root daemon, as a
    // crash does: no other test's trigger may be there meanwhile.
    let _lock = root_triggers_lock();
    let binary = handler_binary!();
    let dir = TempDir::new("gcore-store");
    let cores = dir.path().join("cores");
    let session = TestSession::snapshot("gcore-live");
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        config_for(
            &cores,
            &format!("snapshot_sessions = [\"{}\"]", session.name),
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let tag = unique_name("gcore");
    let (child, pid) = gated_crasher(&[&tag, "12", "exit"]);
    let pid_arg = pid.to_string();
    // The crasher's threads (its own and lttng-ust's), blocked where they
    // wait: none comes or goes while it waits on its stdin.
    let threads = tasks(pid);

    let out = run(binary, &["gcore", &pid_arg, "--config", config_arg]);
    let summary = succeeded(&out);
    // It runs on at once: no thread stopped, nobody tracing it.
    running_untraced(pid, &threads);
    assert!(
        summary.contains(&format!("live core of process {pid} (crasher)"))
            && summary.contains("pre-copy")
            && summary.contains("record: "),
        "{summary}"
    );

    // The record: a crash record marked live, through the typed schema.
    let (record_path, record) = the_record(&cores);
    assert_eq!(record["format"], "lttng-coredump-record/1");
    assert_eq!(record["pid"], pid);
    assert_eq!(record["uid"], 0);
    assert!(record["signal"].is_null(), "a live core has no signal");
    assert_eq!(record["exe_path"], crasher_path().to_str().unwrap());
    assert_eq!(record["process_identity"]["state"], "verified_by_pidfd");
    let live = &record["live"];
    // Pre-copy, the default into the store too (its staging file in the
    // store, counted by its limits).
    assert_eq!(live["method"], "pre-copy", "{live}");
    assert!(live["fallback"].is_null(), "{live}");
    assert!(live["pause_us"].as_u64().unwrap() > 0, "{live}");
    assert!(live["pause_us"].as_u64().unwrap() < live["total_us"].as_u64().unwrap());
    let mut recorded: Vec<i32> = live["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["stopped"], true, "{t}");
            t["tid"].as_i64().unwrap() as i32
        })
        .collect();
    recorded.sort_unstable();
    assert_eq!(recorded, threads, "{live}");
    assert_eq!(live["requested_by_uid"], 0);
    assert!(live["memory_bytes"].as_u64().unwrap() > 0);
    let core_path = PathBuf::from(record["core"]["path"].as_str().unwrap());
    assert_eq!(core_path.parent().unwrap(), cores);
    assert!(core_path.is_file());
    assert_eq!(record["core"]["complete"], true);
    assert_eq!(record["core"]["compression"], "none");
    assert_eq!(
        fs::metadata(&core_path).unwrap().len(),
        record["core"]["size"].as_u64().unwrap()
    );
    // The snapshot taken during the stop, in the crash's shape: the
    // root daemon's fire and the snapshot entry.
    let fires = record["fires"].as_array().unwrap();
    assert_eq!(fires[0]["daemon"], "root", "{record}");
    let entry = record["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["session"] == session.name.as_str())
        .unwrap_or_else(|| panic!("no snapshot of {}: {record}", session.name));
    assert!(entry["error"].is_null(), "{entry}");
    let snapshot = Path::new(entry["path"].as_str().unwrap());
    assert!(snapshot.is_dir());
    // babeltrace2 reads it: the crasher's twelve events, all before the
    // stop.
    assert_eq!(
        fixture_seqs(&babeltrace_events(snapshot), &tag),
        (0..12).collect::<Vec<i64>>()
    );
    // The core loads in eu-stack and gdb with every thread.
    every_thread_in(&core_path, &threads);

    // list: marked live, with the method and the pause.
    let listed = succeeded(&run(
        binary,
        &["list", "--config", config_arg, "--no-pager"],
    ));
    let line = listed
        .lines()
        .find(|l| l.contains(&format!(" {pid} ")))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains(" live ") && line.contains("(live: pre-copy, paused "),
        "{line}"
    );
    assert!(line.contains("present") && line.contains(" yes "), "{line}");
    // info: the same, laid out.
    let info = succeeded(&run(
        binary,
        &["info", &pid_arg, "--config", config_arg, "--no-pager"],
    ));
    assert!(
        info.contains("Live Core: taken from the running process (no signal), pre-copy"),
        "{info}"
    );
    assert!(info.contains("threads stopped "), "{info}");
    assert!(!info.contains("Signal:"), "{info}");
    assert!(info.contains(&record_path.display().to_string()), "{info}");
    // info --json: the record's live section as written.
    let json: Value = serde_json::from_str(
        succeeded(&run(
            binary,
            &["info", &pid_arg, "--config", config_arg, "--json=short"],
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(json["live"], record["live"]);

    // debug: gdb on the live core, where the process waits on its stdin.
    let debugged = succeeded(&run(binary, &["debug", &pid_arg, "--config", config_arg]));
    assert!(
        debugged.contains("in main (") && debugged.contains("crasher.c"),
        "{debugged}"
    );
    // dump: the same bytes as the stored core, an ELF core of the crasher.
    let bytes = dumped_core(binary, &pid_arg, config_arg, dir.path());
    assert_eq!(bytes, fs::read(&core_path).unwrap());
    // trace: the crasher's events, all twelve, from the snapshot taken
    // while it was stopped.
    let traced = succeeded(&run(
        binary,
        &["trace", &pid_arg, "--config", config_arg, "--json"],
    ));
    let seqs: Vec<i64> = traced
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["fields"]["tag"] == tag.as_str())
        .map(|e| e["fields"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (0..12).collect::<Vec<i64>>(), "{traced}");

    let_go_and_expect_a_normal_exit(child, "after gcore");
}

#[test]
fn gcore_stop_and_copy_with_zstd_is_recorded_and_debugged_the_same_way() {
    let binary = handler_binary!();
    let dir = TempDir::new("gcore-stop");
    let cores = dir.path().join("cores");
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        config_for(&cores, "compression = \"zstd\"\nzstd_level = 3"),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let (child, pid) = gated_crasher(&[&unique_name("gcore-stop"), "3", "exit", "8", "random"]);
    let pid_arg = pid.to_string();
    let threads = tasks(pid);
    succeeded(&run(
        binary,
        &[
            "gcore",
            &pid_arg,
            "--config",
            config_arg,
            "--method",
            "stop",
            "--no-snapshot",
        ],
    ));
    running_untraced(pid, &threads);
    let (_, record) = the_record(&cores);
    let live = &record["live"];
    assert_eq!(live["method"], "stop-and-copy", "{live}");
    // The memory was held in the dumper's buffer during the stop.
    assert!(live["buffer_bytes"].as_u64().unwrap() >= 8 << 20, "{live}");
    assert!(live["buffer_note"].is_null(), "{live}");
    assert_eq!(record["core"]["compression"], "zstd");
    let core_path = PathBuf::from(record["core"]["path"].as_str().unwrap());
    assert!(core_path.to_str().unwrap().ends_with(".zst"), "{record}");
    assert!(
        record["core"]["stored_bytes"].as_u64().unwrap() < record["core"]["size"].as_u64().unwrap()
    );
    let info = succeeded(&run(
        binary,
        &["info", &pid_arg, "--config", config_arg, "--no-pager"],
    ));
    assert!(info.contains("stop-and-copy"), "{info}");
    assert!(info.contains("zstd-compressed"), "{info}");
    // dump decompresses; debug reads it.
    let bytes = dumped_core(binary, &pid_arg, config_arg, dir.path());
    assert_eq!(bytes.len() as u64, record["core"]["size"].as_u64().unwrap());
    let debugged = succeeded(&run(binary, &["debug", &pid_arg, "--config", config_arg]));
    assert!(debugged.contains("in main ("), "{debugged}");
    every_thread_in(&dir.path().join("dumped"), &threads);
    let_go_and_expect_a_normal_exit(child, "after stop-and-copy");
}

/// A copy of the handler binary everybody may run, in a directory they may
/// enter (the build tree may not be reachable by the test users).
fn tool_copy(dir: &Path) -> PathBuf {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join("lttng-coredump");
    copy_executable(handler_binary!(), &copy);
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

#[test]
fn gcore_as_a_user_writes_core_pid_in_the_current_directory_as_theirs() {
    let user = TestUser::create("lcgcore-own", false);
    let dir = TempDir::new("gcore-user");
    let binary = tool_copy(dir.path());
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    std::os::unix::fs::chown(&work, Some(user.uid), Some(user.gid)).unwrap();
    let (child, pid) = spawn_gated(crasher_as(user.uid, user.gid).arg("--gate").args([
        &unique_name("gcore-user"),
        "3",
        "exit",
    ]));
    // A configuration named with --config that is not there: an error
    // (2), never the defaults; nothing written.
    let missing = dir.path().join("no-config.toml");
    let out = run_bounded(
        user.command(&binary)
            .args(["gcore", &pid.to_string(), "--no-snapshots", "--config"])
            .arg(&missing)
            .current_dir(&work),
        TOOL_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such file"),
        "{}",
        text(&out)
    );
    assert_eq!(fs::read_dir(&work).unwrap().count(), 0, "a file was left");
    // The test's own configuration (root's, readable by all): the core in
    // the current directory, the user's.
    let config = dir.path().join("config.toml");
    fs::write(&config, config_for(&dir.path().join("cores"), "")).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_bounded(
        user.command(&binary)
            .args(["gcore", &pid.to_string(), "--no-snapshots", "--config"])
            .arg(&config)
            .current_dir(&work),
        TOOL_TIMEOUT,
    );
    assert!(out.status.success(), "{}", text(&out));
    // Into a file of the caller's own, pre-copy is the default (its staging
    // file beside the core), as into the crash store (the staging file in
    // the store, counted by its limits: the tests below).
    assert!(text(&out).contains("pre-copy"), "{}", text(&out));
    let core = work.join(format!("core.{pid}"));
    let meta =
        fs::metadata(&core).unwrap_or_else(|e| panic!("{}: {e}: {}", core.display(), text(&out)));
    assert_eq!((meta.uid(), meta.gid()), (user.uid, user.gid));
    assert_eq!(meta.mode() & 0o777, 0o600);
    let bytes = fs::read(&core).unwrap();
    assert_eq!(elf_core_identity(&bytes).fname, b"crasher");
    let bt = testsupport::core_file::gdb_backtrace(&crasher_path(), &core);
    assert!(bt.contains("main"), "{bt}");
    // Run again: the file is there, never replaced (exit status 2).
    let again = run_bounded(
        user.command(&binary)
            .args(["gcore", &pid.to_string(), "--no-snapshots", "--config"])
            .arg(&config)
            .current_dir(&work),
        TOOL_TIMEOUT,
    );
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{}",
        text(&again)
    );
    assert_eq!(fs::read(&core).unwrap(), bytes);
    let_go_and_expect_a_normal_exit(child, "a user's gcore");
}

#[test]
fn gcore_by_root_of_a_users_process_is_listed_as_live_for_that_user_alone() {
    let owner = TestUser::create("lcgcore-mine", false);
    let other = TestUser::create("lcgcore-else", false);
    let dir = TempDir::new("gcore-users");
    let binary = tool_copy(dir.path());
    let cores = dir.path().join("cores");
    let config = dir.path().join("config.toml");
    fs::write(&config, config_for(&cores, "")).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let config_arg = config.to_str().unwrap();
    let (child, pid) = spawn_gated(crasher_as(owner.uid, owner.gid).arg("--gate").args([
        &unique_name("gcore-mine"),
        "3",
        "exit",
    ]));
    let pid_arg = pid.to_string();
    succeeded(&run(
        &binary,
        &["gcore", &pid_arg, "--config", config_arg, "--no-snapshot"],
    ));
    let (_, record) = the_record(&cores);
    assert_eq!(record["uid"], owner.uid);
    assert_eq!(record["core"]["readable_by_uid"], owner.uid, "{record:#}");
    assert_eq!(record["live"]["requested_by_uid"], 0);
    let core_path = PathBuf::from(record["core"]["path"].as_str().unwrap());
    // Root's file, which its user may read (an ACL, as a crash's core) and
    // nobody else.
    let readable_by = |user: &TestUser| {
        run_bounded(user.command("test").arg("-r").arg(&core_path), TOOL_TIMEOUT)
            .status
            .success()
    };
    assert_eq!(fs::metadata(&core_path).unwrap().uid(), 0);
    assert!(readable_by(&owner) && !readable_by(&other));

    // The process's user lists it, marked live, and reads its live
    // section in info (their copy of the record).
    let as_user = |user: &TestUser, args: &[&str]| {
        run_bounded(
            user.command(&binary)
                .args(args)
                .args(["--config", config_arg, "--no-pager"]),
            TOOL_TIMEOUT,
        )
    };
    let listed = succeeded(&as_user(&owner, &["list"]));
    let line = listed
        .lines()
        .find(|l| l.contains(&format!(" {pid} ")))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("(live: pre-copy, paused "), "{line}");
    let info = succeeded(&as_user(&owner, &["info", &pid_arg]));
    assert!(
        info.contains("Live Core: taken from the running process (no signal), pre-copy"),
        "{info}"
    );
    // Anyone else: nothing of it.
    let listed = as_user(&other, &["list"]);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&format!(" {pid} ")),
        "{}",
        text(&listed)
    );
    let_go_and_expect_a_normal_exit(child, "a user's process dumped by root");
}

#[test]
fn gcore_refusals_have_their_exit_status_message_and_syslog_line() {
    let user = TestUser::create("lcgcore-other", false);
    let dir = TempDir::new("gcore-refusals");
    let binary = tool_copy(dir.path());
    let syslog = SyslogListener::bind(dir.path());
    // The listener's socket is root's: let the user's tool send to it.
    fs::set_permissions(&syslog.path, fs::Permissions::from_mode(0o777)).unwrap();
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        config_for(
            &dir.path().join("cores"),
            &format!("syslog_socket = \"{}\"", syslog.path.display()),
        ),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    std::os::unix::fs::chown(&work, Some(user.uid), Some(user.gid)).unwrap();

    // Root's process, asked for by a user: refused (4), the process runs on.
    let (child, pid) = gated_crasher(&[&unique_name("gcore-refused"), "3", "exit"]);
    let out = run_bounded(
        user.command(&binary)
            .args(["gcore", &pid.to_string(), "--config"])
            .arg(&config)
            .current_dir(&work),
        TOOL_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains(&format!("no live core of process {pid}"))
            && said.contains("only root or its owner may dump it"),
        "{said}"
    );
    let logged = syslog.messages_until("only root or its owner", Duration::from_secs(10));
    assert!(
        logged
            .iter()
            .any(|m| m.contains(&format!("no live core of process {pid}"))),
        "{logged:?}"
    );
    assert_eq!(fs::read_dir(&work).unwrap().count(), 0, "a file was left");
    let_go_and_expect_a_normal_exit(child, "a refused gcore");

    // A zombie (a child of ours that exited, not yet reaped): nothing to
    // dump (3).
    let mut zombie = Command::new("true").stdin(Stdio::null()).spawn().unwrap();
    let zombie_pid = zombie.id() as i32;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(format!("/proc/{zombie_pid}/stat"))
        .unwrap()
        .rsplit(')')
        .next()
        .unwrap()
        .trim_start()
        .starts_with('Z')
    {
        assert!(std::time::Instant::now() < deadline, "`true` never exited");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = run(
        handler_binary!(),
        &[
            "gcore",
            &zombie_pid.to_string(),
            "-o",
            dir.path().join("zombie.core").to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a zombie"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("zombie.core").exists());
    zombie.wait().unwrap();

    // A process that does not exist: no pid reaches pid_max (3).
    let pid_max = fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let nowhere = dir.path().join("nowhere.core");
    let out = run(
        handler_binary!(),
        &[
            "gcore",
            pid_max.trim(),
            "-o",
            nowhere.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("no process has pid {}", pid_max.trim())),
        "{}",
        text(&out)
    );
    assert!(!nowhere.exists());

    // A kernel thread (PF_KTHREAD in its stat flags, such as kthreadd):
    // no user memory (3).
    let kthread = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // Fields after the name: state ppid pgrp session tty
                    // tpgid flags.
                    let flags = stat.rsplit(')').next()?.split_whitespace().nth(6)?;
                    flags.parse::<u64>().ok()
                })
                .is_some_and(|flags| flags & 0x0020_0000 != 0)
        })
        .expect("no kernel thread in /proc");
    let out = run(
        handler_binary!(),
        &[
            "gcore",
            &kthread.to_string(),
            "-o",
            nowhere.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a kernel thread"),
        "{}",
        text(&out)
    );
    assert!(!nowhere.exists());

    // An existing file named with -o: refused (2), the file untouched.
    let (child, pid) = gated_crasher(&[&unique_name("gcore-exists"), "3", "exit"]);
    let existing = dir.path().join("existing");
    fs::write(&existing, "keep me").unwrap();
    let out = run(
        handler_binary!(),
        &[
            "gcore",
            &pid.to_string(),
            "-o",
            existing.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(fs::read_to_string(&existing).unwrap(), "keep me");
    let_go_and_expect_a_normal_exit(child, "a gcore refused for its file");
}

/// The bytes the regular files of `dir` take on disk.
fn bytes_on_disk(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| fs::symlink_metadata(e.path()).ok())
        .filter(|m| m.is_file())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// The ledger's reservation lines (none once every live core is done).
fn reservations_in_ledger(cores: &Path) -> Vec<String> {
    fs::read_to_string(cores.join(".lttng-coredump-ledger"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"reservation\""))
        .map(str::to_owned)
        .collect()
}

#[test]
fn gcore_into_the_store_pre_copies_by_default_and_leaves_no_staging_file() {
    let dir = TempDir::new("gcore-store-precopy");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cores = dir.path().join("cores");
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let config = dir.path().join("config.toml");
    fs::write(&config, config_for(&cores, "")).unwrap();
    let (child, pid) = gated_crasher(&[&unique_name("gcore-precopy"), "3", "exit"]);
    let threads = tasks(pid);
    let out = run_bounded(
        Command::new(handler_binary!())
            .args(["gcore", &pid.to_string(), "--no-snapshots", "--config"])
            .arg(&config)
            .env("TMPDIR", &tmp),
        TOOL_TIMEOUT,
    );
    succeeded(&out);
    running_untraced(pid, &threads);
    let (_, record) = the_record(&cores);
    let live = &record["live"];
    // Pre-copy, with no fallback: its staging file went into the store.
    assert_eq!(live["method"], "pre-copy", "{live}");
    assert!(live["fallback"].is_null(), "{live}");
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    // Nothing left behind: in the store the core, its record and the
    // ledger (its reservation gone); nothing in $TMPDIR.
    let mut names: Vec<String> = fs::read_dir(&cores)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.iter().any(|n| n == ".lttng-coredump-ledger"),
        "{names:?}"
    );
    assert!(
        names.iter().filter(|n| n.starts_with("core.")).count() == 2,
        "{names:?}"
    );
    assert_eq!(reservations_in_ledger(&cores), Vec::<String>::new());
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    every_thread_in(
        &PathBuf::from(record["core"]["path"].as_str().unwrap()),
        &threads,
    );
    let_go_and_expect_a_normal_exit(child, "a pre-copied core into the store");
}

#[test]
fn gcore_into_a_store_with_room_for_the_core_only_copies_on_write_and_says_why() {
    let dir = TempDir::new("gcore-store-small");
    let cores = dir.path().join("cores");
    let (child, pid) = gated_crasher(&[&unique_name("gcore-small"), "3", "exit"]);
    let threads = tasks(pid);
    let private = testsupport::process::private_resident(pid);
    // The crasher (with lttng-ust) has hundreds of KiB of its own.
    assert!(private > 128 << 10, "private resident {private}");
    // Room for the core (the handler's own bound on it), for the record
    // and the ledger (64 KiB), and for a quarter of the staging file only:
    // the first pass cannot fit, so pre-copy is not even started.
    let bound = lttng_coredump_handler::crash::live::core_bound(pid).unwrap();
    let max_dir_size = bound + private / 4 + (64 << 10);
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        config_for(&cores, &format!("max_dir_size = {max_dir_size}")),
    )
    .unwrap();
    let out = run(
        handler_binary!(),
        &[
            "gcore",
            &pid.to_string(),
            "--no-snapshots",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    succeeded(&out);
    running_untraced(pid, &threads);
    let (_, record) = the_record(&cores);
    let live = &record["live"];
    assert_eq!(live["method"], "copy-on-write", "{live}");
    let why = live["fallback"].as_str().unwrap_or_default();
    assert!(
        why.contains("pre-copy not used")
            && why.contains("private resident memory")
            && why.contains("the crash store's room")
            && why.contains(&format!("max_dir_size = {max_dir_size}")),
        "{live}"
    );
    // The core whole, within the store's limit.
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert!(bytes_on_disk(&cores) <= max_dir_size);
    assert_eq!(reservations_in_ledger(&cores), Vec::<String>::new());
    every_thread_in(
        &PathBuf::from(record["core"]["path"].as_str().unwrap()),
        &threads,
    );
    let_go_and_expect_a_normal_exit(child, "a copy-on-write core into a small store");
}

/// The unnamed files (`O_TMPFILE`) under `dir` that process `pid` has
/// open, by inode.
fn unnamed_files_in(pid: i32, dir: &Path) -> Vec<u64> {
    let prefix = format!("{}/#", dir.display());
    let mut inodes: Vec<u64> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            fs::read_link(e.path()).is_ok_and(|target| {
                let target = target.to_string_lossy();
                target.starts_with(&prefix) && target.ends_with(" (deleted)")
            })
        })
        .filter_map(|e| fs::metadata(e.path()).ok())
        .map(|m| m.ino())
        .collect();
    inodes.sort_unstable();
    inodes.dedup();
    inodes
}

#[test]
fn gcore_into_the_store_reserves_the_staging_room_while_it_runs_and_always_gives_it_back() {
    use lttng_coredump_handler::base::config::Config;
    use lttng_coredump_handler::base::syslog::Log;
    use lttng_coredump_handler::crash::live::{take_with_hook, Destination, Request};
    use lttng_coredump_handler::store::{ledger, space};
    use lttng_coredump_livecore::{Method, Stage};
    use std::os::fd::AsFd;

    let dir = TempDir::new("gcore-store-reserve");
    let cores = dir.path().join("cores");
    let config = Config::parse(&config_for(&cores, "")).unwrap();
    let (child, pid) = gated_crasher(&[&unique_name("gcore-reserve"), "3", "exit"]);
    let private = testsupport::process::private_resident(pid);
    for kill in [false, true] {
        let flags = dir.path().join(format!("flags-{kill}"));
        fs::create_dir(&flags).unwrap();
        // Held in the dumping child at its first pre-copy pass, once.
        let hold = flags.clone();
        let hook: lttng_coredump_livecore::StageHook = std::sync::Arc::new(move |stage| {
            if stage == Stage::PreCopying && !hold.join("held").exists() {
                let _ = fs::write(hold.join("pid"), std::process::id().to_string());
                let _ = fs::rename(hold.join("pid"), hold.join("held"));
                while !hold.join("go").exists() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        });
        let request = Request {
            pid,
            destination: Destination::Store,
            method: None,
            compress: Some(false),
            snapshots: false,
            event: None,
            pidfd: None,
        };
        let taking = {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut log = Log::default();
                take_with_hook(&request, &config, Path::new("test"), &mut log, Some(hook))
            })
        };
        let held = flags.join("held");
        for _ in 0..30_000 {
            if held.exists() || taking.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            held.exists(),
            "the dump never reached its first pre-copy pass"
        );
        let dumper: i32 = fs::read_to_string(&held).unwrap().parse().unwrap();
        // The staging file is the dumper's, unnamed, in the store (the
        // core comes through a pipe: the dumper keeps no other file there).
        assert_eq!(unnamed_files_in(dumper, &cores).len(), 1);
        // Its room (and the core's) is reserved in the store's ledger while
        // the dump runs: a crash at this moment sees it taken.
        let store = fs::File::open(&cores).unwrap();
        let reserved = ledger::reserved(store.as_fd(), None);
        assert!(
            reserved >= private,
            "reserved {reserved}, private {private}"
        );
        assert_eq!(reservations_in_ledger(&cores).len(), 1);
        let policy = space::SpacePolicy {
            max_dir_size: reserved,
            min_free: 0,
        };
        assert_eq!(space::room(store.as_fd(), policy).unwrap(), 0);
        if kill {
            assert!(testsupport::process::signal(dumper, libc::SIGKILL));
        } else {
            fs::write(flags.join("go"), "").unwrap();
        }
        let taken = taking.join().unwrap();
        if kill {
            assert!(taken.is_err(), "{taken:?}");
        } else {
            let taken = taken.unwrap();
            assert_eq!(taken.report.method, Method::PreCopy);
            assert!(taken.report.fallback.is_none(), "{:?}", taken.report);
        }
        // Given back, the dump done or failed.
        assert_eq!(ledger::reserved(store.as_fd(), None), 0);
        assert_eq!(reservations_in_ledger(&cores), Vec::<String>::new());
    }
    let_go_and_expect_a_normal_exit(child, "live cores with their room reserved");
}
