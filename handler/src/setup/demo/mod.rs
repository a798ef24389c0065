//! `lttng-coredump demo`: the seed's `test.sh`, done right. A traced
//! program crashes under the handler, and the demo shows what the crash
//! left: the core, the snapshot of the trace taken before the core was
//! read, and the program's last events read back with babeltrace2.
//!
//! Everything it changes it puts back: core_pattern and core_pipe_limit
//! (exactly, also on an error, a panic, Ctrl-C, SIGTERM or SIGHUP — not on
//! SIGKILL), the tracing session, the session daemon if it started one, and
//! its copies of the handler, the configuration and the program. It keeps
//! the core, the crash record and the snapshot, for the person to look at.
//!
//! It takes no lock: a caller that serializes core_pattern changes (the
//! test suite's `CorePatternGuard`) can hold its own lock around it.

mod kernel_settings;
mod program;
mod sessiond;

pub use kernel_settings::{KernelSettingsGuard, Restorer, Saved};

use crate::kernel::settings::{KernelFeatures, KernelFiles};
use crate::store::record_read::StoredRecord;
use anyhow::{anyhow, Context as _};
use lttng_ctl::{
    BufferType, ChannelBuilder, Domain, EventBuilder, Session, SessionBuilder, SessionOutput,
};
use sessiond::SessionDaemon;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the demo keeps what it leaves behind, by default (the seed used
/// `/tmp/lttng`).
pub const DEFAULT_DIR: &str = "/tmp/lttng-coredump-demo";

/// How long the crashing program, and then its crash record, may take.
const CRASH_TIMEOUT: Duration = Duration::from_secs(60);
const RECORD_TIMEOUT: Duration = Duration::from_secs(30);
/// Events shown from the end of the snapshot.
const LAST_EVENTS: usize = 12;

/// What the demo needs to know.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Holds `core/` (cores and crash records) and `snapshot/` (traces).
    pub dir: PathBuf,
    pub kernel: KernelFiles,
}

type Step<T> = anyhow::Result<T>;

/// Runs the demo, printing as it goes. An error is returned after
/// everything the demo changed has been put back.
pub fn run(options: &DemoOptions) -> Step<()> {
    if !rustix::process::geteuid().is_root() {
        return Err(anyhow!(
            "the demo must run as root: it sets /proc/sys/kernel/core_pattern and \
             traces with the root session daemon"
        ));
    }
    println!("lttng-coredump demo: a traced program crashes; the handler keeps its trace and its core.\n");

    let settings = KernelSettingsGuard::save(options.kernel.clone())?;
    let interrupted = Arc::new(AtomicBool::new(false));
    restore_on_signals(settings.restorer(), Arc::clone(&interrupted))?;

    let result = run_with(options, &settings, &interrupted);
    // Also when the crash went wrong; a no-op when done already.
    match settings.restore() {
        Ok(Some(saved)) => println!("{}", kernel_settings::restored_message(&saved)),
        Ok(None) => {}
        Err(err) => return Err(err),
    }
    result
}

/// Ctrl-C, SIGTERM, SIGHUP: restore the kernel settings at once (the demo
/// may be blocked in a daemon call), then let the demo clean up the rest;
/// a second signal quits on the spot.
fn restore_on_signals(restorer: Restorer, interrupted: Arc<AtomicBool>) -> Step<()> {
    static SIGNALS: AtomicU32 = AtomicU32::new(0);
    ctrlc::set_handler(move || {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("lttng-coredump demo: quitting now");
            std::process::exit(130);
        }
        match restorer.restore() {
            Ok(Some(saved)) => eprintln!(
                "\ninterrupted: {}; cleaning up (press Ctrl-C again to quit at once)",
                kernel_settings::restored_message(&saved)
            ),
            Ok(None) => {
                eprintln!("\ninterrupted: cleaning up (press Ctrl-C again to quit at once)")
            }
            Err(err) => eprintln!("\ninterrupted: {err:#}"),
        }
        interrupted.store(true, Ordering::SeqCst);
    })
    .context("cannot handle Ctrl-C (so could not restore core_pattern on it)")
}

fn check(interrupted: &AtomicBool) -> Step<()> {
    if interrupted.load(Ordering::SeqCst) {
        Err(anyhow!("interrupted"))
    } else {
        Ok(())
    }
}

