//! Crashes of two hosts delivered to a collector over a network of the
//! test's own (network namespaces): systemd-journal-remote stores them,
//! `coredumpctl -D` lists them, and the collector reader counts each once,
//! whatever the network and the submitter's deaths did.

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
    let mut got: Vec<String> = crashes.iter().map(|c| c.key.clone()).collect();
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
