//! Crashes of two hosts delivered to a collector over a network of the
//! test's own (network namespaces): systemd-journal-remote stores them,
//! `coredumpctl -D` lists them, and the collector reader counts each once,
//! whatever the network and the submitter's deaths did. Every entry
//! forwarded carries a `COREDUMP_UID` and a `COREDUMP_GID` coredumpctl
//! reads, whatever the fields it was enqueued with lacked.

mod support;

use std::time::{Duration, Instant};
use support::*;
use testsupport::collector::{Certificates, JournalRemote, TlsFront};
use testsupport::netns::TestNetwork;
use testsupport::{TempDir, TestUser};

#[test]
fn entries_of_two_hosts_reach_journal_remote_with_client_certificates_and_coredumpctl_lists_them() {
    let dir = TempDir::new("fleet-two-hosts");
    let user = TestUser::create("lcdfleet1", false);
    let network = TestNetwork::new(2);
    let certs = Certificates::new(&["host1", "host2"]);
    // journal-remote's HTTP port, behind a TLS front that requires a
    // client certificate of the test CA (Debian's journal-remote checks
    // none itself: see testsupport::collector).
    let remote = JournalRemote::http(&network, dir.path(), 19531);
    let front = TlsFront::start(&network, dir.path(), 19532, 19531, &certs);
    let hosts: Vec<Host> = (0..2)
        .map(|i| {
            let name = format!("host{}", i + 1);
            let submit = format!(
                "journal_remote = \"{}\"\nca = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\ncore_in_entry_max = 1000000\ntimeout = 20",
                front.url,
                certs.cert("ca").display(),
                certs.cert(&name).display(),
                certs.key(&name).display()
            );
            Host::new(&network, i, &name, dir.path(), &user, &submit)
        })
        .collect();

    // Each host: a crash with a small core (it travels in the entry), one
    // with a core too large for the entry (it stays), one with none; the
    // first two share a signature across hosts.
    let small = fake_core(dir.path(), "small-core", 300_000);
    let large = fake_core(dir.path(), "large-core", 1_500_000);
    let mut ids = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        ids.push(host.enqueue(
            100 + i as u32,
            "/usr/bin/crasher",
            "sig-null-deref",
            Some(&small),
        ));
        ids.push(host.enqueue(
            200 + i as u32,
            "/usr/bin/crasher",
            "sig-null-deref",
            Some(&large),
        ));
        ids.push(host.enqueue(
            300 + i as u32,
            &format!("/usr/bin/only-on-host{}", i + 1),
            &format!("sig-host{}", i + 1),
            None,
        ));
    }
    for host in &hosts {
        let out = host.submit(&network, &user);
        assert!(out.status.success(), "submit on {}: {out:?}", host.name);
        assert!(host.spool().queued().unwrap().is_empty());
    }

    let list = coredumpctl(&remote.journal_dir, &["list", "--no-pager", "--no-legend"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{list:?}");
    assert_eq!(listed.lines().count(), 6, "{listed}");
    for pid in [100, 101, 200, 201, 300, 301] {
        assert!(
            listed.contains(&format!(" {pid} ")),
            "pid {pid} not in {listed}"
        );
    }

    // The core that travelled is the core, byte for byte.
    let dumped = dir.path().join("dumped");
    let dump = coredumpctl(
        &remote.journal_dir,
        &["dump", "COREDUMP_PID=100", "-o", dumped.to_str().unwrap()],
    );
    assert!(dump.status.success(), "{dump:?}");
    assert_eq!(
        std::fs::read(&dumped).unwrap(),
        std::fs::read(&small).unwrap()
    );

    let crashes = collected(&remote.journal_dir);
    assert_eq!(crashes.len(), 6);
    let mut got = crash_ids(&crashes);
    let mut want: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let by_pid = |pid: &str| {
        crashes
            .iter()
            .find(|c| c.pid.as_deref() == Some(pid))
            .unwrap()
    };
    assert_eq!(by_pid("100").core_storage.as_deref(), Some("journal"));
    assert_eq!(by_pid("201").core_storage.as_deref(), Some("host"));
    assert_eq!(
        by_pid("201").core_location.as_deref(),
        Some(format!("host2:{}", large.display()).as_str())
    );
    assert_eq!(by_pid("300").core_storage.as_deref(), Some("none"));
    assert_eq!(by_pid("301").hostname.as_deref(), Some("host2"));

    let problems = lttng_coredump_fleet::collector::problems(&crashes);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_eq!(problems[0].signature, "sig-null-deref");
    assert_eq!(problems[0].count, 4);
    assert_eq!(
        problems[0].hosts.iter().collect::<Vec<_>>(),
        ["host1", "host2"]
    );
    // The tool prints the same.
    let out = testsupport::process::run(
        std::path::Path::new(BIN),
        &[
            "problems",
            "--journal-dir",
            remote.journal_dir.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap()
            .contains("4  sig-null-deref  hosts: host1,host2"),
        "{out:?}"
    );
}

/// Waits (bounded) until `check` holds, polling.
fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn journal_remote_state(host: &Host) -> serde_json::Value {
    host.status()["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "journal-remote")
        .cloned()
        .unwrap()
}

#[test]
fn fifty_crashes_queued_while_the_collectors_link_is_down_all_arrive_once_it_is_up() {
    let dir = TempDir::new("fleet-link-down");
    let user = TestUser::create("lcdfleet2", false);
    let network = TestNetwork::new(1);
    let remote = JournalRemote::http(&network, dir.path(), 19531);
    let submit = format!(
        "journal_remote = \"{}\"\nretry_initial = 0.2\nretry_max = 2\ntimeout = 3\npoll = 1",
        remote.url
    );
    let host = Host::new(&network, 0, "host1", dir.path(), &user, &submit);
    let log = dir.path().join("submitter.log");
    let mut submitter = host.follow(&network, &user, &log);

    network.set_collector_link(false);
    let core = fake_core(dir.path(), "core", 20_000);
    let ids: Vec<String> = (0..50)
        .map(|i| {
            host.enqueue(
                1000 + i,
                "/usr/bin/crasher",
                "sig-a",
                i.is_multiple_of(2).then_some(core.as_path()),
            )
            .to_string()
        })
        .collect();
    // The submitter fails while the link is down, and says so...
    wait_until(
        "the submitter reports the collector unreachable",
        Duration::from_secs(120),
        || {
            journal_remote_state(&host)["consecutive_failures"]
                .as_u64()
                .unwrap_or(0)
                >= 3
        },
    );
    let state = journal_remote_state(&host);
    assert_eq!(state["last_error"]["kind"], "unreachable", "{state}");
    assert_eq!(host.status()["queued"], 50);
    // ...and waits no longer than its bound between attempts.
    let waited = state["next_attempt_us"].as_u64().unwrap()
        - state["last_error"]["time_us"].as_u64().unwrap();
    assert!(
        waited <= 2_000_000 + 50_000,
        "a back-off of {waited} us, over retry_max"
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("cannot reach"),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    network.set_collector_link(true);
    // The submitter moves a batch out of the queue first and writes its
    // counters after (a kill between the two loses a count, never a crash):
    // so wait for both, not for the queue alone, before stopping it.
    wait_until(
        "every crash delivered once the link is up, and counted",
        Duration::from_secs(120),
        || {
            host.spool().queued().unwrap().is_empty()
                && journal_remote_state(&host)["delivered"].as_u64() == Some(50)
        },
    );
    let _ = submitter.kill();
    let _ = submitter.wait();

    let crashes = collected(&remote.journal_dir);
    let mut got = crash_ids(&crashes);
    let mut want = ids.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "each of the 50 crashes counted once");
    let raw = raw_crash_ids(&remote.journal_dir);
    assert!(raw.len() >= 50);
    eprintln!(
        "50 crashes, {} entries stored (a lost acknowledgement stores one twice)",
        raw.len()
    );
    let state = journal_remote_state(&host);
    assert_eq!(state["consecutive_failures"], 0, "{state}");
    assert_eq!(state["delivered"].as_u64(), Some(50));
}

/// A small random generator (xorshift), seeded from the clock and printed,
/// so that a failing run can be replayed.
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::env::var("FLEET_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| lttng_coredump_fleet::spool::now_us() | 1);
        eprintln!("FLEET_KILL_SEED={seed}");
        Random(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn the_submitter_killed_200_times_during_a_stream_of_crashes_loses_none_and_counts_none_twice() {
    let dir = TempDir::new("fleet-kills");
    let user = TestUser::create("lcdfleet3", false);
    let network = TestNetwork::new(1);
    let remote = JournalRemote::http(&network, dir.path(), 19531);
    let submit = format!(
        "journal_remote = \"{}\"\nretry_initial = 0.05\nretry_max = 0.2\ntimeout = 10\npoll = 1\nkeep_sent = 100000",
        remote.url
    );
    let host = Host::new(&network, 0, "host1", dir.path(), &user, &submit);
    let core = fake_core(dir.path(), "core", 50_000);

    // The stream: crashes enqueued all along, as the handler would.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let enqueuer = {
        let stop = stop.clone();
        let spool_dir = host.spool_dir.clone();
        let limits = host.limits;
        let core = core.clone();
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let host_view = HostView {
                    spool_dir: &spool_dir,
                    limits,
                };
                ids.push(host_view.enqueue(i, i.is_multiple_of(3).then_some(core.as_path())));
                i += 1;
                std::thread::sleep(Duration::from_millis(15));
            }
            ids
        })
    };

    let mut random = Random::new();
    for _ in 0..200 {
        let mut child = host
            .submitter(&network, &user, &["--follow"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(random.below(150_000)));
        testsupport::process::signal(child.id() as i32, libc::SIGKILL);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert!(
            status.signal() == Some(libc::SIGKILL) || status.success(),
            "{status:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ids = enqueuer.join().unwrap();
    // The stream went on through the kills (its pace is the machine's).
    assert!(ids.len() >= 20, "a stream of {} crashes only", ids.len());

    // What the kills left, sent by a submitter left to finish.
    let out = host.submit(&network, &user);
    assert!(out.status.success(), "{out:?}");
    let spool = host.spool();
    assert!(spool.queued().unwrap().is_empty());
    assert!(spool.incoming().unwrap().is_empty());
    assert_eq!(spool.sent().unwrap().len(), ids.len());

    let crashes = collected(&remote.journal_dir);
    let mut got = crash_ids(&crashes);
    let mut want: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "none lost, none counted twice");
    assert_eq!(got, want);
    let raw = raw_crash_ids(&remote.journal_dir);
    let twice = crashes.iter().filter(|c| c.copies > 1).count();
    eprintln!(
        "{} crashes; {} entries stored; {twice} crashes stored more than once (acknowledged, then the submitter was killed before its mark), each counted once",
        ids.len(),
        raw.len()
    );
    assert_eq!(raw.len(), crashes.iter().map(|c| c.copies).sum::<usize>());
}

/// The spool of a host, from another thread.
struct HostView<'a> {
    spool_dir: &'a std::path::Path,
    limits: lttng_coredump_fleet::SpoolLimits,
}

impl HostView<'_> {
    fn enqueue(&self, i: u32, core: Option<&std::path::Path>) -> lttng_coredump_fleet::CrashId {
        let mut host = lttng_coredump_fleet::HostIdentity::now();
        host.hostname = "host1".into();
        let core = core.map(|path| lttng_coredump_fleet::CoreSource {
            file: std::fs::File::open(path).unwrap(),
            zstd: false,
            size: std::fs::metadata(path).unwrap().len(),
            host_path: path.to_owned(),
        });
        lttng_coredump_fleet::Spool::open(self.spool_dir)
            .unwrap()
            .enqueue(
                lttng_coredump_fleet::NewCrash {
                    crash_id: None,
                    fields: coredump_fields(
                        "host1",
                        i,
                        "/usr/bin/crasher",
                        "sig-stream",
                        core.as_ref().map(|c| c.host_path.as_path()),
                    ),
                    report_json: None,
                    core,
                    host,
                },
                &self.limits,
            )
            .unwrap()
            .crash_id
    }
}

#[test]
fn every_entry_forwarded_reads_with_coredumpctl_list_and_info_even_one_enqueued_without_ids() {
    use lttng_coredump_journal::coredump::{Crash, Entry, GID_UNKNOWN, UID_UNKNOWN};
    let dir = TempDir::new("fleet-ids");
    let user = TestUser::create("lcdfleet11", false);
    let network = TestNetwork::new(1);
    let remote = JournalRemote::http(&network, dir.path(), 19531);
    let host = Host::new(
        &network,
        0,
        "host1",
        dir.path(),
        &user,
        &format!("journal_remote = \"{}\"", remote.url),
    );
    // 701: a crash as the handler's entry says it when the kernel's gid
    // argument was missing or malformed (the journal crate's entry).
    let entry = Entry::from(&Crash {
        pid: 701,
        uid: Some(1000),
        gid: None,
        signal: 11,
        comm: "nogid".into(),
        exe: Some("/usr/bin/nogid".into()),
        ..Crash::default()
    });
    host.enqueue_fields(
        lttng_coredump_fleet::CrashId::random().unwrap(),
        entry.fields.into_vec(),
    );
    // 702, 703: fields files enqueued with `lttng-coredump-fleet enqueue`
    // (whatever wrote them): one without COREDUMP_GID, one with neither id
    // readable; 704 as systemd-coredump writes them.
    let fields_file = |pid: u32, change: &dyn Fn(&mut Vec<lttng_coredump_fleet::export::Field>)| {
        let mut fields = coredump_fields("host1", pid, "/usr/bin/odd", "sig-ids", None);
        change(&mut fields);
        let path = dir.path().join(format!("fields-{pid}"));
        let mut bytes = Vec::new();
        lttng_coredump_fleet::export::write_entry(
            &mut bytes,
            fields.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
            false,
        )
        .unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let files = [
        fields_file(702, &|f| f.retain(|(n, _)| n != "COREDUMP_GID")),
        fields_file(703, &|f| {
            f.retain(|(n, _)| n != "COREDUMP_GID");
            for (name, value) in f.iter_mut() {
                if name == "COREDUMP_UID" {
                    *value = b"-1".to_vec();
                }
            }
        }),
        fields_file(704, &|_| {}),
    ];
    for file in &files {
        let out = testsupport::process::run_bounded(
            std::process::Command::new(BIN)
                .arg("enqueue")
                .arg("--config")
                .arg(&host.config)
                .arg("--fields")
                .arg(file),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "{out:?}");
    }
    let out = host.submit(&network, &user);
    assert!(out.status.success(), "{out:?}");

    // coredumpctl on the collector: list and info read every entry.
    let list = coredumpctl(&remote.journal_dir, &["list", "--no-pager", "--no-legend"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{list:?}");
    for pid in [701, 702, 703, 704] {
        let line = listed
            .lines()
            .find(|l| l.contains(&format!(" {pid} ")))
            .unwrap_or_else(|| panic!("{pid} not listed: {list:?}"));
        let columns: Vec<&str> = line.split_whitespace().collect();
        let (uid, gid) = (columns[5], columns[6]);
        let expected = match pid {
            701 => ("1000", "65534"),
            702 => ("1000", "65534"),
            703 => ("65534", "65534"),
            _ => ("1000", "1000"),
        };
        assert_eq!((uid, gid), expected, "{line}");
        let info = coredumpctl(
            &remote.journal_dir,
            &["info", "--no-pager", &pid.to_string()],
        );
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(info.status.success(), "{pid}: {info:?}");
        assert!(
            text.contains(&format!("PID: {pid}")) && text.contains(&format!("GID: {}", expected.1)),
            "{pid}: {text}"
        );
    }
    // The entries say which ids stand for unknown ones.
    for (pid, uid_unknown, gid_unknown) in [
        (701, false, true),
        (702, false, true),
        (703, true, true),
        (704, false, false),
    ] {
        let crash = collected(&remote.journal_dir)
            .into_iter()
            .find(|c| c.pid.as_deref() == Some(pid.to_string().as_str()))
            .unwrap();
        let fields = all_fields(&remote.journal_dir, crash.crash_id.as_deref().unwrap());
        let has = |name: &str| fields.iter().any(|(n, _)| n == name);
        assert_eq!(has(UID_UNKNOWN), uid_unknown, "{pid}: {fields:?}");
        assert_eq!(has(GID_UNKNOWN), gid_unknown, "{pid}: {fields:?}");
        assert_eq!(
            crash.uid.is_none(),
            uid_unknown,
            "the collector takes no stand-in for the uid: {crash:?}"
        );
    }
}