fn run_with(
    options: &DemoOptions,
    settings: &KernelSettingsGuard,
    interrupted: &AtomicBool,
) -> Step<()> {
    let core_dir = options.dir.join("core");
    let snapshot_dir = options.dir.join("snapshot");
    for dir in [&options.dir, &core_dir, &snapshot_dir] {
        root_only_directory(dir)?;
    }
    let scratch = ScratchDir::create()?;

    println!("[1/6] Session daemon");
    let mut daemon = SessionDaemon::ensure()?;
    println!("      {}", daemon.describe());
    check(interrupted)?;

    println!("[2/6] Tracing session");
    let name = format!("lttng-coredump-demo-{}", std::process::id());
    let mut session = DemoSession::create(&name, &snapshot_dir)?;
    println!(
        "      session {name:?} in snapshot mode (flight recorder), snapshots go to {}",
        snapshot_dir.display()
    );
    println!(
        "      user-space channel \"demo\", events {}, tracing started",
        program::EVENTS
    );
    check(interrupted)?;

    println!("[3/6] Handler installed in core_pattern for the demo");
    let handler = scratch.path.join("h");
    let config = scratch.path.join("c");
    copy_handler(&handler)?;
    write_config(&config, &core_dir, &name)?;
    let line =
        crate::kernel::pattern::handler_line(&handler, Some(&config), KernelFeatures::running())?;
    if let Some(saved) = settings.saved() {
        println!(
            "      was: core_pattern {:?}, core_pipe_limit {} (put back at the end)",
            saved.core_pattern, saved.core_pipe_limit
        );
    }
    settings.install(&line, crate::kernel::settings::DEFAULT_PIPE_LIMIT)?;
    println!("      now: {line}");
    println!(
        "      its configuration ({}): cores in {}, snapshot session {name:?}",
        config.display(),
        core_dir.display()
    );
    check(interrupted)?;

    println!(
        "[4/6] Running {} (traced; it crashes)",
        program::PROGRAM_NAME
    );
    let program = program::write_program(&scratch.path).map_err(anyhow::Error::msg)?;
    let pid = crash(&program, interrupted)?;

    println!("[5/6] Crash record");
    let record_path = wait_for_record(&core_dir, pid, interrupted)?;
    println!("      {}", record_path.display());
    let record = read_record(&record_path)?;
    // The crash is handled: the kernel can have its settings back.
    if let Some(saved) = settings.restore()? {
        println!("      {}", kernel_settings::restored_message(&saved));
    }
    let found = report(&record, &name);

    println!("[6/6] Cleaning up");
    if let Some(message) = session.destroy() {
        println!("      {message}");
    }
    if let Some(message) = daemon.stop() {
        println!("      {message}");
    }
    drop(scratch);
    println!(
        "      removed the demo's copies of the handler, its configuration and the program\n      \
         kept: {} (cores, crash records) and {} (snapshots)",
        core_dir.display(),
        snapshot_dir.display()
    );
    found
}

