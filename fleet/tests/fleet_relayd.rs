//! A crash's snapshot sent to lttng-relayd on the collector: recorded by the
//! host's session daemon to a `net://` output named after the crash ID
//! (its consumer streams it over the test network), readable there with
//! babeltrace2, and found from the crash's journal entry.

mod support;

use lttng_coredump_engine::identity::{run_as, Identity};
use lttng_coredump_fleet::relayd::{self, RelaySnapshot};
use lttng_coredump_fleet::CrashId;
use std::time::Duration;
use support::*;
use testsupport::collector::{JournalRemote, Relayd};
use testsupport::netns::TestNetwork;
use testsupport::process::run_bounded;
use testsupport::{babeltrace_events, fixture_seqs, TempDir, TestUser};

#[test]
fn a_snapshot_sent_to_the_collectors_relayd_is_readable_there_and_its_entry_says_where() {
    let dir = TempDir::new("fleet-relayd");
    // Declared first, dropped last: the network's teardown kills the
    // user's session daemon (it runs in the host's namespace) before the
    // user is deleted.
    let user = TestUser::create("lcdfleet6", false);
    let network = TestNetwork::new(1);
    let relay = Relayd::start(&network, dir.path(), 5342);
    let remote = JournalRemote::http(&network, dir.path(), 19531);

    // The host's session daemon (the user's own) runs in the host's
    // namespace: its consumer daemon reaches the collector from there.
    user.start_sessiond_in(&network, network.host(0));
    let session = "fleet-flight";
    let local = user.home.join("snapshots");
    user.start_snapshot_session(session, &local);
    let tag = testsupport::unique_name("relayd");
    let out = run_bounded(
        user.crasher_command().args([&tag, "40", "exit"]),
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{out:?}");

    // The crash's snapshot, recorded to the relay as the user, towards
    // the user's own daemon.
    let crash_id = CrashId::random().unwrap();
    let identity = Identity::of_user(user.uid)
        .unwrap()
        .with_lttng_home(&user.home)
        .per_user_daemon();
    let url = relay.url.clone();
    let recorded = run_as(Duration::from_secs(60), Some(&identity), || {
        format!(
            "{:?}",
            relayd::record(session, &url, &crash_id).map(|r| r.name)
        )
        .into_bytes()
    })
    .unwrap();
    let recorded = String::from_utf8_lossy(&recorded).into_owned();
    assert_eq!(
        recorded,
        format!("Ok({:?})", relayd::snapshot_name(&crash_id)),
        "relay log: {}",
        relay.server.log_text()
    );
    let snapshot = RelaySnapshot {
        relay_url: relay.url.clone(),
        session: session.into(),
        name: relayd::snapshot_name(&crash_id),
        hostname: testsupport::process::stdout(&testsupport::process::run(
            std::path::Path::new("uname"),
            &["-n"],
        ))
        .trim()
        .to_owned(),
    };

    // On the collector: the trace, with the crasher's events.
    let path = relayd::resolve_snapshot_path(&relay.output, &snapshot.path_pattern())
        .unwrap_or_else(|| {
            panic!(
                "no {} under {}",
                snapshot.path_pattern(),
                relay.output.display()
            )
        });
    // HOSTNAME/SESSION-DATE-TIME/NAME-DATE-TIME-SEQ under the relay's output.
    let relative = path
        .strip_prefix(relay.output.join(&snapshot.hostname))
        .unwrap();
    assert!(
        relative
            .to_string_lossy()
            .starts_with(&format!("{session}-")),
        "{}",
        path.display()
    );
    let events = babeltrace_events(&path);
    assert_eq!(fixture_seqs(&events, &tag), (0..40).collect::<Vec<i64>>());
    // Nothing was written on the host for it.
    assert!(!local.exists() || std::fs::read_dir(&local).unwrap().next().is_none());

    // The crash's entry names the session and the path, and the collector
    // finds the trace from it.
    let host = Host::new(
        &network,
        0,
        "host1",
        dir.path(),
        &user,
        &format!("journal_remote = \"{}\"", remote.url),
    );
    let mut fields = coredump_fields("host1", 4242, "/usr/bin/crasher", "sig-traced", None);
    fields.extend(snapshot.fields());
    host.enqueue_fields(crash_id, fields);
    let out = host.submit(&network, &user);
    assert!(out.status.success(), "{out:?}");
    let crashes = collected(&remote.journal_dir);
    assert_eq!(crashes.len(), 1);
    assert_eq!(crashes[0].crash_id, Some(crash_id.to_string()));
    assert_eq!(crashes[0].snapshot_session.as_deref(), Some(session));
    let pattern = crashes[0].snapshot_path.as_deref().unwrap();
    assert_eq!(
        relayd::resolve_snapshot_path(&relay.output, pattern),
        Some(path)
    );
}
