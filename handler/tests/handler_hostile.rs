//! The handler against crashes an attacker controls: hostile process
//! names, a user's crash (readable by that user only) and a set-uid crash
//! (root only), names planted in the core directory, and `%c` = 0.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testsupport::access::*;
use testsupport::core_file::*;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::{crasher_path, unique_name, TempDir};

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

#[test]
fn hostile_process_names_make_safe_file_names() {
    let dir = TempDir::new("lcdh-names");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let names: [&[u8]; 6] = [
        b"../../x",
        b"a\nb/c",
        b"..",
        b"\xff\xfe/..\x1b[31m",
        b"-rf *",
        b"name=with=eq",
    ];
    for name in names {
        let output = run_bounded(
            crasher_command().args([
                OsStr::new(&unique_name("n")),
                OsStr::new("1"),
                OsStr::new("segv"),
                OsStr::new("0"),
                OsStr::new("zero"),
                OsStr::from_bytes(name),
            ]),
            CRASH_TIMEOUT,
        );
        let pid = ready_pid(&output);
        let (record_path, record) = wait_for_record(&cores, pid);
        let expected_comm = String::from_utf8_lossy(&name[..name.len().min(15)]).into_owned();
        assert_eq!(record["process_name"], expected_comm.as_str(), "{record:#}");
        assert_eq!(record["core"]["complete"], true, "{record:#}");
        let core_path = Path::new(record["core"]["path"].as_str().unwrap()).to_path_buf();
        assert_eq!(core_path.parent().unwrap(), cores);
        assert_eq!(record_path.parent().unwrap(), cores);
        assert_safe_file_name(core_path.file_name().unwrap().to_str().unwrap());
        assert_safe_file_name(record_path.file_name().unwrap().to_str().unwrap());
        assert_eq!(elf_core_identity(&fs::read(&core_path).unwrap()).pid, pid);
    }
    // Nothing landed anywhere else.
    assert_eq!(names_in(dir.path()), ["cores"]);
    assert_eq!(names_in(&cores).len(), 2 * names.len());
}

#[test]
fn core_limit_zero_keeps_the_record_and_writes_no_core() {
    let dir = TempDir::new("lcdh-nolimit");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let mut child = Command::new("/bin/sh")
        .args(["-c", "ulimit -c 0; kill -s SEGV $$"])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let status = child.wait().unwrap();
    assert!(!status.success());
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core_limit"], 0);
    assert_eq!(record["core"]["saved"], false, "{record:#}");
    assert!(record["core"]["path"].is_null());
    assert!(
        record["core"]["not_saved_reason"]
            .as_str()
            .unwrap()
            .contains("core size limit is 0"),
        "{record:#}"
    );
    // The record and the snapshots are taken all the same.
    assert_eq!(record["process_identity"]["state"], "verified_by_pidfd");
    assert!(!record["fires"].as_array().unwrap().is_empty());
    let names = names_in(&cores);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".json"));
}

