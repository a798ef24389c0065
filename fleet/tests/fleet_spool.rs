//! The spool on disk: who owns which state, and what a handler that died
//! while enqueuing leaves (found, removed and recorded by the next one).

mod support;

use std::os::unix::fs::MetadataExt;
use support::*;
use testsupport::netns::TestNetwork;
use testsupport::{TempDir, TestUser};

#[test]
fn the_spool_belongs_to_root_but_its_states_to_the_submitters_user() {
    let dir = TempDir::new("fleet-spool-owners");
    let user = TestUser::create("lcdfleet8", false);
    let network = TestNetwork::new(1);
    let host = Host::new(
        &network,
        0,
        "host1",
        dir.path(),
        &user,
        "journal_remote = \"http://10.213.0.1:1\"",
    );
    host.enqueue(
        1,
        "/usr/bin/crasher",
        "sig",
        Some(&fake_core(dir.path(), "core", 10_000)),
    );
    let meta = |p: &str| std::fs::symlink_metadata(host.spool_dir.join(p)).unwrap();
    assert_eq!((meta("").uid(), meta("").mode() & 0o7777), (0, 0o755));
    assert_eq!(
        (meta("incoming").uid(), meta("incoming").mode() & 0o7777),
        (0, 0o700)
    );
    for state in ["queue", "sent", "state"] {
        assert_eq!(
            (meta(state).uid(), meta(state).mode() & 0o7777),
            (user.uid, 0o700),
            "{state}"
        );
    }
    assert_eq!(
        (
            meta("drops.log").uid(),
            meta("drops.log").gid(),
            meta("drops.log").mode() & 0o777
        ),
        (0, user.gid, 0o640)
    );
    let item = host.spool().queued().unwrap().remove(0);
    for file in ["", "/meta.json", "/fields", "/report.json", "/core.zst"] {
        let m = meta(&format!("queue/{item}{file}"));
        assert_eq!(m.uid(), user.uid, "{item}{file}");
        assert_eq!(m.mode() & 0o077, 0, "{item}{file} is private");
    }
    // The user can neither write where root builds items, nor replace the
    // spool's directories.
    let out = testsupport::process::run_bounded(
        user.command("sh").args([
            "-c",
            &format!(
                "touch {0}/incoming/x || touch {0}/x || mv {0}/queue {0}/q2",
                host.spool_dir.display()
            ),
        ]),
        std::time::Duration::from_secs(30),
    );
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn an_item_a_handler_died_writing_is_removed_and_recorded_by_the_next_enqueue() {
    let dir = TempDir::new("fleet-spool-torn");
    let user = TestUser::create("lcdfleet9", false);
    let network = TestNetwork::new(1);
    let host = Host::new(
        &network,
        0,
        "host1",
        dir.path(),
        &user,
        "journal_remote = \"http://10.213.0.1:1\"",
    );
    // What a handler killed half-way leaves in incoming/.
    let torn = "00000000000000000001-0123456789abcdef0123456789abcdef";
    std::fs::create_dir(host.spool_dir.join("incoming").join(torn)).unwrap();
    std::fs::write(
        host.spool_dir.join("incoming").join(torn).join("fields"),
        b"MESSAGE=half",
    )
    .unwrap();
    let id = host.enqueue(2, "/usr/bin/crasher", "sig", None);
    let spool = host.spool();
    assert!(spool.incoming().unwrap().is_empty());
    assert_eq!(spool.queued().unwrap().len(), 1);
    assert!(spool.queued().unwrap()[0].ends_with(&id.to_string()));
    let drops = spool.drops();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].what, "incomplete");
    assert_eq!(drops[0].crash_id, "0123456789abcdef0123456789abcdef");
    assert_eq!(host.status()["drops_total"], 1);
}

#[test]
fn handlers_enqueuing_at_once_never_take_each_others_items_for_torn_ones() {
    // A storm: handlers enqueue at the same time, each sweeping incoming/
    // first. None may sweep another's item between its making and its
    // lock (the item is made under a shared lock of incoming/).
    let dir = TempDir::new("fleet-spool-concurrent");
    let user = TestUser::create("lcdfleet10", false);
    let network = TestNetwork::new(1);
    let host = Host::new(
        &network,
        0,
        "host1",
        dir.path(),
        &user,
        "journal_remote = \"http://10.213.0.1:1\"",
    );
    let (threads, each) = (8u32, 40u32);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let host = &host;
            scope.spawn(move || {
                for n in 0..each {
                    host.enqueue(t * 1000 + n, "/usr/bin/storm", "sig", None);
                }
            });
        }
    });
    assert_eq!(
        host.spool().queued().unwrap().len(),
        (threads * each) as usize
    );
    let drops = std::fs::read_to_string(host.spool_dir.join("drops.log")).unwrap_or_default();
    assert!(drops.is_empty(), "{drops}");
}
