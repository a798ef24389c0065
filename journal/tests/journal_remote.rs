//! The same entry, in the journal export format, imported by the real
//! `systemd-journal-remote` (what the fleet spool ships to) and read back
//! with `journalctl` and `coredumpctl` from the journal file it wrote.

use lttng_coredump_journal::coredump::Address;
use lttng_coredump_journal::{Crash, Entry, MESSAGE_ID};
use std::process::Command;
use std::time::Duration;
use testsupport::process::{output_text, run_bounded};
use testsupport::TempDir;

const REMOTE: &str = "/lib/systemd/systemd-journal-remote";

#[test]
fn an_exported_crash_entry_imports_into_systemd_journal_remote_and_reads_with_coredumpctl() {
    assert!(
        std::path::Path::new(REMOTE).exists(),
        "{REMOTE} is missing (apt-get install -y systemd-journal-remote)"
    );
    let dir = TempDir::new("journal-remote");
    let crash = Crash {
        pid: 4321,
        uid: Some(1000),
        gid: Some(1000),
        signal: 6,
        signal_name: Some("SIGABRT".into()),
        timestamp_usec: 1_700_000_000_000_000,
        comm: "server".into(),
        exe: Some("/usr/bin/server".into()),
        stack_trace: Some(
            "Stack trace of thread 4321:\n#0  0x00007f0000001000 abort (libc.so.6 + 0x1000)\n#1  0x0000555500001139 handle_request (server + 0x1139)\n"
                .into(),
        ),
        signature: Some("0123456789abcdef0123456789abcdef".into()),
        problem: Some("server: SIGABRT in handle_request".into()),
        snapshots: vec!["/var/lib/lttng-coredump/traces/server-4321".into()],
        ..Crash::default()
    };
    let entry = Entry::from(&crash);
    let exported = dir.path().join("crash.export");
    std::fs::write(
        &exported,
        entry.export(&Address {
            realtime_usec: Some(crash.timestamp_usec),
            ..Address::default()
        }),
    )
    .unwrap();
    let journal = dir.path().join("remote.journal");
    let out = run_bounded(
        Command::new(REMOTE)
            .arg(format!("--output={}", journal.display()))
            .arg(&exported),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", output_text(&out));

    let out = run_bounded(
        Command::new("journalctl")
            .arg("--file")
            .arg(&journal)
            .args([
                "--no-pager",
                "-o",
                "export",
                "LTTNG_COREDUMP_SIGNATURE=0123456789abcdef0123456789abcdef",
            ]),
        Duration::from_secs(60),
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    for expected in [
        format!("MESSAGE_ID={MESSAGE_ID}"),
        "__REALTIME_TIMESTAMP=1700000000000000".to_string(),
        "LTTNG_COREDUMP_PROBLEM=server: SIGABRT in handle_request".to_string(),
        "LTTNG_COREDUMP_SNAPSHOT_PATH=/var/lib/lttng-coredump/traces/server-4321".to_string(),
        "handle_request (server + 0x1139)".to_string(),
    ] {
        assert!(text.contains(&expected), "no {expected:?} in:\n{text}");
    }

    let out = run_bounded(
        Command::new("coredumpctl")
            .arg("--file")
            .arg(&journal)
            .args(["--no-pager", "info", "4321"]),
        Duration::from_secs(60),
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    for expected in [
        "PID: 4321 (server)",
        "Signal: 6 (ABRT)",
        "#1  0x0000555500001139 handle_request",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}
