//! `lttng-coredump status`: what is in place, gathered once into a
//! [`Status`] and shown for people (sizes in binary units) or as JSON
//! (`--json`), with an exit status scripts can test:
//!
//! - 0: installed, and a crash would be handled as configured (the line's
//!   binary exists, the configuration is valid, the core directory is
//!   usable, the root session daemon runs);
//! - 1: not installed (core_pattern does not run the handler);
//! - 2: installed, but something is wrong (each listed as a problem).
//!
//! Warnings (not persistent, a later sysctl.d entry, apport, a low
//! core_pipe_limit) do not change it. A user who may not talk to the root
//! session daemon is told so (permission denied), not that it is down.

use crate::base::config::{self, Config};
use crate::base::human;
use crate::kernel::backup::Backup;
use crate::kernel::settings::{KernelFeatures, KernelFiles};
use crate::setup::crash_plan;
use crate::store::space::{self, SpacePolicy};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Where the root session daemon listens (what `status` checks by default).
pub use lttng_ctl::daemon::ROOT_CLIENT_SOCKET as ROOT_SESSIOND_SOCKET;

/// How long `status` waits for the session daemon's answer.
const DAEMON_DEADLINE: Duration = Duration::from_secs(5);

pub const EXIT_WELL: u8 = 0;
pub const EXIT_NOT_INSTALLED: u8 = 1;
pub const EXIT_PROBLEM: u8 = 2;

/// Whether the root session daemon can be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonState {
    Alive,
    /// It listens, but this user may not connect (root, or the tracing
    /// group, may).
    PermissionDenied,
    NotRunning,
}

/// Connects to a session daemon's client socket.
pub fn daemon_state(socket: &Path) -> DaemonState {
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => DaemonState::Alive,
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            DaemonState::PermissionDenied
        }
        Err(_) => DaemonState::NotRunning,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KernelInfo {
    pub release: String,
    pub pidfd: bool,
    pub dump_mode: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoreDirInfo {
    pub path: String,
    pub usable: bool,
    pub error: Option<String>,
    /// Bytes a new core may still take.
    pub room_bytes: Option<u64>,
    pub max_core_size: u64,
    pub max_dir_size: u64,
    pub min_free: u64,
    pub max_age_secs: Option<u64>,
}

/// Everything `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub installed: bool,
    pub core_pattern: Option<String>,
    /// For a socket core_pattern: whether a service answers on it.
    pub listener: Option<String>,
    pub handler_binary: Option<String>,
    pub core_pipe_limit: Option<String>,
    pub kernel: KernelInfo,
    pub backup_path: String,
    pub backup: Option<Backup>,
    pub persistent_file: Option<String>,
    pub config_path: String,
    pub config_error: Option<String>,
    pub root_session_daemon: DaemonState,
    /// What a crash would snapshot now, as people read it.
    pub crash_plan: Vec<String>,
    pub core_dir: CoreDirInfo,
    /// Recent crashes (of the last [`RECENT`], newest first, those this
    /// user may read) whose trace is only in their core: a snapshot failed
    /// or none was taken, and the handler found the buffers in the core.
    pub trace_only_in_core: Vec<TraceInCore>,
    /// The spool of crashes shipped to the collector (`[submit]`).
    pub spool: Option<crate::setup::spool_status::SpoolStatus>,
    /// What keeps a crash from being handled as configured.
    pub problems: Vec<String>,
    /// What may go wrong later (at boot, under many crashes).
    pub warnings: Vec<String>,
    /// The other crash handlers that set core_pattern at boot.
    pub other_handlers: Vec<crate::kernel::other_handlers::Other>,
    /// What core_pattern will be after the next boot.
    pub after_boot: crate::kernel::other_handlers::Outlook,
    /// See the module's documentation.
    pub exit_status: u8,
}

/// How far back `status` looks for crashes whose trace is only in the core.
pub const RECENT: Duration = Duration::from_secs(7 * 86_400);
/// At most this many such crashes are listed.
const MAX_TRACE_IN_CORE: usize = 10;
/// At most this much of each one's summary is shown (whatever the record
/// holds: a record the handler writes bounds it, an older or foreign one
/// may not).
const MAX_SUMMARY_SHOWN: usize = 300;

