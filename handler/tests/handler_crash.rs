//! The handler through the real kernel: a traced program crashes, the
//! kernel runs the freshly built handler from core_pattern, and the core
//! and the crash record it leaves are checked.

use std::fs;
use std::os::unix::fs::MetadataExt;
use testsupport::access::*;
use testsupport::core_file::*;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::{crasher_path, unique_name, TempDir};

#[test]
fn handler_saves_a_complete_sparse_core_and_its_record() {
    let dir = TempDir::new("lcdh-crash");
    let cores = dir.path().join("cores");
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let tag = unique_name("h");
    // 48 MiB of zero pages: the kernel sends them, the handler leaves holes.
    let output = run_bounded(
        crasher_command().args([&tag, "5", "segv", "48", "zero"]),
        CRASH_TIMEOUT,
    );
    assert!(!output.status.success());
    let pid = ready_pid(&output);
    let (record_path, record) = wait_for_record(&cores, pid);

    // The record.
    assert_eq!(record["format"], "lttng-coredump-record/1");
    assert_eq!(record["pid"], pid);
    // The crash's one name, given at the handler's start.
    let crash_id = record["crash_id"].as_str().unwrap();
    assert!(
        crash_id.len() == 32
            && crash_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{crash_id}"
    );
    assert_eq!(record["uid"], 0);
    assert_eq!(record["gid"], 0);
    assert_eq!(record["signal"]["number"], 11);
    assert_eq!(record["signal"]["name"], "SIGSEGV");
    assert_eq!(record["process_name"], "crasher");
    assert_eq!(record["dump_mode"], 1);
    assert_eq!(
        record["exe_path"],
        fs::canonicalize(crasher_path()).unwrap().to_str().unwrap()
    );
    let cmdline: Vec<&str> = record["cmdline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(cmdline[1..], [tag.as_str(), "5", "segv", "48", "zero"]);
    assert_eq!(record["process_identity"]["state"], "verified_by_pidfd");
    assert!(record["cgroup"].as_str().is_some());
    assert!(record["hostname"].as_str().is_some());
    assert!(record["time_utc"].as_str().unwrap().ends_with('Z'));
    assert_eq!(record["config_path"], handler.config.to_str().unwrap());
    // The snapshot engine's outcome is recorded, whatever it is.
    let fires = record["fires"].as_array().unwrap();
    assert_eq!(fires[0]["daemon"], "root");
    assert!(!fires[0]["report"].is_null() || !fires[0]["error"].is_null());

    // The core.
    let core = &record["core"];
    assert_eq!(core["saved"], true, "{record:#}");
    assert_eq!(core["complete"], true, "{record:#}");
    assert_eq!(core["compression"], "none");
    assert!(core["truncated_reason"].is_null());
    assert!(core["readable_by_uid"].is_null());
    let core_path = std::path::PathBuf::from(core["path"].as_str().unwrap());
    assert_eq!(core_path.parent().unwrap(), cores);
    assert_eq!(
        core_path.file_name().unwrap().to_str().unwrap(),
        format!("core.crasher.{pid}.{}", record["time"])
    );
    assert_eq!(
        record_path,
        cores.join(format!("core.crasher.{pid}.{}.json", record["time"]))
    );
    let metadata = fs::symlink_metadata(&core_path).unwrap();
    assert!(metadata.file_type().is_file());
    assert_eq!(metadata.uid(), 0);
    assert_eq!(mode_of(&core_path), 0o600);
    assert_eq!(mode_of(&record_path), 0o600);
    assert_eq!(metadata.len(), core["size"].as_u64().unwrap());
    assert_eq!(metadata.len(), core["bytes_received"].as_u64().unwrap());
    assert!(metadata.len() > 48 << 20);
    // Sparse: the zero pages take no room.
    assert!(
        metadata.blocks() * 512 + (40 << 20) < metadata.len(),
        "{} bytes stored for a core of {}",
        metadata.blocks() * 512,
        metadata.len()
    );
    let bytes = fs::read(&core_path).unwrap();
    let identity = elf_core_identity(&bytes);
    assert_eq!(identity.pid, pid);
    assert_eq!(identity.fname, b"crasher");
    let backtrace = gdb_backtrace(&crasher_path(), &core_path);
    assert!(
        backtrace.contains("#0  main (") && backtrace.contains("signal SIGSEGV"),
        "gdb found no backtrace:\n{backtrace}"
    );

    // Every segment the core's program headers announce is in the file
    // (the size of a kernel-written core varies with the trace buffers the
    // process maps, so the file is checked against its own headers).
    assert_eq!(elf_core_extent(&bytes), metadata.len());
}

#[test]
fn the_handler_binary_is_the_one_cargo_built() {
    let exe = handler_binary!();
    assert!(exe.is_file());
    assert!(testsupport::wait_for_path(
        exe,
        std::time::Duration::from_millis(1)
    ));
}
