//! The analysis child: what it does between `fork` (and taking the
//! crashing user's identity, `lttng_coredump_engine::identity`) and the
//! analysis, so that a core crafted to make libdwfl loop, allocate without
//! end or crash costs this one child and nothing else.
//!
//! - a session of its own (no controlling terminal: a core naming
//!   `/dev/tty` as a mapped file cannot make libdwfl read a terminal of
//!   the caller's);
//! - no new privileges, not dumpable (the user it acts as cannot ptrace
//!   it or read its memory; a crash of it makes no core);
//! - `RLIMIT_CPU` (a busy loop ends with SIGXCPU before the deadline),
//!   `RLIMIT_AS` (what it inherited, the mapped core, and the caller's
//!   memory budget), `RLIMIT_FSIZE` (the decompressed core and
//!   debuginfod's downloads), `RLIMIT_CORE` 0;
//! - debuginfod configured from the caller's settings only (never from the
//!   environment it inherited), with a cache of its own;
//! - a zstd core (as the handler stores them) decompressed into a sparse
//!   memfd, within `RLIMIT_FSIZE`.
//!
//! The parent side (deadline, kill, bounded reap, bounded answer) is
//! `lttng_coredump_engine::child::isolate`'s.

use crate::analysis::{analyze_here, FdCore};
use crate::Limits;
use lttng_coredump_recover::reader::{core_of_file, CoreRead};
use rustix::process::{Resource, Rlimit};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The zstd frame magic, little-endian.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Decompressed at a time; a chunk of zeroes is left as a hole.
const CHUNK: usize = 1 << 20;

/// What the child answers: the report, or why there is none.
pub(crate) type Answer = Result<crate::Report, String>;

/// In the child: confines it, then analyzes the core on `core`.
pub(crate) fn child(
    core: BorrowedFd<'_>,
    executable: Option<&Path>,
    executable_name: Option<&str>,
    limits: &Limits,
) -> Answer {
    confine(limits)?;
    let cache = configure_debuginfod(limits)?;
    let decompressed;
    let core = if is_zstd(core) {
        decompressed = decompress(core, limits.max_core_bytes)?;
        decompressed.as_fd()
    } else {
        core
    };
    let size = rustix::fs::fstat(core)
        .map_err(|e| format!("reading the core's size: {e}"))?
        .st_size as u64;
    limit_memory(size, limits.memory)?;
    let answer = analyze_here(core, executable, executable_name, limits);
    if let Some(dir) = cache {
        let _ = std::fs::remove_dir_all(dir);
    }
    answer
}

fn confine(limits: &Limits) -> Result<(), String> {
    // (An exec'd child may lead its own session already: `setsid` would
    // fail, and there is nothing to leave.)
    if !lttng_coredump_engine::child::leads_own_session() {
        rustix::process::setsid().map_err(|e| format!("leaving the caller's session: {e}"))?;
    }
    rustix::thread::set_no_new_privs(true).map_err(|e| format!("setting no_new_privs: {e}"))?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("making the child non-dumpable: {e}"))?;
    let cpu = limits.deadline.as_secs() + 1;
    let file_size = limits.max_core_bytes.max(
        limits
            .debuginfod
            .as_ref()
            .map_or(0, |d| d.max_size.saturating_mul(2)),
    );
    for (resource, soft, hard, what) in [
        (Resource::Core, 0, 0, "RLIMIT_CORE"),
        (Resource::Cpu, cpu, cpu + 1, "RLIMIT_CPU"),
        (Resource::Fsize, file_size, file_size, "RLIMIT_FSIZE"),
    ] {
        rustix::process::setrlimit(
            resource,
            Rlimit {
                current: Some(soft),
                maximum: Some(hard),
            },
        )
        .map_err(|e| format!("setting {what}: {e}"))?;
    }
    Ok(())
}

/// `RLIMIT_AS`: what the child already maps (inherited from its parent),
/// plus the core it will map, plus `budget`.
fn limit_memory(core_size: u64, budget: u64) -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status: {e}"))?;
    let mapped_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no VmSize in /proc/self/status")?;
    let limit = (mapped_kib * 1024)
        .saturating_add(core_size)
        .saturating_add(budget);
    rustix::process::setrlimit(
        Resource::As,
        Rlimit {
            current: Some(limit),
            maximum: Some(limit),
        },
    )
    .map_err(|e| format!("setting RLIMIT_AS: {e}"))
}

