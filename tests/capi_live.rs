//! `lttng_coredump_live()` as C programs call it (`tests/c/live.c`, linked
//! against the installed shared and static libraries): the core of a
//! running child, which gdb reads, the child still running and its parent
//! (the C program) seeing nothing; zstd; the OnAnyCoreDump triggers fired
//! during the stop; bad arguments as negative `LTTNG_ERR_*` codes.

use lttng_coredump_engine::ActionKind;
use lttng_ctl::ErrorCode;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testsupport::capi::*;
use testsupport::process::*;
use testsupport::sessions::TestSession;
use testsupport::*;

/// `enum lttng_coredump_live_flag`.
const STOP_AND_COPY: u32 = 1;
const ZSTD: u32 = 4;
const NO_SNAPSHOT: u32 = 8;

/// What `live dump` printed, by key.
fn field(out: &str, key: &str) -> i64 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in {out:?}"))
}

fn run_dump(program: &Program, core: &Path, flags: u32) -> String {
    let out = run_bounded(
        Command::new(&program.path)
            .arg("dump")
            .arg(core)
            .arg(flags.to_string()),
        Duration::from_secs(300),
    );
    let text = output_text(&out);
    assert_eq!(field(&text, "ret"), 0, "{}: {text}", program.label);
    assert_eq!(
        field(&text, "alive"),
        1,
        "{}: the child died: {text}",
        program.label
    );
    assert_eq!(
        field(&text, "parent-events"),
        0,
        "{}: the parent saw the dump: {text}",
        program.label
    );
    assert!(out.status.success(), "{}: {text}", program.label);
    text
}

fn gdb_backtrace(program: &Path, core: &Path) -> String {
    let out = run_bounded(
        Command::new("gdb")
            .args(["-batch", "-nx", "-ex", "bt"])
            .arg(program)
            .arg(core),
        Duration::from_secs(120),
    );
    output_text(&out)
}

#[test]
fn c_lttng_coredump_live_writes_a_core_gdb_reads_and_the_process_runs_on() {
    let api = c_api();
    let dir = TempDir::new("capi-live");
    for program in &api.live {
        for flags in [NO_SNAPSHOT, NO_SNAPSHOT | STOP_AND_COPY] {
            let core = dir.path().join(format!("{}-{flags}.core", program.label));
            run_dump(program, &core, flags);
            let bt = gdb_backtrace(&program.path, &core);
            assert!(
                bt.contains("child_waits_in_pause"),
                "{} {flags}: {bt}",
                program.label
            );
        }
        // zstd: a zstd frame that decompresses to the core.
        let compressed = dir.path().join(format!("{}.core.zst", program.label));
        run_dump(program, &compressed, NO_SNAPSHOT | ZSTD);
        let bytes = std::fs::read(&compressed).unwrap();
        assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd], "not zstd");
        let plain = dir.path().join(format!("{}.zstd.core", program.label));
        let out = run_bounded(
            Command::new("zstd")
                .args(["-q", "-d", "-o"])
                .arg(&plain)
                .arg(&compressed),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{out:?}");
        let bt = gdb_backtrace(&program.path, &plain);
        assert!(
            bt.contains("child_waits_in_pause"),
            "{}: {bt}",
            program.label
        );
    }
}

#[test]
fn c_lttng_coredump_live_fires_the_onanycoredump_triggers_while_stopped() {
    let api = c_api();
    let _lock = root_triggers_lock();
    let session = TestSession::snapshot("capi-live");
    lttng_coredump_engine::set_trigger(&session.name, ActionKind::Snapshot).unwrap();
    let program = &api.live[0];
    let core = session.output.path().join("live.core");
    let out = run_dump(program, &core, 0);
    let child = field(&out, "child");
    // A snapshot named after the process, its pid and the session.
    let dirs = session.snapshot_dirs();
    assert!(
        dirs.iter().any(|d| d
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(&format!("-{child}-")) && n.contains(&session.name))),
        "no snapshot of {} for pid {child} in {dirs:?}",
        session.name
    );
}

#[test]
fn c_lttng_coredump_live_refuses_bad_arguments_with_negative_codes() {
    let api = c_api();
    let invalid = c_code(ErrorCode::Invalid) as i64;
    for program in &api.live {
        let out = run_bounded(
            Command::new(&program.path).arg("errors"),
            Duration::from_secs(60),
        );
        let text = output_text(&out);
        for case in [
            "bad_flags",
            "both_methods",
            "bad_fd",
            "closed_fd",
            "pid_zero",
            "zombie",
        ] {
            assert_eq!(
                field(&text, case),
                invalid,
                "{}: {case}: {text}",
                program.label
            );
        }
    }
}
