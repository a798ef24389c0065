//! The dumper killed (SIGKILL) at every stage: the kernel detaches the
//! dead tracer's tracees, so the process resumes and runs on as if nothing
//! had happened (registers, signals, timers: its threads check), and no
//! copy of it is ever left running, nor (pre-copy) a registered mapping or
//! a descriptor.

use crate::common::*;
use testsupport::TempDir;

/// Kills the dumping child at `stage` of `method`, then checks the target.
fn kill_at(
    target: &mut Target,
    dir: &std::path::Path,
    method: &str,
    stage: &str,
    kill_caller: bool,
) {
    let core = dir.join(format!("{method}-{stage}.core"));
    let command = dump_command(target.pid, &core, method);
    let held = Held::start(command, stage);
    let what = format!("{method} killed at {stage}");
    let answer = if kill_caller {
        // The command itself: its dumping child dies with it.
        let tracer = held.tracer;
        let mut child = held.child;
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::path::Path::new(&format!("/proc/{tracer}")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: the dumping child outlived its caller"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        None
    } else {
        Some(held.kill_tracer())
    };
    if let Some(answer) = &answer {
        assert!(answer.is_err(), "{what}: {answer:?}");
    }
    target.assert_unharmed(&what);
    target.assert_untracked(&what);
    // No copy runs: at most a dead one waiting to be reaped, when the
    // dumper died while making it (see the crate documentation).
    let children = target.children();
    assert!(
        children.iter().all(|&(_, state)| state == 'Z'),
        "{what}: a copy of the process runs: {children:?}"
    );
    if !kill_caller && !matches!(stage, "injecting") {
        // The caller survived: it reaped the copy the dead child had made.
        assert_eq!(children, vec![], "{what}: the copy was not reaped");
    }
}

#[test]
fn the_process_runs_on_whatever_stage_the_dumper_is_killed_at() {
    let dir = TempDir::new("livecore-killed");
    let mut target = Target::spawn(&["--fill", "16", "--random"]);
    for stage in ["seized", "stopped", "snapshotted", "copying", "resumed"] {
        kill_at(&mut target, dir.path(), "stop-and-copy", stage, false);
    }
    for stage in [
        "seized",
        "stopped",
        "snapshotted",
        "injecting",
        "injected",
        "resumed",
        "dumping-copy",
        "reaping",
    ] {
        kill_at(&mut target, dir.path(), "copy-on-write", stage, false);
    }
    for stage in [
        "seized",
        "stopped",
        "tracking",
        "pre-copying",
        "pre-copied",
        "snapshotted",
        "copying",
        "resumed",
        "writing",
    ] {
        kill_at(&mut target, dir.path(), "pre-copy", stage, false);
    }
    // The caller killed instead of its child, mid-copy and mid-injection.
    kill_at(&mut target, dir.path(), "stop-and-copy", "copying", true);
    kill_at(&mut target, dir.path(), "copy-on-write", "injected", true);
    kill_at(&mut target, dir.path(), "pre-copy", "pre-copying", true);
    let errors = target.errors();
    assert!(errors.is_empty(), "{errors:?}");
}
