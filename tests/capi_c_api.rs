//! The C API (`include/lttng-coredump.h`) exercised by C and C++ programs
//! linked against the installed shared and static libraries, against the
//! real root session daemon: triggers set through a real
//! `struct lttng_handle`, the RFC's core_pattern helper firing them, the
//! snapshot read back with babeltrace2, STOP, bad arguments, the header's
//! freshness and valgrind.

use lttng_ctl::ErrorCode;
use std::path::Path;
use std::process::Command;
use testsupport::capi::*;
use testsupport::crasher::*;
use testsupport::process::*;
use testsupport::sessions::*;
use testsupport::triggers::*;
use testsupport::*;

fn list_triggers_output() -> String {
    lttng_ok(&["list-triggers"])
}

#[test]
fn c_programs_build_shared_and_static_and_the_shared_library_has_its_soname() {
    let api = c_api();
    let lib = api.prefix.join("lib/liblttng-coredump.so.0");
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Library soname: [liblttng-coredump.so.0]"),
        "no SONAME in {}",
        lib.display()
    );
    for program in api.set_trigger.iter().chain(&api.helper) {
        let needed = needed_libraries(&program.path);
        let uses_shared = needed.iter().any(|l| l == "liblttng-coredump.so.0");
        assert_eq!(
            uses_shared,
            program.link == Link::Shared,
            "{}: NEEDED {needed:?}",
            program.label
        );
    }
}

#[test]
fn c_set_trigger_through_a_real_handle_is_listed_idempotent_and_removable() {
    let api = c_api();
    let _lock = root_triggers_lock();
    let session = TestSession::snapshot("capi-set");
    for program in &api.set_trigger {
        let name = format!("lttng-coredump:snapshot:{}", session.name);
        for round in 0..2 {
            // Setting twice succeeds: the second finds the first.
            let out = run(&program.path, &["set", &session.name, "snapshot"]);
            assert_eq!(
                stdout(&out),
                "set 0\n",
                "{} round {round}: {out:?}",
                program.label
            );
        }
        let listed = list_triggers_output();
        assert_eq!(
            listed.matches(&format!("- name: {name}\n")).count(),
            1,
            "{}: {listed}",
            program.label
        );
        assert!(listed.contains("rule: lttng_coredump:on_any_core_dump (type: user tracepoint)"));
        assert!(listed.contains(&format!("snapshot session `{}`", session.name)));

        let out = run(&program.path, &["unset", &session.name, "snapshot"]);
        assert_eq!(stdout(&out), "unset 0\n", "{}: {out:?}", program.label);
        assert!(!list_triggers_output().contains(&name));

        // The CLI removes what the C API set.
        let out = run(&program.path, &["set", &session.name, "stop"]);
        assert_eq!(stdout(&out), "set 0\n", "{}: {out:?}", program.label);
        let stop_name = format!("lttng-coredump:stop:{}", session.name);
        assert!(list_triggers_output().contains(&stop_name));
        lttng_ok(&["remove-trigger", &stop_name]);
        assert!(!list_triggers_output().contains(&stop_name));
    }
}

#[test]
fn c_api_refuses_bad_arguments_with_negative_codes() {
    let api = c_api();
    let _lock = root_triggers_lock();
    let _sessiond = ensure_sessiond();
    let missing = unique_name("capi-missing");
    let invalid = c_code(ErrorCode::Invalid);
    let expected = [
        ("set_null_handle", invalid),
        ("set_bad_type", invalid),
        ("set_bad_action", invalid),
        ("set_missing_session", c_code(ErrorCode::SessionNotFound)),
        ("unset_null_handle", invalid),
        ("unset_bad_action", invalid),
        ("unset_not_set", c_code(ErrorCode::TriggerNotFound)),
        ("fire_bad_type", invalid),
        ("fire_null_opts", invalid),
        ("fire_short_nb_opt", invalid),
        ("fire_no_daemon_at_path", c_code(ErrorCode::NoSessionDaemon)),
        ("fire_unterminated_exec_name", invalid),
        ("fire_unterminated_hostname", invalid),
        ("fire_null_report", invalid),
        ("fire_report_bad_type", invalid),
        ("fire_report_is_null_after_refusal", 0),
        ("timeout_zero", invalid),
        ("timeout_kept", 5000),
        ("report_null_count", 0),
        ("report_null_status", invalid),
        ("report_null_session_is_null", 0),
    ];
    for program in &api.set_trigger {
        let out = run(&program.path, &["errors", &missing]);
        assert!(out.status.success(), "{}: {out:?}", program.label);
        let text = stdout(&out);
        let got: Vec<(String, i32)> = text
            .lines()
            .map(|l| {
                let (case, code) = l.split_once(' ').unwrap();
                (case.to_string(), code.parse().unwrap())
            })
            .collect();
        let want: Vec<(String, i32)> = expected.iter().map(|(c, v)| (c.to_string(), *v)).collect();
        assert_eq!(got, want, "{}", program.label);
    }
    // lttng_strerror() explains the codes: they are LTTng's own.
    assert_eq!(
        lttng_ctl::error::strerror(ErrorCode::from_raw(invalid.unsigned_abs())),
        "Invalid parameter"
    );
}

