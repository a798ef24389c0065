//! The attacker's side of the security tests of issue 10: crashing
//! programs as an unprivileged user, a FUSE file system of theirs that
//! never answers (mounted and always cleaned up), their session daemon made
//! to lie (LD_PRELOAD), and looking from outside at the processes the
//! handler leaves running while it waits.

use crate::process::spawn_printing_pid;
use crate::users::TestUser;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The FUSE file system that never answers (`tests/fixtures/hangfs.c`).
pub const HANGFS: &str = env!("FIXTURE_HANGFS");
/// The library a user loads into their own session daemon to make it lie
/// (`tests/fixtures/hostile_sessiond.c`).
pub const HOSTILE_SESSIOND: &str = env!("FIXTURE_HOSTILE_SESSIOND");
/// Crashes made to cost the handler (`tests/fixtures/hostile_crash.c`):
/// `hostile_crash [--gate] map FILE...` (a dump that reads each FILE's
/// first page) or `hostile_crash [--gate] buffers COUNT` (a core of COUNT
/// buffers that look like LTTng-UST traces).
pub const HOSTILE_CRASH: &str = env!("FIXTURE_HOSTILE_CRASH");
/// A traced program answering getpid() itself, so that the `$ctx.vpid`
/// its events send is the pid it chooses (`tests/fixtures/forged_vpid.c`):
/// `forged_vpid TAG FORGED_PID`, one `lttng_coredump:step` event, `ready
/// PID` (its real pid), then a line on stdin.
pub const FORGED_VPID: &str = env!("FIXTURE_FORGED_VPID");
/// Registers an OnAnyCoreDump trigger owned by any uid
/// (`tests/fixtures/register_trigger.c`).
pub const REGISTER_TRIGGER: &str = env!("FIXTURE_REGISTER_TRIGGER");

/// Starts `script` under `/bin/sh` as `user` (so that the handler fires in
/// the user's daemon); the script prints its pid first (`echo $$`).
pub fn start_as(user: &TestUser, script: &str) -> (Child, i32) {
    spawn_printing_pid(
        user.command("/bin/sh")
            .args(["-c", script])
            // runuser reports the crash ("Segmentation fault") on its
            // stderr, which would land in the middle of cargo's "test NAME
            // ... ok".
            .stderr(Stdio::null()),
    )
}

/// A shell line that prints its pid (`ready PID`, as the crasher does) and
/// crashes with a core.
pub const CRASH: &str = "echo ready $$; ulimit -c unlimited; kill -s SEGV $$";

/// Waits for `child` to end; `None` when it has not within `bound`.
pub fn wait_within(child: &mut Child, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() >= bound {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(started.elapsed())
}

/// The fire in `daemon` (`root`, `user UID`) of a record, when there is one.
pub fn fire_in<'a>(record: &'a serde_json::Value, daemon: &str) -> Option<&'a serde_json::Value> {
    record["fires"]
        .as_array()
        .unwrap()
        .iter()
        .find(|fire| fire["daemon"] == daemon)
}

/// Every action outcome of a record's fires, in every daemon.
pub fn outcomes(record: &serde_json::Value) -> Vec<&serde_json::Value> {
    record["fires"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|fire| fire["report"]["outcomes"].as_array())
        .flatten()
        .collect()
}

