//! The crash as the handler knows it, whichever way it came: the
//! transport-neutral [`CrashContext`] every step of the crash path reads,
//! with a constructor for each way a crash comes: from the kernel's
//! command line (`handle`, the pipe: [`CrashContext::from_kernel_args`])
//! and from a peer of the kernel's coredump socket (`serve`:
//! [`CrashContext::from_socket_peer`]).
//!
//! The command line: the core_pattern line names every field (`P=%P u=%u ...`), so a field
//! the kernel leaves empty or a value that holds spaces never shifts the
//! others. Values come as raw bytes: the process name (`%e`) is chosen by
//! the crashing process and may hold `=`, `/`, newlines or invalid UTF-8.
//! Nothing here fails: a missing, repeated, unknown or malformed field is
//! noted in `errors` and the rest is used.

use coredump_socket::PeerCrash;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

pub use crate::kernel::pattern::FIELDS;

/// The kernel's value of `%c` for an unlimited core size (RLIM_INFINITY).
pub const CORE_LIMIT_UNLIMITED: u64 = u64::MAX;

/// The crash, as the kernel's command line or the socket's peer describes
/// it (the fields are named after the core_pattern specifiers the pipe
/// gets). `None` means the field was not given, or could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashContext {
    /// `%P`: the PID in the initial PID namespace.
    pub pid: Option<i32>,
    /// `%p`: the PID in the crashing process's own namespace.
    pub namespace_pid: Option<i32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub signal: Option<i32>,
    /// `%t`: seconds since the epoch.
    pub time: Option<i64>,
    /// `%c`: the crashing process's RLIMIT_CORE, in bytes.
    pub core_limit: Option<u64>,
    /// `%d`: the dump mode (1: dumpable for its user, 2: set-uid, root only).
    pub dump_mode: Option<u32>,
    /// `%F`: the handler's fd holding a pidfd of the crashing process.
    pub pidfd: Option<i32>,
    pub hostname: Option<Vec<u8>>,
    /// `%e`: the process name (comm), raw.
    pub comm: Option<Vec<u8>>,
    /// `%E`: the executable path with `/` written as `!`, raw.
    pub exe_path_bang: Option<Vec<u8>>,
}

/// What the kernel's command line gives `handle`: the crash, and what
/// belongs to the pipe's line only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCommandLine {
    pub context: CrashContext,
    /// `--config PATH` given as the first argument (nowhere else).
    pub config: Option<PathBuf>,
    /// Every problem met, one line each, safe to log.
    pub errors: Vec<String>,
}

/// Whether `args` (what follows `handle`) are the kernel's: the
/// installed line always gives the field `P=%P`, which the kernel fills on
/// every crash, so one argument starting with `P=` is the mark of a call
/// by the kernel, however malformed the rest (missing, repeated, unknown
/// or non-numeric fields, a process name split into several words by a
/// kernel before 5.3, even an empty PID): such a call handles the crash
/// and saves its core. Anything else (no argument, `--help`, fields
/// without `P=`) is a person or a script trying the command: it gets the
/// usage and fires nothing.
pub fn is_kernel_form(args: &[OsString]) -> bool {
    args.iter().any(|arg| arg.as_bytes().starts_with(b"P="))
}

impl CrashContext {
    /// Parses the arguments that follow `handle` on the command line.
    pub fn from_kernel_args<I>(args: I) -> KernelCommandLine
    where
        I: IntoIterator<Item = OsString>,
    {
        let mut parsed = KernelCommandLine::default();
        let mut args = args.into_iter().peekable();
        let mut first = true;
        while let Some(arg) = args.next() {
            let bytes = arg.as_bytes();
            let is_first = std::mem::take(&mut first);
            // `--config` counts only as the very first argument, where the
            // installed line puts it: a kernel before 5.3 expands %e and
            // then splits at spaces, so a process named
            // "x --config /some/root/file" would otherwise choose the
            // configuration (and with it the command run as root).
            if bytes == b"--config" {
                let path = args.next();
                match path {
                    Some(path) if is_first => parsed.config = Some(path.into()),
                    Some(_) => parsed.errors.push(
                        "--config after the first argument ignored (only the installed line's \
                         own, first, --config counts)"
                            .into(),
                    ),
                    None => parsed.errors.push("--config without a path".into()),
                }
                continue;
            }
            if let Some(path) = bytes.strip_prefix(b"--config=") {
                if is_first {
                    parsed.config = Some(PathBuf::from(std::ffi::OsStr::from_bytes(path)));
                } else {
                    parsed.errors.push(
                        "--config= after the first argument ignored (only the installed \
                         line's own, first, --config counts)"
                            .into(),
                    );
                }
                continue;
            }
            match bytes.iter().position(|&b| b == b'=') {
                Some(eq) => parsed.set_field(&bytes[..eq], &bytes[eq + 1..]),
                None => parsed.errors.push(format!(
                    "argument {:?} is not KEY=VALUE",
                    crate::base::sanitize::for_log(bytes)
                )),
            }
        }
        for (key, _) in FIELDS {
            if !parsed.context.has(key) {
                parsed
                    .errors
                    .push(format!("field {key}= missing from the command line"));
            }
        }
        parsed
    }

