//! Hostile input the other handler tests leave out: executable paths with
//! control characters, invalid UTF-8 and 255-byte names (through the real
//! kernel); argument lists of the wrong length, repeated options and
//! 255-byte fields (the handler run as the kernel runs it); and a symlink,
//! a FIFO or a directory of another user planted where the core directory
//! itself should be.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testsupport::attacker::errors as error_lines;
use testsupport::core_file::*;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::{crasher_path, root_triggers_lock, unique_name, TempDir};

const NOBODY: u32 = 65534;

#[test]
fn executable_paths_with_control_characters_invalid_utf8_and_255_bytes_are_recorded_safely() {
    let dir = TempDir::new("lcdsec-exe");
    let cores = dir.path().join("cores");
    let _handler = InstalledHandler::new(handler_binary!(), &config_for(&cores, ""));
    let programs = dir.path().join("programs");
    fs::create_dir(&programs).unwrap();
    // The longest file name Linux allows, with a newline, an escape
    // sequence, invalid UTF-8, spaces, `=` and `!` (the kernel's `/`).
    let mut long = b"x\n\x1b[31m \xff\xfe=!..".to_vec();
    long.resize(255, b'z');
    let names: [Vec<u8>; 3] = [long, b"new\nline \xc3\x28".to_vec(), b"-rf *".to_vec()];
    for name in &names {
        let program = programs.join(OsStr::from_bytes(name));
        copy_executable(crasher_path(), &program);
        let output = run_bounded(
            Command::new(&program).args([&unique_name("x"), "1", "segv"]),
            CRASH_TIMEOUT,
        );
        let pid = ready_pid(&output);
        let (record_path, record) = wait_for_record(&cores, pid);
        assert_eq!(record["core"]["complete"], true, "{record:#}");
        assert_eq!(record["process_identity"]["state"], "verified_by_pidfd");
        // The record has the path as it is (JSON escapes it), with U+FFFD
        // for what is not UTF-8.
        let expected = String::from_utf8_lossy(program.as_os_str().as_bytes()).into_owned();
        assert_eq!(record["exe_path"], expected.as_str(), "{record:#}");
        assert_eq!(record["cmdline"][0], expected.as_str());
        // The kernel names the process after the first 15 bytes.
        let comm = String::from_utf8_lossy(&name[..name.len().min(15)]).into_owned();
        assert_eq!(record["process_name"], comm.as_str());
        let core_path = PathBuf::from(record["core"]["path"].as_str().unwrap());
        assert_eq!(core_path.parent().unwrap(), cores);
        assert_safe_file_name(core_path.file_name().unwrap().to_str().unwrap());
        assert_safe_file_name(record_path.file_name().unwrap().to_str().unwrap());
        assert_eq!(elf_core_identity(&fs::read(&core_path).unwrap()).pid, pid);
    }
    assert_eq!(names_in(&cores).len(), 2 * names.len());
}

/// Runs the handler as the kernel does (stdin the core, no terminal, an
/// empty environment, cwd `/`) with `fields` after `handle --config`.
fn run_handler(binary: &Path, config: &Path, fields: &[OsString], core: &[u8]) -> i32 {
    let mut child = Command::new(binary)
        .arg("handle")
        .arg("--config")
        .arg(config)
        .args(fields)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(core).unwrap();
    let deadline = std::time::Instant::now() + CRASH_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(std::time::Instant::now() < deadline, "the handler hung");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn field(key: &str, value: &[u8]) -> OsString {
    let mut bytes = format!("{key}=").into_bytes();
    bytes.extend_from_slice(value);
    OsString::from_vec(bytes)
}

/// The one record in `dir`, and the core it names.
fn only_record(dir: &Path) -> (String, serde_json::Value) {
    let names = names_in(dir);
    let records: Vec<&String> = names.iter().filter(|n| n.ends_with(".json")).collect();
    assert_eq!(records.len(), 1, "{names:?}");
    let record = serde_json::from_slice(&fs::read(dir.join(records[0])).unwrap()).unwrap();
    (records[0].clone(), record)
}

#[test]
fn wrong_argument_lists_and_255_byte_fields_still_save_the_core() {
    let dir = TempDir::new("lcdsec-args");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (binary, config) = short_handler_copy(handler_binary!(), "");
    let core: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 + 1).collect();
    let mut long_name = b"../../etc/\n\x1b\xff".to_vec();
    long_name.resize(255, b'/');
    // The PID the handler is handed is a process of this test's own.
    let stand_in = StandIn::start();
    let pid = stand_in.pid().to_string();
    // The kernel's form (a P= field, see crash::context::is_kernel_form),
    // however malformed the rest.
    let mut many: Vec<OsString> = (0..500)
        .map(|i| field("Z", &[b'a'; 64][..i % 64]))
        .collect();
    many.insert(250, field("P", pid.as_bytes()));
    let cases: Vec<(&str, Vec<OsString>, &str)> = vec![
        ("empty-pid", vec![field("P", b"")], "field P= has no number"),
        (
            "only-pid",
            vec![field("P", pid.as_bytes())],
            "field u= missing",
        ),
        (
            "long",
            vec![
                field("P", pid.as_bytes()),
                field("e", &long_name),
                field("E", &long_name),
                field("h", &long_name),
                field("t", b"1700000000"),
            ],
            "field u= missing",
        ),
        ("many", many, "unknown field \"Z\""),
        (
            "repeated",
            vec![
                OsString::from("--config"),
                OsString::from("/etc/passwd"),
                field("P", b"-1"),
                field("P", pid.as_bytes()),
                field("c", b"99999999999999999999999"),
                field("s", b"\xff"),
                OsString::from("="),
            ],
            "--config after the first argument ignored",
        ),
    ];
    // A fire runs the root daemon's OnAnyCoreDump triggers.
    let _triggers = root_triggers_lock();
    for (label, fields, expected_error) in cases {
        let cores = dir.path().join(label);
        fs::write(&config, config_for(&cores, "")).unwrap();
        let status = run_handler(&binary, &config, &fields, &core);
        assert_eq!(status, 0, "{label}: the handler lost the core");
        let (record_name, record) = only_record(&cores);
        assert_safe_file_name(&record_name);
        assert_eq!(record["core"]["complete"], true, "{label}: {record:#}");
        let core_path = PathBuf::from(record["core"]["path"].as_str().unwrap());
        assert_eq!(core_path.parent().unwrap(), cores);
        assert_safe_file_name(core_path.file_name().unwrap().to_str().unwrap());
        assert_eq!(fs::read(&core_path).unwrap(), core, "{label}");
        let errors = error_lines(&record);
        assert!(
            errors.contains(expected_error),
            "{label}: {expected_error:?} not in {:?}",
            &errors[..errors.len().min(2000)]
        );
    }
    drop(stand_in);
    let _ = fs::remove_file(&binary);
    let _ = fs::remove_file(&config);
}

