//! On the collector: `lttng-coredump list --journal-dir DIR` and `problems
//! --journal-dir DIR` read what systemd-journal-remote stored, the journal
//! files of two hosts written by the real journal-remote from the entries
//! the hosts' submitters send (systemd-coredump's form, the crash ID, the
//! host's identity): every crash with its host, a crash received twice
//! counted once, the problems grouped across hosts with their hosts and
//! counts; what a host chose (its name, its program's path, its message)
//! shown escaped, a field too long left out, entries that are not crashes
//! ignored. `coredumpctl -D DIR` lists the same crashes (every copy).

use lttng_coredump_fleet::export;
use lttng_coredump_fleet::fields as f;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use testsupport::collector::JOURNAL_REMOTE;
use testsupport::handler_binary;
use testsupport::process::run_bounded;
use testsupport::TempDir;

const SIG_A: &str = "5ea1f00d5ea1f00d5ea1f00d5ea1f00d";
const SIG_B: &str = "b0bab0bab0bab0bab0bab0bab0bab0ba";

/// One crash entry as a host's submitter sends it.
fn entry(
    host: &str,
    crash_id: &str,
    time_s: u64,
    pid: u32,
    exe: &str,
    signature: Option<&str>,
    extra: &[(&str, Vec<u8>)],
) -> Vec<u8> {
    let realtime = (time_s * 1_000_000).to_string();
    let monotonic = (time_s * 1000).to_string();
    let pid = pid.to_string();
    let timestamp = realtime.clone();
    let message = format!("Process {pid} ({exe}) of user 1000 dumped core.");
    let mut fields: Vec<(&str, Vec<u8>)> = vec![
        ("__REALTIME_TIMESTAMP", realtime.into_bytes()),
        ("__MONOTONIC_TIMESTAMP", monotonic.into_bytes()),
        (f::BOOT_ID, b"0123456789abcdef0123456789abcdef".to_vec()),
        (f::HOSTNAME, host.as_bytes().to_vec()),
        (f::MESSAGE_ID, f::COREDUMP_MESSAGE_ID.as_bytes().to_vec()),
        (f::MESSAGE, message.into_bytes()),
        (f::COREDUMP_PID, pid.into_bytes()),
        (f::COREDUMP_UID, b"1000".to_vec()),
        ("COREDUMP_GID", b"1000".to_vec()),
        (f::COREDUMP_SIGNAL, b"11".to_vec()),
        (f::COREDUMP_SIGNAL_NAME, b"SIGSEGV".to_vec()),
        (f::COREDUMP_EXE, exe.as_bytes().to_vec()),
        (f::COREDUMP_TIMESTAMP, timestamp.into_bytes()),
        (f::COREDUMP_HOSTNAME, host.as_bytes().to_vec()),
        (f::CORE_STORAGE, b"host".to_vec()),
        (f::CRASH_ID, crash_id.as_bytes().to_vec()),
    ];
    if let Some(signature) = signature {
        fields.push((f::SIGNATURE, signature.as_bytes().to_vec()));
    }
    fields.retain(|(name, _)| !extra.iter().any(|(n, _)| n == name));
    fields.extend(extra.iter().cloned());
    write(fields.iter().map(|(n, v)| (*n, v.as_slice())))
}

/// An entry in the export format (the `__` fields included, as a
/// submitter writes them).
fn write<'a>(fields: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        export::write_field(&mut out, name, value);
    }
    out.push(b'\n');
    out
}

/// journal-remote writes `entries` (an export stream) into `file`, as it
/// does for what a host uploads.
fn journal_remote_writes(file: &Path, entries: &[u8]) {
    assert!(
        Path::new(JOURNAL_REMOTE).exists(),
        "{JOURNAL_REMOTE} is missing (apt-get install -y systemd-journal-remote)"
    );
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", file.display()))
        .args(["--split-mode=none", "--seal=no", "--compress=yes", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(entries).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "journal-remote: {out:?}");
    assert!(file.is_file(), "{out:?}");
}

fn handler(args: &[&str]) -> Output {
    let out = run_bounded(
        Command::new(handler_binary!()).args(args),
        Duration::from_secs(300),
    );
    assert!(
        !out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b),
        "a terminal escape went through: {out:?}"
    );
    out
}

