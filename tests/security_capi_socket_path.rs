//! The C API's `socket_path` through a symbolic link (issue 10, item 1),
//! played by real unprivileged users: root's core_pattern helper, given a
//! path of the attacker's that leads into the victim's run directory or the
//! root daemon's, acts in neither; the victim's own path still works.

use lttng_coredump_engine::ActionKind;
use testsupport::attacker::{session_active, user_snapshot_session};
use testsupport::capi::{c_api, fire, Link};
use testsupport::users::TestUser;

#[test]
fn the_c_apis_socket_path_through_a_symlink_is_refused() {
    let mut victim = TestUser::create("lcdsec-capi-victim", false);
    victim.start_sessiond();
    let traces = victim.home.join("traces");
    user_snapshot_session(&victim, "victims", &traces);
    victim.set_trigger_in_own_daemon("victims", ActionKind::Stop);
    let attacker = TestUser::create("lcdsec-capi-attacker", false);
    let helper = c_api().helper(Link::Shared);
    let link = attacker.run_dir();
    let socket = link.join("client-lttng-sessiond");
    let _ = std::fs::remove_file(&link);
    attacker
        .command("ln")
        .arg("-s")
        .arg(victim.run_dir())
        .arg(&link)
        .status()
        .unwrap();

    // A root helper given the attacker's path (a crash of theirs) must not
    // act in the victim's daemon, as the victim or as anyone.
    for path in [&link, &socket] {
        let out = fire(
            helper,
            &["--socket", path.to_str().unwrap()],
            4242,
            "crashed",
        );
        assert!(out.ret < 0, "{}", out.raw);
        assert!(out.entries.is_empty(), "{}", out.raw);
        assert!(out.raw.contains("symbolic link"), "{}", out.raw);
        assert!(session_active(&victim, "victims"), "{}", out.raw);
    }
    // The same through the root daemon's run directory.
    std::fs::remove_file(&link).unwrap();
    attacker
        .command("ln")
        .args(["-s", "/var/run/lttng"])
        .arg(&link)
        .status()
        .unwrap();
    let out = fire(
        helper,
        &["--socket", socket.to_str().unwrap()],
        4242,
        "crashed",
    );
    assert!(out.ret < 0, "{}", out.raw);
    assert!(out.raw.contains("symbolic link"), "{}", out.raw);
    // The victim's own path, named by root, still works: no symlink, and
    // every directory is the victim's or root's and writable by nobody else.
    let out = fire(
        helper,
        &["--socket", victim.run_dir().to_str().unwrap()],
        4242,
        "crashed",
    );
    assert_eq!(out.ret, 0, "{}", out.raw);
    assert!(!session_active(&victim, "victims"), "{}", out.raw);
}
