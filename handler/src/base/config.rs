//! The handler's configuration: one TOML file (by default
//! `/etc/lttng-coredump/config.toml`), every key optional with a sane
//! default. A bad file never costs a core: the handler logs why and runs
//! with the defaults.

pub use lttng_coredump_fleet::config::SubmitConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/lttng-coredump/config.toml";
pub const DEFAULT_CORE_DIR: &str = "/var/lib/lttng-coredump/cores";
/// journald's native socket on a system that runs it.
pub const DEFAULT_JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// How cores are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
        }
    }
}

/// A command the core is also handed to (for example systemd-coredump).
#[derive(Debug, Clone, PartialEq)]
pub struct ChainConfig {
    /// Program and arguments, no shell. `{pid}`, `{uid}`, `{gid}`,
    /// `{signal}`, `{time}`, `{comm}`, `{hostname}`, `{core_limit}`,
    /// `{dump_mode}`, `{exe}` and `{pidfd}` are filled from the crash.
    pub command: Vec<String>,
    /// The chained command is given up on (its input closed, and it is
    /// killed) when it accepts no data for this long.
    pub stall_timeout: Duration,
    /// How long the handler waits for the chained command to exit once it
    /// has all of the core.
    pub exit_timeout: Duration,
}

/// Everything the handler can be told. Sizes are bytes, or strings with a
/// binary suffix (`"512M"`, `"4G"`); durations are seconds, or strings
/// with a unit (`"500ms"`, `"5s"`, `"30d"`). The file is read key by key
/// (`config_parse`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where cores and crash records go (root-owned, not writable by others;
    /// created 0755 if missing). An unsafe directory is replaced by the
    /// default one.
    pub core_dir: PathBuf,
    /// Whether the handler keeps its own copy of the core (the record and
    /// the snapshots are taken either way).
    pub save_core: bool,
    /// Whether the saved core is scanned for LTTng-UST ring buffers (once
    /// the process is let go) and the record says what trace it holds.
    pub check_core_trace: bool,
    /// Whether a crash report is made once the core is saved and the
    /// process let go: every thread's backtrace and the signature that
    /// groups crashes into problems (`crash::report`), analyzed in a child
    /// acting as the crashing user (a service account for root's crashes
    /// and root-only cores).
    pub report: bool,
    /// How long one report's analysis may take; its child is killed then.
    pub report_deadline: Duration,
    /// Address space the analysis may use beyond the core it maps.
    pub report_memory: u64,
    /// The crashing process's last events the report carries (from its
    /// snapshot, else recovered from its core; `crash::last_events`), read
    /// by a child acting as the user within `report_deadline`; 0: none.
    pub report_last_events: u32,
    /// debuginfod servers the analysis asks for the debug information of
    /// modules that have none on the machine (space-separated `http://` or
    /// `https://` URLs, libdebuginfod's `DEBUGINFOD_URLS`); none: only
    /// what is installed, and libdebuginfod is never loaded.
    pub debuginfod_urls: Option<String>,
    /// How long one analysis's downloads may take together (at most
    /// `report_deadline`).
    pub debuginfod_timeout: Duration,
    /// Whether each crash is written to the journal as systemd-coredump
    /// writes it (`coredumpctl` reads it), over `journal_socket`.
    pub journal: bool,
    /// journald's native socket.
    pub journal_socket: PathBuf,
    pub compression: Compression,
    pub zstd_level: i32,
    /// Largest core kept (uncompressed size); longer cores are cut and
    /// marked truncated.
    pub max_core_size: u64,
    /// Largest total size of the core directory; the oldest cores are
    /// deleted to make room.
    pub max_dir_size: u64,
    /// Free space always left on the core directory's filesystem.
    pub min_free: u64,
    /// Cores and records older than this are deleted (`vacuum`, and after
    /// every crash); `None`: no age limit.
    pub max_age: Option<Duration>,
    /// Cores of one program (by executable path, per user: a process may
    /// rename itself at will, not its executable) kept per minute; past it
    /// a crash gets its snapshots and record but no core file. 0: no limit.
    pub max_cores_per_minute: u32,
    /// Cores of one user (whatever the programs) kept per minute. 0: no limit.
    pub max_cores_per_user_per_minute: u32,
    /// Crashes per minute that get the handler's own snapshots (the
    /// configured `snapshot_sessions` and the fallback to every active
    /// snapshot session); past it a crash gets only its triggers' snapshots.
    /// 0: no limit.
    pub max_snapshots_per_minute: u32,
    /// Of those, how many one uid's crashes may get a minute (root's
    /// included), so that one user's crash loop leaves the rest of the
    /// budget to everyone else. 0: no share (only the total); with no
    /// total (`max_snapshots_per_minute` = 0) there is no limit at all.
    pub max_snapshots_per_user_per_minute: u32,
    /// Snapshot directories made by the handler's own snapshots that are
    /// kept (the oldest are deleted). 0: no limit.
    pub max_snapshot_dirs: u32,
    /// Total size of the snapshot directories the handler keeps.
    pub max_snapshot_size: u64,
    /// Age past which a snapshot directory of the handler is deleted.
    pub max_snapshot_age: Duration,
    /// Total time the snapshots may take before the core is read.
    pub snapshot_deadline: Duration,
    /// Crashes of one uid handled at once with everything a crash gets
    /// (`crash_share`): in pipe mode the kernel's `core_pipe_limit` slots
    /// they may hold for long, in socket mode the service's workers. Past
    /// it a crash gets no fire in the user's own session daemon and its
    /// dump's FUSE wait is aborted sooner (pipe mode), or it waits for one
    /// of that user's crashes to end (socket mode). 0: no share.
    pub max_crashes_in_progress_per_user: u32,
    /// How long reading a core may go without a byte from the kernel: then
    /// the FUSE connections the process maps are aborted (see
    /// `abort_stalled_fuse`) and the dump goes on; with nothing to abort
    /// the read ends, the core is kept cut and marked, and the record says
    /// why.
    pub core_stall_timeout: Duration,
    /// Whether a stalled dump's FUSE connections (those of the file
    /// systems the crashed process maps files of, with requests waiting)
    /// are aborted, which lets the kernel's dump go on.
    pub abort_stalled_fuse: bool,
    /// Sessions snapshotted on every crash, besides those of triggers.
    pub snapshot_sessions: Vec<String>,
    /// When no trigger and no configured session applies, snapshot every
    /// active snapshot-mode session (the original handler's behaviour).
    pub snapshot_active_sessions: bool,
    /// Also fire in the crashing user's own session daemon, when it has one.
    pub snapshot_user_daemon: bool,
    pub chain: Option<ChainConfig>,
    /// The syslog socket the handler logs to (the kernel log is used when
    /// nothing listens there).
    pub syslog_socket: PathBuf,
    /// `[submit]`: each crash also enters the spool of crashes shipped to
    /// the collector's servers (`crash/submit.rs`, `lttng-coredump
    /// submit`); `None`: no spool, nothing shipped.
    pub submit: Option<SubmitConfig>,
    /// `[live]`: the triggers whose notifications make `serve` take a live
    /// core of the emitting process (`service/live_events.rs`); `None`:
    /// none.
    pub live: Option<crate::base::live_config::LiveEventsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            core_dir: PathBuf::from(DEFAULT_CORE_DIR),
            save_core: true,
            check_core_trace: true,
            report: true,
            report_deadline: Duration::from_secs(30),
            report_memory: GIB,
            report_last_events: 20,
            debuginfod_urls: None,
            debuginfod_timeout: Duration::from_secs(10),
            journal: true,
            journal_socket: PathBuf::from(DEFAULT_JOURNAL_SOCKET),
            compression: Compression::None,
            zstd_level: 3,
            max_core_size: 8 * GIB,
            max_dir_size: 16 * GIB,
            min_free: GIB,
            max_age: None,
            max_cores_per_minute: 10,
            max_cores_per_user_per_minute: 30,
            max_snapshots_per_minute: 10,
            max_snapshots_per_user_per_minute: 3,
            max_snapshot_dirs: 100,
            max_snapshot_size: 4 * GIB,
            max_snapshot_age: Duration::from_secs(7 * 24 * 3600),
            snapshot_deadline: Duration::from_secs(5),
            max_crashes_in_progress_per_user: 4,
            core_stall_timeout: Duration::from_secs(30),
            abort_stalled_fuse: true,
            snapshot_sessions: Vec::new(),
            snapshot_active_sessions: true,
            snapshot_user_daemon: true,
            chain: None,
            syslog_socket: PathBuf::from(crate::base::syslog::DEFAULT_SOCKET),
            submit: None,
            live: None,
        }
    }
}

