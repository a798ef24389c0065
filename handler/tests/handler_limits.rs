//! The handler's limits through the real kernel: a full filesystem, one
//! out of inodes, the core size and directory size limits, compression,
//! and configurations it must not trust.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testsupport::access::*;
use testsupport::core_file::*;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::syslog::*;
use testsupport::tmpfs::*;
use testsupport::{crasher_path, unique_name, TempDir};

fn crash(args: &[&str]) -> i32 {
    let tag = unique_name("l");
    let mut full = vec![tag.as_str()];
    full.extend_from_slice(args);
    let output = run_bounded(crasher_command().args(&full), CRASH_TIMEOUT);
    ready_pid(&output)
}

fn core_path(record: &serde_json::Value) -> PathBuf {
    PathBuf::from(record["core"]["path"].as_str().expect("a core path"))
}

fn chain_to_file(out: &Path) -> String {
    format!(
        "[chain]\ncommand = [\"/bin/sh\", \"-c\", \"cat > {}\"]\nstall_timeout = 5\n",
        out.display()
    )
}

#[test]
fn a_full_filesystem_cuts_the_core_but_keeps_the_record_and_the_chained_copy() {
    let dir = TempDir::new("lcdh-full");
    let mount = Tmpfs::mount(&dir.path().join("small"), "size=8m,mode=0755");
    let cores = mount.0.join("cores");
    let chained = dir.path().join("chained");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, &chain_to_file(&chained)),
    );
    let pid = crash(&["1", "segv", "24", "random"]);
    let (record_path, record) = wait_for_record(&cores, pid);
    let core = &record["core"];
    assert_eq!(core["saved"], true, "{record:#}");
    assert_eq!(core["complete"], false);
    assert!(
        core["truncated_reason"]
            .as_str()
            .unwrap()
            .contains("no room"),
        "{record:#}"
    );
    assert!(record["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().contains("truncated")));
    // What was saved is the start of the core, as the chained copy shows.
    let saved = fs::read(core_path(&record)).unwrap();
    let whole = fs::read(&chained).unwrap();
    assert!(whole.len() > 24 << 20);
    assert_eq!(whole.len() as u64, core["bytes_received"].as_u64().unwrap());
    assert_eq!(saved.len() as u64, core["size"].as_u64().unwrap());
    assert!(saved.len() > 4 << 20 && saved.len() < whole.len());
    assert_eq!(saved[..], whole[..saved.len()]);
    assert_eq!(record["chain"]["complete"], true, "{record:#}");
    assert!(record_path.exists());
}

#[test]
fn a_filesystem_out_of_inodes_loses_only_our_copy_and_the_log_says_so() {
    let dir = TempDir::new("lcdh-inodes");
    // Inodes for the root and the core directory, none for files.
    let mount = Tmpfs::mount(
        &dir.path().join("noinodes"),
        "size=8m,nr_inodes=2,mode=0755",
    );
    let cores = mount.0.join("cores");
    fs::create_dir(&cores).unwrap();
    let syslog = SyslogListener::bind(dir.path());
    let chained = dir.path().join("chained");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "syslog_socket = \"{}\"\n{}",
                syslog.path.display(),
                chain_to_file(&chained)
            ),
        ),
    );
    let pid = crash(&["1", "segv", "4", "random"]);
    // The record that cannot be written is logged last (a hang guard, not
    // a deadline: the handler logs it right after the core is read).
    let messages = syslog
        .messages_until("cannot write the crash record", Duration::from_secs(60))
        .join("\n");
    assert!(fs::read(&chained).unwrap().len() > 4 << 20);
    assert!(names_in(&cores).is_empty());
    assert!(
        messages.contains(&format!(
            "core of process {pid} (crasher) not saved: cannot create a core file"
        )),
        "{messages}"
    );
    assert!(
        messages.contains("cannot write the crash record"),
        "{messages}"
    );
    // The record that could not be written is in the log.
    assert!(messages.contains(&format!("\"pid\": {pid},")), "{messages}");
    assert!(
        messages.contains("<27>"),
        "errors are sent at LOG_ERR: {messages}"
    );
}

#[test]
fn the_core_size_limit_cuts_the_core() {
    let dir = TempDir::new("lcdh-maxsize");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, "max_core_size = \"1M\""),
    );
    let pid = crash(&["1", "segv", "8", "random"]);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["size"], 1 << 20);
    assert_eq!(record["core"]["complete"], false);
    assert!(record["core"]["truncated_reason"]
        .as_str()
        .unwrap()
        .contains("core size limit of 1048576 bytes"));
    assert_eq!(fs::metadata(core_path(&record)).unwrap().len(), 1 << 20);
}

