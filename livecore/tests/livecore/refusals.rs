//! Who may dump what, and the clear refusals: another user's process, a
//! set-uid one, a non-dumpable one (for its owner; root may), a kernel
//! thread, a zombie, a pid that names no process, a process that exits
//! during the dump. The target is unharmed by every refusal.

use crate::common::*;
use lttng_coredump_livecore::ErrorKind;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::{Duration, Instant};
use testsupport::process::run_bounded;
use testsupport::users::TestUser;
use testsupport::TempDir;

/// The dumper run as `user` on `pid`, writing into `dir`.
fn dump_as(user: &TestUser, pid: i32, core: &std::path::Path) -> Answer {
    let out = run_bounded(
        as_user(user, &dumper())
            .arg(pid.to_string())
            .arg("-o")
            .arg(core),
        Duration::from_secs(300),
    );
    answer_of(&out)
}

fn refused(answer: Answer, kind: ErrorKind, words: &str, what: &str) {
    match answer {
        Ok(report) => panic!("{what}: dumped instead of refused: {report:?}"),
        Err(e) => {
            assert_eq!(e.kind, kind, "{what}: {e:?}");
            assert!(
                e.message.contains(words),
                "{what}: {:?} does not say {words:?}",
                e.message
            );
        }
    }
}

/// Waits (bounded) until the killed process `pid` has no address space
/// left (`/proc/PID/status` shows no `VmRSS`: every thread has exited; the
/// zombie waits for its tracer).
fn memory_gone(pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| s.contains("VmRSS:")) {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} kept its memory 60 s after SIGKILL"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn refusals_say_why_and_leave_the_process_unharmed() {
    let owner = TestUser::create("lclive-owner", false);
    let other = TestUser::create("lclive-other", false);
    let dir = TempDir::new("livecore-refusals");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();

    // The owner may dump their process; the core is theirs.
    let mut target = Target::start(as_user(&owner, &programs().target), None);
    let core = dir.path().join("by-owner.core");
    let report =
        dump_as(&owner, target.pid, &core).unwrap_or_else(|e| panic!("the owner's dump: {e:?}"));
    assert_eq!(report.uid, owner.uid);
    let meta = fs::metadata(&core).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (owner.uid, 0o600));
    target.assert_unharmed("dumped by its owner");

    // Another user may not.
    let core = dir.path().join("by-other.core");
    refused(
        dump_as(&other, target.pid, &core),
        ErrorKind::PermissionDenied,
        "only root or its owner",
        "another user's process",
    );
    assert!(!core.exists(), "a refused dump left {}", core.display());
    target.assert_unharmed("refused to another user");
    drop(target);

    // A set-uid program run by its owner: only root may dump it.
    let program = dir.path().join("setuid-target");
    testsupport::process::copy_executable(&programs().target, &program);
    fs::set_permissions(&program, fs::Permissions::from_mode(0o4755)).unwrap();
    let mut target = Target::start(as_user(&owner, &program), None);
    refused(
        dump_as(&owner, target.pid, &dir.path().join("setuid.core")),
        ErrorKind::PermissionDenied,
        "set-uid",
        "a set-uid process",
    );
    target.assert_unharmed("set-uid, refused");
    drop(target);

    // A process that made itself non-dumpable: not for its owner; root may.
    let mut command = as_user(&owner, &programs().target);
    command.arg("--nondumpable");
    let mut target = Target::start(command, None);
    refused(
        dump_as(&owner, target.pid, &dir.path().join("nondumpable.core")),
        ErrorKind::PermissionDenied,
        "not dumpable",
        "a non-dumpable process",
    );
    let core = dir.path().join("nondumpable-root.core");
    let report = dump_ok(&[&target.pid.to_string(), "-o", core.to_str().unwrap()]);
    assert_eq!(report.uid, owner.uid);
    assert_eq!(
        fs::metadata(&core).unwrap().uid(),
        0,
        "root's dump is root's"
    );
    target.assert_unharmed("non-dumpable");
    drop(target);

    // A kernel thread (kthreadd: the kernel's, on every machine).
    let kthreadd = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "kthreadd")
        })
        .expect("no kthreadd");
    refused(
        dump(&[
            &kthreadd.to_string(),
            "-o",
            dir.path().join("k.core").to_str().unwrap(),
        ]),
        ErrorKind::KernelThread,
        "kernel thread",
        "a kernel thread",
    );

    // A zombie: a child of this test that has exited, not reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let zombie = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(format!("/proc/{zombie}/stat")).is_ok_and(|s| s.contains(") Z ")) {
        assert!(Instant::now() < deadline, "{zombie} never became a zombie");
        std::thread::sleep(Duration::from_millis(10));
    }
    refused(
        dump(&[
            &zombie.to_string(),
            "-o",
            dir.path().join("z.core").to_str().unwrap(),
        ]),
        ErrorKind::Zombie,
        "zombie",
        "a zombie",
    );
    child.wait().unwrap();

    // No process: a pid above the largest the kernel gives.
    let pid_max: i64 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    refused(
        dump(&[
            &(pid_max + 1).to_string(),
            "-o",
            dir.path().join("none.core").to_str().unwrap(),
        ]),
        ErrorKind::NoSuchProcess,
        "no process",
        "no process",
    );
}

#[test]
fn a_process_that_exits_during_the_dump_ends_it_cleanly() {
    let dir = TempDir::new("livecore-exits");
    // Stopping and copying: killed while its memory is copied, the dump
    // fails and says so, and leaves no core behind.
    let target = Target::spawn(&["--fill", "32", "--random"]);
    let core = dir.path().join("stop.core");
    let command = dump_command(target.pid, &core, "stop-and-copy");
    let held = Held::start(command, "copying");
    target.kill();
    // Its threads gone (they exit on SIGKILL even while traced), its
    // memory with them, before the copy goes on: otherwise a copy quicker
    // than the exit reads it all, which is a good core, not this case.
    memory_gone(target.pid);
    let answer = held.release();
    drop(target);
    refused(
        answer,
        ErrorKind::Exited,
        "exited during the dump",
        "exits while copied",
    );
    assert!(!core.exists(), "a failed dump left {}", core.display());

    // Copy-on-write: once the copy exists, the core is complete (the
    // process as it was at the stop), and says the process exited.
    let target = Target::spawn(&["--fill", "32", "--random"]);
    let core = dir.path().join("cow.core");
    let command = dump_command(target.pid, &core, "copy-on-write");
    let held = Held::start(command, "dumping-copy");
    drop(target);
    let report = held
        .release()
        .unwrap_or_else(|e| panic!("the copy's dump failed: {e:?}"));
    assert!(report.exited_during_dump, "{report:?}");
    let out = gdb(&programs().target, &core, &["thread apply all bt"]);
    assert_eq!(functions_named(&out, &BLOCKED_FUNCTIONS).len(), 8, "{out}");
}
