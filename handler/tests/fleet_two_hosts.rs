//! Two hosts and a collector, end to end through the installed handler:
//! network namespaces made here (a collector running the real
//! systemd-journal-remote and lttng-relayd, two hosts), a traced program
//! crashing on each host under the real kernel core_pattern and the
//! installed handler, each crash named by its own host (the host name the
//! crashing process sees: its UTS namespace's, as the kernel's `%h` gives
//! it; one kernel runs one handler for both "hosts"), its snapshot recorded
//! to the collector's relay by its user's session daemon on its host, and
//! the spool shipped by the submitter (as the spool's user, over the
//! test network). On the collector: `coredumpctl -D` lists both crashes
//! with their hosts, `lttng-coredump list --journal-dir` has each once
//! with its host and crash ID, `problems --journal-dir` groups the two
//! (the same bug) across the two hosts, and each snapshot is read there
//! with babeltrace2.
//!
//! And a crash is its host's: the same crash ID sent by two hosts (two
//! host names on one machine, two machines of one host name), each through
//! its own real submitter, is two crashes for `list` and `problems
//! --journal-dir`, while the same entry sent twice by one host is one
//! crash received twice.

use lttng_coredump_fleet::relayd;
use std::fs;
use std::process::Command;
use std::time::Duration;
use testsupport::collector::{JournalRemote, Relayd};
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::netns::TestNetwork;
use testsupport::process::run_bounded;
use testsupport::{babeltrace_events, fixture_seqs, unique_name, TempDir, TestUser};

