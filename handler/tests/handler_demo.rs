//! `lttng-coredump demo`, run for real: it traces its program in the root
//! session daemon, installs the handler in core_pattern, crashes the
//! program, and must name a core and a snapshot that really hold the crash,
//! then put core_pattern and core_pipe_limit back exactly and leave no
//! session or scratch file behind.
//!
//! The demo takes no lock of its own; this test holds the suite's
//! core_pattern guard (and with it the root-triggers lock) around it, so no
//! other test's core_pattern is clobbered.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testsupport::core_file::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::{babeltrace_events, crasher_path, ensure_sessiond, CorePatternGuard, TempDir};

/// The text after `label` on the first output line that starts with it.
fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in the demo's output:\n{stdout}"))
}

#[test]
fn the_demo_shows_the_core_and_the_snapshot_of_a_real_crash_and_restores_the_kernel() {
    let _sessiond = ensure_sessiond();
    let binary = handler_binary!();
    let guard = CorePatternGuard::acquire();
    // Known values, so that "restored exactly" means something: a pattern
    // with a double space and a trailing one, and a pipe limit of 0 (which
    // the demo must raise for the crash and put back).
    let before = "core.lcdh-demo  %p ";
    guard.set(before);
    guard.set_pipe_limit(0);

    let dir = TempDir::new("lcdh-demo");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let output = run_bounded(
        Command::new(binary)
            // The traced program, which the demo finds beside an installed
            // binary; cargo's target directory has it elsewhere.
            .env("LTTNG_COREDUMP_DEMO_PROGRAM", crasher_path())
            .arg("demo")
            .arg("--dir")
            .arg(dir.path()),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the demo failed: {:?}\n{stdout}\n{stderr}",
        output.status
    );

    // The kernel has its settings back, exactly.
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        format!("{before}\n")
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pipe_limit").unwrap(),
        "0\n"
    );
    assert!(
        stdout.contains(&format!(
            "core_pattern restored to {before:?}, core_pipe_limit to 0"
        )),
        "{stdout}"
    );

    // The core it names is the program's, complete, where asked.
    let core = PathBuf::from(field(&stdout, "core:"));
    assert_eq!(core.parent().unwrap(), dir.path().join("core"), "{stdout}");
    let bytes = fs::read(&core).unwrap_or_else(|e| panic!("reading {}: {e}", core.display()));
    let identity = elf_core_identity(&bytes);
    assert_eq!(identity.fname, b"crashing-demo");
    assert!(core
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&format!("core.crashing-demo.{}.", identity.pid)));
    let size = field(&stdout, "core size:");
    assert!(
        size.starts_with(&format!("{} bytes", bytes.len())) && size.ends_with("complete"),
        "{size}"
    );
    assert_eq!(bytes.len() as u64, elf_core_extent(&bytes));

    // The snapshot it names holds the program's story, to the crash.
    let snapshot = PathBuf::from(field(&stdout, "snapshot:"));
    assert_eq!(
        snapshot.parent().unwrap(),
        dir.path().join("snapshot"),
        "{stdout}"
    );
    assert!(snapshot
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&format!("crashing-demo-{}-", identity.pid)));
    let steps: Vec<String> = babeltrace_events(&snapshot)
        .into_iter()
        .filter(|line| line.contains("lttng_coredump:story"))
        .collect();
    assert_eq!(steps.len(), 9, "{steps:#?}");
    assert!(steps[8].contains("step = 9") && steps[8].contains("account 3"));
    // And the demo printed them.
    assert!(
        stdout.contains("what = \"account 3 has no owner record: left NULL\""),
        "{stdout}"
    );

    // Nothing left behind but the core, its record and the snapshot.
    let session = field(&stdout, "session")
        .split('"')
        .nth(1)
        .expect("a quoted session name")
        .to_string();
    let sessions = lttng_ctl::list_sessions().unwrap();
    assert!(
        sessions.iter().all(|s| s.name != session),
        "{session} is still there"
    );
    let scratch = field(&stdout, "now: |")
        .split(' ')
        .next()
        .map(|handler| Path::new(handler).parent().unwrap().to_path_buf())
        .unwrap();
    assert!(!scratch.exists(), "{} is left behind", scratch.display());
    drop(guard);
}
