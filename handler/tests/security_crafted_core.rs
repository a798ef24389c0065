//! What a crafted core costs everyone else (issue 17): a user's program
//! maps 2000 small buffers laid out as lttng-ust lays out its ring buffers,
//! each with a trace UUID of its own (`tests/fixtures/hostile_crash.c`),
//! and crashes through the real kernel core_pattern. Before, its record
//! named every trace (672 KB), the user's copy 505 KB, and `status` printed
//! 336 KB for it. What one crash puts in the record, the user's copy, the
//! log and `status` is bounded whatever the core holds: the traces are
//! counted, and the first few named.

use std::process::Command;
use testsupport::attacker::HOSTILE_CRASH;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::{output_text, run_bounded};
use testsupport::users::TestUser;
use testsupport::TempDir;

const BUFFERS: usize = 2000;
/// Far above what a record of an ordinary crash takes (a few KiB), far
/// below what naming every trace took.
const MAX_RECORD: u64 = 48 << 10;

#[test]
fn a_core_of_thousands_of_trace_like_buffers_costs_a_bounded_record_and_status() {
    let dir = TempDir::new("lcdsec-crafted");
    let cores = dir.path().join("cores");
    let user = TestUser::create("lcdsec-crafted", false);
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let (pid, record) = crash_and_record(
        user.command(HOSTILE_CRASH)
            .args(["buffers", &BUFFERS.to_string()]),
        &cores,
    );
    let section = &record["core_trace"];
    assert_eq!(section["checked"], true, "{section:#}");
    // Every buffer found and counted...
    assert_eq!(section["traces_total"], BUFFERS, "{section:#}");
    assert_eq!(section["only_in_core"], true, "{section:#}");
    // ...the first few named.
    let listed = section["traces"].as_array().unwrap().len();
    assert!((1..=8).contains(&listed), "{listed} traces listed");
    let summary = section["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("and {} more", BUFFERS - listed)),
        "{summary}"
    );
    assert!(summary.len() < 2048, "{} bytes of summary", summary.len());
    assert!(section["notes"].as_array().unwrap().len() <= 9);

    // The files one crash leaves.
    let (record_path, _) = wait_for_record(&cores, pid);
    let size = std::fs::metadata(&record_path).unwrap().len();
    assert!(size < MAX_RECORD, "the record takes {size} bytes");
    let copy = wait_for_user_copy(&record_path);
    let size = std::fs::metadata(&copy).unwrap().len();
    assert!(size < MAX_RECORD, "the user's copy takes {size} bytes");
    // What the log got of it: every line bounded.
    for message in record["log"].as_array().unwrap() {
        let text = message["text"].as_str().unwrap();
        assert!(text.len() < 4096, "a {}-byte log line", text.len());
    }

    // `status` lists the crash (its trace is only in the core) in a few
    // lines.
    let output = run_bounded(
        Command::new(&handler.binary)
            .arg("status")
            .arg("--config")
            .arg(&handler.config),
        std::time::Duration::from_secs(120),
    );
    let text = output_text(&output);
    assert!(
        text.contains(&format!("PID {}", record["pid"])),
        "the crash is not listed: {text}"
    );
    assert!(text.len() < 16 << 10, "status printed {} bytes", text.len());
    let json = run_bounded(
        Command::new(&handler.binary)
            .args(["status", "--json", "--config"])
            .arg(&handler.config),
        std::time::Duration::from_secs(120),
    );
    assert!(
        json.stdout.len() < 32 << 10,
        "status --json printed {} bytes",
        json.stdout.len()
    );
}