/// `handle` with arguments that are not the kernel's (no `P=` field), run
/// as cron, ssh or a CI job would (stdin a pipe holding bytes, no
/// terminal): its usage and exit status 2, and nothing done: no core
/// directory made, no core, no record (the same arguments with a `P=` field
/// save the core: the test above).
#[test]
fn handle_without_the_kernels_p_field_prints_its_usage_and_handles_nothing() {
    let dir = TempDir::new("lcdsec-notkernel");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config.toml");
    let cores = dir.path().join("cores");
    fs::write(&config, config_for(&cores, "")).unwrap();
    let many: Vec<OsString> = (0..500).map(|_| field("Z", b"1")).collect();
    // Each after the test's own --config: were it handled as a crash, it
    // would land in the test's core directory, never the machine's.
    let cases: Vec<Vec<OsString>> = vec![
        vec![],
        vec![OsString::from("--help")],
        vec![OsString::from("-h")],
        vec![field("u", b"0"), field("g", b"0"), field("s", b"11")],
        vec![field("p", b"1"), field("e", b"P=1")],
        many,
    ];
    for mut fields in cases {
        fields.splice(0..0, [OsString::from("--config"), config.clone().into()]);
        let output = run_bounded(
            Command::new("sh")
                .arg("-c")
                .arg("printf 'not a core' | \"$0\" handle \"$@\"")
                .arg(handler_binary!())
                .args(&fields)
                .env_clear()
                .current_dir("/"),
            CRASH_TIMEOUT,
        );
        assert_eq!(output.status.code(), Some(2), "{fields:?}: {output:?}");
        let usage = String::from_utf8_lossy(&output.stderr);
        assert!(
            usage.contains("usage: lttng-coredump handle") && usage.contains("P="),
            "{fields:?}: {usage}"
        );
        assert!(!cores.exists(), "{fields:?} made {}", cores.display());
    }
}

fn as_nobody(args: &[&OsStr]) {
    let status = testsupport::crasher::command_as(NOBODY, NOBODY, args[0])
        .args(&args[1..])
        .status()
        .unwrap();
    assert!(status.success(), "{args:?} as nobody");
}

#[test]
fn a_symlink_fifo_or_foreign_directory_planted_as_the_core_directory_is_refused() {
    // /tmp is where another user can plant a name: sticky and world-writable.
    let attacker = TempDir::new("lcdsec-attacker");
    fs::set_permissions(attacker.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let loot = attacker.path().join("loot");
    as_nobody(&[OsStr::new("mkdir"), loot.as_os_str()]);
    let planted: Vec<(PathBuf, &str)> = vec![
        (
            std::env::temp_dir().join(unique_name("lcdsec-link")),
            "symlink",
        ),
        (
            std::env::temp_dir().join(unique_name("lcdsec-fifo")),
            "fifo",
        ),
        (std::env::temp_dir().join(unique_name("lcdsec-dir")), "dir"),
    ];
    for (path, kind) in &planted {
        match *kind {
            "symlink" => as_nobody(&[
                OsStr::new("ln"),
                OsStr::new("-s"),
                loot.as_os_str(),
                path.as_os_str(),
            ]),
            "fifo" => as_nobody(&[OsStr::new("mkfifo"), path.as_os_str()]),
            _ => as_nobody(&[OsStr::new("mkdir"), path.as_os_str()]),
        }
    }
    let handler = InstalledHandler::new(handler_binary!(), "");
    let mut cleanup = DefaultDirCleanup(Vec::new());
    for (path, kind) in &planted {
        handler.set_config(&config_for(path, ""));
        let output = run_bounded(
            crasher_command().args([&unique_name("p"), "1", "segv"]),
            CRASH_TIMEOUT,
        );
        let pid = ready_pid(&output);
        cleanup.0.push(pid);
        let (_, record) = wait_for_record(Path::new(DEFAULT_CORE_DIR), pid);
        assert_eq!(record["core"]["complete"], true, "{kind}: {record:#}");
        let errors = error_lines(&record);
        let refusal = match *kind {
            "dir" => "is owned by uid 65534",
            _ => "is a symlink or not a directory",
        };
        assert!(errors.contains(refusal), "{kind}: {errors}");
        assert!(
            errors.contains("using the default core directory"),
            "{errors}"
        );
    }
    // Nothing landed where the attacker could read or swap it.
    assert!(names_in(&loot).is_empty());
    assert!(names_in(&planted[2].0).is_empty());
    for (path, _) in &planted {
        let _ = fs::remove_file(path);
        let _ = fs::remove_dir(path);
    }
}
