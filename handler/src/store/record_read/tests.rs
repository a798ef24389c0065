//! The record read back through the types that write it: every kind of
//! record round-trips, older records read with defaults, wrong ones are
//! refused, and the reasons for a missing trace are those the fires say.

use super::*;
use crate::base::syslog::{Message, Severity};
use crate::store::record::tests::sample;
use crate::store::record::{
    ChainOutcome, CoreTrace, FailedSnapshot, Identity, LiveSection, LiveThread, Signal, StageTimes,
    TiedTrace,
};
use lttng_coredump_engine::{ActionOutcome, FireError, FireReport};

fn outcome(
    session: &str,
    owner: Option<u32>,
    path: Option<&str>,
    error: Option<(i32, &str)>,
) -> ActionOutcome {
    ActionOutcome {
        trigger_name: owner.map(|uid| format!("trigger-of-{uid}")),
        owner_uid: owner,
        session: session.into(),
        action: ActionKind::Snapshot,
        snapshot_path: path.map(Into::into),
        error: error.map(|(code, message)| FireError {
            code,
            message: message.into(),
        }),
    }
}

fn fire(daemon: &str, report: FireReport) -> DaemonFire {
    DaemonFire {
        daemon: daemon.into(),
        target: None,
        report: Some(report),
        error: None,
    }
}

fn absent(daemon: &str) -> DaemonFire {
    fire(
        daemon,
        FireReport {
            daemon_absent: true,
            ..FireReport::default()
        },
    )
}

/// LTTNG_ERR_COMMAND_CANCELLED, what a fire reports for a daemon that did
/// not answer before its deadline.
fn cancelled() -> i32 {
    ErrorCode::Cancelled.raw() as i32
}