/// The record's error lines, joined.
pub fn errors(record: &serde_json::Value) -> String {
    record["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `session` of `user`'s daemon is recording.
pub fn session_active(user: &TestUser, session: &str) -> bool {
    let list = user.lttng_ok(&["list"]);
    let line = list
        .lines()
        .find(|l| l.contains(&format!(" {session} ")))
        .unwrap_or_else(|| panic!("no session {session} of {}: {list}", user.name));
    line.contains("[active")
}

/// Creates, as `user` in their own daemon, a started snapshot session
/// recording the crasher's events into `output`.
pub fn user_snapshot_session(user: &TestUser, session: &str, output: &Path) {
    user.lttng_ok(&[
        "create",
        session,
        "--snapshot",
        "-o",
        &output.display().to_string(),
    ]);
    user.lttng_ok(&[
        "enable-event",
        "-u",
        crate::sessions::CRASHER_EVENTS,
        "-s",
        session,
    ]);
    user.lttng_ok(&["start", session]);
}

/// A world-writable (sticky) directory for what the attacker's own
/// processes log, removed when dropped.
pub struct AttackerLog {
    dir: PathBuf,
}

impl AttackerLog {
    pub fn new(prefix: &str) -> AttackerLog {
        let dir = std::env::temp_dir().join(crate::temp::unique_name(prefix));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        AttackerLog { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for AttackerLog {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The uids of the clients a hostile daemon's credentials log recorded.
pub fn logged_client_uids(log: &Path) -> Vec<u32> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("uid ")?.split(' ').next()?.parse().ok())
        .collect()
}

/// The hanging FUSE file system, mounted by `user` (through fusermount3)
/// on a directory of theirs. Dropping it aborts the connection (which
/// frees every process it holds), unmounts it and waits for its daemon.
pub struct HangingMount {
    pub mountpoint: PathBuf,
    pub mark: PathBuf,
    daemon: Child,
}

/// The `major:minor` of the FUSE mount on `mountpoint`, from mountinfo
/// (root may not stat another user's FUSE mount).
fn fuse_device(mountpoint: &Path) -> Option<u32> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(4) == Some(&mountpoint.to_str()?) && line.contains(" - fuse"))
            .then(|| fields[2].split(':').nth(1)?.parse().ok())
            .flatten()
    })
}

impl HangingMount {
    /// Mounts it on `mountpoint` (created, owned by `user`) and waits until
    /// the kernel lists the mount.
    pub fn mount(user: &TestUser, mountpoint: &Path, mark: &Path) -> HangingMount {
        HangingMount::mount_with(user, mountpoint, mark, false)
    }

