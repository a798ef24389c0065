//! A process of a user's uid that holds capabilities the user does not
//! have (issue 17): a service run with `User=` and
//! `AmbientCapabilities=` is every id the user's, `AT_SECURE` 0 and
//! dumpable (`%d` = 1), yet the kernel would not let that user ptrace it
//! (`ptrace_may_access`: the target's permitted capabilities must be a
//! subset of the caller's, and an unprivileged user has none). Its core
//! may hold what only those capabilities could read: it stays root's.
//! Played with `setpriv` launching a crashing shell as a real user through
//! the real kernel core_pattern, with ambient capabilities; and, for
//! contrast, with inheritable ones only (the permitted set stays empty:
//! the kernel lets the user ptrace it, and the user gets the core).

use std::path::PathBuf;
use std::process::Command;
use testsupport::access::{acl_users, readable_by};
use testsupport::attacker::CRASH;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::users::TestUser;
use testsupport::TempDir;

/// `setpriv` making a crashing shell run as `user` with `caps` options.
fn crash_as_with(user: &TestUser, caps: &[&str], cores: &std::path::Path) -> serde_json::Value {
    let mut command = Command::new("setpriv");
    command
        .args([
            &format!("--reuid={}", user.uid),
            &format!("--regid={}", user.gid),
            "--clear-groups",
        ])
        .args(caps)
        .args(["--", "/bin/sh", "-c", CRASH]);
    crash_and_record(&mut command, cores).1
}

#[test]
fn a_process_holding_capabilities_its_user_lacks_keeps_its_core_root_only() {
    let dir = TempDir::new("lcdh-caps");
    let cores = dir.path().join("cores");
    let user = TestUser::create("lcdh-caps", false);
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));

    let record = crash_as_with(
        &user,
        &["--inh-caps", "+net_raw", "--ambient-caps", "+net_raw"],
        &cores,
    );
    // Every id the user's, dumpable for them, nothing set-uid...
    assert_eq!(record["uid"], user.uid, "{record:#}");
    assert_eq!(record["dump_mode"], 1, "{record:#}");
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    // ...but holding CAP_NET_RAW: root's only, and the record says why.
    let core = PathBuf::from(record["core"]["path"].as_str().unwrap());
    assert!(record["core"]["readable_by_uid"].is_null(), "{record:#}");
    assert!(acl_users(&core).is_empty(), "{:?}", acl_users(&core));
    assert!(!readable_by(user.uid, user.gid, &core));
    for name in names_in(&cores) {
        assert!(
            !readable_by(user.uid, user.gid, &cores.join(&name)),
            "the user can read {name}"
        );
    }
    assert!(
        record["log"].to_string().contains("holds capabilities"),
        "the record does not say why: {record:#}"
    );

    // Inheritable only: nothing permitted, as the kernel sees it the
    // user's own process; the user reads its core.
    let record = crash_as_with(&user, &["--inh-caps", "+net_raw"], &cores);
    assert_eq!(record["core"]["readable_by_uid"], user.uid, "{record:#}");
    let core = PathBuf::from(record["core"]["path"].as_str().unwrap());
    assert!(readable_by(user.uid, user.gid, &core));
}