/// `lttng-coredump ARGS` (`binary`) on the collector, successful: its
/// standard output.
fn tool(binary: &std::path::Path, args: &[&str]) -> String {
    let out = run_bounded(Command::new(binary).args(args), Duration::from_secs(120));
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One JSON value a line.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The host names the two hosts' processes see.
const HOSTS: [&str; 2] = ["fleet-web1", "fleet-db2"];

#[test]
fn crashes_of_two_hosts_reach_the_collector_each_with_its_host_grouped_across_hosts() {
    let dir = TempDir::new("lcd-fleet-2h");
    // Declared before the network: its teardown kills their daemons first.
    let spool_user = TestUser::create("lcdf2hs", false);
    let users = [
        TestUser::create("lcdf2h1", false),
        TestUser::create("lcdf2h2", false),
    ];
    let network = TestNetwork::new(2);
    let remote = JournalRemote::http(&network, dir.path(), 19571);
    let relay = Relayd::start(&network, dir.path(), 5362);
    let cores = dir.path().join("cores");
    let spool_dir = dir.path().join("spool");

    // Each host's user traces the crasher in a session daemon running on
    // that host (its consumer reaches the relay over that host's link).
    let sessions = ["fleet-2h-web", "fleet-2h-db"];
    for (i, user) in users.iter().enumerate() {
        user.start_sessiond_in(&network, network.host(i));
        user.start_snapshot_session(sessions[i], &user.home.join("fleet-2h-snapshots"));
        user.set_trigger_in_own_daemon(sessions[i], lttng_coredump_engine::ActionKind::Snapshot);
    }

    let handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "[submit]\nspool_dir = \"{}\"\nuser = \"{}\"\njournal_remote = \"{}\"\nrelayd = \
                 \"{}\"\ntimeout = 20\n",
                spool_dir.display(),
                spool_user.name,
                remote.url,
                relay.url
            ),
        ),
    );
    lttng_coredump_fleet::Spool::create(
        &spool_dir,
        lttng_coredump_fleet::SpoolOwner {
            uid: spool_user.uid,
            gid: spool_user.gid,
        },
    )
    .unwrap();

    // A crash on each host: the crasher, as that host's user, in that
    // host's network namespace and a UTS namespace named as the host.
    let mut crashes = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let tag = unique_name(&format!("f2h{i}"));
        let crasher = user.crasher_command();
        let mut command = network.command(network.host(i), "unshare");
        command
            .args(["--uts", "--", "sh", "-c", "hostname \"$0\" && exec \"$@\""])
            .arg(HOSTS[i])
            .arg(crasher.get_program())
            .args(crasher.get_args())
            .args([tag.as_str(), "20", "segv"]);
        let output = run_bounded(&mut command, CRASH_TIMEOUT);
        assert!(!output.status.success(), "{output:?}");
        let pid = ready_pid(&output);
        let (_, record) = wait_for_record(&cores, pid);
        assert_eq!(record["hostname"], HOSTS[i], "{record:#}");
        let crash_id = record["crash_id"].as_str().unwrap().to_owned();
        assert!(
            record["log"]
                .to_string()
                .contains(&format!("crash-{crash_id}")),
            "the snapshot did not go to the relay: {}\nrelay: {}",
            record["log"],
            relay.server.log_text()
        );
        crashes.push((pid, tag, crash_id, record));
    }
    // Both queued (after their records: the handler queues last).
    let deadline = std::time::Instant::now() + CRASH_TIMEOUT;
    while fs::read_dir(spool_dir.join("queue")).unwrap().count() < 2 {
        assert!(std::time::Instant::now() < deadline, "not queued");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The submitter, as the spool's user, from the first host.
    let out = run_bounded(
        network.command(network.host(0), &handler.binary).args([
            "submit",
            "--config",
            handler.config.to_str().unwrap(),
        ]),
        Duration::from_secs(300),
    );
    assert!(out.status.success(), "submit: {out:?}");
    assert_eq!(fs::read_dir(spool_dir.join("queue")).unwrap().count(), 0);

    // On the collector. coredumpctl: both crashes, each with its host.
    let journal_dir = remote.journal_dir.to_str().unwrap();
    let list = run_bounded(
        Command::new("coredumpctl").args(["-D", journal_dir, "list", "--no-pager", "--no-legend"]),
        Duration::from_secs(120),
    );
    let listed = String::from_utf8_lossy(&list.stdout);
    for (i, (pid, ..)) in crashes.iter().enumerate() {
        assert!(listed.contains(&format!(" {pid} ")), "{list:?}");
        let info = run_bounded(
            Command::new("coredumpctl").args([
                "-D",
                journal_dir,
                "info",
                "--no-pager",
                &pid.to_string(),
            ]),
            Duration::from_secs(120),
        );
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.contains(&format!("Hostname: {}", HOSTS[i])),
            "{}: {info}",
            HOSTS[i]
        );
    }

    // list --journal-dir: each once, its host, its crash ID.
    let binary = &handler.binary;
    let collected = json_lines(&tool(
        binary,
        &["list", "--journal-dir", journal_dir, "--json"],
    ));
    assert_eq!(collected.len(), 2, "{collected:?}");
    for (i, (pid, _, crash_id, _)) in crashes.iter().enumerate() {
        let crash = collected
            .iter()
            .find(|c| c["crash_id"] == crash_id.as_str())
            .unwrap_or_else(|| panic!("{crash_id} missing: {collected:?}"));
        assert_eq!(crash["hostname"], HOSTS[i], "{crash}");
        assert_eq!(crash["pid"], pid.to_string().as_str(), "{crash}");
        assert_eq!(crash["copies"], 1, "{crash}");
    }
    let table = tool(
        binary,
        &["list", "--journal-dir", journal_dir, "--no-pager"],
    );
    assert!(
        HOSTS.iter().all(|h| table.contains(&format!(" {h} "))),
        "{table}"
    );

    // problems --journal-dir: the two crashes are one problem, on both hosts.
    let signature = crashes[0].3["report"]["signature"]
        .as_str()
        .expect("the crash has a report")
        .to_owned();
    assert_eq!(
        crashes[1].3["report"]["signature"], signature,
        "the same bug on both hosts"
    );
    let problems = json_lines(&tool(
        binary,
        &["problems", "--journal-dir", journal_dir, "--json"],
    ));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["signature"], signature.as_str());
    assert_eq!(problems[0]["count"], 2);
    let mut hosts = HOSTS.to_vec();
    hosts.sort();
    assert_eq!(problems[0]["hosts"], serde_json::json!(hosts));
    let text = tool(binary, &["problems", "--journal-dir", journal_dir]);
    assert!(text.contains(&hosts.join(",")), "{text}");

    // Each crash's snapshot, on the collector's relay, read with babeltrace2.
    for (i, (_, tag, crash_id, _)) in crashes.iter().enumerate() {
        let crash = collected
            .iter()
            .find(|c| c["crash_id"] == crash_id.as_str())
            .unwrap();
        assert_eq!(crash["snapshot_session"], sessions[i], "{crash}");
        let pattern = crash["snapshot_path"].as_str().unwrap();
        let path = relayd::resolve_snapshot_path(&relay.output, pattern)
            .unwrap_or_else(|| panic!("no {pattern} under {}", relay.output.display()));
        let events = babeltrace_events(&path);
        assert_eq!(fixture_seqs(&events, tag), (0..20).collect::<Vec<i64>>());
    }
    drop(handler);
}