    /// [`HangingMount::mount`], reachable by every user and root when
    /// `allow_other` (the user's own choice where `/etc/fuse.conf` has
    /// `user_allow_other`: [`UserAllowOther`]).
    pub fn mount_with(
        user: &TestUser,
        mountpoint: &Path,
        mark: &Path,
        allow_other: bool,
    ) -> HangingMount {
        // Users open /dev/fuse to mount; udev's default rules make it 0666,
        // a machine without udev (a container) leaves the kernel's 0600.
        // scripts/install-deps sets it; so does this, as root.
        let mode = fs::metadata("/dev/fuse")
            .unwrap_or_else(|e| panic!("/dev/fuse: {e} (no FUSE in this kernel?)"))
            .permissions()
            .mode();
        if mode & 0o666 != 0o666 {
            fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(0o666)).unwrap();
        }
        // Aborting a connection goes through the fuse control file system,
        // which systemd mounts at boot; a machine without it (a container)
        // has it mounted here.
        let mounted = fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(2) == Some("fusectl"));
        if !mounted {
            let status = std::process::Command::new("mount")
                .args(["-t", "fusectl", "fusectl", "/sys/fs/fuse/connections"])
                .status()
                .unwrap();
            assert!(status.success(), "mounting fusectl failed");
        }
        fs::create_dir_all(mountpoint).unwrap();
        std::os::unix::fs::chown(mountpoint, Some(user.uid), Some(user.gid)).unwrap();
        // Started as the user directly (not through runuser) so that its
        // pid is the file system daemon's own, to kill at the end.
        use std::os::unix::process::CommandExt;
        let daemon = std::process::Command::new(HANGFS)
            .arg(mountpoint)
            .arg(mark)
            .args(allow_other.then_some("allow_other"))
            .env_clear()
            .env("HOME", &user.home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .uid(user.uid)
            .gid(user.gid)
            .current_dir(&user.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("running {HANGFS}: {e}"));
        let mount = HangingMount {
            mountpoint: mountpoint.to_path_buf(),
            mark: mark.to_path_buf(),
            daemon,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while fuse_device(mountpoint).is_none() {
            assert!(
                Instant::now() < deadline,
                "hangfs never mounted on {} (is fuse3 installed? scripts/install-deps)",
                mountpoint.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        mount
    }

    /// Whether the file system holds a request (it has read one and will
    /// never answer it).
    pub fn holds_a_request(&self) -> bool {
        fs::read_to_string(&self.mark).is_ok_and(|m| !m.is_empty())
    }

    /// Waits until it holds a request; false after `bound`.
    pub fn wait_until_holding(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while !self.holds_a_request() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Aborts the connection: every request held fails, every process
    /// waiting on one goes on.
    pub fn abort(&self) {
        if let Some(minor) = fuse_device(&self.mountpoint) {
            let _ = fs::write(format!("/sys/fs/fuse/connections/{minor}/abort"), "1");
        }
    }
}

impl Drop for HangingMount {
    fn drop(&mut self) {
        self.abort();
        // It holds its requests forever: killed, by its own pid.
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mountpoint)
            .stderr(Stdio::null())
            .status();
    }
}

/// `/etc/fuse.conf` with `user_allow_other` (users may mount FUSE file
/// systems that others, root included, reach), put back as it was when
/// dropped. Machine-wide: held under the lock of its own.
pub struct UserAllowOther {
    saved: Option<Vec<u8>>,
    _lock: crate::lock::FileLock,
}

impl UserAllowOther {
    const CONF: &'static str = "/etc/fuse.conf";

    pub fn enable() -> UserAllowOther {
        let lock = crate::lock::FileLock::acquire("fuse-conf");
        let saved = fs::read(Self::CONF).ok();
        let mut text = saved.clone().unwrap_or_default();
        if !String::from_utf8_lossy(&text)
            .lines()
            .any(|l| l.trim() == "user_allow_other")
        {
            if !text.is_empty() && !text.ends_with(b"\n") {
                text.push(b'\n');
            }
            text.extend_from_slice(b"user_allow_other\n");
            fs::write(Self::CONF, &text).unwrap();
        }
        UserAllowOther { saved, _lock: lock }
    }
}

impl Drop for UserAllowOther {
    fn drop(&mut self) {
        match &self.saved {
            Some(bytes) => {
                let _ = fs::write(Self::CONF, bytes);
            }
            None => {
                let _ = fs::remove_file(Self::CONF);
            }
        }
    }
}

/// A program of `user`'s that maps the file of `mount` whose reads are
/// never answered (`hangfs`'s `/held`), started and waiting at its gate:
/// once let go ([`let_go`]) it crashes, and the kernel's dump of it waits
/// on the file system for good (until the connection is aborted).
pub fn stalling_crash(user: &TestUser, mount: &HangingMount) -> (Child, i32) {
    crate::crasher::spawn_gated(
        user.command(HOSTILE_CRASH)
            .args(["--gate", "map"])
            .arg(mount.mountpoint.join("held")),
    )
}

/// Lets a gated program ([`crate::crasher::spawn_gated`]) go on to crash.
pub fn let_go(child: &mut Child) {
    use std::io::Write;
    child
        .stdin
        .as_mut()
        .expect("a gated program's stdin is piped")
        .write_all(b"go\n")
        .unwrap();
}

/// Waits until `children` have ended but `left` of them; returns the pids
/// (of `pids`, in the same order) still running. Fails the test after
/// `bound`.
pub fn wait_until_left(children: &mut [(Child, i32)], left: usize, bound: Duration) -> Vec<i32> {
    let deadline = Instant::now() + bound;
    loop {
        let running: Vec<i32> = children
            .iter_mut()
            .filter_map(|(child, pid)| child.try_wait().unwrap().is_none().then_some(*pid))
            .collect();
        if running.len() <= left {
            return running;
        }
        assert!(
            Instant::now() < deadline,
            "{} of the crashes still held after {bound:?} (expected {left}): {running:?}",
            running.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Processes whose parent is `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            // The fields after the command name, which ends at the last ')'.
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: i32 = after.split(' ').nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// The processes running `binary` (by `/proc/PID/exe`).
pub fn processes_running(binary: &Path) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            (fs::read_link(entry.path().join("exe")).ok()? == binary).then_some(pid)
        })
        .collect()
}

/// A process's state letter (`R`, `S`, `D`, `Z`...).
pub fn process_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// The real uid of a process.
pub fn process_uid(pid: i32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What each descriptor of a process is (`/proc/PID/fd`), by number.
pub fn descriptors(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let fd = e.file_name().to_str()?.parse().ok()?;
                    let target = fs::read_link(e.path()).ok()?;
                    Some((fd, target.display().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    fds
}
