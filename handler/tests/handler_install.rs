//! `install`, `status` and `uninstall` against the real kernel settings:
//! the handler line goes in with a backup of what was there, a crash then
//! reaches the handler, and uninstall puts back exactly what was there.

use std::fs;
use testsupport::core_pattern::{kernel_core_pattern, kernel_pipe_limit};
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::temp::RemoveOnDrop;
use testsupport::{ensure_sessiond, unique_name, CorePatternGuard, TempDir};

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

    let output = run_handler(binary, &install_args);
    assert!(output.status.success(), "{}", output_text(&output));
    assert_eq!(kernel_core_pattern(), handler_line(binary, config));
    assert_eq!(kernel_pipe_limit(), "64");
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&backup).unwrap()).unwrap();
    assert_eq!(saved["core_pattern"], before.as_str());
    assert_eq!(saved["core_pipe_limit"], "0");

    // Again: nothing changes, the backup keeps the original.
    let output = run_handler(binary, &install_args);
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("already installed"),
        "{}",
        output_text(&output)
    );
    let again: serde_json::Value = serde_json::from_slice(&fs::read(&backup).unwrap()).unwrap();
    assert_eq!(again, saved);

    let output = run_handler(binary, &["status", "--backup", backup.to_str().unwrap()]);
    let report = output_text(&output);
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
    let (_, record) = crash_and_record(
        crasher_command().args([&unique_name("i"), "1", "segv"]),
        &cores,
    );
    assert_eq!(record["core"]["complete"], true, "{record:#}");

    let output = run_handler(binary, &["status", "--backup", backup.to_str().unwrap()]);
    assert!(
        output_text(&output).contains(&format!("cores go to: {} (room for", cores.display())),
        "{}",
        output_text(&output)
    );

    let output = run_handler(binary, &["uninstall", "--backup", backup.to_str().unwrap()]);
    assert!(output.status.success(), "{}", output_text(&output));
    assert_eq!(kernel_core_pattern(), before);
    assert_eq!(kernel_pipe_limit(), "0");
    assert!(!backup.exists());

    let output = run_handler(binary, &["uninstall", "--backup", backup.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        output_text(&output).contains("no backup"),
        "{}",
        output_text(&output)
    );
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
    let output = run_handler(
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
        output_text(&output).contains("refusing to back up"),
        "{}",
        output_text(&output)
    );
    assert!(!backup.exists());
    assert_eq!(kernel_core_pattern(), own_line);

    // A binary path that would make the line longer than the kernel keeps.
    guard.set("core");
    let long_dir = dir
        .path()
        .join("a-directory-with-a-rather-long-name-to-go-past-the-limit");
    fs::create_dir_all(&long_dir).unwrap();
    let long_binary = long_dir.join("lttng-coredump");
    copy_executable(binary, &long_binary);
    let output = run_handler(
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
    let message = output_text(&output);
    assert!(
        message.contains("127") && message.contains("shorter path"),
        "{message}"
    );
    assert_eq!(kernel_core_pattern(), "core");
    assert!(!backup.exists());
}