/// The snapshot directory's name starts with `<exec_name>-<pid>-`.
fn assert_named_after_the_crash(path: &Path, pid: u32) {
    let dir = path.file_name().unwrap().to_str().unwrap();
    assert!(
        dir.starts_with(&format!("crasher-{pid}-")),
        "snapshot directory {dir:?} is not named after crasher pid {pid}"
    );
}

#[test]
fn c_helper_fire_snapshots_the_traced_program_events() {
    let api = c_api();
    let _lock = root_triggers_lock();
    remove_stale_triggers();
    let session = TestSession::snapshot("capi-fire");
    let tag = unique_name("capi-tag");
    let pid = run_crasher(&tag, 25);
    let set = &api.set_trigger[0];
    let out = run(&set.path, &["set", &session.name, "snapshot"]);
    assert!(out.status.success(), "{out:?}");

    for link in [Link::Shared, Link::Static] {
        let helper = api.helper(link);
        let before = session.snapshot_dirs();
        let fired = fire(helper, &[], pid, "crasher");
        assert_eq!(fired.ret, 0, "{}: {}", helper.label, fired.raw);
        let entries = fired.for_session(&session.name);
        assert_eq!(entries.len(), 1, "{}", fired.raw);
        let entry = entries[0];
        assert_eq!(entry.status, 0, "{}", fired.raw);
        assert_eq!(entry.action, 1, "LTTNG_TRIGGER_ACTION_SNAPSHOT");
        assert_eq!(entry.owner_uid, 0);
        assert_eq!(
            entry.trigger,
            format!("lttng-coredump:snapshot:{}", session.name)
        );
        let path = entry
            .snapshot_path
            .clone()
            .expect("the report says where it went");
        assert_named_after_the_crash(&path, pid);
        assert!(
            path.starts_with(session.output.path()),
            "{}",
            path.display()
        );
        let after = session.snapshot_dirs();
        assert_eq!(after.len(), before.len() + 1, "{after:?}");
        assert!(after.contains(&path));
        let events = babeltrace_events(&path);
        assert_eq!(
            fixture_seqs(&events, &tag),
            (0..25).collect::<Vec<i64>>(),
            "{}: the snapshot lacks the crasher's events",
            helper.label
        );
    }

    // The plain RFC call, without a report, returns 0 and records too.
    let before = session.snapshot_dirs().len();
    let out = run(
        &api.helper(Link::Shared).path,
        &[&pid.to_string(), "0", "0", "crasher", "testhost"],
    );
    assert_eq!(stdout(&out), "ret 0\n", "{out:?}");
    assert_eq!(session.snapshot_dirs().len(), before + 1);
}

#[test]
fn c_helper_fire_stop_leaves_the_session_inactive() {
    let api = c_api();
    let _lock = root_triggers_lock();
    remove_stale_triggers();
    let session = TestSession::snapshot("capi-stop");
    assert!(
        session.status_line().contains("[active"),
        "{}",
        session.status_line()
    );
    let out = run(&api.set_trigger[1].path, &["set", &session.name, "stop"]);
    assert!(out.status.success(), "{out:?}");
    let fired = fire(api.helper(Link::Static), &[], 4242, "crasher");
    assert_eq!(fired.ret, 0, "{}", fired.raw);
    let entries = fired.for_session(&session.name);
    assert_eq!(entries.len(), 1, "{}", fired.raw);
    assert_eq!(entries[0].action, 2, "LTTNG_TRIGGER_ACTION_STOP");
    assert_eq!(entries[0].snapshot_path, None);
    let line = session.status_line();
    assert!(line.contains("[inactive"), "after the fire: {line}");
}

