//! The machine's own core directory and configuration, hidden from a test.
//!
//! A tool run without `--config` reads `/etc/lttng-coredump/config.toml`
//! and the crashes under `/var/lib/lttng-coredump/cores`: whatever the
//! machine holds there (a user's crafted crash with a huge record, a
//! configuration of its administrator) would then reach the test. A test
//! that runs such a tool (`status` while the handler is not installed,
//! `list` without `--dir`) holds a [`PrivateMachineDirs`]: from then on its
//! thread, and every process it starts, sees both directories empty (a
//! tmpfs each, root's, 0755) in a mount namespace of its own. Nothing of
//! the machine is touched: the mounts exist only in that namespace, which
//! ends with the test's thread and its children; a directory the machine
//! does not have appears only there too (over an overlay of its parent).
//!
//! Only the test's own thread moves: `unshare(CLONE_NEWNS)` from a thread
//! gives that thread a copy of the file-system context and the mount
//! namespace, the other threads of the test binary stay where they are.
//! The kernel takes an `@`/`@@` socket line in `core_pattern` only from
//! its initial mount namespace: a test that installs one runs just its
//! tools in a private view ([`in_private_machine_dirs`]).
//! What the kernel runs from `core_pattern` (the handler of a real crash)
//! runs in the machine's namespace, not the test's: a test that reads what
//! such a handler wrote into the default core directory must not use this.
//! What outlives the test must not start inside it either: take the root
//! session daemon (`ensure_sessiond`) and create test users (useradd
//! writes /etc, which is an overlay there when the machine has no
//! /etc/lttng-coredump) before entering.

use crate::temp::TempDir;
use std::ffi::CString;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The directories the tools read by default.
pub const MACHINE_DIRS: [&str; 2] = ["/var/lib/lttng-coredump", "/etc/lttng-coredump"];

/// The calling thread in a mount namespace of its own where
/// [`MACHINE_DIRS`] are empty; back in the previous namespace when dropped.
pub struct PrivateMachineDirs {
    previous: File,
    // The overlays' upper and work directories: a tmpfs in the private
    // namespace over this (empty, on the machine) directory.
    scratch: TempDir,
}

