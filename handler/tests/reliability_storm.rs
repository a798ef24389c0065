//! The handler under load, through the real kernel: 50 traced programs
//! crash at once, then one program crashes 200 times in a row. Every crash
//! gets its snapshot and its record (which goes with its core when the
//! core is deleted to make room: a crash is kept or goes whole), every core
//! the limits allow is saved complete, the per-program rate limit keeps
//! the loop from filling the disk, the free-space floor holds, and no
//! handler is left running.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use testsupport::attacker::processes_running;
use testsupport::core_file::*;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::tmpfs::*;
use testsupport::{ensure_sessiond, lttng, lttng_ok, unique_name, RootSessiondUse, TempDir};

const STORM: usize = 50;
const LOOP: usize = 200;
const MAX_CORES_PER_MINUTE: usize = 5;
/// The kernel drops (does not pipe at all) the core of any crash beyond
/// `core_pipe_limit` handlers already running, so the limit must be above
/// the number of crashes that may overlap: the 50 of the storm. It still
/// bounds how many handlers run at once (and, being non-zero, makes the
/// kernel hold each crashing process until its handler is done).
const PIPE_LIMIT: u32 = 64;
const MIN_FREE: u64 = 64 << 20;

/// A root-daemon snapshot session with small buffers, recording the
/// crasher's events; destroyed when dropped.
struct SmallSession {
    name: String,
    // The root daemon is kept until the session is gone.
    _sessiond: RootSessiondUse,
    // Where the snapshots go: removed after the session.
    _output: TempDir,
}

impl SmallSession {
    fn start() -> SmallSession {
        let sessiond = ensure_sessiond();
        let name = unique_name("security-storm");
        let output = TempDir::new("lcdsec-storm-traces");
        lttng_ok(&[
            "create",
            &name,
            "--snapshot",
            "-o",
            &output.path().display().to_string(),
        ]);
        let session = SmallSession {
            name,
            _sessiond: sessiond,
            _output: output,
        };
        lttng_ok(&[
            "enable-channel",
            "-u",
            "-s",
            &session.name,
            "--subbuf-size",
            "4096",
            "--num-subbuf",
            "2",
            "small",
        ]);
        lttng_ok(&[
            "enable-event",
            "-u",
            "-s",
            &session.name,
            "-c",
            "small",
            "lttng_coredump:step",
        ]);
        lttng_ok(&["start", &session.name]);
        session
    }
}

impl Drop for SmallSession {
    fn drop(&mut self) {
        let _ = lttng(&["destroy", &self.name]);
    }
}

/// Free bytes for an unprivileged writer on the filesystem of `path`.
fn free_bytes(path: &Path) -> u64 {
    let stats = rustix::fs::statvfs(path).unwrap();
    stats.f_bavail * stats.f_frsize
}

/// A crasher that, once registered with the session daemon and its
/// events emitted, waits for a line on its stdin before it crashes, so that
/// a whole storm of traced programs can be let go at once.
fn gated_crasher(name: &str) -> (Child, i32) {
    spawn_gated(crasher_command().arg("--gate").args([
        &unique_name("storm"),
        "3",
        "segv",
        "1",
        "random",
        name,
    ]))
}

