//! The crash report and the journal entry through the real kernel: the
//! freshly built handler in core_pattern, real programs crashing as an
//! unprivileged user (and as root), the real systemd-journald run
//! standalone on the test's socket (`journal_socket`), read back with
//! Debian's `coredumpctl`, and the handler's own `info` and `problems`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::crasher::traced_command_as;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::journald::StandaloneJournald;
use testsupport::process::{output_text, run_bounded};
use testsupport::report_programs::CRASHER;
use testsupport::{TempDir, TestUser};

/// The configuration: cores in `cores`, the journal entries to `journald`,
/// no rate limit on cores (the tests crash one program many times).
fn config(cores: &Path, journald: &StandaloneJournald, extra: &str) -> String {
    config_for(
        cores,
        &format!(
            "journal_socket = \"{}\"\nmax_cores_per_minute = 0\nmax_cores_per_user_per_minute = \
             0\n{extra}",
            journald.socket().display()
        ),
    )
}

/// Runs `command` (a program that crashes) with RLIMIT_CORE raised under
/// the installed handler; returns its pid once it died of a signal.
fn crash(command: &Command) -> i32 {
    testsupport::kernel_cores::crash_with_cores(command).0 as i32
}

fn crash_as(user: &TestUser, bug: &str) -> i32 {
    let mut command = traced_command_as(user.uid, user.gid, CRASHER);
    command.arg(bug);
    crash(&command)
}

