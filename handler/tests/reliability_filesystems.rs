//! The core directory on a read-only filesystem, through the real kernel:
//! nothing of ours can be written, so the system log gets the whole story
//! (and the record itself), and the chained handler still gets its copy.
//! (A full filesystem and one out of inodes are in `handler_limits.rs`.)

use std::fs;
use std::process::Command;
use std::time::Duration;
use testsupport::core_file::*;
use testsupport::crasher::*;
use testsupport::handler::*;
use testsupport::handler_binary;
use testsupport::process::*;
use testsupport::syslog::*;
use testsupport::tmpfs::*;
use testsupport::{unique_name, TempDir};

#[test]
fn a_read_only_filesystem_loses_only_our_copy_and_the_log_says_so() {
    let dir = TempDir::new("lcdsec-readonly");
    let mount = Tmpfs::mount(&dir.path().join("ro"), "size=8m,mode=0755");
    let cores = mount.0.join("cores");
    fs::create_dir(&cores).unwrap();
    let status = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mount.0)
        .status()
        .unwrap();
    assert!(status.success(), "remount read-only");
    let syslog = SyslogListener::bind(dir.path());
    let chained = dir.path().join("chained");
    let _handler = InstalledHandler::new(
        handler_binary!(),
        &config_for(
            &cores,
            &format!(
                "syslog_socket = \"{}\"\n[chain]\ncommand = [\"/bin/sh\", \"-c\", \"cat > {}\"]\n",
                syslog.path.display(),
                chained.display()
            ),
        ),
    );
    let output = run_bounded(
        crasher_command().args([&unique_name("ro"), "1", "segv", "2", "random"]),
        CRASH_TIMEOUT,
    );
    let pid = ready_pid(&output);
    // The record that cannot be written is logged last (a hang guard, not
    // a deadline: the handler logs it right after the core is read).
    let messages = syslog
        .messages_until("cannot write the crash record", Duration::from_secs(60))
        .join("\n");
    // The chained handler got the whole core.
    let copy = fs::read(&chained).unwrap();
    assert_eq!(elf_core_identity(&copy).pid, pid);
    assert!(elf_core_extent(&copy) <= copy.len() as u64);
    assert!(names_in(&cores).is_empty());
    assert!(
        messages.contains(&format!(
            "core of process {pid} (crasher) not saved: cannot create a core file"
        )),
        "{messages}"
    );
    assert!(messages.contains("Read-only file system"), "{messages}");
    assert!(
        messages.contains("cannot write the crash record"),
        "{messages}"
    );
    assert!(messages.contains(&format!("\"pid\": {pid},")), "{messages}");
    assert!(
        messages.contains(&format!("\"bytes_given\": {}", copy.len())),
        "the logged record says the chained handler got it all: {messages}"
    );
}