/// Creates `dir` (0755) if missing and checks that only root can write it:
/// the handler puts cores only in such a directory, and the session daemon
/// writes snapshots there as root.
fn root_only_directory(dir: &Path) -> Step<()> {
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err).with_context(|| format!("cannot create {}", dir.display())),
    }
    let metadata = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot inspect {}", dir.display()))?;
    if !metadata.is_dir() || metadata.uid() != 0 || metadata.mode() & 0o022 != 0 {
        return Err(anyhow!(
            "{} is not a directory owned by root that only root can write (owner uid {}, mode {:o}); \
             the handler would not put cores there. Remove it, or choose another with --dir",
            dir.display(),
            metadata.uid(),
            metadata.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The demo's own short-lived directory, for the handler copy, its
/// configuration and the program: short, because the kernel keeps only 127
/// bytes of core_pattern; removed when dropped.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create() -> Step<ScratchDir> {
        let name = format!("lcdemo-{}", std::process::id());
        let mut problems = Vec::new();
        for base in ["/run", "/tmp"] {
            let noexec = rustix::fs::statvfs(base)
                .map(|fs| fs.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC));
            match noexec {
                Ok(false) => {}
                Ok(true) => {
                    problems.push(format!("{base} is mounted noexec"));
                    continue;
                }
                Err(err) => {
                    problems.push(format!("{base}: {err}"));
                    continue;
                }
            }
            let path = Path::new(base).join(&name);
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(ScratchDir { path }),
                Err(err) => problems.push(format!("cannot create {}: {err}", path.display())),
            }
        }
        Err(anyhow!(
            "no place for the demo's handler copy: {}",
            problems.join("; ")
        ))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The demo's tracing session; destroyed when dropped.
struct DemoSession {
    session: Option<Session>,
}

impl DemoSession {
    fn create(name: &str, snapshot_dir: &Path) -> Step<DemoSession> {
        let session = SessionBuilder::new(name)
            .snapshot()
            .output(SessionOutput::Local(snapshot_dir.to_path_buf()))
            .create()
            .with_context(|| format!("creating the tracing session {name:?}"))?;
        let demo = DemoSession {
            session: Some(session),
        };
        let session = demo.session.as_ref().expect("just set");
        // Per-user buffers: they belong to the daemon, not to the process,
        // so they outlive the crash whatever happens to the process.
        let channel = ChannelBuilder::new("demo", Domain::UserSpace)
            .overwrite()
            .buffer_type(BufferType::PerUid)
            .subbuf_size(64 * 1024)
            .num_subbuf(4)
            .enable(session)
            .with_context(|| format!("enabling the demo channel in {name:?}"))?;
        EventBuilder::named(program::EVENTS)
            .enable(session, &channel)
            .with_context(|| format!("enabling {} in {name:?}", program::EVENTS))?;
        session
            .start()
            .with_context(|| format!("starting the tracing session {name:?}"))?;
        Ok(demo)
    }

    fn destroy(&mut self) -> Option<String> {
        let session = self.session.take()?;
        let name = session.name().to_string();
        Some(match session.destroy() {
            Ok(()) => format!("destroyed the tracing session {name:?}"),
            Err(err) => format!("could not destroy the tracing session {name:?}: {err}"),
        })
    }
}

impl Drop for DemoSession {
    fn drop(&mut self) {
        if let Some(message) = self.destroy() {
            println!("{message}");
        }
    }
}

fn copy_handler(to: &Path) -> Step<()> {
    let this = std::env::current_exe().context("cannot tell where this program is")?;
    std::fs::copy(&this, to)
        .with_context(|| format!("cannot copy {} to {}", this.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", to.display()))
}

/// The handler's configuration for the demo: its session only (never the
/// other active sessions of the root daemon), cores in the demo directory.
fn write_config(path: &Path, core_dir: &Path, session: &str) -> Step<()> {
    let quoted = |text: &str| toml::Value::String(text.to_string()).to_string();
    let core_dir = core_dir
        .to_str()
        .with_context(|| format!("{} is not UTF-8", core_dir.display()))?;
    let text = format!(
        "# Written by `lttng-coredump demo` for one run, then removed.\n\
         core_dir = {}\n\
         snapshot_sessions = [{}]\n\
         snapshot_active_sessions = false\n\
         snapshot_user_daemon = false\n\
         # More than the default 5 s: a busy shared session daemon may queue\n\
         # the demo's snapshot behind other clients' commands.\n\
         snapshot_deadline = 10\n\
         # Repeated demos replace their oldest cores instead of filling the disk.\n\
         max_dir_size = \"1G\"\n\
         min_free = \"64M\"\n",
        quoted(core_dir),
        quoted(session)
    );
    // Root-owned and not writable by others, or the handler ignores it.
    std::fs::write(path, text)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)))
        .with_context(|| format!("cannot write the demo configuration {}", path.display()))
}

