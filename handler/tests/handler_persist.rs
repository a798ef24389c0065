//! `install --persist` against the real kernel and the real sysctl.d
//! directories: a boot is simulated by putting the kernel's defaults back
//! and applying every sysctl.d file as the boot does (`sysctl --system`,
//! limited to the core_pattern settings so that nothing else of the
//! machine changes), with systemd's `50-coredump.conf` present; the
//! handler's line must be what the kernel then holds, and a crash must
//! reach it. `status` names a later file that would win, and `uninstall`
//! removes the persistent file. Everything is put back.

use std::fs;
use std::path::{Path, PathBuf};
use testsupport::core_pattern::{kernel_core_pattern, kernel_pipe_limit, FUSE_TIMEOUT};
use testsupport::crasher::crasher_command;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::output_text;
use testsupport::temp::RemoveOnDrop;
use testsupport::{unique_name, CorePatternGuard, TempDir};

const OURS: &str = "/etc/sysctl.d/90-lttng-coredump.conf";
/// systemd-coredump's line, as its package's sysctl.d file sets it.
const SYSTEMD_LINE: &str = "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h";

#[test]
fn install_persist_survives_a_simulated_reboot_and_uninstall_removes_it() {
    let dir = TempDir::new("lcdt-persist");
    let cores = dir.path().join("cores");
    let (binary, config) = short_handler_copy(handler_binary!(), &config_for(&cores, ""));
    fs::create_dir_all("/run/sysctl.d").unwrap();
    let systemd_file = PathBuf::from("/run/sysctl.d/50-coredump.conf");
    let later_file = PathBuf::from(format!("/run/sysctl.d/95-{}.conf", unique_name("lcdt")));
    // Acquired first, released last: the files are removed under it.
    let guard = CorePatternGuard::acquire();
    let mut cleanup = RemoveOnDrop(vec![binary.clone(), config.clone()]);
    // Under the guard: another run of this test is over, and its files gone.
    assert!(
        !systemd_file.exists() && !Path::new(OURS).exists(),
        "this test needs {} and {OURS} free",
        systemd_file.display()
    );
    cleanup.0.extend([
        PathBuf::from(OURS),
        systemd_file.clone(),
        later_file.clone(),
    ]);
    // A machine with systemd-coredump: its file puts its line in at boot.
    fs::write(
        &systemd_file,
        format!("kernel.core_pattern={SYSTEMD_LINE}\n"),
    )
    .unwrap();
    guard.simulate_boot();
    assert_eq!(kernel_core_pattern(), SYSTEMD_LINE);

    let backup = dir.path().join("core_pattern.bkp");
    let (binary_arg, config_arg, backup_arg) = (
        binary.to_str().unwrap(),
        config.to_str().unwrap(),
        backup.to_str().unwrap(),
    );
    // `install OPTION` with this test's binary, configuration and backup.
    let install = |option: &str| {
        run_handler(
            &binary,
            &[
                "install", option, "--binary", binary_arg, "--config", config_arg, "--backup",
                backup_arg,
            ],
        )
    };
    let output = install("--persist");
    let report = output_text(&output);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("runs systemd-coredump"), "{report}");
    assert!(report.contains("--chain-previous"), "{report}");
    let line = handler_line(&binary, &config);
    assert_eq!(kernel_core_pattern(), line);
    let persisted = fs::read_to_string(OURS).unwrap();
    assert!(
        persisted.contains(&format!("kernel.core_pattern = {line}\n"))
            && persisted.contains("kernel.core_pipe_limit = 64\n"),
        "{persisted}"
    );

    // The reboot: systemd's file and ours both apply; ours sorts later.
    guard.simulate_boot();
    assert_eq!(kernel_core_pattern(), line);
    assert_eq!(kernel_pipe_limit(), "64");
    let (_, record) = crash_and_record(
        crasher_command().args([&unique_name("boot"), "1", "segv"]),
        &cores,
    );
    assert_eq!(record["core"]["complete"], true, "{record:#}");

    // Persistent: no warning; a file sorting after ours is named.
    let status = |args: &[&str]| {
        let mut all = vec!["status", "--backup", backup_arg];
        all.extend(args);
        output_text(&run_handler(&binary, &all))
    };
    let report = status(&[]);
    assert!(!report.contains("warning: not persistent"), "{report}");
    assert!(!report.contains("after /etc/sysctl.d"), "{report}");
    fs::write(&later_file, "kernel.core_pattern = core\n").unwrap();
    let report = status(&[]);
    assert!(
        report.contains(&format!(
            "warning: {} sets kernel.core_pattern = core after {OURS} at boot: it wins",
            later_file.display()
        )),
        "{report}"
    );
    fs::remove_file(&later_file).unwrap();

    // uninstall puts systemd's line back and removes our file: the next
    // boot keeps systemd's line.
    let output = run_handler(&binary, &["uninstall", "--backup", backup_arg]);
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(
        output_text(&output).contains(&format!("removed {OURS}")),
        "{}",
        output_text(&output)
    );
    assert!(!Path::new(OURS).exists());
    assert_eq!(kernel_core_pattern(), SYSTEMD_LINE);
    guard.simulate_boot();
    assert_eq!(kernel_core_pattern(), SYSTEMD_LINE);
    // Installed without --persist, status says the line will not survive;
    // with --chain-previous, every core also goes to systemd-coredump (the
    // [chain] section written from its line; nothing serves its own socket
    // in this test, so the record says how the chained command ended; the
    // core reaching systemd-coredump's store is handler_others.rs').
    let output = install("--chain-previous");
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("chained"),
        "{}",
        output_text(&output)
    );
    assert!(status(&[]).contains("warning: not persistent"));
    let (pid, record) = crash_and_record(
        crasher_command().args([&unique_name("chain"), "1", "segv"]),
        &cores,
    );
    assert_eq!(record["core"]["complete"], true, "{record:#}");
    // systemd-coredump's own arguments, the crash's fields filled in.
    let command: Vec<String> = record["chain"]["command"]
        .as_array()
        .unwrap_or_else(|| panic!("no chained command: {record:#}"))
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    let time = record["time"].to_string();
    assert_eq!(
        command[..7],
        [
            "/lib/systemd/systemd-coredump",
            &pid.to_string(),
            "0",
            "0",
            "11",
            &time,
            "9223372036854775808"
        ],
        "{record:#}"
    );
    assert!(record["chain"]["ended"].is_string(), "{record:#}");
    let output = run_handler(&binary, &["uninstall", "--backup", backup_arg]);
    assert!(output.status.success(), "{}", output_text(&output));
    drop(cleanup);
    drop(guard);
}