#[test]
fn c_tests_run_clean_under_valgrind() {
    let api = c_api();
    let _lock = root_triggers_lock();
    remove_stale_triggers();
    let session = TestSession::snapshot("capi-vg");
    let suppressions = workspace_root().join("tests/c/valgrind.supp");
    let logs = TempDir::new("capi-vg-logs");
    // One log per process, forked children (which do the liblttng-ctl
    // work) included; with --quiet a log holds only errors.
    let valgrind = |program: &Path, args: &[&str]| {
        let out = Command::new("valgrind")
            .args(["--error-exitcode=99", "--quiet", "--track-fds=no"])
            .arg(format!("--suppressions={}", suppressions.display()))
            .arg(format!("--log-file={}/vg.%p", logs.path().display()))
            .arg(program)
            .args(args)
            .output()
            .expect("running valgrind (apt-get install -y valgrind)");
        for log in std::fs::read_dir(logs.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(log.path()).unwrap();
            assert!(
                text.trim().is_empty(),
                "valgrind found errors in {} {args:?} ({}):\n{text}",
                program.display(),
                log.path().display()
            );
        }
        assert_ne!(out.status.code(), Some(99), "{out:?}");
        out
    };
    let missing = unique_name("capi-vg-missing");
    for program in &api.set_trigger {
        let out = valgrind(&program.path, &["errors", &missing]);
        assert!(out.status.success(), "{}: {out:?}", program.label);
    }
    let set = &api.set_trigger[0].path;
    let out = valgrind(set, &["set", &session.name, "snapshot"]);
    assert!(out.status.success(), "{out:?}");
    let tag = unique_name("capi-vg-tag");
    let pid = run_crasher(&tag, 5);
    for helper in &api.helper {
        let pid = pid.to_string();
        let out = valgrind(
            &helper.path,
            &["--report", &pid, "0", "0", "crasher", "testhost"],
        );
        let fired = HelperOutput::parse(&stdout(&out));
        assert_eq!(fired.ret, 0, "{}", fired.raw);
    }
    let out = valgrind(set, &["unset", &session.name, "snapshot"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_rfc_helper_in_core_pattern_snapshots_a_real_crash() {
    let api = c_api();
    // Owns core_pattern, and the root daemon's triggers with it.
    let guard = CorePatternGuard::acquire();
    remove_stale_triggers();
    let session = TestSession::snapshot("capi-kernel");
    let out = run(
        &api.set_trigger[0].path,
        &["set", &session.name, "snapshot"],
    );
    assert!(out.status.success(), "{out:?}");

    // A short path, for core_pattern's 127 bytes.
    let bin = Path::new("/run/lttng-coredump-tests/bin");
    std::fs::create_dir_all(bin).unwrap();
    let helper = bin.join("capi-helper");
    let staged = bin.join(format!("capi-helper.{}", std::process::id()));
    testsupport::copy_executable(&api.helper(Link::Static).path, &staged);
    std::fs::rename(&staged, &helper).unwrap();
    // The logs live under the guard's directory: a TempDir path would push
    // the line over core_pattern's 127 bytes. The guard makes it ours alone.
    let logs = bin.parent().unwrap().join("l");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    // A long deadline: this test is about what the fire does, not how fast.
    // While the crasher is held by the kernel, any other test's command that
    // makes the session daemon talk to every registered application (start,
    // enable-event) waits on the frozen crasher for the daemon's
    // app-socket-timeout (5 s by default), and the fire queues behind it.
    let pattern = format!(
        "|{} --timeout-ms 20000 --report --log {}/%P.log %P %u %g %e %h",
        helper.display(),
        logs.display()
    );
    guard.set(&pattern);

    let tag = unique_name("capi-kernel-tag");
    let mut crasher = crasher_command();
    crasher.args([tag.as_str(), "30", "segv"]);
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        crasher.pre_exec(|| {
            let unlimited = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &unlimited);
            Ok(())
        });
    }
    let out = crasher.output().unwrap();
    assert!(!out.status.success(), "the crasher did not crash: {out:?}");
    let pid = ready_pid(&out) as u32;

    let log = logs.join(format!("{pid}.log"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().any(|l| l.starts_with("ret ")) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(guard);
    let fired = HelperOutput::parse(&text);
    let entries = fired.for_session(&session.name);
    assert_eq!(entries.len(), 1, "{}", fired.raw);
    assert_eq!(entries[0].status, 0, "{}", fired.raw);
    let path = entries[0].snapshot_path.clone().unwrap();
    assert_named_after_the_crash(&path, pid);
    assert_eq!(
        fixture_seqs(&babeltrace_events(&path), &tag),
        (0..30).collect::<Vec<i64>>()
    );
}
