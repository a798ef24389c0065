//! The crash tools as people and scripts use them, on crash records this
//! test writes through the handler's own record types into a core
//! directory of its own (no kernel, no session daemon): commands that
//! cannot misfire (a `--config` that cannot be used, a directory that is
//! missing or unreadable, `config`'s checks), why a crash has no trace,
//! coredumpctl's options, a pager and colour on a real terminal and
//! neither in a pipe, `vacuum --dry-run`, and the bash and zsh completions
//! run by bash and zsh themselves.

use lttng_coredump_engine::{FireError, FireReport};
use lttng_coredump_handler::store::record::{
    CoreSection, CrashRecord, Crashed, DaemonFire, Identity, Signal, FORMAT,
};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::handler_binary;
use testsupport::process::{copy_executable, run_bounded};
use testsupport::TempDir;

const TIMEOUT: Duration = Duration::from_secs(120);

/// The tool, run with `args` (stdin not a terminal, stdout a pipe).
fn tool(args: &[&str]) -> Output {
    run_bounded(Command::new(handler_binary!()).args(args), TIMEOUT)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "the tool failed: {}{}",
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// A failure: exit status `code`, and the message holds every one of `says`.
fn failed_saying(output: &Output, code: i32, says: &[&str]) {
    assert_eq!(output.status.code(), Some(code), "{output:?}");
    let text = stderr(output);
    for said in says {
        assert!(text.contains(said), "{said:?} not in {text}");
    }
}

/// A test directory the handler's checks accept (root's, 0755).
fn test_dir(prefix: &str) -> TempDir {
    let dir = TempDir::new(prefix);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A configuration file (root's, 0644) holding `text`.
fn config_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A crash record as the handler writes it: `pid`, crashed at `time`, of
/// the program `exe`; its core (`core_bytes` long) saved in `cores`.
fn record(cores: &Path, pid: i32, time: i64, exe: &str, core_bytes: usize) -> CrashRecord {
    let name = Path::new(exe).file_name().unwrap().to_str().unwrap();
    let core = cores.join(format!("core.{name}.{pid}.{time}"));
    fs::write(&core, vec![7u8; core_bytes]).unwrap();
    CrashRecord {
        format: FORMAT.into(),
        crashed: Crashed {
            pid: Some(pid),
            uid: Some(0),
            gid: Some(0),
            signal: Some(Signal {
                number: 11,
                name: Some("SIGSEGV".into()),
            }),
            time: Some(time),
            process_name: Some(name.into()),
            exe_path: Some(exe.into()),
            cmdline: Some(vec![exe.into()]),
            process_identity: Identity::VerifiedByPidfd,
            ..Crashed::default()
        },
        core: CoreSection {
            saved: true,
            path: Some(core.display().to_string()),
            size: core_bytes as u64,
            stored_bytes: core_bytes as u64,
            bytes_received: core_bytes as u64,
            compression: "none".into(),
            complete: true,
            ..CoreSection::default()
        },
        // The root daemon answered and had nothing to snapshot.
        fires: vec![fire("root", FireReport::default())],
        ..CrashRecord::default()
    }
}

fn fire(daemon: &str, report: FireReport) -> DaemonFire {
    DaemonFire {
        daemon: daemon.into(),
        report: Some(report),
        ..DaemonFire::default()
    }
}

/// Writes `record` beside its core, as the handler names it.
fn plant(record: &CrashRecord) -> PathBuf {
    let core = PathBuf::from(record.core.path.as_deref().unwrap());
    let path = core.with_file_name(format!(
        "{}.json",
        core.file_name().unwrap().to_str().unwrap()
    ));
    fs::write(&path, record.to_json()).unwrap();
    path
}

/// A core directory holding three crashes of `/opt/t/prog-N`, 2 h, 30 min
/// and 1 min old (PIDs 101, 102, 103).
fn three_crashes(dir: &Path) -> PathBuf {
    let cores = dir.join("cores");
    fs::create_dir(&cores).unwrap();
    fs::set_permissions(&cores, fs::Permissions::from_mode(0o755)).unwrap();
    for (pid, ago, exe) in [
        (101, 7200, "/opt/t/prog-a"),
        (102, 1800, "/opt/t/prog-b"),
        (103, 60, "/opt/t/prog-c"),
    ] {
        plant(&record(&cores, pid, now() - ago, exe, 3 * 1024 * 1024));
    }
    cores
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn pids(json: &[Value]) -> Vec<i64> {
    json.iter().map(|c| c["pid"].as_i64().unwrap()).collect()
}

/// Two problems in a core directory: A (prog-a: 3, 1 h and 30 min ago)
/// with crashes 201, 203, 204, B (prog-b: 2 h and 1 min ago) with 202, 205,
/// and 206 (10 s ago) without a report. Returns the directory and the two
/// signatures.
fn two_problems(dir: &Path) -> (PathBuf, String, String) {
    let cores = dir.join("cores");
    fs::create_dir(&cores).unwrap();
    fs::set_permissions(&cores, fs::Permissions::from_mode(0o755)).unwrap();
    let a = "a1".repeat(32);
    let b = "b2".repeat(32);
    for (pid, ago, signature) in [
        (201, 10800, Some(&a)),
        (202, 7200, Some(&b)),
        (203, 3600, Some(&a)),
        (204, 1800, Some(&a)),
        (205, 60, Some(&b)),
        (206, 10, None),
    ] {
        let exe = match signature {
            Some(s) if s == &a => "/opt/t/prog-a",
            Some(_) => "/opt/t/prog-b",
            None => "/opt/t/prog-c",
        };
        let mut crash = record(&cores, pid, now() - ago, exe, 4096);
        if let Some(signature) = signature {
            crash.report.analyzed = true;
            crash.report.signature = Some(signature.clone());
            crash.report.title = Some(format!("{}: SIGSEGV in f", &exe[7..]));
        }
        plant(&crash);
    }
    (cores, a, b)
}

#[test]
fn problems_takes_coredumpctls_selection_as_list_does() {
    let dir = test_dir("lcdcli-problems");
    let (cores, a, b) = two_problems(dir.path());
    let cores_arg = cores.display().to_string();
    let problems = |extra: &[&str]| -> Vec<(String, i64)> {
        let mut args = vec!["problems", "--dir", &cores_arg, "--json=short"];
        args.extend(extra);
        json_lines(&succeeded(&tool(&args)))
            .iter()
            .map(|p| {
                (
                    p["signature"].as_str().unwrap().to_owned(),
                    p["count"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let (a3, b2) = ((a.clone(), 3), (b.clone(), 2));
    // Most frequent first; -n the N most frequent; -r reversed.
    assert_eq!(problems(&[]), [a3.clone(), b2.clone()]);
    assert_eq!(problems(&["-n", "1"]), vec![a3.clone()]);
    assert_eq!(problems(&["-r"]), [b2.clone(), a3.clone()]);
    // -1: the problem of the newest crash (205, of B), not the largest.
    assert_eq!(problems(&["-1"]), vec![b2.clone()]);
    // -S/-U (spaced, as journalctl) choose the crashes counted.
    assert_eq!(
        problems(&["-S", "-45min"]),
        [(b.clone(), 1), (a.clone(), 1)]
    );
    assert_eq!(
        problems(&["-U", "-45min"]),
        [(a.clone(), 2), (b.clone(), 1)]
    );
    // A MATCH: only prog-b's crashes.
    assert_eq!(problems(&["prog-b"]), vec![b2.clone()]);
    // --json=pretty: one document, an array.
    let pretty = succeeded(&tool(&["problems", "--dir", &cores_arg, "--json=pretty"]));
    let array: Vec<Value> = serde_json::from_str(&pretty).unwrap();
    assert_eq!(array.len(), 2, "{pretty}");
    assert!(pretty.starts_with("[\n  {"), "{pretty}");
    // The text form in a pipe: a heading, a line a problem, the crash
    // without a report counted; no colour, no pager.
    let table = succeeded(&tool(&["problems", "--dir", &cores_arg, "--no-pager"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("SIGNATURE"), "{table}");
    assert!(lines[1].starts_with(&a[..16]), "{table}");
    assert!(lines[3].starts_with("1 crash without a report"), "{table}");
    assert!(!table.contains('\x1b'), "{table}");

    // With a SIGNATURE (its start): that problem's crashes, oldest first;
    // -n the newest N, -r newest first, -1 the newest.
    let crashes_of = |extra: &[&str]| -> Vec<i64> {
        let mut args = vec!["problems", "--dir", &cores_arg, "--json", &a[..8]];
        args.extend(extra);
        let json = json_lines(&succeeded(&tool(&args)));
        assert_eq!(json.len(), 1);
        pids(json[0]["crashes"].as_array().unwrap())
    };
    assert_eq!(crashes_of(&[]), [201, 203, 204]);
    assert_eq!(crashes_of(&["-n", "2"]), [203, 204]);
    assert_eq!(crashes_of(&["-r"]), [204, 203, 201]);
    assert_eq!(crashes_of(&["-1"]), [204]);
    assert_eq!(crashes_of(&["-S", "-2h"]), [203, 204]);
    let listed = succeeded(&tool(&["problems", "--dir", &cores_arg, &a[..8]]));
    assert!(listed.contains("Problem: prog-a: SIGSEGV in f"), "{listed}");
    assert!(listed.contains("Crashes: 3"), "{listed}");

    // -q: nothing selected is exit status 1 and not a word.
    let quiet = tool(&["problems", "--dir", &cores_arg, "-q", "no-such-program"]);
    assert_eq!(quiet.status.code(), Some(1), "{quiet:?}");
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );
    let none = tool(&["problems", "--dir", &cores_arg, "no-such-program"]);
    failed_saying(&none, 1, &["no crash matches"]);
    // Two signatures, or one that is no problem's: errors naming them.
    let two = tool(&["problems", "--dir", &cores_arg, &a[..8], &b[..8]]);
    failed_saying(&two, 1, &["one signature at a time"]);
    let unknown = tool(&["problems", "--dir", &cores_arg, "cccccccc"]);
    failed_saying(&unknown, 1, &["no problem has the signature cccccccc"]);
    // -n takes a count of at least 1.
    assert_eq!(
        tool(&["problems", "--dir", &cores_arg, "-n", "0"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_config_a_person_typed_that_cannot_be_used_is_an_error_never_the_defaults() {
    let dir = test_dir("lcdcli-config");
    let cores = three_crashes(dir.path());
    let good = config_file(
        dir.path(),
        "good.toml",
        &format!("core_dir = \"{}\"\n", cores.display()),
    );
    let untrusted = config_file(dir.path(), "untrusted.toml", "save_core = true\n");
    fs::set_permissions(&untrusted, fs::Permissions::from_mode(0o666)).unwrap();
    let garbage = config_file(dir.path(), "garbage.toml", &"= = =\n".repeat(70));
    let bad_dir = config_file(
        dir.path(),
        "bad-dir.toml",
        "core_dir = \"relative/cores\"\n",
    );
    let missing = dir.path().join("missing.toml");
    let relative = dir.path().strip_prefix("/").unwrap().join("good.toml");
    let path = |p: &Path| p.display().to_string();
    for (config, why) in [
        (path(&missing), "no such file"),
        (path(&relative), "a relative path"),
        (path(&untrusted), "not trusted: owner uid 0 mode 666"),
        (path(&garbage), "could not be read as TOML"),
        (path(&bad_dir), "its core_dir is refused"),
    ] {
        for command in [
            &["list"][..],
            &["info"],
            &["vacuum"],
            &["vacuum", "--dry-run"],
            &["config"],
            &["trace", "101"],
            &["dump", "101", "-o", "/dev/null"],
        ] {
            let mut args = command.to_vec();
            args.extend(["--config", &config]);
            let output = tool(&args);
            failed_saying(&output, 1, &[&format!("--config {config}"), why]);
            assert!(stdout(&output).is_empty(), "{args:?}: {output:?}");
        }
        let output = tool(&["recover", "/nonexistent/core", "--config", &config]);
        failed_saying(&output, 2, &[why]);
    }
    // With --dir, a refused core_dir is not this command's business.
    succeeded(&tool(&[
        "list",
        "--config",
        &path(&bad_dir),
        "--dir",
        &path(&cores),
    ]));
    // The file that can be used is used: its core directory's crashes.
    let listed = json_lines(&succeeded(&tool(&[
        "list",
        "--json",
        "--config",
        &path(&good),
    ])));
    assert_eq!(pids(&listed), [101, 102, 103]);
}

#[test]
fn list_and_info_say_when_the_directory_is_missing_or_unreadable() {
    let dir = test_dir("lcdcli-dirs");
    let missing = dir.path().join("no-such-dir");
    for command in ["list", "info"] {
        let output = tool(&[command, "--dir", &missing.display().to_string()]);
        failed_saying(
            &output,
            1,
            &["does not exist", &missing.display().to_string()],
        );
        assert!(!stderr(&output).contains("no crash"), "{output:?}");
    }
    // A directory this user may not read (root's, 0700, the tool run as
    // nobody from a copy nobody may run).
    let cores = three_crashes(dir.path());
    fs::set_permissions(&cores, fs::Permissions::from_mode(0o700)).unwrap();
    let copy = dir.path().join("lttng-coredump");
    copy_executable(handler_binary!(), &copy);
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    for command in ["list", "info"] {
        let output = run_bounded(
            testsupport::crasher::command_as(65534, 65534, &copy).args([
                command,
                "--dir",
                &cores.display().to_string(),
            ]),
            TIMEOUT,
        );
        failed_saying(
            &output,
            1,
            &["uid 65534", "may not read the core directory"],
        );
    }
}

#[test]
fn config_shows_the_core_directory_the_handler_uses_and_fails_on_a_problem() {
    let dir = test_dir("lcdcli-show");
    let cores = dir.path().join("cores");
    let good = config_file(
        dir.path(),
        "good.toml",
        &format!("core_dir = \"{}\"\nmax_age = \"30d\"\n", cores.display()),
    );
    let shown = succeeded(&tool(&["config", "--config", &good.display().to_string()]));
    assert!(
        shown.contains(&format!(
            "core_dir = \"{}\"  # {}:1",
            cores.display(),
            good.display()
        )),
        "{shown}"
    );
    assert!(!shown.contains("problem"), "{shown}");
    // --check: nothing to say, exit 0.
    let checked = succeeded(&tool(&[
        "config",
        "--check",
        "--config",
        &good.display().to_string(),
    ]));
    assert_eq!(checked, "");

    // A core directory others may write: the handler refuses it and uses
    // the default one; config shows that one, and the problem.
    let open = dir.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let unsafe_dir = config_file(
        dir.path(),
        "unsafe.toml",
        &format!(
            "core_dir = \"{}\"\nmax_core_sise = \"1G\"\n",
            open.display()
        ),
    );
    let output = tool(&["config", "--config", &unsafe_dir.display().to_string()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let shown = stdout(&output);
    assert!(
        shown.contains(
            "core_dir = \"/var/lib/lttng-coredump/cores\"  # used by the handler instead of"
        ),
        "{shown}"
    );
    assert!(shown.contains("writable by group or others"), "{shown}");
    // An unknown key names the nearest known one.
    assert!(
        shown.contains("key max_core_sise: unknown key (ignored); did you mean max_core_size?"),
        "{shown}"
    );
    let output = tool(&[
        "config",
        "--check",
        "--config",
        &unsafe_dir.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stdout(&output);
    let problems: Vec<&str> = text.lines().collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().all(|p| p.starts_with("problem: ")),
        "{problems:?}"
    );
    // Only the options it uses.
    let output = tool(&["config", "--dir", "/tmp"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn info_names_why_there_is_no_trace_and_prints_the_handlers_text_once() {
    let dir = test_dir("lcdcli-why");
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    let cancelled = lttng_ctl::ErrorCode::Cancelled.raw() as i32;
    let absent = FireReport {
        daemon_absent: true,
        ..FireReport::default()
    };
    let cases: Vec<(i32, Vec<DaemonFire>, Option<&str>, &str)> = vec![
        (
            201,
            vec![fire("root", absent.clone()), fire("user 1000", absent.clone())],
            None,
            "no root session daemon was running",
        ),
        (
            202,
            vec![fire("root", FireReport::default())],
            None,
            "the root session daemon had no OnAnyCoreDump trigger and no active snapshot-mode session",
        ),
        (
            203,
            vec![fire("root", FireReport::default())],
            Some("10 crashes this minute had them"),
            "the snapshot budget was spent, so the handler took no snapshot of its own: 10 crashes this minute had them",
        ),
        (
            204,
            vec![fire(
                "root",
                FireReport {
                    errors: vec![FireError {
                        code: cancelled,
                        message: "session daemon did not answer within 5000 ms".into(),
                    }],
                    ..FireReport::default()
                },
            )],
            None,
            "the root session daemon did not answer in time: session daemon did not answer within 5000 ms",
        ),
    ];
    for (pid, fires, skipped, _) in &cases {
        let mut crash = record(
            &cores,
            *pid,
            now() - 100 + i64::from(*pid),
            "/opt/t/why",
            10,
        );
        crash.fires = fires.clone();
        crash.own_snapshots_skipped = skipped.map(Into::into);
        crash.errors = vec!["kernel arguments: argument \"\\x7fELF\\n\" is not KEY=VALUE".into()];
        plant(&crash);
    }
    let cores_arg = cores.display().to_string();
    for (pid, _, _, why) in &cases {
        let info = succeeded(&tool(&["info", &pid.to_string(), "--dir", &cores_arg]));
        let trace_line = info
            .lines()
            .find(|l| l.trim_start().starts_with("Trace:"))
            .unwrap_or_else(|| panic!("no Trace line: {info}"));
        assert!(trace_line.contains("no snapshot: "), "{info}");
        assert!(info.contains(why), "{why:?} not in {info}");
        // The handler's escaped text, shown as it is, not escaped again.
        assert!(
            info.contains("Problems: kernel arguments: argument \"\\x7fELF\\n\" is not KEY=VALUE"),
            "{info}"
        );
        assert!(!info.contains("\\\\x7f"), "{info}");
        let json = json_lines(&succeeded(&tool(&[
            "info",
            &pid.to_string(),
            "--json",
            "--dir",
            &cores_arg,
        ])));
        let reasons = json[0]["no_trace_reasons"].to_string();
        assert!(reasons.contains(why), "{reasons}");
    }
    // The crashing user's daemon too, when it was not running.
    let info = succeeded(&tool(&["info", "201", "--dir", &cores_arg]));
    assert!(
        info.contains("uid 1000 was running no session daemon"),
        "{info}"
    );
}

#[test]
fn coredumpctls_options_select_order_and_print_crashes() {
    let dir = test_dir("lcdcli-select");
    let cores = three_crashes(dir.path());
    let cores_arg = cores.display().to_string();
    let list = |extra: &[&str]| {
        let mut args = vec!["list", "--dir", &cores_arg, "--json=short"];
        args.extend(extra);
        pids(&json_lines(&succeeded(&tool(&args))))
    };
    assert_eq!(list(&[]), [101, 102, 103]);
    assert_eq!(list(&["-1"]), [103]);
    assert_eq!(list(&["-n", "2"]), [102, 103]);
    assert_eq!(list(&["-r"]), [103, 102, 101]);
    assert_eq!(list(&["-r", "-n", "2"]), [103, 102]);
    // Relative times, spaced as journalctl takes them.
    assert_eq!(list(&["-S", "-1h"]), [102, 103]);
    assert_eq!(list(&["--since", "-1h", "-U", "-10min"]), [102]);
    assert_eq!(list(&["-U", "-1h"]), [101]);
    // -n takes a count of at least 1.
    assert_eq!(
        tool(&["list", "--dir", &cores_arg, "-n", "0"])
            .status
            .code(),
        Some(2)
    );

    // --json=pretty: one document, an array; a bare --json is short.
    let pretty = succeeded(&tool(&["info", "--dir", &cores_arg, "--json=pretty"]));
    let array: Vec<Value> = serde_json::from_str(&pretty).unwrap();
    assert_eq!(pids(&array), [101, 102, 103]);
    assert!(pretty.starts_with("[\n  {"), "{pretty}");
    let short = succeeded(&tool(&["info", "--dir", &cores_arg, "--json"]));
    assert_eq!(pids(&json_lines(&short)), [101, 102, 103]);

    // -F: the values of a field, once each.
    let field = succeeded(&tool(&["list", "--dir", &cores_arg, "-F", "exe_path"]));
    assert_eq!(field, "/opt/t/prog-a\n/opt/t/prog-b\n/opt/t/prog-c\n");

    // A relative executable path is made absolute from here.
    let here = run_bounded(
        Command::new(handler_binary!())
            .args(["list", "--dir", &cores_arg, "--json", "./t/../t/prog-b"])
            .current_dir("/opt"),
        TIMEOUT,
    );
    assert_eq!(pids(&json_lines(&succeeded(&here))), [102]);

    // -q: no match is exit status 1 and not a word.
    let quiet = tool(&["info", "--dir", &cores_arg, "-q", "no-such-program"]);
    assert_eq!(quiet.status.code(), Some(1), "{quiet:?}");
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );

    // Sizes for people.
    let listed = succeeded(&tool(&["list", "--dir", &cores_arg]));
    assert!(
        listed.lines().nth(1).unwrap().contains(" 3.0M "),
        "{listed}"
    );
    let info = succeeded(&tool(&["info", "103", "--dir", &cores_arg]));
    assert!(
        info.contains("(present, 3.0M, 3.0M on disk, uncompressed)"),
        "{info}"
    );

    // debug, and its alias gdb: -A split as a shell would, quotes kept.
    let debugger = dir.path().join("show-args");
    fs::write(
        &debugger,
        "#!/bin/sh\nfor a in \"$@\"; do printf '<%s>\\n' \"$a\"; done\n",
    )
    .unwrap();
    fs::set_permissions(&debugger, fs::Permissions::from_mode(0o755)).unwrap();
    for verb in ["debug", "gdb"] {
        let shown = succeeded(&tool(&[
            verb,
            "103",
            "--dir",
            &cores_arg,
            "--debugger",
            &debugger.display().to_string(),
            "-A",
            "-ex 'info registers' --quiet \"two  spaces\"",
        ]));
        let args: Vec<&str> = shown.lines().collect();
        assert_eq!(
            &args[..4],
            ["<-ex>", "<info registers>", "<--quiet>", "<two  spaces>"],
            "{shown}"
        );
    }
    // debug picks the newest crash the selection keeps: -S/-U as list.
    for (window, pid) in [(["-U", "-1h"], 101), (["-S", "-90min"], 103)] {
        let mut args = vec!["debug", "--dir", &cores_arg, "--debugger"];
        let debugger = debugger.display().to_string();
        args.push(&debugger);
        args.extend(window);
        let shown = succeeded(&tool(&args));
        assert!(
            shown.contains(&format!(".{pid}.")),
            "{window:?} should pick {pid}: {shown}"
        );
    }
    let until = succeeded(&tool(&[
        "debug",
        "--dir",
        &cores_arg,
        "--debugger",
        &debugger.display().to_string(),
        "-S",
        "-3h",
        "-U",
        "-20min",
    ]));
    assert!(until.contains(".102."), "{until}");
    let output = tool(&["debug", "103", "--dir", &cores_arg, "-A", "'unbalanced"]);
    failed_saying(&output, 1, &["unbalanced quotes"]);
    // A missing gdb or babeltrace2 is named with its Debian package.
    let output = tool(&[
        "debug",
        "103",
        "--dir",
        &cores_arg,
        "--debugger",
        "/nonexistent/gdb",
    ]);
    failed_saying(&output, 1, &["Debian package gdb", "apt-get install gdb"]);
    let snapshot = dir.path().join("snapshot");
    fs::create_dir(&snapshot).unwrap();
    let mut traced = record(&cores, 104, now(), "/opt/t/prog-d", 10);
    traced.snapshots = vec![lttng_coredump_handler::store::record::SnapshotEntry {
        daemon: "root".into(),
        session: "s".into(),
        action: "snapshot".into(),
        path: Some(snapshot.display().to_string()),
        ..Default::default()
    }];
    plant(&traced);
    let output = run_bounded(
        Command::new(handler_binary!())
            .args(["trace", "104", "--dir", &cores_arg])
            .env("PATH", "/nonexistent"),
        TIMEOUT,
    );
    failed_saying(
        &output,
        1,
        &[
            "babeltrace2 is not installed",
            "apt-get install babeltrace2",
        ],
    );
}

#[test]
fn vacuum_says_what_it_deletes_and_what_it_keeps_and_why_and_can_only_say_it() {
    let dir = test_dir("lcdcli-vacuum");
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    fs::set_permissions(&cores, fs::Permissions::from_mode(0o755)).unwrap();
    // Four crashes of 1 MiB, two users; each core and record marked as
    // its user's, as the handler marks them.
    let mut stems = Vec::new();
    for (pid, uid, ago) in [
        (301, 1000, 400),
        (302, 1001, 300),
        (303, 1000, 200),
        (304, 1000, 100),
    ] {
        let mut crash = record(&cores, pid, now() - ago, "/opt/t/vac", 1 << 20);
        crash.crashed.uid = Some(uid);
        let record_path = plant(&crash);
        let core = PathBuf::from(crash.core.path.as_deref().unwrap());
        for path in [&core, &record_path] {
            let file = fs::File::open(path).unwrap();
            lttng_coredump_handler::store::space::mark_owner(&file, uid).unwrap();
            let age = std::time::SystemTime::now() - Duration::from_secs(ago as u64);
            fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(age)
                .unwrap();
        }
        stems.push(core);
    }
    // Room for about two of them.
    let config = config_file(
        dir.path(),
        "config.toml",
        &format!(
            "core_dir = \"{}\"\nmax_dir_size = \"2600K\"\nmin_free = 0\n",
            cores.display()
        ),
    );
    let config_arg = config.display().to_string();
    let dry = succeeded(&tool(&["vacuum", "--dry-run", "--config", &config_arg]));
    let core = |i: usize| stems[i].display().to_string();
    assert!(
        dry.contains(&format!("would delete {} (the oldest", core(0))),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("would delete {} (the oldest", core(2))),
        "{dry}"
    );
    assert!(
        dry.contains(&format!(
            "kept {} (1.0M, the newest core of uid 1001: each user's newest core is kept)",
            core(1)
        )),
        "{dry}"
    );
    assert!(
        dry.contains(&format!(
            "kept {} (1.0M, the newest core of uid 1000",
            core(3)
        )),
        "{dry}"
    );
    assert!(stems.iter().all(|p| p.exists()), "a dry run deleted: {dry}");

    let done = succeeded(&tool(&["vacuum", "--config", &config_arg]));
    assert!(
        done.contains(&format!("deleted {} (the oldest", core(0))),
        "{done}"
    );
    assert!(
        done.contains(&format!(
            "kept {} (1.0M, the newest core of uid 1001",
            core(1)
        )),
        "{done}"
    );
    assert!(!stems[0].exists() && !stems[2].exists(), "{done}");
    assert!(stems[1].exists() && stems[3].exists(), "{done}");
    // -q: only what goes.
    let quiet = succeeded(&tool(&["vacuum", "-q", "--config", &config_arg]));
    assert!(!quiet.contains("kept"), "{quiet}");
}

#[test]
fn info_shows_a_bounded_part_of_an_old_records_unbounded_text() {
    let dir = test_dir("lcdcli-bounded");
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    fs::set_permissions(&cores, fs::Permissions::from_mode(0o755)).unwrap();
    // A record from before the handler bounded what it writes: a core
    // trace summary naming 2000 traces, 500 problems, a 100 KB command line.
    let mut old = record(&cores, 404, now() - 60, "/opt/t/old", 4096);
    old.core_trace.checked = true;
    old.core_trace.summary = (0..2000)
        .map(|n| format!("trace {n:032x}: 4 streams, 16 packets"))
        .collect::<Vec<_>>()
        .join("\n");
    old.errors = (0..500).map(|n| format!("problem number {n}")).collect();
    old.crashed.cmdline = Some(vec!["/opt/t/old".into(), "x".repeat(100_000)]);
    plant(&old);
    let cores_arg = cores.display().to_string();
    let shown = succeeded(&tool(&["info", "--dir", &cores_arg]));
    assert!(shown.len() < 16 * 1024, "{} bytes: {shown}", shown.len());
    assert!(
        shown.contains("trace 00000000000000000000000000000000"),
        "{shown}"
    );
    assert!(!shown.contains(&format!("trace {:032x}", 1999)), "{shown}");
    assert!(
        shown.contains("[and 1984 more lines: --json has them all]"),
        "{shown}"
    );
    assert!(shown.contains("problem number 15"), "{shown}");
    assert!(!shown.contains("problem number 16"), "{shown}");
    assert!(
        shown.contains("[and 484 more: --json has them all]"),
        "{shown}"
    );
    assert!(
        shown.contains("more bytes: --json has them all]"),
        "{shown}"
    );
    // --json has it all.
    let json = json_lines(&succeeded(&tool(&[
        "info",
        "--dir",
        &cores_arg,
        "--json=short",
    ])));
    assert_eq!(json[0]["errors"].as_array().unwrap().len(), 500);
    assert_eq!(
        json[0]["core_trace"]["summary"]
            .as_str()
            .unwrap()
            .lines()
            .count(),
        2000
    );
}

/// Runs `command` (a shell line) on a new pseudo-terminal (script(1));
/// returns what the terminal showed.
fn on_a_terminal(command: &str, env: &[(&str, &str)]) -> String {
    let mut script = Command::new("script");
    script
        .args(["-qec", command, "/dev/null"])
        .env("TERM", "xterm");
    for (key, value) in env {
        script.env(key, value);
    }
    script.env_remove("NO_COLOR");
    succeeded(&run_bounded(&mut script, TIMEOUT))
}

#[test]
fn a_pager_and_colour_on_a_terminal_neither_in_a_pipe() {
    let dir = test_dir("lcdcli-pager");
    let cores = three_crashes(dir.path());
    // A pager that says it ran and passes the text on; another named
    // `less` first in PATH, for the default, that says how it was run.
    let marker = dir.path().join("paged");
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let less = bin.join("less");
    fs::write(
        &less,
        format!(
            "#!/bin/sh\necho \"$@\" > {}.less\nexec cat\n",
            marker.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&less, fs::Permissions::from_mode(0o755)).unwrap();
    let pager = format!("touch {}; cat", marker.display());
    let tool = handler_binary!().display().to_string();
    let cores_arg = cores.display().to_string();
    for verb in ["list", "info"] {
        let _ = fs::remove_file(&marker);
        let line = format!("{tool} {verb} --dir {cores_arg}");
        let shown = on_a_terminal(&line, &[("PAGER", &pager)]);
        assert!(marker.exists(), "{verb}: no pager on a terminal: {shown}");
        assert!(
            shown.contains("\x1b[1m"),
            "{verb}: no colour on a terminal: {shown:?}"
        );
        assert!(shown.contains("prog-c"), "{shown}");
        // --no-pager: colour, no pager.
        let _ = fs::remove_file(&marker);
        let shown = on_a_terminal(&format!("{line} --no-pager"), &[("PAGER", &pager)]);
        assert!(!marker.exists(), "{verb}: a pager despite --no-pager");
        assert!(
            shown.contains("\x1b[1m") && shown.contains("prog-c"),
            "{shown:?}"
        );
        // NO_COLOR: none.
        let shown = on_a_terminal(&format!("NO_COLOR=1 {line} --no-pager"), &[]);
        assert!(!shown.contains("\x1b["), "{shown:?}");
        // In a pipe: neither.
        let _ = fs::remove_file(&marker);
        let piped = run_bounded(
            Command::new(handler_binary!())
                .args([verb, "--dir", &cores_arg])
                .env("PAGER", &pager),
            TIMEOUT,
        );
        let text = succeeded(&piped);
        assert!(!marker.exists(), "{verb}: a pager in a pipe");
        assert!(!text.contains('\x1b'), "{verb}: colour in a pipe: {text:?}");
    }
    // No $PAGER: less -FRSXM.
    let path = format!("{}:/usr/bin:/bin", bin.display());
    on_a_terminal(
        &format!("unset PAGER; {tool} list --dir {cores_arg}"),
        &[("PATH", &path)],
    );
    let args = fs::read_to_string(format!("{}.less", marker.display())).unwrap();
    assert_eq!(args.trim(), "-FRSXM");
}

/// Waits (bounded) until `path` holds a number.
fn number_in(path: &Path) -> i32 {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(n) = fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_ends_the_tool_and_its_pager_and_puts_the_terminal_back() {
    let dir = test_dir("lcdcli-pager-term");
    let cores = three_crashes(dir.path());
    let at = |name: &str| dir.path().join(name).display().to_string();
    // A pager that does what less does to the terminal (raw, no echo),
    // reads its input and then stays, until it is ended.
    let pager = format!(
        "stty raw -echo </dev/tty; echo $PPID > {}; echo $$ > {}; cat >/dev/null; exec sleep 600",
        at("tool.pid"),
        at("pager.pid")
    );
    let line = format!(
        "{} list --dir {}; echo $? > {}; stty -a </dev/tty > {}",
        handler_binary!().display(),
        cores.display(),
        at("status"),
        at("stty")
    );
    let mut script = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env("PAGER", &pager)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tool = number_in(&dir.path().join("tool.pid"));
    let pager_pid = number_in(&dir.path().join("pager.pid"));
    // The tool runs until it is ended (its pager waits for ever).
    assert!(testsupport::process::signal(tool, libc::SIGTERM));
    let status = number_in(&dir.path().join("status"));
    assert_eq!(
        status,
        128 + libc::SIGTERM,
        "the tool did not end by SIGTERM"
    );
    let deadline = std::time::Instant::now() + TIMEOUT;
    while script.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "script did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The pager ended with it (not left on the terminal)...
    let deadline = std::time::Instant::now() + TIMEOUT;
    while testsupport::attacker::process_state(pager_pid).is_some_and(|s| s != 'Z') {
        assert!(
            std::time::Instant::now() < deadline,
            "the pager {pager_pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and the terminal is back as it was: echo and line editing.
    let stty = fs::read_to_string(dir.path().join("stty")).unwrap();
    let words: Vec<&str> = stty.split_whitespace().collect();
    assert!(
        words.contains(&"echo") && words.contains(&"icanon"),
        "the terminal stayed raw: {stty}"
    );
}

#[test]
fn sigterm_ends_debug_and_its_debugger_and_puts_the_terminal_back() {
    let dir = test_dir("lcdcli-debug-term");
    let cores = three_crashes(dir.path());
    let at = |name: &str| dir.path().join(name).display().to_string();
    // A debugger that does what gdb does to the terminal, then waits.
    let debugger = dir.path().join("debugger");
    fs::write(
        &debugger,
        format!(
            "#!/bin/sh\nstty raw -echo </dev/tty; echo $PPID > {}; echo $$ > {}; exec sleep 600\n",
            at("tool.pid"),
            at("debugger.pid")
        ),
    )
    .unwrap();
    fs::set_permissions(&debugger, fs::Permissions::from_mode(0o755)).unwrap();
    let line = format!(
        "{} debug 103 --dir {} --debugger {}; echo $? > {}; stty -a </dev/tty > {}",
        handler_binary!().display(),
        cores.display(),
        debugger.display(),
        at("status"),
        at("stty")
    );
    let mut script = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tool = number_in(&dir.path().join("tool.pid"));
    let debugger_pid = number_in(&dir.path().join("debugger.pid"));
    // Ctrl-C is the debugger's: SIGINT leaves the tool waiting for it.
    assert!(testsupport::process::signal(tool, libc::SIGINT));
    assert!(testsupport::process::signal(tool, libc::SIGTERM));
    let status = number_in(&dir.path().join("status"));
    assert_eq!(status, 128 + libc::SIGTERM, "debug did not end by SIGTERM");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while script.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "script did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    while testsupport::attacker::process_state(debugger_pid).is_some_and(|s| s != 'Z') {
        assert!(
            std::time::Instant::now() < deadline,
            "the debugger {debugger_pid} still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stty = fs::read_to_string(dir.path().join("stty")).unwrap();
    let words: Vec<&str> = stty.split_whitespace().collect();
    assert!(
        words.contains(&"echo") && words.contains(&"icanon"),
        "the terminal stayed raw: {stty}"
    );
}

/// The bash and zsh completions, as `generate-docs` writes them for the
/// package, in `dir`.
fn completions(dir: &Path) -> (PathBuf, PathBuf) {
    succeeded(&tool(&["generate-docs", &dir.display().to_string()]));
    (
        dir.join("bash/lttng-coredump"),
        dir.join("zsh/_lttng-coredump"),
    )
}

/// A PATH where `lttng-coredump` is the binary under test.
fn path_with_tool(dir: &Path) -> String {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let link = bin.join("lttng-coredump");
    if !link.exists() {
        std::os::unix::fs::symlink(handler_binary!(), &link).unwrap();
    }
    format!("{}:/usr/bin:/bin", bin.display())
}

#[test]
fn bash_completion_completes_options_records_and_no_hidden_command() {
    let dir = test_dir("lcdcli-bash");
    let cores = three_crashes(dir.path());
    let (bash, _) = completions(&dir.path().join("docs"));
    // The completion function as bash calls it: COMP_WORDS, COMP_CWORD,
    // then the function with the command, the word and the previous one.
    let complete = |words: &[&str]| -> Vec<String> {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let script = format!(
            "source {}\nCOMP_WORDS=({})\nCOMP_CWORD={}\n\
             $(complete -p lttng-coredump | sed 's/.*-F \\([^ ]*\\).*/\\1/') \
             lttng-coredump \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            bash.display(),
            quoted.join(" "),
            words.len() - 1
        );
        let output = run_bounded(
            Command::new("bash")
                .args(["--norc", "--noprofile", "-c", &script])
                .env("PATH", path_with_tool(dir.path())),
            TIMEOUT,
        );
        succeeded(&output).lines().map(str::to_string).collect()
    };
    let options = complete(&["lttng-coredump", "list", "--"]);
    for option in [
        "--since",
        "--until",
        "--reverse",
        "--json",
        "--no-pager",
        "--quiet",
        "--dir",
        "--field",
    ] {
        assert!(
            options.contains(&option.to_string()),
            "{option} not in {options:?}"
        );
    }
    let options = complete(&["lttng-coredump", "vacuum", "--d"]);
    assert!(
        options.contains(&"--dry-run".to_string()) && options.contains(&"--dir".to_string()),
        "{options:?}"
    );
    let commands = complete(&["lttng-coredump", ""]);
    for command in [
        "list", "info", "debug", "gdb", "dump", "trace", "vacuum", "config",
    ] {
        assert!(
            commands.contains(&command.to_string()),
            "{command} not in {commands:?}"
        );
    }
    assert!(
        !commands.iter().any(|c| c == "generate-docs"),
        "{commands:?}"
    );
    // MATCH: the records' PIDs and program names.
    let cores_arg = cores.display().to_string();
    let matches = complete(&["lttng-coredump", "info", "--dir", &cores_arg, ""]);
    for expected in ["101", "102", "103", "prog-a", "prog-c"] {
        assert!(
            matches.contains(&expected.to_string()),
            "{expected} not in {matches:?}"
        );
    }
    let matches = complete(&["lttng-coredump", "gdb", "--dir", &cores_arg, "10"]);
    assert_eq!(matches, ["101", "102", "103"]);
    // Not after an option that takes a value.
    let after_since = complete(&["lttng-coredump", "list", "--dir", &cores_arg, "-S", ""]);
    assert!(!after_since.contains(&"101".to_string()), "{after_since:?}");
}

#[test]
fn zsh_completion_completes_options_records_and_no_hidden_command() {
    let dir = test_dir("lcdcli-zsh");
    let cores = three_crashes(dir.path());
    let (_, zsh) = completions(&dir.path().join("docs"));
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    // An interactive zsh on a pseudo-terminal (zpty), with the completion
    // in its fpath and compinit: each step is read up to the prompt that
    // follows it; the line is typed, then TAB, and zsh lists the
    // completions and draws its prompt again; then the line is cleared.
    let complete = |line: &str| -> String {
        let driver = format!(
            r#"zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'unsetopt prompt_sp prompt_cr; unset zle_bracketed_paste; PS1="READY%# "; unsetopt listambiguous; setopt autolist; LISTMAX=100000; COLUMNS=200; LINES=200'
zpty -r z out '*READY\#*'
zpty -w z "fpath=({fpath} \$fpath); autoload -Uz compinit; compinit -u -D; zstyle ':completion:*' menu no; zstyle ':completion:*' list-prompt ''"
zpty -r z out '*READY\#*'
zpty -w -n z '{line}'$'\t'
zpty -r z out '*READY\#*'
print -r -- "$out"
zpty -w -n z $'\C-u''echo END-''-OF-LIST'$'\n'
zpty -r z ignored '*END--OF-LIST*'
zpty -d z
"#,
            fpath = zsh.parent().unwrap().display(),
        );
        let output = run_bounded(
            Command::new("zsh")
                .args(["-f", "-c", &driver])
                .env("PATH", path_with_tool(dir.path()))
                .env("HOME", &home)
                .env("TERM", "dumb"),
            TIMEOUT,
        );
        succeeded(&output)
    };
    let listed = complete("lttng-coredump list --");
    for option in [
        "--since",
        "--until",
        "--reverse",
        "--json",
        "--no-pager",
        "--quiet",
        "--dir",
        "--field",
    ] {
        assert!(listed.contains(option), "{option} not in {listed}");
    }
    let commands = complete("lttng-coredump ");
    for command in [
        "list", "info", "debug", "gdb", "dump", "trace", "vacuum", "config",
    ] {
        assert!(commands.contains(command), "{command} not in {commands}");
    }
    assert!(!commands.contains("generate-docs"), "{commands}");
    let cores_arg = cores.display().to_string();
    let matches = complete(&format!("lttng-coredump info --dir {cores_arg} "));
    for expected in ["101", "102", "103", "prog-a", "prog-c"] {
        assert!(matches.contains(expected), "{expected} not in {matches}");
    }
}

/// When the user's copy of the report could not be written (made certain
/// here: every name it may take is taken), `info` run as that user says
/// why their crash has no report, and so does their copy of the record
/// (`info --json`): root's log is not where they look.
#[test]
fn info_as_the_user_says_why_their_copy_of_the_report_could_not_be_written() {
    use lttng_coredump_handler::store::{report_file, space::SpacePolicy};
    let dir = test_dir("lcdcli-report-copy");
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    fs::set_permissions(&cores, fs::Permissions::from_mode(0o755)).unwrap();
    let time = now() - 60;
    // A crash of nobody's (the user the tool runs as), analyzed.
    let mut crash = record(&cores, 104, time, "/opt/t/prog-d", 4096);
    crash.crashed.uid = Some(65534);
    crash.crashed.gid = Some(65534);
    crash.core.readable_by_uid = Some(65534);
    crash.report.analyzed = true;
    crash.report.signature = Some("5f".repeat(16));
    crash.report.title = Some("prog-d: SIGSEGV in f".into());
    crash.report.report = Some(
        serde_json::from_value(serde_json::json!({
            "format": 1, "architecture": "x86_64", "threads": [], "threads_in_core": 1,
            "modules": [], "analysis": {"unwinder": "test", "milliseconds": 0}
        }))
        .unwrap(),
    );
    let stem = format!("core.prog-d.104.{time}");
    for n in 0..lttng_coredump_handler::base::safefile::MAX_NAME_ATTEMPTS {
        fs::write(
            cores.join(report_file::user_name(&format!("{stem}.json"), n)),
            "",
        )
        .unwrap();
    }
    let directory = fs::File::open(&cores).unwrap();
    let written = crash
        .write_within(
            std::os::fd::AsFd::as_fd(&directory),
            SpacePolicy {
                max_dir_size: u64::MAX,
                min_free: 0,
            },
            Some(65534),
            Some(65534),
            |n| {
                if n == 0 {
                    format!("{stem}.json")
                } else {
                    format!("{stem}.{n}.json")
                }
            },
        )
        .unwrap();
    assert_eq!(written.user_copy, Some(format!("{stem}.user.json")));
    assert_eq!(written.errors.len(), 1, "{:?}", written.errors);

    // info as nobody, from a copy nobody may run.
    let copy = dir.path().join("lttng-coredump");
    copy_executable(handler_binary!(), &copy);
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        succeeded(&run_bounded(
            testsupport::crasher::command_as(65534, 65534, &copy)
                .args(args)
                .args(["--dir", &cores.display().to_string()]),
            TIMEOUT,
        ))
    };
    let shown = as_nobody(&["info", "--no-pager"]);
    assert!(shown.contains("Problem: prog-d: SIGSEGV in f"), "{shown}");
    assert!(
        shown.lines().any(|l| l
            .trim_start()
            .starts_with("Report: none: the user's copy of the report could not be written: ")
            && l.contains("names taken")),
        "{shown}"
    );
    let json = json_lines(&as_nobody(&["info", "--json"]));
    assert_eq!(json.len(), 1, "{json:?}");
    let why = json[0]["report"]["file_error"].as_str().unwrap_or_default();
    assert!(why.contains("names taken"), "{:#}", json[0]);
}