/// Runs the program and returns its pid once it has died of a signal.
fn crash(program: &Path, interrupted: &AtomicBool) -> Step<i32> {
    let mut child = Command::new(program)
        // lttng-ust waits 3 s for the session daemon by default, then
        // traces nothing; a loaded machine can be slower.
        .env("LTTNG_UST_REGISTER_TIMEOUT", "30000")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let pid = child.id() as i32;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(err) => {
                return Err(err).with_context(|| format!("waiting for {}", program.display()))
            }
        }
        if interrupted.load(Ordering::SeqCst) || started.elapsed() > CRASH_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            check(interrupted)?;
            return Err(anyhow!(
                "{} (pid {pid}) was still running after {} s",
                program::PROGRAM_NAME,
                CRASH_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    match status.signal() {
        Some(signal) => println!(
            "      {} (pid {pid}) was killed by {}{}",
            program::PROGRAM_NAME,
            crate::crash::context::signal_name(signal).unwrap_or("a signal"),
            if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        None => {
            return Err(anyhow!(
                "{} (pid {pid}) did not crash: {status}",
                program::PROGRAM_NAME
            ))
        }
    }
    Ok(pid)
}

/// Waits for the handler's record of `pid` in `core_dir`.
fn wait_for_record(core_dir: &Path, pid: i32, interrupted: &AtomicBool) -> Step<PathBuf> {
    let prefix = format!("core.{}.{pid}.", program::PROGRAM_NAME);
    let started = Instant::now();
    loop {
        let found = std::fs::read_dir(core_dir)
            .with_context(|| format!("cannot read {}", core_dir.display()))?
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            // Root's record (a crashing user's copy ends in .user.json).
            .find(|name| {
                name.starts_with(&prefix)
                    && name.ends_with(".json")
                    && !name.ends_with(".user.json")
                    && !crate::store::report_file::is_report_name(name)
            });
        if let Some(name) = found {
            return Ok(core_dir.join(name));
        }
        check(interrupted)?;
        if started.elapsed() > RECORD_TIMEOUT {
            return Err(anyhow!(
                "no crash record of pid {pid} in {} after {} s: the handler did not run \
                 (see the system log, `journalctl -t lttng-coredump`, or `dmesg`)",
                core_dir.display(),
                RECORD_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_record(path: &Path) -> Step<StoredRecord> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    StoredRecord::parse(&bytes).map_err(|err| anyhow!("the crash record {}: {err}", path.display()))
}

/// Prints what the crash left, from its record; an error when the core or
/// the snapshot is missing.
fn report(record: &StoredRecord, session: &str) -> Step<()> {
    let mut problems = Vec::new();
    println!("\nThe crash left:");
    let core = record.core();
    match core.path {
        Some(path) => {
            let size = core.size;
            println!("  core:      {path}");
            println!(
                "  core size: {size} bytes ({}){}",
                human_size(size),
                match core.truncated_reason {
                    Some(reason) => format!(", cut short: {reason}"),
                    None => ", complete".into(),
                }
            );
        }
        None => {
            let reason = core.not_saved_reason.unwrap_or("no reason given");
            println!("  core:      none ({reason})");
            problems.push(format!("the core was not saved: {reason}"));
        }
    }
    let ours: Vec<_> = record
        .snapshots()
        .iter()
        .filter(|e| e.session == session)
        .collect();
    let snapshot = ours.iter().find_map(|entry| entry.path.as_deref());
    match snapshot {
        Some(path) => println!("  snapshot:  {path}"),
        None => {
            let reasons = record.trace_absence();
            let why = ours
                .iter()
                .find_map(|entry| entry.error.clone())
                .or_else(|| (!reasons.is_empty()).then(|| reasons.join("; ")))
                .unwrap_or_else(|| "the record names no snapshot of the demo session".into());
            println!("  snapshot:  none ({why})");
            problems.push(format!("no snapshot: {why}"));
        }
    }
    if !record.errors().is_empty() {
        println!("  the handler met these problems:");
        for error in record.errors() {
            println!("    - {error}");
        }
    }
    if let Some(path) = snapshot {
        println!(
            "\nThe last events of {} before it crashed (babeltrace2 {path}):",
            program::PROGRAM_NAME
        );
        match last_events(Path::new(path)) {
            Ok(events) if events.is_empty() => {
                println!("  (none)");
                problems.push("the snapshot holds none of the program's events".into());
            }
            Ok(events) => {
                for event in events {
                    println!("  {event}");
                }
            }
            Err(err) => {
                println!("  {err:#}");
                problems.push(format!("{err:#}"));
            }
        }
    }
    println!();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(problems.join("; ")))
    }
}

/// The program's events at the end of a snapshot, as babeltrace2 prints them.
fn last_events(snapshot: &Path) -> Step<Vec<String>> {
    let output = Command::new("babeltrace2")
        .arg(snapshot)
        .stdin(Stdio::null())
        .output()
        .context("cannot run babeltrace2 to read the snapshot (apt-get install -y babeltrace2)")?;
    if !output.status.success() {
        return Err(anyhow!(
            "babeltrace2 {} failed: {}",
            snapshot.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let provider = program::EVENTS.trim_end_matches('*');
    let events: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains(provider))
        .map(str::to_owned)
        .collect();
    let skip = events.len().saturating_sub(LAST_EVENTS);
    Ok(events.into_iter().skip(skip).collect())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(2 * 1024 * 1024 + 100 * 1024), "2.1 MiB");
    }

    #[test]
    fn directories_others_can_write_are_refused() {
        let dir = std::env::temp_dir().join(format!("handler-demo-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        root_only_directory(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = format!("{:#}", root_only_directory(&dir).unwrap_err());
        assert!(err.contains("only root can write"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
