//! The handler installed in the kernel's core_pattern for one test (through
//! [`CorePatternGuard`], which restores it), and its crash records read
//! back. The binary is the one cargo built for the test
//! ([`handler_binary!`](crate::handler_binary)).

use crate::core_pattern::CorePatternGuard;
use crate::crasher::ready_pid;
use crate::process::{copy_executable, run_bounded};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The `lttng-coredump` binary cargo built for this test, as a `&Path`.
/// Only the handler package's tests have it (cargo gives
/// `CARGO_BIN_EXE_<name>` to the tests of the package owning the binary).
#[macro_export]
macro_rules! handler_binary {
    () => {
        ::std::path::Path::new(env!("CARGO_BIN_EXE_lttng-coredump"))
    };
}

/// A short directory for the handler and its configuration: the whole
/// core_pattern line must fit in 127 bytes.
const SHORT_DIR: &str = "/run/lcdh";
/// Longest a crash may take, handler included.
pub const CRASH_TIMEOUT: Duration = Duration::from_secs(120);

/// The handler installed in core_pattern with a configuration, for one
/// test; core_pattern and core_pipe_limit come back when dropped, then the
/// copies of the handler and its configuration are removed (their names are
/// this copy's own, so removing them never races another test).
pub struct InstalledHandler {
    guard: Option<CorePatternGuard>,
    pub binary: PathBuf,
    pub config: PathBuf,
}

impl InstalledHandler {
    /// Installs the handler with `config_toml` as its configuration.
    /// `built` is the handler cargo built ([`handler_binary!`](crate::handler_binary)).
    pub fn new(built: &Path, config_toml: &str) -> InstalledHandler {
        let guard = CorePatternGuard::acquire();
        let (binary, config) = short_handler_copy(built, config_toml);
        // Non-zero: the kernel keeps /proc/PID until the handler is done,
        // and the crash is only reported to the parent once it is.
        guard.set_pipe_limit(16);
        guard.set(&handler_line(&binary, &config));
        InstalledHandler {
            guard: Some(guard),
            binary,
            config,
        }
    }

    pub fn guard(&self) -> &CorePatternGuard {
        self.guard.as_ref().expect("held until dropped")
    }

    /// Replaces the configuration (the handler reads it on every crash).
    pub fn set_config(&self, config_toml: &str) {
        fs::write(&self.config, config_toml).unwrap();
    }
}

impl Drop for InstalledHandler {
    fn drop(&mut self) {
        drop(self.guard.take());
        let _ = fs::remove_file(&self.binary);
        let _ = fs::remove_file(&self.config);
    }
}

/// Copies the freshly built handler and writes `config_toml` under a short
/// directory (the whole core_pattern line must fit in 127 bytes), under
/// names no other test uses; returns both paths.
pub fn short_handler_copy(built: &Path, config_toml: &str) -> (PathBuf, PathBuf) {
    fs::create_dir_all(SHORT_DIR).unwrap();
    fs::set_permissions(SHORT_DIR, fs::Permissions::from_mode(0o755)).unwrap();
    static COPIES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let copy = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("{}-{copy}", std::process::id());
    let binary = Path::new(SHORT_DIR).join(format!("h.{id}"));
    let temporary = Path::new(SHORT_DIR).join(format!("h.{id}.tmp"));
    copy_executable(built, &temporary);
    fs::rename(&temporary, &binary).unwrap();
    let config = Path::new(SHORT_DIR).join(format!("c.{id}.toml"));
    fs::write(&config, config_toml).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    (binary, config)
}

/// The core_pattern line the handler's `install` writes for this kernel.
pub fn handler_line(binary: &Path, config: &Path) -> String {
    format!(
        "|{} handle --config {} P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E",
        binary.display(),
        config.display()
    )
}

/// The snapshot deadline of [`config_for`]: the tests' snapshots must be
/// recorded within it, so it is wide (a loaded 2-core machine missed 3 s).
/// A test of a missed deadline sets a short one with
/// [`config_with_deadline`] and makes the miss certain (a daemon that never
/// answers).
pub const SNAPSHOT_DEADLINE_SECS: u64 = 60;

/// A configuration putting cores in `core_dir`, plus `extra` lines. It
/// leaves out the fallback to every active snapshot session, which would
/// snapshot other tests' sessions in the shared root session daemon.
pub fn config_for(core_dir: &Path, extra: &str) -> String {
    config_with_deadline(core_dir, SNAPSHOT_DEADLINE_SECS, extra)
}

/// [`config_for`] with a snapshot deadline of `deadline_secs`.
pub fn config_with_deadline(core_dir: &Path, deadline_secs: u64, extra: &str) -> String {
    format!(
        "core_dir = \"{}\"\nmin_free = 0\nsnapshot_deadline = {deadline_secs}\nsnapshot_active_sessions = false\n{extra}\n",
        core_dir.display()
    )
}

