//! Socket mode through the real kernel: `lttng-coredump serve` listens on
//! its socket, core_pattern is `@@SOCKET` (the request protocol) or
//! `@SOCKET`, a traced program crashes, and the core, the snapshot and the
//! crash record the service leaves are checked, as is what the kernel did
//! (the wait status says whether it dumped a core). Also: a core that would
//! be refused anyway is rejected before the kernel dumps a byte of it; a
//! client that is not the kernel makes the service write and fire nothing;
//! a crash inside a private mount namespace still reaches the service.

use lttng_ctl::{
    BufferType, ChannelBuilder, Domain, EventBuilder, Session, SessionBuilder, SessionOutput,
};
use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::core_file::*;
use testsupport::handler::*;
use testsupport::recover::{find_metadata, metadata_uuid};
use testsupport::service::*;
use testsupport::{
    babeltrace_events, crasher_command, crasher_path, ensure_sessiond, fixture_seqs, unique_name,
    TempDir,
};
use testsupport::{handler_binary, ready_pid, run_bounded};

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

/// A started snapshot session tracing the crasher fixture into `out`;
/// destroyed when dropped.
struct TracedSession {
    session: Session,
    name: String,
    _sessiond: testsupport::RootSessiondUse,
}

impl TracedSession {
    fn start(out: &Path) -> TracedSession {
        let sessiond = ensure_sessiond();
        let name = unique_name("sock");
        let session = SessionBuilder::new(&name)
            .snapshot()
            .output(SessionOutput::Local(out.to_path_buf()))
            .create()
            .expect("creating the session");
        let traced = TracedSession {
            session,
            name,
            _sessiond: sessiond,
        };
        let channel = ChannelBuilder::new("crash", Domain::UserSpace)
            .overwrite()
            .buffer_type(BufferType::PerUid)
            .subbuf_size(64 * 1024)
            .num_subbuf(4)
            .enable(&traced.session)
            .expect("enabling the channel");
        EventBuilder::named("lttng_coredump:step")
            .enable(&traced.session, &channel)
            .expect("enabling the fixture's events");
        testsupport::sessions::track_only_uid(&traced.name, 0);
        traced.session.start().expect("starting the session");
        traced
    }
}

impl Drop for TracedSession {
    fn drop(&mut self) {
        let _ = self.session.destroy();
    }
}

fn crash_with(command: &mut Command) -> (i32, Output) {
    let output = run_bounded(
        command.env(
            "LTTNG_UST_REGISTER_TIMEOUT",
            testsupport::crasher::REGISTER_TIMEOUT_MS,
        ),
        CRASH_TIMEOUT,
    );
    assert!(!output.status.success(), "{output:?}");
    (ready_pid(&output), output)
}

fn crash_as_root(tag: &str, args: &[&str]) -> (i32, Output) {
    crash_with(crasher_command().arg(tag).args(args))
}

fn stage(record: &Value, name: &str, end: &str) -> u64 {
    record["stages"][name][end]
        .as_u64()
        .unwrap_or_else(|| panic!("{record:#}"))
}

/// The checks every saved socket-mode crash passes.
fn assert_saved_crash(record: &Value, pid: i32, output: &Output) -> PathBuf {
    assert_eq!(record["pid"], pid, "{record:#}");
    assert_eq!(record["uid"], 0);
    assert_eq!(record["gid"], 0);
    assert_eq!(record["dump_mode"], 1);
    // Told by the process's wait status once it was let go (before Linux
    // 6.19 the kernel does not say it earlier).
    assert_eq!(record["signal"]["number"], 11, "{record:#}");
    assert_eq!(record["process_name"], "crasher");
    assert_eq!(
        record["exe_path"],
        fs::canonicalize(crasher_path()).unwrap().to_str().unwrap()
    );
    assert_eq!(
        record["process_identity"]["state"], "verified_by_pidfd",
        "{record:#}"
    );
    assert_eq!(record["core"]["saved"], true, "{record:#}");
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    // The snapshots ended before the first byte of the core was read.
    assert!(
        stage(record, "snapshots", "ended_unix_us") <= stage(record, "core", "started_unix_us")
    );
    let core = PathBuf::from(record["core"]["path"].as_str().unwrap());
    let bytes = fs::read(&core).unwrap();
    assert_eq!(bytes.len() as u64, record["core"]["size"].as_u64().unwrap());
    assert_eq!(record["core"]["bytes_received"], record["core"]["size"]);
    let identity = elf_core_identity(&bytes);
    assert_eq!(identity.pid, pid, "the core is the crashed process's");
    assert!(
        core_dumped(&output.status),
        "the kernel dumped: {:?}",
        output.status
    );
    core
}

