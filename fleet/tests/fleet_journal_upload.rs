//! Where journald runs, the crash's entry is already in the local journal,
//! and systemd-journal-upload ships it to the collector as it is: the same
//! fields, byte for byte, crash ID included. journal-upload may send an
//! entry again (its state lost, an acknowledgement lost), and a host may
//! also ship the same crash from the spool: the collector reader counts it
//! once.

mod support;

use lttng_coredump_fleet::fields;
use std::time::Duration;
use support::*;
use testsupport::collector::JournalRemote;
use testsupport::journald::StandaloneJournald;
use testsupport::netns::TestNetwork;
use testsupport::process::run_bounded;
use testsupport::{TempDir, TestUser};

const JOURNAL_UPLOAD: &str = "/lib/systemd/systemd-journal-upload";

#[test]
fn systemd_journal_upload_ships_our_entries_as_they_are_and_the_collector_counts_them_once() {
    let dir = TempDir::new("fleet-upload");
    let user = TestUser::create("lcdfleet7", false);
    let network = TestNetwork::new(1);
    let remote = JournalRemote::http(&network, dir.path(), 19531);
    let journald = StandaloneJournald::start();

    // The crash's entry, as the handler writes it to journald: systemd-
    // coredump's fields, ours, a binary one, and the crash ID.
    let crash_id = lttng_coredump_fleet::CrashId::random().unwrap().to_string();
    let mut entry = coredump_fields("host1", 5151, "/usr/bin/crasher", "sig-journald", None);
    entry.push((fields::CRASH_ID.into(), crash_id.clone().into_bytes()));
    entry.push((
        "COREDUMP_PROC_STATUS".into(),
        b"Name:\tcrasher\nState:\tR\n".to_vec(),
    ));
    journald.send(&entry);
    journald.wait_for(&format!("{}={crash_id}", fields::CRASH_ID));

    let upload = |state: &std::path::Path| {
        let out = run_bounded(
            network
                .command(network.host(0), JOURNAL_UPLOAD)
                .arg(format!("--url={}", remote.url))
                .arg(format!("--directory={}", journald.journal_dir().display()))
                .arg(format!("--save-state={}", state.display()))
                .arg("--follow=no"),
            Duration::from_secs(120),
        );
        assert!(out.status.success(), "{out:?}");
    };
    upload(&dir.path().join("upload-state"));

    let crashes = collected(&remote.journal_dir);
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    let crash = &crashes[0];
    assert_eq!(crash.crash_id.as_deref(), Some(crash_id.as_str()));
    assert_eq!(crash.signature.as_deref(), Some("sig-journald"));
    // Every field arrived byte for byte (journald's own trusted fields
    // beside them).
    let shipped = support::all_fields(&remote.journal_dir, &crash_id);
    for (name, value) in &entry {
        assert_eq!(
            shipped.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            Some(value),
            "field {name}"
        );
    }
    assert!(shipped.iter().any(|(n, _)| n == "_PID"));
    assert_eq!(
        coredumpctl(
            &remote.journal_dir,
            &["list", "--no-pager", "--no-legend", "COREDUMP_PID=5151"]
        )
        .stdout
        .iter()
        .filter(|&&b| b == b'\n')
        .count(),
        1
    );

    // Sent again (a state file lost): stored twice, counted once.
    upload(&dir.path().join("other-state"));
    // And the same crash shipped from a host's spool too.
    let host = Host::new(
        &network,
        0,
        "host1",
        dir.path(),
        &user,
        &format!("journal_remote = \"{}\"", remote.url),
    );
    let mut fields = coredump_fields("host1", 5151, "/usr/bin/crasher", "sig-journald", None);
    fields.push((
        "COREDUMP_PROC_STATUS".into(),
        b"Name:\tcrasher\nState:\tR\n".to_vec(),
    ));
    host.enqueue_fields(
        lttng_coredump_fleet::CrashId::parse(&crash_id).unwrap(),
        fields,
    );
    assert!(host.submit(&network, &user).status.success());
    assert_eq!(
        raw_crash_ids(&remote.journal_dir)
            .iter()
            .filter(|id| **id == crash_id)
            .count(),
        3
    );
    let crashes = collected(&remote.journal_dir);
    assert_eq!(crashes.len(), 1);
    assert_eq!(crashes[0].copies, 3);
}
