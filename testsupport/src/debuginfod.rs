//! Debian's `debuginfod` server, run for one test on the loopback
//! interface over a directory of debug files the test owns, and stopped
//! (or frozen, to make a server that never answers) on demand.

use crate::process::signal;
use crate::temp::TempDir;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `debuginfod -F DIR` on 127.0.0.1, killed when dropped.
pub struct DebuginfodServer {
    child: Child,
    port: u16,
    _db: TempDir,
}

impl DebuginfodServer {
    /// Starts a server scanning `dir` for ELF and DWARF files (on a free
    /// port of the loopback interface).
    pub fn start(dir: &Path) -> DebuginfodServer {
        let db = TempDir::new("debuginfod-db");
        for _ in 0..5 {
            // A port free now; another program could take it before the
            // server binds it, hence the retries.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let mut child = Command::new("debuginfod")
                .arg("-F")
                .arg(format!("-p{port}"))
                .arg(format!("-d{}", db.path().join("db.sqlite").display()))
                .args(["-t0", "-g0", "-c1"])
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("running debuginfod (apt-get install -y debuginfod)");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return DebuginfodServer {
                        child,
                        port,
                        _db: db,
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "debuginfod did not listen on port {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("debuginfod could not start on a free port");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits (at most a minute) until the server serves the debug
    /// information of `build_id` (its scan of the directory has found it).
    pub fn wait_for_debuginfo(&self, build_id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // A cache of its own each time: the client remembers a "not
            // found" (a query before the scan) for ten minutes.
            let cache = TempDir::new("debuginfod-find");
            let found = Command::new("debuginfod-find")
                .args(["debuginfo", build_id])
                .env("DEBUGINFOD_URLS", self.url())
                .env("DEBUGINFOD_CACHE_PATH", cache.path())
                .env("DEBUGINFOD_TIMEOUT", "5")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("running debuginfod-find");
            if found.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "debuginfod never served the debug information of {build_id}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server (SIGSTOP): it accepts connections (the kernel
    /// does) and never answers, until dropped.
    pub fn freeze(&self) {
        assert!(signal(self.child.id() as i32, libc::SIGSTOP));
    }
}

impl Drop for DebuginfodServer {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        signal(pid, libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
