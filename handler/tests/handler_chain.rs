//! Chaining through the real kernel: the configured command gets the same
//! core on its stdin while the handler saves its own copy, and a chained
//! command that fails or never reads costs the handler's copy nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testsupport::core_file::*;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::{crasher_path, unique_name, TempDir};

fn crash(args: &[&str]) -> (i32, Duration) {
    let tag = unique_name("c");
    let mut full = vec![tag.as_str()];
    full.extend_from_slice(args);
    let started = Instant::now();
    let output = run_bounded(crasher_command().args(&full), CRASH_TIMEOUT);
    (ready_pid(&output), started.elapsed())
}

fn core_path(record: &serde_json::Value) -> PathBuf {
    PathBuf::from(record["core"]["path"].as_str().expect("a core path"))
}

fn chain_config(command: &[&str], stall_timeout: u32) -> String {
    let quoted: Vec<String> = command.iter().map(|part| format!("{part:?}")).collect();
    format!(
        "[chain]\ncommand = [{}]\nstall_timeout = {stall_timeout}\nexit_timeout = 10\n",
        quoted.join(", ")
    )
}

#[test]
fn the_chained_command_gets_the_same_core_and_its_arguments() {
    let dir = TempDir::new("lcdh-chain");
    let cores = dir.path().join("cores");
    let out = dir.path().join("chained");
    let script = format!(
        "cat > {out}; printf '%s|' \"$@\" > {out}.args",
        out = out.display()
    );
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &chain_config(
                &[
                    "/bin/sh", "-c", &script, "sh", "{pid}", "{uid}", "{signal}", "{comm}", "{exe}",
                ],
                5,
            ),
        ),
    );
    let (pid, _) = crash(&["2", "segv", "16", "random"]);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let chain = &record["chain"];
    assert_eq!(chain["complete"], true, "{record:#}");
    assert_eq!(chain["ended"], "exit status 0");
    assert!(chain["errors"].as_array().unwrap().is_empty(), "{record:#}");
    let ours = fs::read(core_path(&record)).unwrap();
    let theirs = fs::read(&out).unwrap();
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "the two copies differ");
    assert_eq!(chain["bytes_given"].as_u64().unwrap(), theirs.len() as u64);
    let exe = fs::canonicalize(crasher_path()).unwrap();
    assert_eq!(
        fs::read_to_string(format!("{}.args", out.display())).unwrap(),
        format!("{pid}|0|11|crasher|{}|", exe.display())
    );
}

#[test]
fn a_chained_command_that_fails_at_once_costs_nothing() {
    let dir = TempDir::new("lcdh-chainfail");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, &chain_config(&["/bin/false"], 5)),
    );
    let (pid, _) = crash(&["1", "segv", "8", "random"]);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert_eq!(record["chain"]["complete"], false);
    assert_eq!(record["chain"]["ended"], "exit status 1");
    let errors = record["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("chained command")),
        "{errors:?}"
    );
    assert_eq!(
        elf_core_identity(&fs::read(core_path(&record)).unwrap()).pid,
        pid
    );
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(marker) {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}

#[test]
fn a_chained_command_that_never_reads_is_given_up_after_its_stall_timeout() {
    let dir = TempDir::new("lcdh-chainstall");
    let cores = dir.path().join("cores");
    // A sleep nobody else runs, to find it afterwards.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let marker = format!("3600.{nanos:09}");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, &chain_config(&["/bin/sleep", &marker], 1)),
    );
    // Far more than a pipe holds.
    let (pid, took) = crash(&["1", "segv", "32", "random"]);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let chain = &record["chain"];
    assert_eq!(chain["complete"], false);
    assert!(
        chain["ended"].as_str().unwrap().starts_with("killed"),
        "{record:#}"
    );
    assert!(
        chain["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("accepted no data for")),
        "{record:#}"
    );
    // The stall timeout (1 s) and the snapshot deadline are all it cost.
    assert!(took < Duration::from_secs(30), "the crash took {took:?}");
    assert!(
        processes_with(&marker).is_empty(),
        "the chained command is left running"
    );
    assert_eq!(
        fs::metadata(core_path(&record)).unwrap().len(),
        record["core"]["bytes_received"].as_u64().unwrap()
    );
}

#[test]
fn with_our_copy_turned_off_only_the_chained_command_gets_the_core() {
    let dir = TempDir::new("lcdh-chainonly");
    let cores = dir.path().join("cores");
    let out = dir.path().join("chained");
    let script = format!("cat > {}", out.display());
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "save_core = false\n{}",
                chain_config(&["/bin/sh", "-c", &script], 5)
            ),
        ),
    );
    let (pid, _) = crash(&["1", "segv", "4", "random"]);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["saved"], false);
    assert!(record["core"]["not_saved_reason"]
        .as_str()
        .unwrap()
        .contains("turned off"));
    assert_eq!(record["chain"]["complete"], true, "{record:#}");
    assert_eq!(elf_core_identity(&fs::read(&out).unwrap()).pid, pid);
    let names = names_in(&cores);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(Path::new(&names[0])
        .extension()
        .is_some_and(|e| e == "json"));
}
