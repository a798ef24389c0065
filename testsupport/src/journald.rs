//! The real `systemd-journald`, run standalone for one test (it is not PID
//! 1's journald here, and a test owns its journal; the machine's own
//! journal, or its absence, is untouched): in a private mount namespace
//! with a tmpfs over `/run/systemd` (its sockets and a drop-in
//! configuration: volatile storage, no rate limit, no forwarding, no kernel
//! log) and over `/run/log`, whose `journal` directories are bind mounts of
//! the test's own directories. So its native socket is a path the test
//! chooses, reachable from outside the namespace (the handler's namespace),
//! and its journal files are where `journalctl -D` and `coredumpctl -D`
//! read them. Entries reach it over journald's native protocol, as a
//! program logging structured entries sends them.

use crate::process::{run_bounded, signal};
use crate::temp::TempDir;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const JOURNALD: &str = "/lib/systemd/systemd-journald";

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
pub struct StandaloneJournald {
    child: Child,
    dir: TempDir,
}

impl StandaloneJournald {
    /// Starts journald and waits (at most 30 s) until its socket and its
    /// journal file exist.
    pub fn start() -> StandaloneJournald {
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
            .env("SYSTEMD_LOG_TARGET", "console")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running unshare");
        let mut journald = StandaloneJournald { child, dir };
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
        std::fs::read_dir(self.journal_dir())
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

    /// Its journal directory (`/run/log/journal` inside, holding
    /// MACHINE-ID/; what `journalctl -D` and `coredumpctl -D` read).
    pub fn journal_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one entry over the native protocol (text fields as
    /// `NAME=value`, others in the length-prefixed form); at most one
    /// datagram's worth.
    pub fn send(&self, fields: &[(String, Vec<u8>)]) {
        let mut datagram = Vec::new();
        for (name, value) in fields {
            datagram.extend_from_slice(name.as_bytes());
            if value.contains(&b'\n') || std::str::from_utf8(value).is_err() || value.contains(&0) {
                datagram.push(b'\n');
                datagram.extend_from_slice(&(value.len() as u64).to_le_bytes());
            } else {
                datagram.push(b'=');
            }
            datagram.extend_from_slice(value);
            datagram.push(b'\n');
        }
        assert!(
            datagram.len() < 200_000,
            "an entry of {} bytes needs a memfd",
            datagram.len()
        );
        let socket = UnixDatagram::unbound().unwrap();
        socket.send_to(&datagram, self.socket()).unwrap();
    }

    /// Waits (bounded) until an entry matches `FIELD=VALUE`.
    pub fn wait_for(&self, matching: &str) {
        self.wait_for_entry(&[matching]);
    }

    /// `journalctl -D DIR --no-pager ARGS`.
    pub fn journalctl(&self, args: &[&str]) -> Output {
        run_bounded(
            Command::new("journalctl")
                .arg("-D")
                .arg(self.journal_dir())
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
                .arg(self.journal_dir())
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

impl Drop for StandaloneJournald {
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