    /// The crash of a peer of the coredump socket (`serve`), from its
    /// pidfd instead of the kernel's command line. The process's name and
    /// executable come from `/proc`, checked against the pidfd, as for the
    /// pipe.
    pub fn from_socket_peer(crash: &PeerCrash, pidfd: &OwnedFd) -> CrashContext {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        CrashContext {
            pid: Some(crash.pid),
            uid: Some(crash.uid),
            gid: Some(crash.gid),
            signal: crash.signal,
            time: Some(now),
            core_limit: core_limit_of(crash.pid),
            dump_mode: Some(crash.dump_mode),
            pidfd: Some(pidfd.as_raw_fd()),
            // The one the crashing process sees (its UTS namespace's).
            hostname: Some(
                crate::crash::uts::hostname_of(pidfd)
                    .unwrap_or_else(crate::crash::uts::own_hostname),
            ),
            ..CrashContext::default()
        }
    }

    fn has(&self, key: &str) -> bool {
        match key {
            "P" => self.pid.is_some(),
            "u" => self.uid.is_some(),
            "g" => self.gid.is_some(),
            "s" => self.signal.is_some(),
            "t" => self.time.is_some(),
            "c" => self.core_limit.is_some(),
            "d" => self.dump_mode.is_some(),
            "F" => self.pidfd.is_some(),
            "h" => self.hostname.is_some(),
            "e" => self.comm.is_some(),
            "E" => self.exe_path_bang.is_some(),
            _ => false,
        }
    }

    /// `%E` with its `!` turned back into `/` (the kernel's escaping of the
    /// path; a `!` in the real path cannot be told apart).
    pub fn exe_path_from_kernel(&self) -> Option<Vec<u8>> {
        self.exe_path_bang.as_ref().map(|raw| {
            raw.iter()
                .map(|&b| if b == b'!' { b'/' } else { b })
                .collect()
        })
    }

    /// The core size limit the crashing process set, `None` for unlimited
    /// or unknown (unknown is treated as unlimited: a core is never dropped
    /// for a field the handler could not read).
    pub fn core_limit_bytes(&self) -> Option<u64> {
        self.core_limit
            .filter(|&limit| limit != CORE_LIMIT_UNLIMITED)
    }
}

impl KernelCommandLine {
    fn set_field(&mut self, key: &[u8], value: &[u8]) {
        let key_text = crate::base::sanitize::for_log(key);
        let errors = &mut self.errors;
        let context = &mut self.context;
        let already_set = match key {
            b"P" => set_number(&mut context.pid, &key_text, value, errors),
            b"p" => set_number(&mut context.namespace_pid, &key_text, value, errors),
            b"u" => set_number(&mut context.uid, &key_text, value, errors),
            b"g" => set_number(&mut context.gid, &key_text, value, errors),
            b"s" => set_number(&mut context.signal, &key_text, value, errors),
            b"t" => set_number(&mut context.time, &key_text, value, errors),
            b"c" => set_number(&mut context.core_limit, &key_text, value, errors),
            b"d" => set_number(&mut context.dump_mode, &key_text, value, errors),
            b"F" => set_number(&mut context.pidfd, &key_text, value, errors),
            b"h" => set_bytes(&mut context.hostname, value),
            b"e" => set_bytes(&mut context.comm, value),
            b"E" => set_bytes(&mut context.exe_path_bang, value),
            _ => {
                errors.push(format!("unknown field {key_text:?} ignored"));
                false
            }
        };
        if already_set {
            errors.push(format!(
                "field {key_text}= given more than once; the first is kept"
            ));
        }
    }
}

