//! The core is one gdb reads as it reads a kernel core: the same threads,
//! the same functions as in gdb's own `gcore` of the process.

use crate::common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testsupport::process::run_bounded;
use testsupport::TempDir;

/// The first 8 bytes the target fills its memory with (`--random`): one
/// step of its xorshift64 from its seed.
fn first_random_word() -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn assert_backtraces(core: &Path, what: &str) {
    let out = gdb(
        &programs().target,
        core,
        &["thread apply all bt", "print/x *(unsigned long *) fill"],
    );
    assert_eq!(
        functions_named(&out, &BLOCKED_FUNCTIONS),
        {
            let mut all: Vec<String> = BLOCKED_FUNCTIONS.iter().map(|s| s.to_string()).collect();
            all.sort();
            all
        },
        "{what}: gdb does not show every blocked function:\n{out}"
    );
    let expected = format!("= {:#x}", first_random_word());
    assert!(
        out.contains(&expected),
        "{what}: the core's memory is not the process's ({expected}):\n{out}"
    );
}

#[test]
fn gdb_names_the_same_eight_functions_in_our_cores_and_in_gdbs_gcore() {
    let dir = TempDir::new("livecore-bt");
    let mut target = Target::spawn(&["--fill", "16", "--random"]);
    let pid = target.pid.to_string();
    for method in ["stop-and-copy", "copy-on-write", "pre-copy"] {
        let core = core_path(dir.path(), method);
        let report = dump_ok(&[&pid, "-o", core.to_str().unwrap(), "--method", method]);
        assert_eq!(report.method.name(), method);
        assert!(report.threads.len() >= 10, "{report:?}");
        assert!(report.threads.iter().all(|t| t.stopped), "{report:?}");
        assert_eq!(
            report.threads[0].tid, target.pid,
            "the main thread comes first"
        );
        assert_backtraces(&core, method);
        target.assert_unharmed(method);
    }
    // zstd: decompressed, the same core.
    let compressed = dir.path().join("zstd.core.zst");
    let report = dump_ok(&[&pid, "-o", compressed.to_str().unwrap(), "--zstd", "3"]);
    assert!(report.compressed);
    assert!(report.bytes_written < report.core_size / 2, "{report:?}");
    let plain = dir.path().join("zstd.core");
    decompress(&compressed, &plain);
    assert_eq!(std::fs::metadata(&plain).unwrap().len(), report.core_size);
    assert_backtraces(&plain, "zstd");
    target.assert_unharmed("zstd");

    // gdb's own gcore of the same process.
    let prefix = dir.path().join("gcore");
    let out = run_bounded(
        Command::new("gcore").arg("-o").arg(&prefix).arg(&pid),
        Duration::from_secs(300),
    );
    let gcore = dir.path().join(format!("gcore.{pid}"));
    assert!(gcore.exists(), "gcore made no core: {out:?}");
    assert_backtraces(&gcore, "gcore");
}

#[test]
fn zero_pages_are_holes_and_the_segments_are_the_kernels() {
    let dir = TempDir::new("livecore-sparse");
    // 64 MiB touched but zero: present pages, all holes in the core.
    let mut target = Target::spawn(&["--fill", "64"]);
    let pid = target.pid.to_string();
    for method in ["stop-and-copy", "copy-on-write", "pre-copy"] {
        let core = core_path(dir.path(), method);
        let report = dump_ok(&[&pid, "-o", core.to_str().unwrap(), "--method", method]);
        let meta = std::fs::metadata(&core).unwrap();
        assert_eq!(meta.len(), report.core_size);
        assert!(report.memory_bytes > 64 << 20, "{report:?}");
        // Data written: a few MiB (stacks, libraries' data), not the 64 MiB.
        assert!(report.bytes_written < 16 << 20, "{method}: {report:?}");
        assert!(
            meta.blocks() * 512 < 24 << 20,
            "{method}: {} bytes allocated",
            meta.blocks() * 512
        );
        // The program headers: one per mapping, as in the process.
        let headers = run_bounded(
            Command::new("readelf").args(["-l", "-W"]).arg(&core),
            Duration::from_secs(60),
        );
        let text = String::from_utf8_lossy(&headers.stdout);
        let loads = text
            .lines()
            .filter(|l| l.trim_start().starts_with("LOAD"))
            .count();
        assert_eq!(loads + 1, report.segments + 1, "{text}");
        // The first page of every ELF file mapping is there: elfutils finds
        // the build-id of the program and of libc in the core alone.
        let modules = run_bounded(
            Command::new("eu-unstrip").args(["-n", "--core"]).arg(&core),
            Duration::from_secs(60),
        );
        let modules = String::from_utf8_lossy(&modules.stdout).into_owned();
        for name in ["live_target", "libc.so"] {
            let line = modules
                .lines()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("{method}: eu-unstrip lists no {name}:\n{modules}"));
            let build_id = line.split_whitespace().nth(1).unwrap_or("-");
            assert!(
                build_id.len() > 20 && !build_id.starts_with('-'),
                "{method}: no build-id for {name}: {line}"
            );
        }
        target.assert_unharmed(method);
    }
}