#[test]
fn a_users_core_is_readable_by_that_user_and_nobody_else() {
    let dir = TempDir::new("lcdh-user");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let output = run_bounded(
        crasher_as(NOBODY, NOGROUP).args([&unique_name("u"), "1", "segv"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (record_path, record) = wait_for_record(&cores, pid);
    assert_eq!(record["uid"], NOBODY);
    assert_eq!(record["dump_mode"], 1);
    assert_eq!(record["core"]["readable_by_uid"], NOBODY);
    let core_path = Path::new(record["core"]["path"].as_str().unwrap()).to_path_buf();
    // The user reads the core and their copy of the record; root's record
    // (it names whatever else the crash touched) stays root's.
    let user_copy = testsupport::handler::wait_for_user_copy(&record_path);
    for path in [&core_path, &user_copy] {
        let metadata = fs::metadata(path).unwrap();
        assert_eq!((metadata.uid(), metadata.gid()), (0, 0));
        // Owner rw, the ACL mask in the group bits, nothing for others.
        assert_eq!(mode_of(path), 0o640, "{}", path.display());
        assert_eq!(acl_users(path), [format!("{NOBODY}:r--")]);
        assert!(readable_by(NOBODY, NOGROUP, path), "{}", path.display());
        assert!(
            !readable_by(NOBODY - 1, NOGROUP, path),
            "{}",
            path.display()
        );
        assert!(
            !readable_by(NOBODY - 1, NOBODY - 1, path),
            "{}",
            path.display()
        );
    }
    assert_eq!(mode_of(&record_path), 0o600);
    assert!(acl_users(&record_path).is_empty());
    assert!(!readable_by(NOBODY, NOGROUP, &record_path));
}

/// Sets fs.suid_dumpable for a test and puts the old value back.
struct SuidDumpable(String);

const SUID_DUMPABLE: &str = "/proc/sys/fs/suid_dumpable";

impl SuidDumpable {
    fn set(value: &str) -> SuidDumpable {
        let old = fs::read_to_string(SUID_DUMPABLE).unwrap().trim().to_owned();
        fs::write(SUID_DUMPABLE, value).unwrap();
        SuidDumpable(old)
    }
}

impl Drop for SuidDumpable {
    fn drop(&mut self) {
        let _ = fs::write(SUID_DUMPABLE, &self.0);
    }
}

#[test]
fn a_set_uid_programs_core_is_readable_by_root_only() {
    let dir = TempDir::new("lcdh-setuid");
    fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cores = dir.path().join("cores");
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    // Taken under the core_pattern lock: only these tests change it.
    let _suid = SuidDumpable::set("2");
    let program = dir.path().join("setuid-crasher");
    copy_executable(crasher_path(), &program);
    fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    let output = run_bounded(
        traced_command_as(NOBODY, NOGROUP, &program).args([&unique_name("s"), "1", "segv"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (record_path, record) = wait_for_record(&cores, pid);
    assert_eq!(record["dump_mode"], 2, "{record:#}");
    assert_eq!(record["uid"], NOBODY);
    assert!(record["core"]["readable_by_uid"].is_null());
    assert_eq!(record["core"]["complete"], true);
    let core_path = Path::new(record["core"]["path"].as_str().unwrap()).to_path_buf();
    for path in [&core_path, &record_path] {
        assert_eq!(mode_of(path), 0o600, "{}", path.display());
        assert!(acl_users(path).is_empty(), "{}", path.display());
        assert!(!readable_by(NOBODY, NOGROUP, path), "{}", path.display());
    }
    drop(handler);
}

#[test]
fn names_planted_in_the_core_directory_are_never_followed() {
    let dir = TempDir::new("lcdh-planted");
    let cores = dir.path().join("cores");
    fs::create_dir(&cores).unwrap();
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    // A shell that waits, so its pid is known before it crashes.
    let mut child = Command::new("/bin/sh")
        .args(["-c", "ulimit -c unlimited; read line; kill -s SEGV $$"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Every name the core and its record could get in the next minute:
    // a symlink to the victim at the plain names, a FIFO at the first
    // suffixed core name (opening it would block the handler).
    for time in now - 1..now + 60 {
        let stem = format!("core.sh.{pid}.{time}");
        std::os::unix::fs::symlink(&victim, cores.join(&stem)).unwrap();
        std::os::unix::fs::symlink(&victim, cores.join(format!("{stem}.json"))).unwrap();
        let fifo = cores.join(format!("{stem}.1"));
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let deadline = std::time::Instant::now() + CRASH_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the crash never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The record is written after the process is let go (the crash report
    // comes first): wait for it, bounded.
    let record_deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !names_in(&cores).iter().any(|n| n.ends_with(".2.json"))
        && std::time::Instant::now() < record_deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let time = {
        let record_name = names_in(&cores)
            .into_iter()
            .find(|n| n.ends_with(".2.json"))
            .unwrap_or_else(|| {
                let unplanted: Vec<String> = names_in(&cores)
                    .into_iter()
                    .filter(|n| {
                        !fs::symlink_metadata(cores.join(n))
                            .unwrap()
                            .file_type()
                            .is_symlink()
                    })
                    .filter(|n| !n.ends_with(".1"))
                    .collect();
                let records: Vec<String> = unplanted
                    .iter()
                    .map(|n| fs::read_to_string(cores.join(n)).unwrap_or_default())
                    .collect();
                panic!("no record beside the suffixed core: {unplanted:?} {records:?}")
            });
        record_name.split('.').nth(3).unwrap().to_owned()
    };
    let stem = format!("core.sh.{pid}.{time}");
    let core_path = cores.join(format!("{stem}.2"));
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(cores.join(format!("{stem}.2.json"))).unwrap()).unwrap();
    assert_eq!(record["core"]["path"], core_path.to_str().unwrap());
    assert_eq!(record["core"]["complete"], true);
    assert!(fs::symlink_metadata(&core_path)
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(
        elf_core_identity(&fs::read(&core_path).unwrap()).pid,
        pid as i32
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn malformed_arguments_still_give_a_core_and_a_record_that_says_what_was_wrong() {
    let dir = TempDir::new("lcdh-badargs");
    let cores = dir.path().join("cores");
    let handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    // Missing fields, a non-numeric one, a stray word and an unknown key.
    handler.guard().set(&format!(
        "|{} handle --config {} P=%P u=x%u stray Q=%p e=%e",
        handler.binary.display(),
        handler.config.display()
    ));
    let output = run_bounded(
        crasher_command().args([&unique_name("b"), "1", "segv"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    assert!(record["uid"].is_null());
    assert!(record["signal"].is_null());
    let errors: Vec<&str> = record["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for expected in [
        "field u= is not a valid number: \"x0\"",
        "argument \"stray\" is not KEY=VALUE",
        "unknown field \"Q\" ignored",
        "field s= missing",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected:?} not in {errors:?}"
        );
    }
    assert_eq!(
        elf_core_identity(&fs::read(record["core"]["path"].as_str().unwrap()).unwrap()).pid,
        pid
    );
}