impl PrivateMachineDirs {
    /// Hides [`MACHINE_DIRS`] from this thread and what it starts. Panics
    /// (the test fails) when it cannot: it needs root (CAP_SYS_ADMIN).
    pub fn enter() -> PrivateMachineDirs {
        let previous = File::open("/proc/thread-self/ns/mnt")
            .unwrap_or_else(|e| panic!("opening /proc/thread-self/ns/mnt: {e}"));
        let scratch = TempDir::new("lcd-machine-dirs");
        // SAFETY: unshare(2) takes a flag word and touches no memory of ours.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            panic!(
                "unshare(CLONE_NEWNS) (root needed): {}",
                std::io::Error::last_os_error()
            );
        }
        let guard = PrivateMachineDirs { previous, scratch };
        // Nothing mounted here may reach the machine's namespace.
        mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_SLAVE,
            None,
        );
        mount(
            Some("tmpfs"),
            guard.scratch.path(),
            Some("tmpfs"),
            0,
            Some("mode=0700"),
        );
        for (n, dir) in MACHINE_DIRS.iter().enumerate() {
            let dir = Path::new(dir);
            if !dir.exists() {
                guard.appear(dir, n);
            }
            mount(Some("tmpfs"), dir, Some("tmpfs"), 0, Some("mode=0755"));
        }
        guard
    }

    /// Makes `dir`, which the machine does not have, exist in this
    /// namespace only: its nearest existing ancestor gets an overlay whose
    /// upper layer is in the scratch tmpfs.
    fn appear(&self, dir: &Path, n: usize) {
        let mut ancestor: PathBuf = dir.to_path_buf();
        while !ancestor.exists() {
            ancestor = ancestor.parent().expect("/ exists").to_path_buf();
        }
        let upper = self.scratch.path().join(format!("{n}-upper"));
        let work = self.scratch.path().join(format!("{n}-work"));
        fs::create_dir(&upper).unwrap();
        fs::create_dir(&work).unwrap();
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            ancestor.display(),
            upper.display(),
            work.display()
        );
        mount(
            Some("overlay"),
            &ancestor,
            Some("overlay"),
            0,
            Some(&options),
        );
        fs::create_dir_all(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

impl Drop for PrivateMachineDirs {
    fn drop(&mut self) {
        // Back to the namespace the thread had; the private one ends with
        // the last process in it, and its mounts with it. setns refuses
        // while a thread this one started still shares its file-system
        // context: this thread then stays in the private view until it
        // ends (a test's thread ends with the test), which is harmless.
        // SAFETY: setns(2) on a descriptor we hold open.
        if unsafe { libc::setns(self.previous.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
            eprintln!(
                "PrivateMachineDirs: the thread stays in its private view: setns: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// `f` run with [`MACHINE_DIRS`] private (see [`PrivateMachineDirs`]):
/// for a tool run amid a test that must stay in the machine's namespace
/// (the kernel takes a coredump socket in `core_pattern` only from there).
pub fn in_private_machine_dirs<T>(f: impl FnOnce() -> T) -> T {
    let _own = PrivateMachineDirs::enter();
    f()
}

/// mount(2), panicking with what failed.
fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) {
    let c = |s: &str| CString::new(s).unwrap();
    let source_c = source.map(c);
    let fstype_c = fstype.map(c);
    let data_c = data.map(c);
    let target_c = CString::new(target.as_os_str().as_bytes()).unwrap();
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null or a NUL-terminated string that lives
    // until the call returns.
    let ret = unsafe {
        libc::mount(
            ptr(&source_c),
            target_c.as_ptr(),
            ptr(&fstype_c),
            flags,
            ptr(&data_c).cast(),
        )
    };
    if ret != 0 {
        panic!(
            "mount {source:?} on {} ({fstype:?}, {data:?}): {}",
            target.display(),
            std::io::Error::last_os_error()
        );
    }
}

/// Two crashes in `cores` as a machine may hold them, each with a huge
/// record (a user's crafted crash: 4000 arguments of 1000 bytes and 2000
/// traces said to be only in the core, some 4 MB of JSON, which `status`
/// would list) and a small core; returns their PIDs, oldest first.
pub fn plant_two_huge_crashes(cores: &Path) -> [i32; 2] {
    fs::create_dir_all(cores).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let pids = [4_000_001, 4_000_002];
    for (n, pid) in pids.into_iter().enumerate() {
        let time = now - 60 * (2 - n as i64);
        let core = cores.join(format!("core.crafted.{pid}.{time}"));
        fs::write(&core, vec![7u8; 4096]).unwrap();
        let cmdline: Vec<String> = (0..4000)
            .map(|i| format!("{i:04}{}", "x".repeat(996)))
            .collect();
        let traces: Vec<serde_json::Value> = (0..2000)
            .map(|i| serde_json::json!({"uuid": format!("{i:032x}"), "streams": 1, "packets": 1, "bytes": 4096}))
            .collect();
        let record = serde_json::json!({
            "format": "lttng-coredump-record/1",
            "pid": pid,
            "uid": 0,
            "gid": 0,
            "signal": {"number": 11, "name": "SIGSEGV"},
            "time": time,
            "process_name": "crafted",
            "exe_path": "/opt/machine/crafted",
            "cmdline": cmdline,
            "core": {
                "saved": true,
                "path": core.display().to_string(),
                "size": 4096,
                "stored_bytes": 4096,
                "bytes_received": 4096,
                "compression": "none",
                "complete": true
            },
            "core_trace": {
                "checked": true,
                "buffers": 2000,
                "traces": traces,
                "traces_total": 2000,
                "only_in_core": true,
                "summary": "2000 traces planted by a test, in its own mount namespace"
            },
            "errors": ["planted by a test, in its own mount namespace"]
        });
        let path = cores.join(format!("core.crafted.{pid}.{time}.json"));
        fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        assert!(fs::metadata(&path).unwrap().len() > 4_000_000);
    }
    pids
}

/// What the machine holds at the package's default paths, set aside for
/// a test that installs and purges the real package (a purge removes the
/// default core directory and spool, crashes included): each path that
/// exists is renamed to `PATH.lcd-test-aside` when taken, and whatever the
/// test left at the path is removed and the machine's own put back when
/// dropped. A test killed in between leaves the machine's files under
/// that name, never deleted.
pub struct MachineStateAside {
    moved: Vec<(PathBuf, PathBuf)>,
    paths: Vec<PathBuf>,
}

impl MachineStateAside {
    pub fn take(paths: &[&str]) -> MachineStateAside {
        let mut aside = MachineStateAside {
            moved: Vec::new(),
            paths: paths.iter().map(PathBuf::from).collect(),
        };
        for path in &aside.paths {
            let kept = PathBuf::from(format!("{}.lcd-test-aside", path.display()));
            assert!(
                fs::symlink_metadata(&kept).is_err(),
                "{} exists: the machine's files from an earlier interrupted test; put them back by hand",
                kept.display()
            );
            if fs::symlink_metadata(path).is_ok() {
                fs::rename(path, &kept).unwrap_or_else(|e| {
                    panic!("setting {} aside: {e}", path.display());
                });
                aside.moved.push((kept, path.clone()));
            }
        }
        aside
    }
}

impl Drop for MachineStateAside {
    fn drop(&mut self) {
        for path in &self.paths {
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    let _ = fs::remove_dir_all(path);
                }
                Ok(_) => {
                    let _ = fs::remove_file(path);
                }
                Err(_) => {}
            }
        }
        for (kept, path) in &self.moved {
            if let Err(e) = fs::rename(kept, path) {
                eprintln!(
                    "MachineStateAside: {} stays at {}: {e}",
                    path.display(),
                    kept.display()
                );
            }
        }
    }
}
