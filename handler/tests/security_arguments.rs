//! What a crashing user puts in the handler's way through names and
//! arguments: a configuration in a directory the user may write is not
//! trusted; `--config` counts only as the first argument; a process name or
//! host name never becomes an option of the chained command; bidi controls
//! never reach the log raw. (Issue 10, item 8.)

use lttng_coredump_handler::crash::context::CrashContext;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::syslog::SyslogListener;
use testsupport::{ensure_test_user, unique_name, TempDir};

#[test]
fn a_configuration_in_a_directory_a_user_may_write_is_not_trusted() {
    let (uid, gid) = ensure_test_user("lcdh-h10-config", false);
    let dir = TempDir::new("lcdh-cfgdir");
    let cores = dir.path().join("cores");
    // A root-owned, 0644 file the user cannot write, in a directory the
    // user owns: the user can rename it away and put their own there.
    let users_dir = PathBuf::from(format!("/run/lcdh-u{}", std::process::id()));
    fs::create_dir_all(&users_dir).unwrap();
    std::os::unix::fs::chown(&users_dir, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(&users_dir, fs::Permissions::from_mode(0o755)).unwrap();
    struct RemoveDir(PathBuf);
    impl Drop for RemoveDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let _remove = RemoveDir(users_dir.clone());
    let config = users_dir.join("c.toml");
    fs::write(&config, config_for(&cores, "")).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    handler.guard().set(&handler_line(&handler.binary, &config));
    let output = run_bounded(
        crasher_command().args([&unique_name("c"), "1", "segv"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let _cleanup = DefaultDirCleanup(vec![pid]);
    let (_, record) = wait_for_record(Path::new(DEFAULT_CORE_DIR), pid);
    let errors = record["errors"].to_string();
    assert!(
        errors.contains(&users_dir.display().to_string()) && errors.contains("not trusted"),
        "{errors}"
    );
    assert!(names_in(&cores).is_empty());
}

/// The arguments a kernel before 5.3 gives the handler: it expands the
/// specifiers first and splits at spaces after, so a process name with
/// spaces becomes several arguments.
fn split_like_an_old_kernel(line: &str, comm: &str) -> Vec<OsString> {
    let expanded = line.replace("%e", comm);
    expanded
        .split(' ')
        .skip(2) // the program and "handle"
        .map(OsString::from)
        .collect()
}

#[test]
fn a_process_name_cannot_choose_the_configuration() {
    // Installed without --config: the handler reads the default file. A
    // process named "x --config /some/root/file" must not make it read
    // another root-owned file instead.
    let line =
        "|/usr/sbin/lttng-coredump handle P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E";
    let args = split_like_an_old_kernel(line, "x --config /etc/passwd");
    assert!(args.iter().any(|a| a == "--config"), "{args:?}");
    let parsed = CrashContext::from_kernel_args(args);
    assert_eq!(parsed.config, None, "{parsed:?}");
    assert!(
        parsed.errors.iter().any(|e| e.contains("--config")),
        "{:?}",
        parsed.errors
    );
    // The same with the option's other form.
    let args = split_like_an_old_kernel(line, "x --config=/etc/passwd");
    assert_eq!(CrashContext::from_kernel_args(args).config, None);
    // As the first argument it is the installed line's own.
    let parsed = CrashContext::from_kernel_args(
        ["--config", "/etc/x.toml", "P=1"]
            .iter()
            .map(OsString::from),
    );
    assert_eq!(parsed.config, Some(PathBuf::from("/etc/x.toml")));
}

#[test]
fn a_process_or_host_name_never_becomes_an_option_of_the_chained_command() {
    let dir = TempDir::new("lcdh-chainopt");
    let cores = dir.path().join("cores");
    let out = dir.path().join("args");
    // The chained command writes the arguments it got, one per line.
    let chain = format!(
        "[chain]\ncommand = [\"/bin/sh\", \"-c\", \"printf '%s\\\\n' \\\"$@\\\" > {}\", \"sh\", \"{{comm}}\", \"{{hostname}}\"]\n",
        out.display()
    );
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, &chain));
    // In a UTS namespace of its own, the crasher's host name is "-evil-host".
    let output = run_bounded(
        Command::new("unshare")
            .env("LTTNG_UST_REGISTER_TIMEOUT", REGISTER_TIMEOUT_MS)
            .args(["--uts", "/bin/sh", "-c"])
            .arg(format!(
            "printf %s -evil-host > /proc/sys/kernel/hostname && exec {} {} 1 segv 0 zero --help",
            crasher_path().display(),
            unique_name("o")
        )),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["process_name"], "--help", "{record:#}");
    assert_eq!(record["hostname"], "-evil-host", "{record:#}");
    let got = fs::read_to_string(&out).unwrap();
    let args: Vec<&str> = got.lines().collect();
    assert_eq!(args.len(), 2, "{got:?}");
    for arg in &args {
        assert!(!arg.starts_with('-'), "the chained command got {args:?}");
    }
    assert!(args[0].ends_with("-help") && args[1].ends_with("-evil-host"));
}

#[test]
fn bidi_controls_in_a_process_name_are_escaped_in_the_log() {
    let dir = TempDir::new("lcdh-bidi");
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    let syslog = SyslogListener::bind(dir.path());
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!("syslog_socket = \"{}\"\n", syslog.path.display()),
        ),
    );
    // "ab" RIGHT-TO-LEFT OVERRIDE "gpj" LRM: reads as "abjpg" on a terminal.
    let name = "ab\u{202e}gpj\u{200e}";
    let output = run_bounded(
        crasher_command().args([
            OsStr::new(&unique_name("b")),
            OsStr::new("1"),
            OsStr::new("segv"),
            OsStr::new("0"),
            OsStr::new("zero"),
            OsStr::from_bytes(name.as_bytes()),
        ]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    wait_for_record(&cores, pid);
    let messages = syslog.messages();
    let about: Vec<&String> = messages
        .iter()
        .filter(|m| m.contains(&format!("process {pid} ")))
        .collect();
    assert!(!about.is_empty(), "{messages:?}");
    for message in about {
        for control in ['\u{202e}', '\u{200e}'] {
            assert!(
                !message.contains(control),
                "raw bidi control in {message:?}"
            );
        }
        assert!(message.contains("ab\\xe2\\x80\\xaegpj"), "{message:?}");
    }
}
