//! Hostile cores cost one report, never the caller: a core cut short, a
//! frame chain that loops, a core claiming 2^20 threads, an analysis that
//! hangs or answers too much each end in a bounded "analysis failed",
//! with the analysis acting as an unprivileged user and leaving no process
//! behind.

use lttng_coredump_report::{analyze, synthetic, Executable, Identity, Limits};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};
use testsupport::crasher::traced_command_as;
use testsupport::kernel_cores::KernelCores;
use testsupport::process::processes;
use testsupport::report_programs::{CRASHER, CRASHER_FP};
use testsupport::{TempDir, TestUser};

/// How long a failed analysis may take past its deadline: the kill, and
/// the bounded wait for the child to die.
const GRACE: Duration = Duration::from_secs(5);

fn analyze_file(
    user: &TestUser,
    core: &Path,
    exe: Option<&Path>,
    limits: &Limits,
) -> (Result<lttng_coredump_report::Report, String>, Duration) {
    let file = File::open(core).unwrap();
    let identity = Identity::of_user(user.uid).unwrap();
    let started = Instant::now();
    let result = analyze(
        file.as_fd(),
        exe.map(Executable::Path),
        Some(&identity),
        limits,
    )
    .map_err(|e| e.to_string());
    let took = started.elapsed();
    assert!(
        took < limits.deadline + GRACE,
        "the analysis took {took:?}, past its deadline of {:?}",
        limits.deadline
    );
    // Nothing of the analysis is left running as the user.
    let left: Vec<_> = processes()
        .into_iter()
        .filter(|(_, _, _, uid)| *uid == user.uid)
        .collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    (result, took)
}

fn failure(result: Result<lttng_coredump_report::Report, String>) -> String {
    match result {
        Ok(report) => panic!("a report where the analysis should fail: {report:?}"),
        Err(reason) => {
            assert!(reason.starts_with("analysis failed: "), "{reason}");
            reason
        }
    }
}

#[test]
fn hostile_cores_each_end_in_a_bounded_analysis_failed() {
    let user = TestUser::create("lcdrep-hostile", false);
    let dir = TempDir::new("report-hostile");
    let mut cores = KernelCores::new("report-hostile-cores");
    let plain = cores.crash(traced_command_as(user.uid, user.gid, CRASHER).arg("segv"));
    let framed = cores.crash(traced_command_as(user.uid, user.gid, CRASHER_FP).arg("segv"));
    cores.release_core_pattern();
    let limits = Limits {
        deadline: Duration::from_secs(20),
        ..Limits::default()
    };
    let whole = std::fs::read(&plain.core).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    // The real core is analyzed (the baseline of what follows).
    let (report, _) = analyze_file(&user, &plain.core, Some(Path::new(CRASHER)), &limits);
    report.unwrap();

    // Truncated inside its program headers, then inside its notes.
    let cut = write("cut-in-headers", &whole[..1000]);
    let reason = failure(analyze_file(&user, &cut, None, &limits).0);
    assert!(
        reason.contains("the file ends inside the program header table"),
        "{reason}"
    );
    let cut = write("cut-in-notes", &whole[..3000]);
    let reason = failure(analyze_file(&user, &cut, None, &limits).0);
    assert!(
        reason.contains("the core is truncated: its notes end"),
        "{reason}"
    );

    // Truncated before the crashing thread's stack (the stack is the last
    // writable mapping but one: cut the core in half).
    let cut = write("cut-before-stack", &whole[..whole.len() / 2]);
    let reason = failure(analyze_file(&user, &cut, None, &limits).0);
    assert!(reason.contains("stack"), "{reason}");

    // A frame chain that loops (a real core, its frame record made to
    // point at itself).
    let mut looping = std::fs::read(&framed.core).unwrap();
    synthetic::make_frame_chain_loop(&mut looping).unwrap();
    let looping = write("loop", &looping);
    let reason = failure(analyze_file(&user, &looping, Some(Path::new(CRASHER_FP)), &limits).0);
    assert!(reason.contains("the frame chain loops"), "{reason}");

    // A core claiming 2^20 threads (356 MiB of NT_PRSTATUS notes).
    let many = dir.path().join("many-threads");
    let mut out = std::io::BufWriter::new(File::create(&many).unwrap());
    synthetic::write_many_threads(&mut out, 1 << 20).unwrap();
    out.flush().unwrap();
    drop(out);
    let (result, took) = analyze_file(&user, &many, None, &limits);
    let reason = failure(result);
    assert!(
        reason.contains("claims more than 32768 threads"),
        "{reason}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    std::fs::remove_file(&many).unwrap();

    // An analysis that hangs (the executable is a FIFO nobody writes to:
    // opening it never returns) is killed at its deadline.
    let fifo = dir.path().join("exe-fifo");
    let status = std::process::Command::new("mkfifo")
        .args(["-m", "0666"])
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let short = Limits {
        deadline: Duration::from_secs(2),
        ..Limits::default()
    };
    let (result, took) = analyze_file(&user, &plain.core, Some(&fifo), &short);
    let reason = failure(result);
    assert!(reason.contains("did not finish within 2000 ms"), "{reason}");
    assert!(took >= Duration::from_secs(2), "{took:?}");

    // A child that sends more than the bound is refused (and killed).
    let small = Limits {
        max_report_bytes: 256,
        ..limits.clone()
    };
    let reason = failure(analyze_file(&user, &plain.core, Some(Path::new(CRASHER)), &small).0);
    assert!(reason.contains("more than 256 bytes"), "{reason}");
}