/// Stores a numeric field unless it is already set; returns whether it was.
fn set_number<T: std::str::FromStr>(
    slot: &mut Option<T>,
    key: &str,
    value: &[u8],
    errors: &mut Vec<String>,
) -> bool {
    if slot.is_some() {
        return true;
    }
    let text = std::str::from_utf8(value).unwrap_or("");
    if text.is_empty() {
        errors.push(format!(
            "field {key}= has no number: {:?}",
            crate::base::sanitize::for_log(value)
        ));
    } else if let Ok(number) = text.parse() {
        *slot = Some(number);
    } else {
        errors.push(format!(
            "field {key}= is not a valid number: {:?}",
            crate::base::sanitize::for_log(value)
        ));
    }
    false
}

/// Stores a raw field unless it is already set; returns whether it was.
fn set_bytes(slot: &mut Option<Vec<u8>>, value: &[u8]) -> bool {
    if slot.is_some() {
        return true;
    }
    *slot = Some(value.to_vec());
    false
}

/// The name of a signal number (`SIGSEGV`), or `None` when it has none:
/// the report crate's table, one for the whole handler.
pub use lttng_coredump_report::signals::name as signal_name;

/// The process's RLIMIT_CORE (the kernel ignores it for sockets, and
/// gives `%c` only to pipes): its soft limit in `/proc/PID/limits`.
fn core_limit_of(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_core_limit(&text)
}

