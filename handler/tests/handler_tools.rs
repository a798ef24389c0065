//! The crash tools (`list`, `info`, `debug`, `dump`, `trace`) on real
//! crashes: traced crashers crash through the real kernel core_pattern and
//! the freshly built handler, then the tools are run as root and as two
//! unprivileged users, and their output is checked against the records,
//! the cores (gdb's backtrace) and the snapshots (the crasher's events, in
//! order). A user sees their own crashes and nothing of anyone else's.

use lttng_coredump_engine::ActionKind;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::core_file::elf_core_identity;
use testsupport::crasher::{crasher_command, crasher_path, ready_pid};
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::{copy_executable, run_bounded};
use testsupport::sessiond::RootSessiondUse;
use testsupport::{ensure_sessiond, lttng, lttng_ok, unique_name, TempDir, TestUser};

const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// A started snapshot-mode session of the root daemon tracing the crasher
/// into `out`, only the events whose tag starts with `tags` (the root
/// daemon is shared: other tests' crashers emit the same events), with the
/// vpid and procname contexts when asked; destroyed when dropped.
struct RootSession {
    name: String,
    // Declared after `name`, dropped after the session is destroyed.
    _sessiond: RootSessiondUse,
}

impl RootSession {
    fn start(what: &str, out: &Path, with_context: bool, tags: &str) -> RootSession {
        let sessiond = ensure_sessiond();
        let name = unique_name(&format!("tools-{what}"));
        let session = RootSession {
            name,
            _sessiond: sessiond,
        };
        let out = out.display().to_string();
        lttng_ok(&["create", &session.name, "--snapshot", "-o", &out]);
        lttng_ok(&[
            "enable-channel",
            "-u",
            "-s",
            &session.name,
            "--buffers-uid",
            "--subbuf-size",
            "64K",
            "--num-subbuf",
            "4",
            "crash",
        ]);
        lttng_ok(&[
            "enable-event",
            "-u",
            "-s",
            &session.name,
            "-c",
            "crash",
            "lttng_coredump:*",
            "--filter",
            &format!("tag == \"{tags}*\""),
        ]);
        if with_context {
            lttng_ok(&[
                "add-context",
                "-u",
                "-s",
                &session.name,
                "-c",
                "crash",
                "-t",
                "vpid",
                "-t",
                "procname",
            ]);
        }
        lttng_ok(&["start", &session.name]);
        session
    }
}

impl Drop for RootSession {
    fn drop(&mut self) {
        let _ = lttng(&["destroy", &self.name]);
    }
}

/// A copy of the handler binary everybody may run (the build tree may not
/// be reachable by the test users).
fn tool_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("lttng-coredump");
    copy_executable(handler_binary!(), &copy);
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// A test directory the test users can go through (cores, copies).
fn open_dir(prefix: &str) -> TempDir {
    let dir = TempDir::new(prefix);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs the tool as root with `args`; stdin is not a terminal.
fn tool(binary: &Path, args: &[&str]) -> Output {
    run_bounded(Command::new(binary).args(args), TOOL_TIMEOUT)
}

/// Runs the tool as `user`.
fn tool_as(user: &TestUser, binary: &Path, args: &[&str]) -> Output {
    run_bounded(user.command(binary).args(args), TOOL_TIMEOUT)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "the tool failed: {}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(output)
}

/// A tool run that found nothing: exit status 1 and one line saying so.
fn assert_no_match(output: &Output) {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("lttng-coredump: no crash"), "{stderr}");
}

/// One JSON object a line.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The fixture's `seq` values of `tag` in the human output of `trace`.
fn seqs_of(text: &str, tag: &str) -> Vec<i64> {
    testsupport::fixture_seqs(&text.lines().map(str::to_owned).collect::<Vec<_>>(), tag)
}

/// Runs the crasher as root to a normal exit (events of another process).
fn run_to_exit(tag: &str, count: u32) {
    let output = run_bounded(
        crasher_command().args([tag, &count.to_string(), "exit"]),
        CRASH_TIMEOUT,
    );
    assert!(output.status.success(), "{output:?}");
}

