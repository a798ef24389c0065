//! A storm through the socket: 20 traced programs let go at once under a
//! `@@` core_pattern; the service (16 workers by default, the others held by
//! the kernel in its queue) records every one of them, each with its own
//! complete core. Its memory at rest and after the storm is printed.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Child;
use std::time::{Duration, Instant};
use testsupport::core_file::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::service::*;
use testsupport::{unique_name, TempDir};

const STORM: usize = 20;

fn gated_crasher() -> (Child, i32) {
    testsupport::crasher::gated_crasher(&[&unique_name("storm"), "3", "segv", "1", "random"])
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn twenty_simultaneous_crashes_through_the_socket_are_all_recorded() {
    let dir = TempDir::new("lcds-storm");
    let cores = dir.path().join("cores");
    let handler = SocketHandler::new(
        handler_binary!(),
        dir.path(),
        // No rate limit: every one of the 20 (same program) keeps its core.
        &config_for(&cores, "max_cores_per_minute = 0"),
        "@@",
    );
    let at_rest = rss_kib(handler.service.pid());
    let mut crashers: Vec<(Child, i32)> = (0..STORM).map(|_| gated_crasher()).collect();
    for (child, _) in &mut crashers {
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for (child, pid) in &mut crashers {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(core_dumped(&status), "{pid}: {status:?}");
                break;
            }
            assert!(Instant::now() < deadline, "crasher {pid} still held");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut pids = BTreeSet::new();
    for (_, pid) in &crashers {
        let (_, record) = wait_for_record(&cores, *pid);
        assert_eq!(record["core"]["complete"], true, "{record:#}");
        assert_eq!(record["process_identity"]["state"], "verified_by_pidfd");
        let core = std::fs::read(record["core"]["path"].as_str().unwrap()).unwrap();
        assert_eq!(elf_core_identity(&core).pid, *pid);
        pids.insert(*pid);
    }
    assert_eq!(pids.len(), STORM);
    assert_eq!(names_in(&cores).len(), 2 * STORM);
    let after = rss_kib(handler.service.pid());
    println!("service RSS: {at_rest} KiB at rest, {after} KiB after {STORM} crashes");
}

#[test]
fn twenty_simultaneous_crashes_keep_exactly_the_cores_the_limit_allows() {
    let dir = TempDir::new("lcds-stormlimit");
    let cores = dir.path().join("cores");
    let handler = SocketHandler::new(
        handler_binary!(),
        dir.path(),
        &config_for(&cores, "max_cores_per_minute = 7"),
        "@@",
    );
    let mut crashers: Vec<(Child, i32)> = (0..STORM).map(|_| gated_crasher()).collect();
    for (child, _) in &mut crashers {
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut dumped = 0;
    for (child, pid) in &mut crashers {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                dumped += usize::from(core_dumped(&status));
                break;
            }
            assert!(Instant::now() < deadline, "crasher {pid} still held");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut saved = 0;
    for (_, pid) in &crashers {
        let (_, record) = wait_for_record(&cores, *pid);
        if record["core"]["saved"] == true {
            assert_eq!(record["core"]["complete"], true, "{record:#}");
            saved += 1;
        } else {
            // Refused before the kernel dumped a byte.
            assert_eq!(record["core"]["bytes_received"], 0, "{record:#}");
        }
    }
    // Exactly the limit, though all came at once; and the kernel dumped
    // exactly those (the others were answered REJECT).
    assert_eq!(saved, 7);
    assert_eq!(dumped, 7);
    drop(handler);
}
