//! `lttng-coredump recover` on real crashes: a traced program of a test
//! user, its private session daemon made to fail (consumer daemon killed,
//! or the session daemon stopped) so that no snapshot can be taken, more
//! events emitted after the failure, then a SIGSEGV through the real
//! core_pattern with the handler installed. The trace is rebuilt from the
//! core alone and babeltrace2 must show the program's events in order,
//! those emitted after the failure included.
//!
//! Where the metadata comes from (it is never in the core): a snapshot the
//! test takes as the user after the first burst, while the daemons are
//! alive (its UUID is the one of the buffers: the same session), given to
//! `recover` with `--metadata`, or found through `--search`/`--shm-path`.
//! The crasher runs where only the test user's daemon can see it (a
//! private mount namespace hides the root daemon), so its core holds only
//! that session's buffers.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testsupport::handler::{config_for, crash_a_shell, wait_for_record, InstalledHandler};
use testsupport::machine_dirs::in_private_machine_dirs;
use testsupport::process::{children_of, run_bounded, signal};
use testsupport::recover::*;
use testsupport::{babeltrace_events, fixture_seqs, handler_binary, TempDir};

/// `lttng-coredump recover ARGS`, run to its end, in a private view of the
/// machine's configuration and core directory: without `--config`, recover
/// also reads the default core directory's records for metadata.
fn recover(args: &[&str]) -> Output {
    in_private_machine_dirs(|| {
        run_bounded(
            Command::new(handler_binary!()).arg("recover").args(args),
            Duration::from_secs(300),
        )
    })
}

/// What a command printed, stdout then stderr.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn seqs_of(out: &Path, crash: &Crash) -> Vec<i64> {
    let trace = out.join(&crash.uuid);
    assert!(
        trace.join("metadata").is_file(),
        "no metadata in {}: {:?}",
        trace.display(),
        fs::read_dir(out).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
    fixture_seqs(&babeltrace_events(&trace), &crash.tag)
}

fn range(from: i64, to: i64) -> Vec<i64> {
    (from..to).collect()
}

/// recover with --metadata the pre-failure snapshot; its report and the
/// fixture's sequence numbers in the recovered trace.
fn recover_with_snapshot(crash: &Crash, out: &Path) -> (String, Vec<i64>) {
    let output = recover(&[
        crash.core.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--metadata",
        crash.snapshot.to_str().unwrap(),
    ]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!("trace {}", crash.uuid)),
        "{report}"
    );
    (report.clone(), seqs_of(out, crash))
}

#[test]
fn recover_reads_per_uid_buffers_after_the_consumer_daemon_was_killed() {
    let scenario = Scenario {
        user: "lcdrec-uid",
        failure: Failure::KillConsumer,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &scenario);
    let crash = lab.crash(&scenario);
    // The handler could not snapshot the user's session.
    assert!(
        crash.record["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .all(
                |s| s["daemon"] != format!("user {}", lab.user.uid).as_str() || s["path"].is_null()
            ),
        "{:#}",
        crash.record
    );
    let out = TempDir::new("lcd-recover-out");
    let (report, seqs) = recover_with_snapshot(&crash, &out.path().join("t"));
    assert_eq!(seqs, range(0, 20), "{report}");
    assert!(report.contains("cut where its writing stopped"), "{report}");
}

#[test]
fn recover_reads_per_pid_buffers_while_the_session_daemon_is_stopped() {
    let scenario = Scenario {
        user: "lcdrec-pid",
        per_pid: true,
        failure: Failure::StopSessiond,
        before: 7,
        after: 9,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &scenario);
    let crash = lab.crash(&scenario);
    let errors = crash.record["errors"].to_string();
    assert!(
        errors.contains(&format!("user {}", lab.user.uid)),
        "{errors}"
    );
    let out = TempDir::new("lcd-recover-out");
    let (report, seqs) = recover_with_snapshot(&crash, &out.path().join("t"));
    assert_eq!(seqs, range(0, 16), "{report}");
}