#[test]
fn a_crash_through_the_request_protocol_is_snapshotted_while_held_and_its_core_saved() {
    let dir = TempDir::new("lcds-req");
    let cores = dir.path().join("cores");
    let out = dir.path().join("snapshots");
    let traced = TracedSession::start(&out);
    let handler = SocketHandler::new(
        handler_binary!(),
        dir.path(),
        &config_for(
            &cores,
            &format!("snapshot_sessions = [\"{}\"]", traced.name),
        ),
        "@@",
    );
    let tag = unique_name("r");
    let (pid, output) = crash_as_root(&tag, &["20", "segv", "8", "random"]);
    let (_, record) = wait_for_record(&cores, pid);
    assert_saved_crash(&record, pid, &output);
    // The snapshot, named after the crash, holds the crasher's events.
    let entry = record["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["session"] == traced.name.as_str())
        .unwrap_or_else(|| panic!("no snapshot of {}: {record:#}", traced.name));
    assert!(entry["error"].is_null(), "{entry:#}");
    let path = PathBuf::from(entry["path"].as_str().unwrap());
    let events = babeltrace_events(&path);
    assert_eq!(fixture_seqs(&events, &tag), (0..20).collect::<Vec<i64>>());
    // The service checked the saved core as the pipe handler does: it holds
    // the session's buffers (the trace the snapshot's metadata names), and
    // since the snapshot was taken the trace is not only in the core.
    let section = &record["core_trace"];
    assert_eq!(section["checked"], true, "{section:#}");
    assert_eq!(section["only_in_core"], false, "{section:#}");
    let metadata =
        find_metadata(&path, None).unwrap_or_else(|| panic!("no metadata in {}", path.display()));
    let uuid = metadata_uuid(&metadata);
    assert!(
        section["traces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["uuid"] == uuid.as_str() && t["packets"].as_u64() > Some(0)),
        "no trace {uuid} in {section:#}"
    );
    assert!(stage(&record, "core_trace", "ended_unix_us") > 0);
    drop(handler);
}

#[test]
fn a_crash_through_the_plain_socket_is_saved() {
    let dir = TempDir::new("lcds-plain");
    let cores = dir.path().join("cores");
    let _handler = SocketHandler::new(handler_binary!(), dir.path(), &config_for(&cores, ""), "@");
    let (pid, output) = crash_as_root(&unique_name("p"), &["1", "segv", "4", "zero"]);
    let (_, record) = wait_for_record(&cores, pid);
    let core = assert_saved_crash(&record, pid, &output);
    // Zero pages are holes in the saved file.
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(&core).unwrap();
    assert!(metadata.blocks() * 512 < metadata.len(), "{metadata:?}");
}

#[test]
fn a_core_that_would_be_refused_is_rejected_before_the_kernel_dumps_a_byte() {
    let dir = TempDir::new("lcds-reject");
    let cores = dir.path().join("cores");
    let _handler = SocketHandler::new(
        handler_binary!(),
        dir.path(),
        &config_for(&cores, "max_cores_per_minute = 1"),
        "@@",
    );
    // The first core of the minute is kept; the second is over the limit.
    let (first, output) = crash_as_root(&unique_name("j"), &["1", "segv"]);
    assert_saved_crash(&wait_for_record(&cores, first).1, first, &output);
    let (second, output) = crash_as_root(&unique_name("j"), &["1", "segv"]);
    let (_, record) = wait_for_record(&cores, second);
    assert_eq!(record["core"]["saved"], false, "{record:#}");
    assert_eq!(record["core"]["bytes_received"], 0, "{record:#}");
    assert!(record["core"]["not_saved_reason"]
        .as_str()
        .unwrap()
        .starts_with("rate limit: 1 cores of crasher"));
    assert!(!record["fires"].as_array().unwrap().is_empty());
    // REJECT: the kernel dumped nothing (no core flag in the wait status).
    assert!(!core_dumped(&output.status), "{:?}", output.status);

    // RLIMIT_CORE 0 (the pipe's %c = 0), which an unprivileged process
    // cannot raise again: rejected too, record written.
    let (third, output) = crash_with(
        testsupport::crasher::command_as(NOBODY, NOGROUP, "prlimit")
            .args(["--core=0:0", "--"])
            .arg(crasher_path())
            .args([&unique_name("z"), "1", "segv"]),
    );
    let (_, record) = wait_for_record(&cores, third);
    assert_eq!(record["uid"], NOBODY);
    assert_eq!(record["core_limit"], 0, "{record:#}");
    assert_eq!(record["core"]["saved"], false, "{record:#}");
    assert_eq!(record["core"]["bytes_received"], 0, "{record:#}");
    assert!(!core_dumped(&output.status), "{:?}", output.status);
    // One core file in all: the first crash's.
    let names = names_in(&cores);
    let core_files: Vec<&String> = names.iter().filter(|n| !n.ends_with(".json")).collect();
    assert_eq!(core_files.len(), 1, "{names:?}");
    for pid in [first, second, third] {
        let needle = format!(".{pid}.");
        assert!(
            names
                .iter()
                .any(|n| n.contains(&needle) && n.ends_with(".json")),
            "no record of {pid}: {names:?}"
        );
    }
}

#[test]
fn an_unprivileged_users_crash_is_told_by_its_pidfd_and_its_core_readable_by_that_user_only() {
    let dir = TempDir::new("lcds-user");
    let cores = dir.path().join("cores");
    let _handler = SocketHandler::new(handler_binary!(), dir.path(), &config_for(&cores, ""), "@@");
    let (pid, output) = crash_with(
        testsupport::crasher::command_as(NOBODY, NOGROUP, crasher_path()).args([
            &unique_name("u"),
            "1",
            "segv",
        ]),
    );
    assert!(core_dumped(&output.status), "{:?}", output.status);
    let (record_path, record) = wait_for_record(&cores, pid);
    // From PIDFD_GET_INFO: the uid, the gid and the dump mode.
    assert_eq!(record["uid"], NOBODY, "{record:#}");
    assert_eq!(record["gid"], NOGROUP);
    assert_eq!(record["dump_mode"], 1);
    assert_eq!(record["process_identity"]["state"], "verified_by_pidfd");
    assert_eq!(record["core"]["readable_by_uid"], NOBODY, "{record:#}");
    let core = PathBuf::from(record["core"]["path"].as_str().unwrap());
    // The user reads the core and their copy of the record; root's record
    // stays root's.
    let user_copy = testsupport::handler::wait_for_user_copy(&record_path);
    for path in [&core, &user_copy] {
        assert_eq!(
            testsupport::access::acl_users(path),
            [format!("{NOBODY}:r--")]
        );
        assert!(testsupport::access::readable_by(NOBODY, NOGROUP, path));
        assert!(!testsupport::access::readable_by(NOBODY - 1, NOGROUP, path));
    }
    assert!(!testsupport::access::readable_by(
        NOBODY,
        NOGROUP,
        &record_path
    ));
}

#[test]
fn a_crash_with_no_room_left_is_rejected_before_the_kernel_dumps_a_byte() {
    let dir = TempDir::new("lcds-noroom");
    // A 2 MiB file system filled but for 128 KiB: less than the room kept
    // for crash records, so no room for any core, and room for its record.
    let mount = testsupport::tmpfs::Tmpfs::mount(&dir.path().join("small"), "size=2m,mode=0755");
    fs::write(mount.0.join("filler"), vec![1u8; (2 << 20) - (128 << 10)]).unwrap();
    let cores = mount.0.join("cores");
    let _handler = SocketHandler::new(handler_binary!(), dir.path(), &config_for(&cores, ""), "@@");
    let (pid, output) = crash_as_root(&unique_name("n"), &["1", "segv"]);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["saved"], false, "{record:#}");
    assert_eq!(record["core"]["bytes_received"], 0, "{record:#}");
    assert!(record["core"]["not_saved_reason"]
        .as_str()
        .unwrap()
        .starts_with("no room in"));
    assert!(!core_dumped(&output.status), "{:?}", output.status);
    assert_eq!(names_in(&cores).len(), 1, "{:?}", names_in(&cores));
}

#[test]
fn a_client_that_is_not_the_kernel_makes_the_service_write_and_fire_nothing() {
    let dir = TempDir::new("lcds-fake");
    let cores = dir.path().join("cores");
    let handler = SocketHandler::new(handler_binary!(), dir.path(), &config_for(&cores, ""), "@@");
    let socket = handler.service.socket.clone();

    // Root, but not the kernel: a fake core, then a fake request.
    for fake in [
        b"\x7fELF\x02\x01\x01fake core".to_vec(),
        [16u32.to_ne_bytes(), 16u32.to_ne_bytes()]
            .concat()
            .into_iter()
            .chain(0xfu64.to_ne_bytes())
            .collect(),
    ] {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let _ = stream.write_all(&fake);
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(
            answer.starts_with("lttng-coredump serve") && answer.contains("not a crash"),
            "{answer:?}"
        );
    }
    // An unprivileged user cannot even connect (0600 in a 0700 directory).
    let connect = testsupport::crasher::command_as(NOBODY, NOGROUP, "/usr/bin/python3")
        .args([
            "-c",
            "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])",
        ])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(!connect.status.success());
    assert!(
        String::from_utf8_lossy(&connect.stderr).contains("Permission denied"),
        "{connect:?}"
    );
    // Nothing was written for them (the core directory was never made).
    assert!(names_in(&cores).is_empty(), "{:?}", names_in(&cores));
    // And a real crash right after is handled.
    let (pid, output) = crash_as_root(&unique_name("f"), &["1", "segv"]);
    assert_saved_crash(&wait_for_record(&cores, pid).1, pid, &output);
    assert_eq!(names_in(&cores).len(), 2);
}

#[test]
fn a_crash_inside_a_private_mount_namespace_reaches_the_service() {
    let dir = TempDir::new("lcds-mntns");
    let cores = dir.path().join("cores");
    let _handler = SocketHandler::new(handler_binary!(), dir.path(), &config_for(&cores, ""), "@@");
    // /run, where the socket is, is hidden by an empty tmpfs in there: the
    // kernel finds the socket from the initial namespace's root.
    let (pid, output) = crash_with(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg("mount -t tmpfs none /run && exec \"$0\" \"$@\"")
            .arg(crasher_path())
            .args([&unique_name("m"), "1", "segv"]),
    );
    let (_, record) = wait_for_record(&cores, pid);
    assert_saved_crash(&record, pid, &output);
}

/// Decompresses `path` with the zstd tool.
fn unzstd(path: &Path) -> Vec<u8> {
    let output = Command::new("zstd")
        .args(["-q", "-d", "-c"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run zstd (apt-get install -y zstd): {e}"));
    assert!(output.status.success(), "{output:?}");
    output.stdout
}

#[test]
fn with_zstd_the_core_is_compressed_after_the_process_is_let_go() {
    let dir = TempDir::new("lcds-zstd");
    let cores = dir.path().join("cores");
    let _handler = SocketHandler::new(
        handler_binary!(),
        dir.path(),
        &config_for(&cores, "compression = \"zstd\""),
        "@@",
    );
    let (pid, output) = crash_as_root(&unique_name("c"), &["1", "segv", "16", "zero"]);
    assert!(core_dumped(&output.status));
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["compression"], "zstd", "{record:#}");
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    let path = PathBuf::from(record["core"]["path"].as_str().unwrap());
    assert!(path.to_str().unwrap().ends_with(".zst"), "{record:#}");
    // Read to its end, let go, then compressed.
    assert!(
        stage(&record, "core", "ended_unix_us") <= stage(&record, "compression", "started_unix_us")
    );
    assert!(
        stage(&record, "compression", "started_unix_us")
            <= stage(&record, "compression", "ended_unix_us")
    );
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        record["core"]["stored_bytes"].as_u64().unwrap()
    );
    let core = unzstd(&path);
    assert_eq!(core.len() as u64, record["core"]["size"].as_u64().unwrap());
    assert_eq!(elf_core_identity(&core).pid, pid);
    // Only the compressed core and its record are left.
    let names = names_in(&cores);
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_service_killed_while_compressing_leaves_the_raw_core_whole() {
    let dir = TempDir::new("lcds-zstdkill");
    let cores = dir.path().join("cores");
    // Level 19 on a large incompressible core takes minutes: the service
    // is certainly still compressing when it is killed.
    let mut handler = SocketHandler::new(
        handler_binary!(),
        dir.path(),
        &config_for(&cores, "compression = \"zstd\"\nzstd_level = 19"),
        "@@",
    );
    let (pid, output) = crash_as_root(&unique_name("k"), &["1", "segv", "256", "random"]);
    assert!(core_dumped(&output.status), "{:?}", output.status);
    let raw_name = |pid: i32| {
        names_in(&cores)
            .into_iter()
            .find(|name| name.contains(&format!(".{pid}.")) && !name.ends_with(".json"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while raw_name(pid).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            names_in(&cores)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handler.service.signal_and_wait(libc::SIGKILL);
    let names = names_in(&cores);
    assert_eq!(names.len(), 1, "{names:?}");
    let name = raw_name(pid).unwrap();
    assert!(!name.ends_with(".zst"), "{name}");
    let raw = fs::read(cores.join(&name)).unwrap();
    assert_eq!(elf_core_identity(&raw).pid, pid);
    assert_eq!(
        raw.len() as u64,
        elf_core_extent(&raw),
        "the raw core is whole"
    );
}