fn parse_core_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))?;
    let soft = line
        .trim_start_matches("Max core file size")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn args(list: &[&[u8]]) -> Vec<OsString> {
        list.iter()
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect()
    }

    fn full_line() -> Vec<OsString> {
        args(&[
            b"P=1234",
            b"u=1000",
            b"g=100",
            b"s=11",
            b"t=1700000000",
            b"c=18446744073709551615",
            b"d=1",
            b"F=3",
            b"h=box",
            b"e=crasher",
            b"E=!usr!bin!crasher",
        ])
    }

    #[test]
    fn a_full_line_is_parsed() {
        let parsed = CrashContext::from_kernel_args(full_line());
        assert_eq!(parsed.errors, Vec::<String>::new());
        assert_eq!(parsed.context.pid, Some(1234));
        assert_eq!(parsed.context.uid, Some(1000));
        assert_eq!(parsed.context.gid, Some(100));
        assert_eq!(parsed.context.signal, Some(11));
        assert_eq!(parsed.context.time, Some(1_700_000_000));
        assert_eq!(parsed.context.core_limit, Some(CORE_LIMIT_UNLIMITED));
        assert_eq!(parsed.context.core_limit_bytes(), None);
        assert_eq!(parsed.context.dump_mode, Some(1));
        assert_eq!(parsed.context.pidfd, Some(3));
        assert_eq!(parsed.context.hostname.as_deref(), Some(&b"box"[..]));
        assert_eq!(parsed.context.comm.as_deref(), Some(&b"crasher"[..]));
        assert_eq!(
            parsed.context.exe_path_from_kernel().as_deref(),
            Some(&b"/usr/bin/crasher"[..])
        );
        assert_eq!(parsed.config, None);
    }

    #[test]
    fn config_option_comes_before_the_fields() {
        let mut line = args(&[b"--config", b"/etc/x.toml"]);
        line.extend(full_line());
        let parsed = CrashContext::from_kernel_args(line);
        assert_eq!(parsed.config, Some(PathBuf::from("/etc/x.toml")));
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    }

    #[test]
    fn config_anywhere_but_first_is_ignored() {
        let mut line = full_line();
        line.insert(10, OsString::from("--config"));
        line.insert(11, OsString::from("/etc/passwd"));
        line.push(OsString::from("--config=/etc/shadow"));
        let parsed = CrashContext::from_kernel_args(line);
        assert_eq!(parsed.config, None);
        assert_eq!(parsed.context.comm.as_deref(), Some(&b"crasher"[..]));
        assert_eq!(
            parsed
                .errors
                .iter()
                .filter(|e| e.contains("after the first argument ignored"))
                .count(),
            2,
            "{:?}",
            parsed.errors
        );
        let mut line = args(&[b"--config", b"/a.toml", b"--config", b"/b.toml"]);
        line.extend(full_line());
        let parsed = CrashContext::from_kernel_args(line);
        assert_eq!(parsed.config, Some(PathBuf::from("/a.toml")));
    }

    #[test]
    fn hostile_values_stay_in_their_field() {
        let mut line = full_line();
        line[9] = OsString::from_vec(b"e=a=b /../x\n\xff".to_vec());
        line[8] = OsString::from_vec(b"h=".to_vec());
        let parsed = CrashContext::from_kernel_args(line);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(
            parsed.context.comm.as_deref(),
            Some(&b"a=b /../x\n\xff"[..])
        );
        assert_eq!(parsed.context.hostname.as_deref(), Some(&b""[..]));
        assert_eq!(parsed.context.pid, Some(1234));
    }

    #[test]
    fn bad_and_missing_fields_are_errors_not_failures() {
        let parsed = CrashContext::from_kernel_args(args(&[
            b"P=12x", b"u=", b"s=-", b"g=5", b"g=6", b"Z=1", b"loose", b"c=\xff",
        ]));
        assert_eq!(parsed.context.pid, None);
        assert_eq!(parsed.context.uid, None);
        assert_eq!(parsed.context.signal, None);
        assert_eq!(parsed.context.gid, Some(5));
        assert_eq!(parsed.context.core_limit, None);
        let all = parsed.errors.join("\n");
        for expected in [
            "field P= is not a valid number: \"12x\"",
            "field u= has no number",
            "field g= given more than once",
            "unknown field \"Z\"",
            "argument \"loose\" is not KEY=VALUE",
            "field c= has no number: \"\\\\xff\"",
            "field t= missing",
            "field e= missing",
        ] {
            assert!(all.contains(expected), "{expected:?} not in\n{all}");
        }
    }

    #[test]
    fn no_arguments_at_all() {
        let parsed = CrashContext::from_kernel_args(Vec::new());
        assert_eq!(parsed.errors.len(), FIELDS.len());
        assert_eq!(parsed.context.core_limit_bytes(), None);
    }

    #[test]
    fn only_an_argument_starting_with_p_equals_is_the_kernels_form() {
        let form = |list: &[&[u8]]| is_kernel_form(&args(list));
        assert!(form(&[b"P=1"]));
        assert!(form(&[b"--config", b"/etc/x.toml", b"P=1", b"u=0"]));
        // Malformed, but the kernel's: the core is saved, the record says why.
        assert!(form(&[b"P=", b"u=x"]));
        assert!(form(&[b"stray", b"P=12x", b"Z=1"]));
        assert!(form(&[b"e=a", b"--help", b"P=7"]));
        assert!(is_kernel_form(&full_line()));
        // A person or a script: usage, nothing fired.
        assert!(!form(&[]));
        assert!(!form(&[b"--help"]));
        assert!(!form(&[b"-h"]));
        assert!(!form(&[b"--config", b"/etc/x.toml"]));
        assert!(!form(&[b"u=0", b"g=0", b"s=11", b"p=4"]));
        assert!(!form(&[b"e=P=1"]));
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(11), Some("SIGSEGV"));
        assert_eq!(signal_name(6), Some("SIGABRT"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(64), None);
    }

    #[test]
    fn a_socket_peer_gives_its_crash_and_the_pipe_only_fields_stay_empty() {
        let pidfd = rustix::process::pidfd_open(
            rustix::process::getpid(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap();
        let crash = PeerCrash {
            pid: std::process::id() as i32,
            uid: 1000,
            gid: 100,
            dump_mode: 1,
            signal: None,
        };
        let context = CrashContext::from_socket_peer(&crash, &pidfd);
        assert_eq!(context.pid, Some(crash.pid));
        assert_eq!((context.uid, context.gid), (Some(1000), Some(100)));
        assert_eq!(context.dump_mode, Some(1));
        assert_eq!(context.signal, None);
        assert_eq!(context.pidfd, Some(pidfd.as_raw_fd()));
        // This process's own RLIMIT_CORE, from /proc.
        assert!(context.core_limit.is_some());
        assert!(context.time.is_some_and(|t| t > 1_700_000_000));
        assert!(context.hostname.is_some());
        // What only the kernel's command line gives.
        assert_eq!(context.comm, None);
        assert_eq!(context.exe_path_bang, None);
    }

    #[test]
    fn core_limits_from_proc() {
        let limits = |soft: &str| {
            format!(
                "Limit                     Soft Limit           Hard Limit           Units     \n\
                 Max cpu time              unlimited            unlimited            seconds   \n\
                 Max core file size        {soft:<21}unlimited            bytes     \n"
            )
        };
        assert_eq!(parse_core_limit(&limits("0")), Some(0));
        assert_eq!(parse_core_limit(&limits("4096")), Some(4096));
        assert_eq!(parse_core_limit(&limits("unlimited")), Some(u64::MAX));
        assert_eq!(parse_core_limit("nothing"), None);
        assert!(core_limit_of(std::process::id() as i32).is_some());
    }
}