/// `text`, cut at `max` bytes (on a character boundary) with `...`.
fn shortened(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

/// A crash whose trace is only in its core, and how to read it.
#[derive(Debug, Clone, Serialize)]
pub struct TraceInCore {
    pub pid: Option<i64>,
    pub process_name: Option<String>,
    pub time: Option<i64>,
    pub core: String,
    /// What the core holds (the record's `core_trace.summary`).
    pub summary: String,
    pub command: String,
}

/// The crashes of `dir` (those this user may read) of the last [`RECENT`]
/// whose trace is only in their core, still on disk; newest first.
pub fn crashes_with_trace_only_in_core(dir: &Path, now: i64) -> Vec<TraceInCore> {
    let Ok((crashes, _)) = crate::store::crashes::Store::at(dir).crashes() else {
        return Vec::new();
    };
    let since = now.saturating_sub(RECENT.as_secs() as i64);
    let mut crashes = crashes;
    crashes.sort_by_key(|c| std::cmp::Reverse(c.time()));
    let mut found: Vec<TraceInCore> = crashes
        .iter()
        .filter(|c| c.time().is_some_and(|t| t >= since))
        .filter(|c| c.record.core_trace().only_in_core)
        .filter(|c| crate::tools::trace::from_core::core_holds_trace(c) && c.core_state().on_disk())
        .map(|c| TraceInCore {
            pid: c.pid(),
            process_name: c.process_name().map(str::to_string),
            time: c.time(),
            core: c
                .core_path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            summary: shortened(&c.record.core_trace().summary, MAX_SUMMARY_SHOWN),
            command: format!(
                "lttng-coredump trace {} --from-core",
                c.pid().map(|p| p.to_string()).unwrap_or("MATCH".into())
            ),
        })
        .collect();
    found.truncate(MAX_TRACE_IN_CORE);
    found
}

/// Finds out what is in place.
pub fn gather(
    kernel: &KernelFiles,
    backup_path: &Path,
    config_path: Option<&Path>,
    sessiond_socket: &Path,
) -> Status {
    gather_with(
        kernel,
        backup_path,
        config_path,
        sessiond_socket,
        &crate::kernel::other_handlers::BootFiles::system(),
    )
}

/// [`gather`], reading the boot's settings from `boot`.
pub fn gather_with(
    kernel: &KernelFiles,
    backup_path: &Path,
    config_path: Option<&Path>,
    sessiond_socket: &Path,
    boot: &crate::kernel::other_handlers::BootFiles,
) -> Status {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let pattern = kernel.read_pattern();
    if let Err(err) = &pattern {
        problems.push(format!("{err:#}"));
    }
    let backup_now = Backup::read(backup_path).ok().flatten();
    let installed = pattern
        .as_ref()
        .is_ok_and(|p| crate::kernel::pattern::is_our_line(p, backup_now.as_ref()));
    // Socket mode: the kernel drops every core nothing accepts.
    let listener = pattern
        .as_ref()
        .ok()
        .and_then(|p| crate::kernel::pattern::socket_of_line(p))
        .map(|socket| match crate::service::listen::state(socket) {
            crate::service::listen::State::Alive(greeting) => format!("alive ({greeting})"),
            crate::service::listen::State::NotAnswering(why) => {
                problems.push(format!(
                    "core_pattern sends every core to {}, which takes connections but where no \
                     service answers: {why}. Every crash waits there, the process held by the \
                     kernel, until a service accepts it (a service restarting after it died is \
                     back within seconds; start it: systemctl start lttng-coredump, or \
                     lttng-coredump serve --hold)",
                    socket.display()
                ));
                format!(
                    "NOT ANSWERING: crashes wait in the socket's backlog until a service accepts \
                     them ({why})"
                )
            }
            crate::service::listen::State::None(why) => {
                problems.push(format!(
                    "core_pattern sends every core to {}, and nothing serves it: {why}. THE \
                     KERNEL DROPS EVERY CORE UNTIL A SERVICE LISTENS THERE: start it (systemctl \
                     start lttng-coredump.socket lttng-coredump, or lttng-coredump serve --hold) \
                     or put the pipe line back (lttng-coredump install)",
                    socket.display()
                ));
                format!(
                    "NONE: every core is being dropped now: the kernel cannot connect to {} \
                     ({why}), so each crash loses its core and leaves no record",
                    socket.display()
                )
            }
        });
    if let (Ok(p), Some(socket_line)) = (
        &pattern,
        backup_now.as_ref().and_then(|b| b.socket_line.as_ref()),
    ) {
        if crate::kernel::pattern::is_handler_line(p) {
            warnings.push(format!(
                "socket mode: installed ({socket_line}), but the service is not running: the \
                 pipe line stands in until it starts (systemctl start lttng-coredump, or \
                 lttng-coredump serve)"
            ));
        }
    }
    let handler_binary = pattern
        .as_ref()
        .ok()
        .filter(|_| installed)
        .and_then(|p| p.split(' ').next())
        .and_then(|p| p.strip_prefix('|'))
        .map(str::to_string);
    if let Some(binary) = &handler_binary {
        if !Path::new(binary).is_file() {
            problems.push(format!(
                "the handler binary {binary} does not exist: cores are lost"
            ));
        }
    }
    let pipe_limit = kernel.read_pipe_limit();
    match &pipe_limit {
        Ok(limit) => warnings.extend(crate::kernel::settings::pipe_limit_warning(limit)),
        Err(err) => problems.push(format!("{err:#}")),
    }
    warnings.extend(crate::kernel::fuse_timeout::advice(kernel));
    let sysctl_file = Path::new(crate::kernel::persist::DEFAULT_SYSCTL_FILE);
    warnings.extend(
        crate::kernel::persist::boot_warnings(sysctl_file, installed, boot)
            .lines()
            .map(|l| l.strip_prefix("warning: ").unwrap_or(l).to_string()),
    );
    let features = KernelFeatures::running();
    let backup = match Backup::read(backup_path) {
        Ok(backup) => backup,
        Err(err) => {
            warnings.push(format!("{err:#}"));
            None
        }
    };
    let other_handlers = crate::kernel::other_handlers::others(boot);
    let after_boot = crate::kernel::other_handlers::after_boot(boot, backup.as_ref());
    if installed && !after_boot.ours {
        warnings.push(format!(
            "{}: lttng-coredump loses core_pattern at the next boot (install --persist keeps it: \
             its sysctl.d file sorts after systemd-coredump's 50-coredump.conf, and it masks the \
             services that write their own line)",
            after_boot.describe()
        ));
    }
    let installed_config = pattern
        .as_ref()
        .ok()
        .and_then(|p| crate::kernel::pattern::config_in_line(p));
    let config_path = config_path.map(Path::to_path_buf).or(installed_config);
    let loaded = Config::load(config_path.as_deref());
    if let Some(error) = &loaded.error {
        problems.push(error.clone());
    }
    let config = loaded.config;
    let spool = crate::setup::spool_status::gather(&config, &mut problems, &mut warnings);
    let daemon = daemon_state(sessiond_socket);
    let mut crash_plan_lines = Vec::new();
    match daemon {
        DaemonState::Alive => {
            let mut plan = String::new();
            if !rustix::process::geteuid().is_root() {
                plan.push_str(
                    "  (not root: what follows is what this user's session daemon shows; run as root)\n",
                );
            }
            match crash_plan::query(DAEMON_DEADLINE) {
                Ok(state) => plan.push_str(&crash_plan::describe(&state, &config)),
                Err(err) => {
                    writeln!(plan, "  cannot tell: {err}").expect("String");
                    problems.push(format!("the root session daemon did not say: {err}"));
                }
            }
            writeln!(
                plan,
                "  and in the crashing user's own session daemon, when they run one: {}",
                if config.snapshot_user_daemon {
                    "its OnAnyCoreDump triggers, the configured sessions or the fallback, alike"
                } else {
                    "nothing (snapshot_user_daemon = false)"
                }
            )
            .expect("String");
            writeln!(
                plan,
                "  all within the snapshot deadline of {}, before the core is read",
                human::duration(config.snapshot_deadline)
            )
            .expect("String");
            crash_plan_lines = plan.lines().map(str::to_string).collect();
        }
        DaemonState::PermissionDenied => {}
        DaemonState::NotRunning => problems
            .push("the root session daemon is not running: no snapshot would be taken".into()),
    }
    let mut core_dir = CoreDirInfo {
        path: config.core_dir.display().to_string(),
        usable: false,
        error: None,
        room_bytes: None,
        max_core_size: config.max_core_size,
        max_dir_size: config.max_dir_size,
        min_free: config.min_free,
        max_age_secs: config.max_age.map(|a| a.as_secs()),
    };
    match crate::store::coredir::open_checked(&config.core_dir, false) {
        Ok(dir) => {
            core_dir.usable = true;
            let policy = SpacePolicy {
                max_dir_size: config.max_dir_size,
                min_free: config.min_free,
            };
            match space::room(std::os::fd::AsFd::as_fd(&dir.fd), policy) {
                Ok(room) => core_dir.room_bytes = Some(room),
                Err(err) => core_dir.error = Some(format!("cannot measure room: {err}")),
            }
        }
        // A missing directory is created on the first crash; an unsafe one
        // is replaced by the default (the handler says so in the record).
        Err(err) => {
            core_dir.error = Some(err.clone());
            if config.core_dir.exists() {
                problems.push(format!(
                    "core directory {}: {err} (the default {} is used instead)",
                    config.core_dir.display(),
                    config::DEFAULT_CORE_DIR
                ));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let trace_only_in_core = crashes_with_trace_only_in_core(&config.core_dir, now);
    let exit_status = if !installed {
        EXIT_NOT_INSTALLED
    } else if problems.is_empty() {
        EXIT_WELL
    } else {
        EXIT_PROBLEM
    };
    Status {
        installed,
        core_pattern: pattern.ok(),
        listener,
        handler_binary,
        core_pipe_limit: pipe_limit.ok(),
        kernel: KernelInfo {
            release: rustix::system::uname()
                .release()
                .to_string_lossy()
                .into_owned(),
            pidfd: features.pidfd,
            dump_mode: features.dump_mode,
        },
        backup_path: backup_path.display().to_string(),
        backup,
        persistent_file: sysctl_file
            .is_file()
            .then(|| sysctl_file.display().to_string()),
        config_path: config_path
            .as_deref()
            .unwrap_or(Path::new(config::DEFAULT_CONFIG_PATH))
            .display()
            .to_string(),
        config_error: loaded.error,
        root_session_daemon: daemon,
        crash_plan: crash_plan_lines,
        core_dir,
        trace_only_in_core,
        spool,
        problems,
        warnings,
        other_handlers,
        after_boot,
        exit_status,
    }
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

impl Status {
    /// For people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let line = |w: &mut String, text: String| writeln!(w, "{text}").expect("String");
        line(
            w,
            format!(
                "handler: {}",
                if self.installed {
                    "installed"
                } else {
                    "not installed"
                }
            ),
        );
        if let Some(pattern) = &self.core_pattern {
            line(w, format!("core_pattern: {pattern}"));
        }
        if let Some(listener) = &self.listener {
            line(w, format!("listener: {listener} (socket mode)"));
        }
        if let Some(limit) = &self.core_pipe_limit {
            line(w, format!("core_pipe_limit: {limit}"));
        }
        line(
            w,
            format!(
                "persistent: {}",
                match &self.persistent_file {
                    Some(file) => format!("yes ({file})"),
                    None => "no".into(),
                }
            ),
        );
        for other in &self.other_handlers {
            line(
                w,
                format!(
                    "other handler: {}{}, from {}: {}",
                    other.name,
                    if other.masked { " (masked)" } else { "" },
                    other.source.display(),
                    other.line
                ),
            );
        }
        line(
            w,
            format!(
                "after the next boot: {} (set by {}{})",
                self.after_boot.line,
                self.after_boot.owner,
                self.after_boot
                    .source
                    .as_ref()
                    .map(|s| format!(", {}", s.display()))
                    .unwrap_or_default()
            ),
        );
        line(
            w,
            format!(
                "kernel: {} (pidfd %F: {}, dump mode %d: {})",
                self.kernel.release,
                yes_no(self.kernel.pidfd),
                yes_no(self.kernel.dump_mode)
            ),
        );
        line(
            w,
            match &self.backup {
                Some(backup) => format!(
                    "backup: {} (core_pattern {:?}, core_pipe_limit {})",
                    self.backup_path, backup.core_pattern, backup.core_pipe_limit
                ),
                None => format!("backup: none at {}", self.backup_path),
            },
        );
        line(
            w,
            format!(
                "configuration: {} ({})",
                self.config_path,
                match &self.config_error {
                    Some(error) => format!("BAD: {error}"),
                    None => "ok".into(),
                }
            ),
        );
        line(
            w,
            format!(
                "root session daemon: {}",
                match self.root_session_daemon {
                    DaemonState::Alive => "alive",
                    DaemonState::PermissionDenied =>
                        "running, but permission denied to this user (run status as root, or \
                         join the tracing group, to see what a crash would snapshot)",
                    DaemonState::NotRunning => "not running (no snapshot would be taken)",
                }
            ),
        );
        if !self.crash_plan.is_empty() {
            line(w, "on a crash now, in the root session daemon:".into());
            for plan in &self.crash_plan {
                line(w, plan.clone());
            }
        }
        let dir = &self.core_dir;
        let limits = format!(
            "limits: core {}, directory {}, keep {} free{}",
            human::size(dir.max_core_size),
            human::size(dir.max_dir_size),
            human::size(dir.min_free),
            dir.max_age_secs
                .map(|s| format!(
                    ", nothing older than {}",
                    human::duration(Duration::from_secs(s))
                ))
                .unwrap_or_default()
        );
        line(
            w,
            match (dir.usable, dir.room_bytes, &dir.error) {
                (true, Some(room), _) => format!(
                    "cores go to: {} (room for {} more; {limits})",
                    dir.path,
                    human::size(room)
                ),
                (true, None, error) => format!(
                    "cores go to: {} ({}; {limits})",
                    dir.path,
                    error.as_deref().unwrap_or("room unknown")
                ),
                (false, _, error) => format!(
                    "cores go to: {} ({}; it is created on the first crash if missing, the \
                     default {} is used if unsafe; {limits})",
                    dir.path,
                    error.as_deref().unwrap_or("not usable"),
                    config::DEFAULT_CORE_DIR
                ),
            },
        );
        if !self.trace_only_in_core.is_empty() {
            line(
                w,
                format!(
                    "crashes of the last {} whose trace is only in the core (no snapshot, or one \
                     failed):",
                    human::duration(RECENT)
                ),
            );
            for crash in &self.trace_only_in_core {
                line(
                    w,
                    format!(
                        "  PID {} ({}) at {}: {}",
                        crash
                            .pid
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "?".into()),
                        human::escape(crash.process_name.as_deref().unwrap_or("?")),
                        crash
                            .time
                            .map(crate::tools::select::local_time)
                            .unwrap_or_else(|| "?".into()),
                        human::escape(&crash.summary)
                    ),
                );
                line(w, format!("    read it: {}", crash.command));
                line(
                    w,
                    format!(
                        "    or: lttng-coredump recover {} -o DIR",
                        human::escape(&crash.core)
                    ),
                );
            }
        }
        if let Some(spool) = &self.spool {
            w.push_str(&spool.text());
        }
        for problem in &self.problems {
            line(w, format!("problem: {problem}"));
        }
        for warning in &self.warnings {
            line(w, format!("warning: {warning}"));
        }
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the status serializes") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_nobody_may_reach_is_permission_denied_not_down() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("handler-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("client");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        assert_eq!(daemon_state(&socket), DaemonState::Alive);
        assert_eq!(daemon_state(&dir.join("none")), DaemonState::NotRunning);
        // As root, permissions do not stop a connect: the unprivileged case
        // is checked by the system test; here only the mapping of EACCES.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o000)).unwrap();
        let expected = if rustix::process::geteuid().is_root() {
            DaemonState::Alive
        } else {
            DaemonState::PermissionDenied
        };
        assert_eq!(daemon_state(&socket), expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn recent_crashes_whose_trace_is_only_in_the_core_are_listed() {
        let dir = std::env::temp_dir().join(format!("handler-status-tic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = 1_800_000_000;
        let record = |name: &str, time: i64, only: bool, core: bool| {
            let core_path = dir.join(format!("core.{name}"));
            if core {
                std::fs::write(&core_path, b"core").unwrap();
            }
            let json = serde_json::json!({
                "pid": time % 1000,
                "time": time,
                "process_name": name,
                "core": {"saved": true, "complete": true, "path": core_path},
                "core_trace": {
                    "checked": true,
                    "only_in_core": only,
                    "summary": format!("{name} holds it"),
                    "traces": [{"uuid": "x", "streams": 1, "packets": 1, "bytes": 1}],
                },
            });
            std::fs::write(dir.join(format!("core.{name}.json")), json.to_string()).unwrap();
        };
        record("old", now - RECENT.as_secs() as i64 - 1, true, true);
        record("snapshotted", now - 10, false, true);
        record("gone", now - 10, true, false);
        record("a-second", now - 50, true, true);
        record("first", now - 100, true, true);
        let found = crashes_with_trace_only_in_core(&dir, now);
        let names: Vec<_> = found
            .iter()
            .map(|c| c.process_name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a-second", "first"]);
        assert_eq!(found[0].command, "lttng-coredump trace 950 --from-core");
        assert_eq!(found[0].summary, "a-second holds it");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_summary_is_shown_bounded_whatever_the_record_holds() {
        assert_eq!(shortened("short", 300), "short");
        let long = "é".repeat(1000);
        let shown = shortened(&long, MAX_SUMMARY_SHOWN);
        assert!(shown.len() <= MAX_SUMMARY_SHOWN + 3, "{}", shown.len());
        assert!(shown.ends_with("..."));
    }
}
