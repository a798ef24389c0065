//! Root's crash tools over a record that names a snapshot directory on the
//! crashing user's own FUSE file system, which never answers (issue 17):
//! the path came from the user's session daemon, so the user chose it. A
//! `stat` there waits for good (once the file system has read the request,
//! not even SIGKILL ends it), so root's `list` and `info` never look at it
//! themselves: a child acting as the user does, within a bound, and the
//! tools say they could not tell. Played by a real unprivileged user with
//! the real never-answering file system (`tests/fixtures/hangfs.c`),
//! mounted `allow_other` (which `/etc/fuse.conf`'s `user_allow_other` lets
//! a user ask for): root reaches it, and would wait on it.

use lttng_coredump_engine::FireReport;
use lttng_coredump_handler::store::record::{
    CoreSection, CrashRecord, Crashed, DaemonFire, Identity, SnapshotEntry, FORMAT,
};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testsupport::attacker::{AttackerLog, HangingMount, UserAllowOther};
use testsupport::handler_binary;
use testsupport::users::TestUser;
use testsupport::TempDir;

/// What a tool may take: the look's bound (10 s) and the rest, on a
/// loaded machine; a tool that waited on the file system never ends.
const BOUND: Duration = Duration::from_secs(90);

/// A crash record of `uid`'s program, its core saved in `cores`, its
/// snapshots `snapshots` (daemon, path).
fn plant(cores: &Path, pid: i32, uid: u32, snapshots: &[(&str, &Path)]) {
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let core = cores.join(format!("core.prog.{pid}.{time}"));
    fs::write(&core, vec![7u8; 4096]).unwrap();
    let record = CrashRecord {
        format: FORMAT.into(),
        crashed: Crashed {
            pid: Some(pid),
            uid: Some(uid),
            gid: Some(uid),
            time: Some(time),
            process_name: Some("prog".into()),
            exe_path: Some("/opt/t/prog".into()),
            process_identity: Identity::VerifiedByPidfd,
            ..Crashed::default()
        },
        core: CoreSection {
            saved: true,
            path: Some(core.display().to_string()),
            size: 4096,
            stored_bytes: 4096,
            bytes_received: 4096,
            compression: "none".into(),
            complete: true,
            ..CoreSection::default()
        },
        snapshots: snapshots
            .iter()
            .map(|(daemon, path)| SnapshotEntry {
                daemon: daemon.to_string(),
                session: "s".into(),
                action: "snapshot".into(),
                path: Some(path.display().to_string()),
                ..SnapshotEntry::default()
            })
            .collect(),
        fires: vec![DaemonFire {
            daemon: "root".into(),
            report: Some(FireReport::default()),
            ..DaemonFire::default()
        }],
        ..CrashRecord::default()
    };
    fs::write(
        core.with_file_name(format!("core.prog.{pid}.{time}.json")),
        record.to_json(),
    )
    .unwrap();
}

/// Runs the tool as root; a tool still running at [`BOUND`] fails the
/// test (after the file system is aborted, so that it can end), as does
/// one that fails.
fn tool(args: &[&str], mount: &HangingMount) -> Output {
    let output = tool_ending(args, mount);
    assert!(output.status.success(), "{args:?}: {output:?}");
    output
}

/// [`tool`], whatever its exit status.
fn tool_ending(args: &[&str], mount: &HangingMount) -> Output {
    let mut child = Command::new(handler_binary!())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + BOUND;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            mount.abort();
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("{args:?} still running after {BOUND:?}: {output:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn roots_list_and_info_never_wait_on_a_snapshot_path_on_a_users_file_system_that_never_answers() {
    let _allow_other = UserAllowOther::enable();
    let dir = TempDir::new("lcdsp");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    fs::set_permissions(&cores, fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config.toml");
    fs::write(&config, format!("core_dir = \"{}\"\n", cores.display())).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let config_arg = config.to_str().unwrap();

    let log = AttackerLog::new("lcdsp");
    let user = TestUser::create("lcdsp-fuse", false);
    let mount = HangingMount::mount_with(&user, &user.home.join("fuse"), &log.path("held"), true);
    // The user's crash: their daemon's snapshot on their file system.
    let hanging: PathBuf = mount.mountpoint.join("snapshot-1");
    let user_daemon = format!("user {}", user.uid);
    plant(&cores, 201, user.uid, &[(&user_daemon, &hanging)]);
    // Root's crashes: a snapshot still there, and one gone.
    let present = dir.path().join("snapshot-present");
    fs::create_dir(&present).unwrap();
    plant(&cores, 202, 0, &[("root", &present)]);
    plant(
        &cores,
        203,
        0,
        &[("root", &dir.path().join("snapshot-gone"))],
    );

    // list: the user's trace cannot be told; root's can.
    let output = tool(&["list", "--config", config_arg, "--no-legend"], &mount);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let trace_of = |pid: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(3) == Some(pid))
            .unwrap_or_else(|| panic!("no crash {pid} in {text}"));
        // TIME is three words (date, time, zone), then PID UID SIG CORE SIZE.
        line.split_whitespace().nth(8).unwrap().to_string()
    };
    assert_eq!(trace_of("201"), "?", "{text}");
    assert_eq!(trace_of("202"), "yes", "{text}");
    assert_eq!(trace_of("203"), "no", "{text}");
    // The look reached the file system, which holds it: it was done by a
    // child, which root did not wait for.
    assert!(mount.holds_a_request());

    // info, as text and JSON.
    let output = tool(&["info", "--config", config_arg, "201"], &mount);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        text.contains(&format!(
            "{}/snapshot-1 (not known whether it is still there",
            mount.mountpoint.display()
        )),
        "{text}"
    );
    let output = tool(
        &["info", "--config", config_arg, "--json=short", "201"],
        &mount,
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["trace_present"], Value::Null, "{json:#}");
    let output = tool(
        &["info", "--config", config_arg, "--json=short", "202"],
        &mount,
    );
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["trace_present"], true, "{json:#}");

    // status reads the records too (and warns: nothing is installed).
    let output = tool_ending(
        &[
            "status",
            "--config",
            config_arg,
            "--backup",
            dir.path().join("none.bkp").to_str().unwrap(),
        ],
        &mount,
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("cores go to:"),
        "{output:?}"
    );
    drop(mount);
}