#[test]
fn the_directory_limit_deletes_the_oldest_crashes_first_with_their_records() {
    let dir = TempDir::new("lcdh-dirsize");
    let cores = dir.path().join("cores");
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let mut records = Vec::new();
    for _ in 0..2 {
        let pid = crash(&["1", "segv", "16", "random"]);
        records.push(wait_for_record(&cores, pid).1);
    }
    // Core sizes depend on the trace buffers the crasher maps: set the limit
    // from what the first two took, so that a third core of the same size
    // fits only once the oldest is gone.
    let used: u64 = names_in(&cores)
        .iter()
        .map(|n| fs::metadata(cores.join(n)).unwrap().blocks() * 512)
        .sum();
    let second = records[1]["core"]["stored_bytes"].as_u64().unwrap();
    handler.set_config(&config_for(
        &cores,
        &format!("max_dir_size = {}", used + second / 2),
    ));
    let pid = crash(&["1", "segv", "16", "random"]);
    records.push(wait_for_record(&cores, pid).1);
    let first = core_path(&records[0]);
    let deleted: Vec<&str> = records[2]["core"]["deleted_to_make_room"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(deleted, [first.file_name().unwrap().to_str().unwrap()]);
    assert!(!first.exists());
    for record in &records[1..] {
        assert_eq!(record["core"]["complete"], true, "{record:#}");
        assert!(core_path(record).exists());
    }
    // Records go with their core: they count against the limit too.
    assert!(!cores.join(format!("{}.json", deleted[0])).exists());
    assert_eq!(
        names_in(&cores)
            .iter()
            .filter(|n| n.ends_with(".json"))
            .count(),
        2
    );
}

#[test]
fn compressed_cores_decompress_to_a_core_gdb_reads() {
    let dir = TempDir::new("lcdh-zstd");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, "compression = \"zstd\""),
    );
    let pid = crash(&["3", "abort", "32", "zero"]);
    let (_, record) = wait_for_record(&cores, pid);
    let compressed = core_path(&record);
    assert!(compressed.to_str().unwrap().ends_with(".zst"));
    assert_eq!(record["core"]["compression"], "zstd");
    assert_eq!(record["core"]["complete"], true);
    // Stored raw while the kernel waited; compressed once it was let go.
    let stage = |name: &str, end: &str| record["stages"][name][end].as_u64().unwrap();
    assert!(stage("core", "ended_unix_us") <= stage("compression", "started_unix_us"));
    assert!(stage("compression", "started_unix_us") <= stage("compression", "ended_unix_us"));
    assert_eq!(mode_of(&compressed), 0o600);
    let stored = fs::metadata(&compressed).unwrap().len();
    assert_eq!(stored, record["core"]["stored_bytes"].as_u64().unwrap());
    let size = record["core"]["size"].as_u64().unwrap();
    assert!(stored * 10 < size, "{stored} bytes for a core of {size}");
    let plain = dir.path().join("core");
    let status = Command::new("zstd")
        .args(["-q", "-d", "-o"])
        .arg(&plain)
        .arg(&compressed)
        .status()
        .unwrap_or_else(|e| panic!("cannot run zstd (apt-get install -y zstd): {e}"));
    assert!(status.success());
    assert_eq!(fs::metadata(&plain).unwrap().len(), size);
    assert_eq!(elf_core_identity(&fs::read(&plain).unwrap()).pid, pid);
    let backtrace = gdb_backtrace(&crasher_path(), &plain);
    assert!(backtrace.contains("signal SIGABRT"), "{backtrace}");
}

#[test]
fn a_bad_configuration_falls_back_to_the_defaults_and_says_so() {
    let handler = InstalledHandler::new(handler_binary!(), "save_core = true\ncore_dir = 42\n");
    let pid = crash(&["1", "segv"]);
    let _cleanup = DefaultDirCleanup(vec![pid]);
    let (_, record) = wait_for_record(Path::new(DEFAULT_CORE_DIR), pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let errors = record["errors"].as_array().unwrap();
    let expected = format!("configuration {}", handler.config.display());
    assert!(
        errors.iter().any(|e| {
            let e = e.as_str().unwrap();
            e.contains(&expected)
                && e.contains("line 2, column 12, key core_dir: expected an absolute path")
                && e.contains(&format!("using the default {DEFAULT_CORE_DIR}"))
        }),
        "{errors:?}"
    );
    let metadata = fs::metadata(DEFAULT_CORE_DIR).unwrap();
    assert_eq!((metadata.uid(), metadata.mode() & 0o7777), (0, 0o755));
}

#[test]
fn an_unsafe_core_directory_is_replaced_by_the_default() {
    let dir = TempDir::new("lcdh-unsafe");
    let open = dir.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&open, ""));
    let pid = crash(&["1", "segv"]);
    let _cleanup = DefaultDirCleanup(vec![pid]);
    let (_, record) = wait_for_record(Path::new(DEFAULT_CORE_DIR), pid);
    assert_eq!(record["core"]["complete"], true);
    let errors: Vec<&str> = record["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("writable by group or others")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("using the default core directory")),
        "{errors:?}"
    );
    assert!(names_in(&open).is_empty());
}

#[test]
fn a_crash_loop_keeps_its_records_but_only_the_first_cores_of_the_minute() {
    let dir = TempDir::new("lcdh-loop");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, "max_cores_per_minute = 2"),
    );
    let records: Vec<serde_json::Value> = (0..4)
        .map(|_| {
            let pid = crash(&["1", "segv"]);
            wait_for_record(&cores, pid).1
        })
        .collect();
    for record in &records[..2] {
        assert_eq!(record["core"]["complete"], true, "{record:#}");
    }
    for record in &records[2..] {
        assert_eq!(record["core"]["saved"], false, "{record:#}");
        assert!(record["core"]["not_saved_reason"]
            .as_str()
            .unwrap()
            .starts_with("rate limit: 2 cores of crasher saved in the last minute"));
        assert!(!record["fires"].as_array().unwrap().is_empty());
    }
    let names = names_in(&cores);
    assert_eq!(names.iter().filter(|n| n.ends_with(".json")).count(), 4);
    assert_eq!(names.len(), 6, "{names:?}");
}