/// Waits until the session daemon lists every one of `pids` as a traced
/// application: the storm is then one of programs it already knows.
fn wait_until_registered(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let listed = lttng_ok(&["list", "-u"]);
        let missing: Vec<&i32> = pids
            .iter()
            .filter(|pid| !listed.contains(&format!("PID: {pid} ")))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never registered with the session daemon: {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The record's snapshot of `session`: its path, after checking it has one.
fn snapshot_path(record: &serde_json::Value, session: &str) -> PathBuf {
    let entries = record["snapshots"].as_array().unwrap();
    let entry = entries
        .iter()
        .find(|e| e["session"] == session)
        .unwrap_or_else(|| panic!("no snapshot of {session}: {record:#}"));
    assert!(entry["error"].is_null(), "{record:#}");
    PathBuf::from(entry["path"].as_str().unwrap())
}

/// A saved core is either whole (as long as its program headers say, and
/// all the kernel sent) or marked cut with the reason; one that is gone
/// was deleted to make room for a later one, which says so; a core for
/// which no room at all was left is not saved, and says so.
fn check_core(record: &serde_json::Value, pid: i32, deleted: &HashSet<String>) -> bool {
    if record["core"]["saved"] == false {
        // No room at all was left for it: refused before a byte was read.
        let reason = record["core"]["not_saved_reason"].as_str().unwrap();
        assert!(reason.starts_with("no room in"), "{record:#}");
        assert_eq!(record["core"]["bytes_received"], 0, "{record:#}");
        return false;
    }
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    let path = PathBuf::from(record["core"]["path"].as_str().unwrap());
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let Ok(bytes) = fs::read(&path) else {
        assert!(deleted.contains(&name), "{name} vanished: {record:#}");
        return false;
    };
    assert_eq!(bytes.len() as u64, record["core"]["size"].as_u64().unwrap());
    assert_eq!(elf_core_identity(&bytes).pid, pid, "{name}");
    if record["core"]["complete"] == true {
        assert_eq!(
            bytes.len() as u64,
            record["core"]["bytes_received"].as_u64().unwrap()
        );
        assert!(elf_core_extent(&bytes) <= bytes.len() as u64, "{name}");
        true
    } else {
        let reason = record["core"]["truncated_reason"].as_str().unwrap();
        assert!(reason.contains("room"), "{reason}");
        false
    }
}

/// How many snapshot directories (what the daemon made for a record) are
/// under `dir`.
fn snapshot_dirs(dir: &Path) -> usize {
    let mut found = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in fs::read_dir(&at).into_iter().flatten().flatten() {
            if !entry.file_type().unwrap().is_dir() {
                continue;
            }
            if entry.path().join("ust").is_dir() {
                found += 1;
            } else {
                stack.push(entry.path());
            }
        }
    }
    found
}

/// What is left of a crash at the end: its record when it is still there;
/// otherwise it went whole (core and records together) to make room, and
/// nothing of it may be left.
fn record_or_gone(cores: &Path, pid: i32) -> Option<serde_json::Value> {
    let needle = format!(".{pid}.");
    let names: Vec<String> = names_in(cores)
        .into_iter()
        .filter(|n| n.contains(&needle))
        .collect();
    let record = names
        .iter()
        .find(|n| n.ends_with(".json") && !n.ends_with(".user.json"));
    match record {
        Some(name) => Some(serde_json::from_slice(&fs::read(cores.join(name)).unwrap()).unwrap()),
        None => {
            assert!(
                names.is_empty(),
                "crash {pid} left {names:?} without its record"
            );
            None
        }
    }
}

#[test]
fn a_crash_storm_and_a_crash_loop_keep_the_free_space_floor_and_whole_crashes() {
    let session = SmallSession::start();
    let dir = TempDir::new("lcdsec-storm");
    // Cores on a filesystem of their own, so that its free space is ours to
    // watch: the floor must hold against 255 crashes.
    let mount = Tmpfs::mount(&dir.path().join("fs"), "size=128m,mode=0755");
    let cores = mount.0.join("cores");
    // No rate limit for the storm (50 crashes of one program), and no
    // snapshot budget (every crash snapshots the session): the floor is
    // what this tests.
    let config = |max_cores_per_minute: usize| {
        format!(
            "core_dir = \"{}\"\nmin_free = {MIN_FREE}\nsnapshot_deadline = 30\n\
             snapshot_active_sessions = false\nsnapshot_user_daemon = false\n\
             snapshot_sessions = [\"{}\"]\nmax_cores_per_minute = {max_cores_per_minute}\n\
             max_cores_per_user_per_minute = 0\nmax_snapshots_per_minute = 0\n\
             max_snapshot_dirs = 0\n",
            cores.display(),
            session.name
        )
    };
    let handler = InstalledHandler::new(handler_binary!(), &config(0));
    handler.guard().set_pipe_limit(PIPE_LIMIT);
    let started = Instant::now();
    // A bound against a hang, not a speed test: the storm and the loop
    // take about a minute on a quiet 2-CPU machine and several under load.
    let deadline = started + Duration::from_secs(900);

    // The storm: 50 programs, let go together.
    let mut storm: Vec<(Child, i32)> = (0..STORM)
        .map(|i| gated_crasher(&format!("storm-{i}")))
        .collect();
    wait_until_registered(&storm.iter().map(|(_, pid)| *pid).collect::<Vec<_>>());
    for (child, _) in &mut storm {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    let mut lowest_free = u64::MAX;
    for (child, _) in &mut storm {
        // The kernel reports the crash once its handler is done.
        wait_for_crash(child, deadline);
        lowest_free = lowest_free.min(free_bytes(&mount.0));
    }
    let storm_pids: Vec<i32> = storm.iter().map(|(_, pid)| *pid).collect();
    eprintln!(
        "storm of {STORM} done after {:?}; lowest free {lowest_free}",
        started.elapsed()
    );

    // The loop: one program (a program of its own: the rate limit counts
    // by executable), 200 crashes in a row.
    handler.set_config(&config(MAX_CORES_PER_MINUTE));
    let looper = dir.path().join("looper");
    copy_executable(crasher_path(), &looper);
    let mut loop_records = Vec::new();
    for _ in 0..LOOP {
        assert!(Instant::now() < deadline, "the crash loop took too long");
        let output = run_bounded(
            Command::new(&looper)
                .env("LTTNG_UST_REGISTER_TIMEOUT", REGISTER_TIMEOUT_MS)
                .args([&unique_name("loop"), "1", "segv", "1", "random"]),
            CRASH_TIMEOUT,
        );
        let pid = ready_pid(&output);
        lowest_free = lowest_free.min(free_bytes(&mount.0));
        // Read at once: a later crash may delete it whole to make room.
        loop_records.push((pid, wait_for_record(&cores, pid).1));
    }
    eprintln!("loop of {LOOP} done after {:?}", started.elapsed());

    let mut snapshots = HashSet::new();
    let storm_records: Vec<(i32, serde_json::Value)> = storm_pids
        .iter()
        .filter_map(|pid| record_or_gone(&cores, *pid).map(|record| (*pid, record)))
        .collect();
    let deleted: HashSet<String> = storm_records
        .iter()
        .chain(&loop_records)
        .flat_map(|(_, record)| record["core"]["deleted_to_make_room"].as_array().unwrap())
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();
    // Every crash has a name of its own, simultaneous ones included.
    let crash_ids: HashSet<&str> = storm_records
        .iter()
        .chain(&loop_records)
        .map(|(_, record)| record["crash_id"].as_str().unwrap())
        .collect();
    assert_eq!(crash_ids.len(), storm_records.len() + loop_records.len());
    let mut whole = 0;
    for (pid, record) in &storm_records {
        assert!(snapshots.insert(snapshot_path(record, &session.name)));
        whole += usize::from(check_core(record, *pid, &deleted));
    }
    let mut saved = 0;
    for (pid, record) in &loop_records {
        assert!(snapshots.insert(snapshot_path(record, &session.name)));
        if record["core"]["saved"] == true {
            saved += 1;
            whole += usize::from(check_core(record, *pid, &deleted));
        } else {
            assert!(
                record["core"]["not_saved_reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("rate limit: "),
                "{record:#}"
            );
        }
    }
    // At most the allowance per minute, however long the loop took, and
    // at least the first minute's.
    let minutes = started.elapsed().as_secs() / 60 + 1;
    assert!(
        saved >= MAX_CORES_PER_MINUTE && saved <= MAX_CORES_PER_MINUTE * minutes as usize,
        "{saved} cores saved of the loop"
    );

    // Every crash got its snapshot, each its own (the storm crashes that
    // went whole to make room too: the snapshots are the session's).
    for path in &snapshots {
        assert!(path.is_dir(), "{}", path.display());
    }
    assert_eq!(snapshot_dirs(session._output.path()), STORM + LOOP);
    // Every crash is either whole, with its record, or gone whole.
    for pid in &storm_pids {
        record_or_gone(&cores, *pid);
    }
    // The floor is what limits the cores: the oldest went to make room.
    assert!(!deleted.is_empty(), "the floor never came into play");
    assert!(whole > 0);
    assert!(lowest_free >= MIN_FREE, "free space fell to {lowest_free}");
    assert!(free_bytes(&mount.0) >= MIN_FREE);

    // No handler (nor a child it forked) outlives its crash.
    let handlers_gone = Instant::now() + Duration::from_secs(60);
    loop {
        let left = processes_running(&handler.binary);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < handlers_gone,
            "handlers still running: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(handler);
    drop(mount);
}