/// Runs the handler's command line `binary ARGS` (install, status,
/// uninstall...) to its end, whatever its exit status.
pub fn run_handler(binary: &Path, args: &[&str]) -> Output {
    run_bounded(Command::new(binary).args(args), Duration::from_secs(60))
}

/// Runs `command` (the crasher or another program that prints `ready PID`
/// and crashes) under the installed handler; returns its pid and the crash
/// record the handler wrote for it in `cores`.
pub fn crash_and_record(command: &mut Command, cores: &Path) -> (i32, serde_json::Value) {
    let output = run_bounded(command, CRASH_TIMEOUT);
    let pid = ready_pid(&output);
    (pid, wait_for_record(cores, pid).1)
}

/// The crashing user's copy of the record at `record` (`NAME.user.json`),
/// once it exists: the handler publishes it just after root's record, which
/// is what [`wait_for_record`] sees first. Waits up to [`RECORD_HANG_GUARD`].
pub fn wait_for_user_copy(record: &Path) -> PathBuf {
    let copy = record.with_extension("user.json");
    let deadline = Instant::now() + RECORD_HANG_GUARD;
    while !copy.exists() {
        assert!(
            Instant::now() < deadline,
            "no user's copy {} of the record",
            copy.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    copy
}

/// Crashes a root shell (untraced: no LTTng buffers in its core, no event
/// for any session) under the installed handler; returns its pid and the
/// crash record the handler wrote for it in `cores`.
pub fn crash_a_shell(cores: &Path) -> (i32, serde_json::Value) {
    crash_and_record(
        Command::new("/bin/sh").args(["-c", crate::attacker::CRASH]),
        cores,
    )
}

/// How long a test waits for a record before it calls the handler hung: a
/// hang guard, not a timing claim. A record normally appears within a
/// second; on a machine loaded by several full builds it once took over
/// 30 s (the guard this replaces), so the guard is far beyond any load.
pub const RECORD_HANG_GUARD: Duration = Duration::from_secs(300);

/// Waits for the crash record of `pid` in `dir` and parses it.
pub fn wait_for_record(dir: &Path, pid: i32) -> (PathBuf, serde_json::Value) {
    let deadline = Instant::now() + RECORD_HANG_GUARD;
    let needle = format!(".{pid}.");
    loop {
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Root's record, not the crashing user's copy.
                if name.ends_with(".json")
                    && !name.ends_with(".user.json")
                    && !is_report_file(&name)
                    && name.contains(&needle)
                {
                    let text = fs::read(entry.path()).unwrap();
                    let record = serde_json::from_slice(&text).unwrap_or_else(|e| {
                        panic!(
                            "record {name} is not JSON: {e}: {}",
                            String::from_utf8_lossy(&text)
                        )
                    });
                    return (entry.path(), record);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no crash record for pid {pid} in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The handler's default core directory: where cores go when the
/// configuration names none, or names one the handler refuses.
pub const DEFAULT_CORE_DIR: &str = "/var/lib/lttng-coredump/cores";

/// Removes, when dropped, what the crashes of these pids left in
/// [`DEFAULT_CORE_DIR`] (shared by every test and by the machine's own
/// crashes, so only these).
pub struct DefaultDirCleanup(pub Vec<i32>);

impl Drop for DefaultDirCleanup {
    fn drop(&mut self) {
        for name in names_in(Path::new(DEFAULT_CORE_DIR)) {
            if self.0.iter().any(|pid| name.contains(&format!(".{pid}."))) {
                let _ = fs::remove_file(Path::new(DEFAULT_CORE_DIR).join(name));
            }
        }
    }
}

/// Asserts that `name`, a file the handler made from what a crash said
/// (its process name, its pid...), is a plain, visible, bounded file name
/// whatever the crashing program put there.
pub fn assert_safe_file_name(name: &str) {
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b)),
        "unsafe file name {name:?}"
    );
    assert!(!name.starts_with('.'), "hidden file name {name:?}");
    assert!(name.len() < 200, "{name:?}");
}

/// Names in a directory, sorted, but for the handler's ledger (its
/// bookkeeping of the rate limits and the snapshot budget) and the crashes'
/// report files (which go with their records: [`report_files_in`]).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names = all_names_in(dir);
    names.retain(|name| !is_report_file(name));
    names
}

/// The crashes' report files in a directory (`STEM.report.json` beside
/// root's record `STEM.json`, `STEM.report.user[.N].json` beside the
/// user's copy), sorted.
pub fn report_files_in(dir: &Path) -> Vec<String> {
    let mut names = all_names_in(dir);
    names.retain(|name| is_report_file(name));
    names
}

/// Whether a file of a core directory is a crash's report file, not a
/// record (the handler's `store/report_file.rs` names them).
pub fn is_report_file(name: &str) -> bool {
    name.starts_with("core.")
        && (name.ends_with(".report.json")
            || name.rsplit_once(".report.user.").is_some_and(|(_, tail)| {
                tail == "json"
                    || tail
                        .strip_suffix(".json")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }))
}

fn all_names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name != ".lttng-coredump-ledger")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