/// The bound in force.
fn fuse_timeout() -> String {
    fs::read_to_string(FUSE_TIMEOUT).unwrap().trim().to_string()
}

/// What a boot does to the FUSE bound: the kernel's 0, then every sysctl.d
/// file's setting of it.
fn boot_fuse_timeout() {
    fs::write(FUSE_TIMEOUT, "0").unwrap();
    let output = testsupport::process::run_bounded(
        std::process::Command::new("sysctl").args([
            "--system",
            "--pattern",
            "^fs\\.fuse\\.max_request_timeout$",
        ]),
        std::time::Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", output_text(&output));
}

#[test]
fn install_persist_keeps_the_fuse_request_bound_it_recommends_and_uninstall_removes_it() {
    let dir = TempDir::new("lcdt-persist-fuse");
    let cores = dir.path().join("cores");
    let (binary, config) = short_handler_copy(handler_binary!(), &config_for(&cores, ""));
    // Acquired first, released last: the files are removed under it.
    let guard = CorePatternGuard::acquire();
    let mut cleanup = RemoveOnDrop(vec![binary.clone(), config.clone()]);
    assert!(!Path::new(OURS).exists(), "this test needs {OURS} free");
    cleanup.0.push(PathBuf::from(OURS));
    // The guard puts the bound back as it was.
    assert!(
        Path::new(FUSE_TIMEOUT).exists(),
        "{FUSE_TIMEOUT} is missing (Linux 6.14+ with the fuse module: modprobe fuse)"
    );
    // The kernel's default: no bound.
    fs::write(FUSE_TIMEOUT, "0").unwrap();
    let backup = dir.path().join("core_pattern.bkp");
    let backup_arg = backup.to_str().unwrap();
    let install_persist = || {
        run_handler(
            &binary,
            &[
                "install",
                "--persist",
                "--binary",
                binary.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
                "--backup",
                backup_arg,
            ],
        )
    };
    let output = install_persist();
    let report = output_text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("fs.fuse.max_request_timeout set to 300"),
        "{report}"
    );
    assert!(
        report.contains("and fs.fuse.max_request_timeout = 300"),
        "{report}"
    );
    assert!(!report.contains("recommended: fs.fuse"), "{report}");
    assert_eq!(fuse_timeout(), "300");
    let persisted = fs::read_to_string(OURS).unwrap();
    assert!(
        persisted.contains("\n-fs.fuse.max_request_timeout = 300\n"),
        "{persisted}"
    );
    let status = output_text(&run_handler(&binary, &["status", "--backup", backup_arg]));
    assert!(
        !status.contains("fs.fuse.max_request_timeout is 0"),
        "{status}"
    );

    // A boot keeps it.
    boot_fuse_timeout();
    assert_eq!(fuse_timeout(), "300");
    // Installed again, the bound it set is kept (not taken for someone
    // else's choice).
    let output = install_persist();
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(fs::read_to_string(OURS)
        .unwrap()
        .contains("\n-fs.fuse.max_request_timeout = 300\n"));

    // uninstall removes the file: the next boot has the kernel's 0 again.
    let output = run_handler(&binary, &["uninstall", "--backup", backup_arg]);
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(!Path::new(OURS).exists());
    boot_fuse_timeout();
    assert_eq!(fuse_timeout(), "0");
    drop(cleanup);
    drop(guard);
}