/// Sets libdebuginfod's environment from the caller's settings only;
/// returns the cache directory to remove afterwards, when it made one.
fn configure_debuginfod(limits: &Limits) -> Result<Option<PathBuf>, String> {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DEBUGINFOD_") {
            std::env::remove_var(&name);
        }
    }
    let Some(settings) = &limits.debuginfod else {
        return Ok(None);
    };
    let seconds = settings.timeout.as_secs().max(1).to_string();
    let (cache, made) = match &settings.cache {
        Some(dir) => (dir.clone(), None),
        None => {
            let dir = private_dir()?;
            (dir.clone(), Some(dir))
        }
    };
    std::env::set_var("DEBUGINFOD_URLS", &settings.urls);
    std::env::set_var("DEBUGINFOD_TIMEOUT", &seconds);
    std::env::set_var("DEBUGINFOD_MAXTIME", &seconds);
    std::env::set_var("DEBUGINFOD_MAXSIZE", settings.max_size.to_string());
    std::env::set_var("DEBUGINFOD_CACHE_PATH", cache);
    Ok(made)
}

/// A new directory only this child's user can use, under the system's
/// temporary directory.
fn private_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "lttng-coredump-debuginfod-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("creating {}: {e}", dir.display())),
        }
    }
    Err("no free name for a debuginfod cache directory".into())
}

fn is_zstd(core: BorrowedFd<'_>) -> bool {
    let mut magic = [0u8; 4];
    matches!(FdCore(core).read_at(0, &mut magic), Ok(4)) && magic == ZSTD_MAGIC
}

/// The zstd core on `core` decompressed into a memfd, zero chunks left as
/// holes; at most `max` bytes (and `RLIMIT_FSIZE`).
fn decompress(core: BorrowedFd<'_>, max: u64) -> Result<OwnedFd, String> {
    let file = std::fs::File::from(
        core.try_clone_to_owned()
            .map_err(|e| format!("duplicating the core's descriptor: {e}"))?,
    );
    let mut reader = core_of_file(file).map_err(|e| format!("opening the zstd core: {e}"))?;
    let memfd = rustix::fs::memfd_create("lttng-coredump-core", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| format!("creating a memfd for the decompressed core: {e}"))?;
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = reader
            .read_at(offset, &mut buf)
            .map_err(|e| format!("decompressing the core at byte {offset}: {e}"))?;
        if n == 0 {
            break;
        }
        if offset.saturating_add(n as u64) > max {
            return Err(format!("the decompressed core is larger than {max} bytes"));
        }
        if buf[..n].iter().any(|&b| b != 0) {
            let mut done = 0;
            while done < n {
                done += rustix::io::pwrite(&memfd, &buf[done..n], offset + done as u64)
                    .map_err(|e| format!("writing the decompressed core: {e}"))?;
            }
        }
        offset += n as u64;
    }
    // A stream that stops decoding (a compressed core cut by a full disk)
    // gives what decoded before: a truncated core, which the analysis
    // reports as such.
    rustix::fs::ftruncate(&memfd, offset)
        .map_err(|e| format!("sizing the decompressed core: {e}"))?;
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_child_is_confined_before_it_reads_the_core() {
        let limits = Limits {
            deadline: Duration::from_secs(7),
            max_core_bytes: 1 << 30,
            ..Limits::default()
        };
        let out = lttng_coredump_engine::child::isolate::run_isolated(Duration::from_secs(10), || {
            let confined = confine(&limits).and_then(|()| limit_memory(1 << 20, 1 << 30));
            let get = |resource| rustix::process::getrlimit(resource);
            let state = format!(
                "{confined:?} session_leader={} no_new_privs={} dumpable={:?} cpu={:?} fsize={:?} core={:?} as_set={}",
                lttng_coredump_engine::child::leads_own_session(),
                rustix::thread::no_new_privs().unwrap(),
                rustix::process::dumpable_behavior().unwrap(),
                get(Resource::Cpu).maximum,
                get(Resource::Fsize).current,
                get(Resource::Core).maximum,
                get(Resource::As).maximum.is_some(),
            );
            state.into_bytes()
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "Ok(()) session_leader=true no_new_privs=true dumpable=NotDumpable cpu=Some(9) fsize=Some({}) core=Some(0) as_set=true",
                1u64 << 30
            )
        );
    }

    /// The same, run where CI runs: in a PID namespace of its own, where the
    /// session's leader (outside it) has no pid, and `getsid` answers 0.
    /// Needs root (`unshare --pid`): a `system` test in `tests/tiers`.
    #[test]
    fn the_child_is_confined_in_a_pid_namespace_whose_session_leader_is_outside() {
        let out = std::process::Command::new("unshare")
            .args(["--pid", "--fork", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sandbox::tests::the_child_is_confined_before_it_reads_the_core",
            ])
            .output()
            .expect("running unshare (util-linux)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{}{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
