//! The crash report of real crashes of real programs: cores written by the
//! kernel (the core_pattern guard points it at the test's directory), each
//! analyzed by `analyze` in a child acting as the unprivileged user whose
//! program crashed, each checked for the right crashing function.

use lttng_coredump_report::{analyze, render, signature, Executable, Identity, Limits, Report};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use testsupport::crasher::traced_command_as;
use testsupport::kernel_cores::{Crashed, KernelCores};
use testsupport::TestUser;

use testsupport::report_programs::{CRASHER, CRASHER_NODEBUG, PANIC};

fn crash_as(cores: &KernelCores, user: &TestUser, program: &str, args: &[&str]) -> Crashed {
    let mut command = traced_command_as(user.uid, user.gid, program);
    command.args(args);
    cores.crash(&command)
}

fn analyze_as(user: &TestUser, core: &Path, exe: &str) -> Report {
    let file = File::open(core).unwrap();
    let identity = Identity::of_user(user.uid).unwrap();
    analyze(
        file.as_fd(),
        Some(Executable::Path(Path::new(exe))),
        Some(&identity),
        &Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", core.display()))
}

/// The crashing thread's frames' function names, innermost first.
fn functions(report: &Report) -> Vec<String> {
    report
        .crashing_thread()
        .expect("a crashing thread")
        .frames
        .iter()
        .map(|f| f.function.clone().unwrap_or_else(|| "??".into()))
        .collect()
}

fn shown(report: &Report) -> String {
    render::text(report, &render::Options { all_threads: true })
}

#[test]
fn each_kind_of_crash_is_reported_at_its_crashing_function_as_the_crashing_user() {
    let user = TestUser::create("lcdrep-kinds", false);
    let started = std::time::Instant::now();
    let mut cores = KernelCores::new("report-kinds");
    eprintln!("core_pattern after {:?}", started.elapsed());
    let segv = crash_as(&cores, &user, CRASHER, &["segv"]);
    let abort = crash_as(&cores, &user, CRASHER, &["abort"]);
    let thread = crash_as(&cores, &user, CRASHER, &["thread"]);
    let overflow = crash_as(&cores, &user, CRASHER, &["overflow"]);
    let library = crash_as(&cores, &user, CRASHER, &["library"]);
    let nodebug = crash_as(&cores, &user, CRASHER_NODEBUG, &["segv"]);
    let panic = crash_as(&cores, &user, PANIC, &[]);
    cores.release_core_pattern();
    eprintln!("crashed after {:?}", started.elapsed());

    // A NULL read with debug information: function, file:line, signal,
    // address, instruction, modules with build-ids.
    let report = analyze_as(&user, &segv.core, CRASHER);
    let text = shown(&report);
    assert_eq!(report.analysis.uid, user.uid, "{text}");
    assert_eq!(report.analysis.gid, user.gid, "{text}");
    let crashing = report.crashing_thread().unwrap();
    assert_eq!(report.threads[0].tid, crashing.tid);
    assert_eq!(crashing.tid, segv.pid as i32);
    let top = &crashing.frames[0];
    assert_eq!(top.function.as_deref(), Some("report_bug_segv"), "{text}");
    assert!(
        top.file
            .as_deref()
            .is_some_and(|f| f.ends_with("report_crasher.c"))
            && top.line.is_some(),
        "{text}"
    );
    assert!(functions(&report).contains(&"main".to_string()), "{text}");
    let signal = report.signal.as_ref().unwrap();
    assert_eq!(
        (
            signal.name.as_str(),
            signal.code_name.as_deref(),
            signal.fault_address
        ),
        ("SIGSEGV", Some("SEGV_MAPERR"), Some(0)),
        "{text}"
    );
    let instruction = report.faulting_instruction.as_ref().unwrap();
    assert_eq!(instruction.address, top.pc);
    assert!(
        // The NULL pointer is the first argument: the load is through %rdi.
        instruction
            .disassembly
            .as_deref()
            .is_some_and(|d| d.contains("(%rdi)")),
        "{text}"
    );
    for name in [CRASHER, "libreport_fixture.so", "libc.so.6"] {
        let module = report
            .modules
            .iter()
            .find(|m| m.name.ends_with(name.rsplit('/').next().unwrap()))
            .unwrap_or_else(|| panic!("no module {name}: {text}"));
        assert!(
            module.build_id.as_ref().is_some_and(|id| id.len() == 40),
            "{text}"
        );
    }
    assert_eq!(report.executable.as_deref(), Some(CRASHER));
    assert_eq!(report.process.as_ref().unwrap().uid, user.uid);

    // abort(): SIGABRT sent by the process itself, the bug past abort.
    let report = analyze_as(&user, &abort.core, CRASHER);
    let text = shown(&report);
    let signal = report.signal.as_ref().unwrap();
    assert_eq!(
        (signal.name.as_str(), signal.code_name.as_deref()),
        ("SIGABRT", Some("SI_TKILL")),
        "{text}"
    );
    assert!(
        functions(&report).contains(&"report_bug_abort".to_string()),
        "{text}"
    );
    assert_eq!(
        signature(&report).title,
        "report_crasher: SIGABRT in report_bug_abort"
    );

    // Five threads: the crashing one (not the main thread) first and
    // marked, the four others unwound too.
    let report = analyze_as(&user, &thread.core, CRASHER);
    let text = shown(&report);
    assert_eq!(report.threads_in_core, 5, "{text}");
    assert_eq!(report.threads.len(), 5, "{text}");
    assert!(report.threads[0].crashing, "{text}");
    assert_eq!(report.threads.iter().filter(|t| t.crashing).count(), 1);
    assert_ne!(report.threads[0].tid, thread.pid as i32, "{text}");
    assert_eq!(
        report.threads[0].frames[0].function.as_deref(),
        Some("report_bug_in_thread"),
        "{text}"
    );
    let waiting = report
        .threads
        .iter()
        .filter(|t| {
            t.frames
                .iter()
                .any(|f| f.function.as_deref() == Some("report_waiter"))
        })
        .count();
    assert_eq!(waiting, 3, "{text}");

    // A stack overflow: the recursion, bounded by the frame limit.
    let report = analyze_as(&user, &overflow.core, CRASHER);
    let text = render::text(&report, &render::Options::default());
    let crashing = report.crashing_thread().unwrap();
    assert_eq!(
        crashing.frames.len(),
        Limits::default().max_frames,
        "{text}"
    );
    assert!(
        crashing
            .frames
            .iter()
            .all(|f| f.function.as_deref() == Some("report_recurse")),
        "{text}"
    );
    assert!(
        crashing
            .incomplete
            .as_deref()
            .is_some_and(|w| w.contains("frame limit")),
        "{text}"
    );

    // A crash inside a shared library: its module, its function.
    let report = analyze_as(&user, &library.core, CRASHER);
    let text = shown(&report);
    let top = &report.crashing_thread().unwrap().frames[0];
    assert_eq!(
        top.function.as_deref(),
        Some("report_library_inner"),
        "{text}"
    );
    assert!(
        top.module
            .as_deref()
            .unwrap()
            .ends_with("libreport_fixture.so"),
        "{text}"
    );
    assert!(
        functions(&report).contains(&"report_library_crash".to_string()),
        "{text}"
    );

    // Without debug information: the function from the symbol table, no
    // source line.
    let report = analyze_as(&user, &nodebug.core, CRASHER_NODEBUG);
    let text = shown(&report);
    let top = &report.crashing_thread().unwrap().frames[0];
    assert_eq!(top.function.as_deref(), Some("report_bug_segv"), "{text}");
    assert_eq!(top.file, None, "{text}");

    // Rust with panic=abort: past the panic machinery to the bug.
    let report = analyze_as(&user, &panic.core, PANIC);
    let text = shown(&report);
    assert!(
        functions(&report).contains(&"report_panic::report_rust_bug".to_string()),
        "{text}"
    );
    assert_eq!(
        signature(&report).title,
        "report_panic: SIGABRT in report_panic::report_rust_bug",
        "{text}"
    );
}

#[test]
fn two_bugs_crashed_ten_times_each_under_aslr_give_two_signatures_of_ten() {
    let aslr = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").unwrap();
    assert_ne!(
        aslr.trim(),
        "0",
        "this test needs ASLR (kernel.randomize_va_space)"
    );
    let user = TestUser::create("lcdrep-sig", false);
    let mut cores = KernelCores::new("report-signatures");
    // Two different bugs with the same signal: a NULL read in the program,
    // a NULL write in its shared library.
    let crashes: Vec<(&str, Crashed)> = (0..20)
        .map(|i| {
            let bug = if i % 2 == 0 { "segv" } else { "library" };
            (bug, crash_as(&cores, &user, CRASHER, &[bug]))
        })
        .collect();
    cores.release_core_pattern();
    let mut problems: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    let mut top_pcs = std::collections::BTreeSet::new();
    for (bug, crash) in &crashes {
        let report = analyze_as(&user, &crash.core, CRASHER);
        top_pcs.insert(report.crashing_thread().unwrap().frames[0].pc);
        problems
            .entry(signature(&report).hash)
            .or_default()
            .push(bug);
    }
    // The programs did load at different addresses.
    assert!(top_pcs.len() > 2, "ASLR did not move the code: {top_pcs:?}");
    assert_eq!(problems.len(), 2, "{problems:?}");
    for bugs in problems.values() {
        assert_eq!(bugs.len(), 10, "{problems:?}");
        assert!(bugs.iter().all(|b| *b == bugs[0]), "{problems:?}");
    }
}

#[test]
fn the_core_and_the_executable_are_read_through_the_callers_descriptors_never_by_path() {
    use std::os::unix::fs::PermissionsExt;
    let user = TestUser::create("lcdrep-fds", false);
    let dir = testsupport::TempDir::new("report-fds");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let exe = bin.join("report_crasher");
    testsupport::process::copy_executable(CRASHER, &exe);
    testsupport::process::copy_executable(
        testsupport::report_programs::LIBRARY,
        bin.join("libreport_fixture.so"),
    );
    let mut cores = KernelCores::new("report-fds-cores");
    let crash = crash_as(&cores, &user, exe.to_str().unwrap(), &["segv"]);
    cores.release_core_pattern();
    // Now only root can open the program and the core.
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o700)).unwrap();
    let core = dir.path().join("core");
    std::fs::copy(&crash.core, &core).unwrap();
    std::fs::set_permissions(&core, std::fs::Permissions::from_mode(0o600)).unwrap();
    let identity = Identity::of_user(user.uid).unwrap();
    let core_file = File::open(&core).unwrap();
    let analyze_with = |executable| {
        analyze(
            core_file.as_fd(),
            Some(executable),
            Some(&identity),
            &Limits::default(),
        )
        .unwrap()
    };

    // By path, the child (the user) cannot open the program: no symbol for
    // its static function.
    let report = analyze_with(Executable::Path(&exe));
    assert_eq!(report.analysis.uid, user.uid);
    let top = &report.crashing_thread().unwrap().frames[0];
    assert_eq!(top.function, None, "{}", shown(&report));

    // Through root's descriptor, opened while it could: the symbols.
    let exe_file = File::open(&exe).unwrap();
    let report = analyze_with(Executable::Open {
        file: exe_file.as_fd(),
        path: &exe,
    });
    let top = &report.crashing_thread().unwrap().frames[0];
    assert_eq!(
        top.function.as_deref(),
        Some("report_bug_segv"),
        "{}",
        shown(&report)
    );
    assert_eq!(report.executable.as_deref(), exe.to_str());
    // Its module is named after the program, not the descriptor the
    // child opened it through.
    assert_eq!(
        top.module.as_deref(),
        Some("report_crasher"),
        "{}",
        shown(&report)
    );
}
