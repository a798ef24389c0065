//! The real `systemd-journald`, run standalone for one test (it is not PID
//! 1's journald here, and a test owns its journal): in a private mount
//! namespace with a tmpfs over `/run/systemd` (its sockets and a drop-in
//! configuration: volatile storage, no rate limit, no forwarding, no kernel
//! log) and over `/run/log`, whose `journal` directories are bind mounts of
//! the test's own directories. So its native socket is a path the test
//! chooses, reachable from outside the namespace (the handler's namespace),
//! and its journal files are where `journalctl -D` and `coredumpctl -D`
//! read them.

use crate::process::{run_bounded, signal};
use crate::temp::TempDir;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// The namespace's set-up, then journald (same process: no fork).
const START: &str = r#"set -e
T=$1
mount -t tmpfs -o mode=0755 tmpfs /run/systemd
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d
mount --bind "$T/run" /run/systemd/journal
cat > /run/systemd/journald.conf.d/lttng-coredump-test.conf <<CONF
[Journal]
Storage=volatile
SplitMode=none
RateLimitBurst=0
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
ReadKMsg=no
Audit=no
CONF
mount -t tmpfs -o mode=0755 tmpfs /run/log
mkdir -p /run/log/journal
mount --bind "$T/log" /run/log/journal
exec "$2"
"#;

/// A standalone journald, stopped when dropped.
pub struct Journald {
    child: Child,
    dir: TempDir,
}

impl Journald {
    /// Starts journald and waits (at most 30 s) until its socket and its
    /// journal file exist.
    pub fn start() -> Journald {
        assert!(
            std::path::Path::new(JOURNALD).exists(),
            "{JOURNALD} is missing (apt-get install -y systemd)"
        );
        let dir = TempDir::new("journald");
        for sub in ["run", "log"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                START,
                "sh",
            ])
            .arg(dir.path())
            .arg(JOURNALD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running unshare");
        let mut journald = Journald { child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(journald.socket().exists() && journald.has_journal_file()) {
            if let Some(status) = journald.child.try_wait().unwrap() {
                panic!("systemd-journald exited at once: {status}");
            }
            assert!(Instant::now() < deadline, "systemd-journald did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        journald
    }

    fn has_journal_file(&self) -> bool {
        std::fs::read_dir(self.directory())
            .map(|d| {
                d.flatten()
                    .any(|e| e.path().join("system.journal").exists())
            })
            .unwrap_or(false)
    }

    /// Its native protocol socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/socket")
    }

    /// Its journal directory (`journalctl -D`, `coredumpctl -D`).
    pub fn directory(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// `journalctl -D DIR --no-pager ARGS`.
    pub fn journalctl(&self, args: &[&str]) -> Output {
        run_bounded(
            Command::new("journalctl")
                .arg("-D")
                .arg(self.directory())
                .arg("--no-pager")
                .args(args),
            Duration::from_secs(60),
        )
    }

    /// `coredumpctl -D DIR --no-pager ARGS`.
    pub fn coredumpctl(&self, args: &[&str]) -> Output {
        run_bounded(
            Command::new("coredumpctl")
                .arg("-D")
                .arg(self.directory())
                .arg("--no-pager")
                .args(args),
            Duration::from_secs(120),
        )
    }

    /// Waits (at most 30 s) until an entry matches `matches` (journalctl
    /// matches: `FIELD=VALUE`) and returns the matching entries in the
    /// export format.
    pub fn wait_for_entry(&self, matches: &[&str]) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut args = vec!["-o", "export"];
            args.extend_from_slice(matches);
            let out = self.journalctl(&args);
            if out.status.success() && !out.stdout.is_empty() {
                return out.stdout;
            }
            assert!(
                Instant::now() < deadline,
                "no journal entry matches {matches:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