/// What gdb prints for `*area` (`$N = 0x..`), or None when it cannot read
/// it.
fn first_byte(out: &str, n: usize) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("${n} = ")))
        .map(str::to_owned)
}

#[test]
fn memory_a_fork_does_not_copy_is_read_while_stopped_or_reported_and_dontdump_is_left_out() {
    let dir = TempDir::new("livecore-special");
    let mut target = Target::spawn(&["--special"]);
    let pid = target.pid.to_string();
    for method in ["stop-and-copy", "copy-on-write", "pre-copy"] {
        let core = core_path(dir.path(), method);
        let report = dump_ok(&[&pid, "-o", core.to_str().unwrap(), "--method", method]);
        let out = gdb(
            &programs().target,
            &core,
            &[
                "print/x *dontfork_area",
                "print/x *wipeonfork_area",
                "print/x *dontdump_area",
            ],
        );
        // MADV_DONTFORK: not in the copy, read while stopped.
        assert_eq!(
            first_byte(&out, 1).as_deref(),
            Some("0xab"),
            "{method}:\n{out}"
        );
        // MADV_DONTDUMP: left out, as the kernel does.
        assert_ne!(
            first_byte(&out, 3).as_deref(),
            Some("0xef"),
            "{method}:\n{out}"
        );
        match method {
            // No fork: read from the process itself.
            "stop-and-copy" | "pre-copy" => {
                assert_eq!(
                    first_byte(&out, 2).as_deref(),
                    Some("0xcd"),
                    "{method}:\n{out}"
                );
                assert!(report.unfaithful.is_empty(), "{report:?}");
            }
            _ => {
                // MADV_WIPEONFORK: zeroes in the copy; left out and reported.
                assert_ne!(
                    first_byte(&out, 2).as_deref(),
                    Some("0xcd"),
                    "{method}:\n{out}"
                );
                assert!(
                    report
                        .unfaithful
                        .iter()
                        .any(|r| r.why.contains("MADV_WIPEONFORK") && r.end - r.start == 65536),
                    "{report:?}"
                );
            }
        }
        target.assert_unharmed(method);
    }
}

