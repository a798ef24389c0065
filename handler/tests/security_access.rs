//! Who may read what a crash leaves, and what root may be made to run,
//! against a real unprivileged user: a set-uid-root program that makes
//! itself dumpable again keeps its core root-only; the record a user may
//! read holds only what concerns that user; `install` refuses a handler
//! binary a user could replace. (Issue 10, items 5, 6 and 8.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testsupport::access::*;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::{ensure_sessiond, ensure_test_user, lttng, lttng_ok, unique_name, TempDir};

#[test]
fn a_set_uid_program_that_makes_itself_dumpable_keeps_its_core_root_only() {
    let dir = TempDir::new("lcdh-dumpable");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cores = dir.path().join("cores");
    let (uid, gid) = ensure_test_user("lcdh-h10-setuid", false);
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    // Something only root may read, which the program reads as root.
    let secret = dir.path().join("secret");
    let token = unique_name("root-only-secret");
    fs::write(&secret, &token).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let program = dir.path().join("setuid-dumpable");
    copy_executable(setuid_dumpable_path(), &program);
    fs::set_permissions(&program, fs::Permissions::from_mode(0o4755)).unwrap();
    let output = run_bounded(
        testsupport::crasher::command_as(uid, gid, &program).arg(&secret),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&cores, pid);
    // The kernel calls it dumpable for the invoking user...
    assert_eq!(record["dump_mode"], 1, "{record:#}");
    assert_eq!(record["uid"], uid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let core = PathBuf::from(record["core"]["path"].as_str().unwrap());
    // ...and its core holds what it read as root...
    let bytes = fs::read(&core).unwrap();
    assert!(
        bytes.windows(token.len()).any(|w| w == token.as_bytes()),
        "the secret is not in the core"
    );
    // ...so the user must not be able to read it.
    assert!(record["core"]["readable_by_uid"].is_null(), "{record:#}");
    assert!(acl_users(&core).is_empty(), "{:?}", acl_users(&core));
    assert!(!readable_by(uid, gid, &core), "the user can read the core");
    for name in names_in(&cores) {
        assert!(
            !readable_by(uid, gid, &cores.join(&name)),
            "the user can read {name}"
        );
    }
    assert!(
        record["errors"].to_string().contains("AT_SECURE")
            || record["log"].to_string().contains("AT_SECURE"),
        "the record does not say why: {record:#}"
    );
}

#[test]
fn the_record_a_user_may_read_holds_nothing_of_other_users() {
    let _daemon = ensure_sessiond();
    let dir = TempDir::new("lcdh-usercopy");
    let cores = dir.path().join("cores");
    let (uid, gid) = ensure_test_user("lcdh-h10-reader", false);
    // A root session the crash snapshots (a configured session): its name
    // and where its snapshots go are root's business.
    let session = unique_name("h10-root-private");
    let output = TempDir::new("lcdh-usercopy-traces");
    lttng_ok(&[
        "create",
        &session,
        "--snapshot",
        "-o",
        &output.path().display().to_string(),
    ]);
    struct Destroy(String);
    impl Drop for Destroy {
        fn drop(&mut self) {
            let _ = lttng(&["destroy", &self.0]);
        }
    }
    let _destroy = Destroy(session.clone());
    lttng_ok(&["enable-event", "-u", "-s", &session, "lttng_coredump:step"]);
    lttng_ok(&["start", &session]);
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(&cores, &format!("snapshot_sessions = [\"{session}\"]\n")),
    );
    let output_run = run_bounded(
        crasher_as(uid, gid).args([&unique_name("r"), "2", "segv"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output_run);
    let (record_path, record) = wait_for_record(&cores, pid);
    // Root's record has it all, and only root reads it.
    assert!(record.to_string().contains(&session), "{record:#}");
    assert!(!readable_by(uid, gid, &record_path));
    // The user has a copy about their crash, without root's session.
    let mut user_copies = 0;
    for name in names_in(&cores) {
        let path = cores.join(&name);
        if !readable_by(uid, gid, &path) {
            continue;
        }
        if name.ends_with(".json") {
            user_copies += 1;
            let text = fs::read_to_string(&path).unwrap();
            let copy: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(copy["pid"], pid, "{text}");
            assert_eq!(copy["core"]["path"], record["core"]["path"], "{text}");
            assert!(!text.contains(&session), "{name} shows {session}: {text}");
            assert!(
                !text.contains(&output.path().display().to_string()),
                "{name} shows root's snapshot path: {text}"
            );
        }
    }
    assert_eq!(user_copies, 1, "{:?}", names_in(&cores));
}

/// Files holding a fake `/proc/sys/kernel`, for `install` to write to.
fn fake_kernel(dir: &Path) -> PathBuf {
    let kernel = dir.join("kernel");
    fs::create_dir_all(&kernel).unwrap();
    fs::write(kernel.join("core_pattern"), "core\n").unwrap();
    fs::write(kernel.join("core_pipe_limit"), "0\n").unwrap();
    kernel
}

fn install_with(binary: &Path, kernel: &Path) -> (bool, String) {
    let output = run_bounded(
        Command::new(binary)
            .arg("install")
            .arg("--proc-sys-kernel")
            .arg(kernel)
            .arg("--backup")
            .arg(kernel.join("backup.json")),
        Duration::from_secs(60),
    );
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn install_refuses_a_handler_binary_a_user_could_replace() {
    let dir = TempDir::new("lcdh-install-owner");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (uid, gid) = ensure_test_user("lcdh-h10-install", false);
    let home = PathBuf::from("/home/lcdh-h10-install");

    // The user's own copy, run by root as `~user/lc install`.
    let users_copy = home.join("lc");
    copy_executable(handler_binary!(), &users_copy);
    std::os::unix::fs::chown(&users_copy, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(&users_copy, fs::Permissions::from_mode(0o755)).unwrap();
    let kernel = fake_kernel(dir.path());
    let (installed, said) = install_with(&users_copy, &kernel);
    let _ = fs::remove_file(&users_copy);
    assert!(!installed, "installed {users_copy:?}: {said}");
    assert!(said.contains(&users_copy.display().to_string()), "{said}");
    assert!(said.contains(&format!("owned by uid {uid}")), "{said}");
    assert_eq!(
        fs::read_to_string(kernel.join("core_pattern")).unwrap(),
        "core\n"
    );

    // Root's copy, in a directory its group may write to.
    let shared = dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    std::os::unix::fs::chown(&shared, Some(0), Some(gid)).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o775)).unwrap();
    let in_shared = shared.join("lc");
    copy_executable(handler_binary!(), &in_shared);
    let (installed, said) = install_with(&in_shared, &kernel);
    assert!(!installed, "installed {in_shared:?}: {said}");
    assert!(said.contains(&shared.display().to_string()), "{said}");
    assert!(said.contains("writable by group"), "{said}");
    assert_eq!(
        fs::read_to_string(kernel.join("core_pattern")).unwrap(),
        "core\n"
    );

    // Root's copy in root's directories (not /tmp: others may write
    // there, sticky or not) is installed.
    let (in_safe, config) = short_handler_copy(handler_binary!(), "");
    let (installed, said) = install_with(&in_safe, &kernel);
    let _ = fs::remove_file(&in_safe);
    let _ = fs::remove_file(&config);
    assert!(installed, "{said}");
    assert!(fs::read_to_string(kernel.join("core_pattern"))
        .unwrap()
        .starts_with(&format!("|{} handle", in_safe.display())));
}