/// Crashes the crasher as root; returns its pid and record.
fn crash_as_root(cores: &Path, tag: &str, count: u32) -> (i32, Value) {
    let output = run_bounded(
        crasher_command().args([tag, &count.to_string(), "segv"]),
        CRASH_TIMEOUT,
    );
    assert!(!output.status.success());
    let pid = ready_pid(&output);
    (pid, wait_for_record(cores, pid).1)
}

/// gdb's backtrace of the crasher: the fault is in `main` (crasher.c).
fn assert_crasher_backtrace(text: &str) {
    assert!(
        text.lines().any(|line| line.starts_with("#0")
            && line.contains("main")
            && line.contains("crasher.c")),
        "no frame #0 in main (crasher.c): {text}"
    );
}

#[test]
fn crash_tools_show_a_root_crash_its_core_its_backtrace_and_its_trace() {
    let dir = open_dir("lcdt-root");
    let cores = dir.path().join("cores");
    let out = dir.path().join("snapshots");
    let binary = tool_copy(dir.path());
    // Each session its own output directory: two sessions snapshotted in
    // the same second into one directory would get the same snapshot name.
    let tags = unique_name("lcdt");
    let with_context = RootSession::start("ctx", &out.join("ctx"), true, &tags);
    let without_context = RootSession::start("noctx", &out.join("noctx"), false, &tags);
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "snapshot_sessions = [\"{}\", \"{}\"]",
                with_context.name, without_context.name
            ),
        ),
    );
    let noise = format!("{tags}-noise");
    run_to_exit(&noise, 4);
    let tag = format!("{tags}-crash");
    let (pid, record) = crash_as_root(&cores, &tag, 12);
    // A second crash, compressed, for debug and dump of a zstd core.
    handler.set_config(&config_for(&cores, "compression = \"zstd\""));
    let (zpid, zrecord) = crash_as_root(&cores, &unique_name("z"), 1);
    assert_eq!(zrecord["core"]["compression"], "zstd", "{zrecord:#}");

    // Without --dir, the directory comes from the configuration named in
    // the installed core_pattern line.
    let listed = json_lines(&succeeded(&tool(&binary, &["list", "--json"])));
    assert!(listed.iter().any(|c| c["pid"] == pid), "{listed:?}");
    drop(handler);
    let cores_arg = cores.display().to_string();
    let at = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--dir", &cores_arg]);
        tool(&binary, &all)
    };

    // list: one line a crash, oldest first; -r newest first; -1 the latest.
    let text = succeeded(&at(&["list"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("PROGRAM"),
        "{text}"
    );
    let line = lines[1];
    for word in [
        pid.to_string(),
        "SEGV".into(),
        "present".into(),
        "yes".into(),
        crasher_path().display().to_string(),
    ] {
        assert!(line.contains(&word), "{word:?} missing in {line:?}");
    }
    assert!(lines[2].contains(&zpid.to_string()), "{text}");
    let reversed = succeeded(&at(&["list", "-r", "--no-legend"]));
    assert!(
        reversed.lines().next().unwrap().contains(&zpid.to_string()),
        "{reversed}"
    );
    let latest = json_lines(&succeeded(&at(&["list", "-1", "--json"])));
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0]["pid"], zpid);

    // Matches: PID, name, path, FIELD=value, times.
    for matching in [
        vec![pid.to_string()],
        vec![
            "crasher".to_string(),
            "signal.name=SIGSEGV".into(),
            "core.compression=none".into(),
        ],
        vec![
            crasher_path().display().to_string(),
            "--since".into(),
            "1h ago".into(),
            "core.compression=none".into(),
        ],
    ] {
        let mut args = vec!["info", "--json"];
        args.extend(matching.iter().map(String::as_str));
        let crashes = json_lines(&succeeded(&at(&args)));
        assert_eq!(crashes.len(), 1, "{matching:?}: {crashes:?}");
        // The record's fields, as written, plus what the tool found out.
        let crash = &crashes[0];
        for key in [
            "pid",
            "uid",
            "gid",
            "signal",
            "time",
            "exe_path",
            "cmdline",
            "core",
            "snapshots",
        ] {
            assert_eq!(crash[key], record[key], "{key}");
        }
        assert_eq!(crash["core_present"], true);
        assert_eq!(crash["trace_present"], true);
        assert!(crash["record_path"].as_str().unwrap().ends_with(".json"));
    }
    assert_no_match(&at(&["list", "999999999"]));
    assert_no_match(&at(&["info", "no-such-program"]));
    assert_no_match(&at(&["list", "--until", "2 days ago"]));
    assert_no_match(&at(&["debug", "uid=4242"]));

    // info, for people: the paths, the signal, the snapshots.
    let info = succeeded(&at(&["info", &pid.to_string()]));
    assert!(info.contains(&format!("PID: {pid} (crasher)")), "{info}");
    assert!(info.contains("Signal: 11 (SIGSEGV)"), "{info}");
    assert!(
        info.contains(record["core"]["path"].as_str().unwrap()),
        "{info}"
    );
    assert!(
        info.contains(&format!("Executable: {}", crasher_path().display())),
        "{info}"
    );
    for entry in record["snapshots"]
        .as_array()
        .unwrap_or_else(|| panic!("{record:#}"))
    {
        assert!(
            info.contains(
                entry["path"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{entry:#}"))
            ),
            "{info}"
        );
    }

    // debug: no terminal, so gdb in batch mode prints the backtrace, for the
    // plain core and for the zstd one (decompressed to a private file that
    // is gone afterwards).
    assert_crasher_backtrace(&succeeded(&at(&["debug", &pid.to_string()])));
    let tmp = dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let zdebug = run_bounded(
        Command::new(&binary)
            .args(["debug", &zpid.to_string(), "--dir", &cores_arg])
            .env("TMPDIR", &tmp),
        TOOL_TIMEOUT,
    );
    assert_crasher_backtrace(&succeeded(&zdebug));
    assert_eq!(
        names_in(&tmp),
        Vec::<String>::new(),
        "the temporary core was left"
    );
    // --debugger and -A: any program, given the arguments (split as a
    // shell would: quotes keep words together), the executable and the core.
    let echoed = succeeded(&at(&[
        "debug",
        &pid.to_string(),
        "--debugger",
        "/bin/echo",
        "-A",
        "-n 'hello  world'",
    ]));
    assert_eq!(
        echoed,
        format!(
            "hello  world {} {}",
            crasher_path().display(),
            record["core"]["path"].as_str().unwrap()
        )
    );

    // dump: the same bytes as the stored core; the zstd one decompressed.
    let dumped = dir.path().join("dumped");
    succeeded(&at(&[
        "dump",
        &pid.to_string(),
        "-o",
        &dumped.display().to_string(),
    ]));
    assert_eq!(
        fs::read(&dumped).unwrap(),
        fs::read(record["core"]["path"].as_str().unwrap()).unwrap()
    );
    let to_stdout = dir.path().join("stdout");
    succeeded(&run_bounded(
        Command::new("/bin/sh").arg("-c").arg(format!(
            "exec {} dump {zpid} --dir {cores_arg} > {}",
            binary.display(),
            to_stdout.display()
        )),
        TOOL_TIMEOUT,
    ));
    let zdumped = fs::read(&to_stdout).unwrap();
    assert_eq!(elf_core_identity(&zdumped).pid, zpid);
    assert_eq!(
        zdumped.len() as u64,
        zrecord["core"]["size"].as_u64().unwrap()
    );

    // trace: the crasher's events, in order, under one heading a snapshot;
    // the noise process's events left out where the vpid tells them apart.
    let traced = succeeded(&at(&["trace", &pid.to_string()]));
    let headings: Vec<&str> = traced
        .lines()
        .filter(|l| l.starts_with("-- snapshot of session"))
        .collect();
    assert_eq!(headings.len(), 2, "{traced}");
    let (first, second) = traced.split_at(traced.find(headings[1]).unwrap());
    let (with, without) = if first.contains(&with_context.name) {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(
        seqs_of(with, &tag),
        (0..12).collect::<Vec<i64>>(),
        "{traced}"
    );
    assert!(!with.contains(&noise), "{with}");
    assert!(
        with.contains("events of other processes left out"),
        "{with}"
    );
    assert!(
        without.contains("carry no vpid or procname context"),
        "{without}"
    );
    assert_eq!(
        seqs_of(without, &tag),
        (0..12).collect::<Vec<i64>>(),
        "{traced}"
    );
    assert!(without.contains(&noise), "{without}");

    let last = json_lines(&succeeded(&at(&[
        "trace",
        &pid.to_string(),
        "--last",
        "3",
        "--json",
    ])));
    let of_context: Vec<&Value> = last
        .iter()
        .filter(|e| e["session"] == with_context.name.as_str())
        .collect();
    assert_eq!(of_context.len(), 3, "{last:?}");
    for (event, seq) in of_context.iter().zip(9..12) {
        assert_eq!(event["name"], "lttng_coredump:step");
        assert_eq!(event["fields"]["seq"], seq, "{event}");
        assert_eq!(event["fields"]["tag"], tag.as_str());
        assert_eq!(event["context"]["vpid"], pid);
        assert_eq!(event["context"]["procname"], "crasher");
        assert!(
            event["unix_ns"].as_i64().unwrap() / 1_000_000_000
                >= record["time"].as_i64().unwrap() - 60
        );
    }
    // In a pipe, a cut is said: the last 3 of the crasher's 12 events.
    let cut = succeeded(&at(&["trace", &pid.to_string(), "-n", "3"]));
    assert!(cut.contains("note: last 3 of 12 events"), "{cut}");
    let whole = succeeded(&at(&["trace", &pid.to_string()]));
    assert!(!whole.contains("note: last "), "{whole}");
    // --json=pretty: one array of every snapshot's events.
    let pretty = succeeded(&at(&[
        "trace",
        &pid.to_string(),
        "-n",
        "3",
        "--json=pretty",
    ]));
    let events: Vec<Value> = serde_json::from_str(&pretty).unwrap();
    assert_eq!(events.len(), 6, "{pretty}");
    // The noise process's 4 events, from each of the two snapshots.
    let everything = succeeded(&at(&[
        "trace",
        &pid.to_string(),
        "--all",
        "--all-processes",
    ]));
    assert_eq!(seqs_of(&everything, &noise).len(), 8, "{everything}");
}

/// Crashes the crasher as `user`, emitting `count` events tagged `tag`.
fn crash_as(user: &TestUser, cores: &Path, tag: &str, count: u32) -> (i32, Value) {
    let output = run_bounded(
        user.crasher_command()
            .args([tag, &count.to_string(), "segv"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    (pid, wait_for_record(cores, pid).1)
}

#[test]
fn crash_tools_show_users_their_own_crashes_and_nothing_of_anyone_elses() {
    let dir = open_dir("lcdt-users");
    let cores = dir.path().join("cores");
    let binary = tool_copy(dir.path());
    let mut alice = TestUser::create("lcdt-alice", false);
    let bob = TestUser::create("lcdt-bob", false);
    // Alice traces her programs in her own session daemon; the handler
    // snapshots there on her crash (her OnAnyCoreDump trigger).
    alice.start_sessiond();
    let traces = alice.home.join("traces");
    let session = "mine";
    alice.lttng_ok(&[
        "create",
        session,
        "--snapshot",
        "-o",
        &traces.display().to_string(),
    ]);
    alice.lttng_ok(&[
        "enable-channel",
        "-u",
        "-s",
        session,
        "--buffers-uid",
        "crash",
    ]);
    alice.lttng_ok(&[
        "enable-event",
        "-u",
        "-s",
        session,
        "-c",
        "crash",
        "lttng_coredump:*",
    ]);
    alice.lttng_ok(&[
        "add-context",
        "-u",
        "-s",
        session,
        "-c",
        "crash",
        "-t",
        "vpid",
        "-t",
        "procname",
    ]);
    alice.lttng_ok(&["start", session]);
    alice.set_trigger_in_own_daemon(session, ActionKind::Snapshot);
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, "snapshot_user_daemon = true"),
    );
    let tag = unique_name("alice");
    let (alice_pid, alice_record) = crash_as(&alice, &cores, &tag, 6);
    let (bob_pid, _) = crash_as(&bob, &cores, &unique_name("bob"), 1);
    let (root_pid, _) = crash_as_root(&cores, &unique_name("root"), 1);
    drop(handler);
    assert_eq!(alice_record["uid"], alice.uid);
    assert_eq!(
        alice_record["core"]["readable_by_uid"], alice.uid,
        "{alice_record:#}"
    );
    let cores_arg = cores.display().to_string();
    let run_as = |user: &TestUser, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--dir", &cores_arg]);
        tool_as(user, &binary, &all)
    };
    let pids = |crashes: &[Value]| -> Vec<i64> {
        crashes.iter().map(|c| c["pid"].as_i64().unwrap()).collect()
    };

    // Root sees every crash; each user only their own.
    let all = json_lines(&succeeded(&tool(
        &binary,
        &["list", "--json", "--dir", &cores_arg],
    )));
    assert_eq!(pids(&all), [alice_pid, bob_pid, root_pid].map(i64::from));
    let alices = json_lines(&succeeded(&run_as(&alice, &["list", "--json"])));
    assert_eq!(pids(&alices), [i64::from(alice_pid)]);
    assert_eq!(alices[0]["uid"], alice.uid);
    assert_eq!(alices[0]["core_present"], true);
    let bobs = json_lines(&succeeded(&run_as(&bob, &["list", "--json"])));
    assert_eq!(pids(&bobs), [i64::from(bob_pid)]);
    for (user, other) in [(&alice, bob_pid), (&bob, alice_pid), (&alice, root_pid)] {
        for command in ["info", "debug", "dump", "trace"] {
            assert_no_match(&run_as(user, &[command, &other.to_string()]));
        }
    }

    // Alice's own crash: its backtrace, its core, its trace.
    assert_crasher_backtrace(&succeeded(&run_as(
        &alice,
        &["debug", &alice_pid.to_string()],
    )));
    // To standard output (a file: the test's pipe is read only at the end).
    let dumped = alice.home.join("dumped");
    succeeded(&tool_as(
        &alice,
        Path::new("/bin/sh"),
        &[
            "-c",
            &format!(
                "exec {} dump {alice_pid} --dir {cores_arg} > {}",
                binary.display(),
                dumped.display()
            ),
        ],
    ));
    let core = fs::read(&dumped).unwrap();
    let identity = elf_core_identity(&core);
    assert_eq!((identity.pid, identity.uid), (alice_pid, alice.uid));
    let events = json_lines(&succeeded(&run_as(
        &alice,
        &["trace", &alice_pid.to_string(), "--json"],
    )));
    let seqs: Vec<i64> = events
        .iter()
        .filter(|e| e["fields"]["tag"] == tag.as_str())
        .map(|e| e["fields"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (0..6).collect::<Vec<i64>>(), "{events:?}");
    assert!(
        events.iter().all(|e| e["context"]["vpid"] == alice_pid),
        "{events:?}"
    );
    assert!(events
        .iter()
        .all(|e| e["daemon"] == format!("user {}", alice.uid).as_str()));
    // Root reads her snapshot too (babeltrace2 run with her rights).
    let as_root = succeeded(&tool(
        &binary,
        &["trace", &alice_pid.to_string(), "--dir", &cores_arg],
    ));
    assert_eq!(
        seqs_of(&as_root, &tag),
        (0..6).collect::<Vec<i64>>(),
        "{as_root}"
    );
    drop(alice);
}

#[test]
fn handle_run_from_a_terminal_prints_its_usage_and_does_nothing() {
    let dir = open_dir("lcdt-tty");
    let cores = dir.path().join("cores");
    let config = dir.path().join("config.toml");
    fs::write(&config, config_for(&cores, "")).unwrap();
    let binary = tool_copy(dir.path());
    // script(1) runs the command on a new pseudo-terminal: stdin is a tty.
    let output = run_bounded(
        Command::new("script").args([
            "-qec",
            &format!(
                "{} handle --config {} P=1 u=0 g=0 s=11 t=1 c=0 d=1",
                binary.display(),
                config.display()
            ),
            "/dev/null",
        ]),
        TOOL_TIMEOUT,
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stdout(&output).contains("usage: lttng-coredump handle"),
        "{output:?}"
    );
    assert!(!cores.exists(), "the handler made {}", cores.display());
}

/// Plants a core and its record, `days` old, in `cores`.
fn plant_old_crash(cores: &Path, name: &str, days: u64) -> [PathBuf; 2] {
    let old = std::time::SystemTime::now() - Duration::from_secs(days * 86_400);
    let core = cores.join(format!("core.{name}.1.1"));
    let record = cores.join(format!("core.{name}.1.1.json"));
    for path in [&core, &record] {
        fs::write(path, "{}").unwrap();
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    [core, record]
}

#[test]
fn max_age_deletes_old_cores_and_records_on_a_crash_and_in_vacuum() {
    let dir = open_dir("lcdt-age");
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    let binary = tool_copy(dir.path());
    let handler =
        InstalledHandler::new(handler_binary!(), &config_for(&cores, "max_age = \"30d\""));
    let old = plant_old_crash(&cores, "old", 40);
    let young = plant_old_crash(&cores, "young", 20);
    let (pid, record) = crash_as_root(&cores, &unique_name("age"), 1);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    // Old crashes go once this crash's record is safely written, just after
    // it appears: waited for, boundedly (a hang guard, not a deadline).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while old.iter().any(|path| path.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for path in &old {
        assert!(!path.exists(), "{} outlived max_age", path.display());
    }
    for path in &young {
        assert!(path.exists(), "{} is within max_age", path.display());
    }
    assert!(Path::new(record["core"]["path"].as_str().unwrap()).exists());

    // vacuum applies the same rule now, with the configuration's limits.
    let older = plant_old_crash(&cores, "older", 31);
    let config = handler.config.display().to_string();
    let report = succeeded(&tool(&binary, &["vacuum", "--config", &config]));
    for path in &older {
        assert!(!path.exists(), "{}: {report}", path.display());
        assert!(report.contains(&path.display().to_string()), "{report}");
    }
    assert!(young.iter().all(|p| p.exists()), "{report}");
    let listed = json_lines(&succeeded(&tool(
        &binary,
        &["list", "--json", "--config", &config],
    )));
    assert_eq!(
        listed.iter().filter(|c| c["pid"] == pid).count(),
        1,
        "{listed:?}"
    );
}

#[test]
fn a_hostile_process_name_is_shown_escaped() {
    let dir = open_dir("lcdt-hostile");
    let cores = dir.path().join("cores");
    let binary = tool_copy(dir.path());
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    // The crasher's last argument becomes its process name (prctl).
    let output = run_bounded(
        crasher_command().args([
            &unique_name("h"),
            "1",
            "segv",
            "0",
            "zero",
            "\x1b[2J\r\nfake",
        ]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&cores, pid);
    drop(handler);
    assert_eq!(record["process_name"], "\x1b[2J\r\nfake", "{record:#}");
    let cores_arg = cores.display().to_string();
    for command in ["list", "info"] {
        let text = succeeded(&tool(&binary, &[command, "--dir", &cores_arg]));
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
        if command == "info" {
            assert!(text.contains("\\x1b[2J\\r\\nfake"), "{text}");
        }
    }
    // JSON keeps the name exactly (escaped as JSON escapes it).
    let json = json_lines(&succeeded(&tool(
        &binary,
        &["info", "--json", "--dir", &cores_arg],
    )));
    assert_eq!(json[0]["process_name"], "\x1b[2J\r\nfake");
}
