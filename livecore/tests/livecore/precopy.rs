//! Write-tracked pre-copy: the core is the memory at one instant, the
//! final stop's, though most of it was copied while a writer rewrote it;
//! the process runs on and keeps no trace of the tracking (no registered
//! mapping, no descriptor), for root and for the process's owner; a
//! default dump whose passes do not keep up with the writes makes a
//! copy-on-write copy in its final stop instead; pages the process gives
//! back after a pass copied them (`MADV_DONTNEED`) are in the core as the
//! process reads them at the final stop (zeroes, or the file's content);
//! a mapping marked `MADV_DONTDUMP` after the last pass is left out.

use crate::common::*;
use lttng_coredump_livecore::LiveReport;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testsupport::process::run_bounded;
use testsupport::users::TestUser;
use testsupport::TempDir;

/// The writer's loop state in the core's registers (`writing_generations`:
/// the next page `i`, the generation `g` it writes), from gdb.
fn writer_state(out: &str) -> (u64, u64) {
    let frame = out
        .find("writing_generations (")
        .unwrap_or_else(|| panic!("no writing_generations frame:\n{out}"));
    let local = |name: &str| -> u64 {
        out[frame..]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with('#'))
            .find_map(|l| l.trim().strip_prefix(&format!("{name} = ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("gdb shows no {name} in writing_generations:\n{out}"))
    };
    (local("i"), local("g"))
}

/// Checks that the filled memory in `core` is what it was when the
/// writer's registers were read: pages before one page `k` read `g`, the
/// others `g - 1`, with `k` the writer's next page (or the one after, if
/// it was stopped between its store and its increment).
fn assert_one_instant(core: &Path, fill: (u64, u64), what: &str) {
    let out = gdb(&programs().target, core, &["thread apply all bt full"]);
    let (i, g) = writer_state(&out);
    let bytes = std::fs::read(core).unwrap();
    let memory = core_memory(&bytes, fill.0, fill.1);
    let pages: Vec<u64> = memory
        .chunks(4096)
        .map(|p| u64::from_le_bytes(p[..8].try_into().unwrap()))
        .collect();
    let k = pages.iter().take_while(|&&v| v == g).count();
    let rest_ok = pages[k..].iter().all(|&v| v + 1 == g);
    let breaks: Vec<(usize, u64)> = pages
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] != w[1])
        .map(|(at, w)| (at + 1, w[1]))
        .take(8)
        .collect();
    assert!(
        rest_ok && (k as u64 == i || k as u64 == i + 1),
        "{what}: the memory is not the one at the stop: the writer was at page {i} of generation {g}, \
         the core reads {} at page 0 and changes at (page, value) {breaks:?}",
        pages[0]
    );
}

/// Dumps `target` by pre-copy (with `command`) while its writer runs, and
/// checks the core and the target.
fn check(target: &mut Target, core: &Path, command: Command, what: &str) {
    let fill = target.fill();
    let out = run_bounded(&mut { command }, Duration::from_secs(300));
    let report: LiveReport = answer_of(&out).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    assert_eq!(report.method.name(), "pre-copy", "{what}: {report:?}");
    assert!(report.fallback.is_none(), "{what}: {report:?}");
    // The writer wrote while the memory was copied: passes after the
    // first found pages to copy again.
    assert!(
        report.precopy_passes.len() >= 2 && report.precopy_passes[1] > 0,
        "{what}: {report:?}"
    );
    assert_one_instant(core, fill, what);
    target.assert_unharmed(what);
    target.assert_untracked(what);
}

fn dump_command(pid: i32, core: &Path) -> Command {
    let mut command = Command::new(dumper());
    command
        .arg(pid.to_string())
        .arg("-o")
        .arg(core)
        .args(["--method", "pre-copy"]);
    command
}