/// A configuration and what was wrong with the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Set when the file, or some of its keys, could not be used (each such
    /// key keeps its default).
    pub error: Option<String>,
}

impl Config {
    /// Reads the configuration at `path`. A missing default file is not an
    /// error (the defaults are meant to work); a missing file named
    /// explicitly, an unreadable or unsafe one, or one that does not parse,
    /// gives the defaults and an error saying why.
    pub fn load(path: Option<&Path>) -> Loaded {
        let explicit = path.is_some();
        let path = path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
        let defaults = |error: String| Loaded {
            config: Config::default(),
            error: Some(format!(
                "configuration {}: {error}; using the defaults",
                path.display()
            )),
        };
        let text = match read_trusted(path) {
            Ok(text) => text,
            Err(TrustError::Missing) if !explicit => {
                return Loaded {
                    config: Config::default(),
                    error: None,
                }
            }
            Err(TrustError::Missing) => return defaults("No such file or directory".into()),
            Err(TrustError::Other(error)) => return defaults(error),
        };
        let parsed = crate::base::config_parse::parse(&text);
        Loaded {
            config: parsed.config,
            error: (!parsed.problems.is_empty()).then(|| {
                format!(
                    "configuration {}: {}",
                    path.display(),
                    parsed.problems.join("; ")
                )
            }),
        }
    }