/// `lttng-coredump ARGS`, successful.
fn tool(args: &[&str]) -> String {
    let out: Output = run_bounded(
        Command::new(handler_binary!()).args(args),
        Duration::from_secs(120),
    );
    let text = output_text(&out);
    assert!(out.status.success(), "lttng-coredump {args:?}:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The report of the record at `record_path`: the file beside it that the
/// record names (the record holds no report of its own).
fn report_file(record_path: &Path, record: &serde_json::Value) -> serde_json::Value {
    assert!(record["report"].get("report").is_none(), "{record:#}");
    let name = record["report"]["file"]
        .as_str()
        .unwrap_or_else(|| panic!("the record names no report file: {record:#}"));
    assert!(!name.contains('/'), "{name}");
    let path = record_path.with_file_name(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The crashing thread's function names in a report.
fn functions(report: &serde_json::Value) -> Vec<String> {
    let threads = report["threads"].as_array().unwrap();
    let crashing = threads
        .iter()
        .find(|t| t["crashing"] == true)
        .expect("a crashing thread");
    crashing["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap_or("??").to_string())
        .collect()
}

#[test]
fn a_crash_gets_a_report_in_its_record_and_a_journal_entry_coredumpctl_info_shows() {
    let journald = StandaloneJournald::start();
    let user = TestUser::create("lcdrw-info", false);
    let dir = TempDir::new("lcdrw-info");
    let cores = dir.path().join("cores");
    let handler = InstalledHandler::new(handler_binary!(), &config(&cores, &journald, ""));
    let exe = std::fs::canonicalize(CRASHER).unwrap();
    let exe = exe.to_str().unwrap();
    let pid = crash_as(&user, "segv");
    let (record_path, record) = wait_for_record(&cores, pid);

    // The report, analyzed as the crashing user, its signature beside it.
    let report = &record["report"];
    assert_eq!(report["analyzed"], true, "{record:#}");
    assert_eq!(report["analyzed_as_uid"], user.uid, "{report:#}");
    let signature = report["signature"].as_str().unwrap().to_string();
    assert_eq!(signature.len(), 32, "{signature}");
    assert_eq!(
        report["title"],
        "report_crasher: SIGSEGV in report_bug_segv"
    );
    // The report is a file beside the record, which names it.
    let full = report_file(&record_path, &record);
    assert!(
        functions(&full).first().map(String::as_str) == Some("report_bug_segv"),
        "{:?}",
        functions(&full)
    );
    assert!(record["stages"]["report"]["started_unix_us"].as_u64() > Some(0));
    // After the core was read and the process let go: never on its clock.
    assert!(
        record["stages"]["report"]["started_unix_us"].as_u64()
            >= record["stages"]["core"]["ended_unix_us"].as_u64()
    );
    // The user may read the core: their copy has the report too.
    let copy_path = wait_for_user_copy(&record_path);
    let copy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&copy_path).unwrap()).unwrap();
    assert_eq!(copy["report"]["signature"], signature.as_str());
    assert_eq!(report_file(&copy_path, &copy), full);

    // info: the problem and the crashing thread's backtrace; --threads,
    // --json.
    let pid_arg = pid.to_string();
    let dir_arg = cores.to_str().unwrap();
    let info = tool(&["info", "--dir", dir_arg, "--no-pager", &pid_arg]);
    for expected in [
        "Problem: report_crasher: SIGSEGV in report_bug_segv".to_string(),
        format!("Signature: {signature}"),
        "Signal: SIGSEGV (11), SEGV_MAPERR".to_string(),
        "report_bug_segv".to_string(),
    ] {
        assert!(info.contains(&expected), "no {expected:?} in:\n{info}");
    }
    let all = tool(&[
        "info",
        "--dir",
        dir_arg,
        "--no-pager",
        "--threads",
        &pid_arg,
    ]);
    assert!(all.contains("Modules:"), "{all}");
    let json = tool(&["info", "--dir", dir_arg, "--json", &pid_arg]);
    let json: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(json["report"]["signature"], signature.as_str());
    assert!(
        json["report"]["report"]["modules"]
            .as_array()
            .unwrap()
            .len()
            > 1
    );

    // The journal entry: systemd-coredump's fields and ours, as coredumpctl
    // reads them.
    let crash_id = record["crash_id"].as_str().unwrap();
    journald.wait_for_entry(&[
        &format!("COREDUMP_PID={pid}"),
        &format!("LTTNG_COREDUMP_CRASH_ID={crash_id}"),
        &format!("LTTNG_COREDUMP_SIGNATURE={signature}"),
        &format!("LTTNG_COREDUMP_RECORD={}", record_path.display()),
    ]);
    let list = journald.coredumpctl(&["list", &pid_arg]);
    let text = output_text(&list);
    assert!(list.status.success(), "{text}");
    assert!(text.contains("present") && text.contains(exe), "{text}");
    let info = journald.coredumpctl(&["info", &pid_arg]);
    let text = output_text(&info);
    assert!(info.status.success(), "{text}");
    let core = record["core"]["path"].as_str().unwrap();
    for expected in [
        format!("PID: {pid} (report_crasher)"),
        format!("UID: {}", user.uid),
        "Signal: 11 (SEGV)".to_string(),
        format!("Executable: {exe}"),
        format!("Storage: {core} (present)"),
        format!("Stack trace of thread {pid}:"),
        "report_bug_segv (report_crasher + 0x".to_string(),
    ] {
        assert!(text.contains(&expected), "no {expected:?} in:\n{text}");
    }
    // coredumpctl debug finds our core by COREDUMP_FILENAME.
    let debug = journald.coredumpctl(&["debug", &pid_arg, "--debugger-arguments=-batch -ex bt"]);
    let text = output_text(&debug);
    assert!(
        text.contains("report_bug_segv"),
        "coredumpctl debug:\n{text}"
    );

    // Root's own crash: analyzed as the service account, never as root.
    let root = crash(traced_command_as(0, 0, CRASHER).arg("segv"));
    let (_, record) = wait_for_record(&cores, root);
    assert_eq!(record["report"]["analyzed"], true, "{record:#}");
    assert_eq!(record["report"]["analyzed_as_uid"], 65534);
    assert_eq!(record["report"]["signature"], signature.as_str());
    drop(handler);
}

#[test]
fn two_bugs_crashed_five_times_each_give_exactly_two_problems_of_five() {
    let aslr = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").unwrap();
    assert_ne!(aslr.trim(), "0", "this test needs ASLR");
    let journald = StandaloneJournald::start();
    let user = TestUser::create("lcdrw-problems", false);
    let dir = TempDir::new("lcdrw-problems");
    let cores = dir.path().join("cores");
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config(&cores, &journald, "journal = false"),
    );
    // A NULL read in the program, a NULL write in its shared library.
    let mut pids: Vec<(&str, i32)> = Vec::new();
    for i in 0..10 {
        let bug = if i % 2 == 0 { "segv" } else { "library" };
        pids.push((bug, crash_as(&user, bug)));
    }
    let mut signatures: std::collections::BTreeMap<&str, String> = Default::default();
    for (bug, pid) in &pids {
        let (_, record) = wait_for_record(&cores, *pid);
        let signature = record["report"]["signature"]
            .as_str()
            .unwrap_or_else(|| panic!("no signature: {record:#}"))
            .to_string();
        let known = signatures.entry(bug).or_insert_with(|| signature.clone());
        assert_eq!(*known, signature, "{bug} crashed with two signatures");
    }
    drop(handler);
    let dir_arg = cores.to_str().unwrap();
    let out = tool(&["problems", "--dir", dir_arg, "--json"]);
    let problems: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(problems.len(), 2, "{out}");
    for problem in &problems {
        assert_eq!(problem["count"], 5, "{out}");
        assert_eq!(problem["uids"], serde_json::json!([user.uid]), "{out}");
        assert!(problem["first_seen"].as_i64() <= problem["last_seen"].as_i64());
    }
    assert_ne!(signatures["segv"], signatures["library"]);
    // One problem's crashes, by the start of its signature.
    let segv = &signatures["segv"];
    let listed = tool(&["problems", "--dir", dir_arg, &segv[..12]]);
    assert!(
        listed.contains("Problem: report_crasher: SIGSEGV in report_bug_segv"),
        "{listed}"
    );
    assert!(listed.contains("Crashes: 5"), "{listed}");
    for (bug, pid) in &pids {
        // Its record's name: core.report_crasher.PID.TIME.json.
        let listed_here = listed.contains(&format!(".report_crasher.{pid}."));
        assert_eq!(
            listed_here,
            *bug == "segv",
            "pid {pid} ({bug}) in:\n{listed}"
        );
    }
    // The text form: one line a problem under its heading.
    let table = tool(&["problems", "--dir", dir_arg]);
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn a_failed_analysis_still_saves_the_core_and_the_record_and_says_why() {
    let journald = StandaloneJournald::start();
    let user = TestUser::create("lcdrw-fail", false);
    let dir = TempDir::new("lcdrw-fail");
    let cores = dir.path().join("cores");
    // The core cut after its notes: the crashing thread's stack is not in
    // it, which the analysis refuses (a core it cannot trust).
    let handler = InstalledHandler::new(
        handler_binary!(),
        &config(&cores, &journald, "max_core_size = \"64K\""),
    );
    let pid = crash_as(&user, "segv");
    let (record_path, record) = wait_for_record(&cores, pid);
    drop(handler);
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    assert_eq!(record["core"]["complete"], false, "{record:#}");
    let core = PathBuf::from(record["core"]["path"].as_str().unwrap());
    assert!(core.is_file());
    let report = &record["report"];
    assert_eq!(report["analyzed"], false, "{record:#}");
    let reason = report["not_analyzed_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("analysis failed: the core is truncated"),
        "{reason}"
    );
    assert!(report["signature"].is_null());
    // Not one of the handler's problems (the cut core is): the report
    // section says why, no more.
    let errors = record["errors"].to_string();
    assert!(!errors.contains("analysis"), "{errors}");
    let info = tool(&[
        "info",
        "--dir",
        cores.to_str().unwrap(),
        "--no-pager",
        &pid.to_string(),
    ]);
    assert!(
        info.contains("Report: none: analysis failed: the core is truncated"),
        "{info}"
    );
    // The journal entry says so, and coredumpctl still reads it.
    journald.wait_for_entry(&[
        &format!("COREDUMP_PID={pid}"),
        &format!("LTTNG_COREDUMP_RECORD={}", record_path.display()),
    ]);
    let export = journald.wait_for_entry(&[&format!("COREDUMP_PID={pid}")]);
    let export = String::from_utf8_lossy(&export);
    assert!(
        export.contains("LTTNG_COREDUMP_ANALYSIS_FAILED=analysis failed: the core is truncated"),
        "{export}"
    );
    let info = journald.coredumpctl(&["info", &pid.to_string()]);
    let text = output_text(&info);
    assert!(info.status.success(), "{text}");
    assert!(
        text.contains(&format!("PID: {pid} (report_crasher)")),
        "{text}"
    );
}

#[test]
fn through_the_coredump_socket_a_crash_gets_its_report_and_journal_entry_too() {
    let journald = StandaloneJournald::start();
    let user = TestUser::create("lcdrw-socket", false);
    let dir = TempDir::new("lcdrw-socket");
    let cores = dir.path().join("cores");
    let handler = testsupport::service::SocketHandler::new(
        handler_binary!(),
        dir.path(),
        &config(&cores, &journald, ""),
        "@@",
    );
    let pid = crash_as(&user, "abort");
    let (_, record) = wait_for_record(&cores, pid);
    drop(handler);
    let report = &record["report"];
    assert_eq!(report["analyzed"], true, "{record:#}");
    assert_eq!(report["analyzed_as_uid"], user.uid, "{report:#}");
    assert_eq!(
        report["title"],
        "report_crasher: SIGABRT in report_bug_abort"
    );
    assert!(
        record["stages"]["report"]["started_unix_us"].as_u64()
            >= record["stages"]["core"]["ended_unix_us"].as_u64()
    );
    let signature = report["signature"].as_str().unwrap();
    journald.wait_for_entry(&[
        &format!("COREDUMP_PID={pid}"),
        &format!("LTTNG_COREDUMP_SIGNATURE={signature}"),
    ]);
    let info = journald.coredumpctl(&["info", &pid.to_string()]);
    let text = output_text(&info);
    assert!(info.status.success(), "{text}");
    assert!(
        text.contains("report_bug_abort (report_crasher + 0x"),
        "{text}"
    );
}

fn build_id(file: &Path) -> String {
    let notes = run_bounded(
        Command::new("readelf").arg("-n").arg(file),
        Duration::from_secs(60),
    );
    String::from_utf8_lossy(&notes.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build-id in {}", file.display()))
        .trim()
        .to_string()
}

/// `debuginfod_urls` in the handler's configuration (its environment is
/// empty: `DEBUGINFOD_URLS` cannot reach it): a stripped program's crash
/// has no function name without it and its function and source line with
/// it, from Debian's `debuginfod` serving the program's debug information
/// on the loopback interface.
#[test]
fn the_configured_debuginfod_server_names_a_stripped_programs_function() {
    let dir = TempDir::new("lcdrw-dbginfod");
    let (bin, debug) = (dir.path().join("bin"), dir.path().join("debug"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&debug).unwrap();
    let exe = bin.join("report_crasher");
    testsupport::process::copy_executable(CRASHER, &exe);
    testsupport::process::copy_executable(
        testsupport::report_programs::LIBRARY,
        bin.join("libreport_fixture.so"),
    );
    for command in [
        Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(CRASHER)
            .arg(debug.join("report_crasher.debug")),
        Command::new("strip").arg("--strip-all").arg(&exe),
    ] {
        let out = run_bounded(command, Duration::from_secs(60));
        assert!(out.status.success(), "{}", output_text(&out));
    }
    let id = build_id(&exe);
    let server = testsupport::debuginfod::DebuginfodServer::start(&debug);
    server.wait_for_debuginfo(&id);

    let journald = StandaloneJournald::start();
    let user = TestUser::create("lcdrw-dbginfod", false);
    let top_function = |extra: &str| {
        let cores = dir.path().join(format!("cores-{}", extra.len()));
        let _handler = InstalledHandler::new(handler_binary!(), &config(&cores, &journald, extra));
        let mut command = traced_command_as(user.uid, user.gid, &exe);
        command.arg("segv");
        let pid = crash(&command);
        let (record_path, record) = wait_for_record(&cores, pid);
        assert_eq!(record["report"]["analyzed"], true, "{record:#}");
        let report = report_file(&record_path, &record);
        let crashing = report["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["crashing"] == true)
            .cloned()
            .expect("a crashing thread");
        crashing["frames"][0].clone()
    };
    // Without the key: the stripped program's frame has no name.
    let top = top_function("");
    assert!(top["function"].is_null(), "{top:#}");
    // With it: the function and its file, from the server.
    let top = top_function(&format!(
        "debuginfod_urls = \"{}\"\ndebuginfod_timeout = \"20s\"\n",
        server.url()
    ));
    assert_eq!(top["function"], "report_bug_segv", "{top:#}");
    assert!(
        top["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("report_crasher.c")),
        "{top:#}"
    );
}

/// Every kind of entry the handler writes reads with coredumpctl: a crash
/// as the kernel describes it, one whose gid argument is garbled (a
/// core_pattern line mangled by hand, a kernel that gives no number) and
/// one without uid and gid arguments at all. Each entry carries a
/// `COREDUMP_UID` and a `COREDUMP_GID` coredumpctl reads (systemd 252's
/// `list` aborts on an entry without one, taking every other crash with
/// it): an id not known is the overflow id 65534, never root's 0, and the
/// entry says so in our own field.
#[test]
fn coredumpctl_list_and_info_read_every_entry_even_of_a_crash_whose_ids_the_kernel_did_not_give() {
    let journald = StandaloneJournald::start();
    let user = TestUser::create("lcdrw-ids", false);
    let dir = TempDir::new("lcdrw-ids");
    let cores = dir.path().join("cores");
    let handler = InstalledHandler::new(handler_binary!(), &config(&cores, &journald, ""));
    let line = handler_line(&handler.binary, &handler.config);
    let mut crashes = Vec::new();
    for (kind, line) in [
        ("as the kernel gives it", line.clone()),
        ("gid garbled", line.replace(" g=%g", " g=x%g")),
        ("no uid nor gid", line.replace(" u=%u g=%g", "")),
    ] {
        // (The line really changed.)
        assert_eq!(
            crashes.is_empty(),
            line == handler_line(&handler.binary, &handler.config)
        );
        handler.guard().set(&line);
        let pid = crash_as(&user, "segv");
        let (_, record) = wait_for_record(&cores, pid);
        journald.wait_for(&format!("COREDUMP_PID={pid}"));
        crashes.push((kind, pid, record));
    }
    assert!(crashes[1].2["gid"].is_null(), "{:#}", crashes[1].2);
    assert!(crashes[2].2["uid"].is_null(), "{:#}", crashes[2].2);

    let list = journald.coredumpctl(&["list", "--no-legend"]);
    let listed = output_text(&list);
    assert!(list.status.success(), "{listed}");
    let (uid, gid) = (user.uid.to_string(), user.gid.to_string());
    for ((kind, pid, _), expected) in crashes.iter().zip([
        (uid.as_str(), gid.as_str()),
        (uid.as_str(), "65534"),
        ("65534", "65534"),
    ]) {
        let line = listed
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some(pid.to_string().as_str()))
            .unwrap_or_else(|| panic!("{kind}: {pid} not listed:\n{listed}"));
        let columns: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((columns[5], columns[6]), expected, "{kind}: {line}");
        let info = journald.coredumpctl(&["info", &pid.to_string()]);
        let text = output_text(&info);
        assert!(info.status.success(), "{kind}: {text}");
        for shown in [
            format!("PID: {pid} (report_crasher)"),
            format!("UID: {}", expected.0),
            format!("GID: {}", expected.1),
        ] {
            assert!(text.contains(&shown), "{kind}: no {shown:?} in:\n{text}");
        }
        // Our own field says which id stands for an unknown one.
        let export =
            String::from_utf8_lossy(&journald.wait_for_entry(&[&format!("COREDUMP_PID={pid}")]))
                .into_owned();
        assert_eq!(
            export.contains("LTTNG_COREDUMP_GID_UNKNOWN=the crashing process's gid is not known"),
            expected.1 == "65534",
            "{kind}: {export}"
        );
        assert_eq!(
            export.contains("LTTNG_COREDUMP_UID_UNKNOWN=the crashing process's uid is not known"),
            expected.0 == "65534",
            "{kind}: {export}"
        );
    }
    drop(handler);
}
