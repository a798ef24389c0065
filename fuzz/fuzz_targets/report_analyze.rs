//! Fuzzes the analysis entry point the handler calls, `analyze`, end to
//! end: each input becomes a small x86-64 core (its threads' registers,
//! its stack's bytes, its signal, extra notes: all from the input), which
//! a forked child analyzes with libdwfl under its limits. Whatever the
//! core makes the child do (loop, allocate, crash), the caller gets a
//! report or "analysis failed: ..." within the deadline and the kill's
//! grace, and never panics.
//!
//! The child's own code is not instrumented from here (libFuzzer's
//! counters stay in the child), so this target is about the caller's
//! bounds; the parsing the caller does itself is `report_parse`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lttng_coredump_report::synthetic::{CoreBuilder, Registers};
use lttng_coredump_report::{analyze, Limits};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

const STACK: u64 = 0x7ffd_0000_0000;

fn word(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    let threads = 1 + data.first().map_or(0, |b| b % 4) as usize;
    let mut core = CoreBuilder::new();
    for t in 0..threads {
        let at = 1 + t * 24;
        let regs = Registers {
            rip: word(data, at),
            rsp: STACK + (word(data, at + 8) & 0xff8),
            rbp: STACK + (word(data, at + 16) & 0xff8),
        };
        core = core.thread(100 + t as i32, 11, regs);
    }
    let rest = data.get(1 + threads * 24..).unwrap_or(&[]);
    core = core.siginfo(i32::from(rest.first().copied().unwrap_or(11)), 1, word(rest, 1));
    let (stack, notes) = rest.split_at(rest.len().min(4096));
    let mut memory = stack.to_vec();
    memory.resize(4096, 0);
    core = core.load(STACK, memory);
    // The rest as raw notes: any type, any size the bytes give.
    for chunk in notes.chunks(64) {
        let kind = u32::from(chunk[0]);
        core = core.note("CORE", kind, &chunk[1..]);
    }
    let bytes = core.build();
    let memfd = rustix::fs::memfd_create("fuzz-core", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let mut done = 0;
    while done < bytes.len() {
        done += rustix::io::pwrite(&memfd, &bytes[done..], done as u64).unwrap();
    }
    let limits = Limits {
        deadline: Duration::from_secs(5),
        max_threads: 8,
        max_frames: 64,
        ..Limits::default()
    };
    let started = Instant::now();
    match analyze(memfd.as_fd(), None, None, &limits) {
        Ok(report) => {
            assert!(report.threads.len() <= limits.max_threads);
            assert!(report.threads.iter().all(|t| t.frames.len() <= limits.max_frames));
        }
        Err(failed) => assert!(!failed.reason.is_empty()),
    }
    assert!(started.elapsed() < limits.deadline + Duration::from_secs(2));
});