/// Records of every kind the handler writes.
fn every_kind() -> Vec<(&'static str, CrashRecord)> {
    let mut kinds = vec![("plain", sample())];

    let mut cut = sample();
    cut.core.complete = false;
    cut.core.truncated_reason = Some("max_core_size (100 bytes) reached".into());
    cut.core.compression = "zstd".into();
    cut.core.deleted_to_make_room = vec!["core.old.1.1".into(), "core.old.1.1.json".into()];
    cut.crashed.process_identity = Identity::Unverified("the kernel gave no pidfd".into());
    kinds.push(("cut core", cut));

    let mut absent_core = sample();
    absent_core.core.saved = false;
    absent_core.core.path = None;
    absent_core.core.size = 0;
    absent_core.core.stored_bytes = 0;
    absent_core.core.readable_by_uid = None;
    absent_core.core.not_saved_reason = Some("the process's core size limit is 0 (%c)".into());
    absent_core.crashed.process_identity = Identity::CouldNotTell("the PID was reused".into());
    absent_core.crashed.signal = Some(Signal {
        number: 64,
        name: None,
    });
    absent_core.crashed.cmdline = None;
    kinds.push(("absent core", absent_core));

    let mut failed = sample();
    failed.fires = vec![
        fire(
            "root",
            FireReport {
                outcomes: vec![
                    outcome("ok", Some(0), Some("/traces/ok"), None),
                    outcome("bad", Some(1000), None, Some((48, "snapshot failed"))),
                ],
                errors: vec![FireError {
                    code: cancelled(),
                    message: "session daemon did not answer within 5000 ms".into(),
                }],
                deferred_stops: 2,
                daemon_absent: false,
            },
        ),
        absent("user 1000"),
        DaemonFire {
            daemon: "user 1001".into(),
            target: None,
            report: None,
            error: Some("not tried: the deadline was used up".into()),
        },
    ];
    failed.snapshots = crate::store::record::snapshot_entries(&failed.fires);
    failed.errors = crate::store::record::fire_errors(&failed.fires);
    failed.own_snapshots_skipped = Some("10 crashes this minute got snapshots".into());
    failed.log = vec![
        Message {
            severity: Severity::Warning,
            text: "snapshot failed".into(),
        },
        Message {
            severity: Severity::Error,
            text: "core lost".into(),
        },
    ];
    failed.stages.snapshots = StageTimes {
        started_unix_us: 1,
        ended_unix_us: 2,
    };
    kinds.push(("failed snapshots", failed));

    let mut traced = sample();
    traced.core_trace = CoreTraceSection {
        checked: true,
        not_checked_reason: None,
        buffers: 4,
        empty_buffers: 1,
        unread_buffers: 0,
        traces: vec![CoreTrace {
            uuid: "0102".into(),
            streams: 3,
            packets: 7,
            partial_packets: 1,
            bytes: 65536,
        }],
        traces_total: 1,
        only_in_core: true,
        recover_command: Some("lttng-coredump recover /c".into()),
        summary: "3 buffers with data".into(),
        failed_snapshots: vec![FailedSnapshot {
            daemon: "root".into(),
            session: Some("s".into()),
            error: "failed".into(),
            core_holds: "its_buffers".into(),
            traces: vec![TiedTrace {
                uuid: "0102".into(),
                session: "s".into(),
                metadata: "/traces/s/metadata".into(),
            }],
            explanation: "the core holds buffers of session \"s\"".into(),
            owner_uid: None,
        }],
        notes: vec!["a buffer was cut".into()],
    };
    kinds.push(("core trace", traced));

    let mut chained = sample();
    chained.chain = Some(ChainOutcome {
        command: vec!["/lib/systemd/systemd-coredump".into(), "1".into()],
        bytes_given: 100,
        complete: true,
        ended: "exit status 0".into(),
        errors: vec![],
    });
    kinds.push(("chain", chained));

    // A live core (`gcore`): no signal, a live section.
    let mut live = sample();
    live.crashed.signal = None;
    live.live = Some(LiveSection {
        method: "copy-on-write".into(),
        pause_us: 3_200,
        fork_us: 2_100,
        total_us: 90_000,
        threads: vec![LiveThread {
            tid: 42,
            name: "main".into(),
            state: "S".into(),
            stopped: true,
            signal: None,
        }],
        memory_bytes: 1 << 20,
        copy_private_bytes: 4096,
        requested_by_uid: Some(0),
        ..LiveSection::default()
    });
    kinds.push(("live core", live));

    let mut reported = sample();
    reported.report = crate::store::record::ReportSection {
        analyzed: true,
        not_analyzed_reason: None,
        analyzed_as_uid: Some(1000),
        signature: Some("5f".repeat(32)),
        title: Some("x: SIGSEGV in f".into()),
        threads: 1,
        frames: 2,
        report: Some(report_sample()),
        file: None,
        file_error: None,
    };
    reported.stages.report.started_unix_us = 1;
    reported.stages.report.ended_unix_us = 2;
    kinds.push(("report", reported));

    let mut unreported = sample();
    unreported.report.not_analyzed_reason = Some("analysis failed: the core is cut".into());
    unreported.report.analyzed_as_uid = Some(65534);
    kinds.push(("report failed", unreported));
    kinds
}

/// A report of one thread of two frames.
pub(crate) fn report_sample() -> lttng_coredump_report::Report {
    use lttng_coredump_report::{Analysis, Frame, Module, Report, Signal, Thread};
    let frame = |pc: u64, function: &str| Frame {
        pc,
        function: Some(function.into()),
        symbol: None,
        function_offset: Some(4),
        module: Some("/usr/bin/x".into()),
        module_offset: Some(pc - 0x1000),
        file: Some("x.c".into()),
        line: Some(3),
    };
    Report {
        format: lttng_coredump_report::model::FORMAT,
        executable: Some("/usr/bin/x".into()),
        process: None,
        architecture: "x86_64".into(),
        signal: Some(Signal {
            number: 11,
            name: "SIGSEGV".into(),
            code: 1,
            code_name: Some("SEGV_MAPERR".into()),
            description: None,
            fault_address: Some(0),
            sender_pid: None,
            sender_uid: None,
        }),
        faulting_instruction: None,
        threads: vec![Thread {
            tid: 42,
            crashing: true,
            frames: vec![frame(0x1100, "f"), frame(0x1200, "main")],
            incomplete: None,
        }],
        threads_in_core: 1,
        threads_left_out: None,
        modules: vec![Module {
            name: "/usr/bin/x".into(),
            start: 0x1000,
            end: 0x2000,
            build_id: Some("ab".into()),
            file: None,
            debug_file: None,
        }],
        last_events: None,
        analysis: Analysis {
            unwinder: "libdwfl".into(),
            milliseconds: 3,
            uid: 1000,
            gid: 1000,
            peak_rss_kib: None,
            core_truncated: false,
            notes: vec![],
        },
    }
}