#[test]
fn stop_and_copy_copies_into_memory_during_the_stop_and_writes_the_core_after_it() {
    use std::os::unix::fs::FileExt;
    let dir = TempDir::new("livecore-buffer");
    let mut target = Target::spawn(&["--fill", "32", "--random"]);
    let pid = target.pid.to_string();

    // With its buffer (the default): the pause ends before the file is
    // written, as the report's own clock readings say.
    let buffered = core_path(dir.path(), "buffered");
    let report = dump_ok(&[
        &pid,
        "-o",
        buffered.to_str().unwrap(),
        "--method",
        "stop-and-copy",
    ]);
    assert_eq!(report.method.name(), "stop-and-copy");
    assert!(report.buffer_note.is_none(), "{report:?}");
    assert!(report.buffer_bytes >= 32 << 20, "{report:?}");
    assert!(
        report.pause_begin_ns < report.pause_end_ns
            && report.pause_end_ns <= report.write_begin_ns
            && report.write_begin_ns < report.write_end_ns,
        "the core was written during the pause: pause [{}, {}], writing [{}, {}]",
        report.pause_begin_ns,
        report.pause_end_ns,
        report.write_begin_ns,
        report.write_end_ns
    );
    assert_backtraces(&buffered, "buffered stop-and-copy");
    target.assert_unharmed("buffered stop-and-copy");

    // Without (`--stop-buffer-mib 0`, as for a process larger than the
    // memory available): written during the pause, and the report says why.
    let streamed = core_path(dir.path(), "streamed");
    let unbuffered = dump_ok(&[
        &pid,
        "-o",
        streamed.to_str().unwrap(),
        "--method",
        "stop-and-copy",
        "--stop-buffer-mib",
        "0",
    ]);
    assert_eq!(unbuffered.buffer_bytes, 0);
    assert!(
        unbuffered
            .buffer_note
            .as_deref()
            .is_some_and(|n| n.contains("written while the threads were stopped")),
        "{unbuffered:?}"
    );
    assert!(unbuffered.write_begin_ns < unbuffered.pause_end_ns);
    assert_backtraces(&streamed, "unbuffered stop-and-copy");

    // The memory the process filled, byte for byte, in both cores: what
    // /proc/PID/mem reads of it now (the process does not write it again).
    let out = gdb(
        &programs().target,
        &buffered,
        &["print/x (unsigned long) fill"],
    );
    let fill = out
        .lines()
        .find_map(|l| l.strip_prefix("$1 = 0x"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("gdb printed no address for fill:\n{out}"));
    let len = 32u64 << 20;
    let mut memory = vec![0u8; len as usize];
    std::fs::File::open(format!("/proc/{pid}/mem"))
        .unwrap()
        .read_exact_at(&mut memory, fill)
        .unwrap();
    for (what, core) in [("buffered", &buffered), ("unbuffered", &streamed)] {
        let bytes = std::fs::read(core).unwrap();
        let held = core_memory(&bytes, fill, len);
        if let Some(at) = held.iter().zip(&memory).position(|(a, b)| a != b) {
            panic!(
                "{what}: the core differs from the process's memory at {:#x}",
                fill + at as u64
            );
        }
    }
    target.assert_unharmed("unbuffered stop-and-copy");
}

/// The address of the target's filled memory, as gdb reads it in `core`.
fn fill_address(core: &Path) -> u64 {
    let out = gdb(&programs().target, core, &["print/x (unsigned long) fill"]);
    out.lines()
        .find_map(|l| l.strip_prefix("$1 = 0x"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("gdb printed no address for fill:\n{out}"))
}

#[test]
fn stop_and_copy_by_several_threads_at_a_raised_priority_holds_the_same_memory() {
    use std::os::unix::fs::FileExt;
    let dir = TempDir::new("livecore-threads");
    let mut target = Target::spawn(&["--fill", "64", "--random"]);
    let pid = target.pid.to_string();
    let len = 64u64 << 20;
    // One thread (the reference), two and three threads (the filled
    // mapping is 256 pieces of 256 KiB: shared between them). A buffer
    // that fills up while the threads copy: `stash`'s unit tests.
    let cases: [(&str, &[&str]); 3] = [
        ("one", &["--copy-threads", "1"]),
        ("two", &["--copy-threads", "2"]),
        ("three", &["--copy-threads", "3"]),
    ];
    let mut cores = Vec::new();
    for (name, extra) in cases {
        let core = core_path(dir.path(), name);
        let mut args = vec![
            pid.as_str(),
            "-o",
            core.to_str().unwrap(),
            "--method",
            "stop-and-copy",
        ];
        args.extend_from_slice(extra);
        let report = dump_ok(&args);
        assert_eq!(report.method.name(), "stop-and-copy", "{name}");
        assert!(report.buffer_note.is_none(), "{name}: {report:?}");
        // The tests run as root: the dumper raised its priority for the
        // stop, and says so; the pause's stages are in order and end with
        // the pause.
        assert_eq!(report.stop_nice, Some(-10), "{name}: {report:?}");
        let names: Vec<&str> = report
            .pause_stages
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            names,
            ["stop", "capture", "snapshot", "plan", "copy", "resume"],
            "{name}"
        );
        assert!(
            report.pause_stages.windows(2).all(|w| w[0].1 <= w[1].1)
                && report.pause_stages.last().map(|s| s.1) == Some(report.pause_us),
            "{name}: {:?}",
            report.pause_stages
        );
        assert_backtraces(&core, name);
        cores.push((name, core));
    }
    let fill = fill_address(&cores[0].1);
    let mut memory = vec![0u8; len as usize];
    std::fs::File::open(format!("/proc/{pid}/mem"))
        .unwrap()
        .read_exact_at(&mut memory, fill)
        .unwrap();
    for (name, core) in &cores {
        let bytes = std::fs::read(core).unwrap();
        let held = core_memory(&bytes, fill, len);
        if let Some(at) = held.iter().zip(&memory).position(|(a, b)| a != b) {
            panic!(
                "{name}: the core differs from the process's memory at {:#x}",
                fill + at as u64
            );
        }
    }
    // The whole of every segment is the same whatever the number of threads
    // (the threads' stacks move a little between dumps: only the filled
    // memory and the mappings' layout are compared byte for byte).
    let reference = loads(&std::fs::read(&cores[0].1).unwrap());
    for (name, core) in &cores[1..] {
        let other = loads(&std::fs::read(core).unwrap());
        let layout = |l: &[(u64, u64, u64)]| l.iter().map(|&(v, _, f)| (v, f)).collect::<Vec<_>>();
        assert_eq!(
            layout(&reference),
            layout(&other),
            "{name}: segments differ"
        );
    }
    target.assert_unharmed("stop-and-copy by several threads");
}