    /// Parses configuration text strictly: every problem (each naming its
    /// line, column and key) is an error. `load` is the lenient reader.
    pub fn parse(text: &str) -> Result<Config, String> {
        let parsed = crate::base::config_parse::parse(text);
        if parsed.problems.is_empty() {
            Ok(parsed.config)
        } else {
            Err(parsed.problems.join("; "))
        }
    }
}

/// The file at `path` read as the handler reads it (every trust check of
/// [`Config::load`]) and parsed key by key; the error says why it could not
/// be read at all: missing, relative, untrusted or unreadable. For the
/// tools, which, unlike the handler, must not fall back to the defaults
/// when a person named a file.
pub fn read_checked(path: &Path) -> Result<crate::base::config_parse::Parsed, String> {
    match read_trusted(path) {
        Ok(text) => Ok(crate::base::config_parse::parse(&text)),
        Err(TrustError::Missing) => Err("no such file (or a directory above it is missing)".into()),
        Err(TrustError::Other(error)) => Err(error),
    }
}

/// Longest configuration read.
const MAX_CONFIG_LEN: u64 = 1 << 20;

enum TrustError {
    /// The file (or a directory above it) does not exist.
    Missing,
    Other(String),
}

/// Reads the file at `path`, opened once, component by component from `/`
/// without following a symlink: every directory above it must be owned by
/// root and not writable by group or others (a sticky one such as /tmp may
/// be: nobody else can rename root's entries in it), and the file itself a
/// regular file owned by root and not writable by group or others. Checked
/// on the open descriptors, then read from the very descriptor checked: the
/// file decides which command runs as root on every crash, so nobody but
/// root may be able to change it, or swap it, or a directory above it,
/// between the check and the read.
fn read_trusted(path: &Path) -> Result<String, TrustError> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    let other = |message: String| TrustError::Other(message);
    if !path.is_absolute() {
        return Err(other("not an absolute path".into()));
    }
    let components: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(other("the path has a .. component".into()));
    }
    let Some((file_name, directories)) = components.split_last() else {
        return Err(other("not a file".into()));
    };
    let open_error = |at: &Path, err: rustix::io::Errno| match err {
        rustix::io::Errno::NOENT => TrustError::Missing,
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => other(format!(
            "not trusted: {} is a symbolic link or not a directory",
            at.display()
        )),
        err => other(format!("cannot open {}: {err}", at.display())),
    };
    let mut at = PathBuf::from("/");
    let mut dir = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| open_error(&at, err))?;
    check_directory(&dir, &at)?;
    for name in directories {
        at.push(name);
        dir = rustix::fs::openat(
            &dir,
            *name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| open_error(&at, err))?;
        check_directory(&dir, &at)?;
    }
    at.push(file_name);
    // Non-blocking: a FIFO planted under the name must not hang the open.
    let fd = rustix::fs::openat(
        &dir,
        *file_name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| match err {
        rustix::io::Errno::LOOP => {
            other(format!("not trusted: {} is a symbolic link", at.display()))
        }
        err => open_error(&at, err),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|err| other(format!("cannot stat it: {err}")))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(other("not trusted: not a regular file".into()));
    }
    if stat.st_uid != 0 || stat.st_mode & 0o022 != 0 {
        return Err(other(format!(
            "not trusted: owner uid {} mode {:o} (must be owned by root and not \
             writable by group or others)",
            stat.st_uid,
            stat.st_mode & 0o7777
        )));
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_CONFIG_LEN)
        .read_to_string(&mut text)
        .map_err(|err| other(err.to_string()))?;
    Ok(text)
}