#[test]
fn a_pre_copied_core_is_the_memory_at_the_final_stop_while_a_writer_rewrites_it() {
    let dir = TempDir::new("livecore-precopy");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let args = ["--fill", "64", "--generations"];

    // Root's dump of root's process, twice (the second after the first's
    // tracking is gone), then the same compressed.
    let mut target = Target::spawn(&args);
    for n in 0..2 {
        let core = dir.path().join(format!("root-{n}.core"));
        let command = dump_command(target.pid, &core);
        check(&mut target, &core, command, &format!("root, dump {n}"));
        std::fs::remove_file(&core).unwrap();
    }
    let compressed = dir.path().join("root.core.zst");
    let report = dump_ok(&[
        &target.pid.to_string(),
        "-o",
        compressed.to_str().unwrap(),
        "--method",
        "pre-copy",
        "--zstd",
        "3",
    ]);
    assert!(report.compressed, "{report:?}");
    let plain = dir.path().join("root-zstd.core");
    decompress(&compressed, &plain);
    assert_one_instant(&plain, target.fill(), "root, zstd");
    target.assert_unharmed("root, zstd");
    target.assert_untracked("root, zstd");
    drop(target);
    std::fs::remove_file(&compressed).unwrap();
    std::fs::remove_file(&plain).unwrap();

    // A user's dump of their own process: the injected userfaultfd() runs
    // with the user's credentials (user-mode faults only).
    let user = TestUser::create("lclive-precopy", false);
    let mut command = as_user(&user, &programs().target);
    command.args(args);
    let mut target = Target::start(command, None);
    let core = dir.path().join("user.core");
    let mut command = as_user(&user, &dumper());
    command
        .arg(target.pid.to_string())
        .arg("-o")
        .arg(&core)
        .args(["--method", "pre-copy"]);
    check(&mut target, &core, command, "the owner");
}

#[test]
fn a_default_dump_whose_passes_do_not_keep_up_makes_a_copy_on_write_copy_in_its_final_stop() {
    let dir = TempDir::new("livecore-precopy-fallback");
    // The writer rewrites the 64 MiB continuously; whether a pass finds
    // more or less of it written depends on the machine's load, so the
    // limit is made certain to be reached: 0.
    let mut target = Target::spawn(&["--fill", "64", "--generations"]);
    let fill = target.fill();
    let core = dir.path().join("default.core");
    let report = dump_ok(&[
        &target.pid.to_string(),
        "-o",
        core.to_str().unwrap(),
        "--precopy-give-up-kib",
        "0",
    ]);
    assert_eq!(report.method.name(), "copy-on-write", "{report:?}");
    assert!(
        report
            .fallback
            .as_deref()
            .is_some_and(|why| why.contains("did not keep up")),
        "{report:?}"
    );
    assert_one_instant(&core, fill, "copy-on-write after pre-copy");
    target.assert_unharmed("copy-on-write after pre-copy");
    target.assert_untracked("copy-on-write after pre-copy");
    assert_eq!(target.children(), vec![], "the copy was not reaped");
}

