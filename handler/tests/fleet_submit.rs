//! The fleet wired into the handler, end to end: the handler installed in
//! the kernel's core_pattern with a `[submit]` section, a program that
//! crashes, the crash put in the spool under its record's crash_id, and
//! `lttng-coredump submit` (started as root, running as the spool's user)
//! in a host's network namespace sending it to a real
//! systemd-journal-remote on the collector's namespace; with the collector
//! unreachable the crash stays queued (and `status` says why), and once it
//! is back the crash arrives, counted once.

use lttng_coredump_fleet::collector::{self, ReadOptions};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::collector::JournalRemote;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::netns::TestNetwork;
use testsupport::process::run_bounded;
use testsupport::{unique_name, TempDir, TestUser};

/// `lttng-coredump ARGS` run as root in namespace `ns`, without the
/// machine's proxies (the test network has none).
fn in_netns(network: &TestNetwork, ns: &str, binary: &Path, args: &[&str]) -> Output {
    let mut command = network.command(ns, binary);
    command.args(args);
    for proxy in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        command.env_remove(proxy);
    }
    run_bounded(&mut command, Duration::from_secs(300))
}

fn status_json(binary: &Path, config: &Path, kernel: &Path) -> serde_json::Value {
    let out = run_bounded(
        Command::new(binary)
            .args(["status", "--json", "--config"])
            .arg(config)
            .arg("--proc-sys-kernel")
            .arg(kernel)
            .arg("--backup")
            .arg(kernel.join("backup.json")),
        Duration::from_secs(120),
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn a_crash_is_spooled_under_its_crash_id_and_reaches_journal_remote_once_even_after_an_outage() {
    let dir = TempDir::new("lcd-fleet-wire");
    let user = TestUser::create("lcdfwire", false);
    let network = TestNetwork::new(1);
    let remote = JournalRemote::http(&network, dir.path(), 19541);
    let cores = dir.path().join("cores");
    let spool_dir = dir.path().join("spool");
    let submit = format!(
        "[submit]\nspool_dir = \"{}\"\nuser = \"{}\"\njournal_remote = \"{}\"\n\
         retry_initial = 1\nretry_max = 2\ntimeout = 5\n",
        spool_dir.display(),
        user.name,
        remote.url
    );
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, &submit));
    let config = handler.config.to_str().unwrap();

    // install (kernel settings of the test's own) makes the spool, its
    // queue the submitter's user's.
    let kernel = dir.path().join("kernel");
    fs::create_dir_all(&kernel).unwrap();
    fs::write(kernel.join("core_pattern"), "core\n").unwrap();
    fs::write(kernel.join("core_pipe_limit"), "0\n").unwrap();
    let out = run_bounded(
        Command::new(&handler.binary)
            .args(["install", "--config", config, "--proc-sys-kernel"])
            .arg(&kernel)
            .arg("--backup")
            .arg(kernel.join("backup.json")),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "install: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("spool"),
        "{out:?}"
    );
    let queue = spool_dir.join("queue");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&queue).unwrap().uid(), user.uid);
    assert_eq!(fs::metadata(&spool_dir).unwrap().uid(), 0);

    // The crash, through the real core_pattern.
    let tag = unique_name("fw");
    let output = run_bounded(crasher_command().args([&tag, "3", "segv"]), CRASH_TIMEOUT);
    assert!(!output.status.success());
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&cores, pid);
    let crash_id = record["crash_id"].as_str().unwrap().to_owned();
    // In the queue under its crash_id, its core kept on this host.
    let items: Vec<String> = fs::read_dir(&queue)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert!(items[0].ends_with(&crash_id), "{items:?} {crash_id}");
    assert!(Path::new(record["core"]["path"].as_str().unwrap()).is_file());

    // The collector unreachable: the submitter (as its user) fails, the
    // crash stays queued, and status says so.
    network.set_collector_link(false);
    let host = network.host(0).to_owned();
    let binary = handler.binary.clone();
    let out = in_netns(&network, &host, &binary, &["submit", "--config", config]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(fs::read_dir(&queue).unwrap().count(), 1);
    let status = status_json(&binary, &handler.config, &kernel);
    let spool = &status["spool"]["status"];
    assert_eq!(spool["queued"], 1, "{status}");
    assert_eq!(spool["oldest_unsent"]["crash_id"], crash_id.as_str());
    let destination = &spool["destinations"][0];
    assert!(
        destination["consecutive_failures"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert!(!destination["last_error"].is_null(), "{status}");
    // The submitter's state is its user's: it never ran as root.
    let state = spool_dir.join("state");
    for entry in fs::read_dir(&state).unwrap() {
        assert_eq!(entry.unwrap().metadata().unwrap().uid(), user.uid);
    }

    // Back: the crash arrives; a second pass sends nothing more.
    network.set_collector_link(true);
    let out = in_netns(&network, &host, &binary, &["submit", "--config", config]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read_dir(&queue).unwrap().count(), 0);
    let out = in_netns(&network, &host, &binary, &["submit", "--config", config]);
    assert!(out.status.success(), "{out:?}");
    let crashes = collector::read_journal_dir(&remote.journal_dir, &ReadOptions::default())
        .expect("journal-remote's files read");
    let ours: Vec<_> = crashes
        .iter()
        .filter(|c| c.key == crash_id || c.crash_id.as_deref() == Some(crash_id.as_str()))
        .collect();
    assert_eq!(ours.len(), 1, "{crashes:?}");
    assert_eq!(ours[0].copies, 1, "{crashes:?}");
    assert_eq!(ours[0].pid.as_deref(), Some(pid.to_string().as_str()));
    // coredumpctl on the collector lists it; the entry says where its core is.
    let list = run_bounded(
        Command::new("coredumpctl")
            .arg("-D")
            .arg(&remote.journal_dir)
            .args(["list", "--no-pager", "--no-legend"]),
        Duration::from_secs(120),
    );
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains(&format!(" {pid} ")), "{list:?}");
    assert!(ours[0].core_storage.is_some(), "{:?}", ours[0]);
    let status = status_json(&binary, &handler.config, &kernel);
    assert_eq!(status["spool"]["status"]["queued"], 0, "{status}");
}