/// A directory above the configuration: root's, and not writable by
/// anyone else unless sticky.
fn check_directory(dir: &std::os::fd::OwnedFd, at: &Path) -> Result<(), TrustError> {
    let stat = rustix::fs::fstat(dir)
        .map_err(|err| TrustError::Other(format!("cannot stat {}: {err}", at.display())))?;
    let sticky = stat.st_mode & 0o1000 != 0;
    if stat.st_uid != 0 || (stat.st_mode & 0o022 != 0 && !sticky) {
        return Err(TrustError::Other(format!(
            "not trusted: the directory {} has owner uid {} mode {:o} (every directory above \
             the configuration must be owned by root and not writable by group or others, \
             unless sticky)",
            at.display(),
            stat.st_uid,
            stat.st_mode & 0o7777
        )));
    }
    Ok(())
}

/// `"123"`, `"64K"`, `"512M"`, `"4G"`, `"1T"` (binary multiples; a trailing
/// `iB` or `B` is accepted).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let without_b = trimmed
        .strip_suffix("iB")
        .or_else(|| trimmed.strip_suffix('B'))
        .unwrap_or(trimmed);
    let (digits, multiplier) = match without_b.chars().last() {
        Some('K' | 'k') => (&without_b[..without_b.len() - 1], KIB),
        Some('M' | 'm') => (&without_b[..without_b.len() - 1], MIB),
        Some('G' | 'g') => (&without_b[..without_b.len() - 1], GIB),
        Some('T' | 't') => (&without_b[..without_b.len() - 1], 1024 * GIB),
        _ => (without_b, 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(multiplier))
        .ok_or_else(|| {
            format!("invalid size {text:?} (expected bytes, or a number with K, M, G or T)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn every_key_is_read() {
        let config = Config::parse(
            r#"
            core_dir = "/srv/cores"
            save_core = false
            check_core_trace = false
            compression = "zstd"
            zstd_level = 9
            max_core_size = "512M"
            max_dir_size = 1073741824
            min_free = "2GiB"
            max_cores_per_minute = 3
            max_cores_per_user_per_minute = 7
            max_snapshots_per_minute = 4
            max_snapshots_per_user_per_minute = 2
            max_snapshot_dirs = 5
            max_snapshot_size = "1G"
            max_snapshot_age = 86400
            snapshot_deadline = 1.5
            max_crashes_in_progress_per_user = 6
            core_stall_timeout = "2min"
            abort_stalled_fuse = false
            snapshot_sessions = ["a", "b"]
            snapshot_active_sessions = false
            snapshot_user_daemon = false
            syslog_socket = "/run/systemd/journal/dev-log"
            [chain]
            command = ["/lib/systemd/systemd-coredump", "{pid}", "{uid}"]
            stall_timeout = 2
            exit_timeout = 0.5
            "#,
        )
        .unwrap();
        assert_eq!(config.core_dir, PathBuf::from("/srv/cores"));
        assert!(!config.save_core);
        assert!(!config.check_core_trace);
        assert_eq!(config.compression, Compression::Zstd);
        assert_eq!(config.zstd_level, 9);
        assert_eq!(config.max_core_size, 512 * MIB);
        assert_eq!(config.max_dir_size, GIB);
        assert_eq!(config.min_free, 2 * GIB);
        assert_eq!(config.max_cores_per_minute, 3);
        assert_eq!(config.max_cores_per_user_per_minute, 7);
        assert_eq!(config.max_snapshots_per_minute, 4);
        assert_eq!(config.max_snapshots_per_user_per_minute, 2);
        assert_eq!(config.max_crashes_in_progress_per_user, 6);
        assert_eq!(config.core_stall_timeout, Duration::from_secs(120));
        assert!(!config.abort_stalled_fuse);
        assert_eq!(config.max_snapshot_dirs, 5);
        assert_eq!(config.max_snapshot_size, GIB);
        assert_eq!(config.max_snapshot_age, Duration::from_secs(86400));
        assert_eq!(config.snapshot_deadline, Duration::from_millis(1500));
        assert_eq!(config.snapshot_sessions, ["a", "b"]);
        assert!(!config.snapshot_active_sessions);
        assert!(!config.snapshot_user_daemon);
        assert_eq!(
            config.syslog_socket,
            PathBuf::from("/run/systemd/journal/dev-log")
        );
        let chain = config.chain.unwrap();
        assert_eq!(chain.command.len(), 3);
        assert_eq!(chain.stall_timeout, Duration::from_secs(2));
        assert_eq!(chain.exit_timeout, Duration::from_millis(500));
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let err = Config::parse("save_core = true\nmax_core_size = \"lots\"\n").unwrap_err();
        assert!(
            err.starts_with("line 2, column 17, key max_core_size: expected a size"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");

        let err = Config::parse("core_dir = 42\n").unwrap_err();
        assert!(
            err.starts_with("line 1, column 12, key core_dir: expected an absolute path"),
            "{err}"
        );

        let err = Config::parse("[chain]\ncommand = [\"/bin/x\"]\nstall_timeout = \"5 parsecs\"\n")
            .unwrap_err();
        assert!(
            err.starts_with("line 3, column 17, key stall_timeout:"),
            "{err}"
        );

        let err = Config::parse("core_dri = \"/x\"\n").unwrap_err();
        assert!(err.contains("core_dri"), "{err}");
        assert!(err.contains("line 1"), "{err}");

        let err = Config::parse("snapshot_deadline = -1\n").unwrap_err();
        assert!(err.contains("expected a duration"), "{err}");
        assert!(Config::parse("core_dir = \"relative\"").is_err());
        assert!(Config::parse("[chain]\ncommand = []").is_err());
        assert!(Config::parse("[chain]\ncommand = [\"cat\"]").is_err());
        assert!(Config::parse("compression = \"lz4\"").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("64K"), Ok(64 * KIB));
        assert_eq!(parse_size("3 MiB"), Ok(3 * MIB));
        assert_eq!(parse_size("1T"), Ok(1024 * GIB));
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    fn private_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "handler-config-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bad_file_gives_defaults_and_an_error() {
        let dir = private_dir();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "compression = 7\n").unwrap();
        let loaded = Config::load(Some(&path));
        assert_eq!(loaded.config, Config::default());
        let error = loaded.error.unwrap();
        assert!(
            error.contains("bad.toml") && error.contains("key compression"),
            "{error}"
        );

        let missing = dir.join("missing.toml");
        let loaded = Config::load(Some(&missing));
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.error.unwrap().contains("missing.toml"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writable_file_is_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = private_dir();
        let path = dir.join("open.toml");
        std::fs::write(&path, "[chain]\ncommand = [\"/bin/sh\"]\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let loaded = Config::load(Some(&path));
        assert_eq!(loaded.config.chain, None);
        assert!(loaded.error.unwrap().contains("not trusted"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let loaded = Config::load(Some(&path));
        assert!(loaded.error.is_none(), "{:?}", loaded.error);
        assert!(loaded.config.chain.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_above_that_others_may_write_is_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = private_dir();
        let open = dir.join("open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = open.join("c.toml");
        std::fs::write(&path, "save_core = false\n").unwrap();
        let error = Config::load(Some(&path)).error.unwrap();
        assert!(
            error.contains("not trusted") && error.contains(&open.display().to_string()),
            "{error}"
        );
        // A symlink anywhere on the way is refused, not followed.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&open, dir.join("link")).unwrap();
        let error = Config::load(Some(&dir.join("link/c.toml"))).error.unwrap();
        assert!(error.contains("symbolic link"), "{error}");
        std::os::unix::fs::symlink(&path, dir.join("c-link.toml")).unwrap();
        let error = Config::load(Some(&dir.join("c-link.toml"))).error.unwrap();
        assert!(error.contains("symbolic link"), "{error}");
        // Through safe directories (/tmp is sticky) it is read.
        let loaded = Config::load(Some(&path));
        assert!(loaded.error.is_none(), "{:?}", loaded.error);
        assert!(!loaded.config.save_core);
        // A FIFO under the name does not hang the handler.
        let fifo = dir.join("fifo.toml");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(Config::load(Some(&fifo))
            .error
            .unwrap()
            .contains("not a regular file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