#[test]
fn recover_reads_a_zstd_compressed_core() {
    let scenario = Scenario {
        user: "lcdrec-zstd",
        failure: Failure::KillConsumer,
        config: "compression = \"zstd\"",
        before: 5,
        after: 30,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &scenario);
    let crash = lab.crash(&scenario);
    assert!(
        crash.core.to_string_lossy().ends_with(".zst"),
        "{:?}",
        crash.core
    );
    let out = TempDir::new("lcd-recover-out");
    let (report, seqs) = recover_with_snapshot(&crash, &out.path().join("t"));
    assert!(report.contains("zstd-compressed"), "{report}");
    assert_eq!(seqs, range(0, 35), "{report}");
    // The metadata is also found without --metadata: --search names the
    // session's snapshot output.
    let output = recover(&[
        crash.core.to_str().unwrap(),
        "-o",
        out.path().join("t2").to_str().unwrap(),
        "--search",
        lab.user.home.join("traces").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(seqs_of(&out.path().join("t2"), &crash), range(0, 35));
}

/// The file offset of the PT_LOAD segment at `vaddr` (ELF64,
/// little-endian).
fn segment_offset(core: &[u8], vaddr: u64) -> u64 {
    let u16_at = |o: usize| u16::from_le_bytes(core[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(core[o..o + 8].try_into().unwrap());
    let (phoff, phnum) = (u64_at(32) as usize, u16_at(56));
    (0..phnum)
        .map(|i| phoff + i * 56)
        .find(|&ph| {
            u32::from_le_bytes(core[ph..ph + 4].try_into().unwrap()) == 1
                && u64_at(ph + 16) == vaddr
        })
        .map(|ph| u64_at(ph + 8))
        .unwrap_or_else(|| panic!("no segment at {vaddr:#x} ({phnum} program headers)"))
}

/// The address of the buffer of CPU `cpu`, from recover's report.
fn buffer_of_cpu(report: &str, cpu: u32) -> u64 {
    report
        .lines()
        .filter(|l| l.starts_with("buffer at 0x") && l.contains(&format!(" CPU {cpu}:")))
        .find_map(|l| u64::from_str_radix(l[12..].split([' ', ':']).next()?, 16).ok())
        .unwrap_or_else(|| panic!("no buffer of CPU {cpu} in:\n{report}"))
}

#[test]
fn recover_keeps_every_complete_packet_of_a_core_cut_by_max_core_size() {
    // 16 sub-buffers of 64 KiB, about 10 filled: the cut goes through the
    // middle of the sub-buffers, so the counters after them are lost.
    // Per-pid buffers and live daemons: each crash has its own buffers (a
    // second program would get no buffer from a dead consumer daemon).
    // The crasher runs on CPU 0 only, so that its events are in that
    // CPU's stream, whose buffer the cut goes through.
    let scenario = Scenario {
        user: "lcdrec-cut",
        per_pid: true,
        cpu: Some(0),
        subbufs: ("64K", "16"),
        before: 1,
        after: 15_000,
        no_aslr: true,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &scenario);
    // A first crash, whole, tells where the buffer is in such a core (the
    // layout is the same for the same program and arguments without
    // address randomization)...
    let whole = lab.crash(&scenario);
    let out = TempDir::new("lcd-recover-out");
    let (report, all) = recover_with_snapshot(&whole, &out.path().join("whole"));
    assert_eq!(all, range(0, 15_001), "{report}");
    let vaddr = buffer_of_cpu(&report, 0);
    let buffer = segment_offset(&fs::read(&whole.core).unwrap(), vaddr);
    // ...then the same crash with the core cut 320 KiB into it.
    let limit = buffer + 320 * 1024;
    lab.handler.as_ref().unwrap().set_config(&config_for(
        &lab.cores,
        &format!("snapshot_user_daemon = true\nmax_core_size = {limit}\n"),
    ));
    let cut = lab.crash(&scenario);
    assert_eq!(cut.record["core"]["complete"], false, "{:#}", cut.record);
    let cut_bytes = fs::read(&cut.core).unwrap();
    assert_eq!(
        segment_offset(&cut_bytes, vaddr),
        buffer,
        "the layout moved"
    );
    let output = recover(&[
        cut.core.to_str().unwrap(),
        "-o",
        out.path().join("cut").to_str().unwrap(),
        "--metadata",
        cut.snapshot.to_str().unwrap(),
    ]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report.contains("cut: "), "{report}");
    assert!(report.contains("the core ends after"), "{report}");
    assert!(report.contains("only the complete packets"), "{report}");
    let seqs = seqs_of(&out.path().join("cut"), &cut);
    // A prefix of the events, whole packets only: everything before the
    // cut, nothing after.
    assert!(!seqs.is_empty() && seqs.len() < 15_001, "{}", seqs.len());
    assert_eq!(seqs, range(0, seqs.len() as i64), "{report}");
    // The sub-buffers wholly before the cut: 320 KiB less the header area
    // (under one page of tables and the page alignment) holds 4 of 64 KiB.
    let packets: usize = report
        .lines()
        .find(|l| l.contains("packet headers found"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(packets, 4, "{report}");
}

#[test]
fn recover_gives_the_newest_events_of_wrapped_overwrite_buffers() {
    // 4 sub-buffers of 4 KiB: 20000 events wrap them many times. On CPU 0
    // only: a crasher that moved between CPUs would leave its first events
    // in another CPU's buffer, never wrapped.
    let scenario = Scenario {
        user: "lcdrec-wrap",
        cpu: Some(0),
        subbufs: ("4K", "4"),
        failure: Failure::KillConsumer,
        before: 100,
        after: 20_000,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &scenario);
    let crash = lab.crash(&scenario);
    let out = TempDir::new("lcd-recover-out");
    let (report, seqs) = recover_with_snapshot(&crash, &out.path().join("t"));
    let last = 20_100 - 1;
    assert_eq!(seqs.last(), Some(&last), "{report}");
    assert!(
        seqs.len() > 50 && seqs.len() < 2_000,
        "{} events",
        seqs.len()
    );
    let first = seqs[0];
    assert_eq!(seqs, range(first, last + 1), "{report}");
}

#[test]
fn recover_and_lttng_crash_give_the_same_events_for_a_shm_path_session() {
    // --shm-path buffers are files: dumped only with coredump_filter bit 3.
    let scenario = Scenario {
        user: "lcdrec-shm",
        shm_path: true,
        failure: Failure::KillConsumer,
        coredump_filter: Some("0x3b"),
        before: 12,
        after: 12,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &scenario);
    let crash = lab.crash(&scenario);
    let out = TempDir::new("lcd-recover-out");
    // No --metadata: the session's --shm-path directory has it.
    let output = recover(&[
        crash.core.to_str().unwrap(),
        "-o",
        out.path().join("ours").to_str().unwrap(),
    ]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(
        report.contains("(from the session's --shm-path)"),
        "{report}"
    );
    let ours = babeltrace_events(&out.path().join("ours").join(&crash.uuid));
    let theirs_dir = out.path().join("theirs");
    let shm = crash.shm_dir.as_ref().unwrap();
    let lttng_crash = Command::new("lttng-crash")
        .arg("-x")
        .arg(&theirs_dir)
        .arg(shm)
        .output()
        .expect("running lttng-crash (apt-get install -y lttng-tools)");
    assert!(lttng_crash.status.success(), "{lttng_crash:?}");
    let theirs = babeltrace_events(&theirs_dir);
    let mine: Vec<&String> = ours.iter().filter(|l| l.contains(&crash.tag)).collect();
    let lttng: Vec<&String> = theirs.iter().filter(|l| l.contains(&crash.tag)).collect();
    assert_eq!(fixture_seqs(&ours, &crash.tag), range(0, 24));
    assert_eq!(mine, lttng);
}

#[test]
fn recover_on_a_core_without_lttng_buffers_says_so_and_exits_1() {
    let dir = TempDir::new("lcd-recover-nobuf");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&dir.path().join("cores"), ""),
    );
    // A shell is not traced: its core holds no ring buffer.
    let (_, record) = crash_a_shell(&dir.path().join("cores"));
    let core = record["core"]["path"].as_str().unwrap();
    let output = recover(&[core, "-o", dir.path().join("out").to_str().unwrap()]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("no LTTng buffers found"), "{report}");
    assert!(report.contains("did not load lttng-ust"), "{report}");
    // Not a core at all: usage/input error.
    let output = recover(&[
        "/etc/hostname",
        "-o",
        dir.path().join("o2").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("not an ELF file"),
        "{}",
        text(&output)
    );
}

/// The stream mappings of a process (the consumer daemon's unlinked shm
/// files), from /proc/PID/maps.
fn buffer_mappings(pid: i32) -> usize {
    fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("shm-ust-consumer"))
        .count()
}

#[test]
fn recover_says_the_buffers_are_gone_when_the_session_daemon_died() {
    let scenario = Scenario {
        user: "lcdrec-died",
        before: 5,
        after: 5,
        ..Scenario::default()
    };
    let lab = Lab::new(handler_binary!(), &scenario);
    // The crasher sees only the user's daemon (see spawn_crasher): the root
    // daemon's other sessions could otherwise trace it too.
    let GatedCrasher { mut child, pid, .. } = lab.spawn_crasher(&scenario);
    assert!(buffer_mappings(pid) > 0, "the crasher has no buffer mapped");
    // The session daemon dies (and its consumer daemons with it).
    let consumers = children_of(lab.sessiond);
    assert!(signal(lab.sessiond, libc::SIGKILL), "kill {}", lab.sessiond);
    for (consumer, _) in consumers {
        // They may be gone with their session daemon already.
        signal(consumer, libc::SIGKILL);
    }
    // lttng-ust notices and unmaps the session's buffers.
    let deadline = Instant::now() + Duration::from_secs(60);
    while buffer_mappings(pid) > 0 {
        assert!(
            Instant::now() < deadline,
            "lttng-ust kept its buffers mapped after its session daemon died"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let _ = child.wait();
    let (_, record) = wait_for_record(&lab.cores, pid);
    let core = record["core"]["path"].as_str().unwrap();
    let out = TempDir::new("lcd-recover-out");
    let output = recover(&[core, "-o", out.path().join("t").to_str().unwrap()]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("had lttng-ust loaded"), "{report}");
    assert!(report.contains("session daemon died"), "{report}");
}
