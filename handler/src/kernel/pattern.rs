//! The core_pattern lines of the handler: the pipe line `install`
//! writes (every field the handler asks the kernel for, named, within the
//! kernel's 127 bytes), how a line is recognized as the handler's (its
//! pipe line, or the socket line the backup recorded), and the socket a
//! `@`/`@@` line sends cores to.

use crate::base::config;
use crate::kernel::backup::Backup;
use crate::kernel::settings::KernelFeatures;
use anyhow::{anyhow, Context as _};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The kernel keeps at most this many bytes of core_pattern
/// (CORENAME_MAX_SIZE is 128, with the terminating NUL).
pub const MAX_PATTERN_LEN: usize = 127;

/// The specifiers the handler asks the kernel for, in the order `install`
/// writes them, as `(key, core_pattern specifier)`.
pub const FIELDS: &[(&str, &str)] = &[
    ("P", "%P"),
    ("u", "%u"),
    ("g", "%g"),
    ("s", "%s"),
    ("t", "%t"),
    ("c", "%c"),
    ("d", "%d"),
    ("F", "%F"),
    ("h", "%h"),
    ("e", "%e"),
    ("E", "%E"),
];

/// The core_pattern line that runs `binary` with the fields this kernel
/// supports; refused when the kernel could not hold it.
pub fn handler_line(
    binary: &Path,
    config: Option<&Path>,
    features: KernelFeatures,
) -> anyhow::Result<String> {
    let mut line = format!("|{} handle", pattern_path(binary, "binary")?);
    if let Some(config) = config {
        write!(line, " --config {}", pattern_path(config, "configuration")?).expect("String");
    }
    for (key, specifier) in FIELDS {
        let supported = match *key {
            "F" => features.pidfd,
            "d" => features.dump_mode,
            _ => true,
        };
        if supported {
            write!(line, " {key}={specifier}").expect("String");
        }
    }
    if line.len() > MAX_PATTERN_LEN {
        return Err(anyhow!(
            "the core_pattern line would be {} bytes, and the kernel keeps only {MAX_PATTERN_LEN} \
             (it would cut the line): {line:?}. Install the binary at a shorter path (for example \
             /usr/local/bin/lttng-coredump), or leave out --config and use the default \
             configuration file {}",
            line.len(),
            config::DEFAULT_CONFIG_PATH
        ));
    }
    Ok(line)
}

/// A path as it may appear in core_pattern: absolute, and without the
/// characters the kernel would split on (space) or expand (`%`).
fn pattern_path(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("the {what} path {path:?} is not UTF-8"))?;
    if !path.is_absolute() {
        return Err(anyhow!(
            "the {what} path {text:?} must be absolute (the kernel runs the handler from /)"
        ));
    }
    if text
        .chars()
        .any(|c| c.is_whitespace() || c == '%' || c.is_control())
    {
        return Err(anyhow!(
            "the {what} path {text:?} holds a space, a control character or a %, which core_pattern \
             cannot carry"
        ));
    }
    Ok(text.to_string())
}

/// Whether a core_pattern is a line of this handler (of any path).
pub fn is_handler_line(pattern: &str) -> bool {
    let mut words = pattern.split(' ');
    let Some(program) = words.next() else {
        return false;
    };
    program.starts_with('|')
        && words.any(|w| w == "handle")
        && pattern.split(' ').any(|w| w == "P=%P")
}

/// The `--config` path named in a handler line.
pub fn config_in_line(pattern: &str) -> Option<PathBuf> {
    let words: Vec<&str> = pattern.split(' ').collect();
    words
        .windows(2)
        .find(|pair| pair[0] == "--config")
        .map(|pair| PathBuf::from(pair[1]))
}

/// Whether a core_pattern is a line of this handler: its pipe line (of any
/// path), or the socket line `install --socket` recorded in the backup.
pub fn is_our_line(pattern: &str, backup: Option<&Backup>) -> bool {
    is_handler_line(pattern) || backup.is_some_and(|b| b.socket_line.as_deref() == Some(pattern))
}

/// The socket a `@PATH` or `@@PATH` core_pattern sends cores to.
pub fn socket_of_line(pattern: &str) -> Option<&Path> {
    let path = pattern
        .strip_prefix("@@")
        .or_else(|| pattern.strip_prefix('@'))?;
    path.starts_with('/').then(|| Path::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::settings::tests::NEW;

    #[test]
    fn lines_fit_the_kernel_or_are_refused_with_the_reason() {
        let line = handler_line(Path::new("/usr/local/bin/lttng-coredump"), None, NEW).unwrap();
        assert_eq!(
            line,
            "|/usr/local/bin/lttng-coredump handle P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E"
        );
        assert!(is_handler_line(&line));
        let old = handler_line(
            Path::new("/usr/bin/lttng-coredump"),
            None,
            KernelFeatures {
                pidfd: false,
                dump_mode: true,
            },
        )
        .unwrap();
        assert!(!old.contains("%F"));
        let with_config =
            handler_line(Path::new("/usr/bin/x"), Some(Path::new("/etc/c.toml")), NEW).unwrap();
        assert_eq!(
            config_in_line(&with_config),
            Some(PathBuf::from("/etc/c.toml"))
        );

        let long =
            Path::new("/opt/a-very-long-installation-prefix/with/many/levels/bin/lttng-coredump");
        let err = handler_line(long, None, NEW)
            .map_err(|err| format!("{err:#}"))
            .unwrap_err();
        assert!(err.contains("127") && err.contains("shorter path"), "{err}");
        assert!(handler_line(Path::new("/my bin/x"), None, NEW)
            .map_err(|err| format!("{err:#}"))
            .unwrap_err()
            .contains("space"));
        assert!(handler_line(Path::new("/bin/%p"), None, NEW).is_err());
        assert!(handler_line(Path::new("bin/x"), None, NEW)
            .map_err(|err| format!("{err:#}"))
            .unwrap_err()
            .contains("absolute"));
    }

    #[test]
    fn socket_lines_are_ours_only_when_the_backup_says_so() {
        assert_eq!(
            socket_of_line("@@/run/lttng-coredump/coredump.socket"),
            Some(Path::new("/run/lttng-coredump/coredump.socket"))
        );
        assert_eq!(socket_of_line("@/run/s"), Some(Path::new("/run/s")));
        assert_eq!(socket_of_line("@@relative"), None);
        assert_eq!(socket_of_line("|/bin/x"), None);
        let backup = Backup {
            core_pattern: "core".into(),
            core_pipe_limit: "0".into(),
            masked_units: Vec::new(),
            socket_line: Some("@@/run/s".into()),
            pipe_line: Some("|/x handle P=%P".into()),
        };
        assert!(is_our_line("@@/run/s", Some(&backup)));
        assert!(!is_our_line("@@/run/other", Some(&backup)));
        assert!(!is_our_line("@@/run/s", None));
        assert!(is_our_line("|/x handle P=%P", None));
    }

    #[test]
    fn handler_lines_are_recognized() {
        assert!(!is_handler_line("core"));
        assert!(!is_handler_line(
            "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h"
        ));
        assert!(!is_handler_line("/tmp/cores/core.%e.%p"));
        assert!(is_handler_line("|/x handle --config /c P=%P u=%u"));
    }
}
