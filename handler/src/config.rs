//! The handler's configuration: one TOML file (by default
//! `/etc/lttng-coredump/config.toml`), every key optional with a sane
//! default. A bad file never costs a core: the handler logs why and runs
//! with the defaults.

use serde::Deserialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/lttng-coredump/config.toml";
pub const DEFAULT_CORE_DIR: &str = "/var/lib/lttng-coredump/cores";

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
    /// Cores and records older than this are deleted (`vacuum`); `None`:
    /// no age limit.
    pub max_age: Option<Duration>,
    /// Cores of one program (by name) kept per minute; past it a crash gets
    /// its snapshots and record but no core file. 0: no limit.
    pub max_cores_per_minute: u32,
    /// Total time the snapshots may take before the core is read.
    pub snapshot_deadline: Duration,
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            core_dir: PathBuf::from(DEFAULT_CORE_DIR),
            save_core: true,
            compression: Compression::None,
            zstd_level: 3,
            max_core_size: 8 * GIB,
            max_dir_size: 16 * GIB,
            min_free: GIB,
            max_age: None,
            max_cores_per_minute: 10,
            snapshot_deadline: Duration::from_secs(5),
            snapshot_sessions: Vec::new(),
            snapshot_active_sessions: true,
            snapshot_user_daemon: true,
            chain: None,
            syslog_socket: PathBuf::from(crate::syslog::DEFAULT_SOCKET),
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
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Loaded {
                    config: Config::default(),
                    error: None,
                }
            }
            Err(err) => return defaults(err.to_string()),
        };
        // The file decides which command runs as root on every crash: only
        // root may be able to change it.
        if metadata.uid() != 0 || metadata.mode() & 0o022 != 0 {
            return defaults(format!(
                "not trusted: owner uid {} mode {:o} (must be owned by root and not \
                 writable by group or others)",
                metadata.uid(),
                metadata.mode() & 0o7777
            ));
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => return defaults(err.to_string()),
        };
        let parsed = crate::config_parse::parse(&text);
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
        let parsed = crate::config_parse::parse(text);
        if parsed.problems.is_empty() {
            Ok(parsed.config)
        } else {
            Err(parsed.problems.join("; "))
        }
    }
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
            compression = "zstd"
            zstd_level = 9
            max_core_size = "512M"
            max_dir_size = 1073741824
            min_free = "2GiB"
            max_cores_per_minute = 3
            snapshot_deadline = 1.5
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
        assert_eq!(config.compression, Compression::Zstd);
        assert_eq!(config.zstd_level, 9);
        assert_eq!(config.max_core_size, 512 * MIB);
        assert_eq!(config.max_dir_size, GIB);
        assert_eq!(config.min_free, 2 * GIB);
        assert_eq!(config.max_cores_per_minute, 3);
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
}
