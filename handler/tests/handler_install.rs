//! `install`, `status` and `uninstall` against the real kernel settings:
//! the handler line goes in with a backup of what was there, a crash then
//! reaches the handler, and uninstall puts back exactly what was there.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::{ensure_sessiond, unique_name, CorePatternGuard, TempDir};

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";
const CORE_PIPE_LIMIT: &str = "/proc/sys/kernel/core_pipe_limit";

/// Removes files when dropped: declared before the guard, so that it runs
/// after the guard has put core_pattern back, even when a test panics.
struct RemoveOnDrop(Vec<std::path::PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap()
        .trim_end_matches('\n')
        .to_owned()
}

fn run(binary: &Path, args: &[&str]) -> Output {
    run_bounded(Command::new(binary).args(args), Duration::from_secs(60))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn install_status_and_uninstall_restore_the_kernel_settings_exactly() {
    let _sessiond = ensure_sessiond();
    let dir = TempDir::new("lcdh-install");
    let cores = dir.path().join("cores");
    let (binary, config) = short_handler_copy(handler_binary!(), &config_for(&cores, ""));
    let _cleanup = RemoveOnDrop(vec![binary.clone(), config.clone()]);
    let (binary, config) = (binary.as_path(), config.as_path());
    let guard = CorePatternGuard::acquire();
    // A pattern that writes nothing anywhere, to recognize it afterwards.
    let before = format!("/nonexistent-{}/core.%p", unique_name("lcdh"));
    guard.set(&before);
    guard.set_pipe_limit(0);
    let backup = dir.path().join("state/core_pattern.bkp");
    let install_args = [
        "install",
        "--binary",
        binary.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--backup",
        backup.to_str().unwrap(),
    ];

    let output = run(binary, &install_args);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(read(CORE_PATTERN), handler_line(binary, config));
    assert_eq!(read(CORE_PIPE_LIMIT), "64");
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&backup).unwrap()).unwrap();
    assert_eq!(saved["core_pattern"], before.as_str());
    assert_eq!(saved["core_pipe_limit"], "0");

    // Again: nothing changes, the backup keeps the original.
    let output = run(binary, &install_args);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("already installed"),
        "{}",
        text(&output)
    );
    let again: serde_json::Value = serde_json::from_slice(&fs::read(&backup).unwrap()).unwrap();
    assert_eq!(again, saved);

    let output = run(binary, &["status", "--backup", backup.to_str().unwrap()]);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    for expected in [
        "handler: installed".to_string(),
        format!("core_pattern: {}", handler_line(binary, config)),
        "core_pipe_limit: 64".to_string(),
        format!("backup: {}", backup.display()),
        format!("configuration: {} (ok)", config.display()),
        "root session daemon: alive".to_string(),
        "pidfd %F: yes".to_string(),
    ] {
        assert!(report.contains(&expected), "{expected:?} not in:\n{report}");
    }

    // The installed line works.
    let output = run_bounded(
        crasher_command().args([&unique_name("i"), "1", "segv"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    let (_, record) = wait_for_record(&cores, pid);
    assert_eq!(record["core"]["complete"], true, "{record:#}");

    let output = run(binary, &["status", "--backup", backup.to_str().unwrap()]);
    assert!(
        text(&output).contains(&format!("cores go to: {} (room for", cores.display())),
        "{}",
        text(&output)
    );

    let output = run(binary, &["uninstall", "--backup", backup.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(read(CORE_PATTERN), before);
    assert_eq!(read(CORE_PIPE_LIMIT), "0");
    assert!(!backup.exists());

    let output = run(binary, &["uninstall", "--backup", backup.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(text(&output).contains("no backup"), "{}", text(&output));
}

#[test]
fn install_refuses_to_back_up_its_own_line_and_lines_the_kernel_would_cut() {
    let dir = TempDir::new("lcdh-refuse");
    let (binary, config) = short_handler_copy(handler_binary!(), "");
    let _cleanup = RemoveOnDrop(vec![binary.clone(), config]);
    let binary = binary.as_path();
    let guard = CorePatternGuard::acquire();
    let backup = dir.path().join("core_pattern.bkp");

    // core_pattern already runs the handler and nothing was backed up.
    let own_line = format!(
        "|{} handle P=%P u=%u g=%g s=%s t=%t c=%c d=%d F=%F h=%h e=%e E=%E",
        binary.display()
    );
    guard.set(&own_line);
    let output = run(
        binary,
        &[
            "install",
            "--binary",
            binary.to_str().unwrap(),
            "--backup",
            backup.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success());
    assert!(
        text(&output).contains("refusing to back up"),
        "{}",
        text(&output)
    );
    assert!(!backup.exists());
    assert_eq!(read(CORE_PATTERN), own_line);

    // A binary path that would make the line longer than the kernel keeps.
    guard.set("core");
    let long_dir = dir
        .path()
        .join("a-directory-with-a-rather-long-name-to-go-past-the-limit");
    fs::create_dir_all(&long_dir).unwrap();
    let long_binary = long_dir.join("lttng-coredump");
    copy_executable(binary, &long_binary);
    let output = run(
        binary,
        &[
            "install",
            "--binary",
            long_binary.to_str().unwrap(),
            "--backup",
            backup.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("127") && message.contains("shorter path"),
        "{message}"
    );
    assert_eq!(read(CORE_PATTERN), "core");
    assert!(!backup.exists());
}