#[test]
fn a_default_dump_whose_staging_budget_runs_out_makes_a_copy_on_write_copy_and_says_why() {
    let dir = TempDir::new("livecore-precopy-budget");
    let staging = dir.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    // The process grows by 32 MiB of written pages once the dump has
    // checked that its staging budget (what it had plus 8 MiB) holds its
    // private memory: while its threads are seized, before the first stop
    // (the new mapping is registered and copied by the first pass, which
    // runs out), or while the first pass runs (the mapping is not tracked:
    // the final stop copies it, and runs out there).
    for stage in ["seized", "pre-copying"] {
        let mut target = Target::spawn(&["--fill", "8", "--random"]);
        let budget_kib = (testsupport::process::private_resident(target.pid) >> 10) + (8 << 10);
        let core = dir.path().join(format!("{stage}.core"));
        let mut command = Command::new(dumper());
        command
            .arg(target.pid.to_string())
            .arg("-o")
            .arg(&core)
            .arg("--staging-in")
            .arg(&staging)
            .args(["--staging-budget-kib", &budget_kib.to_string()]);
        let held = Held::start(command, stage);
        let grown = target.grow(32);
        let report = held.release().unwrap_or_else(|e| panic!("{stage}: {e:?}"));
        assert_eq!(report.method.name(), "copy-on-write", "{stage}: {report:?}");
        let why = report.fallback.as_deref().unwrap_or_default();
        assert!(
            why.contains("staging file would take more than")
                && why.contains(&format!(
                    "the {budget_kib} KiB it may (--staging-budget-kib)"
                )),
            "{stage}: {report:?}"
        );
        // Given up during the passes (none recorded), or in the final stop
        // (after them).
        assert_eq!(
            report.precopy_passes.is_empty(),
            stage == "seized",
            "{stage}: {report:?}"
        );
        // The core holds the memory grown (by the copy-on-write copy).
        let bytes = std::fs::read(&core).unwrap();
        assert!(
            core_memory(&bytes, grown.0, grown.1)
                .iter()
                .all(|&b| b == 0x5a),
            "{stage}: the grown memory is not in the core"
        );
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
        target.assert_unharmed(stage);
        target.assert_untracked(stage);
        assert_eq!(
            target.children(),
            vec![],
            "{stage}: the copy was not reaped"
        );
    }
}

#[test]
fn a_process_whose_private_memory_exceeds_the_staging_budget_is_not_pre_copied_at_all() {
    let dir = TempDir::new("livecore-precopy-nobudget");
    let mut target = Target::spawn(&["--fill", "8", "--random"]);
    let core = dir.path().join("core");
    let report = dump_ok(&[
        &target.pid.to_string(),
        "-o",
        core.to_str().unwrap(),
        "--staging-in",
        dir.path().to_str().unwrap(),
        "--staging-budget-kib",
        "1024",
    ]);
    assert_eq!(report.method.name(), "copy-on-write", "{report:?}");
    let why = report.fallback.as_deref().unwrap_or_default();
    assert!(
        why.contains("pre-copy not used") && why.contains("the 1024 KiB it may take"),
        "{report:?}"
    );
    // No first stop: the only one is copy-on-write's.
    assert_eq!(report.track_pause_us, 0, "{report:?}");
    target.assert_unharmed("no pre-copy");
    target.assert_untracked("no pre-copy");
}

/// The first page of `[0, len)` where `core` and `expected` differ, and
/// how many pages do.
fn first_difference(core: &[u8], expected: &[u8]) -> Option<(usize, usize)> {
    let differ: Vec<usize> = core
        .chunks(4096)
        .zip(expected.chunks(4096))
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i)
        .collect();
    differ.first().map(|&first| (first, differ.len()))
}

const PAGE: u64 = 4096;

#[test]
fn pages_given_back_after_a_pass_copied_them_are_in_the_core_as_the_process_reads_them() {
    let dir = TempDir::new("livecore-precopy-given-back");
    // In 4 KiB pages, then in transparent huge pages (a whole huge page
    // given back leaves no page table entry at all).
    for thp in ["never", "always"] {
        given_back(dir.path(), thp);
    }
}

