//! Fairness of the snapshot budget (issue 17): the snapshots the handler
//! takes itself (the configured `snapshot_sessions`, the fallback) are
//! `max_snapshots_per_minute` crashes a minute for the whole machine, and
//! each uid's crashes (root's included) get at most
//! `max_snapshots_per_user_per_minute` of them. One user's crash loop, let
//! go at once with another user's crash and root's (a storm: the ledger's
//! lock makes the count exact), takes its share and no more: the other
//! user's crash and root's still get their snapshots. Real users, real
//! crashes through the real kernel core_pattern, a real root session
//! daemon.

use std::process::Child;
use std::time::{Duration, Instant};
use testsupport::attacker::let_go;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::sessions::TestSession;
use testsupport::users::TestUser;
use testsupport::{unique_name, TempDir};

const LOOP: usize = 6;
const TOTAL: usize = 4;
const SHARE: usize = 2;

/// A traced crasher, registered and waiting at its gate.
fn gated(command: &mut std::process::Command) -> (Child, i32) {
    spawn_gated(
        command
            .arg("--gate")
            .arg(unique_name("snapshare"))
            .args(["2", "segv"]),
    )
}

#[test]
fn one_users_crash_loop_leaves_the_snapshot_budget_to_the_others() {
    let session = TestSession::snapshot("lcdh-snapshare");
    let dir = TempDir::new("lcdh-snapshare");
    let cores = dir.path().join("cores");
    let looping = TestUser::create("lcdh-snaploop", false);
    let other = TestUser::create("lcdh-snapother", false);
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "snapshot_user_daemon = false\nsnapshot_sessions = [\"{}\"]\n\
                 max_snapshots_per_minute = {TOTAL}\n\
                 max_snapshots_per_user_per_minute = {SHARE}\nmax_cores_per_minute = 0\n",
                session.name
            ),
        ),
    );
    let mut crashes: Vec<(Child, i32)> = (0..LOOP)
        .map(|_| gated(&mut crasher_as(looping.uid, looping.gid)))
        .collect();
    let other_crash = gated(&mut crasher_as(other.uid, other.gid));
    let other_pid = other_crash.1;
    crashes.push(other_crash);
    let root_crash = gated(&mut crasher_command());
    let root_pid = root_crash.1;
    crashes.push(root_crash);
    // All at once.
    for (child, _) in &mut crashes {
        let_go(child);
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for (child, _) in &mut crashes {
        wait_for_crash(child, deadline);
    }
    let snapshotted = |pid: i32| {
        let (_, record) = wait_for_record(&cores, pid);
        let taken = record["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["session"] == session.name.as_str() && s["error"].is_null());
        (taken, record)
    };
    let mut of_loop = 0;
    for (_, pid) in &crashes[..LOOP] {
        let (taken, record) = snapshotted(*pid);
        if taken {
            of_loop += 1;
        } else {
            assert!(
                record["errors"]
                    .to_string()
                    .contains("max_snapshots_per_user_per_minute"),
                "{record:#}"
            );
        }
    }
    assert_eq!(
        of_loop, SHARE,
        "the looping user's crashes took {of_loop} snapshots"
    );
    let (taken, record) = snapshotted(other_pid);
    assert!(taken, "the other user's crash got no snapshot: {record:#}");
    let (taken, record) = snapshotted(root_pid);
    assert!(taken, "root's crash got no snapshot: {record:#}");
}