/// A host's files for the collision test: its spool, and the handler's
/// copy and configuration its submitter runs with (removed when dropped).
struct Sender {
    spool_dir: std::path::PathBuf,
    binary: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.binary);
        let _ = fs::remove_file(&self.config);
    }
}

/// A crash record as the handler writes it, of `exe` (pid `pid`) with the
/// report's `signature`: what the shipped entry is made from.
fn shipped_record(
    pid: i32,
    exe: &str,
    host: &str,
    signature: &str,
) -> lttng_coredump_handler::store::record::CrashRecord {
    use lttng_coredump_handler::store::record::*;
    let name = std::path::Path::new(exe)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let mut record = CrashRecord {
        format: FORMAT.into(),
        crashed: Crashed {
            pid: Some(pid),
            uid: Some(1000),
            gid: Some(1000),
            signal: Some(Signal {
                number: 11,
                name: Some("SIGSEGV".into()),
            }),
            time: Some(1_800_000_000),
            hostname: Some(host.into()),
            process_name: Some(name.into()),
            exe_path: Some(exe.into()),
            ..Crashed::default()
        },
        ..CrashRecord::default()
    };
    record.report.signature = Some(signature.into());
    record
}

#[test]
fn the_same_crash_id_from_two_hosts_is_two_crashes_and_a_resend_from_one_host_is_one() {
    use lttng_coredump_fleet::{CrashId, HostIdentity, NewCrash, Spool, SpoolLimits, SpoolOwner};
    let dir = TempDir::new("lcd-fleet-2h-ids");
    let spool_user = TestUser::create("lcdf2hc", false);
    let network = TestNetwork::new(2);
    let remote = JournalRemote::http(&network, dir.path(), 19573);
    let signature = "c0111de5c0111de5c0111de5c0111de5";

    // Each host: its spool (as install makes it) and its submitter's
    // configuration.
    let senders: Vec<Sender> = (0..2)
        .map(|i| {
            let spool_dir = dir.path().join(format!("spool-{i}"));
            Spool::create(
                &spool_dir,
                SpoolOwner {
                    uid: spool_user.uid,
                    gid: spool_user.gid,
                },
            )
            .unwrap();
            let (binary, config) = short_handler_copy(
                handler_binary!(),
                &config_for(
                    &dir.path().join(format!("cores-{i}")),
                    &format!(
                        "[submit]\nspool_dir = \"{}\"\nuser = \"{}\"\njournal_remote = \"{}\"\n\
                         timeout = 20\n",
                        spool_dir.display(),
                        spool_user.name,
                        remote.url
                    ),
                ),
            );
            Sender {
                spool_dir,
                binary,
                config,
            }
        })
        .collect();
    let enqueue = |i: usize, crash_id: CrashId, host: &HostIdentity, pid: i32| {
        let record = shipped_record(pid, "/usr/bin/httpd", &host.hostname, signature);
        Spool::open(&senders[i].spool_dir)
            .unwrap()
            .enqueue(
                NewCrash {
                    crash_id: Some(crash_id),
                    fields: lttng_coredump_handler::crash::submit::entry_fields(&record),
                    report_json: Some(record.to_json()),
                    core: None,
                    host: host.clone(),
                },
                &SpoolLimits::default(),
            )
            .unwrap();
    };
    // The real submitter of host `i`, in its namespace: sends its queue.
    let submit = |i: usize| {
        let out = run_bounded(
            network.command(network.host(i), &senders[i].binary).args([
                "submit",
                "--config",
                senders[i].config.to_str().unwrap(),
            ]),
            Duration::from_secs(300),
        );
        assert!(out.status.success(), "submit on host {i}: {out:?}");
        assert_eq!(
            fs::read_dir(senders[i].spool_dir.join("queue"))
                .unwrap()
                .count(),
            0
        );
    };

    // The hosts: web1 and db2 on this machine (one kernel, two UTS names,
    // as above), and two machines both named `localhost` (the second's
    // machine ID its own, as its /etc/machine-id would give it).
    let host = |name: &str, machine_id: Option<&str>| {
        let mut host = HostIdentity::now();
        host.hostname = name.into();
        if let Some(id) = machine_id {
            host.machine_id = Some(id.into());
        }
        host
    };
    let web1 = host(HOSTS[0], None);
    let db2 = host(HOSTS[1], None);
    let localhost_a = host("localhost", None);
    let localhost_b = host("localhost", Some("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"));
    assert_ne!(localhost_a.machine_id, localhost_b.machine_id);
    let shared = CrashId::parse("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a").unwrap();
    let other = CrashId::parse("7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e").unwrap();
    enqueue(0, shared, &web1, 101);
    enqueue(0, other, &localhost_a, 103);
    enqueue(1, shared, &db2, 201);
    enqueue(1, other, &localhost_b, 203);
    submit(0);
    submit(1);
    // web1's crash sent again (its acknowledgement lost: the same entry
    // from the same host).
    enqueue(0, shared, &web1, 101);
    submit(0);

    // journal-remote stored five entries; coredumpctl lists every one.
    let journal_dir = remote.journal_dir.to_str().unwrap();
    let list = run_bounded(
        Command::new("coredumpctl").args(["-D", journal_dir, "list", "--no-pager", "--no-legend"]),
        Duration::from_secs(120),
    );
    assert!(list.status.success(), "{list:?}");
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).lines().count(),
        5,
        "{list:?}"
    );

    // list --journal-dir: four crashes, each with its host; web1's twice
    // received, counted once.
    let binary = &senders[0].binary;
    let collected = json_lines(&tool(
        binary,
        &["list", "--journal-dir", journal_dir, "--json"],
    ));
    let mut seen: Vec<(String, String, String, u64)> = collected
        .iter()
        .map(|c| {
            (
                c["hostname"].as_str().unwrap().to_owned(),
                c["pid"].as_str().unwrap().to_owned(),
                c["crash_id"].as_str().unwrap().to_owned(),
                c["copies"].as_u64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    let (shared, other) = (shared.to_string(), other.to_string());
    let mut expected = vec![
        (HOSTS[0].to_owned(), "101".to_owned(), shared.clone(), 2),
        (HOSTS[1].to_owned(), "201".to_owned(), shared.clone(), 1),
        ("localhost".to_owned(), "103".to_owned(), other.clone(), 1),
        ("localhost".to_owned(), "203".to_owned(), other.clone(), 1),
    ];
    expected.sort();
    assert_eq!(seen, expected, "{collected:#?}");
    let localhost_machines: std::collections::BTreeSet<&str> = collected
        .iter()
        .filter(|c| c["hostname"] == "localhost")
        .map(|c| c["machine_id"].as_str().unwrap())
        .collect();
    assert_eq!(localhost_machines.len(), 2, "{collected:#?}");
    let table = tool(
        binary,
        &["list", "--journal-dir", journal_dir, "--no-pager"],
    );
    assert_eq!(table.lines().count(), 5, "{table}");
    assert_eq!(
        table.matches("(received 2 times, counted once)").count(),
        1,
        "{table}"
    );

    // problems --journal-dir: one problem of four crashes on three hosts,
    // one entry received again.
    let problems = json_lines(&tool(
        binary,
        &["problems", "--journal-dir", journal_dir, "--json"],
    ));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["signature"], signature);
    assert_eq!(problems[0]["count"], 4, "{problems:?}");
    let text = tool(binary, &["problems", "--journal-dir", journal_dir]);
    assert!(text.contains("1 entry received again"), "{text}");
    let text = tool(
        binary,
        &["problems", &signature[..8], "--journal-dir", journal_dir],
    );
    assert!(text.contains("Crashes: 4"), "{text}");
    assert_eq!(text.matches(&shared).count(), 2, "{text}");
    assert_eq!(text.matches(&other).count(), 2, "{text}");
}