/// Dumps a target whose anonymous memory is in pages of `thp`, giving
/// back part of it (and of a private file mapping) between the last pass
/// and the final stop; checks the core.
fn given_back(dir: &Path, thp: &str) {
    const TABLE: u64 = 2 << 20;
    // A file of 16 pages, page i all bytes 0x40 + i.
    let file = dir.join(format!("mapped-{thp}"));
    let content: Vec<u8> = (0..16u8)
        .flat_map(|i| vec![0x40 + i; PAGE as usize])
        .collect();
    std::fs::write(&file, &content).unwrap();
    // Random (non-zero) anonymous memory in 4 KiB pages, and the file mapped
    // private with its pages 2 to 5 written (private copies: the kernel
    // dumps the mapping whole).
    let mut target = Target::spawn(&["--fill", "16", "--random", "--thp", thp]);
    let file_addr = target.map_file(&file, 16, 2, 7);
    let (addr, len) = target.fill();
    let mut expected = target.memory(addr, len);
    // Given back once the passes have copied them: the span of one whole
    // page table (the kernel then frees the table: no entry is left for a
    // scan to see), and three pages inside another.
    let whole = (addr.next_multiple_of(TABLE) - addr, TABLE);
    let part = (whole.0 + TABLE + 5 * PAGE, 3 * PAGE);
    assert!(part.0 + part.1 <= len);
    let core = dir.join(format!("given-back-{thp}.core"));
    let held = Held::start(dump_command(target.pid, &core), "pre-copied");
    for (off, n) in [whole, part] {
        target.madvise("fill", "dontneed", off, n);
        expected[off as usize..(off + n) as usize].fill(0);
    }
    // Pages 3 and 4 of the file revert to the file's content (and are
    // read again below: mapped from the page cache), then page 6 (not
    // read again: no page in memory).
    target.madvise("file", "dontneed", 3 * PAGE, 2 * PAGE);
    let mut file_expected = content.clone();
    for page in [2, 5, 6] {
        file_expected[page * PAGE as usize..(page + 1) * PAGE as usize].fill(0x57);
    }
    // What the process itself reads now.
    assert_eq!(target.memory(addr, len), expected, "the target's own view");
    assert_eq!(
        target.memory(file_addr, 16 * PAGE),
        file_expected,
        "the target's own view of the file"
    );
    target.madvise("file", "dontneed", 6 * PAGE, PAGE);
    file_expected[6 * PAGE as usize..7 * PAGE as usize]
        .copy_from_slice(&content[6 * PAGE as usize..7 * PAGE as usize]);
    let report = held.release().unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(report.method.name(), "pre-copy", "{report:?}");
    assert!(report.fallback.is_none(), "{report:?}");
    let bytes = std::fs::read(&core).unwrap();
    let anonymous = core_memory(&bytes, addr, len);
    assert!(
        first_difference(anonymous, &expected).is_none(),
        "{thp}: the anonymous memory in the core is not the process's at the final stop: \
         (first page that differs, pages that do) {:?}; given back: pages {}..{} and {}..{}",
        first_difference(anonymous, &expected),
        whole.0 / PAGE,
        (whole.0 + whole.1) / PAGE,
        part.0 / PAGE,
        (part.0 + part.1) / PAGE,
    );
    let mapped = core_memory(&bytes, file_addr, 16 * PAGE);
    assert!(
        first_difference(mapped, &file_expected).is_none(),
        "{thp}: the private file mapping in the core is not the process's at the final stop: \
         (first page that differs, pages that do) {:?}; given back: pages 3, 4 and 6",
        first_difference(mapped, &file_expected),
    );
    target.assert_unharmed(thp);
    target.assert_untracked(thp);
    std::fs::remove_file(&core).unwrap();
}

#[test]
fn a_mapping_marked_dontdump_just_before_the_final_stop_is_left_out() {
    let dir = TempDir::new("livecore-precopy-dontdump");
    let mut target = Target::spawn(&["--fill", "4", "--random"]);
    let (addr, len) = target.fill();
    let core = dir.path().join("dontdump.core");
    // Marked whole (the mapping is not split: the final stop sees the same
    // mapping as the smaps read after the last pass).
    let held = Held::start(dump_command(target.pid, &core), "pre-copied");
    target.madvise("fill", "dontdump", 0, len);
    let report = held.release().unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(report.method.name(), "pre-copy", "{report:?}");
    let bytes = std::fs::read(&core).unwrap();
    let dumped: Vec<(u64, u64, u64)> = loads(&bytes)
        .into_iter()
        .filter(|&(vaddr, _, filesz)| filesz > 0 && vaddr < addr + len && addr < vaddr + filesz)
        .collect();
    assert!(
        dumped.is_empty(),
        "memory marked MADV_DONTDUMP before the final stop is in the core: (vaddr, offset, filesz) {dumped:x?}"
    );
    target.assert_unharmed("dontdump");
    target.assert_untracked("dontdump");
}
