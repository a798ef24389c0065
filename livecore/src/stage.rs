//! The stages of a dump, and the hook called at each in the dumping child:
//! the tests hold the dumper at a stage and SIGKILL it there (the target
//! must resume and keep running, whatever the stage), and the benchmark
//! times them.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A point of a dump, in the order they are reached. Copy-on-write goes
/// through `Injecting`, `Injected`, `Resumed`, `DumpingCopy`, `Reaping`;
/// stop-and-copy through `Copying`, `Resumed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Every thread is seized (traced, still running), none interrupted yet.
    Seized,
    /// Pre-copy: the dumper holds the target's userfaultfd, the threads are
    /// still stopped (the first stop).
    Tracking,
    /// Pre-copy: the regions are registered and write-protected, part of
    /// the memory is copied while the process runs.
    PreCopying,
    /// Pre-copy: the passes are done and the mappings' details read; the
    /// process runs on, tracked, until the final stop (a test acts on the
    /// process here, between the last pass and the final stop).
    PreCopied,
    /// Every thread has stopped; their registers are read.
    Stopped,
    /// The snapshots have been taken (still stopped).
    Snapshotted,
    /// Copy-on-write: one thread's registers and stack are set up for the
    /// `clone()`, not yet run (the safety net is in place).
    Injecting,
    /// Copy-on-write: the copy exists; the thread's registers are not put
    /// back yet.
    Injected,
    /// Stop-and-copy: part of the memory is copied, threads still stopped.
    Copying,
    /// Every thread has been let go.
    Resumed,
    /// Copy-on-write: part of the copy is written.
    DumpingCopy,
    /// Copy-on-write: a thread is stopped again, set up for the `wait4()`
    /// that reaps the copy.
    Reaping,
    /// Pre-copy: the core is being written from the staging file (the
    /// process runs, no longer tracked).
    Writing,
    /// The core is complete.
    Done,
}

impl Stage {
    pub const ALL: [Stage; 14] = [
        Stage::Seized,
        Stage::Tracking,
        Stage::PreCopying,
        Stage::PreCopied,
        Stage::Stopped,
        Stage::Snapshotted,
        Stage::Injecting,
        Stage::Injected,
        Stage::Copying,
        Stage::Resumed,
        Stage::DumpingCopy,
        Stage::Reaping,
        Stage::Writing,
        Stage::Done,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Seized => "seized",
            Stage::Tracking => "tracking",
            Stage::PreCopying => "pre-copying",
            Stage::PreCopied => "pre-copied",
            Stage::Stopped => "stopped",
            Stage::Snapshotted => "snapshotted",
            Stage::Injecting => "injecting",
            Stage::Injected => "injected",
            Stage::Copying => "copying",
            Stage::Resumed => "resumed",
            Stage::DumpingCopy => "dumping-copy",
            Stage::Reaping => "reaping",
            Stage::Writing => "writing",
            Stage::Done => "done",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Called in the dumping child (a forked process: it may only make system
/// calls and allocate, see `sys::fork`) when a stage is reached.
pub type StageHook = Arc<dyn Fn(Stage) + Send + Sync>;