fn stdout_of(args: &[&str]) -> String {
    let out = handler(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn list_and_problems_read_the_fleets_crashes_journal_remote_stored_with_hosts_and_counts() {
    let dir = TempDir::new("lcd-fleet-collector");
    let journals = dir.path().join("journal");
    fs::create_dir_all(&journals).unwrap();
    let hostile_exe = "/opt/\x1b[31mred\u{202e}txt.exe";
    let long_message = vec![b'x'; 200 << 10];

    // web1: a crash of problem A received twice (its acknowledgement was
    // lost), one of problem B; and an entry that is no crash.
    let mut web1 = Vec::new();
    let a1 = entry(
        "web1",
        "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
        1_800_000_000,
        101,
        "/usr/bin/httpd",
        Some(SIG_A),
        &[],
    );
    web1.extend(&a1);
    web1.extend(entry(
        "web1",
        "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1",
        1_800_000_010,
        102,
        "/usr/bin/cron",
        Some(SIG_B),
        &[],
    ));
    web1.extend(&a1);
    web1.extend(write([
        ("__REALTIME_TIMESTAMP", &b"1800000005000000"[..]),
        ("__MONOTONIC_TIMESTAMP", &b"1800000005"[..]),
        (f::BOOT_ID, &b"0123456789abcdef0123456789abcdef"[..]),
        (f::HOSTNAME, &b"web1"[..]),
        (f::MESSAGE, &b"just a log line"[..]),
    ]));
    // db2: problem A again (another host), and a crash whose host chose
    // a hostile program path and a message too long to keep.
    let mut db2 = Vec::new();
    db2.extend(entry(
        "db2",
        "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2",
        1_800_000_020,
        201,
        "/usr/bin/httpd",
        Some(SIG_A),
        &[],
    ));
    db2.extend(entry(
        "db2",
        "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2",
        1_800_000_030,
        202,
        hostile_exe,
        None,
        &[(f::MESSAGE, long_message)],
    ));
    journal_remote_writes(&journals.join("remote-web1.journal"), &web1);
    journal_remote_writes(&journals.join("remote-db2.journal"), &db2);
    let d = journals.to_str().unwrap();

    // list: four crashes, oldest first, each with its host; the copy said.
    let listed = stdout_of(&["list", "--journal-dir", d, "--no-pager"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 5, "{listed}");
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("HOST"),
        "{listed}"
    );
    for (line, (host, pid)) in lines[1..].iter().zip([
        ("web1", "101"),
        ("web1", "102"),
        ("db2", "201"),
        ("db2", "202"),
    ]) {
        assert!(
            line.contains(&format!(" {host} ")) && line.contains(&format!(" {pid} ")),
            "{host} {pid}: {listed}"
        );
    }
    assert!(lines[1].contains("received 2 times"), "{listed}");
    assert!(!lines[3].contains("received"), "{listed}");
    // What the host chose, escaped.
    assert!(lines[4].contains("\\x1b[31mred\\x202etxt.exe"), "{listed}");

    // JSON: every crash, its copies, its ID; a match by host.
    let json = stdout_of(&["list", "--journal-dir", d, "--json"]);
    let crashes: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(crashes.len(), 4, "{json}");
    assert_eq!(crashes[0]["copies"], 2);
    assert_eq!(crashes[0]["crash_id"], "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1");
    assert_eq!(crashes[3]["exe"], hostile_exe);
    let db2_only = stdout_of(&["list", "--journal-dir", d, "--json", "hostname=db2"]);
    assert_eq!(db2_only.lines().count(), 2, "{db2_only}");
    let newest = stdout_of(&["list", "--journal-dir", d, "-1", "--no-legend"]);
    assert!(
        newest.contains(" 202 ") && newest.lines().count() == 1,
        "{newest}"
    );
    let none = handler(&["list", "--journal-dir", d, "hostname=nowhere"]);
    assert_eq!(none.status.code(), Some(1), "{none:?}");

    // problems: A on both hosts, 2 crashes (the copy not counted), then
    // B, then the crash without a report.
    let problems = stdout_of(&["problems", "--journal-dir", d]);
    let lines: Vec<&str> = problems.lines().collect();
    assert!(lines[0].starts_with("SIGNATURE"), "{problems}");
    let a = lines
        .iter()
        .find(|l| l.starts_with(&SIG_A[..16]))
        .unwrap_or_else(|| panic!("{problems}"));
    let words: Vec<&str> = a.split_whitespace().collect();
    assert_eq!(&words[1..3], ["2", "2"], "{a}");
    assert!(
        a.contains("db2,web1") && a.ends_with("/usr/bin/httpd"),
        "{a}"
    );
    assert!(
        lines[1].starts_with(&SIG_A[..16]),
        "most frequent first: {problems}"
    );
    assert!(problems.contains("1 entry received again"), "{problems}");
    assert!(problems.contains("(no report)"), "{problems}");
    let json = stdout_of(&["problems", "--journal-dir", d, "--json"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["signature"], SIG_A);
    assert_eq!(first["count"], 2);
    assert_eq!(first["hosts"], serde_json::json!(["db2", "web1"]));
    // One problem's crashes, across hosts.
    let one = stdout_of(&["problems", &SIG_A[..8], "--journal-dir", d]);
    assert!(
        one.contains("Hosts: db2,web1")
            && one.contains("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1")
            && one.contains("a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2"),
        "{one}"
    );

    // Not with the local store's options; info says where to look.
    let out = handler(&["list", "--journal-dir", d, "--dir", "/tmp"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = handler(&["info", "--journal-dir", d]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("coredumpctl -D"),
        "{out:?}"
    );
    let out = handler(&["list", "--journal-dir", "/nonexistent-journals"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // coredumpctl on the same directory: the same crashes, every copy.
    let out = run_bounded(
        Command::new("coredumpctl").args(["-D", d, "list", "--no-pager", "--no-legend"]),
        Duration::from_secs(120),
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.lines().count(), 5, "{out:?}");
    for pid in ["101", "102", "201", "202"] {
        assert!(listed.contains(&format!(" {pid} ")), "{pid}: {listed}");
    }
}