#[test]
fn every_kind_of_record_reads_back_as_written() {
    for (kind, record) in every_kind() {
        let back = StoredRecord::parse(&record.to_json()).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(back, StoredRecord::Root(Box::new(record.clone())), "{kind}");
        // What the tools print is the record as written.
        assert_eq!(
            back.to_value(),
            serde_json::from_slice::<serde_json::Value>(&record.to_json()).unwrap(),
            "{kind}"
        );
        // The user's copy, likewise.
        let copy = record.user_copy(1000);
        let json = serde_json::to_vec_pretty(&copy).unwrap();
        let back = StoredRecord::parse(&json).unwrap_or_else(|e| panic!("{kind} copy: {e}"));
        assert!(back.is_user_copy());
        assert_eq!(back, StoredRecord::User(Box::new(copy)), "{kind} copy");
        assert_eq!(back.crashed(), &record.crashed, "{kind} copy");
        assert_eq!(back.core().path, record.core.path.as_deref(), "{kind} copy");
        assert_eq!(back.core().stored_bytes, None);
        assert_eq!(back.live(), record.live.as_ref(), "{kind} copy");
        assert_eq!(back.report(), &record.report, "{kind} copy");
    }
}

#[test]
fn only_a_live_core_s_record_has_a_live_section() {
    let crash = StoredRecord::parse(&sample().to_json()).unwrap();
    assert_eq!(crash.live(), None);
    assert!(crash.to_value().get("live").is_none(), "no key for a crash");
    // A live record whose section lacks what later versions add reads
    // with defaults.
    let live = StoredRecord::parse(
        br#"{"format": "lttng-coredump-record/1", "pid": 7, "live": {"method": "stop-and-copy", "pause_us": 5}}"#,
    )
    .unwrap();
    let section = live.live().unwrap();
    assert_eq!(section.method, "stop-and-copy");
    assert_eq!(section.pause_us, 5);
    assert!(section.threads.is_empty() && section.buffer_note.is_none());
    assert!(StoredRecord::parse(br#"{"live": {"pause_us": "long"}}"#).is_err());
}

#[test]
fn an_older_record_reads_with_defaults_and_a_wrong_one_is_refused() {
    // The first records: no format, no core_trace, no stages, no identity.
    let old = br#"{"pid": 7, "time": 10, "signal": {"number": 11, "name": "SIGSEGV"},
        "core": {"saved": true, "path": "/c/core.x.7.10", "size": 5, "complete": true},
        "snapshots": [{"daemon": "root", "session": "s", "path": "/t/s"}]}"#;
    let record = StoredRecord::parse(old).unwrap();
    assert!(!record.is_user_copy());
    // Read back, it says its format (found by the record fuzz target).
    let again = StoredRecord::parse(&serde_json::to_vec(&record).unwrap()).unwrap();
    assert_eq!(again, record);
    assert_eq!(record.crashed().pid, Some(7));
    assert_eq!(
        record.core().compression,
        "none",
        "uncompressed unless said"
    );
    assert_eq!(record.snapshots()[0].path.as_deref(), Some("/t/s"));
    assert!(!record.core_trace().checked);
    assert!(record.trace_absence().is_empty(), "a snapshot was taken");
    assert!(matches!(
        record.crashed().process_identity,
        Identity::CouldNotTell(_)
    ));
    // An older record with no fire: no daemon ran.
    let none = StoredRecord::parse(br#"{"pid": 7}"#).unwrap();
    assert!(
        none.trace_absence()[0].contains("no session daemon was running"),
        "{:?}",
        none.trace_absence()
    );
    for (bad, why) in [
        (&br#"{"pid": "seven"}"#[..], "not a crash record"),
        (br#"[1, 2]"#, "not a crash record"),
        (br#"{"format": "lttng-coredump-record/9"}"#, "does not read"),
        (br#"{"core": {"size": -1}}"#, "not a crash record"),
        (b"{", "not a crash record"),
    ] {
        let err = StoredRecord::parse(bad).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn the_reasons_for_no_trace_are_those_the_fires_give() {
    let reasons =
        |fires: Vec<DaemonFire>, skipped: Option<&str>| trace_absence(&fires, skipped, None);
    // Taken: no reason.
    let ok = fire(
        "root",
        FireReport {
            outcomes: vec![outcome("s", None, Some("/t"), None)],
            ..FireReport::default()
        },
    );
    assert!(reasons(vec![ok, absent("user 5")], None).is_empty());
    // No daemon at all.
    let none = reasons(vec![absent("root"), absent("user 5")], None);
    assert!(
        none[0].contains("no root session daemon was running"),
        "{none:?}"
    );
    assert!(
        none[1].contains("uid 5 was running no session daemon"),
        "{none:?}"
    );
    // Nothing to snapshot.
    let idle = reasons(vec![fire("root", FireReport::default())], None);
    assert!(
        idle[0].contains("no OnAnyCoreDump trigger and no active snapshot-mode session"),
        "{idle:?}"
    );
    // The budget: said once, not as "nothing to snapshot".
    let budget = reasons(
        vec![fire("root", FireReport::default())],
        Some("10 a minute"),
    );
    assert_eq!(budget.len(), 1, "{budget:?}");
    assert!(budget[0].contains("snapshot budget was spent") && budget[0].contains("10 a minute"));
    // A daemon that did not answer in time.
    let late = reasons(
        vec![fire(
            "root",
            FireReport {
                errors: vec![FireError {
                    code: cancelled(),
                    message: "session daemon did not answer within 5000 ms".into(),
                }],
                ..FireReport::default()
            },
        )],
        None,
    );
    assert!(late[0].contains("did not answer in time"), "{late:?}");
    // A failed snapshot.
    let failed = reasons(
        vec![fire(
            "root",
            FireReport {
                outcomes: vec![outcome("s", None, None, Some((48, "snapshot failed")))],
                ..FireReport::default()
            },
        )],
        None,
    );
    assert!(
        failed[0].contains("session \"s\"") && failed[0].contains("failed"),
        "{failed:?}"
    );
    // Not tried.
    let untried = reasons(
        vec![DaemonFire {
            daemon: "root".into(),
            target: None,
            report: None,
            error: Some("recording the snapshots panicked".into()),
        }],
        None,
    );
    assert!(untried[0].contains("was not asked: recording the snapshots panicked"));
}

#[test]
fn the_users_copy_says_why_in_what_concerns_that_user() {
    let mut record = sample();
    record.fires = vec![
        fire(
            "root",
            FireReport {
                outcomes: vec![outcome("roots-secret", Some(0), None, Some((48, "failed")))],
                ..FireReport::default()
            },
        ),
        absent("user 1000"),
    ];
    let copy = record.user_copy(1000);
    let text = copy.no_trace.join("\n");
    assert!(!text.contains("roots-secret"), "{text}");
    assert!(
        text.contains("uid 1000 was running no session daemon"),
        "{text}"
    );
    assert!(text.contains("no trigger of uid 1000"), "{text}");
    let json = serde_json::to_vec(&copy).unwrap();
    assert_eq!(
        StoredRecord::parse(&json).unwrap().trace_absence(),
        copy.no_trace
    );
}

#[test]
fn a_record_is_read_only_from_a_regular_file_never_through_a_link_or_a_fifo() {
    let dir = std::env::temp_dir().join(format!("record-read-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let real = dir.join("core.x.1.2.json");
    std::fs::write(&real, sample().to_json()).unwrap();
    assert!(StoredRecord::read(&real).unwrap().is_some());
    assert!(StoredRecord::read(&dir.join("gone.json"))
        .unwrap()
        .is_none());
    let link = dir.join("core.y.1.2.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(
        StoredRecord::read(&link).is_err(),
        "a link is never followed"
    );
    let fifo = dir.join("core.z.1.2.json");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Would block for ever if it were opened for reading.
    assert_eq!(StoredRecord::read(&fifo).unwrap_err(), "not a regular file");
    std::fs::remove_dir_all(&dir).unwrap();
}
