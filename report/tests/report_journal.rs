//! A crash's journal entry, in systemd-coredump's form, sent to the real
//! systemd-journald (standalone, on the test's socket) over the native
//! protocol and read back by Debian's `coredumpctl`: `info` shows the
//! report's stack trace at the crashing function, `debug` runs gdb on our
//! core, plain or zstd-compressed. An entry too large for a datagram goes
//! through a memfd, whole.

use lttng_coredump_journal::coredump::CoreFile;
use lttng_coredump_journal::{Crash, Entry, Fields, Sent};
use lttng_coredump_report::{analyze, render, signals, signature, Executable, Identity, Limits};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testsupport::crasher::traced_command_as;
use testsupport::journald::StandaloneJournald;
use testsupport::kernel_cores::{Crashed, KernelCores};
use testsupport::process::{output_text, run_bounded};
use testsupport::report_programs::CRASHER;
use testsupport::TestUser;

const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The entry the handler will write for `crash`, stored at `core`.
fn entry_for(user: &TestUser, crash: &Crashed, core: &Path) -> (Entry, String) {
    let file = File::open(core).unwrap();
    let identity = Identity::of_user(user.uid).unwrap();
    let report = analyze(
        file.as_fd(),
        Some(Executable::Path(Path::new(CRASHER))),
        Some(&identity),
        &Limits::default(),
    )
    .unwrap();
    let sig = signature(&report);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let crash = Crash {
        pid: crash.pid as i32,
        uid: Some(user.uid),
        gid: Some(user.gid),
        signal: crash.signal,
        signal_name: Some(signals::display_name(crash.signal)),
        timestamp_usec: now.as_secs() * 1_000_000,
        rlimit: Some(u64::MAX),
        hostname: Some("test-host".into()),
        dumpable: Some(1),
        comm: "report_crasher".into(),
        exe: Some(CRASHER.into()),
        cmdline: Some(format!("{CRASHER} segv")),
        core: Some(CoreFile {
            path: core.display().to_string(),
            truncated: false,
        }),
        stack_trace: Some(render::systemd_stack_trace(&report)),
        package_json: Some(render::package_json(&report)),
        signature: Some(sig.hash.clone()),
        problem: Some(sig.title),
        trace_only_in_core: true,
        ..Crash::default()
    };
    (Entry::from(&crash), sig.hash)
}

#[test]
fn crash_entries_read_back_with_coredumpctl_info_and_debug_plain_and_zstd() {
    let journald = StandaloneJournald::start();
    let user = TestUser::create("lcdrep-journal", false);
    let mut cores = KernelCores::new("report-journal");
    let plain = cores.crash(traced_command_as(user.uid, user.gid, CRASHER).arg("segv"));
    let packed = cores.crash(traced_command_as(user.uid, user.gid, CRASHER).arg("segv"));
    cores.release_core_pattern();
    // The second core stored as the handler stores it with compression on.
    let zst = packed.core.with_extension(format!("{}.zst", packed.pid));
    let out = run_bounded(
        Command::new("zstd")
            .args(["-q", "--rm", "-o"])
            .arg(&zst)
            .arg(&packed.core),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", output_text(&out));

    for (crash, core) in [(&plain, plain.core.clone()), (&packed, zst.clone())] {
        let (entry, hash) = entry_for(&user, crash, &core);
        assert_eq!(
            entry.send(&journald.socket(), SEND_TIMEOUT).unwrap(),
            Sent::Datagram
        );
        let pid = crash.pid.to_string();
        journald.wait_for_entry(&[&format!("COREDUMP_PID={pid}")]);
        // Our fields find it too.
        journald.wait_for_entry(&[&format!("LTTNG_COREDUMP_SIGNATURE={hash}")]);

        let info = journald.coredumpctl(&["info", &pid]);
        let text = output_text(&info);
        assert!(info.status.success(), "{text}");
        for expected in [
            format!("PID: {pid} (report_crasher)"),
            "Signal: 11 (SEGV)".to_string(),
            format!("Executable: {CRASHER}"),
            format!("Storage: {} (present)", core.display()),
            format!("Stack trace of thread {pid}:"),
            "report_bug_segv (report_crasher + 0x".to_string(),
        ] {
            assert!(text.contains(&expected), "no {expected:?} in:\n{text}");
        }

        let debug = journald.coredumpctl(&["debug", &pid, "--debugger-arguments=-batch -ex bt"]);
        let text = output_text(&debug);
        assert!(
            text.contains("report_bug_segv"),
            "coredumpctl debug:\n{text}"
        );
    }
}

#[test]
fn an_entry_too_large_for_a_datagram_goes_through_a_memfd_whole() {
    let journald = StandaloneJournald::start();
    // Larger than any datagram the kernel takes (a socket's send buffer is
    // at most net.core.wmem_max).
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let size = (2 * wmem_max).max(8 << 20);
    let message: String = (0..size / 64).map(|i| format!("{i:063}\n")).collect();
    let mut fields = Fields::new();
    fields
        .push("MESSAGE", &message)
        .push("LTTNG_COREDUMP_TEST", "large-entry");
    assert_eq!(
        lttng_coredump_journal::send(&fields, &journald.socket(), SEND_TIMEOUT).unwrap(),
        Sent::Memfd
    );
    let export = journald.wait_for_entry(&["LTTNG_COREDUMP_TEST=large-entry"]);
    // MESSAGE has newlines: exported as NAME, its length, the bytes.
    let at = export
        .windows(8)
        .position(|w| w == b"MESSAGE\n")
        .expect("a MESSAGE field");
    let len = u64::from_le_bytes(export[at + 8..at + 16].try_into().unwrap()) as usize;
    assert_eq!(len, message.len());
    assert_eq!(&export[at + 16..at + 16 + len], message.as_bytes());
}
