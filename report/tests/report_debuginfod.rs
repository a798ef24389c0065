//! Symbols through debuginfod, within a time bound: Debian's `debuginfod`
//! server on the loopback interface serves the debug information of a
//! stripped test program; the report of its crash (analyzed as the
//! crashing user) has the function and source line only with the server,
//! and a server that never answers costs its timeout, not the report.

use lttng_coredump_report::{analyze, Debuginfod, Executable, Identity, Limits, Report};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testsupport::crasher::traced_command_as;
use testsupport::debuginfod::DebuginfodServer;
use testsupport::kernel_cores::KernelCores;
use testsupport::process::copy_executable;
use testsupport::report_programs::{CRASHER, LIBRARY};
use testsupport::{TempDir, TestUser};

fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build_id(file: &Path) -> String {
    let notes = run_ok(Command::new("readelf").arg("-n").arg(file));
    notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build-id in {}", file.display()))
        .trim()
        .to_string()
}

fn analyze_with(
    user: &TestUser,
    core: &Path,
    exe: &Path,
    debuginfod: Option<Debuginfod>,
) -> (Report, Duration) {
    let file = File::open(core).unwrap();
    let identity = Identity::of_user(user.uid).unwrap();
    let started = Instant::now();
    let report = analyze(
        file.as_fd(),
        Some(Executable::Path(exe)),
        Some(&identity),
        &Limits {
            debuginfod,
            ..Limits::default()
        },
    )
    .unwrap();
    (report, started.elapsed())
}

#[test]
fn symbols_come_from_debuginfod_and_a_server_that_never_answers_costs_its_timeout() {
    // A stripped copy of the program (no symbols, no DWARF, no debuglink),
    // its debug information kept apart for the server.
    let dir = TempDir::new("report-debuginfod");
    let (bin, debug) = (dir.path().join("bin"), dir.path().join("debug"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&debug).unwrap();
    let exe = bin.join("report_crasher");
    copy_executable(CRASHER, &exe);
    copy_executable(LIBRARY, bin.join("libreport_fixture.so"));
    run_ok(
        Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(CRASHER)
            .arg(debug.join("report_crasher.debug")),
    );
    run_ok(Command::new("strip").arg("--strip-all").arg(&exe));
    let id = build_id(&exe);
    assert_eq!(id, build_id(&debug.join("report_crasher.debug")));
    let server = DebuginfodServer::start(&debug);
    server.wait_for_debuginfo(&id);

    let user = TestUser::create("lcdrep-dbginfod", false);
    let mut cores = KernelCores::new("report-debuginfod-cores");
    let crash = cores.crash(traced_command_as(user.uid, user.gid, &exe).arg("segv"));
    cores.release_core_pattern();

    // Without debuginfod: no name for the stripped program's function.
    let (report, _) = analyze_with(&user, &crash.core, &exe, None);
    let top = &report.crashing_thread().unwrap().frames[0];
    assert_eq!(top.function, None, "{report:#?}");
    assert_eq!(top.file, None, "{report:#?}");

    // With it: the function and its source line, from the server.
    let settings = Debuginfod {
        urls: server.url(),
        timeout: Duration::from_secs(20),
        max_size: 1 << 30,
        cache: None,
    };
    let (report, _) = analyze_with(&user, &crash.core, &exe, Some(settings.clone()));
    let top = &report.crashing_thread().unwrap().frames[0];
    assert_eq!(
        top.function.as_deref(),
        Some("report_bug_segv"),
        "{report:#?}"
    );
    assert!(
        top.file
            .as_deref()
            .is_some_and(|f| f.ends_with("report_crasher.c")),
        "{report:#?}"
    );

    // A server that accepts and never answers: the analysis gives it up
    // after its timeout and reports what it has.
    server.freeze();
    let (report, took) = analyze_with(
        &user,
        &crash.core,
        &exe,
        Some(Debuginfod {
            timeout: Duration::from_secs(2),
            ..settings
        }),
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    let top = &report.crashing_thread().unwrap().frames[0];
    assert_eq!(top.function, None, "{report:#?}");
    assert!(
        report
            .analysis
            .notes
            .iter()
            .any(|n| n.contains("was given up after 2000 ms")),
        "{report:#?}"
    );
}
