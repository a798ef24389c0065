//! systemd-journald run standalone for a test, in a private mount namespace
//! (tmpfs over `/run/systemd` and `/run/log`), so that the machine's own
//! journal (or its absence) is untouched; reached from the test through
//! `/proc/PID/root`, and stopped when dropped. Entries are written to it
//! over journald's native protocol, as a program logging structured
//! entries does.

use crate::process::run_bounded;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const JOURNALD: &str = "/lib/systemd/systemd-journald";

pub struct StandaloneJournald {
    child: Child,
}

impl StandaloneJournald {
    pub fn start() -> StandaloneJournald {
        assert!(
            std::path::Path::new(JOURNALD).exists(),
            "{JOURNALD} is missing (apt-get install -y systemd)"
        );
        // unshare and sh replace themselves: the child is journald.
        let script = format!(
            "set -e; mount -t tmpfs tmpfs /run/systemd; mkdir -p /run/systemd/journal; \
             mount -t tmpfs tmpfs /run/log; exec {JOURNALD}"
        );
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("SYSTEMD_LOG_TARGET", "console")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("running unshare");
        let journald = StandaloneJournald { child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while UnixDatagram::unbound()
            .and_then(|s| s.connect(journald.socket()))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "journald never opened {}",
                journald.socket().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        journald
    }

    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.child.id()))
    }

    /// Its native protocol socket.
    pub fn socket(&self) -> PathBuf {
        self.root().join("run/systemd/journal/socket")
    }

    /// Its journal directory (`/run/log/journal`, holding MACHINE-ID/).
    pub fn journal_dir(&self) -> PathBuf {
        self.root().join("run/log/journal")
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

    /// Waits (bounded) until `journalctl -D` finds an entry matching
    /// `FIELD=VALUE`.
    pub fn wait_for(&self, matching: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = run_bounded(
                Command::new("journalctl")
                    .arg("-D")
                    .arg(self.journal_dir())
                    .args(["-o", "cat", "--no-pager", matching]),
                Duration::from_secs(60),
            );
            if !out.stdout.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no entry {matching} in the standalone journal"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for StandaloneJournald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
